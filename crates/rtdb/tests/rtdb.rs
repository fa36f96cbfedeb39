//! The database service on a real (in-memory SQLite) store, and its REST routes: writes
//! survive a reload, refused writes change nothing, and errors are Firebase's.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use firekeeper_core::secrets::MasterKey;
use firekeeper_core::{Auth, AuthConfig, ManualClock, Mode, Store};
use firekeeper_rtdb::http::{router, Rtdb};
use firekeeper_rtdb::{Caller, Database, DbError, ReadQuery, Written};
use firekeeper_store::SqliteStore;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const RULES: &str = r#"{
  // Users own their node; names are short strings.
  "rules": {
    "users": {
      "$uid": {
        ".read": "auth != null && auth.uid == $uid",
        ".write": "auth != null && auth.uid == $uid",
        "name": { ".validate": "newData.isString() && newData.val().length < 10" }
      }
    },
    "scores": { ".indexOn": ".value", ".read": true }
  }
}"#;

fn p(path: &str) -> Vec<String> {
    firekeeper_rtdb::path::parse(path).unwrap()
}

async fn setup() -> (Arc<dyn Store>, Arc<ManualClock>, Database) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let db = Database::new(store.clone(), clock.clone(), RULES.into());
    (store, clock, db)
}

fn user(uid: &str) -> Caller {
    Caller::User(json!({"uid": uid, "token": {"sub": uid}}))
}

#[tokio::test]
async fn writes_survive_a_reload_with_priorities_and_server_values() {
    let (store, clock, db) = setup().await;
    let value = json!({"b": {".value": 2, ".priority": 1}, ".priority": "p", "a": {"x": true}, "t": {".sv": "timestamp"}});
    db.set("ns", &p("/things"), value, &Caller::Admin, None)
        .await
        .unwrap();
    db.update(
        "ns",
        &p("/"),
        serde_json::from_value(json!({"things/a/y": 3, "other": [1, 2]})).unwrap(),
        &Caller::Admin,
    )
    .await
    .unwrap();
    let id = db
        .push("ns", &p("/log"), json!("first"), &Caller::Admin)
        .await
        .unwrap();
    clock.advance_secs(1);
    let id2 = db
        .push("ns", &p("/log"), json!("second"), &Caller::Admin)
        .await
        .unwrap();
    assert!(id < id2);
    let before = db.get("ns", &p("/"), None, &Caller::Admin).await.unwrap();
    // Another service on the same store (a restart) sees the same tree.
    let again = Database::new(store.clone(), clock.clone(), RULES.into());
    let after = again
        .get("ns", &p("/"), None, &Caller::Admin)
        .await
        .unwrap();
    assert_eq!(before, after);
    assert_eq!(after["things"]["t"], json!(1_000_000));
    assert_eq!(after["things"][".priority"], json!("p"));
    assert_eq!(after["things"]["b"], json!({".value": 2, ".priority": 1}));
    assert_eq!(after["things"]["a"], json!({"x": true, "y": 3}));
    assert_eq!(after["other"], json!({"0": 1, "1": 2}));
    assert_eq!(after["log"][&id], json!("first"));
    // Deleting everything under a path leaves no rows behind.
    db.set("ns", &p("/things"), Value::Null, &Caller::Admin, None)
        .await
        .unwrap();
    let rows = store.rtdb_nodes("ns").await.unwrap();
    assert!(
        rows.iter().all(|(path, _)| !path.starts_with("things")),
        "{rows:?}"
    );
}

