//! The points economy at the engine's edge: spending, adjustments, the
//! rewards catalogue, redemptions and the ledger. Parses requests into the
//! store's types (every field error at once), and renders what the store
//! returns. The JSON shapes are additions to the brief, in its style.

pub use gamify_api::{
    AdjustmentRequest, LedgerEntryResponse, MovementResponse, RedeemRequest, RedemptionResponse,
    RewardRequest, RewardResponse, SpendRequest,
};
use gamify_core::{Points, RuleError, UserId};
use gamify_store::{
    Idempotency, LedgerRecord, Movement, MovementKind, NewMovement, NewRedemption, Redemption,
    RedemptionStatus, Reward, RewardDraft, Settle, StoreError,
};

use crate::engine::{
    Engine, EngineError, check_idempotency_key, fingerprint_of, new_id, parse_user,
};
use crate::model::{FieldError, Render, parse_rfc3339_ms, rfc3339_ms};

/// The longest reason, reward name or description, in characters.
pub const MAX_TEXT: usize = 500;

impl Render<Movement> for MovementResponse {
    fn render(m: &Movement) -> MovementResponse {
        MovementResponse {
            id: m.id.clone(),
            user_id: m.user_id.clone(),
            kind: m.kind.as_str().to_owned(),
            points: m.amount.to_f64(),
            reason: m.reason.clone(),
            metadata: m
                .metadata
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok()),
            total_points: m.balance_after.to_f64(),
            lifetime_points: m.lifetime_after.to_f64(),
            created_at: rfc3339_ms(m.created_at_ms),
        }
    }
}

impl Render<LedgerRecord> for LedgerEntryResponse {
    fn render(e: &LedgerRecord) -> Self {
        LedgerEntryResponse {
            seq: e.seq,
            kind: e.kind.as_str().to_owned(),
            points: e.amount.to_f64(),
            balance_after: e.balance_after.to_f64(),
            lifetime_after: e.lifetime_after.to_f64(),
            reference: e.reference.clone(),
            created_at: rfc3339_ms(e.created_at_ms),
            rules_version: e.rules_version,
        }
    }
}

/// A reward as the API shows it; with a balance, whether it covers it.
fn reward_response(r: &Reward, balance: Option<Points>) -> RewardResponse {
    let d = &r.draft;
    RewardResponse {
        id: d.id.clone(),
        name_fi: d.name_fi.clone(),
        name_en: d.name_en.clone(),
        description: d.description.clone(),
        cost: d.cost.to_f64(),
        stock: d.stock,
        remaining: d.stock.map(|s| s.saturating_sub(r.redeemed)),
        per_user_limit: d.per_user_limit,
        available_from: d.available_from_ms.map(rfc3339_ms),
        available_until: d.available_until_ms.map(rfc3339_ms),
        active: d.active,
        affordable: balance.map(|b| b >= d.cost),
    }
}

impl Render<Redemption> for RedemptionResponse {
    fn render(r: &Redemption) -> Self {
        RedemptionResponse {
            id: r.id.clone(),
            reward_id: r.reward_id.clone(),
            user_id: r.user_id.clone(),
            cost: r.cost.to_f64(),
            status: r.status.as_str().to_owned(),
            granted_by: r.granted_by.clone(),
            created_at: rfc3339_ms(r.created_at_ms),
            updated_at: rfc3339_ms(r.updated_at_ms),
        }
    }
}

fn bad(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError {
        field: field.to_owned(),
        message: message.into(),
    });
}

/// A reason or name: 1 (0 if it may be empty) to 500 characters, no
/// control characters.
fn text(errors: &mut Vec<FieldError>, field: &str, value: &str, may_be_empty: bool) {
    let least = if may_be_empty { 0 } else { 1 };
    crate::model::check_text(errors, field, value, least, MAX_TEXT);
}

/// Points as sent: finite, to the thousandth, from `lowest` to a trillion.
fn points(errors: &mut Vec<FieldError>, field: &str, value: f64, lowest: Points) -> Option<Points> {
    const MAX: f64 = 1e12;
    let out_of_range = |errors: &mut Vec<FieldError>| {
        let lowest = lowest.to_f64();
        bad(
            errors,
            field,
            format!("{field} must be a number from {lowest} to {MAX}"),
        );
        None
    };
    if !value.is_finite() || value.abs() > MAX {
        return out_of_range(errors);
    }
    let milli = (value * 1000.0).round() as i64;
    if milli == 0 && value != 0.0 {
        // Rounded to thousandths it would be 0: say so, rather than that
        // a positive amount is not positive.
        bad(
            errors,
            field,
            format!("{field} must be at least 0.001 in size (points have three decimals)"),
        );
        return None;
    }
    if milli < lowest.milli() {
        return out_of_range(errors);
    }
    Some(Points::from_milli(milli))
}

