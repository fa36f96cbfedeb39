//! The store's test suite, run on both backends: SQLite always, PostgreSQL when
//! `FK_TEST_DATABASE_URL` names a database (each test in a schema of its own);
//! without it the PostgreSQL runs say so and pass.

use std::sync::atomic::{AtomicU32, Ordering};

use firekeeper_core::model::{
    Account, Event, OobAction, OobCode, ProviderUserInfo, Scope, Session,
};
use firekeeper_core::store::{AccountWrite, Store, StoreError, StoredKey, UniqueField};
use serde_json::json;

use crate::{PgStore, SqliteStore};

async fn sqlite() -> SqliteStore {
    SqliteStore::in_memory().await.unwrap()
}

/// A store in a fresh schema of the test database, or `None` (with a note) without one.
async fn postgres() -> Option<(PgStore, String)> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("FK_TEST_DATABASE_URL") else {
        eprintln!("FK_TEST_DATABASE_URL is not set: skipping the PostgreSQL run");
        return None;
    };
    let schema = format!(
        "fk_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-c%20search_path%3D{schema}");
    Some((PgStore::connect(&scoped).await.unwrap(), schema))
}

/// A passing test leaves nothing behind (a failing one keeps its schema to look at).
async fn drop_schema(s: PgStore, schema: &str) {
    s.close().await;
    let Ok(url) = std::env::var("FK_TEST_DATABASE_URL") else {
        return;
    };
    let admin = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

/// Each named test runs once per backend.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&super::sqlite().await).await
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some((s, schema)) = super::postgres().await {
                        super::$name(&s).await;
                        super::drop_schema(s, &schema).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    uniqueness_is_enforced_by_the_database,
    federated_ids_are_unique_and_searchable,
    listing_pages_by_local_id,
    update_of_a_missing_account_is_not_found,
    updates_are_compare_and_set,
    sessions_refresh_and_rotate,
    events_are_ordered_and_filtered,
    keys_and_settings_round_trip,
    concurrent_sign_ins_refreshes_and_revocations_commit,
    racing_instances_queue_one_signing_key,
    rtdb_writes_replace_subtrees,
    codes_are_redeemed_once_with_their_change,
);

fn acc(id: &str, email: Option<&str>) -> Account {
    Account {
        local_id: id.into(),
        email: email.map(Into::into),
        created_at: 1,
        ..Default::default()
    }
}

async fn uniqueness_is_enforced_by_the_database(s: &dyn Store) {
    let p = Scope::project("p");
    s.create_account(&p, &acc("a", Some("x@y.z")), None, &[])
        .await
        .unwrap();
    assert_eq!(
        s.create_account(&p, &acc("b", Some("x@y.z")), None, &[])
            .await,
        Err(StoreError::Conflict(UniqueField::Email))
    );
    assert_eq!(
        s.create_account(&p, &acc("a", None), None, &[]).await,
        Err(StoreError::Conflict(UniqueField::LocalId))
    );
    // Another project, or a tenant, is a separate namespace.
    s.create_account(&Scope::project("q"), &acc("a", Some("x@y.z")), None, &[])
        .await
        .unwrap();
    let t = Scope {
        project: "p".into(),
        tenant: Some("t".into()),
    };
    s.create_account(&t, &acc("a", Some("x@y.z")), None, &[])
        .await
        .unwrap();
    assert_eq!(s.count_accounts(&p).await.unwrap(), 1);
}

async fn federated_ids_are_unique_and_searchable(s: &dyn Store) {
    let p = Scope::project("p");
    let mut a = acc("a", None);
    a.providers.push(ProviderUserInfo {
        provider_id: "google.com".into(),
        raw_id: "123".into(),
        ..Default::default()
    });
    s.create_account(&p, &a, None, &[]).await.unwrap();
    let mut b = acc("b", None);
    b.providers = a.providers.clone();
    assert_eq!(
        s.create_account(&p, &b, None, &[]).await,
        Err(StoreError::Conflict(UniqueField::Federated))
    );
    // The failed insert left nothing behind.
    assert!(s.get_account(&p, "b").await.unwrap().is_none());
    let hit = s
        .account_by_federated(&p, "google.com", "123")
        .await
        .unwrap();
    assert_eq!(hit.unwrap().local_id, "a");
    assert!(s.delete_account(&p, "a", &[]).await.unwrap());
    assert!(s
        .account_by_federated(&p, "google.com", "123")
        .await
        .unwrap()
        .is_none());
}

async fn listing_pages_by_local_id(s: &dyn Store) {
    let p = Scope::project("p");
    for id in ["c", "a", "b"] {
        s.create_account(&p, &acc(id, None), None, &[])
            .await
            .unwrap();
    }
    let first = s.list_accounts(&p, None, 2).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|a| a.local_id.as_str())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let rest = s.list_accounts(&p, Some("b"), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].local_id, "c");
}

