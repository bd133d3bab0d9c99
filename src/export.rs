//! Taking the data out: every table as NDJSON (one JSON object per line), a
//! page at a time so that memory stays flat at any size, and the brief's two
//! JSON files (`gamify_events.json`, `gamify_balances.json`).
//!
//! The NDJSON is exact: amounts are integer thousandths (`*_milli`), times
//! Unix milliseconds, and every stored field is there (idempotency keys and
//! fingerprints included), so that nothing is lost on the way out. The first
//! line describes the export; the last one (`"type": "end"`) counts the
//! lines of each type, so a truncated file is recognisable. An export of a
//! running server is not one snapshot: each page is what was committed when
//! it was read (take `gamify backup` for a snapshot, and export that).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use gamify_store::export::{After, ExportFilter, Page, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::engine::{Engine, EngineError, parse_user};
use crate::model::{FieldError, parse_rfc3339_ms, render_event, rfc3339_ms};

/// Rows per page read from the store.
pub const PAGE_ROWS: u32 = 1000;

/// The format's name and version, in the first line.
pub const FORMAT: &str = "gamify-ndjson";
/// Bumped when a line's shape changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// Reads an export filter from its text form (API query or CLI flags).
pub fn parse_filter(
    user_id: Option<&str>,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<ExportFilter, EngineError> {
    let mut errors = Vec::new();
    let user = user_id
        .map(parse_user)
        .transpose()
        .map_err(|e| errors.extend(e.fields()))
        .ok()
        .flatten();
    let mut time = |field: &str, text: Option<&str>| {
        let text = text?;
        let parsed = parse_rfc3339_ms(text);
        if parsed.is_none() {
            errors.push(FieldError {
                field: field.to_owned(),
                message: format!("{field} must be an RFC 3339 time such as 2026-01-01T00:00:00Z"),
            });
        }
        parsed
    };
    let (from_ms, to_ms) = (time("from", from), time("to", to));
    // `from` is inclusive and `to` exclusive: a range where `to` is not
    // after `from` selects nothing, which is a mistake (swapped bounds)
    // more often than a wish.
    if let (Some(f), Some(t)) = (from_ms, to_ms)
        && t <= f
    {
        errors.push(FieldError {
            field: "to".to_owned(),
            message: "to must be after from".to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(ExportFilter {
            user,
            from_ms,
            to_ms,
        })
    } else {
        Err(EngineError::Invalid(errors))
    }
}

/// Produces an export a chunk (one page of one table) at a time.
pub struct Exporter {
    engine: Engine,
    filter: ExportFilter,
    /// The table being read, as an index into [`Table::ALL`]; `None` before
    /// the header line is out.
    table: Option<usize>,
    after: After,
    counts: BTreeMap<&'static str, u64>,
    done: bool,
}

impl Exporter {
    /// An export of what `filter` selects.
    pub fn new(engine: Engine, filter: ExportFilter) -> Exporter {
        Exporter {
            engine,
            filter,
            table: None,
            after: After::Start,
            counts: BTreeMap::new(),
            done: false,
        }
    }

    /// Lines written so far, by type.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The next lines (each ending in `\n`), or `None` once the export is
    /// complete.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, EngineError> {
        if self.done {
            return Ok(None);
        }
        let Some(index) = self.table else {
            self.table = Some(0);
            let filter = &self.filter;
            let header = Line::Export(Header {
                format: FORMAT.to_owned(),
                version: FORMAT_VERSION,
                exported_at: rfc3339_ms(self.engine.now_ms()),
                filter: FilterLine {
                    user_id: filter.user_id().map(str::to_owned),
                    from: filter.from_ms.map(rfc3339_ms),
                    to: filter.to_ms.map(rfc3339_ms),
                },
            });
            // The rules every event names by version, oldest first: an
            // import needs them before the events. Version 1 is built into
            // every store and does not travel; nor does a version-1 mark on
            // an event or ledger line, so that files made before rules were
            // data read, and compare, the same.
            let mut text = line_text(&header)?;
            for v in self
                .engine
                .rule_book()
                .all()
                .iter()
                .filter(|v| v.version > 1)
            {
                text.push_str(&line_text(&Line::Rules(RulesLine {
                    version: v.version,
                    created_at_ms: v.created_at_ms,
                    rules: v.stored_text(),
                }))?);
                *self.counts.entry("rules").or_default() += 1;
            }
            return Ok(Some(text));
        };
        let Some(&table) = Table::ALL.get(index) else {
            self.done = true;
            let counts = self
                .counts
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect();
            return Ok(Some(line_text(&Line::End(EndLine { counts }))?));
        };
        let page = self
            .engine
            .store()
            .export_page(table, self.after.clone(), &self.filter, PAGE_ROWS)
            .await?;
        if page.is_empty() {
            self.table = Some(index + 1);
            self.after = After::Start;
            return Ok(Some(String::new()));
        }
        self.after = page.next();
        let lines = render(&page);
        *self.counts.entry(table.record_type()).or_default() += lines.len() as u64;
        let mut chunk = String::with_capacity(lines.len() * 256);
        for line in &lines {
            chunk.push_str(&line_text(line)?);
        }
        Ok(Some(chunk))
    }
}

/// One line of the NDJSON export, as written and as read back by an
/// import: one definition, so the two cannot drift apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    /// The first line.
    Export(Header),
    /// A version of the rules (before any other record).
    Rules(RulesLine),
    /// A reward.
    Reward(RewardLine),
    /// A user's current state.
    User(UserLine),
    /// An event.
    Event(EventLine),
    /// A spend or an adjustment.
    Movement(MovementLine),
    /// A redemption.
    Redemption(RedemptionLine),
    /// A ledger entry.
    Ledger(LedgerLine),
    /// An erasure: what refuses an erased user, by the hash of the id.
    Erasure(ErasureLine),
    /// A user who opted out of the leaderboards.
    HiddenUser(HiddenLine),
    /// The last line: how many lines of each type came before it.
    End(EndLine),
}

/// A version of the rules: its number, when it was made, and the rules as
/// a rules file.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesLine {
    pub version: u32,
    pub created_at_ms: i64,
    pub rules: String,
}