fn reward_id(errors: &mut Vec<FieldError>, field: &str, id: &str) {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        bad(
            errors,
            field,
            format!("{field} must be 1 to 64 letters, digits, '_' or '-'"),
        );
    }
}

fn time(errors: &mut Vec<FieldError>, field: &str, value: &Option<String>) -> Option<i64> {
    let text = value.as_ref()?;
    let parsed = parse_rfc3339_ms(text);
    if parsed.is_none() {
        bad(
            errors,
            field,
            format!("{field} must be an RFC 3339 time such as 2026-01-01T00:00:00Z"),
        );
    }
    parsed
}

fn done<T>(errors: Vec<FieldError>, value: Option<T>) -> Result<T, EngineError> {
    match value {
        Some(v) if errors.is_empty() => Ok(v),
        _ => Err(EngineError::Invalid(errors)),
    }
}

impl Engine {
    /// Spends a user's points. Not enough points: [`EngineError::Store`]
    /// with a refusal (409 `insufficient_points`), nothing changed. With an
    /// idempotency key, a retry returns the original spend (the `bool`).
    pub async fn spend(
        &self,
        request: SpendRequest,
        idempotency_key: Option<&str>,
    ) -> Result<(MovementResponse, bool), EngineError> {
        let mut errors = Vec::new();
        let amount = points(&mut errors, "points", request.points, Points::from_milli(1));
        self.move_points(
            MovementKind::Spend,
            &request.user_id,
            amount.map(|p| Points::from_milli(-p.milli())),
            &request.reason,
            &request.metadata,
            idempotency_key,
            errors,
            &request,
        )
        .await
    }

