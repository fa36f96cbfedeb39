//! `firekeeper serve`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use firekeeper_core::{Auth, AuthConfig, Mode, SystemClock};
use firekeeper_server::AppState;
use tokio::net::TcpListener;

use crate::config::{FileConfig, Settings};
use crate::datadir;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9099]; port 0 picks a free one.
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Address of the JSON database's REST port [default: 127.0.0.1:9000]; port 0 picks a
    /// free one.
    #[arg(long, value_name = "ADDR:PORT")]
    rtdb_listen: Option<SocketAddr>,
    /// Database rules for namespaces that have none stored (a `database.rules.json`)
    /// [default: the data directory's database.rules.json if present, else locked].
    #[arg(long, value_name = "FILE")]
    rtdb_rules: Option<std::path::PathBuf>,
    /// Behave as the Firebase Auth Emulator: unsigned tokens, any API key, `Bearer owner`.
    #[arg(long)]
    emulator: bool,
    /// Log filter, e.g. `info` or `firekeeper=debug` [default: info].
    #[arg(long, value_name = "FILTER")]
    log: Option<String>,
}

impl ServeArgs {
    pub fn apply(&self, file: &mut FileConfig) {
        if let Some(l) = self.listen {
            file.listen = Some(l);
        }
        if let Some(l) = self.rtdb_listen {
            file.rtdb_listen = Some(l);
        }
        if let Some(r) = &self.rtdb_rules {
            file.rtdb_rules = Some(r.clone());
        }
        if self.emulator {
            file.emulator = Some(true);
        }
        if let Some(l) = &self.log {
            file.log = Some(l.clone());
        }
    }
}

/// How often the server checks for due key rotations and keys changed by other processes.
const KEY_TICK: Duration = Duration::from_secs(2);
/// How often audit history past its retention is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

pub fn auth_config(settings: &Settings) -> AuthConfig {
    let mode = if settings.emulator {
        Mode::Emulator
    } else {
        Mode::Production
    };
    let mut cfg = AuthConfig::new(mode, settings.project.clone());
    cfg.issuer_prefix = settings.issuer_prefix.clone();
    cfg.hash_cost = settings.password_hash;
    cfg.key_rotation_secs = settings.key_rotation_secs;
    cfg.cookie_key_rotation_secs = settings.cookie_key_rotation_secs;
    cfg.blocking_deadline = std::time::Duration::from_millis(settings.blocking_deadline_ms);
    cfg.blocking_functions = settings.blocking_functions.clone();
    cfg.blocking_policy = settings.blocking_policy.clone();
    cfg.database_policy = firekeeper_core::service::DatabasePolicy {
        revocation_path: settings.rtdb_revocation_path.clone(),
    };
    cfg.cookie_issuer_prefix = settings.cookie_issuer_prefix.clone();
    cfg.sessions = settings.sessions.clone();
    cfg.email_actions = settings.email_actions.clone();
    cfg.idp_endpoint_overrides = settings.idp_endpoint_overrides;
    cfg
}

