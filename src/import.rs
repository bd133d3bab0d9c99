//! Putting an export back: `gamify import` first reads the whole NDJSON
//! export (see [`crate::export`]) to check it, writing nothing, then reads it
//! again line by line into an empty database of either backend,
//! a page per table at a time (flat memory), keeping every id, arrival number
//! and idempotency key. Then it proves the result equals the source: the
//! store is reopened (on SQLite that rebuilds users' state from the imported
//! ledger, with the rules), exported again and compared with the file line by
//! line, and its invariants are checked.

use std::collections::BTreeMap;
use std::io::BufRead;

use gamify_core::{AchievementId, Category, Points, StreakRuns, UserState, Value as Amount};
use gamify_store::export::{
    After, ExportFilter, ExportedErasure, ExportedEvent, ExportedMovement, ExportedRedemption,
    Page, Table,
};
use gamify_store::{
    CategoryTotal, Erasure, EventRecord, LedgerKind, LedgerRecord, Movement, MovementKind,
    Redemption, RedemptionStatus, Reward, RewardDraft, UserSnapshot,
};

use crate::engine::{Engine, EngineError};
use crate::export::{Exporter, FORMAT, FORMAT_VERSION, Line};

/// Rows written per page.
const PAGE: usize = 1000;

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not an export this binary reads, or is damaged.
    #[error("line {line}: {message}")]
    Bad {
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The target already holds data.
    #[error("the target database is not empty ({0} found); import into an empty one")]
    NotEmpty(&'static str),
    /// The imported data differs from the file.
    #[error("the imported data differs from the file at data line {line}: {detail}")]
    Differs {
        /// 1-based line number in the file.
        line: u64,
        /// The two lines.
        detail: String,
    },
    /// The engine or storage failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The file could not be read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn bad(line: u64, message: impl Into<String>) -> ImportError {
    ImportError::Bad {
        line,
        message: message.into(),
    }
}

/// Fails unless every table of the engine's store is empty.
pub async fn check_empty(engine: &Engine) -> Result<(), ImportError> {
    for table in Table::ALL {
        let page = engine
            .store()
            .export_page(table, After::Start, &ExportFilter::default(), 1)
            .await
            .map_err(EngineError::from)?;
        if !page.is_empty() {
            return Err(ImportError::NotEmpty(table.record_type()));
        }
    }
    Ok(())
}

/// Reads the whole export and checks it as [`load`] would, writing
/// nothing: the JSON of every line, the order of the records, each one's
/// fields, the rules versions it carries, and the end line's counts. A
/// damaged or cut-short file is refused here, before the target changes.
/// `progress` hears the rows checked so far.
pub async fn check(
    input: impl BufRead,
    progress: impl Fn(u64),
) -> Result<BTreeMap<String, u64>, ImportError> {
    read(None, input, progress).await
}

/// Writes the export read from `input` into the engine's (empty) store.
/// Returns the lines of each type. `progress` hears the rows written so far.
pub async fn load(
    engine: &Engine,
    input: impl BufRead,
    progress: impl Fn(u64),
) -> Result<BTreeMap<String, u64>, ImportError> {
    read(Some(engine), input, progress).await
}

/// [`load`] into `target`, or with none, [`check`].
async fn read(
    target: Option<&Engine>,
    input: impl BufRead,
    progress: impl Fn(u64),
) -> Result<BTreeMap<String, u64>, ImportError> {
    // Without a target, the rules versions are followed here.
    let first = gamify_store::rulebook::first_version();
    let mut rules_version = (first.version, (*first.rules).clone());
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending: Option<Page> = None;
    let mut header = false;
    let mut end: Option<BTreeMap<String, u64>> = None;
    let mut number = 0u64;
    let mut written = 0u64;
    for text in input.lines() {
        let text = text?;
        number += 1;
        if text.is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(bad(number, "a line after the end line"));
        }
        let line: Line = serde_json::from_str(&text).map_err(|e| bad(number, e.to_string()))?;
        if nul_outside_metadata(&text) {
            return Err(bad(
                number,
                "a text field holds a NUL character (\\u0000), which PostgreSQL cannot store \
                 (only metadata may: it is kept as JSON)",
            ));
        }
        match line {
            Line::Export(h) => {
                if header || number != 1 {
                    return Err(bad(number, "the export line must be the first"));
                }
                if h.format != FORMAT || h.version != FORMAT_VERSION {
                    return Err(bad(
                        number,
                        format!(
                            "format {} version {} is not {FORMAT} version {FORMAT_VERSION}",
                            h.format, h.version
                        ),
                    ));
                }
                if h.filter.user_id.is_some() || h.filter.from.is_some() || h.filter.to.is_some() {
                    return Err(bad(
                        number,
                        "a filtered export (one user or a time range) is a view, not the data: import a whole export",
                    ));
                }
                header = true;
                continue;
            }
            Line::End(e) => {
                end = Some(e.counts);
                continue;
            }
            _ if !header => return Err(bad(number, "the file does not start with an export line")),
            Line::Rules(r) => {
                if pending.is_some() {
                    return Err(bad(number, "a rules line after other records"));
                }
                match target {
                    Some(engine) => restore_rules(engine, &r).await,
                    None => check_rules(&r, &mut rules_version),
                }
                .map_err(|m| bad(number, m))?;
                *counts.entry("rules".to_owned()).or_default() += 1;
            }
            row => {
                let kind = record_type(&row);
                *counts.entry(kind.to_owned()).or_default() += 1;
                let page = pending.get_or_insert_with(|| empty_page(kind));
                if !push(page, row).map_err(|m| bad(number, m))? {
                    // Another table begins: write what the last one had.
                    let full = pending.take().unwrap_or_else(|| empty_page(kind));
                    written += write(target, full).await?;
                    progress(written);
                    let mut next = empty_page(kind);
                    let line: Line =
                        serde_json::from_str(&text).map_err(|e| bad(number, e.to_string()))?;
                    push(&mut next, line).map_err(|m| bad(number, m))?;
                    pending = Some(next);
                }
                if pending.as_ref().is_some_and(|p| p.len() >= PAGE) {
                    let full = pending.take().unwrap_or_else(|| empty_page(kind));
                    written += write(target, full).await?;
                    progress(written);
                }
            }
        }
    }
    if let Some(rest) = pending.take().filter(|p| !p.is_empty()) {
        written += write(target, rest).await?;
        progress(written);
    }
    let Some(expected) = end else {
        if number == 0 {
            return Err(bad(
                1,
                "the file is empty: an export has at least its end line",
            ));
        }
        return Err(bad(number, "the file has no end line: it was cut short"));
    };
    let expected: BTreeMap<String, u64> = expected.into_iter().filter(|(_, n)| *n > 0).collect();
    if expected != counts {
        return Err(bad(
            number,
            format!("the end line counts {expected:?}, the file holds {counts:?}"),
        ));
    }
    Ok(counts)
}

