//! The invariants of stored data, and the queries that look for breaches.
//! Both backends run the same SQL (standard window functions and joins) on
//! one consistent snapshot, and report what they find the same way.
//!
//! What must hold:
//! - **Ledger chain.** Within each user's entries, in order, every entry's
//!   `balance_after` is the running sum of the amounts, never negative, and
//!   `lifetime_after` the running sum of the earned amounts.
//! - **Balances equal the ledger.** Each user's `total_points` is the sum of
//!   their ledger, and `lifetime_points` the sum of what they earned; every
//!   user with entries has a row and the reverse.
//! - **Events.** A user's event count is the number of their events, and
//!   every event (and every spend and adjustment) has its ledger entry.
//! - **No orphans.** Every ledger entry names an event, movement or
//!   redemption of the same user; every redemption names a reward; every
//!   user row has ledger entries and every user with entries a row.
//! - **Rewards.** A reward's redeemed count is the number of its redemptions
//!   not cancelled plus the units erased users had received, and never
//!   above its stock; every paid redemption has its
//!   ledger entry.
//! - **Indexes equal the data** (embedded backend): the per-user event and
//!   ledger indexes, the per-user webhook delivery index, and the
//!   leaderboard held in memory.
//!
//! Achievements implied by history and erased users staying erased need the
//! rules; the engine checks those (`src/verify.rs` of the `gamify` crate).

/// One breach of an invariant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it concerns: `user u1`, `reward r1`, `event evt_…`.
    pub subject: String,
    /// What differs, with both values.
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.subject, self.message)
    }
}

/// The most findings of each check reported; one is enough to fail.
pub const MAX_FINDINGS: i64 = 100;

/// The SQL expression for the part of a ledger amount that was earned.
const EARNED: &str = "CASE WHEN kind IN ('event', 'achievement_bonus')
                           OR (kind = 'adjustment' AND amount_milli > 0)
                      THEN amount_milli ELSE 0 END";

