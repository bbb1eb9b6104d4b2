//! Managing apps over `/v1/clients` (developers; admins for any) and `/v1/consents` (users'
//! connected apps), with the attacks: other users' apps and consents, privileges a member may
//! not give an app, old secrets after a rotation.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{TestClient, exchange, oauth_error, obtain_tokens, register};

const MEMBER: (&str, &str) = ("dev@example.com", "developer password 1");

async fn send(
    client: &reqwest::Client,
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn machine_body(name: &str) -> Value {
    json!({
        "name": name,
        "redirect_uris": ["https://worker.example.com/cb"],
        "scopes": ["read:orders"],
        "grant_types": ["client_credentials"],
    })
}

async fn cc_status(app: &TestApp, id: &str, secret: &str) -> StatusCode {
    let client = TestClient {
        id: id.to_owned(),
        secret: Some(secret.to_owned()),
    };
    exchange(app, &client, &[("grant_type", "client_credentials")])
        .await
        .status()
}

both_backends!(developers_manage_their_own_apps_only, |app| async move {
    use reqwest::Method;
    app.create_user(MEMBER.0, MEMBER.1, false).await;
    let (dev, _) = app.login_in_new_browser(MEMBER.0, MEMBER.1).await;
    let (status, created) = send(
        &dev,
        app,
        Method::POST,
        "/v1/clients",
        Some(json!({
            "name": "Orders dashboard",
            "redirect_uris": ["https://orders.example.com/callback", "http://127.0.0.1/cb"],
            "scopes": ["read:orders", "write:orders"],
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let data = &created["data"];
    let id = data["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("cli_"));
    assert!(data["client_secret"].as_str().unwrap().starts_with("cs_"));
    assert_eq!(data["client_type"], "confidential");
    assert_eq!(
        data["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(data["first_party"], false);

    let (status, listed) = send(&dev, app, Method::GET, "/v1/clients", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(
        listed.to_string().find("cs_").is_none(),
        "the secret is shown once"
    );
    let (status, one) = send(&dev, app, Method::GET, &format!("/v1/clients/{id}"), None).await;
    assert_eq!(
        (status, one["data"]["name"].as_str()),
        (StatusCode::OK, Some("Orders dashboard"))
    );

    let (status, patched) = send(
        &dev,
        app,
        Method::PATCH,
        &format!("/v1/clients/{id}"),
        Some(json!({"name": "Orders", "redirect_uris": ["https://orders.example.com/cb2"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(
        patched["data"]["redirect_uris"],
        json!(["https://orders.example.com/cb2"])
    );

    // What a member may not do.
    for (body, why) in [
        (
            json!({"name": "x", "redirect_uris": ["http://evil.example.com/cb"], "scopes": ["read:orders"]}),
            "http off loopback",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb#frag"], "scopes": ["read:orders"]}),
            "a fragment",
        ),
        (
            json!({"name": "x", "redirect_uris": [], "scopes": ["read:orders"]}),
            "no redirect",
        ),
        (
            json!({"name": "", "redirect_uris": ["https://a.example.com/cb"]}),
            "no name",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "scopes": ["write:users"]}),
            "an admin-only scope",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "scopes": ["introspect"]}),
            "introspect",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "scopes": ["no:such"]}),
            "an unknown scope",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "client_type": "public", "grant_types": ["client_credentials"]}),
            "a public machine",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "grant_types": ["password"]}),
            "an unknown grant",
        ),
        (
            json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "owner": "usr_x"}),
            "an unknown field",
        ),
    ] {
        let (status, body) = send(&dev, app, Method::POST, "/v1/clients", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}: {body}");
    }
    let (status, _) = send(
        &dev,
        app,
        Method::POST,
        "/v1/clients",
        Some(json!({"name": "x", "redirect_uris": ["https://a.example.com/cb"], "first_party": true})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "first-party is for admins");
    let (status, _) = send(&dev, app, Method::GET, "/v1/clients?all=true", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Another member sees none of it.
    app.create_user("other@example.com", "other password 123", false)
        .await;
    let (other, _) = app
        .login_in_new_browser("other@example.com", "other password 123")
        .await;
    let (_, theirs) = send(&other, app, Method::GET, "/v1/clients", None).await;
    assert_eq!(theirs["data"], json!([]));
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({"name": "mine now"}));
        let (status, _) = send(
            &other,
            app,
            method.clone(),
            &format!("/v1/clients/{id}"),
            body,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
    }
    let (status, _) = send(
        &other,
        app,
        Method::POST,
        &format!("/v1/clients/{id}/secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Admins list everyone's apps.
    app.login_admin().await;
    let (status, all) = send(&app.client, app, Method::GET, "/v1/clients?all=true", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );

    let (status, _) = send(
        &dev,
        app,
        Method::DELETE,
        &format!("/v1/clients/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(&dev, app, Method::GET, &format!("/v1/clients/{id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, events) = send(
        &app.client,
        app,
        Method::GET,
        "/v1/audit-events?action=oauth.client.created",
        None,
    )
    .await;
    assert!(!events["data"].as_array().unwrap().is_empty());
    assert!(
        !events.to_string().contains("cs_"),
        "no secret in the audit log"
    );
});

both_backends!(
    a_rotated_secret_keeps_working_only_for_its_grace,
    |app| async move {
        use reqwest::Method;
        app.login_admin().await;
        let (_, created) = send(
            &app.client,
            app,
            Method::POST,
            "/v1/clients",
            Some(machine_body("worker")),
        )
        .await;
        let id = created["data"]["client_id"].as_str().unwrap().to_owned();
        let first = created["data"]["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(cc_status(app, &id, &first).await, StatusCode::OK);

        let (status, rotated) = send(
            &app.client,
            app,
            Method::POST,
            &format!("/v1/clients/{id}/secret"),
            Some(json!({"grace_period": "1h"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{rotated}");
        let second = rotated["data"]["client_secret"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_ne!(first, second);
        assert!(rotated["data"]["previous_secret_expires_at"].is_string());
        assert_eq!(cc_status(app, &id, &second).await, StatusCode::OK);
        assert_eq!(
            cc_status(app, &id, &first).await,
            StatusCode::OK,
            "within the grace"
        );
        app.clock.advance(chrono::Duration::minutes(61));
        app.state.key_cache.invalidate_all();
        assert_eq!(
            cc_status(app, &id, &first).await,
            StatusCode::UNAUTHORIZED,
            "after it"
        );
        assert_eq!(cc_status(app, &id, &second).await, StatusCode::OK);

        // Default: no grace, the old secret stops at once.
        let (_, again) = send(
            &app.client,
            app,
            Method::POST,
            &format!("/v1/clients/{id}/secret"),
            None,
        )
        .await;
        let third = again["data"]["client_secret"].as_str().unwrap().to_owned();
        assert_eq!(cc_status(app, &id, &second).await, StatusCode::UNAUTHORIZED);
        assert_eq!(cc_status(app, &id, &third).await, StatusCode::OK);
        let (status, _) = send(
            &app.client,
            app,
            Method::POST,
            &format!("/v1/clients/{id}/secret"),
            Some(json!({"grace_period": "30d"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "at most 7 days");
        let (_, events) = send(
            &app.client,
            app,
            Method::GET,
            "/v1/audit-events?action=oauth.client.secret_rotated",
            None,
        )
        .await;
        assert_eq!(events["data"].as_array().unwrap().len(), 2);
    }
);

both_backends!(
    an_admin_disabling_an_app_ends_its_tokens,
    |app| async move {
        use reqwest::Method;
        app.login_admin().await;
        let web_app = register(app, false, true).await;
        let tokens = obtain_tokens(app, &web_app).await;
        let (access, refresh) = (
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        );
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::OK
        );
        let (status, body) = send(
            &app.client,
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", web_app.id),
            Some(json!({"disabled": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["data"]["disabled"], true);
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let refreshed = exchange(
            app,
            &web_app,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(
            oauth_error(refreshed).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let (_, events) = send(
            &app.client,
            app,
            Method::GET,
            "/v1/audit-events?action=oauth.client.disabled",
            None,
        )
        .await;
        assert_eq!(events["data"].as_array().unwrap().len(), 1);
    }
);

both_backends!(
    users_disconnect_apps_and_their_tokens_end,
    |app| async move {
        use reqwest::Method;
        app.login_admin().await;
        let web_app = register(app, false, false).await;
        let tokens = obtain_tokens(app, &web_app).await;
        let (access, refresh) = (
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        );
        let (status, consents) = send(&app.client, app, Method::GET, "/v1/consents", None).await;
        assert_eq!(status, StatusCode::OK);
        let consent = &consents["data"][0];
        assert_eq!(consent["client_id"], web_app.id.as_str());
        assert_eq!(consent["client_name"], "Orders app");
        assert_eq!(consent["scopes"], json!(["read:users"]));
        assert!(consent["last_used_at"].is_string());
        let consent_id = consent["id"].as_str().unwrap().to_owned();

        // Another user can neither see nor revoke it.
        app.create_user(MEMBER.0, MEMBER.1, false).await;
        let (other, _) = app.login_in_new_browser(MEMBER.0, MEMBER.1).await;
        let (_, theirs) = send(&other, app, Method::GET, "/v1/consents", None).await;
        assert_eq!(theirs["data"], json!([]));
        let (status, _) = send(
            &other,
            app,
            Method::DELETE,
            &format!("/v1/consents/{consent_id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::OK
        );

        let (status, _) = send(
            &app.client,
            app,
            Method::DELETE,
            &format!("/v1/consents/{consent_id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED,
            "its access tokens end"
        );
        let refreshed = exchange(
            app,
            &web_app,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(
            oauth_error(refreshed).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        let (_, left) = send(&app.client, app, Method::GET, "/v1/consents", None).await;
        assert_eq!(left["data"], json!([]));
        let (status, _) = send(
            &app.client,
            app,
            Method::DELETE,
            &format!("/v1/consents/{consent_id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "already gone");
        let (_, events) = send(
            &app.client,
            app,
            Method::GET,
            "/v1/audit-events?action=oauth.consent.revoked",
            None,
        )
        .await;
        assert_eq!(events["data"][0]["details"]["families_revoked"], 1);
    }
);

both_backends!(
    app_pages_refuse_forged_forms_and_other_users,
    |app| async move {
        app.login_admin().await;
        let web_app = register(app, false, false).await;
        obtain_tokens(app, &web_app).await;
        let (_, consents) =
            send(&app.client, app, reqwest::Method::GET, "/v1/consents", None).await;
        let consent_id = consents["data"][0]["id"].as_str().unwrap().to_owned();
        let page = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Orders app"));
        let forged = app
            .post_form(
                &format!("/settings/connected-apps/{consent_id}/revoke"),
                &[("csrf_token", "forged")],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        let all = app.get("/admin/apps").await.text().await.unwrap();
        assert!(all.contains(&web_app.id), "admins see every app");

        app.create_user(MEMBER.0, MEMBER.1, false).await;
        let (member, _) = app.login_in_new_browser(MEMBER.0, MEMBER.1).await;
        let page = member
            .get(app.url("/settings/apps"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!page.contains(&web_app.id), "not someone else's app");
        let csrf = crate::helpers::hidden_field(&page, "csrf_token").unwrap();
        let disable = member
            .post(app.url(&format!("/settings/apps/{}/disable", web_app.id)))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(disable.status(), StatusCode::NOT_FOUND);
        let steal = member
            .post(app.url(&format!("/settings/connected-apps/{consent_id}/revoke")))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(steal.status(), StatusCode::NOT_FOUND);
        let admin_page = member.get(app.url("/admin/apps")).send().await.unwrap();
        assert_eq!(admin_page.status(), StatusCode::FORBIDDEN);
        let (_, still) = send(&app.client, app, reqwest::Method::GET, "/v1/consents", None).await;
        assert_eq!(still["data"].as_array().unwrap().len(), 1);
    }
);

both_backends!(
    narrowing_an_app_or_disconnecting_it_takes_effect_at_once,
    |app| async move {
        use reqwest::Method;
        app.login_admin().await;
        let web_app = register(app, false, false).await;
        // Approve read:users and read:orders.
        let (status, _) = send(&app.client, app, Method::GET, "/v1/consents", None).await;
        assert_eq!(status, StatusCode::OK);
        let tokens = crate::oauth::obtain_tokens_for(app, &web_app, "read:users read:orders").await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert_eq!(tokens["scope"], "read:orders read:users");
        // The app may now only ask for read:orders: refreshed tokens lose read:users.
        let (status, _) = send(
            &app.client,
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", web_app.id),
            Some(json!({"scopes": ["read:orders"]})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let refreshed: Value = exchange(
            app,
            &web_app,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(refreshed["scope"], "read:orders");

        // A code issued just before the user disconnects the app cannot be redeemed after.
        let code = crate::oauth::code_for(app, &web_app, "read:orders").await;
        let (_, consents) = send(&app.client, app, Method::GET, "/v1/consents", None).await;
        let consent_id = consents["data"][0]["id"].as_str().unwrap().to_owned();
        let (status, _) = send(
            &app.client,
            app,
            Method::DELETE,
            &format!("/v1/consents/{consent_id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let late = exchange(
            app,
            &web_app,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", crate::oauth::REDIRECT),
            ],
        )
        .await;
        assert_eq!(
            oauth_error(late).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
    }
);

both_backends!(
    concurrent_writes_of_every_kind_never_fail_with_a_server_error,
    |app| async move {
        // Reads that turn into writes (delete an app, disable it, rotate its secret, revoke a
        // consent) racing each other and the hot-path writers (new keys): on SQLite a
        // transaction that read first and wrote second used to fail with "database is locked"
        // whenever another writer committed in between.
        use reqwest::Method;
        app.login_admin().await;
        // No scopes named: the key carries everything its admin holds.
        let (_, admin_key) = app.create_key(json!({"name": "ops"})).await;
        let http = crate::helpers::new_client();
        let mut ids = Vec::new();
        for n in 0..12 {
            let (status, body) = send(
                &app.client,
                app,
                Method::POST,
                "/v1/clients",
                Some(machine_body(&format!("worker {n}"))),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            ids.push(body["data"]["client_id"].as_str().unwrap().to_owned());
        }
        let mut requests = Vec::new();
        for (n, id) in ids.iter().enumerate() {
            let path = format!("/v1/clients/{id}");
            let (method, path, body) = match n % 3 {
                0 => (Method::DELETE, path, None),
                1 => (Method::PATCH, path, Some(json!({"disabled": true}))),
                _ => (Method::POST, format!("{path}/secret"), None),
            };
            for _ in 0..3 {
                let mut r = http
                    .request(method.clone(), app.url(&path))
                    .bearer_auth(&admin_key);
                if let Some(body) = &body {
                    r = r.json(body);
                }
                requests.push(r.send());
            }
            for k in 0..3 {
                requests.push(
                    http.post(app.url("/v1/api-keys"))
                        .bearer_auth(&admin_key)
                        .json(&json!({"name": format!("racing {n}-{k}"), "scopes": ["read:users"]}))
                        .send(),
                );
            }
        }
        let results = crate::oauth::futures_join(
            requests
                .into_iter()
                .map(|f| async move { f.await.unwrap() }),
        )
        .await;
        for response in results {
            let status = response.status();
            let body = response.text().await.unwrap();
            assert!(
                status.is_success() || status == StatusCode::NOT_FOUND,
                "{status}: {body}"
            );
        }
    }
);
