//! `users create|get|list|update|delete|set-claims`, through the same core operations as
//! the Admin API, so validation and errors are identical.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use firekeeper_core::service::{
    BatchGetRequest, Ctx, DeleteRequest, LookupRequest, SignUpRequest, UpdateRequest,
};
use firekeeper_core::Auth;
use serde_json::Value;

use super::print_json;
use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Create a user; prints its uid alone on stdout.
    Create {
        /// The uid to create the user with [default: generated].
        #[arg(long)]
        uid: Option<String>,
        #[command(flatten)]
        profile: Profile,
    },
    /// Show one user, by uid or --email.
    Get {
        uid: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List users, ordered by uid.
    List {
        /// At most this many users.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Change a user's profile, password or state.
    Update {
        uid: String,
        #[command(flatten)]
        profile: Profile,
        /// Revoke every refresh token issued so far.
        #[arg(long)]
        revoke_tokens: bool,
    },
    /// Delete a user and its sessions.
    Delete { uid: String },
    /// Replace a user's custom claims with a JSON object (`{}` clears them).
    SetClaims { uid: String, claims: String },
    /// Revoke a user's refresh tokens (what the Admin SDKs' revokeRefreshTokens does), or
    /// with --all every user's: the response to a suspected widespread token leak.
    Revoke {
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        uid: Option<String>,
        /// Every user of the project, in uid order, with progress on stderr.
        #[arg(long)]
        all: bool,
        /// Resume an interrupted --all after this uid (the last one it reported).
        #[arg(long, requires = "all", value_name = "UID")]
        resume_after: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct Profile {
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    password: Option<String>,
    #[arg(long)]
    display_name: Option<String>,
    #[arg(long)]
    photo_url: Option<String>,
    /// E.164, e.g. +15555550100 (update: an empty value removes it).
    #[arg(long)]
    phone: Option<String>,
    #[arg(long)]
    email_verified: Option<bool>,
    #[arg(long)]
    disabled: Option<bool>,
}

fn show(user: &Value, json: bool) -> Result<()> {
    if json {
        return print_json(user);
    }
    let field = |k: &str| {
        user.get(k)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    println!(
        "{}\t{}\t{}\t{}{}",
        field("localId"),
        field("email"),
        field("displayName"),
        field("phoneNumber"),
        if user["disabled"] == true {
            "\tdisabled"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn run(s: &Settings, cmd: UsersCmd) -> Result<()> {
    let (dd, auth, ctx) = super::open_admin(s).await?;
    let result = run_with(&auth, &ctx, cmd).await;
    dd.store.close().await;
    result
}

async fn run_with(auth: &Auth, ctx: &Ctx, cmd: UsersCmd) -> Result<()> {
    match cmd {
        UsersCmd::Create { uid, profile: p } => {
            let req = SignUpRequest {
                local_id: uid,
                email: p.email,
                password: p.password,
                display_name: p.display_name,
                photo_url: p.photo_url,
                phone_number: p.phone,
                email_verified: p.email_verified,
                disabled: p.disabled,
                ..Default::default()
            };
            let created = auth.sign_up(ctx, req).await?;
            eprintln!("created user");
            println!("{}", created["localId"].as_str().unwrap_or_default());
        }
        UsersCmd::Get { uid, email, json } => {
            let req = LookupRequest {
                local_id: uid.into_iter().collect(),
                email: email.into_iter().collect(),
                ..Default::default()
            };
            if req.local_id.is_empty() && req.email.is_empty() {
                bail!("give a uid or --email");
            }
            let found = auth.lookup(ctx, req).await?;
            match found.get("users").and_then(|u| u.get(0)) {
                Some(user) => show(user, json)?,
                None => bail!("no such user"),
            }
        }
        UsersCmd::List { limit, json } => {
            let mut token: Option<String> = None;
            let mut left = limit;
            let mut all = Vec::new();
            while left > 0 {
                let page = auth
                    .batch_get(
                        ctx,
                        BatchGetRequest {
                            max_results: Some(i64::from(left.min(1000))),
                            next_page_token: token.clone(),
                            tenant_id: None,
                        },
                    )
                    .await?;
                let users = page["users"].as_array().cloned().unwrap_or_default();
                left = left.saturating_sub(users.len() as u32);
                all.extend(users);
                token = page["nextPageToken"].as_str().map(str::to_owned);
                if token.is_none() {
                    break;
                }
            }
            if json {
                print_json(&Value::Array(all))?;
            } else {
                for u in &all {
                    show(u, false)?;
                }
            }
        }
        UsersCmd::Update {
            uid,
            profile: p,
            revoke_tokens,
        } => {
            let mut req = UpdateRequest {
                local_id: Some(uid),
                email: p.email,
                password: p.password,
                display_name: p.display_name,
                photo_url: p.photo_url,
                phone_number: p.phone,
                email_verified: p.email_verified,
                disable_user: p.disabled,
                ..Default::default()
            };
            if revoke_tokens {
                req.valid_since = Some(auth.clock().now_secs());
            }
            auth.update(ctx, req).await?;
            eprintln!("updated user");
        }
        UsersCmd::Delete { uid } => {
            auth.delete(
                ctx,
                DeleteRequest {
                    local_id: Some(uid),
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("deleted user");
        }
        UsersCmd::Revoke {
            uid,
            all,
            resume_after,
        } => {
            if !all {
                let uid = uid.unwrap_or_default();
                auth.revoke_user_tokens(ctx, &uid).await?;
                eprintln!("revoked the refresh tokens of {uid}");
                return Ok(());
            }
            revoke_all(auth, ctx, resume_after).await?;
        }
        UsersCmd::SetClaims { uid, claims } => {
            auth.update(
                ctx,
                UpdateRequest {
                    local_id: Some(uid),
                    custom_attributes: Some(claims),
                    ..Default::default()
                },
            )
            .await?;
            eprintln!("custom claims set");
        }
    }
    Ok(())
}

/// Revokes every user page by page. Each page is reported with its last uid, so an
/// interrupted run resumes with `--resume-after` instead of starting over.
async fn revoke_all(auth: &Auth, ctx: &Ctx, mut after: Option<String>) -> Result<()> {
    let total = auth.store_count(ctx).await?;
    let mut done = 0u64;
    loop {
        let page = auth
            .batch_get(
                ctx,
                BatchGetRequest {
                    max_results: Some(500),
                    next_page_token: after.clone(),
                    tenant_id: None,
                },
            )
            .await?;
        let users = page["users"].as_array().cloned().unwrap_or_default();
        for u in &users {
            if let Some(uid) = u["localId"].as_str() {
                auth.revoke_user_tokens(ctx, uid).await?;
                done += 1;
                after = Some(uid.to_owned());
            }
        }
        eprintln!(
            "revoked {done} of about {total} users (resume with --resume-after {})",
            after.as_deref().unwrap_or("-")
        );
        if page.get("nextPageToken").is_none() {
            break;
        }
    }
    eprintln!("done: every user's refresh tokens are revoked");
    Ok(())
}
