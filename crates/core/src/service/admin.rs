//! Admin listing and bulk operations (§3.4) and the emulator's maintenance routes (§7).

use serde_json::{json, Value};

use super::{object, Auth, BatchDeleteRequest, BatchGetRequest, Ctx, QueryRequest};
use crate::error::{Error, Result};
use crate::model::{Account, Scope};
use crate::validate::canonical_email;
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
            -1 => u32::MAX,
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
            self.store().delete_account(&scope, id).await?;
        }
        let mut body = json!({});
        if !errors.is_empty() {
            body["errors"] = errors.into();
        }
        Ok(body)
    }

    pub async fn query(&self, ctx: &Ctx, req: QueryRequest) -> Result<Value> {
        if let Some(sort) = req.sort_by.as_deref() {
            if sort != "USER_ID" && sort != "SORT_BY_FIELD_UNSPECIFIED" {
                return Err(Error::NotImplemented(
                    "Only sorting by USER_ID is implemented.".into(),
                ));
            }
        }
        let limit = req
            .limit
            .unwrap_or(MAX_QUERY_LIMIT)
            .clamp(0, MAX_QUERY_LIMIT) as usize;
        let offset = req.offset.unwrap_or(0).max(0) as usize;
        let scope = ctx.scope();
        let mut users = if req.expression.is_empty() {
            self.all_accounts(&scope).await?
        } else {
            let mut hits: Vec<Account> = Vec::new();
            for e in &req.expression {
                let store = self.store();
                if let Some(id) = &e.user_id {
                    hits.extend(store.get_account(&scope, id).await?);
                } else if let Some(email) = &e.email {
                    hits.extend(
                        store
                            .account_by_email(&scope, &canonical_email(email))
                            .await?,
                    );
                } else if let Some(phone) = &e.phone_number {
                    hits.extend(store.account_by_phone(&scope, phone).await?);
                }
            }
            hits.sort_by(|a, b| a.local_id.cmp(&b.local_id));
            hits.dedup_by(|a, b| a.local_id == b.local_id);
            hits
        };
        if req.order.as_deref() == Some("DESC") {
            users.reverse();
        }
        let total = users.len();
        let page: Vec<Value> = users
            .iter()
            .skip(offset)
            .take(limit)
            .map(|a| user_info(a, self.hash_view(true)))
            .collect();
        if req.return_user_info == Some(false) {
            return Ok(json!({"recordsCount": total.to_string()}));
        }
        Ok(object(
            json!({"recordsCount": total.to_string(), "userInfo": page}),
        ))
    }

    async fn all_accounts(&self, scope: &Scope) -> Result<Vec<Account>> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .store()
                .list_accounts(scope, after.as_deref(), 1000)
                .await?;
            let done = page.len() < 1000;
            after = page.last().map(|a| a.local_id.clone());
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// The emulator's project settings view (§7).
    pub async fn emulator_config(&self, project: &str) -> Result<Value> {
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
        let mut stored = self
            .store()
            .project_config(project)
            .await?
            .unwrap_or(json!({}));
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
        self.store().put_project_config(project, &stored).await?;
        self.emulator_config(project).await
    }
}