/// Each check: its query, returning (subject, detail) text pairs, one per
/// breach. `{EARNED}` and `{LIMIT}` are filled in by [`checks`].
const CHECKS: [(&str, &str); 9] = [
    (
        "ledger chain",
        "SELECT 'user ' || user_id, 'ledger entry ' || seq || ' says balance ' || balance_after_milli
                || '/1000 and lifetime ' || lifetime_after_milli || '/1000; the entries sum to '
                || running || '/1000 and ' || running_earned || '/1000'
         FROM (SELECT user_id, seq, balance_after_milli, lifetime_after_milli,
                      sum(amount_milli) OVER w AS running, sum({EARNED}) OVER w AS running_earned
               FROM ledger WINDOW w AS (PARTITION BY user_id ORDER BY seq)) chain
         WHERE balance_after_milli <> running OR lifetime_after_milli <> running_earned
            OR balance_after_milli < 0
         ORDER BY user_id, seq LIMIT {LIMIT}",
    ),
    // Both comparisons group one union instead of joining two aggregates:
    // SQLite runs a FULL OUTER JOIN of two grouped subqueries as a nested
    // loop (measured: quadratic, 400 s at 100k users), a GROUP BY in one pass.
    (
        "balances",
        "SELECT 'user ' || user_id,
                CASE WHEN sum(u_n) = 0 THEN 'has ledger entries but no row'
                     WHEN sum(l_n) = 0 THEN 'has a row but no ledger entry'
                     ELSE 'balance ' || sum(u_total) || '/1000 and lifetime ' || sum(u_lifetime)
                          || '/1000, but the ledger sums to ' || sum(l_total) || '/1000 and '
                          || sum(l_earned) || '/1000' END
         FROM (SELECT user_id, 1 AS u_n, 0 AS l_n, total_milli AS u_total,
                      lifetime_milli AS u_lifetime, 0 AS l_total, 0 AS l_earned FROM users
               UNION ALL
               SELECT user_id, 0, 1, 0, 0, amount_milli, {EARNED} FROM ledger) t
         GROUP BY user_id
         HAVING sum(u_n) = 0 OR sum(l_n) = 0
             OR sum(u_total) <> sum(l_total) OR sum(u_lifetime) <> sum(l_earned)
         ORDER BY 1 LIMIT {LIMIT}",
    ),
    (
        "event counts",
        "SELECT 'user ' || user_id,
                'event count ' || sum(counted) || ', but ' || sum(stored) || ' events are stored'
         FROM (SELECT user_id, event_count AS counted, 0 AS stored FROM users
               UNION ALL
               SELECT user_id, 0, 1 FROM events) t
         GROUP BY user_id
         HAVING sum(counted) <> sum(stored)
         ORDER BY 1 LIMIT {LIMIT}",
    ),
    (
        "event entries",
        "SELECT 'event ' || e.id, 'has no ledger entry of kind event'
         FROM events e LEFT JOIN ledger l ON l.kind = 'event' AND l.reference = e.id
         WHERE l.seq IS NULL
         ORDER BY 1 LIMIT {LIMIT}",
    ),
    // Counted rather than joined (the ledger has no index on `reference`);
    // with "ledger references" below, which finds each entry's movement,
    // equal counts mean every movement has its entry.
    (
        "movement entries",
        "SELECT 'movements', m.n || ' spends and adjustments, but ' || l.n
                || ' ledger entries of those kinds'
         FROM (SELECT count(*) AS n FROM movements) m,
              (SELECT count(*) AS n FROM ledger WHERE kind IN ('spend', 'adjustment')) l
         WHERE m.n <> l.n",
    ),
    // Orphans: rows that name something that is not there.
    (
        "ledger references",
        "SELECT 'ledger entry ' || l.seq, 'of kind ' || l.kind || ' names ' || l.reference
                || ', which user ' || l.user_id || ' does not have'
         FROM ledger l
         WHERE (l.kind = 'event'
                AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = l.reference AND e.user_id = l.user_id))
            OR (l.kind IN ('spend', 'adjustment')
                AND NOT EXISTS (SELECT 1 FROM movements m WHERE m.id = l.reference AND m.user_id = l.user_id))
            OR (l.kind IN ('redemption', 'refund')
                AND NOT EXISTS (SELECT 1 FROM redemptions d WHERE d.id = l.reference AND d.user_id = l.user_id))
         ORDER BY l.seq LIMIT {LIMIT}",
    ),
    (
        "redemption rewards",
        "SELECT 'redemption ' || d.id, 'names reward ' || d.reward_id || ', which does not exist'
         FROM redemptions d LEFT JOIN rewards r ON r.id = d.reward_id
         WHERE r.id IS NULL
         ORDER BY 1 LIMIT {LIMIT}",
    ),
    (
        "reward counts",
        "SELECT 'reward ' || r.id, 'redeemed count ' || r.redeemed || ' with stock '
                || coalesce(CAST(r.stock AS TEXT), 'unlimited') || ', and '
                || coalesce(x.n, 0) || ' redemptions not cancelled plus ' || r.erased_units
                || ' units of erased users'
         FROM rewards r
         LEFT JOIN (SELECT reward_id, count(*) AS n FROM redemptions
                    WHERE status <> 'cancelled' GROUP BY reward_id) x ON x.reward_id = r.id
         WHERE r.redeemed <> coalesce(x.n, 0) + r.erased_units
            OR r.redeemed > coalesce(r.stock, r.redeemed)
         ORDER BY 1 LIMIT {LIMIT}",
    ),
    (
        "redemption entries",
        "SELECT 'redemption ' || d.id, 'cost ' || d.cost_milli || '/1000 but the ledger holds '
                || coalesce(sum(CASE WHEN l.kind = 'redemption' THEN -l.amount_milli END), 0)
                || '/1000 for it, and refunds ' || coalesce(sum(CASE WHEN l.kind = 'refund' THEN l.amount_milli END), 0)
                || '/1000 while ' || d.status
         FROM redemptions d LEFT JOIN ledger l ON l.reference = d.id
         GROUP BY d.id, d.cost_milli, d.status
         HAVING coalesce(sum(CASE WHEN l.kind = 'redemption' THEN -l.amount_milli END), 0) <> d.cost_milli
             OR coalesce(sum(CASE WHEN l.kind = 'refund' THEN l.amount_milli END), 0)
                <> CASE WHEN d.status = 'cancelled' THEN d.cost_milli ELSE 0 END
         ORDER BY 1 LIMIT {LIMIT}",
    ),
];

