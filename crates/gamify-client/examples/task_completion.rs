//! The brief's task completion integration, against a running server: the
//! task manager awards productivity points by priority.
//!
//! Run a server (`cargo run -- serve`), then
//! `cargo run -p gamify-client --example live_task_completion`
//! (`GAMIFY_URL` if it is not on `http://127.0.0.1:8000`).

use gamify_client::{Client, Error, EventRequest};
use serde_json::json;

/// Called by the task manager when a task is closed.
async fn on_task_completed(gamify: &Client, user_id: &str, priority: &str) -> Result<f64, Error> {
    let value = match priority {
        "high" => 3.0,
        "medium" => 2.0,
        _ => 1.0, // "low" and anything unknown
    };
    let event = EventRequest::new(user_id, "productivity", "completed_task", value)
        .metadata(json!({"priority": priority}));
    Ok(gamify.record_event(&event, None).await?.body.points)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gamify = Client::from_env()?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let user = format!("task_user_{run}");

    let mut earned = Vec::new();
    for priority in ["high", "medium", "low", "someday"] {
        let points = on_task_completed(&gamify, &user, priority).await?;
        println!("{priority:>7} task → {points} points");
        earned.push(points);
    }
    assert_eq!(earned, [3.0, 2.0, 1.0, 1.0], "productivity weight 1.0");
    let stats = gamify.stats(&user).await?;
    assert_eq!(stats.total_events, 4);
    assert_eq!(stats.achievements, ["first_step"]);
    Ok(())
}
