//! The brief's invoice payment integration, against a running server: the
//! billing service awards `min(amount / 100, 5)` in finance.
//!
//! Run a server (`cargo run -- serve`), then
//! `cargo run -p gamify-client --example live_invoice_payment`
//! (`GAMIFY_URL` if it is not on `http://127.0.0.1:8000`).

use gamify_client::{Client, Error, EventRequest};
use serde_json::json;

/// Called by the billing service when an invoice is paid. The invoice id is
/// the idempotency key, so a redelivered "paid" message earns nothing twice.
async fn on_invoice_paid(
    gamify: &Client,
    user_id: &str,
    invoice_id: &str,
    amount: f64,
) -> Result<(f64, bool), Error> {
    let value = (amount / 100.0).min(5.0); // at most 5 per invoice
    let event = EventRequest::new(user_id, "finance", "paid_invoice", value)
        .metadata(json!({"amount": amount}));
    let recorded = gamify.record_event(&event, Some(invoice_id)).await?;
    Ok((recorded.body.points, recorded.replayed))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let gamify = Client::from_env()?;
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let user = format!("billing_user_{run}");

    let (small, _) = on_invoice_paid(&gamify, &user, &format!("inv-{run}-1"), 250.0).await?;
    let (large, _) = on_invoice_paid(&gamify, &user, &format!("inv-{run}-2"), 9_000.0).await?;
    let (again, replayed) =
        on_invoice_paid(&gamify, &user, &format!("inv-{run}-2"), 9_000.0).await?;
    println!(
        "250 € → {small} points; 9000 € → {large} points; redelivered → {again} (replayed: {replayed})"
    );
    assert_eq!(small, 5.0, "2.5 × finance weight 2.0");
    assert_eq!(large, 10.0, "capped at 5 × 2.0");
    assert!(replayed && again == large, "the same invoice counts once");
    assert_eq!(gamify.balance(&user).await?.lifetime_points, 15.0);
    Ok(())
}
