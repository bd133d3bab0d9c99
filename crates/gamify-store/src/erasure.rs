//! Erasing a person, the same way on every backend.
//!
//! An erasure removes every row that names the user: events (with their
//! metadata and idempotency keys), ledger entries, spends and adjustments,
//! redemptions, the user's state and the derived indexes (leaderboard,
//! per-user listings). Others' data is untouched, and what they share stays
//! consistent:
//!
//! - a **pending** redemption of the user is cancelled first: its unit goes
//!   back to the reward's stock (there is no one left to refund);
//! - a **fulfilled** redemption's unit stays taken (the goods were handed
//!   out): the reward's `redeemed` keeps counting it, and `erased_units`
//!   says how many of those have no redemption any more, so that
//!   `gamify verify` still balances the stock.
//!
//! What is kept is one [`Erasure`] row: its id, a one-way hash of the user
//! id ([`user_hash`]), when, and how many rows went. The hash is what
//! refuses a late event, a retried request or a spend for the same id with
//! [`crate::StoreError::Erased`], so nothing brings the person back; the id
//! itself is not kept.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::{RedemptionStatus, StoreError};

/// A finished erasure: what the store keeps, and what it reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// `era_…`
    pub id: String,
    /// When it was done (Unix ms).
    pub erased_at_ms: i64,
    /// Events removed.
    pub events: u64,
    /// Ledger entries removed.
    pub ledger_entries: u64,
    /// Spends and adjustments removed.
    pub movements: u64,
    /// Redemptions removed.
    pub redemptions: u64,
}

/// The hash an erasure keeps of a user id: hex SHA-256.
pub fn user_hash(user_id: &str) -> String {
    crate::hex(&Sha256::digest(user_id.as_bytes()))
}

/// What erasing a user's redemptions does to each reward's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitChange {
    /// Units returned to stock (pending redemptions): `redeemed` goes down.
    pub returned: u32,
    /// Units that stay taken (fulfilled): `erased_units` goes up.
    pub kept: u32,
}

/// The change per reward (in id order, the order rows are locked in) for
/// an erased user's redemptions not cancelled, given as stored: (reward
/// id, status).
pub fn unit_changes(
    redemptions: &[(String, String)],
) -> Result<BTreeMap<&str, UnitChange>, StoreError> {
    let mut changes: BTreeMap<&str, UnitChange> = BTreeMap::new();
    for (reward, status) in redemptions {
        let change = changes.entry(reward.as_str()).or_default();
        match RedemptionStatus::parse(status) {
            Some(RedemptionStatus::Pending) => change.returned += 1,
            Some(RedemptionStatus::Fulfilled) => change.kept += 1,
            Some(RedemptionStatus::Cancelled) => {}
            None => return Err(crate::corrupt("redemption status", status)),
        }
    }
    changes.retain(|_, c| *c != UnitChange::default());
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_stable_and_differs_per_id() {
        assert_eq!(
            user_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(user_hash("u1"), user_hash("u2"));
    }

    #[test]
    fn pending_units_return_fulfilled_stay_and_cancelled_ones_are_already_back() {
        let rows: Vec<(String, String)> = [
            ("b", "pending"),
            ("a", "fulfilled"),
            ("b", "fulfilled"),
            ("c", "cancelled"),
            ("b", "pending"),
        ]
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
        .into();
        let got: Vec<_> = unit_changes(&rows).unwrap().into_iter().collect();
        assert_eq!(
            got,
            vec![
                (
                    "a",
                    UnitChange {
                        returned: 0,
                        kept: 1
                    }
                ),
                (
                    "b",
                    UnitChange {
                        returned: 2,
                        kept: 1
                    }
                ),
            ]
        );
        let bad = [("a".to_owned(), "lost".to_owned())];
        assert!(unit_changes(&bad).is_err());
    }
}
