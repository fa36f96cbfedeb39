//! Real Firekeeper processes for the benchmarks: provisioned with the CLI, then served on a
//! loopback port each.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fk-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How to run the `firekeeper` binary: its path and the environment every call gets.
#[derive(Clone)]
pub struct Binary {
    pub path: String,
    pub env: Vec<(String, String)>,
}

impl Binary {
    fn command(&self, data: &Path) -> Command {
        let mut c = Command::new(&self.path);
        c.arg("--data-dir")
            .arg(data)
            .env_remove("FIREKEEPER_CONFIG")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs a CLI command; its trimmed stdout.
    pub fn output(&self, data: &Path, args: &[&str]) -> Result<String> {
        let out = self.command(data).args(args).output().with_context(|| {
            format!("cannot run {} (build it: cargo build --release)", self.path)
        })?;
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// An API key and an admin token for a new installation.
    pub fn provision(&self, data: &Path) -> Result<(String, String)> {
        Ok((
            self.output(data, &["api-keys", "create"])?,
            self.output(data, &["admin-tokens", "create"])?,
        ))
    }

    /// `firekeeper serve` on a loopback port; returns once it listens.
    pub fn serve(&self, data: &Path) -> Result<Server> {
        let mut child = self
            .command(data)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--rtdb-listen",
                "127.0.0.1:0",
                "--log",
                "warn,firekeeper=info",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut db_base = None;
            let word_after = |line: &str, marker: &str| {
                line.split(marker).nth(1).map(|rest| {
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned()
                })
            };
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                // The database port is logged first, then the auth port.
                if let Some(db) = word_after(&line, "database REST on ") {
                    db_base = Some(db);
                }
                if let Some(base) = word_after(&line, "listening on ") {
                    let _ = tx.send((base, db_base.clone()));
                }
            }
        });
        let (base, db_base) = rx.recv_timeout(Duration::from_secs(60))?;
        Ok(Server {
            child,
            base,
            db_base,
        })
    }
}

/// A running server, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    /// The JSON database's port.
    pub db_base: Option<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
