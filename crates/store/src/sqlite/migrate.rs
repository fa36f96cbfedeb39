//! Schema migrations, tracked with `PRAGMA user_version`. Hand-rolled: one list of SQL
//! scripts is all this needs, and it keeps sqlx's macro machinery out of the build.

use sqlx::{Executor, SqlitePool};

use super::backend;
use firekeeper_core::store::StoreError;

pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("schema.sql"),
    include_str!("schema_2_rtdb.sql"),
    include_str!("schema_3_oob_codes.sql"),
];

pub async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await.map_err(backend)?;
    // IMMEDIATE takes the write lock first, so two processes starting together migrate once.
    conn.execute("BEGIN IMMEDIATE").await.map_err(backend)?;
    let result = async {
        let (version,): (i64,) = sqlx::query_as("PRAGMA user_version")
            .fetch_one(&mut *conn)
            .await
            .map_err(backend)?;
        let applied = usize::try_from(version).unwrap_or(0);
        if applied > MIGRATIONS.len() {
            return Err(StoreError::Backend(format!(
                "database schema version {applied} is newer than this firekeeper ({})",
                MIGRATIONS.len()
            )));
        }
        for script in &MIGRATIONS[applied..] {
            conn.execute(*script).await.map_err(backend)?;
        }
        conn.execute(format!("PRAGMA user_version = {}", MIGRATIONS.len()).as_str())
            .await
            .map_err(backend)?;
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute(end).await.map_err(backend)?;
    result
}