/// The embedded backend's own: its derived per-user indexes (see
/// `crate::sqlite::materialize`) list exactly the user's rows up to their
/// marks. (The leaderboard in memory is compared with `users` in Rust.)
/// The delivery index may also list deliveries pruned just before a crash
/// (the derived tables' part of a prune is not replayed); such an entry
/// names no row, harms nothing (a delivery seq is never handed out again)
/// and is not reported.
const SQLITE_CHECKS: [(&str, &str); 3] = [
    (
        "event index",
        "SELECT 'user ' || u.user_id, 'the event index lists seq ' || u.seq || ', which is not their event'
         FROM user_events u LEFT JOIN events e ON e.seq = u.seq
         WHERE e.seq IS NULL OR e.user_id <> u.user_id OR e.occurred_at <> u.occurred_at
         UNION ALL
         SELECT 'user ' || e.user_id, 'event ' || e.id || ' is missing from the event index'
         FROM events e
         WHERE e.seq <= (SELECT through_seq FROM materialized WHERE id = 1)
           AND NOT EXISTS (SELECT 1 FROM user_events u
                           WHERE u.user_id = e.user_id AND u.occurred_at = e.occurred_at AND u.seq = e.seq)
         LIMIT {LIMIT}",
    ),
    (
        "ledger index",
        "SELECT 'user ' || u.user_id, 'the ledger index lists seq ' || u.seq || ', which is not their entry'
         FROM user_ledger u LEFT JOIN ledger l ON l.seq = u.seq
         WHERE l.seq IS NULL OR l.user_id <> u.user_id
         UNION ALL
         SELECT 'user ' || l.user_id, 'ledger entry ' || l.seq || ' is missing from the ledger index'
         FROM ledger l
         WHERE l.seq <= (SELECT through_ledger_seq FROM materialized WHERE id = 1)
           AND NOT EXISTS (SELECT 1 FROM user_ledger u WHERE u.user_id = l.user_id AND u.seq = l.seq)
         LIMIT {LIMIT}",
    ),
    (
        "delivery index",
        "SELECT 'user ' || u.user_id, 'the delivery index lists seq ' || u.seq || ', which is not their delivery'
         FROM user_deliveries u JOIN webhook_deliveries d ON d.seq = u.seq
         WHERE d.user_id <> u.user_id
         UNION ALL
         SELECT 'user ' || d.user_id, 'webhook delivery ' || d.id || ' is missing from the delivery index'
         FROM webhook_deliveries d
         WHERE d.seq <= (SELECT through_delivery_seq FROM materialized WHERE id = 1)
           AND NOT EXISTS (SELECT 1 FROM user_deliveries u WHERE u.user_id = d.user_id AND u.seq = d.seq)
         LIMIT {LIMIT}",
    ),
];

/// The embedded backend's extra checks, ready to run.
pub fn sqlite_checks() -> Vec<(&'static str, String)> {
    fill(&SQLITE_CHECKS)
}

/// The checks as (name, SQL), ready to run.
pub fn checks() -> Vec<(&'static str, String)> {
    fill(&CHECKS)
}

fn fill(checks: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    checks
        .iter()
        .map(|(name, sql)| {
            (
                *name,
                sql.replace("{EARNED}", EARNED)
                    .replace("{LIMIT}", &MAX_FINDINGS.to_string()),
            )
        })
        .collect()
}
