//! Tenants: the v2 management API the Admin SDKs' tenant managers call, and accounts kept
//! apart per tenant, with the tenant's sign-in methods enforced.

use firekeeper_core::Mode;
use serde_json::json;

use super::{boot, claims, message, Server, IT, PROJECT};

#[tokio::test]
async fn tenants_are_managed_and_keep_their_users_apart() {
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "tenants",
            Some(json!({"displayName": "Team-A",
            "allowPasswordSignup": true})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let id = b["tenantId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("team-a-"), "{id}");
    assert_eq!(b["name"], format!("projects/{PROJECT}/tenants/{id}"));
    assert_eq!(b["allowPasswordSignup"], true);
    assert_eq!(b["enableAnonymousUser"], false, "production defaults: off");
    let (st, b) = s
        .admin_v2(
            Method::POST,
            "tenants",
            Some(json!({"displayName": "1 bad name"})),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "INVALID_DISPLAY_NAME"));
    s.admin_v2(
        Method::POST,
        "tenants",
        Some(json!({"displayName": "Team-B"})),
    )
    .await;
    let (_, b) = s.admin_v2(Method::GET, "tenants?pageSize=1", None).await;
    assert_eq!(b["tenants"].as_array().unwrap().len(), 1);
    let token = b["nextPageToken"].as_str().unwrap().to_owned();
    let (_, b) = s
        .admin_v2(
            Method::GET,
            &format!("tenants?pageSize=1&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(b["tenants"].as_array().unwrap().len(), 1);
    assert!(b.get("nextPageToken").is_none(), "{b}");

    // Users of the tenant: end users name it in the body (API-key callers may not use
    // project paths), admins in the path; its tokens name it; the project never sees them.
    let tenant_it = format!("{IT}/projects/{PROJECT}/tenants/{id}");
    let (st, b) = s
        .post(&format!("{IT}/accounts:signUp"),
            json!({"email": "member@example.com", "password": "secret-pw", "returnSecureToken": true,
                "tenantId": id}))
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        claims(b["idToken"].as_str().unwrap())["firebase"]["tenant"],
        id
    );
    let refresh = b["refreshToken"].as_str().unwrap().to_owned();
    let member_token = b["idToken"].as_str().unwrap().to_owned();
    // The client SDKs look their user up with the ID token alone: its tenant counts.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": b["idToken"]}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["users"][0]["email"], "member@example.com");
    assert!(s.user_by_email("member@example.com").await.is_none());
    let (_, b) = s
        .admin_post(
            &format!("{tenant_it}/accounts:lookup"),
            json!({"email": ["member@example.com"]}),
        )
        .await;
    assert_eq!(b["users"][0]["tenantId"], id);
    // The body's tenant must agree with the path's.
    let (st, b) = s
        .admin_post(
            &format!("{tenant_it}/accounts:lookup"),
            json!({"email": ["member@example.com"], "tenantId": "other"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "TENANT_ID_MISMATCH"));
    let (st, _) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "member@example.com", "password": "secret-pw", "tenantId": id}),
        )
        .await;
    assert_eq!(st, 200);
    // Methods the tenant did not enable are refused to end users, not to admins.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"returnSecureToken": true, "tenantId": id}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "ADMIN_ONLY_OPERATION"));
    let (st, b) = s
        .admin_v2(
            Method::PATCH,
            &format!("tenants/{id}?updateMask=enableAnonymousUser"),
            Some(json!({"enableAnonymousUser": true})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        b["allowPasswordSignup"], true,
        "fields outside the mask stay"
    );
    let (st, _) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"returnSecureToken": true, "tenantId": id}),
        )
        .await;
    assert_eq!(st, 200);
    let (st, b) = s
        .admin_v2(
            Method::PATCH,
            &format!("tenants/{id}?updateMask=allowPasswordSignup"),
            Some(json!({})),
        )
        .await;
    assert_eq!((st, b["allowPasswordSignup"].as_bool()), (200, Some(false)));
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "member@example.com", "password": "secret-pw", "tenantId": id}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "PASSWORD_LOGIN_DISABLED"));
    let (st, b) = s
        .admin_post(
            &format!("{tenant_it}/accounts"),
            json!({"email": "made@example.com", "password": "secret-pw"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");

    // A switched-off tenant refuses its end users everything: sign-in, refresh, lookup.
    let (st, b) = s
        .admin_v2(
            Method::PATCH,
            &format!("tenants/{id}?updateMask=disableAuth,allowPasswordSignup"),
            Some(json!({"disableAuth": true, "allowPasswordSignup": true})),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithPassword"),
            json!({"email": "member@example.com", "password": "secret-pw", "tenantId": id}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "PROJECT_DISABLED"));
    let (st, b) = s.refresh(&refresh).await;
    assert_eq!((st, message(&b)), (400, "PROJECT_DISABLED"));
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:lookup"),
            json!({"idToken": member_token}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "PROJECT_DISABLED"));
    s.admin_v2(
        Method::PATCH,
        &format!("tenants/{id}?updateMask=disableAuth"),
        Some(json!({"disableAuth": false})),
    )
    .await;
    assert_eq!(s.refresh(&refresh).await.0, 200);
    // The project's identity providers do not sign users into tenants.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signInWithIdp"),
            json!({"requestUri": "http://localhost/cb", "tenantId": id,
                "postBody": "id_token=x&providerId=oidc.any"}),
        )
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("OPERATION_NOT_ALLOWED"), "{b}");
    // A tenant's password policy is checked when it is set.
    let (st, b) = s
        .admin_v2(
            Method::PATCH,
            &format!("tenants/{id}?updateMask=passwordPolicyConfig"),
            Some(json!({"passwordPolicyConfig": {"passwordPolicyEnforcementState": "ENFORCED"}})),
        )
        .await;
    assert_eq!(st, 400);
    assert!(message(&b).starts_with("INVALID_CONFIG"), "{b}");

    // Unknown tenants do not exist in production.
    let (st, b) = s
        .post(
            &format!("{IT}/accounts:signUp"),
            json!({"email": "x@example.com", "password": "secret-pw", "tenantId": "nope"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "TENANT_NOT_FOUND"));
    let (st, b) = s
        .admin_post(
            &format!("{IT}/projects/{PROJECT}/tenants/nope/accounts"),
            json!({"email": "x@example.com"}),
        )
        .await;
    assert_eq!((st, message(&b)), (400, "TENANT_NOT_FOUND"));
    let (st, b) = s.admin_v2(Method::GET, "tenants/nope", None).await;
    assert_eq!((st, message(&b)), (400, "TENANT_NOT_FOUND"));

    // Deleting a tenant deletes its users: their sessions end with them.
    let (st, _) = s
        .admin_v2(Method::DELETE, &format!("tenants/{id}"), None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = s
        .admin_v2(Method::GET, &format!("tenants/{id}"), None)
        .await;
    assert_eq!(st, 400);
    let gone = s
        .store_count(&firekeeper_core::Scope {
            project: PROJECT.into(),
            tenant: Some(id.clone()),
        })
        .await;
    assert_eq!(gone, 0);
    let (st, _) = s.refresh(&refresh).await;
    assert_eq!(st, 400);
}

impl Server {
    async fn store_count(&self, scope: &firekeeper_core::Scope) -> u64 {
        use firekeeper_core::Store;
        self.store.count_accounts(scope).await.unwrap()
    }
}

/// Two instances on one database, each with its settings cached: a change one makes is
/// never overwritten by the other's write from an older copy (compare-and-set, then a
/// fresh read and the change again).
#[tokio::test]
async fn settings_written_by_two_instances_are_both_kept() {
    use std::sync::Arc;

    use firekeeper_core::secrets::MasterKey;
    use firekeeper_core::{Auth, AuthConfig};
    use reqwest::Method;
    let s = boot(Mode::Production).await;
    let mut cfg = AuthConfig::new(Mode::Production, PROJECT);
    cfg.hash_cost = firekeeper_core::password::HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let other = Auth::new(
        cfg,
        s.store.clone(),
        s.clock.clone(),
        Arc::new(MasterKey::from_bytes(&[7u8; 32]).unwrap()),
    )
    .await
    .unwrap();
    // This instance reads (and caches) the settings; the injected clock keeps the copy
    // from expiring.
    let (st, _) = s.admin_v2(Method::GET, "tenants", None).await;
    assert_eq!(st, 200);
    // The other instance adds a tenant and a provider configuration meanwhile.
    let theirs = other
        .create_tenant(PROJECT, &json!({"displayName": "Theirs"}))
        .await
        .unwrap();
    // This instance writes from its older copy.
    let (st, ours) = s
        .admin_v2(
            Method::POST,
            "tenants",
            Some(json!({"displayName": "Ours"})),
        )
        .await;
    assert_eq!(st, 200, "{ours}");
    let listed = other.list_tenants(PROJECT, None, None).await.unwrap();
    let names: Vec<&str> = listed["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["displayName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Theirs") && names.contains(&"Ours"),
        "{listed} {theirs}"
    );
}