async fn update_of_a_missing_account_is_not_found(s: &dyn Store) {
    assert_eq!(
        s.update_account(&Scope::project("p"), &acc("nope", None), None, &[])
            .await,
        Err(StoreError::NotFound)
    );
}

async fn updates_are_compare_and_set(s: &dyn Store) {
    let p = Scope::project("p");
    s.create_account(&p, &acc("a", Some("a@x.io")), None, &[])
        .await
        .unwrap();
    let first = s.get_account(&p, "a").await.unwrap().unwrap();
    let second = first.clone();
    let mut changed = first.clone();
    changed.disabled = true;
    s.update_account(&p, &changed, None, &[]).await.unwrap();
    // A writer holding the old version loses instead of undoing the change.
    assert_eq!(
        s.update_account(&p, &second, None, &[]).await,
        Err(StoreError::Stale)
    );
    let now = s.get_account(&p, "a").await.unwrap().unwrap();
    assert!(now.disabled);
    assert_eq!(now.version, first.version + 1);
}

fn session(id: &str, hash: &[u8]) -> Session {
    Session {
        id: id.into(),
        scope: Scope::project("p"),
        local_id: "a".into(),
        refresh_hash: hash.to_vec(),
        provider: "password".into(),
        extra_claims: json!({"role": "x"}).as_object().unwrap().clone(),
        auth_time: 100,
        created_at: 100_000,
        last_used_at: 100_000,
        ip: Some("127.0.0.1".into()),
        user_agent: None,
        revoked: None,
        rotated_at: None,
        successor: None,
    }
}

fn event(kind: &str, at: i64) -> Event {
    Event {
        id: 0,
        scope: Scope::project("p"),
        local_id: "a".into(),
        session_id: None,
        kind: kind.into(),
        at,
        ip: None,
        user_agent: None,
        detail: json!({"n": at}).as_object().unwrap().clone(),
    }
}

