//! Group commit for refresh bookkeeping. Refreshes arrive concurrently and each must record
//! its session's last use before it is answered; one writer task drains whatever is queued
//! and commits it in a single transaction, acknowledging every request after the commit.
//! Durability per request is unchanged, and a burst costs one commit instead of one each.

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use firekeeper_core::model::{Event, Session};
use firekeeper_core::store::{StoreError, StoreResult};

use super::backend;
use super::store_impl::insert_events;

/// The longest rotation grace window a policy may set.
const MAX_GRACE_MS: i64 = 3_600_000;

/// Most refreshes one transaction carries (and the bound on statement parameters).
const MAX_BATCH: usize = 200;

pub struct Touch {
    pub session_id: String,
    pub project: String,
    pub tenant: String,
    pub local_id: String,
    pub now_ms: i64,
    pub event: Option<Event>,
    pub done: oneshot::Sender<StoreResult<()>>,
}

pub fn spawn(writer: SqlitePool) -> mpsc::Sender<Touch> {
    let (tx, mut rx) = mpsc::channel::<Touch>(4096);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(t) => batch.push(t),
                    Err(_) => break,
                }
            }
            let result = commit(&writer, &batch).await;
            for t in batch {
                let _ = t.done.send(result.clone());
            }
        }
    });
    tx
}

async fn commit(writer: &SqlitePool, batch: &[Touch]) -> StoreResult<()> {
    let now = batch.iter().map(|t| t.now_ms).max().unwrap_or(0);
    let marks = vec!["?"; batch.len()].join(", ");
    let rows = vec!["(?, ?, ?)"; batch.len()].join(", ");
    let mut tx = writer.begin().await.map_err(backend)?;
    // The sealed copy of a rotated token is needed only within the grace window (an hour
    // at most); refreshes drop it after that.
    let sql = format!(
        "UPDATE sessions SET last_used_at = ?, successor = CASE WHEN rotated_at < ? \
         THEN NULL ELSE successor END WHERE id IN ({marks})"
    );
    let mut q = sqlx::query(&sql).bind(now).bind(now - MAX_GRACE_MS);
    for t in batch {
        q = q.bind(&t.session_id);
    }
    q.execute(&mut *tx).await.map_err(backend)?;
    let sql = format!(
        "UPDATE accounts SET last_refresh_at = ? WHERE (project, tenant, local_id) IN (VALUES {rows})"
    );
    let mut q = sqlx::query(&sql).bind(now);
    for t in batch {
        q = q.bind(&t.project).bind(&t.tenant).bind(&t.local_id);
    }
    q.execute(&mut *tx).await.map_err(backend)?;
    let events: Vec<Event> = batch.iter().filter_map(|t| t.event.clone()).collect();
    insert_events(&mut tx, &events).await?;
    tx.commit().await.map_err(backend)
}

/// Queues a refresh of `session` and waits until it is committed.
pub async fn record(
    sender: &mpsc::Sender<Touch>,
    session: &Session,
    now_ms: i64,
    event: Option<&Event>,
) -> StoreResult<()> {
    let (done, wait) = oneshot::channel();
    let touch = Touch {
        session_id: session.id.clone(),
        project: session.scope.project.clone(),
        tenant: session.scope.tenant_key().to_owned(),
        local_id: session.local_id.clone(),
        now_ms,
        event: event.cloned(),
        done,
    };
    let stopped = || StoreError::Backend("refresh writer stopped".into());
    sender.send(touch).await.map_err(|_| stopped())?;
    wait.await.map_err(|_| stopped())?
}
