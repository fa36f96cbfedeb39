//! `api-keys`, `admin-tokens`, `service-accounts`. Commands that create a secret print the
//! secret alone on stdout and everything else on stderr.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use firekeeper_core::credentials::{create_admin_token, create_api_key, create_service_account};
use firekeeper_core::{Clock, SystemClock};
use serde_json::json;

use super::{print_json, when};
use crate::config::Settings;
use crate::datadir;

#[derive(Debug, Subcommand)]
pub enum ApiKeysCmd {
    /// Create an API key for the project; prints the key alone on stdout.
    Create,
    /// List API keys (all projects unless --project is given).
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminTokensCmd {
    /// Create an admin token for the project; prints the token alone on stdout.
    Create {
        /// Let the token reach every project instead of only --project.
        #[arg(long)]
        all_projects: bool,
    },
    /// List admin tokens (ids, scope, state; never the secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an admin token by its id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
pub enum ServiceAccountsCmd {
    /// Create a service account and write its key file (Google's JSON format). Only the
    /// public key is kept by the server.
    Create {
        /// Write the key file here (mode 0600) instead of printing it on stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List service accounts.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a service account: custom tokens it signs are refused from then on.
    Delete { client_email: String },
}

pub async fn api_keys(s: &Settings, cmd: ApiKeysCmd) -> Result<()> {
    let dd = datadir::open(s).await?;
    match cmd {
        ApiKeysCmd::Create => {
            let key = create_api_key(&*dd.store, &s.project, SystemClock.now_ms()).await?;
            eprintln!("created an API key for project {}", s.project);
            println!("{key}");
        }
        ApiKeysCmd::List { json } => {
            let keys = dd.store.api_keys(None).await?;
            if json {
                print_json(&json!(keys
                    .iter()
                    .map(|k| json!({"key": k.key, "project": k.project, "createdAt": k.created_at}))
                    .collect::<Vec<_>>()))?;
            } else {
                for k in keys {
                    println!("{}\t{}\t{}", k.key, k.project, when(Some(k.created_at)));
                }
            }
        }
    }
    dd.store.close().await;
    Ok(())
}

pub async fn admin_tokens(s: &Settings, cmd: AdminTokensCmd) -> Result<()> {
    let dd = datadir::open(s).await?;
    match cmd {
        AdminTokensCmd::Create { all_projects } => {
            let project = (!all_projects).then_some(s.project.as_str());
            let (id, secret) =
                create_admin_token(&*dd.store, project, SystemClock.now_ms()).await?;
            eprintln!(
                "created admin token {id} for {}",
                project.map_or("every project".to_owned(), |p| format!("project {p}"))
            );
            println!("{secret}");
        }
        AdminTokensCmd::List { json } => {
            let tokens = dd.store.admin_tokens().await?;
            if json {
                print_json(&json!(tokens
                    .iter()
                    .map(|t| json!({
                        "id": t.id, "project": t.project,
                        "createdAt": t.created_at, "revokedAt": t.revoked_at,
                    }))
                    .collect::<Vec<_>>()))?;
            } else {
                for t in tokens {
                    println!(
                        "{}\t{}\tcreated {}\t{}",
                        t.id,
                        t.project.as_deref().unwrap_or("*"),
                        when(Some(t.created_at)),
                        t.revoked_at.map_or("active".to_owned(), |r| format!(
                            "revoked {}",
                            when(Some(r))
                        ))
                    );
                }
            }
        }
        AdminTokensCmd::Revoke { id } => {
            if !dd
                .store
                .revoke_admin_token(&id, SystemClock.now_ms())
                .await?
            {
                bail!("no active admin token with id {id}");
            }
            eprintln!("revoked admin token {id}");
        }
    }
    dd.store.close().await;
    Ok(())
}

pub async fn service_accounts(s: &Settings, cmd: ServiceAccountsCmd) -> Result<()> {
    let dd = datadir::open(s).await?;
    match cmd {
        ServiceAccountsCmd::Create { out } => {
            let file = create_service_account(&*dd.store, &s.project, SystemClock.now_ms()).await?;
            let text = serde_json::to_string_pretty(&file)?;
            match out {
                Some(path) => {
                    let mut f = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(0o600)
                        .open(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    f.write_all(text.as_bytes())?;
                    eprintln!(
                        "created service account {} and wrote its key to {}",
                        file["client_email"].as_str().unwrap_or_default(),
                        path.display()
                    );
                }
                None => println!("{text}"),
            }
        }
        ServiceAccountsCmd::List { json } => {
            let list = dd.store.service_accounts(None).await?;
            if json {
                print_json(&json!(list
                    .iter()
                    .map(|a| json!({
                        "clientEmail": a.client_email, "project": a.project,
                        "privateKeyId": a.private_key_id, "createdAt": a.created_at,
                    }))
                    .collect::<Vec<_>>()))?;
            } else {
                for a in list {
                    println!("{}\t{}\t{}", a.client_email, a.project, a.private_key_id);
                }
            }
        }
        ServiceAccountsCmd::Delete { client_email } => {
            if !dd.store.delete_service_account(&client_email).await? {
                bail!("no service account {client_email}");
            }
            eprintln!("deleted service account {client_email}");
        }
    }
    dd.store.close().await;
    Ok(())
}
