//! `keys list|rotate`.

use anyhow::Result;
use clap::Subcommand;
use firekeeper_core::keyring::{active_key, rotate_now, KeyPolicy, ID_TOKEN_KEYS};
use firekeeper_core::{Clock, Store, SystemClock};
use serde_json::json;

use super::{print_json, when};
use crate::config::Settings;
use crate::datadir;

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// List ID-token signing keys: queued (published, not yet signing), active, retired.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Make the queued key sign from now on and queue a new one. A running server picks
    /// this up within two seconds; the old key stays published until its tokens expire.
    Rotate,
}

pub async fn run(s: &Settings, cmd: KeysCmd) -> Result<()> {
    let dd = datadir::open(&s.data_dir).await?;
    let now = SystemClock.now_ms();
    match cmd {
        KeysCmd::Rotate => {
            let policy = KeyPolicy::id_tokens(s.key_rotation_secs);
            let kid = rotate_now(&*dd.store, &dd.master, ID_TOKEN_KEYS, policy, now).await?;
            eprintln!("key {kid} now signs ID tokens");
            println!("{kid}");
        }
        KeysCmd::List { json } => {
            let keys = dd.store.signing_keys(ID_TOKEN_KEYS).await?;
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
