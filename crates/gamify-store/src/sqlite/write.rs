//! The writer's statements. An event goes in two steps inside the writer's
//! transaction.
//!
//! [`plan`] reads and decides (idempotency, the rules) without writing, so any
//! refusal it returns leaves the transaction clean and the rest of the batch
//! unaffected. [`apply`] only writes; if it fails, the writer rolls the whole
//! batch back and retries its requests one by one (see `super::commit_batch`).

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use super::{backend, read};
use crate::economy;
use crate::export::Page;
use crate::scoring::LedgerEntry;
use crate::{
    EventRecord, Idempotency, Movement, NewEvent, Recorded, Redemption, Reward, RewardDraft,
    StoreError, UserSnapshot, encode_unlocked, scoring,
};

/// What a request will do.
pub enum Planned {
    /// Its idempotency key was used before with the same request: answer with
    /// the original, write nothing.
    Replay(Box<Recorded>),
    /// A new event to write.
    Write(Box<Plan>),
}

/// A new event, scored, with the user's state after it.
pub struct Plan {
    record: EventRecord,
    after: UserSnapshot,
    idempotency: Option<(String, String)>,
}

impl Plan {
    /// The user's state once this plan is applied.
    pub fn after(&self) -> &UserSnapshot {
        &self.after
    }
}

/// Decides what `event` does, given the user's current state `before`
/// (`None`: no events yet). Writes nothing.
pub fn plan(
    conn: &Connection,
    event: &NewEvent,
    before: Option<UserSnapshot>,
    book: &crate::RuleBook,
) -> Result<Planned, StoreError> {
    if let Some(idem) = &event.idempotency {
        let prior: Option<(String, Option<String>)> = conn
            .prepare_cached("SELECT id, request_hash FROM events WHERE idempotency_key = ?1")
            .and_then(|mut s| {
                s.query_row([&idem.key], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
            })
            .map_err(backend)?;
        if let Some((id, hash)) = prior {
            if hash.as_deref() != Some(idem.fingerprint.as_str()) {
                return Err(StoreError::IdempotencyConflict);
            }
            let original = read::event_by_id(conn, &id)?
                .ok_or_else(|| StoreError::Corrupt(format!("event {id} vanished")))?;
            return Ok(Planned::Replay(Box::new(Recorded {
                event: original,
                replayed: true,
            })));
        }
    }

    let rules = book.rules(event.rules_version, &event.id)?;
    let (record, after) = scoring::score(event, before, &rules)?;
    let idempotency = event
        .idempotency
        .as_ref()
        .map(|i| (i.key.clone(), i.fingerprint.clone()));
    Ok(Planned::Write(Box::new(Plan {
        record,
        after,
        idempotency,
    })))
}

/// Appends a plan to the log: the event and its ledger entries. The user's
/// row and the per-user indexes follow later (see `super::materialize`).
/// Returns the event's `seq` and its ledger entries' seqs.
pub fn apply(log: &mut Appender<'_>, plan: &Plan) -> Result<(Recorded, i64, Vec<i64>), StoreError> {
    let record = &plan.record;
    let user = record.user_id.as_str();
    let now = record.created_at_ms;

    let seq = log.event(None, record, &plan.idempotency)?;

    // The ledger: the event's points, then each bonus, each with the balance it left.
    let ledger = log.ledger(user, &scoring::ledger_entries(record), now)?;
    Ok((
        Recorded {
            event: record.clone(),
            replayed: false,
        },
        seq,
        ledger,
    ))
}

/// Appends the rows every event writes, events and ledger entries, with
/// their two statements prepared once for a whole transaction (a batch of
/// requests, or an import page): taking a statement from rusqlite's cache
/// and handing it back for every row hashes its text and resets it each
/// time, a tenth of the writer's instructions per event under callgrind.
pub struct Appender<'c> {
    conn: &'c Connection,
    event: Option<CachedStatement<'c>>,
    ledger: Option<CachedStatement<'c>>,
}

