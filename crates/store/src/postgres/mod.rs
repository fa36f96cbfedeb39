//! PostgreSQL, for several Firekeeper instances on one database: the same statements as
//! SQLite (see `crate::sql`), one connection pool for reads and writes, and migrations
//! under an advisory lock so instances starting together migrate once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

#[derive(Clone)]
pub struct PgStore {
    writer: PgPool,
    reader: PgPool,
    refreshes: tokio::sync::mpsc::Sender<Touch>,
    changes: tokio::sync::broadcast::Sender<firekeeper_core::store::Change>,
    /// For the change listener's own connection (started on the first subscription, so
    /// one-shot commands never open it, and never part of the pool `close` waits for).
    url: String,
    listening: std::sync::Arc<std::sync::OnceLock<()>>,
}

/// The URL holds the database password: never printed.
impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

/// Follows `NOTIFY firekeeper` and republishes each change; a lost connection (the listener
/// reconnects by itself) is published as `Resync`, so subscribers catch up on what they
/// may have missed.
fn listen(url: String, out: tokio::sync::broadcast::Sender<firekeeper_core::store::Change>) {
    use firekeeper_core::store::Change;
    tokio::spawn(async move {
        let mut listener = loop {
            let connected = async {
                let mut l = sqlx::postgres::PgListener::connect(&url).await?;
                l.listen("firekeeper").await?;
                Ok::<_, sqlx::Error>(l)
            };
            match connected.await {
                Ok(l) => break l,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow database changes yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        // Anything before the listener started may have been missed.
        let _ = out.send(Change::Resync);
        loop {
            let change = match listener.try_recv().await {
                Ok(Some(n)) => match n.payload() {
                    "events" => Change::Events,
                    "keys" => Change::Keys,
                    p => match (p.strip_prefix("settings:"), p.strip_prefix("rtdb:")) {
                        (Some(project), _) => Change::Settings(project.to_owned()),
                        (_, Some(ns)) => Change::Rtdb(ns.to_owned()),
                        _ => continue,
                    },
                },
                Ok(None) => Change::Resync,
                Err(e) => {
                    tracing::warn!(error = %e, "database change feed interrupted; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Change::Resync
                }
            };
            // Every store handle gone: nobody can subscribe any more.
            if out.send(change).is_err() && out.strong_count() <= 1 {
                return;
            }
        }
    });
}

mod rows {
    crate::sql::rows_macro::impl_rows!(sqlx::postgres::PgRow);
}
crate::sql::store_macro::impl_store!(PgStore, sqlx::Postgres);

/// Each entry runs once, in order; applied ones are recorded in `firekeeper_migrations`.
const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2_rtdb.sql"),
    include_str!("schema_3_oob_codes.sql"),
];
/// Serialises migrations across instances (any constant the application owns).
const MIGRATION_LOCK: i64 = 7_460_002;

async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    // One transaction under a transaction-level lock: DDL is transactional here, and the
    // lock cannot outlive a failed or cancelled start.
    let mut tx = pool.begin().await.map_err(backend)?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    tx.execute(
        "CREATE TABLE IF NOT EXISTS firekeeper_migrations \
         (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .map_err(backend)?;
    let (applied,): (i64,) =
        sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM firekeeper_migrations")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
    let applied = usize::try_from(applied).unwrap_or(0);
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "database schema version {applied} is newer than this firekeeper ({})",
            MIGRATIONS.len()
        )));
    }
    for (i, script) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute(*script).await.map_err(backend)?;
        sqlx::query("INSERT INTO firekeeper_migrations (version) VALUES ($1)")
            .bind(i as i64 + 1)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)
}

impl PgStore {
    /// Connects (`postgres://user:pass@host/db`) and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let opts = PgConnectOptions::from_str(url).map_err(backend)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            // No ping before every query: a broken connection fails its query and is
            // replaced.
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await
            .map_err(backend)?;
        migrate(&pool).await?;
        let (changes, _) = tokio::sync::broadcast::channel(1024);
        Ok(Self {
            refreshes: group_spawn(pool.clone()),
            writer: pool.clone(),
            reader: pool,
            changes,
            url: url.to_owned(),
            listening: Default::default(),
        })
    }

    pub async fn close(&self) {
        self.writer.close().await;
    }

    fn change_feed(
        &self,
    ) -> Option<tokio::sync::broadcast::Receiver<firekeeper_core::store::Change>> {
        let rx = self.changes.subscribe();
        self.listening
            .get_or_init(|| listen(self.url.clone(), self.changes.clone()));
        Some(rx)
    }

    async fn schema_version(&self) -> Result<usize, StoreError> {
        let (v,): (i64,) =
            sqlx::query_as("SELECT COALESCE(MAX(version), 0) FROM firekeeper_migrations")
                .fetch_one(&self.reader)
                .await
                .map_err(backend)?;
        Ok(usize::try_from(v).unwrap_or(0))
    }
}
