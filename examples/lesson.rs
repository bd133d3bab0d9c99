//! The brief's learning module integration: one point of value per 30 minutes
//! of lesson, in learning. Run: `cargo run --example lesson`.

use gamify::{Engine, EngineError, EventRequest, Rules, Storage};
use serde_json::json;

/// Called by the learning platform when a lesson is finished.
async fn on_lesson_completed(
    engine: &Engine,
    user_id: &str,
    minutes: u32,
) -> Result<f64, EngineError> {
    let value = f64::from(minutes) / 30.0;
    let event = EventRequest::new(user_id, "learning", "completed_lesson", value)
        .metadata(json!({"duration": minutes}));
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

    let short = on_lesson_completed(&engine, "user_123", 45).await?;
    let odd = on_lesson_completed(&engine, "user_123", 40).await?;
    println!("45 minutes → {short} points; 40 minutes → {odd} points");
    assert_eq!(short, 2.25, "1.5 × learning weight 1.5");
    assert_eq!(
        odd, 2.0,
        "1.333 × 1.5 = 1.9995, rounded to the nearest thousandth"
    );
    assert_eq!(engine.balance("user_123").await?.lifetime_points, 4.25);
    Ok(())
}
