//! `keys list|rotate`.

use anyhow::Result;
use clap::Subcommand;
use firekeeper_core::keyring::{
    active_key, rotate_now, KeyPolicy, ID_TOKEN_KEYS, SESSION_COOKIE_KEYS,
};
use firekeeper_core::{Clock, SystemClock};
use serde_json::json;

use super::{print_json, when};
use crate::config::Settings;
use crate::datadir;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List signing keys: queued (published, not yet signing), active, retired.
    List {
        #[arg(long)]
        json: bool,
        /// The session-cookie keys instead of the ID-token keys.
        #[arg(long)]
        cookies: bool,
    },
    /// Make the queued key sign from now on and queue a new one. A running server picks
    /// this up within two seconds; the old key stays published until its tokens expire.
    Rotate {
        /// Rotate the session-cookie keys instead of the ID-token keys.
        #[arg(long)]
        cookies: bool,
    },
}

/// The key set a command works on and its rotation policy.
fn key_set(s: &Settings, cookies: bool) -> (&'static str, KeyPolicy) {
    if cookies {
        (
            SESSION_COOKIE_KEYS,
            KeyPolicy::session_cookies(s.cookie_key_rotation_secs),
        )
    } else {
        (ID_TOKEN_KEYS, KeyPolicy::id_tokens(s.key_rotation_secs))
    }
}

pub async fn run(s: &Settings, cmd: KeysCmd) -> Result<()> {
    let dd = datadir::open(s).await?;
    let now = SystemClock.now_ms();
    match cmd {
        KeysCmd::Rotate { cookies } => {
            let (purpose, policy) = key_set(s, cookies);
            let kid = rotate_now(&*dd.store, &dd.master, purpose, policy, now).await?;
            let what = if cookies {
                "session cookies"
            } else {
                "ID tokens"
            };
            eprintln!("key {kid} now signs {what}");
            println!("{kid}");
        }
        KeysCmd::List { json, cookies } => {
            let keys = dd.store.signing_keys(key_set(s, cookies).0).await?;
            let active = active_key(&keys, now).map(|k| k.kid.clone());
            let state = |k: &firekeeper_core::store::StoredKey| {
                if Some(&k.kid) == active.as_ref() {
                    "active"
                } else if k.activates_at > now {
                    "queued"
                } else {
                    "retired"
                }
            };
            if json {
                print_json(&json!(keys
                    .iter()
                    .map(|k| json!({
                        "kid": k.kid, "state": state(k), "createdAt": k.created_at,
                        "activatesAt": k.activates_at, "retiredAt": k.retired_at,
                    }))
                    .collect::<Vec<_>>()))?;
            } else {
                for k in &keys {
                    println!(
                        "{}\t{}\tactivates {}\tretired {}",
                        k.kid,
                        state(k),
                        when(Some(k.activates_at)),
                        when(k.retired_at)
                    );
                }
            }
        }
    }
    dd.store.close().await;
    Ok(())
}