    /// An admin's correction: positive credits (as earned), negative debits
    /// (refused below zero).
    pub async fn adjust(
        &self,
        request: AdjustmentRequest,
        idempotency_key: Option<&str>,
    ) -> Result<(MovementResponse, bool), EngineError> {
        let mut errors = Vec::new();
        let lowest = Points::from_milli(-1_000_000_000_000_000);
        let amount = points(&mut errors, "points", request.points, lowest);
        if amount == Some(Points::ZERO) {
            bad(&mut errors, "points", "points must not be 0");
        }
        self.move_points(
            MovementKind::Adjustment,
            &request.user_id,
            amount,
            &request.reason,
            &request.metadata,
            idempotency_key,
            errors,
            &request,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn move_points(
        &self,
        kind: MovementKind,
        user_id: &str,
        amount: Option<Points>,
        reason: &str,
        meta: &Option<serde_json::Value>,
        idempotency_key: Option<&str>,
        mut errors: Vec<FieldError>,
        request: &impl serde::Serialize,
    ) -> Result<(MovementResponse, bool), EngineError> {
        let user = parse_user(user_id)
            .map_err(|e| errors.extend(e.fields()))
            .ok();
        text(&mut errors, "reason", reason, false);
        let metadata = self.metadata_text(meta).unwrap_or_else(|e| {
            errors.push(e);
            None
        });
        let idempotency = self.idempotency(&mut errors, idempotency_key, kind.as_str(), request);
        let (user, amount) = done(errors, user.zip(amount))?;
        let now = self.now_ms();
        let prefix = match kind {
            MovementKind::Spend => "spd",
            MovementKind::Adjustment => "adj",
        };
        let moved = self
            .store()
            .move_points(NewMovement {
                id: new_id(prefix, now),
                user_id: user,
                kind,
                amount,
                reason: reason.to_owned(),
                metadata,
                created_at_ms: now,
                idempotency,
            })
            .await
            .map_err(|e| match e {
                StoreError::Rule(RuleError::Overflow) => EngineError::field(
                    "points",
                    "points would take the balance past the largest a user can hold \
                     (about 9.2 × 10^15 points)",
                ),
                e => e.into(),
            })?;
        Ok((MovementResponse::render(&moved.movement), moved.replayed))
    }

    /// Checks an idempotency key and fingerprints the request it came with.
    fn idempotency(
        &self,
        errors: &mut Vec<FieldError>,
        key: Option<&str>,
        what: &str,
        request: &impl serde::Serialize,
    ) -> Option<Idempotency> {
        let key = key?;
        if let Err(message) = check_idempotency_key(key) {
            bad(errors, "Idempotency-Key", message);
            return None;
        }
        let body = serde_json::to_value(request).unwrap_or_default();
        Some(Idempotency {
            key: key.to_owned(),
            fingerprint: fingerprint_of(&serde_json::json!([what, body])),
        })
    }

    /// A page of the user's ledger, newest first, and the cursor for the
    /// next (older) page.
    pub async fn ledger(
        &self,
        user_id: &str,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<(Vec<LedgerEntryResponse>, Option<String>), EngineError> {
        let user = parse_user(user_id)?;
        let limit = self.check_limit(limit)?;
        let before = match before {
            None => None,
            Some(c) => Some(c.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
                EngineError::Invalid(vec![FieldError {
                    field: "before".into(),
                    message: "before must be a cursor from X-Next-Cursor".into(),
                }])
            })?),
        };
        let page = self.store().ledger(&user, limit, before).await?;
        Ok((
            page.entries
                .iter()
                .map(LedgerEntryResponse::render)
                .collect(),
            page.next_cursor.map(|c| c.to_string()),
        ))
    }

    /// The rewards users may redeem now (active, inside their window), by
    /// id; with a user, whether each is affordable for them.
    pub async fn offered_rewards(
        &self,
        user_id: Option<&str>,
    ) -> Result<Vec<RewardResponse>, EngineError> {
        let balance = match user_id {
            None => None,
            Some(u) => {
                let user = parse_user(u)?;
                let snapshot = self.store().user(&user).await?;
                Some(snapshot.map_or(Points::ZERO, |s| s.state.total))
            }
        };
        let now = self.now_ms();
        Ok(self
            .store()
            .rewards()
            .await?
            .iter()
            .filter(|r| r.terms().offered_at(now).is_ok())
            .map(|r| reward_response(r, balance))
            .collect())
    }

    /// The whole catalogue, inactive rewards included (admin).
    pub async fn all_rewards(&self) -> Result<Vec<RewardResponse>, EngineError> {
        Ok(self
            .store()
            .rewards()
            .await?
            .iter()
            .map(|r| reward_response(r, None))
            .collect())
    }

    /// Creates a reward (admin); 409 if its id is taken.
    pub async fn create_reward(
        &self,
        request: RewardRequest,
    ) -> Result<RewardResponse, EngineError> {
        let id = request.id.clone().unwrap_or_default();
        self.save_reward(&id, request, true).await
    }

    /// Replaces a reward's terms (admin); 404 if none.
    pub async fn update_reward(
        &self,
        id: &str,
        request: RewardRequest,
    ) -> Result<RewardResponse, EngineError> {
        if request.id.as_deref().is_some_and(|given| given != id) {
            return Err(EngineError::Invalid(vec![FieldError {
                field: "id".into(),
                message: "id must match the path, or be left out".into(),
            }]));
        }
        self.save_reward(id, request, false).await
    }

    /// Deactivates a reward (admin): no new redemptions; pending ones stay.
    pub async fn deactivate_reward(&self, id: &str) -> Result<RewardResponse, EngineError> {
        let rewards = self.store().rewards().await?;
        let reward = rewards
            .iter()
            .find(|r| r.draft.id == id)
            .ok_or(EngineError::NotFound("reward"))?;
        let mut draft = reward.draft.clone();
        draft.active = false;
        draft.saved_at_ms = self.now_ms();
        let saved = self.store().save_reward(draft, false).await?;
        Ok(reward_response(&saved, None))
    }

    async fn save_reward(
        &self,
        id: &str,
        r: RewardRequest,
        create: bool,
    ) -> Result<RewardResponse, EngineError> {
        let mut errors = Vec::new();
        reward_id(&mut errors, "id", id);
        text(&mut errors, "name_fi", &r.name_fi, false);
        text(&mut errors, "name_en", &r.name_en, false);
        text(&mut errors, "description", &r.description, true);
        let cost = points(&mut errors, "cost", r.cost, Points::ZERO);
        if r.per_user_limit == Some(0) {
            bad(
                &mut errors,
                "per_user_limit",
                "per_user_limit must be at least 1, or null",
            );
        }
        let from = time(&mut errors, "available_from", &r.available_from);
        let until = time(&mut errors, "available_until", &r.available_until);
        if let (Some(f), Some(u)) = (from, until)
            && u <= f
        {
            bad(
                &mut errors,
                "available_until",
                "available_until must be after available_from",
            );
        }
        let cost = done(errors, cost)?;
        let draft = RewardDraft {
            id: id.to_owned(),
            name_fi: r.name_fi,
            name_en: r.name_en,
            description: r.description,
            cost,
            stock: r.stock,
            per_user_limit: r.per_user_limit,
            available_from_ms: from,
            available_until_ms: until,
            active: r.active,
            saved_at_ms: self.now_ms(),
        };
        let saved = self.store().save_reward(draft, create).await?;
        Ok(reward_response(&saved, None))
    }

    /// Redeems a reward for a user: checks the reward (active, window,
    /// stock, per-user limit) and the balance, then takes both at once.
    pub async fn redeem(
        &self,
        reward: &str,
        request: RedeemRequest,
        idempotency_key: Option<&str>,
    ) -> Result<(RedemptionResponse, bool), EngineError> {
        let mut errors = Vec::new();
        reward_id(&mut errors, "reward_id", reward);
        let user = parse_user(&request.user_id)
            .map_err(|e| errors.extend(e.fields()))
            .ok();
        let keyed = (reward, &request);
        let idempotency = self.idempotency(&mut errors, idempotency_key, "redeem", &keyed);
        let user = done(errors, user)?;
        let now = self.now_ms();
        let redeemed = self
            .store()
            .redeem(NewRedemption {
                id: new_id("red", now),
                reward_id: reward.to_owned(),
                user_id: user,
                created_at_ms: now,
                idempotency,
            })
            .await?;
        Ok((
            RedemptionResponse::render(&redeemed.redemption),
            redeemed.replayed,
        ))
    }

    /// Fulfils or cancels a pending redemption (admin). Asking again for the
    /// status it has is answered with it unchanged.
    pub async fn settle(
        &self,
        redemption_id: &str,
        to: RedemptionStatus,
    ) -> Result<RedemptionResponse, EngineError> {
        let settled = self
            .store()
            .settle(Settle {
                redemption_id: redemption_id.to_owned(),
                to,
                at_ms: self.now_ms(),
            })
            .await?;
        Ok(RedemptionResponse::render(&settled))
    }

    /// Redemptions, newest first: one user's, or (admin) everyone's,
    /// optionally of one status; and the cursor for the next (older) page
    /// when more remain (the last id of this one).
    pub async fn redemptions(
        &self,
        user_id: Option<&str>,
        status: Option<&str>,
        limit: Option<u32>,
        before: Option<&str>,
    ) -> Result<(Vec<RedemptionResponse>, Option<String>), EngineError> {
        let user: Option<UserId> = user_id.map(parse_user).transpose()?;
        let status = match status {
            None => None,
            Some(s) => Some(RedemptionStatus::parse(s).ok_or_else(|| {
                EngineError::Invalid(vec![FieldError {
                    field: "status".into(),
                    message: "status must be pending, fulfilled or cancelled".into(),
                }])
            })?),
        };
        let limit = self.check_limit(limit)?;
        // Ids sort by time, so any `red_…` id is a position; anything else
        // would page from an arbitrary place (or nowhere) without a word.
        if let Some(before) = before {
            let id_like = before.len() <= 64
                && before.strip_prefix("red_").is_some_and(|rest| {
                    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric())
                });
            if !id_like {
                return Err(EngineError::field(
                    "before",
                    "before must be a redemption id (the X-Next-Cursor of an earlier page)",
                ));
            }
        }
        let rows = self
            .store()
            .redemptions(user.as_ref(), status, limit + 1, before)
            .await?;
        let (page, next) = Engine::page_of(rows, limit, |r| r.id.clone());
        Ok((page.iter().map(RedemptionResponse::render).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reward_ids_and_texts_are_checked_with_the_field_named() {
        let mut errors = Vec::new();
        reward_id(&mut errors, "id", "ok_id-1");
        text(&mut errors, "reason", "fine", false);
        assert!(errors.is_empty());
        reward_id(&mut errors, "id", "no spaces");
        text(&mut errors, "reason", "", false);
        text(&mut errors, "name_fi", "a\nb", false);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["id", "reason", "name_fi"]);
    }

    #[test]
    fn points_are_kept_to_the_thousandth_and_bounded() {
        let mut errors = Vec::new();
        let positive = Points::from_milli(1);
        assert_eq!(
            points(&mut errors, "points", 1.2345, positive),
            Some(Points::from_milli(1235))
        );
        assert_eq!(points(&mut errors, "points", f64::NAN, positive), None);
        assert_eq!(points(&mut errors, "points", 1e13, positive), None);
        assert_eq!(points(&mut errors, "points", 0.0, positive), None);
        assert_eq!(points(&mut errors, "points", -5.0, positive), None);
        assert_eq!(
            points(&mut errors, "cost", 0.0, Points::ZERO),
            Some(Points::ZERO)
        );
        let messages: Vec<_> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "points must be a number from 0.001 to 1000000000000",
                "points must be a number from 0.001 to 1000000000000",
                "points must be a number from 0.001 to 1000000000000",
                "points must be a number from 0.001 to 1000000000000",
            ]
        );
    }
}
