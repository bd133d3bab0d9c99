//! The writer thread, which owns the only write connection to the log, and
//! the thread it hands the derived tables to (see the module docs of
//! `super`).
//!
//! Every write is an [`Op`]: an event, a movement (spend or adjustment), a
//! redemption or a settlement. Each is planned against the user's newest
//! state (this transaction, then the backlog, then the cache, then the
//! derived table) and the log's rows (rewards, redemptions, keys), which this
//! thread alone writes; so what it reads cannot change under it, and a
//! user's balance check and debit are one step.

use std::cell::RefCell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::Duration;

use gamify_core::{Points, Rules};
// foldhash, not SipHash: these maps live for one transaction and hold at
// most a batch's users, so they need speed, not flooding resistance.
use hashbrown::HashMap;
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::write::{self, Planned};
use super::{
    JoinOnDrop, MATERIALIZE_AFTER, MAX_BATCH, backend, boards, cache, erase, keys, materialize,
    read, webhooks,
};
use crate::economy::{self, Done, Op, is_refusal};
use crate::scoring::{self, LedgerEntry};
use crate::webhook;
use crate::{Finding, Moved, Redeemed, Reward, RewardDraft, StoreError, UserSnapshot};

/// Where an [`Op`]'s answer goes.
pub type Reply = oneshot::Sender<Result<Done, StoreError>>;

/// What the writer thread is asked to do.
pub enum Job {
    /// A write, with the span of the request that asked it (log events of
    /// its planning belong to that request).
    Apply(Op, Reply, tracing::Span),
    /// Create (`true`) or update a reward.
    SaveReward(
        RewardDraft,
        bool,
        oneshot::Sender<Result<Reward, StoreError>>,
    ),
    /// Bring the derived tables up to date, then check the invariants.
    Verify(oneshot::Sender<Result<Vec<Finding>, StoreError>>),
    /// [`crate::Store::users_where`], after the derived tables caught up
    /// (so that the list is complete): `(filter, after, limit)`.
    UsersWhere(
        crate::UserFilter,
        Option<String>,
        u32,
        oneshot::Sender<Result<Vec<String>, StoreError>>,
    ),
    /// A page of users' current state for an export, after the derived
    /// tables caught up.
    ExportUsers(
        crate::export::After,
        crate::export::ExportFilter,
        u32,
        oneshot::Sender<Result<crate::export::Page, StoreError>>,
    ),
    /// [`crate::Store::analytics`], after the derived tables caught up:
    /// `(active_since, days_from)`.
    Analytics(
        Vec<i64>,
        i64,
        oneshot::Sender<Result<crate::analytics::Analytics, StoreError>>,
    ),
    /// Write an export page's rows as they are (an import).
    Import(crate::export::Page, oneshot::Sender<Result<(), StoreError>>),
    /// Expire what is due of one user's points (alone, after what came
    /// before it is committed, so that its read of the ledger is complete).
    Expire(economy::Expire, Reply),
    /// Erase a user (alone, after the derived tables caught up, since they
    /// are what finds the user's rows): `(user, erasure id, at)`.
    Erase(
        gamify_core::UserId,
        String,
        i64,
        oneshot::Sender<Result<crate::Erasure, StoreError>>,
    ),
    /// Hide a user from the leaderboards, or show them again:
    /// `(user, hidden, at)`.
    SetHidden(
        gamify_core::UserId,
        bool,
        i64,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    /// A change to webhooks' subscriptions or deliveries; answers with the
    /// delivery for [`HookJob::Replay`].
    Hook(
        HookJob,
        oneshot::Sender<Result<Option<crate::Delivery>, StoreError>>,
    ),
    /// [`crate::Store::prune_deliveries`]: `(before, limit)`.
    PruneDeliveries(i64, u32, oneshot::Sender<Result<u64, StoreError>>),
    /// Time has passed: bring the derived tables up to date if anything waits.
    Tick,
}

/// What [`Job::Hook`] asks: a change to the small admin tables (webhook
/// subscriptions and their outbox, API keys).
pub enum HookJob {
    /// [`crate::Store::subscribe`]
    Subscribe(crate::Subscription),
    /// [`crate::Store::unsubscribe`]: `(id, at)`.
    Unsubscribe(String, i64),
    /// [`crate::Store::delivery_attempted`]
    Attempted(Vec<crate::Attempt>),
    /// [`crate::Store::replay_delivery`]: `(id, at)`.
    Replay(String, i64),
    /// [`crate::Store::notify`]
    Notify(Vec<webhook::Notice>),
    /// [`crate::Store::create_key`]
    CreateKey(crate::keys::ApiKey),
    /// [`crate::Store::add_rules`]: the next version, already numbered.
    AddRules(crate::RuleVersion),
    /// [`crate::Store::revoke_key`]: `(id, at)`.
    RevokeKey(String, i64),
    /// [`crate::Store::add_tenant`]
    AddTenant(crate::tenants::Tenant),
}

/// A backlog for the derived-table thread, and who waits for it to be written.
pub struct Handover {
    backlog: materialize::Backlog,
    written: Option<std::sync::mpsc::Sender<()>>,
}

/// What the writer publishes after each commit, for readers.
pub struct Published {
    /// Users' states.
    pub cache: Arc<cache::UserCache>,
    /// The leaderboards.
    pub boards: Arc<boards::Boards>,
    /// Users with rows the derived indexes do not list yet.
    pub unindexed: Arc<super::unindexed::Unindexed>,
}

/// The writer thread's state.
pub struct Writer {
    /// The only write connection to the log.
    pub log: Connection,
    /// A read connection to the derived tables, for users not in the cache.
    pub users: Connection,
    /// A read connection to the log with the derived tables attached, for
    /// [`Job::Verify`].
    pub checker: Connection,
    /// The deployment's settings around the rules (expiry, grants).
    pub rules: Rules,
    /// Every version of the rules; an event is scored with the one it names.
    pub book: Arc<crate::RuleBook>,
    /// What readers see.
    pub published: Published,
    /// To the derived-table thread.
    pub to_materializer: SyncSender<Handover>,
    /// Joined once the writer has handed over its last backlog.
    pub materializer: JoinOnDrop,
    /// Hashes of the erased user ids ([`crate::erasure::user_hash`]): every
    /// write for one of them is refused.
    pub erased: HashSet<String>,
    /// To the thread that applies changes to the leaderboards; none when
    /// the store was opened without them.
    pub board_changes: Option<boards::Changes>,
    /// The webhook subscriptions not deleted: every write's notices are
    /// addressed to them in its transaction. Only this thread changes them.
    pub hooks: Vec<crate::Subscription>,
    /// Grows by one after every commit of the log: how the store tells an
    /// outbox that nothing was written since it was last seen empty.
    pub commits: Arc<std::sync::atomic::AtomicU64>,
}

/// A user changed by the transaction in progress.
struct Changed {
    stored_version: u64,
    after: UserSnapshot,
}

/// What a transaction changed, published once it commits.
#[derive(Default)]
struct Effects {
    users: HashMap<String, Changed>,
    /// (user, occurred_at, seq) of each event logged.
    events: Vec<(String, i64, i64)>,
    /// (user, seq) of each ledger entry written.
    ledger: Vec<(String, i64)>,
    /// (user, seq) of each webhook delivery written.
    deliveries: Vec<(String, i64)>,
    /// What each event logged adds to the leaderboards' windows.
    points: Vec<crate::board::EventPoints>,
}

impl Effects {
    /// Room for `ops` requests that each touch one user with one event and
    /// one ledger entry (the common case), so the batch does not regrow them.
    fn with_capacity(ops: usize) -> Effects {
        Effects {
            users: HashMap::with_capacity(ops),
            events: Vec::with_capacity(ops),
            ledger: Vec::with_capacity(ops),
            deliveries: Vec::new(),
            points: Vec::with_capacity(ops),
        }
    }
}

impl Writer {
    fn committed(&self) {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }

