//! Moving an installation from its SQLite file to PostgreSQL: every table, row for row, in
//! one PostgreSQL transaction (all or nothing). Both schemas have the same tables and
//! columns, so the copy reads each SQLite column by its declared type and writes it as is.

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;

use firekeeper_core::store::StoreError;

use crate::sql::backend;
use crate::{PgStore, SqliteStore};

/// Every table, parents before children is not needed (no foreign keys); events last so
/// their identity sequence is set after the copy.
const TABLES: &[&str] = &[
    "accounts",
    "federated_ids",
    "sessions",
    "superseded_refresh_tokens",
    "signing_keys",
    "api_keys",
    "admin_tokens",
    "service_accounts",
    "project_configs",
    "rtdb_nodes",
    "rtdb_rules",
    "rtdb_versions",
    "oob_codes",
    "events",
];

/// Rows per read and per multi-row insert.
const BATCH: i64 = 500;

enum Cell {
    Int(Option<i64>),
    Text(Option<String>),
    Bytes(Option<Vec<u8>>),
}

fn cell(row: &sqlx::sqlite::SqliteRow, i: usize, declared: &str) -> Result<Cell, StoreError> {
    Ok(match declared {
        "INTEGER" => Cell::Int(row.try_get(i).map_err(backend)?),
        "BLOB" => Cell::Bytes(row.try_get(i).map_err(backend)?),
        _ => Cell::Text(row.try_get(i).map_err(backend)?),
    })
}

/// Copies the SQLite database at `from` into the (empty) PostgreSQL database at `to`,
/// migrating both first. `progress(table, copied, total)` is called after each batch.
/// Returns the number of rows copied.
pub async fn sqlite_to_postgres(
    from: &Path,
    to: &str,
    mut progress: impl FnMut(&str, u64, u64),
) -> Result<u64, StoreError> {
    // Opening runs each side's migrations, so both have the current schema.
    SqliteStore::open(from).await?.close().await;
    PgStore::connect(to).await?.close().await;
    let src = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str("sqlite://")
                .map_err(backend)?
                .filename(from)
                .read_only(true),
        )
        .await
        .map_err(backend)?;
    let dst = sqlx::PgPool::connect(to).await.map_err(backend)?;
    let mut tx = dst.begin().await.map_err(backend)?;
    for table in TABLES {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        if n > 0 {
            return Err(StoreError::Backend(format!(
                "the destination is not empty ({table} has {n} rows): copy into a new database"
            )));
        }
    }
    let mut copied = 0u64;
    for table in TABLES {
        let (total,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(&src)
            .await
            .map_err(backend)?;
        let total = total.max(0) as u64;
        // Declared types, as the schema states them (a NULL cell has no runtime type).
        let columns: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT name, type FROM pragma_table_info('{table}')"
        ))
        .fetch_all(&src)
        .await
        .map_err(backend)?
        .into_iter()
        .map(|(n, t): (String, String)| (n, t.to_uppercase()))
        .collect();
        let select = columns
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let mut done = 0u64;
        progress(table, 0, total);
        let mut offset = 0i64;
        loop {
            let rows = sqlx::query(&format!(
                "SELECT {select} FROM {table} ORDER BY rowid LIMIT {BATCH} OFFSET {offset}"
            ))
            .fetch_all(&src)
            .await
            .map_err(backend)?;
            if rows.is_empty() {
                break;
            }
            let names = &select;
            let mut marks = Vec::new();
            let mut k = 0;
            for _ in &rows {
                let one: Vec<String> = columns
                    .iter()
                    .map(|_| {
                        k += 1;
                        format!("${k}")
                    })
                    .collect();
                marks.push(format!("({})", one.join(", ")));
            }
            // Event ids are the feed's cursor: they keep their values.
            let overriding = if *table == "events" {
                "OVERRIDING SYSTEM VALUE"
            } else {
                ""
            };
            let sql = format!(
                "INSERT INTO {table} ({names}) {overriding} VALUES {}",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for row in &rows {
                for (i, (_, declared)) in columns.iter().enumerate() {
                    q = match cell(row, i, declared)? {
                        Cell::Int(v) => q.bind(v),
                        Cell::Text(v) => q.bind(v),
                        Cell::Bytes(v) => q.bind(v),
                    };
                }
            }
            q.execute(&mut *tx).await.map_err(backend)?;
            done += rows.len() as u64;
            offset += BATCH;
            progress(table, done, total);
        }
        copied += done;
    }
    sqlx::query(
        "SELECT setval(pg_get_serial_sequence('events', 'id'), MAX(id)) FROM events \
         HAVING MAX(id) IS NOT NULL",
    )
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    src.close().await;
    dst.close().await;
    Ok(copied)
}
