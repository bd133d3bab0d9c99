//! Validated identifiers. They are parsed once at the boundary, so everything
//! past it can trust them (they are safe in URLs, logs and keys).

use crate::RuleError;

/// The longest user id accepted.
pub const MAX_USER_ID_LEN: usize = 128;
/// The longest action name accepted.
pub const MAX_ACTION_LEN: usize = 100;

/// A user id: 1–128 characters of ASCII letters, digits and `_ - . : @`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// Validates a user id.
    pub fn parse(raw: &str) -> Result<UserId, RuleError> {
        if raw.is_empty() {
            return Err(RuleError::InvalidUserId("must not be empty"));
        }
        if raw.len() > MAX_USER_ID_LEN {
            return Err(RuleError::InvalidUserId("must be at most 128 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.:@".contains(&b))
        {
            return Err(RuleError::InvalidUserId(
                "may only contain ASCII letters, digits and _ - . : @",
            ));
        }
        Ok(UserId(raw.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the user did (`paid_invoice`): 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action(String);

impl Action {
    /// Validates an action name.
    pub fn parse(raw: &str) -> Result<Action, RuleError> {
        if raw.trim().is_empty() {
            return Err(RuleError::InvalidAction("must not be empty"));
        }
        if raw.chars().count() > MAX_ACTION_LEN {
            return Err(RuleError::InvalidAction("must be at most 100 characters"));
        }
        if raw.chars().any(char::is_control) {
            return Err(RuleError::InvalidAction(
                "must not contain control characters",
            ));
        }
        Ok(Action(raw.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("user_123").is_ok());
        assert!(UserId::parse("anna@example.fi").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn actions_are_checked() {
        assert!(Action::parse("paid_invoice").is_ok());
        assert!(Action::parse("maksoi laskun").is_ok());
        assert!(Action::parse(" ").is_err());
        assert!(Action::parse("a\nb").is_err());
    }
}