    /// Serves jobs until the queue closes, then hands over what it holds.
    pub fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut batch: Vec<(Op, Reply, tracing::Span)> = Vec::with_capacity(MAX_BATCH);
        let mut backlog = materialize::Backlog::default();
        while let Some(first) = rx.blocking_recv() {
            let mut tick = false;
            let mut next = Some(first);
            while let Some(job) = next.take() {
                match job {
                    Job::Apply(op, reply, span) => batch.push((op, reply, span)),
                    Job::Tick => tick = true,
                    // Alone, in arrival order: commit what came before first.
                    Job::SaveReward(draft, create, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let _ = reply.send(self.save_reward(&draft, create));
                    }
                    Job::Expire(mut expire, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let result = read::credited_since(
                            &self.checker,
                            expire.user_id.as_str(),
                            expire.cutoff_ms,
                            &self.published.unindexed.ledger_of(expire.user_id.as_str()),
                        )
                        .and_then(|credited| {
                            expire.credited_since = Some(credited);
                            let op = Op::Expire(expire);
                            self.commit_batch(&[&op], &[], &mut backlog)
                                .pop()
                                .unwrap_or(Err(StoreError::Unavailable("no result")))
                        });
                        let _ = reply.send(result);
                    }
                    Job::UsersWhere(filter, after, limit, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        backlog = self.write_derived(backlog);
                        let _ = reply.send(read::users_where(
                            &self.checker,
                            filter,
                            after.as_deref(),
                            limit,
                        ));
                    }
                    Job::ExportUsers(after, filter, limit, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        backlog = self.write_derived(backlog);
                        let page = read::export_users(&self.checker, &after, &filter, limit);
                        let _ = reply.send(page);
                    }
                    Job::Import(page, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let _ = reply.send(self.import(&page));
                    }
                    Job::Erase(user, id, at, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        backlog = self.write_derived(backlog);
                        let _ = reply.send(self.erase(&user, &id, at));
                    }
                    Job::SetHidden(user, hidden, at, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let _ = reply.send(self.set_hidden(&user, hidden, at));
                    }
                    Job::Analytics(active_since, from, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        backlog = self.write_derived(backlog);
                        let _ = reply.send(read::analytics(&self.checker, &active_since, from));
                    }
                    Job::Hook(job, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let _ = reply.send(self.hook(job, &mut backlog));
                    }
                    Job::PruneDeliveries(before, limit, reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        let pruned = webhooks::prune(&self.log, before, limit).map(|gone| {
                            let n = gone.len() as u64;
                            backlog.prune_deliveries(gone);
                            n
                        });
                        self.committed();
                        let _ = reply.send(pruned);
                    }
                    Job::Verify(reply) => {
                        self.flush_batch(&mut batch, &mut backlog);
                        backlog = self.write_derived(backlog);
                        let _ = reply.send(self.verify());
                    }
                }
                if batch.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            self.flush_batch(&mut batch, &mut backlog);
            if !backlog.is_empty() && (tick || backlog.events() >= MATERIALIZE_AFTER) {
                backlog = self.hand_over(backlog);
            }
        }
        if !backlog.is_empty()
            && self
                .to_materializer
                .send(Handover {
                    backlog,
                    written: None,
                })
                .is_err()
        {
            tracing::error!(
                "the derived-table writer stopped; the log will be replayed at the next start"
            );
        }
        drop(self.to_materializer);
        drop(self.materializer);
        tracing::debug!("sqlite writer stopped");
    }