/// The first line of an export.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub format: String,
    pub version: u32,
    pub exported_at: String,
    pub filter: FilterLine,
}

/// The filter an export was taken with.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterLine {
    pub user_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

/// The last line of an export.
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndLine {
    pub counts: BTreeMap<String, u64>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewardLine {
    pub id: String,
    pub name_fi: String,
    pub name_en: String,
    pub description: String,
    pub cost_milli: i64,
    pub stock: Option<u32>,
    pub redeemed: u32,
    pub per_user_limit: Option<u32>,
    pub available_from_ms: Option<i64>,
    pub available_until_ms: Option<i64>,
    pub active: bool,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// Added in a later release: absent (0) in older exports, and left out
    /// when 0 so that those still compare equal.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub erased_units: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenLine {
    pub user_id: String,
    pub hidden_at_ms: i64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureLine {
    pub id: String,
    pub user_hash: String,
    pub erased_at_ms: i64,
    pub events: u64,
    pub ledger_entries: u64,
    pub movements: u64,
    pub redemptions: u64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryLine {
    pub category: String,
    pub events: u64,
    pub points_milli: i64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserLine {
    pub user_id: String,
    pub total_milli: i64,
    pub lifetime_milli: i64,
    pub best_streak: u32,
    pub streak_runs: String,
    pub achievements: Vec<String>,
    pub event_count: u64,
    pub last_event_at_ms: Option<i64>,
    pub categories: Vec<CategoryLine>,
    pub version: u64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockedLine {
    pub id: String,
    pub bonus_milli: i64,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventLine {
    pub seq: i64,
    pub id: String,
    pub user_id: String,
    pub category: String,
    pub action: String,
    pub value_milli: i64,
    pub points_milli: i64,
    pub weight_milli: i64,
    pub streak_day: u32,
    pub bonus_percent: u32,
    pub unlocked: Vec<UnlockedLine>,
    pub total_after_milli: i64,
    pub lifetime_after_milli: i64,
    pub metadata: Option<Value>,
    pub occurred_at_ms: i64,
    pub created_at_ms: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    /// Left out when 1 (the built-in rules, and every file made before rules
    /// were data).
    #[serde(
        default = "first_rules_version",
        skip_serializing_if = "is_first_version"
    )]
    pub rules_version: u32,
}

fn first_rules_version() -> u32 {
    1
}

fn is_first_version(version: &u32) -> bool {
    *version == 1
}

fn no_later_version(version: &Option<u32>) -> bool {
    version.is_none_or(|v| v == 1)
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MovementLine {
    pub seq: i64,
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub amount_milli: i64,
    pub reason: String,
    pub metadata: Option<Value>,
    pub balance_after_milli: i64,
    pub lifetime_after_milli: i64,
    pub created_at_ms: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedemptionLine {
    pub seq: i64,
    pub id: String,
    pub reward_id: String,
    pub user_id: String,
    pub cost_milli: i64,
    pub status: String,
    pub granted_by: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerLine {
    pub seq: i64,
    pub user_id: String,
    pub kind: String,
    pub amount_milli: i64,
    pub balance_after_milli: i64,
    pub lifetime_after_milli: i64,
    pub reference: String,
    pub created_at_ms: i64,
    /// An event's entries: its rules version, left out when 1 (as on event
    /// lines); other entries have none.
    #[serde(default, skip_serializing_if = "no_later_version")]
    pub rules_version: Option<u32>,
}

fn split(idempotency: &Option<(String, String)>) -> (Option<String>, Option<String>) {
    match idempotency {
        Some((k, h)) => (Some(k.clone()), Some(h.clone())),
        None => (None, None),
    }
}

fn metadata_value(text: &Option<String>) -> Option<Value> {
    text.as_deref().and_then(|t| serde_json::from_str(t).ok())
}

/// One line per row, exact.
fn render(page: &Page) -> Vec<Line> {
    match page {
        Page::Rewards(rows) => rows
            .iter()
            .map(|r| {
                let d = &r.draft;
                Line::Reward(RewardLine {
                    id: d.id.clone(),
                    name_fi: d.name_fi.clone(),
                    name_en: d.name_en.clone(),
                    description: d.description.clone(),
                    cost_milli: d.cost.milli(),
                    stock: d.stock,
                    redeemed: r.redeemed,
                    per_user_limit: d.per_user_limit,
                    available_from_ms: d.available_from_ms,
                    available_until_ms: d.available_until_ms,
                    active: d.active,
                    created_at_ms: r.created_at_ms,
                    updated_at_ms: d.saved_at_ms,
                    erased_units: r.erased_units,
                })
            })
            .collect(),
        Page::Users(rows) => rows
            .iter()
            .map(|(id, u)| {
                let s = &u.state;
                Line::User(UserLine {
                    user_id: id.clone(),
                    total_milli: s.total.milli(),
                    lifetime_milli: s.lifetime.milli(),
                    best_streak: s.best_streak,
                    streak_runs: s.runs.encode(),
                    achievements: s
                        .achievements
                        .iter()
                        .map(|a| a.as_str().to_owned())
                        .collect(),
                    event_count: u.event_count,
                    last_event_at_ms: u.last_event_at_ms,
                    categories: s
                        .categories
                        .iter()
                        .map(|c| CategoryLine {
                            category: c.category.as_str().to_owned(),
                            events: c.events,
                            points_milli: c.points.milli(),
                        })
                        .collect(),
                    version: u.version,
                })
            })
            .collect(),
        Page::Events(rows) => rows
            .iter()
            .map(|e| {
                let r = &e.record;
                let (idempotency_key, request_hash) = split(&e.idempotency);
                Line::Event(EventLine {
                    seq: e.seq,
                    id: r.id.clone(),
                    user_id: r.user_id.clone(),
                    category: r.category.as_str().to_owned(),
                    action: r.action.clone(),
                    value_milli: r.value.milli(),
                    points_milli: r.points.milli(),
                    weight_milli: r.weight_milli,
                    streak_day: r.streak_day,
                    bonus_percent: r.bonus_percent,
                    unlocked: r
                        .unlocked
                        .iter()
                        .map(|(a, b)| UnlockedLine {
                            id: a.as_str().to_owned(),
                            bonus_milli: b.milli(),
                        })
                        .collect(),
                    total_after_milli: r.total_after.milli(),
                    lifetime_after_milli: r.lifetime_after.milli(),
                    metadata: metadata_value(&r.metadata),
                    occurred_at_ms: r.occurred_at_ms,
                    created_at_ms: r.created_at_ms,
                    idempotency_key,
                    request_hash,
                    rules_version: r.rules_version,
                })
            })
            .collect(),
        Page::Movements(rows) => rows
            .iter()
            .map(|m| {
                let v = &m.movement;
                let (idempotency_key, request_hash) = split(&m.idempotency);
                Line::Movement(MovementLine {
                    seq: m.seq,
                    id: v.id.clone(),
                    user_id: v.user_id.clone(),
                    kind: v.kind.as_str().to_owned(),
                    amount_milli: v.amount.milli(),
                    reason: v.reason.clone(),
                    metadata: metadata_value(&v.metadata),
                    balance_after_milli: v.balance_after.milli(),
                    lifetime_after_milli: v.lifetime_after.milli(),
                    created_at_ms: v.created_at_ms,
                    idempotency_key,
                    request_hash,
                })
            })
            .collect(),
        Page::Redemptions(rows) => rows
            .iter()
            .map(|r| {
                let d = &r.redemption;
                let (idempotency_key, request_hash) = split(&r.idempotency);
                Line::Redemption(RedemptionLine {
                    seq: r.seq,
                    id: d.id.clone(),
                    reward_id: d.reward_id.clone(),
                    user_id: d.user_id.clone(),
                    cost_milli: d.cost.milli(),
                    status: d.status.as_str().to_owned(),
                    granted_by: d.granted_by.clone(),
                    created_at_ms: d.created_at_ms,
                    updated_at_ms: d.updated_at_ms,
                    idempotency_key,
                    request_hash,
                })
            })
            .collect(),
        Page::Ledger(rows) => rows
            .iter()
            .map(|l| {
                Line::Ledger(LedgerLine {
                    seq: l.seq,
                    user_id: l.user_id.clone(),
                    kind: l.kind.as_str().to_owned(),
                    amount_milli: l.amount.milli(),
                    balance_after_milli: l.balance_after.milli(),
                    lifetime_after_milli: l.lifetime_after.milli(),
                    reference: l.reference.clone(),
                    created_at_ms: l.created_at_ms,
                    rules_version: l.rules_version,
                })
            })
            .collect(),
        Page::Hidden(rows) => rows
            .iter()
            .map(|(user, at)| {
                Line::HiddenUser(HiddenLine {
                    user_id: user.clone(),
                    hidden_at_ms: *at,
                })
            })
            .collect(),
        Page::Erasures(rows) => rows
            .iter()
            .map(|e| {
                let r = &e.erasure;
                Line::Erasure(ErasureLine {
                    id: r.id.clone(),
                    user_hash: e.user_hash.clone(),
                    erased_at_ms: r.erased_at_ms,
                    events: r.events,
                    ledger_entries: r.ledger_entries,
                    movements: r.movements,
                    redemptions: r.redemptions,
                })
            })
            .collect(),
    }
}

/// A line as written: its JSON and a newline.
fn line_text(line: &Line) -> Result<String, EngineError> {
    let mut text = serde_json::to_string(line).map_err(|e| {
        EngineError::Store(gamify_store::StoreError::Corrupt(format!(
            "unrenderable row: {e}"
        )))
    })?;
    text.push('\n');
    Ok(text)
}

/// Writes the brief's two files into `dir`: `gamify_events.json` (every
/// event selected, as the API renders it) and `gamify_balances.json` (every
/// user's balance, as `GET /balance` renders it), each a JSON array written
/// a page at a time. `progress` hears the rows written so far.
pub async fn write_brief_files(
    engine: &Engine,
    filter: &ExportFilter,
    dir: &Path,
    progress: impl Fn(&str, u64),
) -> Result<(u64, u64), ExportError> {
    const FILES: [(Table, &str); 2] = [
        (Table::Events, "gamify_events.json"),
        (Table::Users, "gamify_balances.json"),
    ];
    // As with --out, nothing is overwritten; and neither file is written
    // when the other one is in the way.
    for (_, name) in FILES {
        let path = dir.join(name);
        if path.exists() {
            return Err(ExportError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists already; choose another folder or move it away",
                    path.display()
                ),
            )));
        }
    }
    std::fs::create_dir_all(dir)?;
    let mut written = [0u64; 2];
    for (slot, (table, name)) in FILES.into_iter().enumerate() {
        let mut out = std::io::BufWriter::new(std::fs::File::create_new(dir.join(name))?);
        out.write_all(b"[")?;
        let mut after = After::Start;
        loop {
            let page = engine
                .store()
                .export_page(table, after.clone(), filter, PAGE_ROWS)
                .await
                .map_err(EngineError::from)?;
            if page.is_empty() {
                break;
            }
            after = page.next();
            let items: Vec<Value> = match &page {
                Page::Events(rows) => rows
                    .iter()
                    .map(|e| serde_json::to_value(render_event(&e.record, engine.rule_book())))
                    .collect::<Result<_, _>>()?,
                Page::Users(rows) => {
                    let mut items = Vec::with_capacity(rows.len());
                    for (id, snapshot) in rows {
                        let balance = engine.render_balance(id, snapshot).await?;
                        items.push(serde_json::to_value(balance)?);
                    }
                    items
                }
                _ => Vec::new(),
            };
            for item in items {
                if written[slot] > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(b"\n")?;
                serde_json::to_writer(&mut out, &item)?;
                written[slot] += 1;
            }
            progress(name, written[slot]);
        }
        out.write_all(b"\n]\n")?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    Ok((written[0], written[1]))
}

/// Why writing an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A file could not be written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A row could not be rendered.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}