/// Exports the engine's data again and compares it with the file, line by
/// line (the first line, which says when, excepted).
pub async fn compare(engine: &Engine, input: impl BufRead) -> Result<u64, ImportError> {
    let mut exporter = Exporter::new(engine.clone(), ExportFilter::default());
    let mut ours = String::new();
    let mut theirs = input.lines();
    let mut number = 0u64;
    let mut first = true;
    while let Some(chunk) = exporter.next_chunk().await? {
        ours.push_str(&chunk);
        while let Some(newline) = ours.find('\n') {
            let mine: String = ours.drain(..=newline).collect();
            let mine = mine.trim_end_matches('\n');
            number += 1;
            let file = loop {
                match theirs.next() {
                    Some(line) => {
                        let line = line?;
                        if !line.is_empty() {
                            break Some(line);
                        }
                    }
                    None => break None,
                }
            };
            if first {
                first = false;
                continue;
            }
            match file {
                Some(file) if same(&file, mine) => {}
                other => {
                    return Err(ImportError::Differs {
                        line: number,
                        detail: format!("file: {other:?}, imported: {mine}"),
                    });
                }
            }
        }
    }
    Ok(number)
}

/// Two lines hold the same data (compared as JSON, so that key order in
/// metadata does not matter).
fn same(a: &str, b: &str) -> bool {
    match (
        serde_json::from_str::<serde_json::Value>(a),
        serde_json::from_str::<serde_json::Value>(b),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Writes a page into `target` (with none, only counts it); its rows.
async fn write(target: Option<&Engine>, page: Page) -> Result<u64, ImportError> {
    let rows = page.len() as u64;
    if let Some(engine) = target {
        engine
            .store()
            .import_page(page)
            .await
            .map_err(EngineError::from)?;
    }
    Ok(rows)
}

/// A rules line's file, parsed; its first mistake otherwise.
fn parse_rules_line(r: &crate::export::RulesLine) -> Result<gamify_core::RuleSet, String> {
    gamify_core::parse_rules(&r.rules).map_err(|errors| {
        format!(
            "rules version {}: {}",
            r.version,
            errors.first().map(ToString::to_string).unwrap_or_default()
        )
    })
}

/// What [`restore_rules`] checks of a rules line without a store: that its
/// file parses, and that versions come in order from 1 (the brief's rules,
/// which every store has), none skipped and none the same as the one before
/// (a store would not add it). `last` is the version before and its rules.
fn check_rules(
    r: &crate::export::RulesLine,
    last: &mut (u32, gamify_core::RuleSet),
) -> Result<(), String> {
    let rules = parse_rules_line(r)?;
    let first = gamify_store::rulebook::first_version();
    if r.version == first.version {
        return if rules == *first.rules {
            Ok(())
        } else {
            Err("rules version 1 differs from this store's version 1".into())
        };
    }
    if r.version != last.0 + 1 {
        return Err(format!(
            "rules version {} follows version {}",
            r.version, last.0
        ));
    }
    if rules == last.1 {
        return Err(format!(
            "rules version {} is the same as the version before it",
            r.version
        ));
    }
    *last = (r.version, rules);
    Ok(())
}

/// Makes version `r.version` of the rules what the line says: version 1 is
/// the brief's rules in every store, later ones are added in order, so
/// each gets the number it had.
async fn restore_rules(engine: &Engine, r: &crate::export::RulesLine) -> Result<(), String> {
    let rules = parse_rules_line(r)?;
    let book = engine.rule_book();
    if let Some(have) = book.get(r.version) {
        return if *have.rules == rules {
            Ok(())
        } else {
            Err(format!(
                "rules version {} differs from this store's version {}",
                r.version, r.version
            ))
        };
    }
    if r.version != book.current().version + 1 {
        return Err(format!(
            "rules version {} follows version {}",
            r.version,
            book.current().version
        ));
    }
    let added = engine
        .store()
        .add_rules(rules, r.created_at_ms)
        .await
        .map_err(|e| e.to_string())?;
    if added.version == r.version {
        Ok(())
    } else {
        Err(format!(
            "rules version {} is the same as the version before it",
            r.version
        ))
    }
}

fn record_type(line: &Line) -> &'static str {
    match line {
        Line::Reward(_) => "reward",
        Line::User(_) => "user",
        Line::Event(_) => "event",
        Line::Movement(_) => "movement",
        Line::Redemption(_) => "redemption",
        Line::Ledger(_) => "ledger",
        Line::Erasure(_) => "erasure",
        Line::HiddenUser(_) => "hidden_user",
        Line::Export(_) => "export",
        Line::Rules(_) => "rules",
        Line::End(_) => "end",
    }
}

fn empty_page(kind: &str) -> Page {
    match kind {
        "reward" => Page::Rewards(Vec::new()),
        "user" => Page::Users(Vec::new()),
        "event" => Page::Events(Vec::new()),
        "movement" => Page::Movements(Vec::new()),
        "redemption" => Page::Redemptions(Vec::new()),
        "erasure" => Page::Erasures(Vec::new()),
        "hidden_user" => Page::Hidden(Vec::new()),
        _ => Page::Ledger(Vec::new()),
    }
}

fn points(milli: i64) -> Points {
    Points::from_milli(milli)
}

fn keyed(key: Option<String>, hash: Option<String>) -> Option<(String, String)> {
    key.zip(hash)
}

fn text_of(metadata: Option<serde_json::Value>) -> Option<String> {
    metadata.filter(|m| !m.is_null()).map(|m| m.to_string())
}

/// Whether a line holds a NUL character in a string outside its
/// `metadata`. The API never stores one, and PostgreSQL cannot, so a file
/// with one was made or edited elsewhere; refusing it in the check pass
/// keeps the target unchanged instead of failing partway through writing.
/// Cheap for the lines without the escape, which is all of them normally.
fn nul_outside_metadata(text: &str) -> bool {
    use serde_json::Value;
    fn holds_nul(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(holds_nul),
            Value::Object(fields) => fields.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
            _ => false,
        }
    }
    if !text.contains("\\u0000") {
        return false;
    }
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    if let Some(fields) = value.as_object_mut() {
        fields.remove("metadata");
    }
    holds_nul(&value)
}

