//! Spending points: what a debit, a credit and a reward redemption may do to
//! a user's balance. Pure, like the scoring rules: storage reads the user's
//! state and the reward, these decide, storage writes the outcome.
//!
//! The invariants they keep: the spendable balance (`total`) never goes
//! below zero, and lifetime points never go down (a spend, a redemption or
//! a correction lowers `total` only).

use crate::{Points, RuleError, UserState};

/// Why a spend or a redemption is refused. Nothing changes when it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The balance is below what is asked.
    #[error("not enough points: the balance is {balance}, {needed} needed")]
    InsufficientPoints {
        /// The spendable balance.
        balance: Points,
        /// What the spend or reward costs.
        needed: Points,
    },
    /// The reward has been deactivated.
    #[error("the reward is not active")]
    RewardInactive,
    /// The reward's availability window has not opened yet, or has closed.
    #[error("the reward is not available at this time")]
    OutsideWindow,
    /// Every unit of the reward's stock is redeemed.
    #[error("the reward is out of stock")]
    OutOfStock,
    /// The user has redeemed the reward as often as one user may.
    #[error("the user has reached this reward's limit of {limit} per user")]
    LimitReached {
        /// The per-user limit.
        limit: u32,
    },
}

/// What decides whether a reward can be redeemed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardTerms {
    /// What one redemption costs.
    pub cost: Points,
    /// Units in all; `None`: unlimited.
    pub stock: Option<u32>,
    /// Units taken by redemptions that were not cancelled.
    pub redeemed: u32,
    /// Redemptions one user may hold (not cancelled); `None`: no limit.
    pub per_user_limit: Option<u32>,
    /// Redeemable from this time on (Unix ms, inclusive).
    pub available_from_ms: Option<i64>,
    /// Redeemable until this time (Unix ms, exclusive).
    pub available_until_ms: Option<i64>,
    /// False once an admin deactivated it.
    pub active: bool,
}

impl RewardTerms {
    /// Whether the reward is offered at `now_ms` (active and inside its
    /// window), whoever asks.
    pub fn offered_at(&self, now_ms: i64) -> Result<(), Refusal> {
        if !self.active {
            return Err(Refusal::RewardInactive);
        }
        let opened = self.available_from_ms.is_none_or(|from| now_ms >= from);
        let open = self.available_until_ms.is_none_or(|until| now_ms < until);
        if !(opened && open) {
            return Err(Refusal::OutsideWindow);
        }
        Ok(())
    }

    /// Whether a user who holds `held` redemptions of it may take one more
    /// at `now_ms`, leaving the balance aside (see [`debit`]). Checked in
    /// this order: offered, stock, per-user limit.
    pub fn check(&self, held: u32, now_ms: i64) -> Result<(), Refusal> {
        self.offered_at(now_ms)?;
        if self.stock.is_some_and(|stock| self.redeemed >= stock) {
            return Err(Refusal::OutOfStock);
        }
        if let Some(limit) = self.per_user_limit
            && held >= limit
        {
            return Err(Refusal::LimitReached { limit });
        }
        Ok(())
    }
}

/// Takes `amount` off the spendable balance, or refuses if the balance is
/// smaller. Lifetime points are untouched.
pub fn debit(state: &mut UserState, amount: Points) -> Result<(), Refusal> {
    if amount > state.total {
        return Err(Refusal::InsufficientPoints {
            balance: state.total,
            needed: amount,
        });
    }
    state.total = Points::from_milli(state.total.milli() - amount.milli());
    Ok(())
}

/// Adds `amount` to the spendable balance; to lifetime points too when
/// `earned` (a correction in the user's favour), not for a refund, which
/// only returns points spent before.
pub fn credit(state: &mut UserState, amount: Points, earned: bool) -> Result<(), RuleError> {
    state.total = state.total.checked_add(amount)?;
    if earned {
        state.lifetime = state.lifetime.checked_add(amount)?;
    }
    Ok(())
}

/// Point expiry, when it is on: points expire `days` days after the UTC day
/// they were credited on (at the start of day D + days + 1), oldest first.
///
/// Every debit (spend, redemption, negative adjustment, expiry) takes the
/// oldest points first, so the points a user still holds are always the
/// newest credits: walking the credits from the newest back, the first
/// `total` points of them. Hence no per-lot bookkeeping is needed: the points
/// credited before some instant that are still held are
/// `max(0, total − credited since that instant)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// Days points stay spendable after the day they were credited on.
    pub days: u32,
}

/// One UTC day in milliseconds.
const DAY_MS: i64 = 86_400_000;

impl Expiry {
    /// Points credited before this instant have expired at `now_ms`: the
    /// start of UTC day (today − days).
    pub fn cutoff_ms(self, now_ms: i64) -> i64 {
        let today = now_ms.div_euclid(DAY_MS);
        (today - i64::from(self.days)) * DAY_MS
    }

