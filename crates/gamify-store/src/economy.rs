//! The points economy as storage keeps it: movements (spends and admin
//! adjustments), the rewards catalogue, redemptions and the ledger; and what
//! every backend does with them once it holds the user's state and the
//! reward. Like [`crate::scoring`], the deciding is the same everywhere;
//! backends differ only in how they lock, read and write.

use gamify_core::{Points, RewardTerms, UserId, credit, debit};

use crate::scoring::LedgerEntry;
use crate::{Idempotency, NewEvent, Recorded, StoreError, UserSnapshot};

/// A write a backend's writer applies: what the store's write methods queue.
#[derive(Debug)]
pub enum Op {
    /// [`crate::Store::record_event`]
    Event(NewEvent),
    /// [`crate::Store::move_points`]
    Move(NewMovement),
    /// [`crate::Store::redeem`]
    Redeem(NewRedemption),
    /// [`crate::Store::settle`]
    Settle(Settle),
    /// [`crate::Store::expire`]
    Expire(Expire),
}

impl Op {
    /// The user it writes for, where the request names one (a settlement
    /// names a redemption, whose user the store looks up).
    pub fn user_id(&self) -> Option<&gamify_core::UserId> {
        match self {
            Op::Event(e) => Some(&e.user_id),
            Op::Move(m) => Some(&m.user_id),
            Op::Redeem(r) => Some(&r.user_id),
            Op::Expire(e) => Some(&e.user_id),
            Op::Settle(_) => None,
        }
    }
}

/// What an [`Op`] gave.
#[derive(Debug)]
pub enum Done {
    /// For [`Op::Event`].
    Event(Recorded),
    /// For [`Op::Move`].
    Move(Moved),
    /// For [`Op::Redeem`].
    Redeem(Redeemed),
    /// For [`Op::Settle`].
    Settle(Redemption),
    /// For [`Op::Expire`]: the points that expired (zero if none were due).
    Expire(Points),
}

/// What a planned write came to, in a word, for logs.
pub fn outcome(result: &Result<Done, StoreError>) -> &'static str {
    match result {
        Ok(Done::Event(r)) if r.replayed => "replayed",
        Ok(Done::Move(m)) if m.replayed => "replayed",
        Ok(Done::Redeem(r)) if r.replayed => "replayed",
        Ok(_) => "written",
        Err(e) if is_refusal(e) => "refused",
        Err(_) => "failed",
    }
}

/// Unwraps the [`Done`] variant a store method expects from its [`Op`].
macro_rules! expect_done {
    ($result:expr, $variant:ident) => {
        match $result? {
            $crate::economy::Done::$variant(v) => Ok(v),
            _ => Err($crate::StoreError::Unavailable(
                "the writer answered another request",
            )),
        }
    };
}
pub(crate) use expect_done;

/// What caused a ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerKind {
    /// An event's own points.
    Event,
    /// An achievement's one-off bonus.
    AchievementBonus,
    /// Points the user spent.
    Spend,
    /// Points a reward redemption cost.
    Redemption,
    /// A cancelled redemption's points, returned.
    Refund,
    /// Points that expired unspent.
    Expiry,
    /// A correction by an admin, either way.
    Adjustment,
}

impl LedgerKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [LedgerKind; 7] = [
        LedgerKind::Event,
        LedgerKind::AchievementBonus,
        LedgerKind::Spend,
        LedgerKind::Redemption,
        LedgerKind::Refund,
        LedgerKind::Expiry,
        LedgerKind::Adjustment,
    ];

    /// As stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Event => "event",
            LedgerKind::AchievementBonus => "achievement_bonus",
            LedgerKind::Spend => "spend",
            LedgerKind::Redemption => "redemption",
            LedgerKind::Refund => "refund",
            LedgerKind::Expiry => "expiry",
            LedgerKind::Adjustment => "adjustment",
        }
    }

    /// Parses [`LedgerKind::as_str`].
    pub fn parse(text: &str) -> Result<LedgerKind, StoreError> {
        LedgerKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| crate::corrupt("ledger kind", text))
    }

    /// Whether a credit of this kind is earned, and so raises lifetime
    /// points too. Event points and bonuses are; a refund only returns what
    /// was spent; an adjustment in the user's favour counts as earned.
    pub fn earns(self) -> bool {
        matches!(
            self,
            LedgerKind::Event | LedgerKind::AchievementBonus | LedgerKind::Adjustment
        )
    }
}

