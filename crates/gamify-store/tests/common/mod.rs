//! What the store's test binaries share.

use gamify_core::{Action, Category, UserId, Value};
use gamify_store::NewEvent;

pub const DAY: i64 = 86_400_000;
/// A day's 10:00 UTC.
pub const T0: i64 = 20_000 * DAY + 10 * 3_600_000;

/// An event as the engine would hand it to a store, without an idempotency key.
pub fn event(id: &str, user: &str, category: Category, value_milli: i64, at: i64) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        user_id: UserId::parse(user).unwrap(),
        category,
        action: Action::parse("did_something").unwrap(),
        value: Value::from_milli(value_milli),
        metadata: Some(r#"{"k":1}"#.to_owned()),
        occurred_at_ms: at,
        created_at_ms: at,
        idempotency: None,
    }
}
