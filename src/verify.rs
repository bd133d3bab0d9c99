//! `gamify verify` at the engine's edge: the store's own checks (ledger
//! chains, balances, counts, stock, orphan rows, the embedded leaderboard;
//! see `gamify_store::verify`), then the checks that need the rules, made
//! on every user a page at a time so that memory stays flat:
//!
//! - **Achievements implied by history**: each user's unlocked set is what
//!   the rules give for their events, streak and points
//!   ([`gamify_core::achievement_breaches`]).
//! - **Erased users stay erased**: no user's row, and no leaderboard
//!   opt-out, has the id of an erasure.

use std::collections::HashSet;

pub use gamify_api::FindingResponse;
use gamify_core::{History, achievement_breaches};
use gamify_store::export::{After, ExportFilter, Page, Table};
use gamify_store::{Finding, verify::MAX_FINDINGS};

use crate::engine::{Engine, EngineError};

/// Users read per page.
const PAGE: u32 = 1000;

impl Engine {
    /// Checks every invariant of the stored data; empty when all hold.
    pub async fn verify(&self) -> Result<Vec<FindingResponse>, EngineError> {
        let mut findings = self.store().verify().await?;
        findings.extend(self.verify_users().await?);
        Ok(findings
            .into_iter()
            .map(|f| FindingResponse {
                subject: f.subject,
                message: f.message,
            })
            .collect())
    }

    /// Hands every page of `table`, in order, to `visit` until the table
    /// ends or `visit` answers false.
    async fn walk(
        &self,
        table: Table,
        mut visit: impl FnMut(&Page) -> bool,
    ) -> Result<(), EngineError> {
        let mut after = After::Start;
        loop {
            let page = self
                .store()
                .export_page(table, after, &ExportFilter::default(), PAGE)
                .await?;
            if page.is_empty() || !visit(&page) {
                return Ok(());
            }
            after = page.next();
        }
    }

    async fn verify_users(&self) -> Result<Vec<Finding>, EngineError> {
        let erased = self.erased_hashes().await?;
        let was_erased = |user: &str| {
            !erased.is_empty() && erased.contains(&gamify_store::erasure::user_hash(user))
        };
        let mut findings = Vec::new();
        let mut checked = 0u64;
        // Every version's catalogue: see achievement_breaches for how a
        // rules change narrows what is certainly due.
        let versions = self.rule_book().all();
        let catalogues: Vec<&[gamify_core::Achievement]> = versions
            .iter()
            .map(|v| v.rules.achievements.as_slice())
            .collect();
        self.walk(Table::Users, |page| {
            let Page::Users(users) = page else {
                return false;
            };
            for (user, snapshot) in users {
                let history = History {
                    events: snapshot.event_count,
                    best_streak: snapshot.state.best_streak,
                    lifetime: snapshot.state.lifetime,
                    categories: &snapshot.state.categories,
                };
                for breach in
                    achievement_breaches(&snapshot.state.achievements, history, &catalogues)
                {
                    findings.push(Finding {
                        subject: format!("user {user}"),
                        message: breach,
                    });
                }
                if was_erased(user) {
                    findings.push(Finding {
                        subject: format!("user {user}"),
                        message: "was erased, but has a row".into(),
                    });
                }
            }
            checked += users.len() as u64;
            if checked % 100_000 < u64::from(PAGE) {
                tracing::info!(users = checked, "verifying users");
            }
            (findings.len() as i64) < MAX_FINDINGS
        })
        .await?;
        // Leaderboard opt-outs of erased users (an erasure removes them).
        if !erased.is_empty() {
            self.walk(Table::Hidden, |page| {
                if let Page::Hidden(rows) = page {
                    for (user, _) in rows.iter().filter(|(u, _)| was_erased(u)) {
                        findings.push(Finding {
                            subject: format!("user {user}"),
                            message: "was erased, but their leaderboard opt-out remains".into(),
                        });
                    }
                }
                true
            })
            .await?;
        }
        findings.truncate(MAX_FINDINGS as usize);
        Ok(findings)
    }

    async fn erased_hashes(&self) -> Result<HashSet<String>, EngineError> {
        let mut hashes = HashSet::new();
        self.walk(Table::Erasures, |page| {
            if let Page::Erasures(rows) = page {
                hashes.extend(rows.iter().map(|e| e.user_hash.clone()));
            }
            true
        })
        .await?;
        Ok(hashes)
    }
}
