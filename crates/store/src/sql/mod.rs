//! What the SQLite and PostgreSQL backends share: one set of statements (see
//! [`store_macro`]), the placeholder dialect, and the mapping of database errors.

pub(crate) mod rows_macro;
pub(crate) mod store_macro;

use std::borrow::Cow;

use firekeeper_core::store::{StoreError, UniqueField};

/// The few places where the two databases differ.
pub(crate) trait Dialect {
    /// The statement with this database's placeholders (written with SQLite's `?` and `?N`).
    fn sql(sql: &str) -> Cow<'_, str>;
    /// A fingerprint of one purpose's signing keys (changes whenever they do).
    const KEYS_VERSION: &'static str;
    /// Taken in every transaction that appends events, so event ids commit in order and a
    /// feed reader's cursor never skips one committed late.
    const EVENTS_LOCK: Option<&'static str>;
    /// Taken by a transaction that adds a signing key, so instances reconciling their keys
    /// at once check and insert one after another.
    const KEYS_LOCK: Option<&'static str>;
    /// Finds the account row (project, tenant, local id) and keeps it from being deleted
    /// until the transaction ends.
    const ACCOUNT_STILL_THERE: &'static str;
    /// Announces a change to the other instances at commit (`?` is the payload).
    const NOTIFY: Option<&'static str>;
}

impl Dialect for sqlx::Sqlite {
    fn sql(sql: &str) -> Cow<'_, str> {
        Cow::Borrowed(sql)
    }
    const KEYS_VERSION: &'static str =
        "SELECT COALESCE(group_concat(kid || ':' || activates_at || ':' || \
         COALESCE(retired_at, ''), ','), '') \
         FROM (SELECT * FROM signing_keys WHERE purpose = ? ORDER BY kid)";
    // One writer connection already serialises every transaction.
    const EVENTS_LOCK: Option<&'static str> = None;
    const KEYS_LOCK: Option<&'static str> = None;
    const ACCOUNT_STILL_THERE: &'static str =
        "SELECT 1 FROM accounts WHERE project = ? AND tenant = ? AND local_id = ?";
    const NOTIFY: Option<&'static str> = None;
}

impl Dialect for sqlx::Postgres {
    fn sql(sql: &str) -> Cow<'_, str> {
        Cow::Owned(numbered(sql))
    }
    const KEYS_VERSION: &'static str =
        "SELECT COALESCE(string_agg(kid || ':' || activates_at || ':' || \
         COALESCE(retired_at::text, ''), ',' ORDER BY kid), '') \
         FROM signing_keys WHERE purpose = $1";
    const EVENTS_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7460001)");
    const KEYS_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7460002)");
    const ACCOUNT_STILL_THERE: &'static str =
        "SELECT 1::BIGINT FROM accounts WHERE project = ? AND tenant = ? AND local_id = ? \
         FOR KEY SHARE";
    const NOTIFY: Option<&'static str> = Some("SELECT pg_notify('firekeeper', $1)");
}

/// `?` and `?N` placeholders as PostgreSQL's `$N` (a bare `?` takes the number after the
/// highest so far, as in SQLite). Placeholders never occur inside the statements' string
/// literals, which are all fixed words.
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '?' {
            out.push(c);
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let n = match digits.parse::<usize>() {
            Ok(n) => n,
            Err(_) => next + 1,
        };
        next = next.max(n);
        out.push('$');
        out.push_str(&n.to_string());
    }
    out
}

/// A database error as the store's: unique violations name the field they guard; a
/// deadlock or serialization failure (PostgreSQL) is `Stale`, which callers retry.
pub(crate) fn backend(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        match db.code().as_deref() {
            Some("40P01" | "40001") => return StoreError::Stale,
            // PostgreSQL text cannot hold NUL: no stored key contains one.
            Some("22021") => return StoreError::NotFound,
            _ => {}
        }
        if db.is_unique_violation() {
            // PostgreSQL names the index or constraint, SQLite the columns.
            let field = match db.constraint() {
                Some("accounts_email") => UniqueField::Email,
                Some("accounts_phone") => UniqueField::Phone,
                Some("accounts_pkey") => UniqueField::LocalId,
                Some("federated_ids_pkey") => UniqueField::Federated,
                Some(_) => UniqueField::Other,
                None => {
                    let msg = db.message();
                    if msg.contains("accounts.email") {
                        UniqueField::Email
                    } else if msg.contains("accounts.phone") {
                        UniqueField::Phone
                    } else if msg.contains("accounts.local_id") {
                        UniqueField::LocalId
                    } else if msg.contains("federated_ids.") {
                        UniqueField::Federated
                    } else {
                        UniqueField::Other
                    }
                }
            };
            return StoreError::Conflict(field);
        }
    }
    StoreError::Backend(e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_numbered() {
        assert_eq!(
            super::numbered("a = ? AND b = ? AND (?3 IS NULL OR c = ?3) LIMIT ?"),
            "a = $1 AND b = $2 AND ($3 IS NULL OR c = $3) LIMIT $4"
        );
    }
}
