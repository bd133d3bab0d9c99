//! Rules as data at the engine's edge: which rules new events are scored
//! with, replacing them (a new version each time), and reading old
//! versions. The rules themselves are `gamify_core::RuleSet`; their file
//! form `gamify_core::rulefile`; their versions `gamify_store::RuleBook`.
//!
//! A replacement takes effect at once on the node that makes it, and on
//! every other node within a second ([`RULES_REFRESH`]). An event is
//! checked and scored with the version current when it arrives at its
//! node, and keeps that version's number; points already awarded are
//! never rewritten.

use std::time::Duration;

use gamify_core::{RuleSet, parse_rules};

use crate::config::RuleSource;
use crate::engine::{Engine, EngineError};
use crate::model::{
    FieldError, RuleVersionSummary, RuleVersionsResponse, RulesResponse, rfc3339_ms, rules_document,
};

/// How often every node looks for versions other nodes added.
pub const RULES_REFRESH: Duration = Duration::from_secs(1);

impl Engine {
    /// The rules new events are scored with, as data.
    pub fn rules_now(&self) -> RulesResponse {
        rules_document(&self.current_rules(), self.rules())
    }

    /// Version `version` of the rules, as data.
    pub fn rules_version(&self, version: u32) -> Result<RulesResponse, EngineError> {
        self.rule_book()
            .get(version)
            .map(|v| rules_document(&v, self.rules()))
            .ok_or(EngineError::NotFound("rules version"))
    }

    /// Every version, oldest first.
    pub fn rule_versions(&self) -> RuleVersionsResponse {
        let current = self.current_rules().version;
        RuleVersionsResponse {
            versions: self
                .rule_book()
                .all()
                .iter()
                .map(|v| RuleVersionSummary {
                    version: v.version,
                    created_at: rfc3339_ms(v.created_at_ms),
                    current: v.version == current,
                })
                .collect(),
        }
    }

    /// Makes the rules of a rules file (TOML) current: a new version, unless
    /// they are the current version's already. Every mistake in the file is
    /// a field error naming its line; nothing changes then. Returns the
    /// version in force and whether it is new.
    pub async fn replace_rules(&self, text: &str) -> Result<(RulesResponse, bool), EngineError> {
        let rules = parse_rules(text).map_err(|errors| {
            EngineError::Invalid(
                errors
                    .into_iter()
                    .map(|e| FieldError {
                        field: "rules".into(),
                        message: e.to_string(),
                    })
                    .collect(),
            )
        })?;
        self.adopt(rules, "api").await
    }

    /// Makes the rules the configuration asks for current at start (see
    /// [`RuleSource`]); with nothing asked, the stored current version
    /// stays.
    pub async fn adopt_configured_rules(&self, source: &RuleSource) -> Result<u32, EngineError> {
        let current = self.current_rules();
        let wanted = source.apply(&current.rules);
        let origin = match &source.file {
            Some((path, _)) => path.display().to_string(),
            None => "configuration".to_owned(),
        };
        let (doc, _) = self.adopt(wanted, &origin).await?;
        Ok(doc.version)
    }

    async fn adopt(
        &self,
        rules: RuleSet,
        origin: &str,
    ) -> Result<(RulesResponse, bool), EngineError> {
        let before = self.current_rules().version;
        let version = self.store().add_rules(rules, self.now_ms()).await?;
        let new = version.version != before;
        if new {
            tracing::info!(
                version = version.version,
                previous = before,
                origin,
                "rules changed: new events are scored with the new version"
            );
        }
        Ok((rules_document(&version, self.rules()), new))
    }

    /// Picks up versions other nodes added, every [`RULES_REFRESH`], for as
    /// long as the process runs; while storage is down the last known
    /// version stays in force.
    pub async fn run_rules_refresh(self) {
        let mut tick = tokio::time::interval(RULES_REFRESH);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = self.current_rules().version;
            match self.store().refresh_rules().await {
                Ok(()) => {
                    let now = self.current_rules().version;
                    if now != before {
                        tracing::info!(
                            version = now,
                            previous = before,
                            "rules changed on another node"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not look for new rule versions; keeping the last");
                }
            }
        }
    }
}