async fn sessions_refresh_and_rotate(s: &dyn Store) {
    let p = Scope::project("p");
    s.create_account(
        &p,
        &acc("a", Some("a@x.io")),
        Some(&session("s1", b"h1")),
        &[],
    )
    .await
    .unwrap();
    let ctx = s.refresh_context(b"h1").await.unwrap().unwrap();
    assert_eq!(ctx.session.id, "s1");
    assert_eq!(ctx.session.extra_claims["role"], "x");
    assert_eq!(ctx.account.unwrap().local_id, "a");
    assert_eq!(ctx.superseded_at, None);
    s.record_refresh(&ctx.session, 200_000, Some(&event("refresh", 200_000)))
        .await
        .unwrap();
    assert_eq!(
        s.session("s1").await.unwrap().unwrap().last_used_at,
        200_000
    );
    let ev = event("refresh_token_rotated", 300_000);
    assert!(s
        .rotate_refresh_token(&ctx.session, b"h1", b"h2", b"sealed", 300_000, &ev)
        .await
        .unwrap());
    // The old token lost the race the second time.
    assert!(!s
        .rotate_refresh_token(&ctx.session, b"h1", b"h3", b"sealed", 300_001, &ev)
        .await
        .unwrap());
    let old = s.refresh_context(b"h1").await.unwrap().unwrap();
    assert_eq!(old.superseded_at, Some(300_000));
    assert_eq!(old.session.successor.as_deref(), Some(&b"sealed"[..]));
    assert_eq!(
        s.end_sessions(&["s1".into()], "revoked", &[])
            .await
            .unwrap(),
        1
    );
    let ended = s.session("s1").await.unwrap().unwrap();
    assert_eq!(ended.revoked.as_deref(), Some("revoked"));
    let (acc_now, state) = s
        .account_with_session(&p, "a", "s1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acc_now.local_id, "a");
    assert!(!state.live);
    assert_eq!(s.sessions_of(&p, "a").await.unwrap().len(), 1);
}

async fn events_are_ordered_and_filtered(s: &dyn Store) {
    s.append_events(&[event("sign_in", 1), event("tokens_revoked", 2)])
        .await
        .unwrap();
    s.append_events(&[event("disabled", 3)]).await.unwrap();
    let all = s
        .account_events(&Scope::project("p"), "a", 0, 10)
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all[2].detail["n"], 3);
    let feed = s
        .project_events("p", &["tokens_revoked", "disabled"], 0, 0, 10)
        .await
        .unwrap();
    assert_eq!(
        feed.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["tokens_revoked", "disabled"]
    );
    let after = s
        .project_events("p", &["tokens_revoked", "disabled"], feed[0].id, 0, 10)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(s.head_event_id("p").await.unwrap(), all[2].id);
    assert_eq!(s.prune_events(2).await.unwrap(), 1);
}

async fn keys_and_settings_round_trip(s: &dyn Store) {
    let key = StoredKey {
        kid: "k1".into(),
        purpose: "id_token".into(),
        private_key: vec![1, 2, 3],
        public_key: vec![4, 5],
        cert_pem: "PEM".into(),
        created_at: 1,
        activates_at: 2,
        retired_at: None,
    };
    let empty = s.signing_keys_version("id_token").await.unwrap();
    assert!(s.insert_signing_key(&key, None).await.unwrap());
    let one = s.signing_keys_version("id_token").await.unwrap();
    assert_ne!(one, empty);
    s.update_signing_key_times("k1", 2, Some(9)).await.unwrap();
    assert_ne!(s.signing_keys_version("id_token").await.unwrap(), one);
    let keys = s.signing_keys("id_token").await.unwrap();
    assert_eq!(keys[0].retired_at, Some(9));
    assert_eq!(keys[0].private_key, vec![1, 2, 3]);
    assert!(s.signing_keys("session_cookie").await.unwrap().is_empty());
    s.put_project_config("p", None, &json!({"a": 1}))
        .await
        .unwrap();
    s.put_project_config("p", None, &json!({"a": 2}))
        .await
        .unwrap();
    // Compare-and-set: only over the document the writer read.
    assert_eq!(
        s.put_project_config("p", Some(&json!({"a": 1})), &json!({"a": 3}))
            .await
            .unwrap_err(),
        StoreError::Stale
    );
    s.put_project_config(
        "p",
        Some(&json!({"a": 2})),
        &json!({"a": 3, "b": [1.5, "x"]}),
    )
    .await
    .unwrap();
    s.put_project_config(
        "p",
        Some(&json!({"a": 3, "b": [1.5, "x"]})),
        &json!({"a": 4}),
    )
    .await
    .unwrap();
    s.put_project_config("fresh", Some(&json!({})), &json!({"c": 1}))
        .await
        .unwrap();
    assert_eq!(
        s.put_project_config("fresh", Some(&json!({})), &json!({"c": 2}))
            .await
            .unwrap_err(),
        StoreError::Stale
    );
    // A document that is gone is not there to change.
    assert_eq!(
        s.put_project_config("gone", Some(&json!({"c": 1})), &json!({"c": 2}))
            .await
            .unwrap_err(),
        StoreError::Stale
    );
    // Numbers read back as written.
    let floats = json!({"x": 0.1, "y": 1e-7, "z": 123456.789012345, "w": 2.0f64.sqrt()});
    s.put_project_config("f", None, &floats).await.unwrap();
    let read = s.project_config("f").await.unwrap().unwrap();
    s.put_project_config("f", Some(&read), &json!({}))
        .await
        .unwrap();
    assert_eq!(s.project_config("p").await.unwrap(), Some(json!({"a": 4})));
    assert_eq!(s.project_config("q").await.unwrap(), None);
}