impl<'c> Appender<'c> {
    /// Appends through `conn`; statements are prepared when first needed.
    pub fn new(conn: &'c Connection) -> Appender<'c> {
        Appender {
            conn,
            event: None,
            ledger: None,
        }
    }

    /// Appends an event row; `seq` is given when importing, else assigned.
    /// Returns its seq.
    fn event(
        &mut self,
        seq: Option<i64>,
        r: &EventRecord,
        idempotency: &Option<(String, String)>,
    ) -> Result<i64, StoreError> {
        let (key, hash) = split(idempotency);
        let statement = prepared(self.conn, &mut self.event,
            "INSERT INTO events (seq, id, user_id, category, action, value_milli, points_milli, weight_milli, streak_day,
                                 bonus_percent, unlocked, total_after, lifetime_after, metadata, occurred_at, created_at,
                                 idempotency_key, request_hash, rules_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )?;
        statement
            .execute(params![
                seq,
                r.id,
                r.user_id,
                r.category.as_str(),
                r.action,
                r.value.milli(),
                r.points.milli(),
                r.weight_milli,
                r.streak_day,
                r.bonus_percent,
                encode_unlocked(&r.unlocked),
                r.total_after.milli(),
                r.lifetime_after.milli(),
                r.metadata,
                r.occurred_at_ms,
                r.created_at_ms,
                key,
                hash,
                r.rules_version,
            ])
            .map_err(backend)?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Appends ledger entries of `user`; returns their seqs.
    pub fn ledger(
        &mut self,
        user: &str,
        entries: &[LedgerEntry],
        now: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut seqs = Vec::with_capacity(entries.len());
        for entry in entries {
            seqs.push(self.ledger_row(None, user, entry, now)?);
        }
        Ok(seqs)
    }

    /// Appends one ledger row; `seq` is given when importing, else
    /// assigned. Returns its seq.
    fn ledger_row(
        &mut self,
        seq: Option<i64>,
        user: &str,
        entry: &LedgerEntry,
        at: i64,
    ) -> Result<i64, StoreError> {
        let statement = prepared(self.conn, &mut self.ledger,
            "INSERT INTO ledger (seq, user_id, kind, amount_milli, balance_after_milli, lifetime_after_milli, reference,
                                 created_at, rules_version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        statement
            .execute(params![
                seq,
                user,
                entry.kind.as_str(),
                entry.amount.milli(),
                entry.balance_after.milli(),
                entry.lifetime_after.milli(),
                entry.reference,
                at,
                entry.rules_version
            ])
            .map_err(backend)?;
        Ok(self.conn.last_insert_rowid())
    }
}

/// The statement in `slot`, prepared (from the cache) the first time.
fn prepared<'s, 'c>(
    conn: &'c Connection,
    slot: &'s mut Option<CachedStatement<'c>>,
    sql: &str,
) -> Result<&'s mut CachedStatement<'c>, StoreError> {
    if slot.is_none() {
        *slot = Some(conn.prepare_cached(sql).map_err(backend)?);
    }
    Ok(slot.as_mut().expect("prepared just now"))
}

/// Appends a movement; `seq` is given when importing, else assigned.
pub fn insert_movement(
    conn: &Connection,
    seq: Option<i64>,
    m: &Movement,
    idempotency: Option<&Idempotency>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO movements (seq, id, user_id, kind, amount_milli, reason, metadata, balance_after, lifetime_after,
                                created_at, idempotency_key, request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            m.id,
            m.user_id,
            m.kind.as_str(),
            m.amount.milli(),
            m.reason,
            m.metadata,
            m.balance_after.milli(),
            m.lifetime_after.milli(),
            m.created_at_ms,
            idempotency.map(|i| &i.key),
            idempotency.map(|i| &i.fingerprint),
        ])
    })
    .map_err(backend)?;
    Ok(())
}

/// Stores a redemption; `seq` is given when importing, else assigned.
pub fn insert_redemption(
    conn: &Connection,
    seq: Option<i64>,
    r: &Redemption,
    idempotency: Option<&Idempotency>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO redemptions (seq, id, reward_id, user_id, cost_milli, status, granted_by, created_at, updated_at,
                                  idempotency_key, request_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .and_then(|mut s| {
        s.execute(params![
            seq,
            r.id,
            r.reward_id,
            r.user_id,
            r.cost.milli(),
            r.status.as_str(),
            r.granted_by,
            r.created_at_ms,
            r.updated_at_ms,
            idempotency.map(|i| &i.key),
            idempotency.map(|i| &i.fingerprint),
        ])
    })
    .map_err(backend)?;
    Ok(())
}

/// Moves a reward's redeemed count by `delta` (+1 redeemed, -1 returned).
pub fn count_redeemed(conn: &Connection, reward_id: &str, delta: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE rewards SET redeemed = redeemed + ?2 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![reward_id, delta]))
        .map_err(backend)?;
    Ok(())
}

/// Records a redemption's new status.
pub fn set_status(conn: &Connection, r: &Redemption) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE redemptions SET status = ?2, updated_at = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![r.id, r.status.as_str(), r.updated_at_ms]))
        .map_err(backend)?;
    Ok(())
}

