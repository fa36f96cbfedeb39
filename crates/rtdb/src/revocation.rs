//! What reaches the database from elsewhere. Revocations: a follower of each project's
//! revocation feed tells
//! open streams (so a revoked user's listeners end with `auth_revoked` at once), and, when
//! configured, writes the revocation time where the seed's rules look for it
//! (`metadata/$uid/revokeTime`), so those rules work with no back-end code. And other
//! instances' writes (PostgreSQL), after which a namespace is read again.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::http::Rtdb;
use crate::{path, Caller};

/// A user whose tokens or sessions changed: their streams re-check their token.
#[derive(Debug, Clone, PartialEq)]
pub struct Revoked {
    pub project: String,
    pub uid: String,
}

/// How long one feed request waits for news.
const WAIT_SECS: u64 = 25;

/// Follows `project`'s revocation feed until the process ends.
pub async fn follow(rt: Arc<Rtdb>, project: String) {
    let mut after = 0i64;
    let since = rt.auth.clock().now_ms();
    loop {
        let page = match rt
            .auth
            .revocation_feed(&project, after, since, None, 200, WAIT_SECS)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, %project, "database revocation follower: feed failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        for e in page["events"].as_array().into_iter().flatten() {
            let (Some(uid), Some(kind)) = (e["localId"].as_str(), e["kind"].as_str()) else {
                continue;
            };
            let _ = rt.revoked.send(Revoked {
                project: project.clone(),
                uid: uid.to_owned(),
            });
            if kind == firekeeper_core::model::event_kind::TOKENS_REVOKED {
                let at_ms = e["at"].as_i64().unwrap_or(0);
                bridge(&rt, &project, uid, at_ms / 1000).await;
            }
        }
        if let Some(next) = page["nextCursor"].as_str().and_then(|c| c.parse().ok()) {
            after = next;
        }
    }
}

/// Writes `revoke_secs` to the project's configured path in its default namespace.
async fn bridge(rt: &Rtdb, project: &str, uid: &str, revoke_secs: i64) {
    let template = match rt.auth.database_policy(project).await {
        Ok(p) => p.revocation_path,
        Err(e) => {
            tracing::warn!(error = %e, %project, "revocation bridge: settings unreadable");
            return;
        }
    };
    let Some(template) = template else {
        return;
    };
    let Ok(at) = path::parse(&template.replace("$uid", uid)) else {
        tracing::warn!(%uid, "revocation bridge: the path for this user is not a valid path");
        return;
    };
    let ns = format!("{project}-default-rtdb");
    if let Err(e) = rt
        .db
        .set(&ns, &at, Value::from(revoke_secs), &Caller::Admin, None)
        .await
    {
        tracing::warn!(error = %e, %uid, "revocation bridge: write failed");
    }
}

/// Follows the store's change feed (PostgreSQL: other instances' commits): a namespace
/// another instance wrote is read again; after a gap in the feed, every one is.
pub async fn follow_store(
    rt: Arc<Rtdb>,
    mut changes: tokio::sync::broadcast::Receiver<firekeeper_core::store::Change>,
) {
    use firekeeper_core::store::Change;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match changes.recv().await {
            Ok(Change::Rtdb(ns)) => rt.db.reload(&ns).await,
            Ok(Change::Resync) | Err(RecvError::Lagged(_)) => {
                for ns in rt.db.loaded() {
                    rt.db.reload(&ns).await;
                }
            }
            Ok(_) => {}
            Err(RecvError::Closed) => return,
        }
    }
}
