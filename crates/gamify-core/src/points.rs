//! Exact amounts. Points and event values are integers counting thousandths,
//! so sums never drift the way binary floating point does; decimals exist only
//! when an API renders them.

use std::fmt;

use crate::RuleError;

/// Thousandths in one whole point.
pub const SCALE: i64 = 1000;

/// An amount of points, in thousandths of a point (`Points::from_milli(4000)` is 4.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Points(i64);

impl Points {
    /// No points.
    pub const ZERO: Points = Points(0);

    /// From thousandths of a point.
    pub const fn from_milli(milli: i64) -> Points {
        Points(milli)
    }

    /// From whole points.
    pub const fn whole(points: i64) -> Points {
        Points(points * SCALE)
    }

    /// The amount in thousandths of a point.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// `self + other`, or [`RuleError::Overflow`].
    pub fn checked_add(self, other: Points) -> Result<Points, RuleError> {
        self.0
            .checked_add(other.0)
            .map(Points)
            .ok_or(RuleError::Overflow)
    }

    /// The amount as a JSON-friendly number. Exact for every amount below
    /// 2^53 thousandths (about 9 × 10^12 points): the shortest decimal that
    /// round-trips the result is the amount's own decimal form.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }
}

impl fmt::Display for Points {
    /// Renders the exact decimal, with at least one fractional digit: `4.0`, `245.5`, `1.333`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / SCALE as u64;
        let frac = abs % SCALE as u64;
        let mut digits = format!("{frac:03}");
        while digits.len() > 1 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "{sign}{whole}.{digits}")
    }
}

/// The size of an event, as the caller measured it, in thousandths. Always > 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(i64);

impl Value {
    /// Validates a caller's number: finite, greater than zero, at most `max`,
    /// and rounded to the nearest thousandth (which must not be zero).
    pub fn from_f64(raw: f64, max: Points) -> Result<Value, RuleError> {
        if !raw.is_finite() {
            return Err(RuleError::ValueNotFinite);
        }
        if raw <= 0.0 {
            return Err(RuleError::ValueNotPositive);
        }
        // Compare before scaling so that huge inputs cannot overflow the cast.
        if raw > max.to_f64() {
            return Err(RuleError::ValueTooLarge { max });
        }
        let milli = (raw * SCALE as f64).round() as i64;
        if milli == 0 {
            return Err(RuleError::ValueTooSmall);
        }
        if milli > max.milli() {
            return Err(RuleError::ValueTooLarge { max });
        }
        Ok(Value(milli))
    }

    /// From thousandths, as read back from storage. Storage only holds values
    /// that passed [`Value::from_f64`].
    pub const fn from_milli(milli: i64) -> Value {
        Value(milli)
    }

    /// Thousandths.
    pub const fn milli(self) -> i64 {
        self.0
    }

    /// The value as an amount of the same size, for rendering.
    pub const fn as_points(self) -> Points {
        Points(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_renders_exact_decimals() {
        assert_eq!(Points::from_milli(4000).to_string(), "4.0");
        assert_eq!(Points::from_milli(245_500).to_string(), "245.5");
        assert_eq!(Points::from_milli(1333).to_string(), "1.333");
        assert_eq!(Points::from_milli(-50).to_string(), "-0.05");
    }

    #[test]
    fn values_are_validated_and_rounded_to_thousandths() {
        let max = Points::whole(1000);
        assert_eq!(Value::from_f64(2.0, max).unwrap().milli(), 2000);
        assert_eq!(Value::from_f64(40.0 / 30.0, max).unwrap().milli(), 1333);
        assert_eq!(Value::from_f64(0.0, max), Err(RuleError::ValueNotPositive));
        assert_eq!(Value::from_f64(-1.0, max), Err(RuleError::ValueNotPositive));
        assert_eq!(
            Value::from_f64(f64::NAN, max),
            Err(RuleError::ValueNotFinite)
        );
        assert_eq!(
            Value::from_f64(f64::INFINITY, max),
            Err(RuleError::ValueNotFinite)
        );
        assert_eq!(Value::from_f64(0.0001, max), Err(RuleError::ValueTooSmall));
        assert_eq!(Value::from_f64(1000.0, max).unwrap().milli(), 1_000_000);
        assert_eq!(
            Value::from_f64(1000.1, max),
            Err(RuleError::ValueTooLarge { max })
        );
        assert_eq!(
            Value::from_f64(1e300, max),
            Err(RuleError::ValueTooLarge { max })
        );
    }
}
