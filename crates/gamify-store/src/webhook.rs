//! Outbound webhooks: which changes are worth telling an app about
//! ([`Notice`]), who wants them ([`Subscription`]), and the outbox of
//! [`Delivery`] rows that the writers fill **in the same transaction** as
//! the change that caused them, so nothing is announced for a change that
//! rolled back and nothing is lost when the process dies.
//!
//! Every backend calls [`notices`] after planning a write and [`fan_out`]
//! with the subscriptions it knows; the delivery worker (in the `gamify`
//! crate) sends what is due and records each attempt with
//! [`crate::Store::delivery_attempted`].

use gamify_core::{Day, Points, RuleSet};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::economy::{Done, MovementKind, Op};
use crate::{StoreError, UserSnapshot};

/// What a subscription can ask to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// An event unlocked an achievement.
    AchievementUnlocked,
    /// Lifetime points crossed into a higher level.
    LevelUp,
    /// The first event of a day made the current streak (2 days or more)
    /// one day longer.
    StreakExtended,
    /// A streak of 2 days or more ended: the day after its last day passed
    /// without an event (sent shortly after midnight UTC).
    StreakBroken,
    /// A streak is alive but has no event yet today, past the configured
    /// hour (UTC); sent once a day.
    StreakAtRisk,
    /// A user spent points.
    PointsSpent,
    /// A user redeemed a reward (grants by achievements included).
    RewardRedeemed,
    /// An event was recorded (what forwarding to `GAMIFY_EXTERNAL_API`
    /// sends).
    EventRecorded,
}

impl Topic {
    /// Every topic, in the order they are documented.
    pub const ALL: [Topic; 8] = [
        Topic::AchievementUnlocked,
        Topic::LevelUp,
        Topic::StreakExtended,
        Topic::StreakBroken,
        Topic::StreakAtRisk,
        Topic::PointsSpent,
        Topic::RewardRedeemed,
        Topic::EventRecorded,
    ];

    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::AchievementUnlocked => "achievement.unlocked",
            Topic::LevelUp => "level.up",
            Topic::StreakExtended => "streak.extended",
            Topic::StreakBroken => "streak.broken",
            Topic::StreakAtRisk => "streak.at_risk",
            Topic::PointsSpent => "points.spent",
            Topic::RewardRedeemed => "reward.redeemed",
            Topic::EventRecorded => "event.recorded",
        }
    }

    /// The topic with this wire name.
    pub fn parse(text: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// A set of topics: those some subscription wants, so that a write builds
/// only the notices someone will receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Topics(u16);

impl Topics {
    /// Every topic any of `subscriptions` wants.
    pub fn of(subscriptions: &[Subscription]) -> Topics {
        let mut set = Topics::default();
        for t in subscriptions.iter().flat_map(|s| &s.topics) {
            set.0 |= Topics::bit(*t);
        }
        set
    }

    /// Whether `topic` is in the set.
    pub fn has(self, topic: Topic) -> bool {
        self.0 & Topics::bit(topic) != 0
    }

    fn bit(topic: Topic) -> u16 {
        1 << Topic::ALL.iter().position(|t| *t == topic).unwrap_or(0)
    }
}

/// The end of both backends' `INSERT` of a subscription, for when its id
/// is taken: a deleted subscription comes back as the new one (from now on;
/// its log is kept), a live one is left as it is (no row changes, and the
/// caller is told it exists). Only a forwarding subscription, whose id comes
/// from its settings, can meet either.
pub(crate) const REVIVE: &str = "ON CONFLICT (id) DO UPDATE SET url = excluded.url,
     topics = excluded.topics, secret = excluded.secret, description = excluded.description,
     created_at = excluded.created_at, deleted_at = NULL
     WHERE webhook_subscriptions.deleted_at IS NOT NULL";

/// Topics as stored: wire names joined by commas.
pub fn encode_topics(topics: &[Topic]) -> String {
    topics
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The inverse of [`encode_topics`].
pub fn decode_topics(text: &str) -> Result<Vec<Topic>, StoreError> {
    text.split(',')
        .map(|t| Topic::parse(t).ok_or_else(|| crate::corrupt("webhook topic", t)))
        .collect()
}

/// Where and what to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `whk_…`
    pub id: String,
    /// The receiver (`http://` or `https://`).
    pub url: String,
    /// What it hears about.
    pub topics: Vec<Topic>,
    /// The HMAC-SHA256 key that signs its deliveries.
    pub secret: String,
    /// The admin's note.
    pub description: String,
    /// When it was made (Unix ms).
    pub created_at_ms: i64,
}

impl Subscription {
    /// Whether it hears about `topic`.
    pub fn wants(&self, topic: Topic) -> bool {
        self.topics.contains(&topic)
    }
}

/// A change worth telling about, before it is addressed to anyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// What happened.
    pub topic: Topic,
    /// To whom (erasing them removes their deliveries).
    pub user_id: String,
    /// Names the change uniquely and the same way every time it is
    /// planned (`evt_…/level.up`), so a retried batch cannot add a second
    /// delivery.
    pub key: String,
    /// The delivery's `data` object, as JSON text.
    pub data: String,
    /// When it was noticed (Unix ms): the delivery's `created_at`.
    pub at_ms: i64,
    /// When the change itself happened (Unix ms), the same every time it is
    /// planned: the creation time of the record it tells about. A
    /// delivery's id starts with it (see [`delivery_id`]). `None` for the
    /// streak notices, which every node's hourly sweep plans anew: their
    /// ids stay the hash alone, as versions before this one made them, so
    /// that during a rolling upgrade old and new nodes make one id.
    pub changed_at_ms: Option<i64>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every attempt failed; an admin may replay it.
    Failed,
    /// Its subscription was deleted before it was delivered.
    Cancelled,
}