    fn flush_batch(
        &mut self,
        batch: &mut Vec<(Op, Reply, tracing::Span)>,
        backlog: &mut materialize::Backlog,
    ) {
        if batch.is_empty() {
            return;
        }
        let ops: Vec<&Op> = batch.iter().map(|(op, _, _)| op).collect();
        let spans: Vec<tracing::Span> = batch.iter().map(|(_, _, s)| s.clone()).collect();
        let results = self.commit_batch(&ops, &spans, backlog);
        for ((_, reply, _), result) in batch.drain(..).zip(results) {
            // The requester may have gone away; the write stands regardless.
            let _ = reply.send(result);
        }
    }

    /// Passes the backlog to the materializer if it is free; keeps it (and
    /// returns it to grow) if not, unless it has grown so large that the
    /// writer should wait rather than let event listings scan ever more.
    fn hand_over(&self, backlog: materialize::Backlog) -> materialize::Backlog {
        let handover = Handover {
            backlog,
            written: None,
        };
        match self.to_materializer.try_send(handover) {
            Ok(()) => materialize::Backlog::default(),
            Err(TrySendError::Full(h)) if h.backlog.events() < 4 * MATERIALIZE_AFTER => h.backlog,
            Err(TrySendError::Full(h)) => match self.to_materializer.send(h) {
                Ok(()) => materialize::Backlog::default(),
                Err(std::sync::mpsc::SendError(h)) => h.backlog,
            },
            Err(TrySendError::Disconnected(h)) => h.backlog,
        }
    }

    /// Hands over the backlog and waits until the derived tables hold it
    /// (and everything handed over before). Returns it if that failed.
    fn write_derived(&self, backlog: materialize::Backlog) -> materialize::Backlog {
        self.derive_now(backlog).0
    }

    /// [`Writer::write_derived`], and whether the derived tables said they
    /// hold it.
    fn derive_now(&self, backlog: materialize::Backlog) -> (materialize::Backlog, bool) {
        let (done, written) = std::sync::mpsc::channel();
        let handover = Handover {
            backlog,
            written: Some(done),
        };
        if let Err(std::sync::mpsc::SendError(h)) = self.to_materializer.send(handover) {
            return (h.backlog, false);
        }
        // The materializer retries failures; a bound keeps a broken disk from
        // hanging the writer, and the check then reports the lag.
        let acked = written.recv_timeout(Duration::from_secs(60)).is_ok();
        (materialize::Backlog::default(), acked)
    }

