//! The `Store` implementation, written once for both backends: SQLite and PostgreSQL run
//! the same statements (placeholders are rewritten for PostgreSQL by [`super::Dialect`]).
//! A macro rather than generics: sqlx's executor bounds over two databases would bury the
//! SQL under trait bounds.

/// Implements `Store` for `$store` (with `writer`, `reader` pools and a `refreshes`
/// sender) on database `$db`; the invoking module provides `rows`.
macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        use firekeeper_core::model::{Account, Event, OobCode, Scope, Session};
        use firekeeper_core::store::{
            AccountWrite, AdminToken, ApiKey, RefreshContext, RtdbWrite, ServiceAccount, SessionState, Store,
            StoreError, StoreResult, StoredKey,
        };
        use serde_json::Value;

        use crate::sql::backend;
        use rows::{ACCOUNT_COLUMNS, EVENT_COLUMNS, OOB_COLUMNS, SESSION_COLUMNS};

        fn dialect_sql(sql: &str) -> std::borrow::Cow<'_, str> {
            <$db as crate::sql::Dialect>::sql(sql)
        }

        /// Tells the other instances (at commit, when run in a transaction).
        async fn notify<'e, E>(executor: E, what: &str) -> StoreResult<()>
        where
            E: sqlx::Executor<'e, Database = $db>,
        {
            if let Some(sql) = <$db as crate::sql::Dialect>::NOTIFY {
                sqlx::query(sql)
                    .bind(what)
                    .execute(executor)
                    .await
                    .map_err(backend)?;
            }
            Ok(())
        }

        /// The longest rotation grace window a policy may set.
        const MAX_GRACE_MS: i64 = 3_600_000;

        /// Most refreshes one transaction carries (and the bound on statement parameters).
        const MAX_BATCH: usize = 200;

        struct Touch {
            session_id: String,
            project: String,
            tenant: String,
            local_id: String,
            now_ms: i64,
            event: Option<Event>,
            done: tokio::sync::oneshot::Sender<StoreResult<()>>,
        }

        fn group_spawn(writer: sqlx::Pool<$db>) -> tokio::sync::mpsc::Sender<Touch> {
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Touch>(4096);
            tokio::spawn(async move {
                while let Some(first) = rx.recv().await {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(t) => batch.push(t),
                            Err(_) => break,
                        }
                    }
                    // A deadlock with another instance's writer is retried, not reported.
                    let mut result = group_commit(&writer, &batch).await;
                    for _ in 0..3 {
                        if result != Err(StoreError::Stale) {
                            break;
                        }
                        result = group_commit(&writer, &batch).await;
                    }
                    for t in batch {
                        let _ = t.done.send(result.clone());
                    }
                }
            });
            tx
        }

        async fn group_commit(writer: &sqlx::Pool<$db>, batch: &[Touch]) -> StoreResult<()> {
            let now = batch.iter().map(|t| t.now_ms).max().unwrap_or(0);
            let marks = vec!["?"; batch.len()].join(", ");
            let rows = vec!["(?, ?, ?)"; batch.len()].join(", ");
            let mut tx = writer.begin().await.map_err(backend)?;
            // The sealed copy of a rotated token is needed only within the grace window (an hour
            // at most); refreshes drop it after that.
            let sql = format!(
                "UPDATE sessions SET last_used_at = ?, successor = CASE WHEN rotated_at < ? \
                 THEN NULL ELSE successor END WHERE id IN ({marks})"
            );
            let sql = dialect_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now).bind(now - MAX_GRACE_MS);
            for t in batch {
                q = q.bind(&t.session_id);
            }
            q.execute(&mut *tx).await.map_err(backend)?;
            let sql = format!(
                "UPDATE accounts SET last_refresh_at = ? WHERE (project, tenant, local_id) IN (VALUES {rows})"
            );
            let sql = dialect_sql(&sql);
            let mut q = sqlx::query(&sql).bind(now);
            for t in batch {
                q = q.bind(&t.project).bind(&t.tenant).bind(&t.local_id);
            }
            q.execute(&mut *tx).await.map_err(backend)?;
            let events: Vec<Event> = batch.iter().filter_map(|t| t.event.clone()).collect();
            insert_events(&mut tx, &events).await?;
            tx.commit().await.map_err(backend)
        }

        /// Queues a refresh of `session` and waits until it is committed.
        async fn group_record(
            sender: &tokio::sync::mpsc::Sender<Touch>,
            session: &Session,
            now_ms: i64,
            event: Option<&Event>,
        ) -> StoreResult<()> {
            let (done, wait) = tokio::sync::oneshot::channel();
            let touch = Touch {
                session_id: session.id.clone(),
                project: session.scope.project.clone(),
                tenant: session.scope.tenant_key().to_owned(),
                local_id: session.local_id.clone(),
                now_ms,
                event: event.cloned(),
                done,
            };
            let stopped = || StoreError::Backend("refresh writer stopped".into());
            sender.send(touch).await.map_err(|_| stopped())?;
            wait.await.map_err(|_| stopped())?
        }



        /// Inserts a new account row (the federated index and the rest follow in
        /// [`finish_account_write`]).
        async fn insert_account_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            scope: &Scope,
            acc: &Account,
        ) -> StoreResult<()> {
            sqlx::query(&dialect_sql(
                "INSERT INTO accounts (project, tenant, local_id, email, phone, doc, last_login_at, \
                 last_refresh_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
            ))
            .bind(&scope.project)
            .bind(scope.tenant_key())
            .bind(&acc.local_id)
            .bind(&acc.email)
            .bind(&acc.phone_number)
            .bind(rows::doc(acc)?)
            .bind(acc.last_login_at)
            .bind(acc.last_refresh_at)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            Ok(())
        }

        /// Replaces an account row if its version is still the one read: `Stale` when
        /// another write came first, `NotFound` when it was deleted.
        async fn update_account_row(
            tx: &mut sqlx::Transaction<'_, $db>,
            scope: &Scope,
            acc: &Account,
        ) -> StoreResult<()> {
            let done = sqlx::query(&dialect_sql(
                "UPDATE accounts SET email = ?, phone = ?, doc = ?, version = version + 1 \
                 WHERE project = ? AND tenant = ? AND local_id = ? AND version = ?",
            ))
            .bind(&acc.email)
            .bind(&acc.phone_number)
            .bind(rows::doc(acc)?)
            .bind(&scope.project)
            .bind(scope.tenant_key())
            .bind(&acc.local_id)
            .bind(acc.version)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            if done.rows_affected() == 0 {
                let exists: Option<(i64,)> = sqlx::query_as(&dialect_sql(
                    "SELECT version FROM accounts WHERE project = ? AND tenant = ? AND local_id = ?",
                ))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(&acc.local_id)
                .fetch_optional(&mut **tx)
                .await
                .map_err(backend)?;
                return Err(match exists {
                    Some(_) => StoreError::Stale,
                    None => StoreError::NotFound,
                });
            }
            Ok(())
        }

        /// The end of every account insert or update: the federated-id index, the new
        /// session if any, the events (last), and the commit.
        async fn finish_account_write(
            mut tx: sqlx::Transaction<'_, $db>,
            scope: &Scope,
            acc: &Account,
            session: Option<&Session>,
            events: &[Event],
        ) -> StoreResult<()> {
            sync_federated(&mut tx, scope, acc).await?;
            if let Some(s) = session {
                insert_session(&mut tx, s).await?;
            }
            insert_events(&mut tx, events).await?;
            tx.commit().await.map_err(backend)
        }

        /// Rewrites the federated-id index of one account (the uniqueness of provider + raw id).
        async fn sync_federated(
            tx: &mut sqlx::Transaction<'_, $db>,
            scope: &Scope,
            acc: &Account,
        ) -> StoreResult<()> {
            sqlx::query(&dialect_sql("DELETE FROM federated_ids WHERE project = ? AND tenant = ? AND local_id = ?"))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(&acc.local_id)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            for p in &acc.providers {
                sqlx::query(&dialect_sql(
                    "INSERT INTO federated_ids (project, tenant, provider_id, raw_id, local_id) \
                     VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(&p.provider_id)
                .bind(&p.raw_id)
                .bind(&acc.local_id)
                .execute(&mut **tx)
                .await
                .map_err(backend)?;
            }
            Ok(())
        }

        async fn insert_session(tx: &mut sqlx::Transaction<'_, $db>, s: &Session) -> StoreResult<()> {
            sqlx::query(&dialect_sql(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )))
            .bind(&s.id)
            .bind(&s.scope.project)
            .bind(s.scope.tenant_key())
            .bind(&s.local_id)
            .bind(&s.refresh_hash)
            .bind(&s.provider)
            .bind(Value::Object(s.extra_claims.clone()).to_string())
            .bind(s.auth_time)
            .bind(s.created_at)
            .bind(s.last_used_at)
            .bind(&s.ip)
            .bind(&s.user_agent)
            .bind(&s.revoked)
            .bind(s.rotated_at)
            .bind(&s.successor)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            Ok(())
        }

        /// Appends audit events inside the caller's transaction.
        /// Appends audit events. Always the transaction's last statement: on PostgreSQL it
        /// takes the events lock, and taking it before row locks could deadlock.
        async fn insert_events(
            tx: &mut sqlx::Transaction<'_, $db>,
            events: &[Event],
        ) -> StoreResult<()> {
            if events.is_empty() {
                return Ok(());
            }
            notify(&mut **tx, "events").await?;
            if let Some(lock) = <$db as crate::sql::Dialect>::EVENTS_LOCK {
                sqlx::query(lock).execute(&mut **tx).await.map_err(backend)?;
            }
            // One statement per chunk: a refresh batch carries up to 200 events.
            for chunk in events.chunks(100) {
                let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
                let sql = format!(
                    "INSERT INTO events (project, tenant, local_id, session_id, kind, at, ip, \
                     user_agent, detail) VALUES {rows}"
                );
                let sql = dialect_sql(&sql);
                let mut q = sqlx::query(&sql);
                for e in chunk {
                    q = q
                        .bind(&e.scope.project)
                        .bind(e.scope.tenant_key())
                        .bind(&e.local_id)
                        .bind(&e.session_id)
                        .bind(&e.kind)
                        .bind(e.at)
                        .bind(&e.ip)
                        .bind(&e.user_agent)
                        .bind(Value::Object(e.detail.clone()).to_string());
                }
                q.execute(&mut **tx).await.map_err(backend)?;
            }
            Ok(())
        }

        /// Marks the sessions of a scope (optionally one account) as ended by deletion.
        async fn end_sessions_deleted(
            tx: &mut sqlx::Transaction<'_, $db>,
            scope: &Scope,
            local_id: Option<&str>,
        ) -> StoreResult<()> {
            sqlx::query(&dialect_sql(
                "UPDATE sessions SET revoked = 'user_deleted', successor = NULL WHERE project = ? \
                 AND tenant = ? AND (?3 IS NULL OR local_id = ?3) AND revoked IS NULL",
            ))
            .bind(&scope.project)
            .bind(scope.tenant_key())
            .bind(local_id)
            .execute(&mut **tx)
            .await
            .map_err(backend)?;
            Ok(())
        }

        impl $store {
            async fn account_where(
                &self,
                scope: &Scope,
                column: &str,
                value: &str,
            ) -> StoreResult<Option<Account>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE project = ? AND tenant = ? AND {column} = ?"
                );
                let row = sqlx::query(&dialect_sql(&sql))
                    .bind(&scope.project)
                    .bind(scope.tenant_key())
                    .bind(value)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(rows::account).transpose()
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn close(&self) {
                $store::close(self).await
            }

            fn changes(
                &self,
            ) -> Option<tokio::sync::broadcast::Receiver<firekeeper_core::store::Change>> {
                $store::change_feed(self)
            }

            async fn ready(&self) -> StoreResult<()> {
                let current = $store::schema_version(self).await?;
                if current != MIGRATIONS.len() {
                    return Err(StoreError::Backend(format!(
                        "schema version {current}, this build expects {}",
                        MIGRATIONS.len()
                    )));
                }
                Ok(())
            }

            async fn create_account(
                &self,
                scope: &Scope,
                acc: &Account,
                session: Option<&Session>,
                events: &[Event],
            ) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                insert_account_row(&mut tx, scope, acc).await?;
                finish_account_write(tx, scope, acc, session, events).await
            }

            async fn update_account(
                &self,
                scope: &Scope,
                acc: &Account,
                session: Option<&Session>,
                events: &[Event],
            ) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                update_account_row(&mut tx, scope, acc).await?;
                finish_account_write(tx, scope, acc, session, events).await
            }

            async fn set_last_login_at(
                &self,
                scope: &Scope,
                local_id: &str,
                at_ms: i64,
            ) -> StoreResult<()> {
                sqlx::query(&dialect_sql(
                    "UPDATE accounts SET last_login_at = ? WHERE project = ? AND tenant = ? AND local_id = ?",
                ))
                .bind(at_ms)
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(local_id)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn get_account(&self, scope: &Scope, local_id: &str) -> StoreResult<Option<Account>> {
                self.account_where(scope, "local_id", local_id).await
            }

            async fn account_with_session(
                &self,
                scope: &Scope,
                local_id: &str,
                session_id: &str,
            ) -> StoreResult<Option<(Account, SessionState)>> {
                let cols = ACCOUNT_COLUMNS
                    .split(", ")
                    .map(|c| format!("a.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let row = sqlx::query(&dialect_sql(&format!(
                    "SELECT {cols}, s.id IS NOT NULL AND s.revoked IS NULL AS session_live, \
                     s.ip AS session_ip FROM accounts a LEFT JOIN sessions s ON s.id = ? \
                     AND s.project = a.project AND s.tenant = a.tenant AND s.local_id = a.local_id \
                     WHERE a.project = ? AND a.tenant = ? AND a.local_id = ?"
                )))
                .bind(session_id)
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(local_id)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let live: bool = sqlx::Row::try_get(&row, "session_live").map_err(backend)?;
                let ip: Option<String> = sqlx::Row::try_get(&row, "session_ip").map_err(backend)?;
                Ok(Some((rows::account(&row)?, SessionState { live, ip })))
            }

            async fn account_by_email(&self, scope: &Scope, email: &str) -> StoreResult<Option<Account>> {
                self.account_where(scope, "email", email).await
            }

            async fn account_by_phone(&self, scope: &Scope, phone: &str) -> StoreResult<Option<Account>> {
                self.account_where(scope, "phone", phone).await
            }

            async fn account_by_federated(
                &self,
                scope: &Scope,
                provider_id: &str,
                raw_id: &str,
            ) -> StoreResult<Option<Account>> {
                let local_id: Option<(String,)> = sqlx::query_as(&dialect_sql(
                    "SELECT local_id FROM federated_ids \
                     WHERE project = ? AND tenant = ? AND provider_id = ? AND raw_id = ?",
                ))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(provider_id)
                .bind(raw_id)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                match local_id {
                    Some((id,)) => self.get_account(scope, &id).await,
                    None => Ok(None),
                }
            }

            async fn delete_account(
                &self,
                scope: &Scope,
                local_id: &str,
                events: &[Event],
            ) -> StoreResult<bool> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                let mut deleted = false;
                for table in ["accounts", "federated_ids"] {
                    let sql =
                        format!("DELETE FROM {table} WHERE project = ? AND tenant = ? AND local_id = ?");
                    let done = sqlx::query(&dialect_sql(&sql))
                        .bind(&scope.project)
                        .bind(scope.tenant_key())
                        .bind(local_id)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    if table == "accounts" {
                        deleted = done.rows_affected() > 0;
                        if !deleted {
                            return Ok(false);
                        }
                    }
                }
                // Sessions are kept, marked, so a refresh says USER_NOT_FOUND (as Firebase) and a
                // later account with the same uid does not inherit them. After the row is
                // gone, so a sign-in racing this one cannot add a session unmarked.
                end_sessions_deleted(&mut tx, scope, Some(local_id)).await?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(backend)?;
                Ok(deleted)
            }

            async fn page_accounts(
                &self,
                scope: &Scope,
                offset: u64,
                limit: u32,
                descending: bool,
            ) -> StoreResult<Vec<Account>> {
                let order = if descending { "DESC" } else { "ASC" };
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE project = ? AND tenant = ? \
                     ORDER BY local_id {order} LIMIT ? OFFSET ?"
                );
                let found = sqlx::query(&dialect_sql(&sql))
                    .bind(&scope.project)
                    .bind(scope.tenant_key())
                    .bind(i64::from(limit))
                    .bind(i64::try_from(offset).unwrap_or(i64::MAX))
                    .fetch_all(&self.reader)
                    .await
                    .map_err(backend)?;
                found.iter().map(rows::account).collect()
            }

            async fn list_accounts(
                &self,
                scope: &Scope,
                after: Option<&str>,
                limit: u32,
            ) -> StoreResult<Vec<Account>> {
                let sql = format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE project = ? AND tenant = ? \
                     AND local_id > ? ORDER BY local_id LIMIT ?"
                );
                let found = sqlx::query(&dialect_sql(&sql))
                    .bind(&scope.project)
                    .bind(scope.tenant_key())
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit))
                    .fetch_all(&self.reader)
                    .await
                    .map_err(backend)?;
                found.iter().map(rows::account).collect()
            }

            async fn count_accounts(&self, scope: &Scope) -> StoreResult<u64> {
                let (n,): (i64,) =
                    sqlx::query_as(&dialect_sql("SELECT COUNT(*) FROM accounts WHERE project = ? AND tenant = ?"))
                        .bind(&scope.project)
                        .bind(scope.tenant_key())
                        .fetch_one(&self.reader)
                        .await
                        .map_err(backend)?;
                Ok(n.max(0) as u64)
            }

            async fn delete_all_accounts(&self, scope: &Scope) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                end_sessions_deleted(&mut tx, scope, None).await?;
                for table in ["accounts", "federated_ids"] {
                    sqlx::query(&dialect_sql(&format!(
                        "DELETE FROM {table} WHERE project = ? AND tenant = ?"
                    )))
                    .bind(&scope.project)
                    .bind(scope.tenant_key())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
                tx.commit().await.map_err(backend)
            }

            async fn wipe_project(&self, project: &str) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                sqlx::query(&dialect_sql(
                    "DELETE FROM superseded_refresh_tokens WHERE session_id IN \
                     (SELECT id FROM sessions WHERE project = ?)",
                ))
                .bind(project)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                for table in [
                    "accounts",
                    "federated_ids",
                    "sessions",
                    "project_configs",
                    "oob_codes",
                    "events",
                ] {
                    sqlx::query(&dialect_sql(&format!("DELETE FROM {table} WHERE project = ?")))
                        .bind(project)
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                }
                tx.commit().await.map_err(backend)
            }

            async fn start_session(
                &self,
                s: &Session,
                login_at: Option<i64>,
                events: &[Event],
            ) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                // The account must still exist: a concurrent deletion either ends first
                // (and this sign-in fails) or waits for this session and then marks it.
                let alive: Option<(i64,)> = sqlx::query_as(&dialect_sql(
                    <$db as crate::sql::Dialect>::ACCOUNT_STILL_THERE,
                ))
                .bind(&s.scope.project)
                .bind(s.scope.tenant_key())
                .bind(&s.local_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
                if alive.is_none() {
                    return Err(StoreError::NotFound);
                }
                insert_session(&mut tx, s).await?;
                if let Some(at) = login_at {
                    sqlx::query(&dialect_sql(
                        "UPDATE accounts SET last_login_at = ? \
                         WHERE project = ? AND tenant = ? AND local_id = ?",
                    ))
                    .bind(at)
                    .bind(&s.scope.project)
                    .bind(s.scope.tenant_key())
                    .bind(&s.local_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                }
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(backend)
            }

            async fn refresh_context(&self, hash: &[u8]) -> StoreResult<Option<RefreshContext>> {
                let prefixed = |columns: &str, alias: &str| {
                    columns
                        .split(", ")
                        .map(|c| format!("{alias}.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let join = "LEFT JOIN accounts a ON a.project = s.project AND a.tenant = s.tenant \
                            AND a.local_id = s.local_id";
                let cols = format!(
                    "{}, {}",
                    prefixed(SESSION_COLUMNS, "s"),
                    prefixed(ACCOUNT_COLUMNS, "a")
                );
                // The current token of a session: the hot path.
                let current = sqlx::query(&dialect_sql(&format!(
                    "SELECT {cols}, CAST(NULL AS BIGINT) AS superseded_at FROM sessions s {join} WHERE s.refresh_hash = ?"
                )))
                .bind(hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                let row = match current {
                    Some(row) => row,
                    None => {
                        let old = sqlx::query(&dialect_sql(&format!(
                            "SELECT {cols}, r.superseded_at FROM superseded_refresh_tokens r \
                             JOIN sessions s ON s.id = r.session_id {join} WHERE r.hash = ?"
                        )))
                        .bind(hash)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(backend)?;
                        match old {
                            Some(row) => row,
                            None => return Ok(None),
                        }
                    }
                };
                let session = rows::session(&row)?;
                let doc: Option<String> = sqlx::Row::try_get(&row, "doc").map_err(backend)?;
                let account = match doc {
                    Some(_) => Some(rows::account(&row)?),
                    None => None,
                };
                let superseded_at: Option<i64> =
                    sqlx::Row::try_get(&row, "superseded_at").map_err(backend)?;
                Ok(Some(RefreshContext {
                    session,
                    account,
                    superseded_at,
                }))
            }

            async fn record_refresh(
                &self,
                s: &Session,
                now_ms: i64,
                event: Option<&Event>,
            ) -> StoreResult<()> {
                group_record(&self.refreshes, s, now_ms, event).await
            }

            async fn rotate_refresh_token(
                &self,
                s: &Session,
                old_hash: &[u8],
                new_hash: &[u8],
                sealed_new: &[u8],
                now_ms: i64,
                event: &Event,
            ) -> StoreResult<bool> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                let done = sqlx::query(&dialect_sql(
                    "UPDATE sessions SET refresh_hash = ?, successor = ?, rotated_at = ?, \
                     last_used_at = ? WHERE id = ? AND refresh_hash = ? AND revoked IS NULL",
                ))
                .bind(new_hash)
                .bind(sealed_new)
                .bind(now_ms)
                .bind(now_ms)
                .bind(&s.id)
                .bind(old_hash)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                sqlx::query(&dialect_sql(
                    "INSERT INTO superseded_refresh_tokens (hash, session_id, superseded_at) \
                     VALUES (?, ?, ?)",
                ))
                .bind(old_hash)
                .bind(&s.id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                sqlx::query(&dialect_sql(
                    "UPDATE accounts SET last_refresh_at = ? \
                     WHERE project = ? AND tenant = ? AND local_id = ?",
                ))
                .bind(now_ms)
                .bind(&s.scope.project)
                .bind(s.scope.tenant_key())
                .bind(&s.local_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                insert_events(&mut tx, std::slice::from_ref(event)).await?;
                tx.commit().await.map_err(backend)?;
                Ok(true)
            }

            async fn session(&self, id: &str) -> StoreResult<Option<Session>> {
                let row = sqlx::query(&dialect_sql(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?"
                )))
                .bind(id)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                row.as_ref().map(rows::session).transpose()
            }

            async fn sessions_of(&self, scope: &Scope, local_id: &str) -> StoreResult<Vec<Session>> {
                let found = sqlx::query(&dialect_sql(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE project = ? AND tenant = ? \
                     AND local_id = ? ORDER BY created_at DESC, id"
                )))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(local_id)
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::session).collect()
            }

            async fn end_sessions(
                &self,
                ids: &[String],
                reason: &str,
                events: &[Event],
            ) -> StoreResult<u64> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                let mut ended = std::collections::HashSet::new();
                // Rows locked in id order, as a refresh batch locks them: no deadlock.
                let mut ids = ids.to_vec();
                ids.sort();
                ids.dedup();
                for id in &ids {
                    let done = sqlx::query(&dialect_sql(
                        "UPDATE sessions SET revoked = ?, successor = NULL WHERE id = ? AND revoked IS NULL",
                    ))
                    .bind(reason)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                    if done.rows_affected() > 0 {
                        ended.insert(id.as_str());
                    }
                }
                // Re-revoking an ended session is no news.
                let news: Vec<Event> = events
                    .iter()
                    .filter(|e| e.session_id.as_deref().is_none_or(|s| ended.contains(s)))
                    .cloned()
                    .collect();
                insert_events(&mut tx, &news).await?;
                tx.commit().await.map_err(backend)?;
                Ok(ended.len() as u64)
            }

            async fn append_events(&self, events: &[Event]) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                insert_events(&mut tx, events).await?;
                tx.commit().await.map_err(backend)
            }

            async fn head_event_id(&self, project: &str) -> StoreResult<i64> {
                let (id,): (i64,) =
                    sqlx::query_as(&dialect_sql("SELECT COALESCE(MAX(id), 0) FROM events WHERE project = ?"))
                        .bind(project)
                        .fetch_one(&self.reader)
                        .await
                        .map_err(backend)?;
                Ok(id)
            }

            async fn account_events(
                &self,
                scope: &Scope,
                local_id: &str,
                after_id: i64,
                limit: u32,
            ) -> StoreResult<Vec<Event>> {
                let found = sqlx::query(&dialect_sql(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE project = ? AND tenant = ? AND local_id = ? \
                     AND id > ? ORDER BY id LIMIT ?"
                )))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .bind(local_id)
                .bind(after_id)
                .bind(i64::from(limit))
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::event).collect()
            }

            async fn project_events(
                &self,
                project: &str,
                kinds: &[&str],
                after_id: i64,
                since_ms: i64,
                limit: u32,
            ) -> StoreResult<Vec<Event>> {
                if kinds.is_empty() {
                    return Ok(Vec::new());
                }
                let marks = vec!["?"; kinds.len()].join(", ");
                let sql = format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE project = ? AND id > ? AND at >= ? \
                     AND kind IN ({marks}) ORDER BY id LIMIT ?"
                );
                let sql = dialect_sql(&sql);
                let mut q = sqlx::query(&sql)
                    .bind(project)
                    .bind(after_id)
                    .bind(since_ms);
                if kinds.is_empty() {
                    q = q.bind("");
                }
                for k in kinds {
                    q = q.bind(*k);
                }
                let found = q
                    .bind(i64::from(limit))
                    .fetch_all(&self.reader)
                    .await
                    .map_err(backend)?;
                found.iter().map(rows::event).collect()
            }

            async fn prune_superseded(&self, before_ms: i64) -> StoreResult<u64> {
                let done = sqlx::query(&dialect_sql("DELETE FROM superseded_refresh_tokens WHERE superseded_at < ?"))
                    .bind(before_ms)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected())
            }

            async fn prune_events(&self, before_ms: i64) -> StoreResult<u64> {
                let done = sqlx::query(&dialect_sql("DELETE FROM events WHERE at < ?"))
                    .bind(before_ms)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected())
            }

            async fn signing_keys(&self, purpose: &str) -> StoreResult<Vec<StoredKey>> {
                // Read through the writer: key rotation reads its own writes right away.
                let found = sqlx::query(&dialect_sql(
                    "SELECT kid, purpose, private_key, public_key, cert_pem, created_at, activates_at, \
                     retired_at FROM signing_keys WHERE purpose = ? ORDER BY activates_at, created_at",
                ))
                .bind(purpose)
                .fetch_all(&self.writer)
                .await
                .map_err(backend)?;
                found.iter().map(rows::stored_key).collect()
            }

            async fn signing_keys_version(&self, purpose: &str) -> StoreResult<String> {
                let (v,): (String,) = sqlx::query_as(<$db as crate::sql::Dialect>::KEYS_VERSION)
                .bind(purpose)
                .fetch_one(&self.reader)
                .await
                .map_err(backend)?;
                Ok(v)
            }

            async fn insert_signing_key(
                &self,
                k: &StoredKey,
                newest_seen: Option<i64>,
            ) -> StoreResult<bool> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                if let Some(lock) = <$db as crate::sql::Dialect>::KEYS_LOCK {
                    sqlx::query(lock).execute(&mut *tx).await.map_err(backend)?;
                }
                let added = sqlx::query(&dialect_sql(
                    "INSERT INTO signing_keys (kid, purpose, private_key, public_key, cert_pem, \
                     created_at, activates_at, retired_at) SELECT ?, ?, ?, ?, ?, ?, ?, ? \
                     WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE purpose = ? \
                     AND activates_at > ?)",
                ))
                .bind(&k.kid)
                .bind(&k.purpose)
                .bind(&k.private_key)
                .bind(&k.public_key)
                .bind(&k.cert_pem)
                .bind(k.created_at)
                .bind(k.activates_at)
                .bind(k.retired_at)
                .bind(&k.purpose)
                .bind(newest_seen.unwrap_or(i64::MIN))
                .execute(&mut *tx)
                .await
                .map_err(backend)?
                .rows_affected()
                    == 1;
                if added {
                    notify(&mut *tx, "keys").await?;
                }
                tx.commit().await.map_err(backend)?;
                Ok(added)
            }

            async fn update_signing_key_times(
                &self,
                kid: &str,
                activates_at: i64,
                retired_at: Option<i64>,
            ) -> StoreResult<()> {
                sqlx::query(&dialect_sql("UPDATE signing_keys SET activates_at = ?, retired_at = ? WHERE kid = ?"))
                    .bind(activates_at)
                    .bind(retired_at)
                    .bind(kid)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                notify(&self.writer, "keys").await
            }

            async fn delete_signing_key(&self, kid: &str) -> StoreResult<()> {
                sqlx::query(&dialect_sql("DELETE FROM signing_keys WHERE kid = ?"))
                    .bind(kid)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                notify(&self.writer, "keys").await
            }

            async fn insert_api_key(&self, k: &ApiKey) -> StoreResult<()> {
                sqlx::query(&dialect_sql("INSERT INTO api_keys (key, project, created_at) VALUES (?, ?, ?)"))
                    .bind(&k.key)
                    .bind(&k.project)
                    .bind(k.created_at)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                Ok(())
            }

            async fn api_key(&self, key: &str) -> StoreResult<Option<ApiKey>> {
                let row = sqlx::query(&dialect_sql("SELECT key, project, created_at FROM api_keys WHERE key = ?"))
                    .bind(key)
                    .fetch_optional(&self.reader)
                    .await
                    .map_err(backend)?;
                row.as_ref().map(rows::api_key).transpose()
            }

            async fn api_keys(&self, project: Option<&str>) -> StoreResult<Vec<ApiKey>> {
                let found = sqlx::query(&dialect_sql(
                    "SELECT key, project, created_at FROM api_keys \
                     WHERE ?1 IS NULL OR project = ?1 ORDER BY created_at, key",
                ))
                .bind(project)
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::api_key).collect()
            }

            async fn insert_admin_token(&self, t: &AdminToken) -> StoreResult<()> {
                sqlx::query(&dialect_sql(
                    "INSERT INTO admin_tokens (id, project, token_hash, created_at, revoked_at) \
                     VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(&t.id)
                .bind(&t.project)
                .bind(&t.token_hash)
                .bind(t.created_at)
                .bind(t.revoked_at)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn admin_token_by_hash(&self, hash: &[u8]) -> StoreResult<Option<AdminToken>> {
                let row = sqlx::query(&dialect_sql(
                    "SELECT id, project, token_hash, created_at, revoked_at FROM admin_tokens \
                     WHERE token_hash = ?",
                ))
                .bind(hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                row.as_ref().map(rows::admin_token).transpose()
            }

            async fn admin_tokens(&self) -> StoreResult<Vec<AdminToken>> {
                let found = sqlx::query(&dialect_sql(
                    "SELECT id, project, token_hash, created_at, revoked_at FROM admin_tokens \
                     ORDER BY created_at, id",
                ))
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::admin_token).collect()
            }

            async fn revoke_admin_token(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
                let done = sqlx::query(&dialect_sql(
                    "UPDATE admin_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                ))
                .bind(now_ms)
                .bind(id)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_service_account(&self, sa: &ServiceAccount) -> StoreResult<()> {
                sqlx::query(&dialect_sql(
                    "INSERT INTO service_accounts (client_email, project, private_key_id, public_key, \
                     created_at) VALUES (?, ?, ?, ?, ?)",
                ))
                .bind(&sa.client_email)
                .bind(&sa.project)
                .bind(&sa.private_key_id)
                .bind(&sa.public_key)
                .bind(sa.created_at)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn service_account(&self, client_email: &str) -> StoreResult<Option<ServiceAccount>> {
                let row = sqlx::query(&dialect_sql(
                    "SELECT client_email, project, private_key_id, public_key, created_at \
                     FROM service_accounts WHERE client_email = ?",
                ))
                .bind(client_email)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                row.as_ref().map(rows::service_account).transpose()
            }

            async fn service_accounts(&self, project: Option<&str>) -> StoreResult<Vec<ServiceAccount>> {
                let found = sqlx::query(&dialect_sql(
                    "SELECT client_email, project, private_key_id, public_key, created_at \
                     FROM service_accounts WHERE ?1 IS NULL OR project = ?1 ORDER BY created_at",
                ))
                .bind(project)
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::service_account).collect()
            }

            async fn delete_service_account(&self, client_email: &str) -> StoreResult<bool> {
                let done = sqlx::query(&dialect_sql("DELETE FROM service_accounts WHERE client_email = ?"))
                    .bind(client_email)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected() > 0)
            }

            async fn project_config(&self, project: &str) -> StoreResult<Option<Value>> {
                let row: Option<(String,)> =
                    sqlx::query_as(&dialect_sql("SELECT config FROM project_configs WHERE project = ?"))
                        .bind(project)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(backend)?;
                row.map(|(text,)| {
                    serde_json::from_str(&text).map_err(|e| StoreError::Backend(e.to_string()))
                })
                .transpose()
            }

            async fn insert_oob_code(&self, code: &OobCode) -> StoreResult<()> {
                let doc = serde_json::to_string(&code.action)
                    .map_err(|e| StoreError::Backend(e.to_string()))?;
                sqlx::query(&dialect_sql(&format!(
                    "INSERT INTO oob_codes ({OOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
                )))
                .bind(&code.code_hash)
                .bind(&code.scope.project)
                .bind(code.scope.tenant_key())
                .bind(code.created_at)
                .bind(code.expires_at)
                .bind(doc)
                .execute(&self.writer)
                .await
                .map_err(backend)?;
                Ok(())
            }

            async fn oob_code(&self, code_hash: &[u8]) -> StoreResult<Option<OobCode>> {
                let row = sqlx::query(&dialect_sql(&format!(
                    "SELECT {OOB_COLUMNS} FROM oob_codes WHERE code_hash = ?"
                )))
                .bind(code_hash)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
                row.as_ref().map(rows::oob_code).transpose()
            }

            async fn oob_codes(&self, scope: &Scope) -> StoreResult<Vec<OobCode>> {
                let found = sqlx::query(&dialect_sql(&format!(
                    "SELECT {OOB_COLUMNS} FROM oob_codes WHERE project = ? AND tenant = ? \
                     ORDER BY created_at, code_hash"
                )))
                .bind(&scope.project)
                .bind(scope.tenant_key())
                .fetch_all(&self.reader)
                .await
                .map_err(backend)?;
                found.iter().map(rows::oob_code).collect()
            }

            async fn redeem_oob_code(
                &self,
                code_hash: &[u8],
                scope: &Scope,
                account: AccountWrite<'_>,
                session: Option<&Session>,
                events: &[Event],
            ) -> StoreResult<bool> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                let used = sqlx::query(&dialect_sql("DELETE FROM oob_codes WHERE code_hash = ?"))
                    .bind(code_hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                if used.rows_affected() == 0 {
                    return Ok(false);
                }
                let acc = match account {
                    AccountWrite::None => {
                        insert_events(&mut tx, events).await?;
                        tx.commit().await.map_err(backend)?;
                        return Ok(true);
                    }
                    AccountWrite::Create(acc) => {
                        insert_account_row(&mut tx, scope, acc).await?;
                        acc
                    }
                    AccountWrite::Update(acc) => {
                        update_account_row(&mut tx, scope, acc).await?;
                        if let Some(s) = session {
                            sqlx::query(&dialect_sql(
                                "UPDATE accounts SET last_login_at = ? \
                                 WHERE project = ? AND tenant = ? AND local_id = ?",
                            ))
                            .bind(s.created_at)
                            .bind(&scope.project)
                            .bind(scope.tenant_key())
                            .bind(&acc.local_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                        }
                        acc
                    }
                };
                finish_account_write(tx, scope, acc, session, events).await?;
                Ok(true)
            }

            async fn prune_oob_codes(&self, before_ms: i64) -> StoreResult<u64> {
                let done = sqlx::query(&dialect_sql("DELETE FROM oob_codes WHERE expires_at < ?"))
                    .bind(before_ms)
                    .execute(&self.writer)
                    .await
                    .map_err(backend)?;
                Ok(done.rows_affected())
            }

            async fn put_project_config(
                &self,
                project: &str,
                expected: Option<&Value>,
                config: &Value,
            ) -> StoreResult<()> {
                let done = match expected {
                    None => sqlx::query(&dialect_sql(
                        "INSERT INTO project_configs (project, config) VALUES (?, ?) \
                         ON CONFLICT (project) DO UPDATE SET config = excluded.config",
                    ))
                    .bind(project)
                    .bind(config.to_string())
                    .execute(&self.writer)
                    .await,
                    // Documents are stored as written (`to_string` of the value), so the
                    // text read back and written again compares equal. An empty document
                    // may also be no row at all.
                    Some(before) if before.as_object().is_some_and(|m| m.is_empty()) => {
                        sqlx::query(&dialect_sql(
                            "INSERT INTO project_configs (project, config) VALUES (?, ?) \
                             ON CONFLICT (project) DO UPDATE SET config = excluded.config \
                             WHERE project_configs.config = ?",
                        ))
                        .bind(project)
                        .bind(config.to_string())
                        .bind(before.to_string())
                        .execute(&self.writer)
                        .await
                    }
                    Some(before) => sqlx::query(&dialect_sql(
                        "UPDATE project_configs SET config = ? WHERE project = ? AND config = ?",
                    ))
                    .bind(config.to_string())
                    .bind(project)
                    .bind(before.to_string())
                    .execute(&self.writer)
                    .await,
                }
                .map_err(backend)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Stale);
                }
                notify(&self.writer, &format!("settings:{project}")).await
            }

            async fn rtdb_nodes(&self, ns: &str) -> StoreResult<Vec<(String, String)>> {
                sqlx::query_as(&dialect_sql(
                    "SELECT path, value FROM rtdb_nodes WHERE ns = ? ORDER BY path",
                ))
                .bind(ns)
                .fetch_all(&self.reader)
                .await
                .map_err(backend)
            }

            async fn rtdb_version(&self, ns: &str) -> StoreResult<i64> {
                let row: Option<(i64,)> =
                    sqlx::query_as(&dialect_sql("SELECT version FROM rtdb_versions WHERE ns = ?"))
                        .bind(ns)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(backend)?;
                Ok(row.map_or(0, |(v,)| v))
            }

            async fn rtdb_write(
                &self,
                ns: &str,
                version: i64,
                writes: &[RtdbWrite],
            ) -> StoreResult<i64> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                // First, so a racing writer waits here (PostgreSQL) and then finds the
                // version moved on.
                let moved = if version == 0 {
                    sqlx::query(&dialect_sql(
                        "INSERT INTO rtdb_versions (ns, version) VALUES (?, 1) \
                         ON CONFLICT (ns) DO NOTHING",
                    ))
                    .bind(ns)
                    .execute(&mut *tx)
                    .await
                } else {
                    sqlx::query(&dialect_sql(
                        "UPDATE rtdb_versions SET version = version + 1 \
                         WHERE ns = ? AND version = ?",
                    ))
                    .bind(ns)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                }
                .map_err(backend)?
                .rows_affected();
                if moved != 1 {
                    return Err(StoreError::Stale);
                }
                for w in writes {
                    // A leaf at an ancestor gives way to the new subtree.
                    let mut ancestor = String::new();
                    let mut ancestors = vec![String::new()];
                    for key in w.path.split('/').filter(|k| !k.is_empty()) {
                        if !ancestor.is_empty() {
                            ancestor.push('/');
                        }
                        ancestor.push_str(key);
                        ancestors.push(ancestor.clone());
                    }
                    ancestors.pop();
                    // Only a subtree that now has rows can stand where a leaf was.
                    if w.rows.is_empty() {
                        ancestors.clear();
                    }
                    for a in &ancestors {
                        sqlx::query(&dialect_sql("DELETE FROM rtdb_nodes WHERE ns = ? AND path = ?"))
                            .bind(ns)
                            .bind(a)
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                    }
                    if w.path.is_empty() {
                        sqlx::query(&dialect_sql("DELETE FROM rtdb_nodes WHERE ns = ?"))
                            .bind(ns)
                            .execute(&mut *tx)
                            .await
                            .map_err(backend)?;
                    } else {
                        // The subtree: the path itself and every path under "<path>/"
                        // ('0' is the byte after '/').
                        sqlx::query(&dialect_sql(
                            "DELETE FROM rtdb_nodes WHERE ns = ? AND \
                             (path = ? OR (path >= ? AND path < ?))",
                        ))
                        .bind(ns)
                        .bind(&w.path)
                        .bind(format!("{}/", w.path))
                        .bind(format!("{}0", w.path))
                        .execute(&mut *tx)
                        .await
                        .map_err(backend)?;
                    }
                    for chunk in w.rows.chunks(MAX_BATCH) {
                        let values = vec!["(?, ?, ?)"; chunk.len()].join(", ");
                        let sql = format!("INSERT INTO rtdb_nodes (ns, path, value) VALUES {values}");
                        let sql = dialect_sql(&sql);
                        let mut q = sqlx::query(&sql);
                        for (path, value) in chunk {
                            q = q.bind(ns).bind(path).bind(value);
                        }
                        q.execute(&mut *tx).await.map_err(backend)?;
                    }
                }
                notify(&mut *tx, &format!("rtdb:{ns}")).await?;
                tx.commit().await.map_err(backend)?;
                Ok(version + 1)
            }

            async fn rtdb_rules(&self, ns: &str) -> StoreResult<Option<String>> {
                let row: Option<(String,)> =
                    sqlx::query_as(&dialect_sql("SELECT source FROM rtdb_rules WHERE ns = ?"))
                        .bind(ns)
                        .fetch_optional(&self.reader)
                        .await
                        .map_err(backend)?;
                Ok(row.map(|(s,)| s))
            }

            async fn put_rtdb_rules(&self, ns: &str, source: &str) -> StoreResult<()> {
                let mut tx = self.writer.begin().await.map_err(backend)?;
                sqlx::query(&dialect_sql(
                    "INSERT INTO rtdb_rules (ns, source) VALUES (?, ?) \
                     ON CONFLICT (ns) DO UPDATE SET source = excluded.source",
                ))
                .bind(ns)
                .bind(source)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                // A write computed under the old rules must not land after them.
                sqlx::query(&dialect_sql(
                    "INSERT INTO rtdb_versions (ns, version) VALUES (?, 1) \
                     ON CONFLICT (ns) DO UPDATE SET version = rtdb_versions.version + 1",
                ))
                .bind(ns)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
                notify(&mut *tx, &format!("rtdb:{ns}")).await?;
                tx.commit().await.map_err(backend)
            }
        }

    };
}

pub(crate) use impl_store;