impl DeliveryStatus {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// The status with this wire name.
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Delivered,
            DeliveryStatus::Failed,
            DeliveryStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One notice addressed to one subscription: a row of the outbox, and of
/// the delivery log admins read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its place in the outbox: the paging cursor (newest first).
    pub seq: i64,
    /// `dlv_…`, the same on every attempt (receivers deduplicate by it).
    pub id: String,
    /// The subscription it goes to.
    pub subscription_id: String,
    /// What happened.
    pub topic: Topic,
    /// To whom.
    pub user_id: String,
    /// The `data` object, as JSON text.
    pub data: String,
    /// When the change happened (Unix ms).
    pub created_at_ms: i64,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is (or was last) due (Unix ms).
    pub next_attempt_at_ms: i64,
    /// When it was last tried (Unix ms).
    pub last_attempt_at_ms: Option<i64>,
    /// The HTTP status of the last attempt, if the receiver answered.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// A delivery to send now, with where and how to sign it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The delivery.
    pub delivery: Delivery,
    /// Its subscription's receiver; `None` if the subscription was deleted
    /// (a delivery a node wrote as it was being deleted, or a replay): the
    /// worker cancels it.
    pub url: Option<String>,
    /// Its subscription's signing key.
    pub secret: String,
}

/// The outcome of one attempt, as the worker decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery tried.
    pub id: String,
    /// When (Unix ms).
    pub at_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<u16>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// `Delivered`, `Pending` (to try again at `next_attempt_at_ms`) or
    /// `Failed` (no attempts left).
    pub status: DeliveryStatus,
    /// When to try again, for `Pending`.
    pub next_attempt_at_ms: i64,
}

/// The one id a notice has at one subscription: a retried batch (or
/// another node's sweep) plans the same notice again and finds its delivery
/// already there. `dlv_`, then the change's time in 12 hex digits (if it
/// has one), then 24 of a hash of the subscription and the notice's key.
/// The time first makes the ids a node writes go up, so the outbox's
/// unique index on them grows at its end instead of taking a write on a
/// random page for every delivery (docs/BENCHMARKS.md, "Ordered delivery
/// ids").
pub fn delivery_id(subscription_id: &str, notice_key: &str, changed_at_ms: Option<i64>) -> String {
    let digest = Sha256::new()
        .chain_update(subscription_id.as_bytes())
        .chain_update([0u8])
        .chain_update(notice_key.as_bytes())
        .finalize();
    match changed_at_ms {
        Some(ms) => format!(
            "dlv_{:012x}{}",
            ms.clamp(0, 0xffff_ffff_ffff),
            crate::hex(&digest[..12])
        ),
        None => format!("dlv_{}", crate::hex(&digest[..12])),
    }
}