    /// Erases a user (see `super::erase`). The derived tables hold every
    /// earlier write when this runs.
    fn erase(
        &mut self,
        user: &gamify_core::UserId,
        id: &str,
        at: i64,
    ) -> Result<crate::Erasure, StoreError> {
        let hash = crate::erasure::user_hash(user.as_str());
        if let Some(done) = erase::find(&self.log, &hash)? {
            return Ok(done);
        }
        let known = match self.published.cache.get(user.as_str()) {
            Some(known) => known.is_some(),
            None => read::user(&self.users, user)?.is_some(),
        };
        if !known {
            return Err(StoreError::NotFound("user"));
        }
        let rows = erase::rows_of(&self.checker, user.as_str())?;
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let (erasure, removed) = erase::erase_log(&tx, user.as_str(), &hash, id, at, &rows)?;
        tx.commit().map_err(backend)?;
        self.committed();
        self.erased.insert(hash);
        self.board_change(boards::Change::Remove(user.as_str().to_owned()));
        let backlog = materialize::Backlog {
            erased: vec![removed],
            ..materialize::Backlog::default()
        };
        let (left, acked) = self.derive_now(backlog);
        self.published.cache.forget(user.as_str());
        self.published.unindexed.forget(user.as_str());
        if acked && left.is_empty() {
            erase::finish(&self.log, user.as_str())?;
        } else {
            // The log's part stands; the next start finishes the rest.
            tracing::error!(
                erasure = %erasure.id,
                "the derived tables did not confirm an erasure; it is finished at the next start"
            );
        }
        tracing::info!(erasure = %erasure.id, events = erasure.events, ledger_entries = erasure.ledger_entries, "user erased");
        Ok(erasure)
    }

    /// Sends a change to the leaderboards, if this store keeps them.
    fn board_change(&self, change: boards::Change) {
        if let Some(changes) = &self.board_changes {
            self.published.boards.send(changes, change);
        }
    }

    /// Records that a user is hidden from the leaderboards (or no longer),
    /// then hides them.
    fn set_hidden(
        &mut self,
        user: &gamify_core::UserId,
        hidden: bool,
        at: i64,
    ) -> Result<(), StoreError> {
        if is_erased(&self.erased, user.as_str()) {
            return Err(StoreError::Erased);
        }
        let sql = if hidden {
            "INSERT INTO hidden_users (user_id, hidden_at) VALUES (?1, ?2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM hidden_users WHERE user_id = ?1 AND ?2 IS NOT NULL"
        };
        self.log
            .execute(sql, rusqlite::params![user.as_str(), at])
            .map_err(backend)?;
        self.board_change(boards::Change::Hidden(user.as_str().to_owned(), hidden));
        Ok(())
    }