/// A write replaces the subtree at its path (a prefix like "a/bc" is another subtree) and
/// any leaf at an ancestor; a batch is applied in order; namespaces are apart.
async fn rtdb_writes_replace_subtrees(s: &dyn Store) {
    use firekeeper_core::store::RtdbWrite;
    let w = |path: &str, rows: &[(&str, &str)]| RtdbWrite {
        path: path.into(),
        rows: rows
            .iter()
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .collect(),
    };
    let rows = |v: Vec<(String, String)>| -> Vec<String> {
        v.into_iter().map(|(p, v)| format!("{p}={v}")).collect()
    };
    assert_eq!(s.rtdb_version("db").await.unwrap(), 0);
    let first = [
        ("a/b/x", "1"),
        ("a/b/y", "2"),
        ("a/bc", "3"),
        ("z", "\"s\""),
    ];
    let v = s.rtdb_write("db", 0, &[w("", &first)]).await.unwrap();
    assert_eq!(v, 1);
    // A write computed from an older version is refused and changes nothing.
    assert_eq!(
        s.rtdb_write("db", 0, &[w("", &[])]).await,
        Err(StoreError::Stale)
    );
    s.rtdb_write("other", 0, &[w("a", &[("a", "9")])])
        .await
        .unwrap();
    let both = [
        w("a/b", &[("a/b/n", "4")]),
        w("z/deeper", &[("z/deeper", "5")]),
    ];
    let v = s.rtdb_write("db", v, &both).await.unwrap();
    assert_eq!(
        rows(s.rtdb_nodes("db").await.unwrap()),
        ["a/b/n=4", "a/bc=3", "z/deeper=5"]
    );
    // A primitive root replaces everything; deleting the root empties the namespace.
    let v = s.rtdb_write("db", v, &[w("", &[("", "7")])]).await.unwrap();
    assert_eq!(rows(s.rtdb_nodes("db").await.unwrap()), ["=7"]);
    let v = s
        .rtdb_write("db", v, &[w("q", &[("q", "1")])])
        .await
        .unwrap();
    assert_eq!(rows(s.rtdb_nodes("db").await.unwrap()), ["q=1"]);
    let v = s.rtdb_write("db", v, &[w("", &[])]).await.unwrap();
    assert!(s.rtdb_nodes("db").await.unwrap().is_empty());
    assert_eq!(rows(s.rtdb_nodes("other").await.unwrap()), ["a=9"]);
    assert_eq!(s.rtdb_rules("db").await.unwrap(), None);
    s.put_rtdb_rules("db", "{\"rules\": {}}").await.unwrap();
    s.put_rtdb_rules("db", "{\"rules\": {\".read\": true}}")
        .await
        .unwrap();
    assert_eq!(
        s.rtdb_rules("db").await.unwrap().as_deref(),
        Some("{\"rules\": {\".read\": true}}")
    );
    // A rules change moves the version on: writes computed before it are refused.
    assert_eq!(s.rtdb_version("db").await.unwrap(), v + 2);
    assert_eq!(
        s.rtdb_write("db", v, &[w("", &[])]).await,
        Err(StoreError::Stale)
    );
}