/// The notices addressed to every subscription that wants them, as new
/// pending deliveries due at once (`seq` is assigned by the backend).
pub fn fan_out(notices: &[Notice], subscriptions: &[Subscription]) -> Vec<Delivery> {
    let mut out = Vec::new();
    for notice in notices {
        for sub in subscriptions.iter().filter(|s| s.wants(notice.topic)) {
            out.push(Delivery {
                seq: 0,
                id: delivery_id(&sub.id, &notice.key, notice.changed_at_ms),
                subscription_id: sub.id.clone(),
                topic: notice.topic,
                user_id: notice.user_id.clone(),
                data: notice.data.clone(),
                created_at_ms: notice.at_ms,
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at_ms: notice.at_ms,
                last_attempt_at_ms: None,
                last_status: None,
                last_error: None,
            });
        }
    }
    out
}

/// What [`notices`] needs of a user's state from before a write: taken
/// before planning it, since planning replaces the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Before {
    lifetime: Points,
    /// For an event: whether its day was already active.
    day_active: bool,
}

impl Before {
    /// What matters of `state` (`None`: a new user) for `op`.
    pub fn of(op: &Op, state: Option<&UserSnapshot>) -> Before {
        let Some(state) = state else {
            return Before {
                lifetime: Points::ZERO,
                day_active: false,
            };
        };
        let day_active = match op {
            Op::Event(e) => {
                let day = Day::from_unix_millis(e.occurred_at_ms);
                state
                    .state
                    .runs
                    .runs()
                    .iter()
                    .any(|&(first, last)| first <= day && day <= last)
            }
            _ => false,
        };
        Before {
            lifetime: state.state.lifetime,
            day_active,
        }
    }
}

