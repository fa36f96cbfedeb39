//! Operator commands. They work on the data directory directly and reuse the same core
//! services the server runs, so the rules are the server's.

pub mod blocking;
pub mod credentials;
pub mod keys;
pub mod sessions;
pub mod store;
pub mod users;

use std::sync::Arc;

use firekeeper_core::access::Access;
use firekeeper_core::service::Ctx;
use firekeeper_core::{Auth, SystemClock};

use crate::config::Settings;
use crate::datadir::{self, DataDir};
use crate::serve::auth_config;

/// The core services over the data directory, and an admin context for the project.
pub(crate) async fn open_admin(s: &Settings) -> anyhow::Result<(DataDir, Auth, Ctx)> {
    let dd = datadir::open(s).await?;
    let auth = Auth::new(
        auth_config(s),
        dd.store.clone(),
        Arc::new(SystemClock),
        dd.master.clone(),
    )
    .await?;
    let ctx = Ctx {
        access: Access {
            project: s.project.clone(),
            privileged: true,
        },
        tenant: None,
        ip: None,
        user_agent: Some("firekeeper-cli".to_owned()),
        locale: None,
        origin: None,
    };
    Ok((dd, auth, ctx))
}

pub(crate) fn when(ms: Option<i64>) -> String {
    ms.map(firekeeper_core::wire::rfc3339_ms)
        .unwrap_or_else(|| "-".to_owned())
}

/// Prints a value as JSON on stdout.
pub(crate) fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
