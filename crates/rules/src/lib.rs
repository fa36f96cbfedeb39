//! The Realtime Database security rules language (spec `rtdb.md` §2–3): a rules file is
//! read with positions, every expression is parsed and checked when the rules load, and
//! reads and writes are decided by the cascade of `.read`, `.write` and `.validate`.
//! Pure: the caller hands in the data trees, the auth object and the time.

mod check;
mod eval;
mod expr;
mod regex;
mod ruleset;
mod source;
pub mod tree;

pub use ruleset::{Context, Decision, Outcome, Ruleset, Step};
pub use source::Pos;

use serde_json::Value;

/// Why a rules file was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl LoadError {
    fn at(pos: Pos, message: &str) -> Self {
        Self {
            line: pos.line,
            column: pos.column,
            message: message.to_owned(),
        }
    }
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for LoadError {}

/// A read's query, as the rules' `query` variable shows it (spec §2.7). The default is a
/// plain read: ordered by key, no bounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    pub order_by_child: Option<String>,
    pub order_by_value: bool,
    pub order_by_priority: bool,
    pub start_at: Option<Value>,
    pub end_at: Option<Value>,
    pub equal_to: Option<Value>,
    pub limit_to_first: Option<f64>,
    pub limit_to_last: Option<f64>,
}

impl Query {
    pub fn order_by_key(&self) -> bool {
        self.order_by_child.is_none() && !self.order_by_value && !self.order_by_priority
    }
}