/// Instances whose keys fall due together each try to queue the next key: one is added,
/// the others see it. An empty set takes only a first key.
async fn racing_instances_queue_one_signing_key(s: &dyn Store) {
    let key = |kid: &str, activates_at: i64| StoredKey {
        kid: kid.into(),
        purpose: "id_token".into(),
        private_key: vec![1],
        public_key: vec![2],
        cert_pem: "PEM".into(),
        created_at: 1,
        activates_at,
        retired_at: None,
    };
    assert!(s.insert_signing_key(&key("first", 10), None).await.unwrap());
    assert!(!s
        .insert_signing_key(&key("second", 10), None)
        .await
        .unwrap());
    // Several rounds: the first opens the connections the later ones race on.
    let mut newest = 10;
    for round in 1..=5 {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let k = key(&format!("next{round}.{i}"), newest + 1000 + i);
                async move { s.insert_signing_key(&k, Some(newest)).await }
            })
            .collect();
        let added = futures_util::future::join_all(racers)
            .await
            .into_iter()
            .filter(|r| *r.as_ref().unwrap())
            .count();
        assert_eq!(added, 1, "round {round}");
        let keys = s.signing_keys("id_token").await.unwrap();
        assert_eq!(keys.len(), round + 1);
        newest = keys.iter().map(|k| k.activates_at).max().unwrap();
    }
    // Another purpose is its own set.
    let mut cookie = key("cookie", 10);
    cookie.purpose = "session_cookie".into();
    assert!(s.insert_signing_key(&cookie, None).await.unwrap());
}

/// Sign-ins, refreshes, rotations and revocations of one user at once: on PostgreSQL they
/// take row locks and the events lock, and must never deadlock.
async fn concurrent_sign_ins_refreshes_and_revocations_commit(s: &dyn Store) {
    let p = Scope::project("p");
    s.create_account(
        &p,
        &acc("a", Some("a@x.io")),
        Some(&session("s0", b"h0")),
        &[],
    )
    .await
    .unwrap();
    let base = s.session("s0").await.unwrap().unwrap();
    let mut work = Vec::new();
    for i in 0..12 {
        let id = format!("s{}", i + 1);
        let hash = format!("h{}", i + 1);
        let base = base.clone();
        work.push(async move {
            let new = session(&id, hash.as_bytes());
            s.start_session(&new, Some(i), &[event("sign_in", i)])
                .await?;
            s.record_refresh(&base, 1000 + i, Some(&event("refresh", i)))
                .await?;
            s.rotate_refresh_token(
                &new,
                hash.as_bytes(),
                format!("r{i}").as_bytes(),
                b"sealed",
                2000 + i,
                &event("refresh_token_rotated", i),
            )
            .await?;
            let mut ids = vec![id, "s0".to_owned()];
            ids.reverse();
            s.end_sessions(&ids, "revoked", &[event("session_ended", i)])
                .await
                .map(|_| ())
        });
    }
    for r in futures_util::future::join_all(work).await {
        r.unwrap();
    }
    let all = s.sessions_of(&p, "a").await.unwrap();
    assert_eq!(all.len(), 13);
    assert!(all.iter().all(|x| x.revoked.is_some()));
    let events = s.account_events(&p, "a", 0, 1000).await.unwrap();
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
}

fn code(hash: &[u8], scope: &Scope, uid: Option<&str>, at: i64) -> OobCode {
    OobCode {
        code_hash: hash.to_vec(),
        scope: scope.clone(),
        created_at: at,
        expires_at: at + 3_600_000,
        action: OobAction {
            request_type: "VERIFY_EMAIL".into(),
            local_id: uid.map(Into::into),
            email: "a@x.io".into(),
            ..Default::default()
        },
    }
}

