//! `migrate` and `copy`: database upkeep.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::config::Settings;
use crate::datadir;

/// Opening the store runs its migrations.
pub async fn migrate(s: &Settings) -> Result<()> {
    let dd = datadir::open(s).await?;
    let ready = dd.store.ready().await;
    dd.store.close().await;
    ready.context("after migrating")?;
    let target = match &s.database_url {
        Some(_) => "the PostgreSQL database".to_owned(),
        None => s.data_dir.join(datadir::DB_FILE).display().to_string(),
    };
    eprintln!("{target} is up to date");
    Ok(())
}

pub async fn copy(from: &str, to: &str) -> Result<()> {
    let path = PathBuf::from(from.strip_prefix("sqlite://").unwrap_or(from));
    if !path.is_file() {
        bail!("{} is not a SQLite database file", path.display());
    }
    if !(to.starts_with("postgres://") || to.starts_with("postgresql://")) {
        bail!("--to must be a postgres:// URL");
    }
    let tty = std::io::stderr().is_terminal();
    let mut last_table = String::new();
    let rows = firekeeper_store::copy::sqlite_to_postgres(&path, to, |table, done, total| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        let line = format!("{table:<26} {done:>9} / {total:<9} {pct:>3}%");
        let mut err = std::io::stderr();
        if tty {
            // One line per table, redrawn in place.
            let _ = write!(err, "\r{line}");
            if done == total {
                let _ = writeln!(err);
            }
        } else if done == total || table != last_table {
            let _ = writeln!(err, "{line}");
        }
        last_table = table.to_owned();
    })
    .await
    .context("copy failed; the destination is unchanged")?;
    eprintln!("copied {rows} rows; set database_url to use PostgreSQL");
    Ok(())
}
