//! SQLite in WAL mode: one writer connection (SQLite allows one writer at a time anyway, so
//! queuing in the pool is cheaper than lock retries) and a pool of read-only connections.
//! `synchronous=NORMAL` in WAL mode loses no committed transaction when the process is
//! killed; only an OS crash or power loss can drop the last commits.

mod migrate;
use migrate::MIGRATIONS;

mod rows {
    crate::sql::rows_macro::impl_rows!(sqlx::sqlite::SqliteRow);
}
crate::sql::store_macro::impl_store!(SqliteStore, sqlx::Sqlite);

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    refreshes: tokio::sync::mpsc::Sender<Touch>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let base = SqliteConnectOptions::from_str("sqlite://")
            .map_err(backend)?
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await
            .map_err(backend)?;
        migrate::run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(base.read_only(true))
            .await
            .map_err(backend)?;
        let refreshes = group_spawn(writer.clone());
        Ok(Self {
            writer,
            reader,
            refreshes,
        })
    }

    /// A private in-memory database, for tests.
    pub async fn in_memory() -> Result<Self, StoreError> {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:").map_err(backend)?;
        // One connection serves both roles: each in-memory connection is its own database.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .map_err(backend)?;
        migrate::run(&pool).await?;
        Ok(Self {
            refreshes: group_spawn(pool.clone()),
            writer: pool.clone(),
            reader: pool,
        })
    }

    /// One process writes a SQLite file; others see its changes by polling.
    fn change_feed(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<firekeeper_core::store::Change>> {
        None
    }

    async fn schema_version(&self) -> Result<usize, StoreError> {
        let (v,): (i64,) = sqlx::query_as("PRAGMA user_version")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}