/// One stored ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerRecord {
    /// Its position in the whole ledger; later entries have higher numbers.
    pub seq: i64,
    /// Whose points moved.
    pub user_id: String,
    /// What moved them.
    pub kind: LedgerKind,
    /// The change to the spendable balance (negative for spending).
    pub amount: Points,
    /// The spendable balance right after it.
    pub balance_after: Points,
    /// Lifetime points right after it.
    pub lifetime_after: Points,
    /// The id of what caused it: an event (`evt_…`, or `evt_…/achievement`
    /// for a bonus), a movement (`spd_…`, `adj_…`) or a redemption (`red_…`).
    pub reference: String,
    /// When it was written (Unix ms).
    pub created_at_ms: i64,
    /// The rules version of the event it comes from (`event` and
    /// `achievement_bonus` entries); `None` for the others.
    pub rules_version: Option<u32>,
}

/// A page of a user's ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerPage {
    /// The entries.
    pub entries: Vec<LedgerRecord>,
    /// Pass as `before` for the next, older page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

impl LedgerPage {
    /// A page from up to `limit + 1` entries, newest first.
    pub fn from_overfetch(mut entries: Vec<LedgerRecord>, limit: u32) -> LedgerPage {
        let next_cursor = if entries.len() > limit as usize {
            entries.truncate(limit as usize);
            entries.last().map(|e| e.seq)
        } else {
            None
        };
        LedgerPage {
            entries,
            next_cursor,
        }
    }
}

/// A spend or an admin adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// The user spent points (`amount` is negative).
    Spend,
    /// An admin corrected the balance, either way.
    Adjustment,
}

impl MovementKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        self.ledger_kind().as_str()
    }

    /// The ledger kind it writes.
    pub fn ledger_kind(self) -> LedgerKind {
        match self {
            MovementKind::Spend => LedgerKind::Spend,
            MovementKind::Adjustment => LedgerKind::Adjustment,
        }
    }

    /// Parses [`MovementKind::as_str`].
    pub fn parse(text: &str) -> Result<MovementKind, StoreError> {
        match text {
            "spend" => Ok(MovementKind::Spend),
            "adjustment" => Ok(MovementKind::Adjustment),
            other => Err(crate::corrupt("movement kind", other)),
        }
    }
}

/// A validated request to move a user's points outside events.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMovement {
    /// Its id (`spd_…` or `adj_…`), chosen by the caller.
    pub id: String,
    /// Whose points.
    pub user_id: UserId,
    /// Spend or adjustment.
    pub kind: MovementKind,
    /// The change to the balance: negative for a spend; non-zero.
    pub amount: Points,
    /// Why, as the caller put it.
    pub reason: String,
    /// A JSON object as text, if any.
    pub metadata: Option<String>,
    /// When it was asked (Unix ms).
    pub created_at_ms: i64,
    /// The idempotency key and the request's fingerprint.
    pub idempotency: Option<Idempotency>,
}

/// A stored movement.
#[derive(Debug, Clone, PartialEq)]
pub struct Movement {
    /// `spd_…` or `adj_…`.
    pub id: String,
    /// Whose points.
    pub user_id: String,
    /// Spend or adjustment.
    pub kind: MovementKind,
    /// The change to the balance.
    pub amount: Points,
    /// Why.
    pub reason: String,
    /// Its metadata as JSON text.
    pub metadata: Option<String>,
    /// The spendable balance right after it.
    pub balance_after: Points,
    /// Lifetime points right after it.
    pub lifetime_after: Points,
    /// When it was written (Unix ms).
    pub created_at_ms: i64,
}

/// The outcome of [`crate::Store::move_points`].
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    /// The movement: new, or the original for a replayed key.
    pub movement: Movement,
    /// True when the key had been used with the same request before.
    pub replayed: bool,
}

/// A reward as an admin describes it; the store adds what it counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewardDraft {
    /// Its id, chosen by the admin.
    pub id: String,
    /// Name in Finnish.
    pub name_fi: String,
    /// Name in English.
    pub name_en: String,
    /// What the user gets.
    pub description: String,
    /// What one redemption costs (zero is allowed: a free reward).
    pub cost: Points,
    /// Units in all; `None`: unlimited.
    pub stock: Option<u32>,
    /// Redemptions one user may hold; `None`: no limit.
    pub per_user_limit: Option<u32>,
    /// Redeemable from (Unix ms, inclusive).
    pub available_from_ms: Option<i64>,
    /// Redeemable until (Unix ms, exclusive).
    pub available_until_ms: Option<i64>,
    /// Offered to users.
    pub active: bool,
    /// When the admin saved it (Unix ms).
    pub saved_at_ms: i64,
}