    fn verify(&self) -> Result<Vec<Finding>, StoreError> {
        let snapshot = self.checker.unchecked_transaction().map_err(backend)?;
        let mut findings = Vec::new();
        let checks = crate::verify::checks()
            .into_iter()
            .chain(crate::verify::sqlite_checks());
        for (_, sql) in checks {
            let mut stmt = snapshot.prepare(&sql).map_err(backend)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok(Finding {
                        subject: r.get(0)?,
                        message: r.get(1)?,
                    })
                })
                .map_err(backend)?;
            for row in rows {
                findings.push(row.map_err(backend)?);
            }
        }
        if self.board_changes.is_some() {
            findings.extend(self.published.boards.compare(&snapshot)?);
        }
        Ok(findings)
    }

    /// One import page in one transaction. Nothing is published: the store
    /// must be reopened, which rebuilds the derived tables from the log.
    fn import(&mut self, page: &crate::export::Page) -> Result<(), StoreError> {
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        write::import_page(&tx, page)?;
        tx.commit().map_err(backend)?;
        self.committed();
        Ok(())
    }

    fn hook(
        &mut self,
        mut job: HookJob,
        backlog: &mut materialize::Backlog,
    ) -> Result<Option<crate::Delivery>, StoreError> {
        if let HookJob::AddRules(version) = &mut job {
            // Numbered here, where adds are serialised; the same rules as
            // the current version add nothing.
            let current = self.book.current();
            if current.rules == version.rules {
                return Ok(None);
            }
            version.version = current.version + 1;
        }
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut written = Vec::new();
        let replayed = match &job {
            HookJob::Subscribe(s) => webhooks::subscribe(&tx, s).map(|()| None),
            HookJob::Unsubscribe(id, at) => webhooks::unsubscribe(&tx, id, *at).map(|()| None),
            HookJob::Attempted(attempts) => attempts
                .iter()
                .try_for_each(|a| webhooks::attempted(&tx, a))
                .map(|()| None),
            HookJob::Replay(id, at) => webhooks::replay(&tx, id, *at).map(Some),
            HookJob::Notify(notices) => {
                // A notice made before its user was erased is not written
                // after (the sweeps make them outside the writer).
                let notices: Vec<webhook::Notice> = notices
                    .iter()
                    .filter(|n| !is_erased(&self.erased, &n.user_id))
                    .cloned()
                    .collect();
                webhooks::insert(&tx, &webhook::fan_out(&notices, &self.hooks)).map(|w| {
                    written = w;
                    None
                })
            }
            HookJob::CreateKey(key) => keys::create(&tx, key).map(|()| None),
            HookJob::AddRules(version) => super::rules::add(&tx, version).map(|()| None),
            HookJob::RevokeKey(id, at) => keys::revoke(&tx, id, *at).map(|()| None),
            HookJob::AddTenant(tenant) => super::tenants::add(&tx, tenant).map(|()| None),
        }?;
        tx.commit().map_err(backend)?;
        self.committed();
        backlog.add_deliveries(written);
        match job {
            HookJob::Subscribe(s) => self.hooks.push(s),
            HookJob::Unsubscribe(id, _) => self.hooks.retain(|s| s.id != id),
            HookJob::AddRules(version) => self.book.extend(vec![version])?,
            _ => {}
        }
        Ok(replayed)
    }

    fn save_reward(&mut self, draft: &RewardDraft, create: bool) -> Result<Reward, StoreError> {
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let saved = write::save_reward(&tx, draft, create)?;
        tx.commit().map_err(backend)?;
        self.committed();
        Ok(saved)
    }

    /// Commits `ops` together; if a write fails, retries them one per
    /// transaction so that only the failing request is refused. `spans`:
    /// the requests' spans, one per op (or none).
    fn commit_batch(
        &mut self,
        ops: &[&Op],
        spans: &[tracing::Span],
        backlog: &mut materialize::Backlog,
    ) -> Vec<Result<Done, StoreError>> {
        match self.run_transaction(ops, spans, backlog) {
            Ok(results) => results,
            // A full disk fails every request alike: no retries one by one.
            Err(StoreError::Unavailable(why)) => {
                tracing::error!(reason = why, batch = ops.len(), "sqlite write refused");
                ops.iter()
                    .map(|_| Err(StoreError::Unavailable(why)))
                    .collect()
            }
            Err(e) if ops.len() > 1 => {
                tracing::warn!(error = %e, batch = ops.len(), "batch rolled back; retrying its requests one by one");
                // Nothing of the batch was stored or published.
                ops.iter()
                    .enumerate()
                    .map(|(i, op)| {
                        let span = spans.get(i).map_or(&[][..], std::slice::from_ref);
                        match self.run_transaction(std::slice::from_ref(op), span, backlog) {
                            Ok(mut results) => results
                                .pop()
                                .unwrap_or(Err(StoreError::Unavailable("no result"))),
                            Err(e) => Err(e),
                        }
                    })
                    .collect()
            }
            Err(e) => {
                tracing::error!(error = %e, source = ?std::error::Error::source(&e), "sqlite write failed");
                vec![Err(e)]
            }
        }
    }

    /// Plans and applies `ops` in one transaction. A refusal decided by
    /// planning is that request's result; a failed write (or commit) aborts
    /// the transaction and is returned as the outer error, with nothing
    /// stored or published.
    fn run_transaction(
        &mut self,
        ops: &[&Op],
        spans: &[tracing::Span],
        backlog: &mut materialize::Backlog,
    ) -> Result<Vec<Result<Done, StoreError>>, StoreError> {
        let tx = self
            .log
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend)?;
        let mut step = Step {
            tx: &tx,
            log: write::Appender::new(&tx),
            users: &self.users,
            user_statement: RefCell::new(None),
            checker: &self.checker,
            credits: HashMap::new(),
            cache: &self.published.cache,
            unindexed: &self.published.unindexed,
            backlog,
            rules: &self.rules,
            book: &self.book,
            erased: &self.erased,
            hooks: &self.hooks,
            wanted: webhook::Topics::of(&self.hooks),
            granted: Vec::new(),
            effects: Effects::with_capacity(ops.len()),
        };
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let _request = spans.get(i).map(tracing::Span::enter);
            let result = step.apply(op);
            tracing::debug!(outcome = economy::outcome(&result), "sqlite: write planned");
            match result {
                // Refusals are decided before the request writes anything
                // of its own (an expiry before a debit stands: it was due
                // either way); any other error may come after a write, so
                // the whole batch goes.
                Err(e) if !is_refusal(&e) => return Err(e),
                result => results.push(result),
            }
        }
        let effects = std::mem::take(&mut step.effects);
        // Its statements go back to the cache before the commit.
        drop(step);
        tx.commit().map_err(backend)?;
        self.committed();
        self.publish(effects, backlog);
        Ok(results)
    }

    fn publish(&self, effects: Effects, backlog: &mut materialize::Backlog) {
        let published = &self.published;
        let all_time: Vec<_> = effects
            .users
            .iter()
            .map(|(user, changed)| {
                (
                    user.clone(),
                    changed.after.state.lifetime,
                    changed.after.state.categories.clone(),
                )
            })
            .collect();
        // The cache first: a leaderboard page that counts this commit (its
        // boards' stamp, `Boards::stamp`) then also shows its balances, so
        // a page kept under that stamp is never older than it says.
        for (user, changed) in effects.users {
            let state = Arc::new(changed.after);
            published.cache.offer_written(&user, state.clone(), true);
            backlog.touch(&user, changed.stored_version, state);
        }
        self.board_change(boards::Change::Commit(all_time, effects.points));
        // Before any request of the commit is answered: see `unindexed`.
        published.unindexed.logged(
            effects.events.iter().map(|(u, _, seq)| (u.as_str(), *seq)),
            effects.ledger.iter().map(|(u, seq)| (u.as_str(), *seq)),
        );
        for (user, occurred_at, seq) in effects.events {
            backlog.add_event(&user, occurred_at, seq);
        }
        for (user, seq) in effects.ledger {
            backlog.add_ledger(&user, seq);
        }
        backlog.add_deliveries(effects.deliveries);
    }
}