/// The notices a planned write gives, of the topics `wanted`: `before` as
/// taken by [`Before::of`], `after` the user's state once it is planned,
/// `done` its outcome. A replayed request gives none (it changed nothing).
/// Names and levels come from `book`: an event's from the version it was
/// scored with, anything else's from the current version.
pub fn notices(
    before: Before,
    after: Option<&UserSnapshot>,
    done: &Done,
    wanted: Topics,
    book: &crate::RuleBook,
) -> Vec<Notice> {
    let mut out = Vec::new();
    let rules = match done {
        Done::Event(recorded) => book.get(recorded.event.rules_version),
        _ => None,
    }
    .unwrap_or_else(|| book.current())
    .rules
    .clone();
    match done {
        Done::Event(recorded) if !recorded.replayed => {
            let e = &recorded.event;
            let notice = |topic: Topic, key: String, data: serde_json::Value| Notice {
                topic,
                user_id: e.user_id.clone(),
                key,
                data: data.to_string(),
                at_ms: e.created_at_ms,
                changed_at_ms: Some(e.created_at_ms),
            };
            if wanted.has(Topic::EventRecorded) {
                out.push(notice(
                Topic::EventRecorded,
                format!("{}/recorded", e.id),
                json!({
                    "event_id": e.id,
                    "user_id": e.user_id,
                    "category": e.category.as_str(),
                    "action": e.action,
                    "value": e.value.as_points().to_f64(),
                    "metadata": e.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()),
                    "occurred_at": crate::economy::utc_timestamp(e.occurred_at_ms),
                    "points": e.points.to_f64(),
                }),
            ));
            }
            for (achievement, bonus) in e
                .unlocked
                .iter()
                .filter(|_| wanted.has(Topic::AchievementUnlocked))
            {
                let def = rules.achievement(*achievement);
                out.push(notice(
                    Topic::AchievementUnlocked,
                    format!("{}/achievement/{}", e.id, achievement.as_str()),
                    json!({
                        "user_id": e.user_id,
                        "achievement": {
                            "id": achievement.as_str(),
                            "name_fi": def.map(|d| d.name.fi.as_str()),
                            "name_en": def.map(|d| d.name.en.as_str()),
                        },
                        "bonus_points": bonus.to_f64(),
                        "event_id": e.id,
                    }),
                ));
            }
            let day = Day::from_unix_millis(e.occurred_at_ms);
            let latest = after.and_then(|a| a.state.runs.last_day()) == Some(day);
            if e.streak_day >= 2
                && !before.day_active
                && latest
                && wanted.has(Topic::StreakExtended)
            {
                let best = after.map_or(e.streak_day, |a| a.state.best_streak);
                out.push(notice(
                    Topic::StreakExtended,
                    format!("{}/streak", e.id),
                    json!({
                        "user_id": e.user_id,
                        "streak_days": e.streak_day,
                        "best_streak": best,
                        "bonus_percent": e.bonus_percent,
                        "day": crate::economy::utc_date(e.occurred_at_ms),
                        "event_id": e.id,
                    }),
                ));
            }
            if let Some(n) = level_up(&rules, before.lifetime, e.lifetime_after, &e.id, &e.user_id)
                .filter(|_| wanted.has(Topic::LevelUp))
            {
                out.push(Notice {
                    at_ms: e.created_at_ms,
                    changed_at_ms: Some(e.created_at_ms),
                    ..n
                });
            }
        }
        Done::Move(moved) if !moved.replayed => {
            let m = &moved.movement;
            if m.kind == MovementKind::Spend && wanted.has(Topic::PointsSpent) {
                out.push(Notice {
                    topic: Topic::PointsSpent,
                    user_id: m.user_id.clone(),
                    key: format!("{}/spent", m.id),
                    data: json!({
                        "user_id": m.user_id,
                        "spend_id": m.id,
                        "points": Points::from_milli(-m.amount.milli()).to_f64(),
                        "reason": m.reason,
                        "total_points": m.balance_after.to_f64(),
                    })
                    .to_string(),
                    at_ms: m.created_at_ms,
                    changed_at_ms: Some(m.created_at_ms),
                });
            }
            if let Some(n) = level_up(&rules, before.lifetime, m.lifetime_after, &m.id, &m.user_id)
                .filter(|_| wanted.has(Topic::LevelUp))
            {
                out.push(Notice {
                    at_ms: m.created_at_ms,
                    changed_at_ms: Some(m.created_at_ms),
                    ..n
                });
            }
        }
        Done::Redeem(redeemed) if !redeemed.replayed && wanted.has(Topic::RewardRedeemed) => {
            out.push(redeemed_notice(&redeemed.redemption, after));
        }
        _ => {}
    }
    out
}

/// A `reward.redeemed` notice (also for a reward an achievement granted).
pub fn redeemed_notice(r: &crate::Redemption, after: Option<&UserSnapshot>) -> Notice {
    Notice {
        topic: Topic::RewardRedeemed,
        user_id: r.user_id.clone(),
        key: format!("{}/redeemed", r.id),
        data: json!({
            "user_id": r.user_id,
            "redemption_id": r.id,
            "reward_id": r.reward_id,
            "cost": r.cost.to_f64(),
            "status": r.status.as_str(),
            "granted_by": r.granted_by,
            "total_points": after.map(|a| a.state.total.to_f64()),
        })
        .to_string(),
        at_ms: r.created_at_ms,
        changed_at_ms: Some(r.created_at_ms),
    }
}

fn level_up(
    rules: &RuleSet,
    before: Points,
    after: Points,
    reference: &str,
    user: &str,
) -> Option<Notice> {
    let (from, to) = (rules.level_for(before), rules.level_for(after));
    (to > from).then(|| Notice {
        topic: Topic::LevelUp,
        user_id: user.to_owned(),
        key: format!("{reference}/level/{to}"),
        data: json!({
            "user_id": user,
            "level": to,
            "previous_level": from,
            "lifetime_points": after.to_f64(),
            "next_level_points": rules.next_level_points(to).to_f64(),
            "reference": reference,
        })
        .to_string(),
        at_ms: 0,
        changed_at_ms: None,
    })
}

