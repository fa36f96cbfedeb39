use firekeeper_core::model::{Account, ProviderUserInfo, Scope};
use firekeeper_core::store::{Store, StoreError, UniqueField};

use super::SqliteStore;

fn acc(id: &str, email: Option<&str>) -> Account {
    Account {
        local_id: id.into(),
        email: email.map(Into::into),
        created_at: 1,
        ..Default::default()
    }
}

#[tokio::test]
async fn uniqueness_is_enforced_by_the_database() {
    let s = SqliteStore::in_memory().await.unwrap();
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

#[tokio::test]
async fn federated_ids_are_unique_and_searchable() {
    let s = SqliteStore::in_memory().await.unwrap();
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

#[tokio::test]
async fn listing_pages_by_local_id() {
    let s = SqliteStore::in_memory().await.unwrap();
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

#[tokio::test]
async fn update_of_a_missing_account_is_not_found() {
    let s = SqliteStore::in_memory().await.unwrap();
    assert_eq!(
        s.update_account(&Scope::project("p"), &acc("nope", None), None, &[])
            .await,
        Err(StoreError::NotFound)
    );
}

#[tokio::test]
async fn updates_are_compare_and_set() {
    let s = SqliteStore::in_memory().await.unwrap();
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