#[tokio::test]
async fn rules_guard_reads_and_writes_and_a_refused_write_changes_nothing() {
    let (store, _, db) = setup().await;
    let alice = user("alice");
    db.set(
        "ns",
        &p("/users/alice"),
        json!({"name": "Alice"}),
        &alice,
        None,
    )
    .await
    .unwrap();
    let denied = DbError::permission_denied();
    assert_eq!(
        db.set("ns", &p("/users/bob"), json!({"name": "B"}), &alice, None)
            .await,
        Err(denied.clone())
    );
    assert_eq!(
        db.set(
            "ns",
            &p("/users/alice/name"),
            json!("far too long a name"),
            &alice,
            None
        )
        .await,
        Err(denied.clone())
    );
    assert_eq!(
        db.get("ns", &p("/users"), None, &alice).await,
        Err(denied.clone())
    );
    assert_eq!(
        db.get("ns", &p("/users/alice"), None, &Caller::User(Value::Null))
            .await,
        Err(denied.clone())
    );
    // A multi-path update is all or nothing.
    let both = serde_json::from_value(json!({"alice/name": "Al", "bob/name": "Bob"})).unwrap();
    assert_eq!(
        db.update("ns", &p("/users"), both, &alice).await,
        Err(denied)
    );
    let mine = db
        .get("ns", &p("/users/alice"), None, &alice)
        .await
        .unwrap();
    assert_eq!(mine, json!({"name": "Alice"}));
    let rows = store.rtdb_nodes("ns").await.unwrap();
    assert_eq!(
        rows,
        vec![("users/alice/name".to_owned(), "\"Alice\"".to_owned())]
    );
    // An update whose keys overlap is refused before anything runs.
    let overlap = serde_json::from_value(json!({"a": 1, "a/b": 2})).unwrap();
    assert_eq!(
        db.update("ns", &p("/"), overlap, &Caller::Admin)
            .await
            .unwrap_err()
            .status,
        400
    );
}

/// The store keeps exactly the tree: deletes below a leaf change nothing, an object's
/// priority goes with its last child, and writing below a prioritised leaf replaces it.
#[tokio::test]
async fn stored_rows_follow_the_tree_through_edge_cases() {
    let (store, clock, db) = setup().await;
    let admin = &Caller::Admin;
    db.set("ns", &p("/a"), json!(5), admin, None).await.unwrap();
    db.set("ns", &p("/a/b/c"), Value::Null, admin, None)
        .await
        .unwrap();
    db.set("ns", &p("/o"), json!({".priority": 1, "b": 1}), admin, None)
        .await
        .unwrap();
    db.set("ns", &p("/o/b"), Value::Null, admin, None)
        .await
        .unwrap();
    db.set(
        "ns",
        &p("/l"),
        json!({".value": 5, ".priority": 1}),
        admin,
        None,
    )
    .await
    .unwrap();
    db.set("ns", &p("/l/x"), Value::Null, admin, None)
        .await
        .unwrap();
    db.set(
        "ns",
        &p("/m"),
        json!({".value": 5, ".priority": 1}),
        admin,
        None,
    )
    .await
    .unwrap();
    db.set("ns", &p("/m/x"), json!(2), admin, None)
        .await
        .unwrap();
    let expected = json!({"a": 5, "l": {".value": 5, ".priority": 1}, "m": {"x": 2}});
    assert_eq!(db.get("ns", &p("/"), None, admin).await.unwrap(), expected);
    let reloaded = Database::new(store, clock, RULES.into());
    assert_eq!(
        reloaded.get("ns", &p("/"), None, admin).await.unwrap(),
        expected
    );
}

/// Two services on one store (two instances on one database): a write computed from a
/// namespace another instance has changed since is retried on the fresh tree, so nothing
/// is lost and increments add up.
#[tokio::test]
async fn instances_writing_one_namespace_are_serialised_by_the_store() {
    let (store, clock, one) = setup().await;
    let two = Database::new(store.clone(), clock.clone(), RULES.into());
    let admin = &Caller::Admin;
    let inc = |n: i64| json!({".sv": {"increment": n}});
    // Both hold the namespace in memory.
    one.set("ns", &p("/n"), json!(1), admin, None)
        .await
        .unwrap();
    assert_eq!(
        two.get("ns", &p("/n"), None, admin).await.unwrap(),
        json!(1)
    );
    one.set("ns", &p("/n"), inc(10), admin, None).await.unwrap();
    one.set("ns", &p("/other"), json!("one"), admin, None)
        .await
        .unwrap();
    // `two` still holds n = 1; its write finds the store moved on and starts again.
    two.set("ns", &p("/n"), inc(100), admin, None)
        .await
        .unwrap();
    assert_eq!(
        two.get("ns", &p("/"), None, admin).await.unwrap(),
        json!({"n": 111, "other": "one"})
    );
    let fresh = Database::new(store, clock, RULES.into());
    assert_eq!(
        fresh.get("ns", &p("/n"), None, admin).await.unwrap(),
        json!(111)
    );
}

