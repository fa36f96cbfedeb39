//! Storage backends behind `firekeeper_core::Store`. SQLite is the embedded default;
//! PostgreSQL follows with the same schema shape.

pub mod sqlite;

pub use sqlite::SqliteStore;
