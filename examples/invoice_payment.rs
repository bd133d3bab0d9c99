//! The brief's invoice payment integration: the billing service awards
//! `min(amount / 100, 5)` in finance. Run: `cargo run --example invoice_payment`.

use gamify::{Engine, EngineError, EventRequest, Rules, Storage};
use serde_json::json;

/// Called by the billing service when an invoice is paid. The invoice id is
/// the idempotency key, so a redelivered "paid" message earns nothing twice.
async fn on_invoice_paid(
    engine: &Engine,
    user_id: &str,
    invoice_id: &str,
    amount: f64,
) -> Result<f64, EngineError> {
    let value = (amount / 100.0).min(5.0); // at most 5 per invoice
    let event = EventRequest::new(user_id, "finance", "paid_invoice", value)
        .metadata(json!({"amount": amount}));
    let (recorded, _replayed) = engine.record_event(event, Some(invoice_id)).await?;
    Ok(recorded.points)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let engine = Engine::open(
        &Storage::Sqlite(dir.path().join("gamify.db")),
        Rules::default(),
    )
    .await?;

    let small = on_invoice_paid(&engine, "user_123", "INV-1001", 150.0).await?;
    let large = on_invoice_paid(&engine, "user_123", "INV-1002", 900.0).await?;
    let redelivered = on_invoice_paid(&engine, "user_123", "INV-1002", 900.0).await?;
    println!("invoice of 150.00 → {small} points; of 900.00 → {large} points (capped)");
    assert_eq!((small, large, redelivered), (3.0, 10.0, 10.0));

    let balance = engine.balance("user_123").await?;
    println!("balance: {} points", balance.total_points);
    assert_eq!(balance.total_points, 13.0, "the redelivery counted once");
    Ok(())
}
