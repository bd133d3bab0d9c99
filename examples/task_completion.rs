//! The brief's task completion integration: the task manager awards
//! productivity points by priority. Run: `cargo run --example task_completion`.

use gamify::{Engine, EngineError, EventRequest, Rules, Storage};
use serde_json::json;

/// Called by the task manager when a task is closed.
async fn on_task_completed(
    engine: &Engine,
    user_id: &str,
    priority: &str,
) -> Result<f64, EngineError> {
    let value = match priority {
        "high" => 3.0,
        "medium" => 2.0,
        _ => 1.0, // "low" and anything unknown
    };
    let event = EventRequest::new(user_id, "productivity", "completed_task", value)
        .metadata(json!({"priority": priority}));
    Ok(engine.record_event(event, None).await?.0.points)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(
        &Storage::Sqlite(dir.path().join("gamify.db")),
        Rules::default(),
    )
    .await?;

    let mut earned = Vec::new();
    for priority in ["high", "medium", "low", "someday"] {
        let points = on_task_completed(&engine, "user_123", priority).await?;
        println!("{priority:>7} task → {points} points");
        earned.push(points);
    }
    assert_eq!(earned, [3.0, 2.0, 1.0, 1.0]);
    assert_eq!(
        engine.stats("user_123").await?.events_by_category["productivity"],
        4
    );
    Ok(())
}
