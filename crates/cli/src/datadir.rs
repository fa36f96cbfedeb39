//! The data directory: the master key and the SQLite database, private to the owner; or,
//! with `database_url`, the master key here and the data in PostgreSQL.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use firekeeper_core::secrets::MasterKey;
use firekeeper_core::Store;
use firekeeper_store::{PgStore, SqliteStore};

use crate::config::Settings;

pub const DB_FILE: &str = "firekeeper.db";
pub const MASTER_KEY_FILE: &str = "master.key";

/// Creates `path` with mode 0600 if it does not exist (never widens an existing file).
fn ensure_private_file(path: &Path) -> Result<()> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

fn master_key(dir: &Path) -> Result<MasterKey> {
    let path = dir.join(MASTER_KEY_FILE);
    if !path.exists() {
        // Written aside and linked into place: a crash never leaves a partial key.
        let bytes = MasterKey::generate_bytes()?;
        let tmp = dir.join(format!("{MASTER_KEY_FILE}.{}.tmp", std::process::id()));
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        let linked = fs::hard_link(&tmp, &path).or_else(|e| match e.kind() {
            // Another process won the race: use its key.
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        });
        fs::remove_file(&tmp)?;
        linked.with_context(|| format!("cannot create {}", path.display()))?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    let bytes = fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() != 32 {
        bail!("{} must hold exactly 32 bytes", path.display());
    }
    let mode = fs::metadata(&path)?.permissions().mode() & 0o077;
    if mode != 0 {
        tracing::warn!(file = %path.display(), "master key is readable by others; chmod 600 it");
    }
    Ok(MasterKey::from_bytes(&bytes)?)
}

pub struct DataDir {
    pub store: Arc<dyn Store>,
    pub master: Arc<MasterKey>,
}

/// Opens (creating on first use) the data directory.
pub async fn open(s: &Settings) -> Result<DataDir> {
    let dir: &Path = &s.data_dir;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let store: Arc<dyn Store> = match &s.database_url {
        // Every instance on the database needs the same master key file.
        Some(url) => Arc::new(
            PgStore::connect(url)
                .await
                .context("cannot open the PostgreSQL database (database_url)")?,
        ),
        None => {
            let db = dir.join(DB_FILE);
            ensure_private_file(&db)?;
            Arc::new(
                SqliteStore::open(&db)
                    .await
                    .with_context(|| format!("cannot open database {}", db.display()))?,
            )
        }
    };
    Ok(DataDir {
        store,
        master: Arc::new(master_key(dir)?),
    })
}