/// A `streak.broken` notice: the user's streak of `streak_days` ended on
/// `last_day`, and the day after passed without an event.
pub fn streak_broken(user_id: &str, streak_days: u32, last_day: Day, at_ms: i64) -> Notice {
    let last = crate::economy::utc_date(last_day.0 * 86_400_000);
    Notice {
        topic: Topic::StreakBroken,
        user_id: user_id.to_owned(),
        key: format!("{user_id}/{last}/streak.broken"),
        data: json!({
            "user_id": user_id,
            "streak_days": streak_days,
            "last_active_day": last,
        })
        .to_string(),
        at_ms,
        changed_at_ms: None,
    }
}

/// A `streak.at_risk` notice: the user's live streak of `streak_days` has
/// no event yet on `today`, with `hours_left` until it breaks.
pub fn streak_at_risk(
    user_id: &str,
    streak_days: u32,
    today: Day,
    hours_left: u32,
    at_ms: i64,
) -> Notice {
    let day = crate::economy::utc_date(today.0 * 86_400_000);
    Notice {
        topic: Topic::StreakAtRisk,
        user_id: user_id.to_owned(),
        key: format!("{user_id}/{day}/streak.at_risk"),
        data: json!({
            "user_id": user_id,
            "streak_days": streak_days,
            "day": day,
            "hours_left": hours_left,
        })
        .to_string(),
        at_ms,
        changed_at_ms: None,
    }
}

/// When to try a delivery again after `attempts` failures: `base_ms`
/// doubled per earlier failure, at most `max_ms`.
pub fn backoff_ms(attempts: u32, base_ms: i64, max_ms: i64) -> i64 {
    let doublings = attempts.saturating_sub(1).min(30);
    base_ms.saturating_mul(1 << doublings).min(max_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip_and_unknown_ones_are_corrupt() {
        let all = encode_topics(&Topic::ALL);
        assert_eq!(decode_topics(&all).unwrap(), Topic::ALL);
        assert!(decode_topics("level.up,nope").is_err());
    }

    #[test]
    fn a_notice_has_one_id_per_subscription() {
        let t = Some(1_760_000_000_000);
        let a = delivery_id("whk_1", "evt_1/level/2", t);
        assert_eq!(a, delivery_id("whk_1", "evt_1/level/2", t));
        assert_ne!(a, delivery_id("whk_2", "evt_1/level/2", t));
        assert_ne!(a, delivery_id("whk_1", "evt_1/level/3", t));
        assert!(a.starts_with("dlv_0199c") && a.len() == 40, "{a}");
        // Without a time (the streak sweeps), the id earlier versions made
        // for the same notice: a rolling upgrade sends nothing twice.
        let swept = delivery_id("whk_1", "user_1/2026-12-06/streak.at_risk", None);
        assert_eq!(swept, "dlv_2697df7442ee6a5488ef4552");
    }

    #[test]
    fn delivery_ids_sort_by_the_time_of_their_change() {
        // Whatever the hashes, a later change's delivery sorts after: the
        // outbox's unique index grows at its end.
        let mut ids: Vec<String> = (0..1000)
            .map(|i| {
                delivery_id(
                    "whk_1",
                    &format!("evt_{}/recorded", 999 - i),
                    Some(1_000 + i),
                )
            })
            .collect();
        let made = ids.clone();
        ids.sort();
        assert_eq!(ids, made);
        assert!(delivery_id("whk_1", "k", Some(-5)).starts_with("dlv_000000000000"));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let b: Vec<i64> = (1..=6).map(|n| backoff_ms(n, 1_000, 10_000)).collect();
        assert_eq!(b, [1_000, 2_000, 4_000, 8_000, 10_000, 10_000]);
        assert_eq!(backoff_ms(200, 1_000, 3_600_000), 3_600_000);
    }
}
