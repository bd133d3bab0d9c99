//! The brief's OCR receipt scanning integration, against a running server:
//! after a successful scan, the OCR service awards a finance event.
//!
//! Run a server (`cargo run -- serve`), then
//! `cargo run -p gamify-client --example live_receipt_scan`
//! (`GAMIFY_URL` if it is not on `http://127.0.0.1:8000`).

use gamify_client::{Client, Error, EventRequest, EventResponse};
use serde_json::json;

/// Called by the OCR service after a receipt was read. The receipt's id is
/// the idempotency key: a scan reported twice earns once.
async fn on_ocr_success(
    gamify: &Client,
    user_id: &str,
    receipt_id: &str,
    vendor: &str,
) -> Result<EventResponse, Error> {
    let event = EventRequest::new(user_id, "finance", "scanned_receipt", 1.0)
        .metadata(json!({"merchant": vendor}));
    Ok(gamify.record_event(&event, Some(receipt_id)).await?.body)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gamify = Client::from_env()?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let user = format!("receipt_user_{run}");

    let event = on_ocr_success(&gamify, &user, &format!("rcpt-{run}"), "K-Market").await?;
    println!(
        "{} earned {} points for a receipt from {}",
        event.user_id,
        event.points,
        event.metadata.unwrap()["merchant"]
    );
    assert_eq!(event.points, 2.0, "1.0 × finance weight 2.0");
    // The scanner retries: nothing more is earned.
    let again = on_ocr_success(&gamify, &user, &format!("rcpt-{run}"), "K-Market").await?;
    assert_eq!(again.id, event.id);
    assert_eq!(gamify.balance(&user).await?.lifetime_points, 2.0);
    Ok(())
}
