//! The brief's OCR receipt scanning integration: after a successful scan, the
//! OCR service awards a finance event. Run: `cargo run --example receipt_scan`.

use gamify::model::EventResponse;
use gamify::{Engine, EngineError, EventRequest, Rules, Storage};
use serde_json::json;

/// Called by the OCR service after a receipt was read.
async fn on_ocr_success(
    engine: &Engine,
    user_id: &str,
    vendor: &str,
) -> Result<EventResponse, EngineError> {
    let event = EventRequest::new(user_id, "finance", "scanned_receipt", 1.0)
        .metadata(json!({"merchant": vendor}));
    let (recorded, _replayed) = engine.record_event(event, None).await?;
    Ok(recorded)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(
        &Storage::Sqlite(dir.path().join("gamify.db")),
        Rules::default(),
    )
    .await?;

    let event = on_ocr_success(&engine, "user_123", "K-Market").await?;
    println!(
        "{} earned {} points for a receipt from {}",
        event.user_id,
        event.points,
        event.metadata.unwrap()["merchant"]
    );
    assert_eq!(event.points, 2.0, "1.0 × finance weight 2.0");
    Ok(())
}
