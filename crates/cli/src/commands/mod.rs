//! Operator commands. They work on the data directory directly and reuse the same core
//! services the server runs, so the rules are the server's.

pub mod credentials;
pub mod keys;
pub mod users;

pub(crate) fn when(ms: Option<i64>) -> String {
    ms.map(firekeeper_core::wire::rfc3339_ms)
        .unwrap_or_else(|| "-".to_owned())
}

/// Prints a value as JSON on stdout.
pub(crate) fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}
