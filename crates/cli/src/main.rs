//! `firekeeper`: the server and its operator commands.

mod commands;
mod config;
mod datadir;
mod serve;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

use config::{FileConfig, Settings, DEFAULT_CONFIG_FILE};

const ABOUT: &str = "Self-hosted identity and session server that speaks the Firebase \
Authentication wire protocol.";

const LONG_ABOUT: &str = "Self-hosted identity and session server that speaks the Firebase \
Authentication wire protocol: the Firebase client and Admin SDKs work against it unchanged.

Settings come from firekeeper.toml (or --config FILE), then FIREKEEPER_* environment \
variables, then flags, each overriding the one before. Every command works on the data \
directory directly, with or without a running server.

Start here:
  firekeeper serve                 production mode on 127.0.0.1:9099, data in ./firekeeper-data
  firekeeper serve --emulator      a drop-in for the Firebase Auth Emulator
  firekeeper api-keys create       a key for the client SDKs (printed alone on stdout)
  firekeeper admin-tokens create   a Bearer token for admin calls";

#[derive(Debug, Parser)]
#[command(name = "firekeeper", version, about = ABOUT, long_about = LONG_ABOUT)]
struct Cli {
    /// Config file (TOML). Default: ./firekeeper.toml when it exists.
    #[arg(long, global = true, value_name = "FILE", env = "FIREKEEPER_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database and keys live [default: ./firekeeper-data].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The project served by default and used by commands [default: demo-firekeeper].
    #[arg(long, global = true, value_name = "ID")]
    project: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (stops cleanly on SIGTERM or Ctrl-C).
    Serve(serve::ServeArgs),
    /// Manage user accounts.
    #[command(subcommand)]
    Users(commands::users::UsersCmd),
    /// Manage API keys, which client SDKs send with every call.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(commands::credentials::ApiKeysCmd),
    /// Manage admin tokens (`Authorization: Bearer ...` for admin calls).
    #[command(subcommand, name = "admin-tokens")]
    AdminTokens(commands::credentials::AdminTokensCmd),
    /// Manage service accounts, whose key files the Admin SDKs use to sign custom tokens.
    #[command(subcommand, name = "service-accounts")]
    ServiceAccounts(commands::credentials::ServiceAccountsCmd),
    /// Inspect and rotate the ID-token signing keys.
    #[command(subcommand)]
    Keys(commands::keys::KeysCmd),
    /// List and end users' sign-in sessions.
    #[command(subcommand)]
    Sessions(commands::sessions::SessionsCmd),
    /// Apply the database migrations (SQLite in the data directory, or `database_url`) and
    /// exit; `serve` does the same at start.
    Migrate,
    /// Move an installation's SQLite database into an empty PostgreSQL database, with
    /// progress. Stop the servers first; then point them at the new `database_url`.
    Copy {
        /// The SQLite file (`sqlite://firekeeper-data/firekeeper.db` or a plain path).
        #[arg(long)]
        from: String,
        /// The PostgreSQL database (`postgres://user:pass@host/db`).
        #[arg(long)]
        to: String,
    },
    /// Register blocking functions (beforeCreate, beforeSignIn, ...) and set the built-in
    /// sign-up and sign-in policies of the project.
    #[command(subcommand)]
    Blocking(commands::blocking::BlockingCmd),
    /// Show a user's audit log: sign-ins, refreshes, rotations, revocations.
    Audit {
        uid: String,
        /// Only events after this id (the cursor printed first on each line).
        #[arg(long, default_value_t = 0)]
        after: i64,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

fn settings(cli: &Cli, serve: Option<&serve::ServeArgs>) -> Result<Settings> {
    let mut file = match &cli.config {
        Some(path) => FileConfig::load(path)?,
        None if std::path::Path::new(DEFAULT_CONFIG_FILE).exists() => {
            FileConfig::load(std::path::Path::new(DEFAULT_CONFIG_FILE))?
        }
        None => FileConfig::default(),
    };
    let vars: BTreeMap<String, String> = std::env::vars().collect();
    file.apply_env(&vars)?;
    if let Some(d) = &cli.data_dir {
        file.data_dir = Some(d.clone());
    }
    if let Some(p) = &cli.project {
        file.project = Some(p.clone());
    }
    if let Some(s) = serve {
        s.apply(&mut file);
    }
    file.settings()
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and pipes get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .init();
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let serve_args = match &cli.command {
        Command::Serve(a) => Some(a),
        _ => None,
    };
    let settings = match settings(&cli, serve_args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("firekeeper: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("firekeeper: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(_) => serve::run(settings).await,
            Command::Users(cmd) => commands::users::run(&settings, cmd).await,
            Command::ApiKeys(cmd) => commands::credentials::api_keys(&settings, cmd).await,
            Command::AdminTokens(cmd) => commands::credentials::admin_tokens(&settings, cmd).await,
            Command::ServiceAccounts(cmd) => {
                commands::credentials::service_accounts(&settings, cmd).await
            }
            Command::Keys(cmd) => commands::keys::run(&settings, cmd).await,
            Command::Sessions(cmd) => commands::sessions::run(&settings, cmd).await,
            Command::Blocking(cmd) => commands::blocking::run(&settings, cmd).await,
            Command::Migrate => commands::store::migrate(&settings).await,
            Command::Copy { from, to } => commands::store::copy(&from, &to).await,
            Command::Audit {
                uid,
                after,
                limit,
                json,
            } => commands::sessions::audit(&settings, &uid, after, limit, json).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("firekeeper: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
