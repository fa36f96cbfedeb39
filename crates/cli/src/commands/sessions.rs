//! `sessions list|revoke` and `audit`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::Value;

use super::{print_json, when};
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// A user's sign-in sessions, newest first (ended ones too).
    List {
        uid: String,
        #[arg(long)]
        json: bool,
    },
    /// End one session: its refresh token stops working and its ID tokens are refused.
    Revoke { session_id: String },
}

fn ms(v: &Value) -> Option<i64> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_i64())
}

pub async fn run(s: &Settings, cmd: SessionsCmd) -> Result<()> {
    let (dd, auth, ctx) = super::open_admin(s).await?;
    let result = async {
        match cmd {
            SessionsCmd::List { uid, json } => {
                let list = auth.list_sessions(&ctx, &uid).await?;
                if json {
                    return print_json(&list["sessions"]);
                }
                for x in list["sessions"].as_array().into_iter().flatten() {
                    let field = |k: &str| x[k].as_str().unwrap_or("-").to_owned();
                    println!(
                        "{}\t{}\tcreated {}\tlast used {}\t{}\t{}\t{}",
                        field("sessionId"),
                        field("signInProvider"),
                        when(ms(&x["createdAt"])),
                        when(ms(&x["lastUsedAt"])),
                        field("ipAddress"),
                        field("userAgent"),
                        x["endedReason"]
                            .as_str()
                            .map_or("live".to_owned(), |r| format!("ended: {r}")),
                    );
                }
                Ok(())
            }
            SessionsCmd::Revoke { session_id } => {
                auth.revoke_session(&ctx, &session_id).await?;
                eprintln!("ended session {session_id}");
                Ok(())
            }
        }
    }
    .await;
    dd.store.close().await;
    result
}

/// `audit UID`: a user's audit log, oldest first.
pub async fn audit(s: &Settings, uid: &str, after: i64, limit: u32, json: bool) -> Result<()> {
    let (dd, auth, ctx) = super::open_admin(s).await?;
    let result = async {
        let page = auth.account_events(&ctx, uid, after, limit).await?;
        if json {
            return print_json(&page);
        }
        for e in page["events"].as_array().into_iter().flatten() {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                e["id"],
                when(e["at"].as_i64()),
                e["kind"].as_str().unwrap_or("-"),
                e["sessionId"].as_str().unwrap_or("-"),
                e["ip"].as_str().unwrap_or("-"),
                if e["detail"].is_object() {
                    e["detail"].to_string()
                } else {
                    String::new()
                },
            );
        }
        Ok(())
    }
    .await;
    dd.store.close().await;
    result
}