async fn codes_are_redeemed_once_with_their_change(s: &dyn Store) {
    let p = Scope::project("p");
    let t = Scope {
        project: "p".into(),
        tenant: Some("t".into()),
    };
    s.create_account(&p, &acc("a", Some("a@x.io")), None, &[])
        .await
        .unwrap();
    s.insert_oob_code(&code(b"h1", &p, Some("a"), 10))
        .await
        .unwrap();
    s.insert_oob_code(&code(b"h2", &p, Some("a"), 20))
        .await
        .unwrap();
    s.insert_oob_code(&code(b"h3", &t, None, 30)).await.unwrap();
    assert_eq!(
        s.oob_code(b"h1").await.unwrap(),
        Some(code(b"h1", &p, Some("a"), 10))
    );
    let listed: Vec<Vec<u8>> = s
        .oob_codes(&p)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code_hash)
        .collect();
    assert_eq!(listed, vec![b"h1".to_vec(), b"h2".to_vec()]);
    assert_eq!(s.oob_codes(&t).await.unwrap().len(), 1);

    // A change that loses to a concurrent write keeps the code.
    let stale = s.get_account(&p, "a").await.unwrap().unwrap();
    let mut fresh = stale.clone();
    fresh.display_name = Some("meanwhile".into());
    s.update_account(&p, &fresh, None, &[]).await.unwrap();
    let mut verified = stale.clone();
    verified.email_verified = true;
    assert_eq!(
        s.redeem_oob_code(b"h1", &p, AccountWrite::Update(&verified), None, &[])
            .await,
        Err(StoreError::Stale)
    );
    assert!(s.oob_code(b"h1").await.unwrap().is_some());
    // Redeemed with the change, once.
    let mut verified = s.get_account(&p, "a").await.unwrap().unwrap();
    verified.email_verified = true;
    let events = [event("email_verified", 40)];
    assert!(s
        .redeem_oob_code(b"h1", &p, AccountWrite::Update(&verified), None, &events)
        .await
        .unwrap());
    assert!(
        s.get_account(&p, "a")
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    assert_eq!(s.oob_code(b"h1").await.unwrap(), None);
    assert!(!s
        .redeem_oob_code(b"h1", &p, AccountWrite::Update(&verified), None, &[])
        .await
        .unwrap());
    // A sign-in link creates its account and session in the same transaction; a taken
    // email rolls the redemption back.
    let mut twin = acc("b", Some("a@x.io"));
    twin.created_at = 2;
    assert_eq!(
        s.redeem_oob_code(
            b"h3",
            &t,
            AccountWrite::Create(&acc("b", Some("a@x.io"))),
            None,
            &[]
        )
        .await
        .map(|_| ()),
        Ok(())
    );
    assert_eq!(
        s.redeem_oob_code(b"h2", &p, AccountWrite::Create(&twin), None, &[])
            .await,
        Err(StoreError::Conflict(UniqueField::Email))
    );
    assert!(s.oob_code(b"h2").await.unwrap().is_some());
    let mut sess = session("s-b", b"rb");
    sess.local_id = "c".into();
    assert!(s
        .redeem_oob_code(
            b"h2",
            &p,
            AccountWrite::Create(&acc("c", Some("c@x.io"))),
            Some(&sess),
            &[]
        )
        .await
        .unwrap());
    assert!(s.get_account(&p, "c").await.unwrap().is_some());
    assert_eq!(s.session("s-b").await.unwrap().unwrap().local_id, "c");
    assert!(s.get_account(&t, "b").await.unwrap().is_some());
    // Expired codes are pruned.
    s.insert_oob_code(&code(b"h4", &p, None, 50)).await.unwrap();
    assert_eq!(s.prune_oob_codes(50 + 3_600_001).await.unwrap(), 1);
    assert!(s.oob_codes(&p).await.unwrap().is_empty());
}
