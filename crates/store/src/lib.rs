//! Storage backends behind `firekeeper_core::Store`: SQLite, the embedded default, and
//! PostgreSQL, to run several instances on one database. Both run the same statements.

pub mod copy;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[cfg(test)]
mod tests;
