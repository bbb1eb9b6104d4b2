//! Authorization integrity: a credential never becomes more than it was given. Each test
//! tries one attack from the outside review (the defect numbers of the issue) and checks
//! that it is refused, with nothing minted or changed.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::{TestApp, spawn_app_with};
use crate::oauth::{REDIRECT, TestClient, exchange, obtain_tokens_for};

pub(crate) async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    credential: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method.parse().unwrap(), app.url(path))
        .bearer_auth(credential);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// A key made with the signed-in session: (id, secret, the answer's data).
async fn session_key(app: &TestApp, body: Value) -> (String, String, Value) {
    let response = app
        .client
        .post(app.url("/v1/api-keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let created: Value = response.json().await.unwrap();
    let data = created["data"].clone();
    (
        data["id"].as_str().unwrap().to_owned(),
        data["key"].as_str().unwrap().to_owned(),
        data,
    )
}

async fn key_count(app: &TestApp) -> usize {
    let response = app.get("/v1/api-keys?limit=100").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().len()
}

/// A first-party confidential app owned by the signed-in user, allowed `scopes`, bound to
/// `resources`.
pub(crate) async fn app_with(app: &TestApp, scopes: &str, resources: &[&str]) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{ClientType, NewClient, default_grant_types};
    let me: Value = app.me().await.json().await.unwrap();
    let mut grant_types = default_grant_types();
    grant_types.push("client_credentials".into());
    let new = NewClient {
        name: "Integrity app".into(),
        owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
        client_type: ClientType::Confidential,
        redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
        scopes: gatehouse::scopes::ScopeSet::parse(scopes).unwrap(),
        first_party: true,
        grant_types,
        resources: resources.iter().map(|r| (*r).to_owned()).collect(),
        ..Default::default()
    };
    crate::oauth::create_client(app, new).await
}

/// Bind resource servers to an app, as an administrator's PATCH would.
pub(crate) async fn bind_resources(app: &TestApp, client_id: &str, resources: &[&str]) {
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
    use gatehouse::db::schema::clients::dsl as c;
    let (id, joined) = (client_id.to_owned(), resources.join(" "));
    app.state
        .db(move |conn| {
            diesel::update(c::clients.find(&id))
                .set(c::resources.eq(&joined))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    app.state.key_cache.invalidate_all();
}

async fn app_token(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let tokens = obtain_tokens_for(app, client, scope).await;
    tokens["access_token"].as_str().unwrap().to_owned()
}

async fn audit(app: &TestApp, action: &str) -> Vec<Value> {
    let response = app.get(&format!("/v1/audit-events?action={action}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

// Defect 1: a restricted, test-mode or OAuth credential with write:api_keys rolls or changes
// a key broader than itself.
both_backends!(
    nothing_rolls_or_changes_a_key_broader_than_itself,
    |app| async move {
        app.login_admin().await;
        let (full_id, _, _) = session_key(
            app,
            json!({ "name": "full", "allowed_ips": ["10.0.0.0/8"] }),
        )
        .await;
        let (_, manager, _) = session_key(
            app,
            json!({ "name": "manager", "scopes": ["read:api_keys", "write:api_keys", "admin:users"] }),
        )
        .await;
        let (_, test_key, _) = session_key(app, json!({ "name": "test", "mode": "test" })).await;
        let before = key_count(app).await;

        for (who, credential) in [("restricted", &manager), ("test-mode", &test_key)] {
            let rolled = send(
                app,
                "POST",
                &format!("/v1/api-keys/{full_id}/roll"),
                credential,
                None,
            )
            .await;
            assert_eq!(
                refusal(rolled).await,
                (StatusCode::FORBIDDEN, "AUTH_006".into()),
                "{who} rolls"
            );
            let emptied = send(
                app,
                "PATCH",
                &format!("/v1/api-keys/{full_id}"),
                credential,
                Some(json!({ "allowed_ips": null })),
            )
            .await;
            assert_eq!(
                refusal(emptied).await,
                (StatusCode::FORBIDDEN, "AUTH_006".into()),
                "{who} patches"
            );
        }
        assert_eq!(key_count(app).await, before, "nothing was minted");
        let full: Value = app
            .get(&format!("/v1/api-keys/{full_id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            full["data"]["allowed_ips"],
            json!(["10.0.0.0/8"]),
            "allowlist untouched"
        );

        // An app's token holding write:api_keys mints nothing either.
        let client = app_with(app, "read:users read:api_keys write:api_keys", &[]).await;
        let token = app_token(app, &client, "read:api_keys write:api_keys").await;
        let rolled = send(
            app,
            "POST",
            &format!("/v1/api-keys/{full_id}/roll"),
            &token,
            None,
        )
        .await;
        assert_eq!(
            refusal(rolled).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        let created = send(
            app,
            "POST",
            "/v1/api-keys",
            &token,
            Some(json!({ "name": "via app", "scopes": ["read:api_keys"] })),
        )
        .await;
        assert_eq!(
            refusal(created).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        assert_eq!(key_count(app).await, before);

        // A key may roll itself: the result is exactly as broad.
        let (hour_id, hour, data) = session_key(
            app,
            json!({ "name": "hour", "scopes": ["write:api_keys"], "expires_in": "1h" }),
        )
        .await;
        let rolled = send(
            app,
            "POST",
            &format!("/v1/api-keys/{hour_id}/roll"),
            &hour,
            None,
        )
        .await;
        assert_eq!(rolled.status(), StatusCode::CREATED);
        let rolled: Value = rolled.json().await.unwrap();
        // A 1-hour key rolls into a 1-hour key, not a 365-day one.
        let expiry = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        let lifetime = expiry(&rolled["data"]["expires_at"]) - expiry(&data["created_at"]);
        assert!(
            lifetime <= chrono::Duration::hours(1) + chrono::Duration::seconds(5),
            "rolled key lives {lifetime}"
        );
    }
);

// Defect 6: children inherit their parent's allowlist, expiry and rate limit, and never exceed
// them; no key exceeds the server's rate limit.
both_backends!(child_keys_stay_inside_their_parent, |app| async move {
    app.login_admin().await;
    let (_, parent, parent_data) = session_key(
        app,
        json!({
            "name": "parent",
            "scopes": ["read:api_keys", "write:api_keys", "read:users"],
            "allowed_ips": ["127.0.0.0/8"],
            "expires_in": "2h",
            "rate_limit_per_minute": 50,
        }),
    )
    .await;
    let child = send(
        app,
        "POST",
        "/v1/api-keys",
        &parent,
        Some(json!({ "name": "child", "scopes": ["read:users"] })),
    )
    .await;
    assert_eq!(child.status(), StatusCode::CREATED);
    let child: Value = child.json().await.unwrap();
    assert_eq!(
        child["data"]["allowed_ips"],
        json!(["127.0.0.0/8"]),
        "allowlist inherited"
    );
    assert_eq!(
        child["data"]["rate_limit_per_minute"], 50,
        "rate limit inherited"
    );
    assert!(
        child["data"]["expires_at"].as_str().unwrap()
            <= parent_data["expires_at"].as_str().unwrap(),
        "the child expires no later than its parent"
    );
    for (wider, why) in [
        (
            json!({ "name": "c", "scopes": ["read:users"], "expires_in": "30d" }),
            "later expiry",
        ),
        (
            json!({ "name": "c", "scopes": ["read:users"], "never_expires": true }),
            "no expiry",
        ),
        (
            json!({ "name": "c", "scopes": ["read:users"], "allowed_ips": ["0.0.0.0/0"] }),
            "wider allowlist",
        ),
        (
            json!({ "name": "c", "scopes": ["read:users"], "rate_limit_per_minute": 60 }),
            "higher rate",
        ),
        (
            json!({ "name": "c", "scopes": ["write:orders"] }),
            "a scope it lacks",
        ),
        (json!({ "name": "c" }), "a full key"),
    ] {
        let refused = send(app, "POST", "/v1/api-keys", &parent, Some(wider)).await;
        let got = refusal(refused).await;
        assert!(
            got == (StatusCode::FORBIDDEN, "AUTH_006".into())
                || (why == "no expiry" && got.1 == "VALIDATION_001"),
            "{why}: {got:?}"
        );
    }
    // Nobody sets a limit above the server's.
    let too_fast = app
        .client
        .post(app.url("/v1/api-keys"))
        .json(&json!({ "name": "fast", "rate_limit_per_minute": 100_000 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(too_fast).await,
        (StatusCode::BAD_REQUEST, "VALIDATION_001".into())
    );
});

// Defect 2: a token for another resource server is refused by /v1 even after introspection
// verified (and cached) it.
#[actix_web::test]
async fn a_token_for_another_resource_stays_refused_after_introspection() {
    const ORDERS: &str = "https://orders.example.com";
    for backend in [
        crate::helpers::Backend::Sqlite,
        crate::helpers::Backend::Postgres,
    ] {
        let Some(app) = spawn_app_with(backend, |s| s.resources = vec![ORDERS.into()]).await else {
            continue;
        };
        app.login_admin().await;
        let client = app_with(&app, "read:users introspect", &[ORDERS]).await;
        let code = crate::oauth::code_for(&app, &client, "read:users").await;
        let user_tokens: Value = exchange(
            &app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("resource", ORDERS),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        let token = user_tokens["access_token"].as_str().unwrap().to_owned();
        let refused = send(&app, "GET", "/v1/users/me", &token, None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let introspected: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(introspected["active"], true);
        assert_eq!(introspected["aud"], ORDERS);
        let still = send(&app, "GET", "/v1/users/me", &token, None).await;
        assert_eq!(
            refusal(still).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into()),
            "the cached verification is not a pass for /v1"
        );
        app.stop().await;
    }
}

// Defect 7: resource servers are bound to apps by an administrator.
#[actix_web::test]
async fn apps_get_tokens_only_for_resource_servers_bound_to_them() {
    const ORDERS: &str = "https://orders.example.com";
    for backend in [
        crate::helpers::Backend::Sqlite,
        crate::helpers::Backend::Postgres,
    ] {
        let Some(app) = spawn_app_with(backend, |s| s.resources = vec![ORDERS.into()]).await else {
            continue;
        };
        app.login_admin().await;
        let unbound = app_with(&app, "read:orders", &[]).await;
        let refused = exchange(
            &app,
            &unbound,
            &[("grant_type", "client_credentials"), ("resource", ORDERS)],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "invalid_target");
        let bound = app_with(&app, "read:orders", &[ORDERS]).await;
        let granted = exchange(
            &app,
            &bound,
            &[("grant_type", "client_credentials"), ("resource", ORDERS)],
        )
        .await;
        assert_eq!(granted.status(), StatusCode::OK);

        // Only an administrator (with admin:clients) binds one, through the API too.
        app.create_user("dev@example.com", "dev password 1", false)
            .await;
        let (browser, _) = app
            .login_in_new_browser("dev@example.com", "dev password 1")
            .await;
        let registered = browser
            .post(app.url("/v1/clients"))
            .json(&json!({ "name": "Dev app", "redirect_uris": [REDIRECT], "resources": [ORDERS] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(registered).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        let by_admin = app
            .client
            .post(app.url("/v1/clients"))
            .json(
                &json!({ "name": "Admin app", "redirect_uris": [REDIRECT], "resources": [ORDERS] }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(by_admin.status(), StatusCode::CREATED);
        let body: Value = by_admin.json().await.unwrap();
        assert_eq!(body["data"]["resources"], json!([ORDERS]));
        app.stop().await;
    }
}

// Defect 3: an admin's key restricted to write:clients registers neither a first-party app
// nor one with admin-only scopes.
both_backends!(
    a_narrow_admin_key_cannot_register_what_it_does_not_hold,
    |app| async move {
        app.login_admin().await;
        let (_, narrow, _) = session_key(
            app,
            json!({ "name": "apps", "scopes": ["write:clients", "read:users"] }),
        )
        .await;
        let first_party = send(
            app,
            "POST",
            "/v1/clients",
            &narrow,
            Some(json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": ["read:users"], "first_party": true })),
        )
        .await;
        assert_eq!(
            refusal(first_party).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        for scope in ["write:users", "introspect", "read:orders"] {
            let wide = send(
                app,
                "POST",
                "/v1/clients",
                &narrow,
                Some(json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": [scope] })),
            )
            .await;
            assert_eq!(
                refusal(wide).await,
                (StatusCode::FORBIDDEN, "AUTH_006".into()),
                "{scope}"
            );
        }
        let ok = send(
            app,
            "POST",
            "/v1/clients",
            &narrow,
            Some(json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": ["read:users"] })),
        )
        .await;
        assert_eq!(ok.status(), StatusCode::CREATED);
        // The admin's own session may.
        let session = app
            .client
            .post(app.url("/v1/clients"))
            .json(&json!({ "name": "x", "redirect_uris": [REDIRECT], "scopes": ["introspect"], "first_party": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(session.status(), StatusCode::CREATED);
    }
);

// Defect 4: the audit log needs read:audit as well as the admin role.
both_backends!(
    the_audit_log_needs_its_scope_and_the_role,
    |app| async move {
        app.login_admin().await;
        let (_, products, _) =
            session_key(app, json!({ "name": "p", "scopes": ["read:products"] })).await;
        let (_, auditor, _) =
            session_key(app, json!({ "name": "a", "scopes": ["read:audit"] })).await;
        let refused = send(app, "GET", "/v1/audit-events", &products, None).await;
        assert_eq!(
            refusal(refused).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        assert_eq!(
            send(app, "GET", "/v1/audit-events", &auditor, None)
                .await
                .status(),
            StatusCode::OK
        );
        let client = app_with(app, "read:users", &[]).await;
        let token = app_token(app, &client, "read:users").await;
        let refused = send(app, "GET", "/v1/audit-events", &token, None).await;
        assert_eq!(
            refusal(refused).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
    }
);

// Defect 9: an administrator's disable is a lock only an administrator lifts.
both_backends!(
    an_admins_disable_is_a_lock_the_owner_cannot_lift,
    |app| async move {
        app.create_user("owner@example.com", "owner password 1", false)
            .await;
        let (owner, _) = app
            .login_in_new_browser("owner@example.com", "owner password 1")
            .await;
        let created = owner
            .post(app.url("/v1/clients"))
            .json(&json!({ "name": "Mine", "redirect_uris": [REDIRECT], "scopes": ["read:users"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let id = created["data"]["client_id"].as_str().unwrap().to_owned();
        let patch = |who: &reqwest::Client, body: Value| {
            who.patch(app.url(&format!("/v1/clients/{id}")))
                .json(&body)
                .send()
        };
        // The owner's own disable is theirs to lift.
        assert_eq!(
            patch(&owner, json!({ "disabled": true }))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        assert_eq!(
            patch(&owner, json!({ "disabled": false }))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        app.login_admin().await;
        let locked = patch(&app.client, json!({ "disabled": true }))
            .await
            .unwrap();
        let locked: Value = locked.json().await.unwrap();
        assert_eq!(locked["data"]["admin_locked"], true);
        let lifted = patch(&owner, json!({ "disabled": false })).await.unwrap();
        assert_eq!(
            refusal(lifted).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        let still: Value = owner
            .get(app.url(&format!("/v1/clients/{id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(still["data"]["disabled"], true);
        let by_admin = patch(&app.client, json!({ "disabled": false }))
            .await
            .unwrap();
        assert_eq!(by_admin.status(), StatusCode::OK);
    }
);

// Defect 14: `null` clears a field that may be empty and is refused for one that may not.
both_backends!(
    null_in_a_patch_is_never_silently_ignored,
    |app| async move {
        app.login_admin().await;
        let (id, _, _) = session_key(
            app,
            json!({ "name": "pinned", "description": "d", "allowed_ips": ["192.0.2.0/24"] }),
        )
        .await;
        let path = format!("/v1/api-keys/{id}");
        let cleared = app
            .client
            .patch(app.url(&path))
            .json(&json!({ "allowed_ips": null, "description": null }))
            .send()
            .await
            .unwrap();
        assert_eq!(cleared.status(), StatusCode::OK);
        let cleared: Value = cleared.json().await.unwrap();
        assert_eq!(cleared["data"]["allowed_ips"], json!([]));
        assert_eq!(cleared["data"]["description"], "");
        let no_name = app
            .client
            .patch(app.url(&path))
            .json(&json!({ "name": null }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(no_name).await,
            (StatusCode::BAD_REQUEST, "VALIDATION_001".into())
        );
        let client = app
            .client
            .post(app.url("/v1/clients"))
            .json(&json!({ "name": "x", "redirect_uris": [REDIRECT] }))
            .send()
            .await
            .unwrap();
        let client: Value = client.json().await.unwrap();
        let client_path = format!(
            "/v1/clients/{}",
            client["data"]["client_id"].as_str().unwrap()
        );
        for field in ["name", "redirect_uris", "scopes", "disabled"] {
            let refused = app
                .client
                .patch(app.url(&client_path))
                .json(&json!({ field: null }))
                .send()
                .await
                .unwrap();
            assert_eq!(
                refusal(refused).await,
                (StatusCode::BAD_REQUEST, "VALIDATION_001".into()),
                "{field}"
            );
        }
    }
);

// Defect 16: members change their own profile with write:profile; a session that must change
// its password first cannot use /v1.
both_backends!(profiles_have_their_own_scope, |app| async move {
    app.create_user("pat@example.com", "pat password 1", false)
        .await;
    let (pat, _) = app
        .login_in_new_browser("pat@example.com", "pat password 1")
        .await;
    let key = |scopes: &'static str| {
        pat.post(app.url("/v1/api-keys"))
            .json(&json!({ "name": scopes, "scopes": scopes }))
            .send()
    };
    let writer: Value = key("write:profile").await.unwrap().json().await.unwrap();
    let reader: Value = key("read:users").await.unwrap().json().await.unwrap();
    let renamed = send(
        app,
        "PATCH",
        "/v1/users/me",
        writer["data"]["key"].as_str().unwrap(),
        Some(json!({ "display_name": "Pat" })),
    )
    .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let refused = send(
        app,
        "PATCH",
        "/v1/users/me",
        reader["data"]["key"].as_str().unwrap(),
        Some(json!({ "display_name": "P" })),
    )
    .await;
    assert_eq!(
        refusal(refused).await,
        (StatusCode::FORBIDDEN, "AUTH_004".into())
    );

    app.login_admin().await;
    let created = app
        .client
        .post(app.url("/v1/users"))
        .json(&json!({ "email": "new@example.com" }))
        .send()
        .await
        .unwrap();
    let created: Value = created.json().await.unwrap();
    let password = created["data"]["password"].as_str().unwrap().to_owned();
    let (fresh, _) = app.login_in_new_browser("new@example.com", &password).await;
    let me = fresh.get(app.url("/v1/users/me")).send().await.unwrap();
    assert_eq!(
        refusal(me).await,
        (StatusCode::FORBIDDEN, "AUTH_007".into())
    );
});

// Defect 10: what the audit log must show.
both_backends!(
    the_audit_log_names_apps_and_user_changes,
    |app| async move {
        app.login_admin().await;
        // Actions through an app's token name the app.
        let client = app_with(app, "read:api_keys write:api_keys", &[]).await;
        let token = app_token(app, &client, "write:api_keys").await;
        let (victim, _, _) = session_key(app, json!({ "name": "to revoke" })).await;
        let revoked = send(
            app,
            "DELETE",
            &format!("/v1/api-keys/{victim}"),
            &token,
            None,
        )
        .await;
        assert_eq!(revoked.status(), StatusCode::OK);
        let events = audit(app, "api_key.revoked").await;
        let event = events
            .iter()
            .find(|e| e["key_id"] == victim.as_str())
            .expect("revocation audited");
        assert_eq!(event["details"]["actor_client_id"], client.id.as_str());

        // Users created and disabled.
        let created = app
            .client
            .post(app.url("/v1/users"))
            .json(&json!({ "email": "ann@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        assert_eq!(audit(app, "user.created").await.len(), 1);
        let created: Value = created.json().await.unwrap();
        let ann = created["data"]["id"].as_str().unwrap().to_owned();
        let csrf = app.session_csrf().await;
        let disabled = app
            .post_form(
                &format!("/admin/users/{ann}/disable"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
        let events = audit(app, "user.disabled").await;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["subject_user_id"], ann.as_str());

        // Introspecting an IP-pinned key is no refused use.
        let (_, pinned, _) = session_key(
            app,
            json!({ "name": "pinned", "allowed_ips": ["192.0.2.1"] }),
        )
        .await;
        let (_, admin_key, _) =
            session_key(app, json!({ "name": "rs", "scopes": ["introspect"] })).await;
        let answer: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .bearer_auth(&admin_key)
            .form(&[("token", pinned.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["active"], true);
        // Refused uses are written off the request's path: await that write.
        app.state.background.settled().await;
        assert!(
            audit(app, "api_key.refused.ip_not_allowed")
                .await
                .is_empty()
        );
    }
);