    /// What of `total` is due to expire at `now_ms`, given the points
    /// `credited_since` [`Expiry::cutoff_ms`].
    pub fn due(total: Points, credited_since: Points) -> Points {
        Points::from_milli((total.milli() - credited_since.milli()).max(0))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn terms() -> RewardTerms {
        RewardTerms {
            cost: Points::whole(10),
            stock: Some(2),
            redeemed: 0,
            per_user_limit: Some(1),
            available_from_ms: Some(1_000),
            available_until_ms: Some(2_000),
            active: true,
        }
    }

    #[test]
    fn a_reward_is_offered_only_while_active_and_inside_its_window() {
        let t = terms();
        assert_eq!(t.check(0, 999), Err(Refusal::OutsideWindow));
        assert_eq!(t.check(0, 1_000), Ok(()));
        assert_eq!(t.check(0, 1_999), Ok(()));
        assert_eq!(t.check(0, 2_000), Err(Refusal::OutsideWindow));
        let inactive = RewardTerms {
            active: false,
            ..terms()
        };
        assert_eq!(inactive.check(0, 1_500), Err(Refusal::RewardInactive));
    }

    #[test]
    fn stock_and_the_per_user_limit_are_enforced() {
        let sold_out = RewardTerms {
            redeemed: 2,
            ..terms()
        };
        assert_eq!(sold_out.check(0, 1_500), Err(Refusal::OutOfStock));
        assert_eq!(
            terms().check(1, 1_500),
            Err(Refusal::LimitReached { limit: 1 })
        );
        let unlimited = RewardTerms {
            stock: None,
            per_user_limit: None,
            redeemed: 1_000_000,
            ..terms()
        };
        assert_eq!(unlimited.check(1_000, 1_500), Ok(()));
    }

    #[test]
    fn a_debit_never_leaves_a_negative_balance_nor_touches_lifetime() {
        let mut state = UserState {
            total: Points::whole(5),
            lifetime: Points::whole(50),
            ..UserState::default()
        };
        assert_eq!(
            debit(&mut state, Points::from_milli(5_001)),
            Err(Refusal::InsufficientPoints {
                balance: Points::whole(5),
                needed: Points::from_milli(5_001)
            })
        );
        assert_eq!(state.total, Points::whole(5));
        debit(&mut state, Points::whole(5)).unwrap();
        assert_eq!(state.total, Points::ZERO);
        assert_eq!(state.lifetime, Points::whole(50));
    }

    #[test]
    fn points_expire_at_the_start_of_the_day_after_their_last_day() {
        let expiry = Expiry { days: 30 };
        let day = 20_000 * DAY_MS;
        // Credited on day 20000 (any time): spendable through day 20030.
        assert_eq!(expiry.cutoff_ms(day + 30 * DAY_MS + 5), day);
        assert_eq!(expiry.cutoff_ms(day + 31 * DAY_MS), day + DAY_MS);
        // 10 held, 4 of them credited since the cutoff: 6 are due.
        assert_eq!(
            Expiry::due(Points::whole(10), Points::whole(4)),
            Points::whole(6)
        );
        // More credited since than held (spent since): nothing is due.
        assert_eq!(
            Expiry::due(Points::whole(3), Points::whole(4)),
            Points::ZERO
        );
    }

    proptest! {
        /// The shortcut equals tracking every credit as a lot and taking
        /// debits oldest first.
        #[test]
        fn the_due_shortcut_equals_first_in_first_out_lots(moves in prop::collection::vec((any::<bool>(), 1i64..100), 1..60), cut in 0usize..60) {
            let mut lots: std::collections::VecDeque<(usize, i64)> = Default::default();
            let mut total = 0i64;
            for (i, (is_credit, n)) in moves.iter().enumerate() {
                if *is_credit {
                    lots.push_back((i, *n));
                    total += n;
                } else {
                    let mut take = (*n).min(total);
                    total -= take;
                    while take > 0 {
                        let front = lots.front_mut().unwrap();
                        let used = take.min(front.1);
                        front.1 -= used;
                        take -= used;
                        if front.1 == 0 { lots.pop_front(); }
                    }
                }
            }
            let held_before_cut: i64 = lots.iter().filter(|(i, _)| *i < cut).map(|(_, n)| n).sum();
            let credited_since: i64 = moves.iter().enumerate().filter(|(i, (c, _))| *c && *i >= cut).map(|(_, (_, n))| n).sum();
            prop_assert_eq!(
                Expiry::due(Points::from_milli(total), Points::from_milli(credited_since)),
                Points::from_milli(held_before_cut)
            );
        }
    }

    proptest! {
        /// Any sequence of credits and debits keeps the balance at the sum
        /// of what succeeded, never below zero, and lifetime never falls.
        #[test]
        fn balances_follow_the_accepted_movements(moves in prop::collection::vec((any::<bool>(), 1i64..10_000, any::<bool>()), 0..200)) {
            let mut state = UserState::default();
            let mut sum = 0i64;
            let mut lifetime = 0i64;
            for (is_credit, milli, earned) in moves {
                let amount = Points::from_milli(milli);
                let lifetime_before = state.lifetime;
                if is_credit {
                    credit(&mut state, amount, earned).unwrap();
                    sum += milli;
                    if earned { lifetime += milli; }
                } else if debit(&mut state, amount).is_ok() {
                    sum -= milli;
                }
                prop_assert!(state.total >= Points::ZERO);
                prop_assert!(state.lifetime >= lifetime_before);
                prop_assert_eq!(state.total.milli(), sum);
                prop_assert_eq!(state.lifetime.milli(), lifetime);
            }
        }
    }
}