/// The rules a namespace starts with: the configured file, else the data directory's
/// `database.rules.json`, else locked. Checked now, so a bad file stops the start.
fn default_rtdb_rules(settings: &Settings) -> Result<String> {
    let in_data_dir = settings.data_dir.join("database.rules.json");
    let file = match &settings.rtdb_rules {
        Some(f) => Some(f.clone()),
        None => in_data_dir.exists().then_some(in_data_dir),
    };
    let Some(file) = file else {
        return Ok(firekeeper_rtdb::LOCKED_RULES.to_owned());
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read database rules {}", file.display()))?;
    firekeeper_rules::Ruleset::parse(&text)
        .map_err(|e| anyhow::anyhow!("database rules {}: {e}", file.display()))?;
    Ok(text)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

pub async fn run(settings: Settings) -> Result<()> {
    let rtdb_rules = default_rtdb_rules(&settings)?;
    let dd = datadir::open(&settings).await?;
    let cfg = auth_config(&settings);
    let mode = cfg.mode;
    let mut auth = Auth::new(
        cfg,
        dd.store.clone(),
        Arc::new(SystemClock),
        dd.master.clone(),
    )
    .await
    .context("cannot initialise signing keys")?
    .with_hook_client(Arc::new(
        firekeeper_server::HttpHookClient::new().context("cannot build the HTTP client")?,
    ));
    if let Some(smtp) = &settings.smtp {
        let mailer = firekeeper_server::SmtpMailer::new(smtp).map_err(anyhow::Error::msg)?;
        auth = auth.with_mailer(Arc::new(mailer));
    } else if mode == Mode::Production {
        tracing::info!(
            "no [smtp] configured: password-reset, verification and sign-in emails are refused"
        );
    }
    if let Some(sms) = &settings.sms {
        let sender = firekeeper_server::GatewaySmsSender::new(sms).map_err(anyhow::Error::msg)?;
        auth = auth.with_sms_sender(Arc::new(sender));
    } else if mode == Mode::Production {
        tracing::info!("no [sms] configured: phone codes go only to test phone numbers");
    }
    let auth = Arc::new(auth);
    let store: &dyn firekeeper_core::Store = &*dd.store;
    if mode == Mode::Production && store.api_keys(Some(&settings.project)).await?.is_empty() {
        let now = auth.clock().now_ms();
        let key =
            firekeeper_core::credentials::create_api_key(store, &settings.project, now).await?;
        tracing::info!(project = %settings.project, api_key = %key, "created the first API key");
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let rtdb_listener = TcpListener::bind(settings.rtdb_listen)
        .await
        .with_context(|| format!("cannot listen on {} (rtdb_listen)", settings.rtdb_listen))?;
    let rtdb_addr = rtdb_listener.local_addr()?;
    let mode_name = match mode {
        Mode::Production => "production",
        Mode::Emulator => "emulator",
    };
    tracing::info!("database REST on http://{rtdb_addr} (namespace from ?ns=)");
    tracing::info!(
        "firekeeper listening on http://{addr} (mode: {mode_name}, project: {}, data: {})",
        settings.project,
        settings.data_dir.display()
    );
    // PostgreSQL: other instances' commits reach this one at once.
    let watcher = auth.watch_store();
    let ticker = {
        let auth = auth.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(KEY_TICK);
            loop {
                every.tick().await;
                if let Err(e) = auth.tick_keys().await {
                    tracing::warn!(error = %e, "key upkeep failed");
                }
            }
        })
    };
    let pruner = {
        let auth = auth.clone();
        let days = settings.audit_retention_days;
        tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                every.tick().await;
                match auth.prune_history(days).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(rows = n, "pruned audit history"),
                    Err(e) => tracing::warn!(error = %e, "pruning audit history failed"),
                }
            }
        })
    };
    let rtdb = Arc::new(firekeeper_rtdb::http::Rtdb::new(
        firekeeper_rtdb::Database::new(dd.store.clone(), Arc::new(SystemClock), rtdb_rules),
        auth.clone(),
        format!("{}-default-rtdb", settings.project),
    ));
    // Other instances' database writes (PostgreSQL) are read again here.
    let rtdb_changes = dd
        .store
        .changes()
        .map(|rx| tokio::spawn(firekeeper_rtdb::revocation::follow_store(rtdb.clone(), rx)));
    // Revocations end the revoked user's database streams at once and feed the bridge:
    // followed for the default project and every project with an API key from the start,
    // for any other from its first database request.
    rtdb.follow_project(&settings.project);
    for key in store.api_keys(None).await? {
        rtdb.follow_project(&key.project);
    }
    let state = AppState {
        auth,
        max_body_bytes: settings.max_body_bytes,
        public_url: settings.public_url.clone(),
        trusted_proxies: settings.trusted_proxies.clone(),
    };
    // One signal stops both ports; each lets its requests in flight finish.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let rtdb_stopped = until_stopped(stopped.clone());
    let rtdb_server = tokio::spawn(async move {
        axum::serve(rtdb_listener, firekeeper_rtdb::http::router(rtdb))
            .with_graceful_shutdown(rtdb_stopped)
            .await
    });
    firekeeper_server::serve(listener, state, until_stopped(stopped)).await?;
    if let Ok(Err(e)) = rtdb_server.await {
        tracing::warn!(error = %e, "the database port stopped with an error");
    }
    ticker.abort();
    pruner.abort();
    if let Some(c) = rtdb_changes {
        c.abort();
    }
    if let Some(w) = watcher {
        w.abort();
    }
    dd.store.close().await;
    Ok(())
}
