//! The brief's learning module integration, against a running server: one
//! point of value per 30 minutes of lesson, in learning.
//!
//! Run a server (`cargo run -- serve`), then
//! `cargo run -p gamify-client --example live_lesson`
//! (`GAMIFY_URL` if it is not on `http://127.0.0.1:8000`).

use gamify_client::{Board, Client, Error, EventRequest};
use serde_json::json;

/// Called by the learning platform when a lesson is finished.
async fn on_lesson_completed(gamify: &Client, user_id: &str, minutes: u32) -> Result<f64, Error> {
    let value = f64::from(minutes) / 30.0;
    let event = EventRequest::new(user_id, "learning", "completed_lesson", value)
        .metadata(json!({"duration": minutes}));
    Ok(gamify.record_event(&event, None).await?.body.points)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gamify = Client::from_env()?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let user = format!("learner_{run}");

    let short = on_lesson_completed(&gamify, &user, 45).await?;
    let odd = on_lesson_completed(&gamify, &user, 40).await?;
    println!("45 minutes → {short} points; 40 minutes → {odd} points");
    assert_eq!(short, 2.25, "1.5 × learning weight 1.5");
    assert_eq!(
        odd, 2.0,
        "1.333 × 1.5 = 1.9995, rounded to the nearest thousandth"
    );
    assert_eq!(gamify.balance(&user).await?.lifetime_points, 4.25);
    // Where the learner stands this week in learning.
    let standing = gamify
        .standing(&user, &Board::period("week").category("learning"), Some(1))
        .await?;
    println!(
        "this week in learning: rank {:?} with {} points",
        standing.rank, standing.points
    );
    assert_eq!(standing.points, 4.25);
    Ok(())
}