/// Whether `user` is among the erased (`erased` holds their ids' hashes);
/// hashes nothing while nobody has been erased.
fn is_erased(erased: &HashSet<String>, user: &str) -> bool {
    !erased.is_empty() && erased.contains(&crate::erasure::user_hash(user))
}

/// One transaction in progress: what it reads through, and what it changed.
struct Step<'a> {
    tx: &'a Connection,
    /// Appends events and ledger entries to the log (`tx`).
    log: write::Appender<'a>,
    users: &'a Connection,
    /// The query of a user's row in `users`, prepared once for the
    /// transaction (first-seen users each need it).
    user_statement: RefCell<Option<rusqlite::CachedStatement<'a>>>,
    /// Reads what is committed (the log with the derived tables), for the
    /// ledger sums expiry needs; this transaction's own credits are in
    /// `credits`.
    checker: &'a Connection,
    /// Points credited per user by this transaction so far.
    credits: HashMap<String, Points>,
    cache: &'a cache::UserCache,
    /// Rows of committed writes not yet in the derived indexes.
    unindexed: &'a super::unindexed::Unindexed,
    backlog: &'a materialize::Backlog,
    rules: &'a Rules,
    book: &'a crate::RuleBook,
    erased: &'a HashSet<String>,
    /// Webhook subscriptions: see [`Writer::hooks`].
    hooks: &'a [crate::Subscription],
    /// The topics they want, between them.
    wanted: webhook::Topics,
    /// Rewards granted by the op being applied (for their notices).
    granted: Vec<crate::Redemption>,
    effects: Effects,
}

