//! Categories of behaviour and how much each is worth.

use crate::RuleError;

/// What kind of behaviour an event rewards. The set is fixed for now; making it
/// data (custom categories per tenant) is a later step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Paying invoices, tracking expenses. Weight 2.0.
    Finance,
    /// Lessons, articles, quizzes. Weight 1.5.
    Learning,
    /// Exercise, sleep, meals. Weight 1.2.
    Health,
    /// Tasks, goals, milestones. Weight 1.0.
    Productivity,
    /// Collaboration, community, reviews. Weight 0.8.
    Social,
}

impl Category {
    /// Every category, in the brief's order.
    pub const ALL: [Category; 5] = [
        Category::Finance,
        Category::Learning,
        Category::Health,
        Category::Productivity,
        Category::Social,
    ];

    /// The name used on the wire and in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::Finance => "finance",
            Category::Learning => "learning",
            Category::Health => "health",
            Category::Productivity => "productivity",
            Category::Social => "social",
        }
    }

    /// The weight in thousandths (2.0 is 2000).
    pub const fn weight_milli(self) -> i64 {
        match self {
            Category::Finance => 2000,
            Category::Learning => 1500,
            Category::Health => 1200,
            Category::Productivity => 1000,
            Category::Social => 800,
        }
    }

    /// Parses a wire name. Names are case-sensitive, as the brief writes them.
    pub fn parse(name: &str) -> Result<Category, RuleError> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .ok_or_else(|| RuleError::UnknownCategory {
                given: name.chars().take(64).collect(),
                known: Category::ALL.map(Category::as_str).join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_category_error_names_the_known_ones() {
        let err = Category::parse("gaming").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown category \"gaming\"; known categories: finance, learning, health, productivity, social"
        );
        assert_eq!(err.field(), "category");
    }

    #[test]
    fn every_category_round_trips_its_name() {
        for c in Category::ALL {
            assert_eq!(Category::parse(c.as_str()), Ok(c));
        }
    }
}
