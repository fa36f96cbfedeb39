//! Admin listing and bulk operations (§3.4) and the emulator's maintenance routes (§7).

use serde_json::{json, Map, Value};

use super::account::Identifier;
use super::{object, Auth, BatchDeleteRequest, BatchGetRequest, Ctx, Mode, QueryRequest};
use crate::error::{Error, Result};
use crate::model::{event_kind, Account};
use crate::wire::user_info;

const MAX_PAGE: i64 = 1000;
const MAX_BATCH_DELETE: usize = 1000;
const MAX_QUERY_LIMIT: i64 = 500;

impl Auth {
    pub async fn batch_get(&self, ctx: &Ctx, req: BatchGetRequest) -> Result<Value> {
        let scope = ctx.scope();
        let max = req.max_results.unwrap_or(20);
        let limit = match max {
            // The emulator's "everything" page size.
            -1 if self.config().mode == Mode::Emulator => u32::MAX,
            n if (1..=MAX_PAGE).contains(&n) => n as u32,
            0 => 20,
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "Invalid JSON payload received. /maxResults must be between 1 and {MAX_PAGE}"
                )))
            }
        };
        let after = req.next_page_token.as_deref().filter(|t| !t.is_empty());
        let users = self.store().list_accounts(&scope, after, limit).await?;
        let view = self.hash_view(true);
        let mut body = json!({"kind": "identitytoolkit#DownloadAccountResponse"});
        if !users.is_empty() {
            body["users"] = users.iter().map(|a| user_info(a, view)).collect();
        }
        // A full page always carries a token; the next page may be empty.
        if users.len() as u64 == u64::from(limit) {
            if let Some(last) = users.last() {
                body["nextPageToken"] = last.local_id.clone().into();
            }
        }
        Ok(body)
    }

    pub async fn batch_delete(&self, ctx: &Ctx, req: BatchDeleteRequest) -> Result<Value> {
        if req.local_ids.is_empty() {
            return Err(Error::code("MISSING_LOCAL_ID"));
        }
        if req.local_ids.len() > MAX_BATCH_DELETE {
            return Err(Error::code("LOCAL_ID_LIST_EXCEEDS_LIMIT"));
        }
        let scope = ctx.scope();
        let mut errors = Vec::new();
        for (index, id) in req.local_ids.iter().enumerate() {
            let Some(acc) = self.store().get_account(&scope, id).await? else {
                continue; // unknown ids count as deleted
            };
            if !acc.disabled && !req.force {
                errors.push(json!({
                    "index": index,
                    "localId": id,
                    "message": "NOT_DISABLED : Disable the account before batch deletion.",
                }));
                continue;
            }
            let event = self.event(ctx, id, None, event_kind::DELETED, Map::new());
            self.store().delete_account(&scope, id, &[event]).await?;
            self.feed.notify_waiters();
        }
        let mut body = json!({});
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        Ok(body)
    }

    /// How many accounts the caller's scope holds.
    pub async fn store_count(&self, ctx: &Ctx) -> Result<u64> {
        Ok(self.store().count_accounts(&ctx.scope()).await?)
    }

    pub async fn query(&self, ctx: &Ctx, req: QueryRequest) -> Result<Value> {
        if let Some(sort) = req.sort_by.as_deref() {
            if sort != "USER_ID" && sort != "SORT_BY_FIELD_UNSPECIFIED" {
                return Err(Error::NotImplemented(
                    "Only sorting by USER_ID is implemented.".into(),
                ));
            }
        }
        let limit = match req.limit {
            None | Some(0) => MAX_QUERY_LIMIT,
            Some(n) => n.clamp(1, MAX_QUERY_LIMIT),
        };
        let offset = req.offset.unwrap_or(0).max(0) as u64;
        let descending = req.order.as_deref() == Some("DESC");
        let scope = ctx.scope();
        let (total, users) = if req.expression.is_empty() {
            let total = self.store().count_accounts(&scope).await?;
            let users = if req.return_user_info == Some(false) {
                Vec::new()
            } else {
                self.store()
                    .page_accounts(&scope, offset, limit as u32, descending)
                    .await?
            };
            (total, users)
        } else {
            let mut hits: Vec<Account> = Vec::new();
            for e in &req.expression {
                let id = if let Some(uid) = &e.user_id {
                    Identifier::Uid(uid)
                } else if let Some(email) = &e.email {
                    Identifier::Email(email)
                } else if let Some(phone) = &e.phone_number {
                    Identifier::Phone(phone)
                } else {
                    continue;
                };
                hits.extend(self.account_by(&scope, id).await?);
            }
            hits.sort_by(|a, b| a.local_id.cmp(&b.local_id));
            hits.dedup_by(|a, b| a.local_id == b.local_id);
            if descending {
                hits.reverse();
            }
            let total = hits.len() as u64;
            let page = hits
                .into_iter()
                .skip(offset as usize)
                .take(limit as usize)
                .collect();
            (total, page)
        };
        if req.return_user_info == Some(false) {
            return Ok(json!({"recordsCount": total.to_string()}));
        }
        let view = self.hash_view(true);
        let page: Vec<Value> = users.iter().map(|a| user_info(a, view)).collect();
        Ok(object(
            json!({"recordsCount": total.to_string(), "userInfo": page}),
        ))
    }

    /// The emulator's project settings view (§7).
    pub async fn emulator_config(&self, project: &str) -> Result<Value> {
        if self.config().mode != Mode::Emulator {
            return Err(Error::NotFound);
        }
        let stored = self
            .store()
            .project_config(project)
            .await?
            .unwrap_or(json!({}));
        let dup = stored
            .pointer("/signIn/allowDuplicateEmails")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let privacy = self.improved_email_privacy(project).await?;
        Ok(json!({
            "signIn": {"allowDuplicateEmails": dup},
            "emailPrivacyConfig": {"enableImprovedEmailPrivacy": privacy},
        }))
    }

    /// Updates only the fields present in `patch`.
    pub async fn patch_emulator_config(&self, project: &str, patch: &Value) -> Result<Value> {
        if self.config().mode != Mode::Emulator {
            return Err(Error::NotFound);
        }
        self.write_settings(project, || async {
            let mut stored = (*self.project_settings(project).await?).clone();
            for pointer in [
                "/signIn/allowDuplicateEmails",
                "/emailPrivacyConfig/enableImprovedEmailPrivacy",
            ] {
                if let Some(v) = patch.pointer(pointer) {
                    let b = v.as_bool().ok_or_else(|| {
                        Error::InvalidArgument(format!(
                            "Invalid JSON payload received. {pointer} must be boolean"
                        ))
                    })?;
                    let (section, field) = pointer[1..].split_once('/').unwrap_or(("", ""));
                    if !stored[section].is_object() {
                        stored[section] = json!({});
                    }
                    stored[section][field] = b.into();
                }
            }
            self.put_project_settings(project, &stored).await
        })
        .await?;
        self.emulator_config(project).await
    }
}