impl Step<'_> {
    /// The user's newest state and the version of their derived row.
    fn state_of(&self, user: &str) -> Result<(Option<UserSnapshot>, u64), StoreError> {
        if let Some(changed) = self.effects.users.get(user) {
            return Ok((Some(changed.after.clone()), changed.stored_version));
        }
        self.backlog.state_of(user, || match self.cache.get(user) {
            Some(known) => Ok(known.map(|state| (*state).clone())),
            None => {
                let id = gamify_core::UserId::parse(user)
                    .map_err(|_| crate::corrupt("user id", user))?;
                let mut slot = self.user_statement.borrow_mut();
                if slot.is_none() {
                    *slot = Some(read::user_statement(self.users)?);
                }
                read::user_by(slot.as_mut().expect("prepared just now"), &id)
            }
        })
    }

    /// Notes a user's new state and the ledger entries that got it there.
    fn changed(
        &mut self,
        user: &str,
        stored_version: u64,
        after: UserSnapshot,
        ledger: &[LedgerEntry],
        now: i64,
    ) -> Result<(), StoreError> {
        let seqs = self.log.ledger(user, ledger, now)?;
        self.note_credits(user, ledger)?;
        self.record_change(user, stored_version, after, seqs);
        Ok(())
    }

    /// Adds the credits among `ledger` to what this transaction credited the
    /// user. Only a debit under expiry reads that (an expiry job runs in a
    /// transaction of its own), so nothing is kept while expiry is off.
    fn note_credits(&mut self, user: &str, ledger: &[LedgerEntry]) -> Result<(), StoreError> {
        if self.rules.expiry.is_none() {
            return Ok(());
        }
        for entry in ledger.iter().filter(|e| economy::is_credit(e)) {
            let sum = self.credits.entry(user.to_owned()).or_default();
            *sum = sum.checked_add(entry.amount)?;
        }
        Ok(())
    }

    /// Expires what is due of the user's points (credited before `cutoff`
    /// and still held), if anything; returns how much. `committed`: what was
    /// credited since the cutoff before this transaction.
    fn expire_due(&mut self, user: &str, committed: Points, at: i64) -> Result<Points, StoreError> {
        let mine = self.credits.get(user).copied().unwrap_or_default();
        let (before, stored_version) = self.state_of(user)?;
        match economy::plan_expiry(before.clone(), committed.checked_add(mine)?, at)? {
            None => Ok(Points::ZERO),
            Some((after, entry)) => {
                let expired = Points::from_milli(-entry.amount.milli());
                self.changed(user, stored_version, after, &[entry], at)?;
                Ok(expired)
            }
        }
    }

    /// With expiry on, expires what is due before a debit at `at`, so that
    /// points past their day can never be spent. The expiry stands even if
    /// the debit is then refused: it was due either way.
    fn expire_before_debit(&mut self, user: &str, at: i64) -> Result<(), StoreError> {
        if let Some(expiry) = self.rules.expiry {
            let cutoff = expiry.cutoff_ms(at);
            let committed =
                read::credited_since(self.checker, user, cutoff, &self.unindexed.ledger_of(user))?;
            self.expire_due(user, committed, at)?;
        }
        Ok(())
    }

    fn record_change(
        &mut self,
        user: &str,
        stored_version: u64,
        after: UserSnapshot,
        ledger_seqs: Vec<i64>,
    ) {
        self.effects.users.insert(
            user.to_owned(),
            Changed {
                stored_version,
                after,
            },
        );
        self.effects
            .ledger
            .extend(ledger_seqs.into_iter().map(|s| (user.to_owned(), s)));
    }

    /// Refuses a write for an erased user (see [`crate::erasure`]).
    fn check_not_erased(&self, user: &str) -> Result<(), StoreError> {
        if is_erased(self.erased, user) {
            return Err(StoreError::Erased);
        }
        Ok(())
    }

    /// Applies `op`, and writes a delivery for every notice it gives to
    /// every subscription that wants it.
    fn apply(&mut self, op: &Op) -> Result<Done, StoreError> {
        self.granted.clear();
        let (Some(user), false) = (op.user_id(), self.hooks.is_empty()) else {
            return self.apply_op(op);
        };
        let before = webhook::Before::of(op, self.state_of(user.as_str())?.0.as_ref());
        let done = self.apply_op(op)?;
        let deliveries = {
            let read;
            let after = match self.effects.users.get(user.as_str()) {
                Some(changed) => Some(&changed.after),
                None => {
                    read = self.state_of(user.as_str())?.0;
                    read.as_ref()
                }
            };
            let wanted = self.wanted;
            let mut notices = webhook::notices(before, after, &done, wanted, self.book);
            if wanted.has(webhook::Topic::RewardRedeemed) {
                notices.extend(
                    self.granted
                        .iter()
                        .map(|r| webhook::redeemed_notice(r, after)),
                );
            }
            webhook::fan_out(&notices, self.hooks)
        };
        let written = webhooks::insert(self.tx, &deliveries)?;
        self.effects.deliveries.extend(written);
        Ok(done)
    }

    fn apply_op(&mut self, op: &Op) -> Result<Done, StoreError> {
        if let Some(user) = op.user_id() {
            self.check_not_erased(user.as_str())?;
        }
        match op {
            Op::Event(event) => {
                let user = event.user_id.as_str();
                let (before, stored_version) = self.state_of(user)?;
                match write::plan(self.tx, event, before.clone(), self.book)? {
                    Planned::Replay(recorded) => Ok(Done::Event(*recorded)),
                    Planned::Write(plan) => {
                        let (recorded, seq, ledger) = write::apply(&mut self.log, &plan)?;
                        self.effects
                            .points
                            .push(crate::board::EventPoints::of(&recorded.event)?);
                        if self.rules.expiry.is_some() {
                            self.note_credits(user, &scoring::ledger_entries(&recorded.event))?;
                        }
                        self.effects
                            .events
                            .push((user.to_owned(), event.occurred_at_ms, seq));
                        self.record_change(user, stored_version, plan.after().clone(), ledger);
                        self.grant(&recorded.event)?;
                        Ok(Done::Event(recorded))
                    }
                }
            }
            Op::Move(m) => {
                if let Some(idem) = &m.idempotency
                    && let Some((hash, original)) = read::movement_by_key(self.tx, &idem.key)?
                {
                    return economy::replay(hash.as_deref(), idem, || {
                        Ok(Done::Move(Moved {
                            movement: original,
                            replayed: true,
                        }))
                    });
                }
                let user = m.user_id.as_str();
                if m.amount < Points::ZERO {
                    self.expire_before_debit(user, m.created_at_ms)?;
                }
                let (before, stored_version) = self.state_of(user)?;
                let (movement, after, entry) = economy::plan_movement(before.clone(), m)?;
                write::insert_movement(self.tx, None, &movement, m.idempotency.as_ref())?;
                self.changed(user, stored_version, after, &[entry], m.created_at_ms)?;
                Ok(Done::Move(Moved {
                    movement,
                    replayed: false,
                }))
            }
            Op::Redeem(r) => {
                if let Some(idem) = &r.idempotency
                    && let Some((hash, original)) = read::redemption_by_key(self.tx, &idem.key)?
                {
                    return economy::replay(hash.as_deref(), idem, || {
                        Ok(Done::Redeem(Redeemed {
                            redemption: original,
                            replayed: true,
                        }))
                    });
                }
                self.expire_before_debit(r.user_id.as_str(), r.created_at_ms)?;
                let redemption = self.redeem(
                    &r.reward_id,
                    r.user_id.as_str(),
                    &r.id,
                    None,
                    r.idempotency.as_ref(),
                    r.created_at_ms,
                )?;
                Ok(Done::Redeem(Redeemed {
                    redemption,
                    replayed: false,
                }))
            }
            Op::Expire(e) => {
                let committed = e
                    .credited_since
                    .ok_or(StoreError::Unavailable("expiry without its ledger read"))?;
                Ok(Done::Expire(self.expire_due(
                    e.user_id.as_str(),
                    committed,
                    e.at_ms,
                )?))
            }
            Op::Settle(s) => {
                let current = read::redemption(self.tx, &s.redemption_id)?
                    .ok_or(StoreError::NotFound("redemption"))?;
                let user = current.user_id.clone();
                let (before, stored_version) = self.state_of(&user)?;
                let planned = economy::plan_settle(&current, before.clone(), s)?;
                if planned.changed {
                    write::set_status(self.tx, &planned.redemption)?;
                    if planned.returns_unit {
                        write::count_redeemed(self.tx, &current.reward_id, -1)?;
                    }
                    if let Some((after, entry)) = planned.refund {
                        self.changed(&user, stored_version, after, &[entry], s.at_ms)?;
                    }
                }
                Ok(Done::Settle(planned.redemption))
            }
        }
    }

    /// Checks and writes one redemption: the reward and the user's holding
    /// read here, where nothing else writes them.
    fn redeem(
        &mut self,
        reward_id: &str,
        user: &str,
        id: &str,
        granted_by: Option<&str>,
        idempotency: Option<&crate::Idempotency>,
        now: i64,
    ) -> Result<crate::Redemption, StoreError> {
        let reward = read::reward(self.tx, reward_id)?.ok_or(StoreError::NotFound("reward"))?;
        let held = read::held(self.tx, user, reward_id)?;
        let (before, stored_version) = self.state_of(user)?;
        let planned =
            economy::plan_redemption(before.clone(), &reward, held, id, user, granted_by, now)?;
        write::insert_redemption(self.tx, None, &planned.redemption, idempotency)?;
        write::count_redeemed(self.tx, reward_id, 1)?;
        if let Some((after, entry)) = planned.payment {
            self.changed(user, stored_version, after, &[entry], now)?;
        }
        Ok(planned.redemption)
    }

    /// The rewards the event's achievements grant, redeemed free. One that
    /// cannot be (no such reward, out of stock, …) is skipped and logged:
    /// the event stands either way.
    fn grant(&mut self, event: &crate::EventRecord) -> Result<(), StoreError> {
        for (achievement, _) in &event.unlocked {
            let Some(reward_id) = self.rules.grant_for(*achievement) else {
                continue;
            };
            let granted_by = format!("{}/{}", event.id, achievement.as_str());
            let id = crate::economy::grant_id(&event.id, *achievement);
            match self.redeem(
                reward_id,
                &event.user_id,
                &id,
                Some(&granted_by),
                None,
                event.created_at_ms,
            ) {
                Ok(granted) => self.granted.push(granted),
                Err(e) if is_refusal(&e) => {
                    tracing::warn!(user = %event.user_id, achievement = achievement.as_str(), reward = reward_id, reason = %e, "achievement reward not granted");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Writes the backlogs the writer hands over to the derived tables, in
/// order, merging those that wait. On failure keeps them (the log has every
/// change; reads are served from memory meanwhile) and tries again a second
/// later; if the store is closing, gives up and leaves them to the replay at
/// the next start.
pub fn materializer_loop(
    mut conn: Connection,
    handovers: Receiver<Handover>,
    cache: Arc<cache::UserCache>,
    unindexed: Arc<super::unindexed::Unindexed>,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut pending = materialize::Backlog::default();
    let mut waiting = Vec::new();
    let take = |h: Handover, pending: &mut materialize::Backlog, waiting: &mut Vec<_>| {
        pending.absorb(h.backlog);
        waiting.extend(h.written);
    };
    let mut open = true;
    while open {
        match handovers.recv() {
            Ok(h) => take(h, &mut pending, &mut waiting),
            Err(_) => break,
        }
        loop {
            while let Ok(more) = handovers.try_recv() {
                take(more, &mut pending, &mut waiting);
            }
            match materialize::write(&mut conn, &mut pending, super::now_ms()) {
                Ok(()) => {
                    unindexed.written(
                        pending.users.keys(),
                        pending.through_seq,
                        pending.through_ledger_seq,
                    );
                    // Epoch first: see cache::UserCache::offer.
                    cache.advance_epoch();
                    for (user, dirty) in pending.users.drain() {
                        cache.mark_clean(&user, dirty.latest.version);
                    }
                    pending = materialize::Backlog::default();
                    for done in waiting.drain(..) {
                        let _ = done.send(());
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, events = pending.events(), "writing the derived tables failed; will retry");
                    match handovers.recv_timeout(Duration::from_secs(1)) {
                        Ok(more) => take(more, &mut pending, &mut waiting),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => {
                            open = false;
                            break;
                        }
                    }
                }
            }
        }
    }
    tracing::debug!("sqlite derived-table writer stopped");
}
