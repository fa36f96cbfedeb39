//! `blocking show|set|remove|policy`: the project's blocking functions and built-in
//! policies, through the same services as the v2 and Firekeeper config APIs.

use anyhow::{Context, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use super::print_json;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum BlockingCmd {
    /// The registered functions and the built-in policies in force.
    Show,
    /// Register (or replace) the function called for an event.
    Set {
        /// beforeCreate, beforeSignIn, beforeSendEmail or beforeSendSms.
        event: String,
        /// The function's absolute URL.
        uri: String,
        /// The JWT's `aud` when the handler expects another one
        /// (`https://<region>-<project>.cloudfunctions.net/<name>`).
        #[arg(long)]
        audience: Option<String>,
    },
    /// Stop calling a function for an event.
    Remove { event: String },
    /// Set built-in policy fields, as JSON (`'{"allowedEmailDomains":["example.com"]}'`).
    Policy { fields: String },
}

pub async fn run(s: &Settings, cmd: BlockingCmd) -> Result<()> {
    let (dd, auth, _ctx) = super::open_admin(s).await?;
    let project = s.project.clone();
    let result = async {
        match cmd {
            BlockingCmd::Show => {}
            BlockingCmd::Set {
                event,
                uri,
                audience,
            } => {
                let mut trigger = json!({ "functionUri": uri });
                if let Some(a) = audience {
                    trigger["audience"] = a.into();
                }
                let body = json!({"blockingFunctions": {"triggers": { event.clone(): trigger }}});
                let mask = format!("blockingFunctions.triggers.{event}");
                auth.patch_v2_config(&project, Some(&mask), &body).await?;
            }
            BlockingCmd::Remove { event } => {
                let mut current = auth.blocking_functions(&project).await?;
                current.triggers.remove(&event);
                let body = json!({"blockingFunctions": {"triggers": current.triggers}});
                auth.patch_v2_config(&project, Some("blockingFunctions.triggers"), &body)
                    .await?;
            }
            BlockingCmd::Policy { fields } => {
                let fields: Value =
                    serde_json::from_str(&fields).context("the policy fields must be JSON")?;
                let mut body = serde_json::Map::new();
                body.insert("blockingPolicy".into(), fields);
                auth.patch_firekeeper_config(&project, &body).await?;
            }
        }
        let functions = auth.v2_config(&project).await?;
        let policy = auth.firekeeper_config(&project).await?;
        print_json(&json!({
            "blockingFunctions": functions["blockingFunctions"],
            "blockingPolicy": policy["blockingPolicy"],
        }))
    }
    .await;
    dd.store.close().await;
    result
}