/// Adds a row to a page of its table; `Ok(false)` if it belongs to another.
fn push(page: &mut Page, line: Line) -> Result<bool, String> {
    match (page, line) {
        (Page::Rewards(rows), Line::Reward(r)) => rows.push(Reward {
            draft: RewardDraft {
                id: r.id,
                name_fi: r.name_fi,
                name_en: r.name_en,
                description: r.description,
                cost: points(r.cost_milli),
                stock: r.stock,
                per_user_limit: r.per_user_limit,
                available_from_ms: r.available_from_ms,
                available_until_ms: r.available_until_ms,
                active: r.active,
                saved_at_ms: r.updated_at_ms,
            },
            redeemed: r.redeemed,
            erased_units: r.erased_units,
            created_at_ms: r.created_at_ms,
        }),
        (Page::Users(rows), Line::User(u)) => {
            let achievements = u
                .achievements
                .iter()
                .map(|a| AchievementId::parse(a).ok_or(format!("unknown achievement {a:?}")))
                .collect::<Result<_, _>>()?;
            let categories = u
                .categories
                .into_iter()
                .map(|c| {
                    Ok(CategoryTotal {
                        category: Category::named(&c.category)
                            .ok_or(format!("unknown category {:?}", c.category))?,
                        events: c.events,
                        points: points(c.points_milli),
                    })
                })
                .collect::<Result<_, String>>()?;
            rows.push((
                u.user_id,
                UserSnapshot {
                    state: UserState {
                        total: points(u.total_milli),
                        lifetime: points(u.lifetime_milli),
                        best_streak: u.best_streak,
                        runs: StreakRuns::decode(&u.streak_runs)
                            .ok_or(format!("unreadable streak runs {:?}", u.streak_runs))?,
                        achievements,
                        categories,
                    },
                    event_count: u.event_count,
                    last_event_at_ms: u.last_event_at_ms,
                    version: u.version,
                },
            ));
        }
        (Page::Events(rows), Line::Event(e)) => rows.push(ExportedEvent {
            seq: e.seq,
            record: EventRecord {
                category: Category::named(&e.category)
                    .ok_or(format!("unknown category {:?}", e.category))?,
                rules_version: e.rules_version,
                unlocked: e
                    .unlocked
                    .iter()
                    .map(|u| {
                        AchievementId::parse(&u.id)
                            .map(|a| (a, points(u.bonus_milli)))
                            .ok_or(format!("unknown achievement {:?}", u.id))
                    })
                    .collect::<Result<_, _>>()?,
                id: e.id,
                user_id: e.user_id,
                action: e.action,
                value: Amount::from_milli(e.value_milli),
                points: points(e.points_milli),
                weight_milli: e.weight_milli,
                streak_day: e.streak_day,
                bonus_percent: e.bonus_percent,
                total_after: points(e.total_after_milli),
                lifetime_after: points(e.lifetime_after_milli),
                metadata: text_of(e.metadata),
                occurred_at_ms: e.occurred_at_ms,
                created_at_ms: e.created_at_ms,
            },
            idempotency: keyed(e.idempotency_key, e.request_hash),
        }),
        (Page::Movements(rows), Line::Movement(m)) => rows.push(ExportedMovement {
            seq: m.seq,
            movement: Movement {
                kind: MovementKind::parse(&m.kind).map_err(|e| e.to_string())?,
                id: m.id,
                user_id: m.user_id,
                amount: points(m.amount_milli),
                reason: m.reason,
                metadata: text_of(m.metadata),
                balance_after: points(m.balance_after_milli),
                lifetime_after: points(m.lifetime_after_milli),
                created_at_ms: m.created_at_ms,
            },
            idempotency: keyed(m.idempotency_key, m.request_hash),
        }),
        (Page::Redemptions(rows), Line::Redemption(r)) => rows.push(ExportedRedemption {
            seq: r.seq,
            redemption: Redemption {
                status: RedemptionStatus::parse(&r.status)
                    .ok_or(format!("unknown status {:?}", r.status))?,
                id: r.id,
                reward_id: r.reward_id,
                user_id: r.user_id,
                cost: points(r.cost_milli),
                granted_by: r.granted_by,
                created_at_ms: r.created_at_ms,
                updated_at_ms: r.updated_at_ms,
            },
            idempotency: keyed(r.idempotency_key, r.request_hash),
        }),
        (Page::Ledger(rows), Line::Ledger(l)) => rows.push(LedgerRecord {
            rules_version: match LedgerKind::parse(&l.kind).map_err(|e| e.to_string())? {
                LedgerKind::Event | LedgerKind::AchievementBonus => {
                    Some(l.rules_version.unwrap_or(1))
                }
                _ => None,
            },
            kind: LedgerKind::parse(&l.kind).map_err(|e| e.to_string())?,
            seq: l.seq,
            user_id: l.user_id,
            amount: points(l.amount_milli),
            balance_after: points(l.balance_after_milli),
            lifetime_after: points(l.lifetime_after_milli),
            reference: l.reference,
            created_at_ms: l.created_at_ms,
        }),
        (Page::Hidden(rows), Line::HiddenUser(h)) => rows.push((h.user_id, h.hidden_at_ms)),
        (Page::Erasures(rows), Line::Erasure(e)) => rows.push(ExportedErasure {
            user_hash: e.user_hash,
            erasure: Erasure {
                id: e.id,
                erased_at_ms: e.erased_at_ms,
                events: e.events,
                ledger_entries: e.ledger_entries,
                movements: e.movements,
                redemptions: e.redemptions,
            },
        }),
        _ => return Ok(false),
    }
    Ok(true)
}