/// A failed if-match answers with the current value only to a caller who may read it.
#[tokio::test]
async fn if_match_does_not_leak_what_the_rules_hide() {
    let (_, _, db) = setup().await;
    db.set(
        "ns",
        &p("/users/bob"),
        json!({"name": "Bob"}),
        &Caller::Admin,
        None,
    )
    .await
    .unwrap();
    let alice = user("alice");
    let leaked = db
        .set(
            "ns",
            &p("/users/bob"),
            json!({"name": "x"}),
            &alice,
            Some("wrong"),
        )
        .await;
    assert_eq!(leaked, Err(DbError::permission_denied()));
    let own = db
        .set(
            "ns",
            &p("/users/alice"),
            json!({"name": "A"}),
            &alice,
            Some("wrong"),
        )
        .await
        .unwrap();
    assert_eq!(
        own,
        Written::Mismatch(firekeeper_rtdb::Mismatch {
            current: Value::Null,
            etag: "null_etag".into()
        })
    );
}

#[tokio::test]
async fn if_match_and_queries() {
    let (_, _, db) = setup().await;
    assert_eq!(
        db.get("ns", &p("/c"), None, &Caller::Admin).await.unwrap(),
        Value::Null
    );
    let done = db
        .set("ns", &p("/c"), json!(1), &Caller::Admin, Some("null_etag"))
        .await
        .unwrap();
    assert_eq!(done, Written::Done(json!(1)));
    match db
        .set("ns", &p("/c"), json!(2), &Caller::Admin, Some("null_etag"))
        .await
        .unwrap()
    {
        Written::Mismatch(m) => assert_eq!(m.current, json!(1)),
        other => panic!("{other:?}"),
    }
    db.set(
        "ns",
        &p("/scores"),
        json!({"a": 3, "b": 1, "c": 2}),
        &Caller::Admin,
        None,
    )
    .await
    .unwrap();
    let params = [("orderBy", "\"$value\""), ("limitToLast", "2")];
    let q = ReadQuery::from_params(|n| {
        params
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
    .unwrap();
    let top = db
        .get("ns", &p("/scores"), Some(&q), &Caller::User(Value::Null))
        .await
        .unwrap();
    assert_eq!(top, json!({"c": 2, "a": 3}));
    let by_child = [("orderBy", "\"x\"")];
    let q = ReadQuery::from_params(|n| {
        by_child
            .iter()
            .find(|(k, _)| *k == n)
            .map(|(_, v)| v.to_string())
    })
    .unwrap()
    .unwrap();
    let e = db
        .get("ns", &p("/scores"), Some(&q), &Caller::Admin)
        .await
        .unwrap_err();
    assert!(e.message.contains("Index not defined"), "{e}");
}

async fn http() -> axum::Router {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().await.unwrap());
    let clock = Arc::new(ManualClock::new(1_000_000));
    let master = Arc::new(MasterKey::from_bytes(&[7; 32]).unwrap());
    let auth = Auth::new(
        AuthConfig::new(Mode::Emulator, "demo-x"),
        store.clone(),
        clock.clone(),
        master,
    )
    .await
    .unwrap();
    router(Arc::new(Rtdb::new(
        Database::new(store, clock, RULES.into()),
        Arc::new(auth),
        "demo-x-default-rtdb".into(),
    )))
}

async fn send(app: &axum::Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", "Bearer owner")
        .body(Body::from(body))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn rest_errors_use_firebase_bodies() {
    let app = http().await;
    let (s, v) = send(&app, "PUT", "/a.json", b"{\"x\": 1}".to_vec()).await;
    assert_eq!((s, v), (StatusCode::OK, json!({"x": 1})));
    let big = format!("\"{}\"", "x".repeat(17 * 1024 * 1024));
    let (s, v) = send(&app, "PUT", "/a.json", big.into_bytes()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(v["error"].as_str().unwrap().contains("too large"), "{v}");
    let (s, v) = send(&app, "PUT", "/a.json", b"[1,".to_vec()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["error"],
        "Invalid data; couldn't parse JSON object, array, or value."
    );
    let (s, _) = send(&app, "GET", "/a", vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = send(&app, "GET", "/a.json?limitToFirst=1", vec![]).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, v) = send(
        &app,
        "GET",
        "/a.json?shallow=true&orderBy=%22$key%22",
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (_, v) = send(&app, "GET", "/a.json", vec![]).await;
    assert_eq!(v, json!({"x": 1}), "nothing refused was written");
    // Without credentials the rules decide: 401 Permission denied.
    let res = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/a.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap(),
        json!({"error": "Permission denied"})
    );
    let (s, v) = send(
        &app,
        "PUT",
        "/.settings/rules.json",
        b"{\"rules\": {\".read\": 1}}".to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("line 1"), "{v}");
}