/// Creates or updates a reward, keeping its redeemed count.
pub fn save_reward(conn: &Connection, d: &RewardDraft, create: bool) -> Result<Reward, StoreError> {
    let saved = economy::plan_save_reward(read::reward(conn, &d.id)?.as_ref(), d, create)?;
    conn.prepare_cached(
        "INSERT INTO rewards (id, name_fi, name_en, description, cost_milli, stock, per_user_limit, available_from,
                              available_until, active, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET name_fi = excluded.name_fi, name_en = excluded.name_en,
             description = excluded.description, cost_milli = excluded.cost_milli, stock = excluded.stock,
             per_user_limit = excluded.per_user_limit, available_from = excluded.available_from,
             available_until = excluded.available_until, active = excluded.active,
             updated_at = excluded.updated_at",
    )
    .and_then(|mut s| {
        s.execute(params![
            d.id,
            d.name_fi,
            d.name_en,
            d.description,
            d.cost.milli(),
            d.stock,
            d.per_user_limit,
            d.available_from_ms,
            d.available_until_ms,
            d.active,
            saved.created_at_ms,
            d.saved_at_ms,
        ])
    })
    .map_err(backend)?;
    Ok(saved)
}

/// Writes an export page's rows into the log as they are. Users are not
/// written: the derived tables are rebuilt from the log when the store next
/// opens.
pub fn import_page(conn: &Connection, page: &Page) -> Result<(), StoreError> {
    match page {
        Page::Rewards(rows) => {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO rewards (id, name_fi, name_en, description, cost_milli, stock, redeemed, per_user_limit,
                                          available_from, available_until, active, created_at, updated_at, erased_units)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(backend)?;
            for r in rows {
                let d = &r.draft;
                stmt.execute(params![
                    d.id,
                    d.name_fi,
                    d.name_en,
                    d.description,
                    d.cost.milli(),
                    d.stock,
                    r.redeemed,
                    d.per_user_limit,
                    d.available_from_ms,
                    d.available_until_ms,
                    d.active,
                    r.created_at_ms,
                    d.saved_at_ms,
                    r.erased_units
                ])
                .map_err(backend)?;
            }
        }
        Page::Users(_) => {}
        Page::Events(rows) => {
            let mut log = Appender::new(conn);
            for e in rows {
                log.event(Some(e.seq), &e.record, &e.idempotency)?;
            }
        }
        Page::Movements(rows) => {
            for m in rows {
                let idempotency = idempotency_of(&m.idempotency);
                insert_movement(conn, Some(m.seq), &m.movement, idempotency.as_ref())?;
            }
        }
        Page::Redemptions(rows) => {
            for r in rows {
                let idempotency = idempotency_of(&r.idempotency);
                insert_redemption(conn, Some(r.seq), &r.redemption, idempotency.as_ref())?;
            }
        }
        Page::Ledger(rows) => {
            let mut log = Appender::new(conn);
            for l in rows {
                let entry = LedgerEntry {
                    kind: l.kind,
                    amount: l.amount,
                    balance_after: l.balance_after,
                    lifetime_after: l.lifetime_after,
                    reference: l.reference.clone(),
                    rules_version: l.rules_version,
                };
                log.ledger_row(Some(l.seq), &l.user_id, &entry, l.created_at_ms)?;
            }
        }
        Page::Hidden(rows) => {
            let mut stmt = conn
                .prepare_cached("INSERT INTO hidden_users (user_id, hidden_at) VALUES (?1, ?2)")
                .map_err(backend)?;
            for (user, at) in rows {
                stmt.execute(params![user, at]).map_err(backend)?;
            }
        }
        Page::Erasures(rows) => {
            let mut stmt = conn
                .prepare_cached(
                    "INSERT INTO erasures (id, user_hash, events, ledger_entries, movements, redemptions, erased_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(backend)?;
            for e in rows {
                let r = &e.erasure;
                stmt.execute(params![
                    r.id,
                    e.user_hash,
                    r.events,
                    r.ledger_entries,
                    r.movements,
                    r.redemptions,
                    r.erased_at_ms
                ])
                .map_err(backend)?;
            }
        }
    }
    Ok(())
}

fn idempotency_of(pair: &Option<(String, String)>) -> Option<Idempotency> {
    pair.as_ref().map(|(key, fingerprint)| Idempotency {
        key: key.clone(),
        fingerprint: fingerprint.clone(),
    })
}

fn split(idempotency: &Option<(String, String)>) -> (Option<&str>, Option<&str>) {
    match idempotency {
        Some((k, h)) => (Some(k.as_str()), Some(h.as_str())),
        None => (None, None),
    }
}