/// A reward in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reward {
    /// What the admin set.
    pub draft: RewardDraft,
    /// Units taken by redemptions not cancelled (those of erased users
    /// included).
    pub redeemed: u32,
    /// Of those, units received by users since erased: taken, but with no
    /// redemption left (see [`crate::erasure`]).
    pub erased_units: u32,
    /// When it was created (Unix ms).
    pub created_at_ms: i64,
}

impl Reward {
    /// What decides whether it can be redeemed.
    pub fn terms(&self) -> RewardTerms {
        let d = &self.draft;
        RewardTerms {
            cost: d.cost,
            stock: d.stock,
            redeemed: self.redeemed,
            per_user_limit: d.per_user_limit,
            available_from_ms: d.available_from_ms,
            available_until_ms: d.available_until_ms,
            active: d.active,
        }
    }
}

/// Where a redemption stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RedemptionStatus {
    /// Paid for, waiting for an admin.
    Pending,
    /// Handed over.
    Fulfilled,
    /// Called off: its points were refunded and its unit returned.
    Cancelled,
}

impl RedemptionStatus {
    /// As stored and on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RedemptionStatus::Pending => "pending",
            RedemptionStatus::Fulfilled => "fulfilled",
            RedemptionStatus::Cancelled => "cancelled",
        }
    }

    /// Parses [`RedemptionStatus::as_str`].
    pub fn parse(text: &str) -> Option<RedemptionStatus> {
        [
            RedemptionStatus::Pending,
            RedemptionStatus::Fulfilled,
            RedemptionStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A validated request to redeem a reward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRedemption {
    /// Its id (`red_…`), chosen by the caller.
    pub id: String,
    /// The reward.
    pub reward_id: String,
    /// Who redeems it.
    pub user_id: UserId,
    /// When it was asked (Unix ms).
    pub created_at_ms: i64,
    /// The idempotency key and the request's fingerprint.
    pub idempotency: Option<Idempotency>,
}

/// A stored redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    /// `red_…`
    pub id: String,
    /// The reward.
    pub reward_id: String,
    /// Who redeemed it.
    pub user_id: String,
    /// What it cost (zero for a grant).
    pub cost: Points,
    /// Where it stands.
    pub status: RedemptionStatus,
    /// For a free grant, what granted it: `evt_…/achievement`.
    pub granted_by: Option<String>,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
    /// When its status last changed (Unix ms).
    pub updated_at_ms: i64,
}

/// The outcome of [`crate::Store::redeem`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    /// The redemption: new, or the original for a replayed key.
    pub redemption: Redemption,
    /// True when the key had been used with the same request before.
    pub replayed: bool,
}

/// An admin's decision on a pending redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    /// The redemption.
    pub redemption_id: String,
    /// `Fulfilled` or `Cancelled`.
    pub to: RedemptionStatus,
    /// When (Unix ms).
    pub at_ms: i64,
}

/// A request to expire what is due of one user's points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    /// Whose points.
    pub user_id: UserId,
    /// Points credited before this instant are due ([`gamify_core::Expiry::cutoff_ms`]).
    pub cutoff_ms: i64,
    /// When (Unix ms).
    pub at_ms: i64,
    /// What the user was credited since the cutoff, as the writer read it
    /// under the user's serialisation; filled in by the backend.
    pub credited_since: Option<Points>,
}

/// The ledger entries that credit points (the ones that can expire), as an
/// SQL condition on `ledger`: events, bonuses, refunds and adjustments in
/// the user's favour.
pub const CREDIT_SQL: &str = "(kind IN ('event', 'achievement_bonus', 'refund')
                               OR (kind = 'adjustment' AND amount_milli > 0))";

/// Whether a ledger entry credits points (see [`CREDIT_SQL`]).
pub fn is_credit(entry: &LedgerEntry) -> bool {
    match entry.kind {
        LedgerKind::Event | LedgerKind::AchievementBonus | LedgerKind::Refund => true,
        LedgerKind::Adjustment => entry.amount > Points::ZERO,
        _ => false,
    }
}

