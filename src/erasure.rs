//! Erasing a person at the engine's edge: the request, and the JSON that
//! reports what went. What an erasure removes and keeps is decided in
//! `gamify_store::erasure` and documented in docs/API.md, "Erasure".

pub use gamify_api::{ErasureResponse, RemovedCounts};

use crate::engine::{Engine, EngineError, new_id, parse_user};
use crate::model::rfc3339_ms;

impl Engine {
    /// Erases a user's data (see docs/API.md, "Erasure"). From then on,
    /// events, spends and redemptions for the id are refused
    /// ([`EngineError::Erased`]).
    pub async fn erase_user(&self, user_id: &str) -> Result<ErasureResponse, EngineError> {
        let user = parse_user(user_id)?;
        let now = self.now_ms();
        let done = self.store().erase(&user, &new_id("era", now), now).await?;
        Ok(ErasureResponse {
            user_id: user_id.to_owned(),
            erasure_id: done.id,
            erased_at: rfc3339_ms(done.erased_at_ms),
            removed: RemovedCounts {
                events: done.events,
                ledger_entries: done.ledger_entries,
                movements: done.movements,
                redemptions: done.redemptions,
            },
        })
    }
}