/// Expires what is due of a user's points: everything held beyond what was
/// credited since the cutoff (see [`gamify_core::Expiry`]). `None` when
/// nothing is due.
pub fn plan_expiry(
    before: Option<UserSnapshot>,
    credited_since: Points,
    at_ms: i64,
) -> Result<Option<(UserSnapshot, LedgerEntry)>, StoreError> {
    let mut after = before.unwrap_or_default();
    let due = gamify_core::Expiry::due(after.state.total, credited_since);
    if due == Points::ZERO {
        return Ok(None);
    }
    let amount = Points::from_milli(-due.milli());
    move_points(&mut after, LedgerKind::Expiry, amount)?;
    let day = crate::economy::utc_date(at_ms);
    let ledger = entry(&after, LedgerKind::Expiry, amount, &format!("expiry/{day}"));
    Ok(Some((after, ledger)))
}

/// `YYYY-MM-DD` of a Unix ms instant, UTC (civil-from-days).
pub fn utc_date(ms: i64) -> String {
    let z = ms.div_euclid(86_400_000) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The instant `ms` as the API writes times: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn utc_timestamp(ms: i64) -> String {
    let in_day = ms.rem_euclid(86_400_000);
    format!(
        "{}T{:02}:{:02}:{:02}.{:03}Z",
        utc_date(ms),
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1_000 % 60,
        in_day % 1_000
    )
}

/// Applies one non-event ledger movement to a user's state: the same
/// arithmetic when a request is planned and when the SQLite log is replayed.
/// A debit beyond the balance is refused; the version grows by one.
pub fn move_points(
    after: &mut UserSnapshot,
    kind: LedgerKind,
    amount: Points,
) -> Result<(), StoreError> {
    if amount < Points::ZERO {
        debit(&mut after.state, Points::from_milli(-amount.milli()))
            .map_err(StoreError::Refused)?;
    } else {
        credit(&mut after.state, amount, kind.earns())?;
    }
    after.version += 1;
    Ok(())
}

fn entry(after: &UserSnapshot, kind: LedgerKind, amount: Points, reference: &str) -> LedgerEntry {
    LedgerEntry {
        kind,
        amount,
        balance_after: after.state.total,
        lifetime_after: after.state.lifetime,
        reference: reference.to_owned(),
        rules_version: None,
    }
}

/// A movement for a user whose state is `before`: the record, the state
/// after it and its ledger entry; or why it is refused.
pub fn plan_movement(
    before: Option<UserSnapshot>,
    m: &NewMovement,
) -> Result<(Movement, UserSnapshot, LedgerEntry), StoreError> {
    let mut after = before.unwrap_or_default();
    let kind = m.kind.ledger_kind();
    move_points(&mut after, kind, m.amount)?;
    let record = Movement {
        id: m.id.clone(),
        user_id: m.user_id.as_str().to_owned(),
        kind: m.kind,
        amount: m.amount,
        reason: m.reason.clone(),
        metadata: m.metadata.clone(),
        balance_after: after.state.total,
        lifetime_after: after.state.lifetime,
        created_at_ms: m.created_at_ms,
    };
    let ledger = entry(&after, kind, m.amount, &m.id);
    Ok((record, after, ledger))
}

/// Whether `draft` may be saved over `existing` (`create`: it must not
/// exist; else it must), and what the saved reward keeps of the old one:
/// its redeemed count (the new stock may not be below it) and creation time.
pub fn plan_save_reward(
    existing: Option<&Reward>,
    draft: &RewardDraft,
    create: bool,
) -> Result<Reward, StoreError> {
    match (existing, create) {
        (Some(_), true) => return Err(StoreError::AlreadyExists("reward")),
        (None, false) => return Err(StoreError::NotFound("reward")),
        _ => {}
    }
    let redeemed = existing.map_or(0, |r| r.redeemed);
    if draft.stock.is_some_and(|stock| stock < redeemed) {
        return Err(StoreError::StockBelowRedeemed(redeemed));
    }
    Ok(Reward {
        draft: draft.clone(),
        redeemed,
        erased_units: existing.map_or(0, |r| r.erased_units),
        created_at_ms: existing.map_or(draft.saved_at_ms, |r| r.created_at_ms),
    })
}

/// What a redemption does once allowed.
#[derive(Debug)]
pub struct PlannedRedemption {
    /// The new redemption, pending.
    pub redemption: Redemption,
    /// The user's state after paying, and the ledger entry; `None` for a
    /// free one, which moves no points.
    pub payment: Option<(UserSnapshot, LedgerEntry)>,
}

/// Redeems `reward` for a user whose state is `before` and who holds `held`
/// redemptions of it, at `now_ms`. A grant (`granted_by`) is free. Checks
/// the reward (active, window, stock, per-user limit) and then the balance.
pub fn plan_redemption(
    before: Option<UserSnapshot>,
    reward: &Reward,
    held: u32,
    id: &str,
    user_id: &str,
    granted_by: Option<&str>,
    now_ms: i64,
) -> Result<PlannedRedemption, StoreError> {
    reward
        .terms()
        .check(held, now_ms)
        .map_err(StoreError::Refused)?;
    let cost = if granted_by.is_some() {
        Points::ZERO
    } else {
        reward.draft.cost
    };
    let payment = if cost > Points::ZERO {
        let mut after = before.unwrap_or_default();
        let amount = Points::from_milli(-cost.milli());
        move_points(&mut after, LedgerKind::Redemption, amount)?;
        let ledger = entry(&after, LedgerKind::Redemption, amount, id);
        Some((after, ledger))
    } else {
        None
    };
    Ok(PlannedRedemption {
        redemption: Redemption {
            id: id.to_owned(),
            reward_id: reward.draft.id.clone(),
            user_id: user_id.to_owned(),
            cost,
            status: RedemptionStatus::Pending,
            granted_by: granted_by.map(str::to_owned),
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
        },
        payment,
    })
}

/// What settling a redemption does.
#[derive(Debug)]
pub struct PlannedSettle {
    /// The redemption as it stands afterwards.
    pub redemption: Redemption,
    /// Whether anything is written: false when it already had that status.
    pub changed: bool,
    /// For a cancellation: the unit goes back to the reward's stock.
    pub returns_unit: bool,
    /// For a cancellation of a paid redemption: the user's state after the
    /// refund, and its ledger entry.
    pub refund: Option<(UserSnapshot, LedgerEntry)>,
}

/// Settles `current` as `settle` asks, for a user whose state is `before`.
/// Only a pending redemption moves; asking again for the status it already
/// has changes nothing (so a retried request is safe); anything else is
/// [`StoreError::RedemptionClosed`].
pub fn plan_settle(
    current: &Redemption,
    before: Option<UserSnapshot>,
    settle: &Settle,
) -> Result<PlannedSettle, StoreError> {
    if current.status == settle.to {
        return Ok(PlannedSettle {
            redemption: current.clone(),
            changed: false,
            returns_unit: false,
            refund: None,
        });
    }
    if current.status != RedemptionStatus::Pending || settle.to == RedemptionStatus::Pending {
        return Err(StoreError::RedemptionClosed(current.status));
    }
    let mut redemption = current.clone();
    redemption.status = settle.to;
    redemption.updated_at_ms = settle.at_ms;
    let cancelled = settle.to == RedemptionStatus::Cancelled;
    let refund = if cancelled && current.cost > Points::ZERO {
        let mut after = before.unwrap_or_default();
        move_points(&mut after, LedgerKind::Refund, current.cost)?;
        let ledger = entry(&after, LedgerKind::Refund, current.cost, &current.id);
        Some((after, ledger))
    } else {
        None
    };
    Ok(PlannedSettle {
        redemption,
        changed: true,
        returns_unit: cancelled,
        refund,
    })
}

/// The id of the free redemption an event's achievement granted: derived
/// from both, so that it is the same on every attempt.
pub fn grant_id(event_id: &str, achievement: gamify_core::AchievementId) -> String {
    let tail = event_id.strip_prefix("evt_").unwrap_or(event_id);
    format!("red_{tail}_{}", achievement.as_str())
}

/// Answers a request whose idempotency key was used before: the original
/// if `stored_fingerprint` matches, else a conflict.
pub fn replay<T>(
    stored_fingerprint: Option<&str>,
    idempotency: &Idempotency,
    original: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if stored_fingerprint != Some(idempotency.fingerprint.as_str()) {
        return Err(StoreError::IdempotencyConflict);
    }
    original()
}

/// Whether the error is one a request is refused with (nothing written),
/// as opposed to a failure of the store.
pub fn is_refusal(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Refused(_)
            | StoreError::IdempotencyConflict
            | StoreError::NotFound(_)
            | StoreError::AlreadyExists(_)
            | StoreError::RedemptionClosed(_)
            | StoreError::StockBelowRedeemed(_)
            | StoreError::Rule(_)
            | StoreError::Erased
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1_760_265_000_000), "2025-10-12");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_date(-1), "1969-12-31");
    }
}
