//! API keys through `/v1`: formats, header styles, refusals, rolling, restrictions, IP
//! allowlists, rate limits, last-used bookkeeping, audit and visibility. Time moves through the
//! server's manual clock, never by sleeping.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, TestApp, captured_logs, spawn_app_with};

/// Status and error code of an envelope error.
pub(crate) async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("an envelope");
    assert_eq!(body["success"], false, "{body}");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn me_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.get_with_key("/v1/users/me", key).await
}

/// The key as `GET /v1/api-keys/{id}` shows it (a refused read fails here, rather than
/// reading as a key whose fields are all null).
async fn key_status(app: &TestApp, id: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/v1/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "reading key {id}");
    response.json::<Value>().await.unwrap()["data"].clone()
}

both_backends!(
    a_new_key_is_shown_once_and_works_with_all_three_header_styles,
    |app| async move {
        app.login_admin().await;
        let response = app
            .client
            .post(app.url("/v1/api-keys"))
            .json(&json!({ "name": "Backend" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let created: Value = response.json().await.unwrap();
        let key = created["data"]["key"].as_str().unwrap().to_owned();
        let id = created["data"]["id"].as_str().unwrap().to_owned();
        assert!(key.starts_with("sk_live_") && key.len() == 46, "{key}");
        assert!(id.starts_with("key_"));
        assert_eq!(created["data"]["prefix"], &key[..12]);
        assert_eq!(created["data"]["last4"], &key[42..]);
        assert_eq!(created["data"]["status"], "active");

        let bearer = reqwest::Client::new()
            .get(app.url("/v1/users/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let apikey = reqwest::Client::new()
            .get(app.url("/v1/users/me"))
            .header("authorization", format!("ApiKey {key}"))
            .send()
            .await
            .unwrap();
        let xapikey = reqwest::Client::new()
            .get(app.url("/v1/users/me"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap();
        for response in [bearer, apikey, xapikey] {
            assert_eq!(response.status(), StatusCode::OK);
            let me: Value = response.json().await.unwrap();
            assert_eq!(me["data"]["email"], ADMIN_EMAIL);
            assert_eq!(me["data"]["authentication"]["type"], "api_key");
            assert_eq!(me["data"]["authentication"]["key_id"], id.as_str());
            assert_eq!(me["data"]["authentication"]["mode"], "live");
            assert_eq!(me["data"]["authentication"]["livemode"], true);
        }

        let again = key_status(app, &id).await;
        assert!(again.get("key").is_none(), "the key is never shown again");
        let listed = app
            .client
            .get(app.url("/v1/api-keys"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !listed.contains(&key[12..]),
            "lists show only prefix and last four"
        );

        let (_, test_key) = app
            .create_key(json!({ "name": "CI", "mode": "test" }))
            .await;
        assert!(test_key.starts_with("sk_test_"));
        let me: Value = me_with_key(app, &test_key).await.json().await.unwrap();
        assert_eq!(me["data"]["authentication"]["mode"], "test");
        assert_eq!(me["data"]["authentication"]["livemode"], false);
    }
);

both_backends!(
    malformed_wrong_scheme_and_url_credentials_are_refused,
    |app| async move {
        app.login_admin().await;
        let (_, key) = app.create_key(json!({ "name": "k" })).await;
        let plain = reqwest::Client::new();
        for param in ["api_key", "key", "access_token"] {
            let response = plain
                .get(app.url(&format!("/v1/users/me?{param}={key}")))
                .send()
                .await
                .unwrap();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "AUTH_003", "?{param}=");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("header")
            );
            assert!(!body.to_string().contains(&key), "the key is not echoed");
        }
        let even_with_header = plain
            .get(app.url(&format!("/v1/users/me?api_key={key}")))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(even_with_header).await,
            (StatusCode::UNAUTHORIZED, "AUTH_003".into())
        );
        for (header, value) in [
            ("authorization", "Basic dXNlcjpwYXNz"),
            ("authorization", "Bearer "),
            ("x-api-key", " "),
        ] {
            let response = plain
                .get(app.url("/v1/users/me"))
                .header(header, value)
                .send()
                .await
                .unwrap();
            assert_eq!(
                refusal(response).await,
                (StatusCode::UNAUTHORIZED, "AUTH_003".into()),
                "{header}: {value:?}"
            );
        }
        let not_a_key = me_with_key(app, "hello-world").await;
        assert_eq!(
            refusal(not_a_key).await,
            (StatusCode::UNAUTHORIZED, "AUTH_003".into())
        );
        let unknown = gatehouse::api_keys::format::generate(
            gatehouse::api_keys::format::Kind::Secret,
            gatehouse::api_keys::format::Mode::Live,
        );
        assert_eq!(
            refusal(me_with_key(app, unknown.expose()).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
    }
);

both_backends!(
    a_key_with_a_bad_checksum_is_refused_without_a_database_query,
    |app| async move {
        app.login_admin().await;
        let (_, key) = app.create_key(json!({ "name": "k" })).await;
        let mut typo: Vec<char> = key.chars().collect();
        typo[30] = if typo[30] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        let before = app.state.db_calls();
        let response = me_with_key(app, &typo).await;
        assert_eq!(
            refusal(response).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
        assert_eq!(
            app.state.db_calls(),
            before,
            "no database work for a key that fails its checksum"
        );
        let unknown = gatehouse::api_keys::format::generate(
            gatehouse::api_keys::format::Kind::Secret,
            gatehouse::api_keys::format::Mode::Live,
        );
        let _ = me_with_key(app, unknown.expose()).await;
        assert!(
            app.state.db_calls() > before,
            "a well-formed unknown key is looked up (the counter works)"
        );
    }
);

both_backends!(
    a_revoked_key_fails_at_once_and_stays_listed,
    |app| async move {
        app.login_admin().await;
        let (id, key) = app.create_key(json!({ "name": "to revoke" })).await;
        assert_eq!(me_with_key(app, &key).await.status(), StatusCode::OK);
        let revoked = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let body: Value = revoked.json().await.unwrap();
        assert_eq!(
            body,
            json!({ "success": true, "message": "API key revoked successfully" })
        );
        assert_eq!(
            refusal(me_with_key(app, &key).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
        assert_eq!(key_status(app, &id).await["status"], "revoked");
        let revoked_list: Value = app
            .client
            .get(app.url("/v1/api-keys?status=revoked"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(revoked_list["data"].as_array().unwrap().len(), 1);
        let active_list: Value = app
            .client
            .get(app.url("/v1/api-keys?status=active"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(active_list["data"].as_array().unwrap().is_empty());
        let again = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "revoking twice is harmless");
    }
);

both_backends!(an_expired_key_fails, |app| async move {
    app.login_admin().await;
    let (id, key) = app
        .create_key(json!({ "name": "short", "expires_in": "1h" }))
        .await;
    assert_eq!(me_with_key(app, &key).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(61));
    assert_eq!(
        refusal(me_with_key(app, &key).await).await,
        (StatusCode::UNAUTHORIZED, "AUTH_002".into())
    );
    assert_eq!(key_status(app, &id).await["status"], "expired");
    let expired: Value = app
        .client
        .get(app.url("/v1/api-keys?status=expired"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(expired["data"][0]["id"], id.as_str());
});

both_backends!(expiry_is_bounded_by_policy, |app| async move {
    app.login_admin().await;
    let (id, _) = app.create_key(json!({ "name": "default" })).await;
    let default = key_status(app, &id).await;
    let expires =
        chrono::DateTime::parse_from_rfc3339(default["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.naive_utc() - app.state.now()).num_days();
    assert!(
        (364..=365).contains(&days),
        "default lifetime is one year ({days} days)"
    );
    for (body, field) in [
        (json!({ "name": "x", "never_expires": true }), "expires_in"),
        (json!({ "name": "x", "expires_in": "800d" }), "expires_in"),
        (json!({ "name": "x", "expires_in": "soon" }), "expires_in"),
        (
            json!({ "name": "x", "expires_at": "2001-01-01T00:00:00Z" }),
            "expires_at",
        ),
        (
            json!({ "name": "x", "expires_in": "1d", "expires_at": "2030-01-01T00:00:00Z" }),
            "expires_in",
        ),
        (json!({ "name": "" }), "name"),
        (json!({ "name": "x", "mode": "prod" }), "mode"),
        (json!({ "name": "x", "scopes": ["read:nothing"] }), "scopes"),
        (json!({ "name": "x", "scopes": [] }), "scopes"),
        (
            json!({ "name": "x", "allowed_ips": ["10.0.0.0/33"] }),
            "allowed_ips",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/v1/api-keys"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "VALIDATION_001", "{body}");
        assert_eq!(error["error"]["field"], field, "{body}");
    }
    let (soon_id, _) = app
        .create_key(json!({ "name": "soon", "expires_in": "10d" }))
        .await;
    let expiring: Value = app
        .client
        .get(app.url("/v1/api-keys?expiring_within=30d"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = expiring["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![soon_id.as_str()]);
    assert_eq!(expiring["data"][0]["expiring_soon"], true);
    assert_eq!(key_status(app, &id).await["expiring_soon"], false);
});

both_backends!(
    rolling_keeps_the_old_key_for_the_grace_period_only,
    |app| async move {
        app.login_admin().await;
        let (old_id, old_key) = app.create_key(json!({ "name": "rolled" })).await;
        let rolled = app
            .client
            .post(app.url(&format!("/v1/api-keys/{old_id}/roll")))
            .json(&json!({ "grace_period": "1h" }))
            .send()
            .await
            .unwrap();
        assert_eq!(rolled.status(), StatusCode::CREATED);
        let rolled: Value = rolled.json().await.unwrap();
        let new_key = rolled["data"]["key"].as_str().unwrap().to_owned();
        let new_id = rolled["data"]["id"].as_str().unwrap().to_owned();
        assert_ne!(new_key, old_key);
        assert_eq!(rolled["data"]["rolled_from"], old_id.as_str());
        assert_eq!(rolled["data"]["previous_key"]["rolled_to"], new_id.as_str());
        assert_eq!(
            me_with_key(app, &old_key).await.status(),
            StatusCode::OK,
            "old key works during grace"
        );
        assert_eq!(me_with_key(app, &new_key).await.status(), StatusCode::OK);

        let again = app
            .client
            .post(app.url(&format!("/v1/api-keys/{old_id}/roll")))
            .json(&json!({ "grace_period": "1h" }))
            .send()
            .await
            .unwrap();
        let (status, code) = refusal(again).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::CONFLICT, "RESOURCE_002")
        );
        let keys: Value = app
            .client
            .get(app.url("/v1/api-keys"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            keys["data"].as_array().unwrap().len(),
            2,
            "a repeated roll minted nothing"
        );

        app.clock.advance(chrono::Duration::minutes(61));
        assert_eq!(
            refusal(me_with_key(app, &old_key).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
        assert_eq!(me_with_key(app, &new_key).await.status(), StatusCode::OK);

        let too_long = app
            .client
            .post(app.url(&format!("/v1/api-keys/{new_id}/roll")))
            .json(&json!({ "grace_period": "8d" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(too_long).await,
            (StatusCode::BAD_REQUEST, "VALIDATION_001".into())
        );
        let garbled = app
            .client
            .post(app.url(&format!("/v1/api-keys/{new_id}/roll")))
            .header("content-type", "application/json")
            .body("{grace")
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(garbled).await,
            (StatusCode::BAD_REQUEST, "REQUEST_001".into())
        );
        assert_eq!(
            me_with_key(app, &new_key).await.status(),
            StatusCode::OK,
            "refused rolls change nothing"
        );

        let immediate: Value = app
            .client
            .post(app.url(&format!("/v1/api-keys/{new_id}/roll")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            refusal(me_with_key(app, &new_key).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into()),
            "no grace: the old key stops now"
        );
        assert_eq!(
            me_with_key(app, immediate["data"]["key"].as_str().unwrap())
                .await
                .status(),
            StatusCode::OK
        );
    }
);

both_backends!(restricted_keys_stay_within_their_scopes, |app| async move {
    app.login_admin().await;
    let (_, reader) = app
        .create_key(json!({ "name": "reader", "scopes": ["read:api_keys"] }))
        .await;
    assert!(reader.starts_with("rk_live_"));
    assert_eq!(
        app.get_with_key("/v1/api-keys", &reader).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refusal(app.get_with_key("/v1/users", &reader).await).await,
        (StatusCode::FORBIDDEN, "AUTH_004".into())
    );
    let create = reqwest::Client::new()
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&reader)
        .json(&json!({ "name": "x", "scopes": ["read:api_keys"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(create).await,
        (StatusCode::FORBIDDEN, "AUTH_004".into()),
        "read-only key cannot create"
    );

    let (_, manager) = app
        .create_key(json!({ "name": "manager", "scopes": "read:api_keys write:api_keys" }))
        .await;
    let post = |body: Value| {
        let manager = manager.clone();
        let url = app.url("/v1/api-keys");
        async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(manager)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        refusal(post(json!({ "name": "wider", "scopes": ["read:users"] })).await).await,
        (StatusCode::FORBIDDEN, "AUTH_006".into())
    );
    assert_eq!(
        refusal(post(json!({ "name": "secret" })).await).await,
        (StatusCode::FORBIDDEN, "AUTH_006".into())
    );
    let narrower = post(json!({ "name": "narrower", "scopes": ["read:api_keys"] })).await;
    assert_eq!(narrower.status(), StatusCode::CREATED);

    let (_, test_key) = app
        .create_key(json!({ "name": "test", "mode": "test" }))
        .await;
    let live_from_test = reqwest::Client::new()
        .post(app.url("/v1/api-keys"))
        .bearer_auth(&test_key)
        .json(&json!({ "name": "live" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(live_from_test).await,
        (StatusCode::FORBIDDEN, "AUTH_006".into())
    );
});

both_backends!(
    members_cannot_hold_admin_scopes_or_see_others_keys,
    |app| async move {
        let member_id = app
            .create_user("mel@example.com", "mel password 1", false)
            .await;
        app.login_admin().await;
        let me: Value = app.me().await.json().await.unwrap();
        let admin_id = me["data"]["id"].as_str().unwrap().to_owned();
        let (admin_key_id, _) = app.create_key(json!({ "name": "admin's" })).await;

        // An admin issues a key for the member.
        let issued = app
            .client
            .post(app.url(&format!("/v1/users/{member_id}/api-keys")))
            .json(&json!({ "name": "for mel" }))
            .send()
            .await
            .unwrap();
        assert_eq!(issued.status(), StatusCode::CREATED);
        let issued: Value = issued.json().await.unwrap();
        assert_eq!(issued["data"]["user_id"], member_id.as_str());
        assert_eq!(issued["data"]["issued_by"], admin_id.as_str());
        let member_key = issued["data"]["key"].as_str().unwrap().to_owned();
        let as_member: Value = me_with_key(app, &member_key).await.json().await.unwrap();
        assert_eq!(as_member["data"]["email"], "mel@example.com");
        let listed: Value = app
            .client
            .get(app.url(&format!("/v1/users/{member_id}/api-keys")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        let admin_only = app
            .client
            .post(app.url(&format!("/v1/users/{member_id}/api-keys")))
            .json(&json!({ "name": "x", "scopes": ["write:users"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(admin_only).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );

        // The member sees only their own.
        for path in [
            format!("/v1/api-keys/{admin_key_id}"),
            format!("/v1/users/{admin_id}/api-keys"),
            format!("/v1/users/{admin_id}"),
        ] {
            assert_eq!(
                refusal(app.get_with_key(&path, &member_key).await).await,
                (StatusCode::NOT_FOUND, "RESOURCE_001".into()),
                "{path}"
            );
        }
        let revoke_other = reqwest::Client::new()
            .delete(app.url(&format!("/v1/api-keys/{admin_key_id}")))
            .bearer_auth(&member_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(revoke_other).await,
            (StatusCode::NOT_FOUND, "RESOURCE_001".into())
        );
        let users: Value = app
            .get_with_key("/v1/users", &member_key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            users["data"].as_array().unwrap().len(),
            1,
            "members list only themselves"
        );
        let make_user = reqwest::Client::new()
            .post(app.url("/v1/users"))
            .bearer_auth(&member_key)
            .json(&json!({ "email": "z@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(make_user).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        let audit = app.get_with_key("/v1/audit-events", &member_key).await;
        assert_eq!(
            refusal(audit).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );

        // Admins revoke anyone's key; a disabled owner's keys stop at once.
        let (_, other_member_key) = {
            let issued: Value = app
                .client
                .post(app.url(&format!("/v1/users/{member_id}/api-keys")))
                .json(&json!({ "name": "to be revoked by the admin" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            (
                issued["data"]["id"].as_str().unwrap().to_owned(),
                issued["data"]["key"].as_str().unwrap().to_owned(),
            )
        };
        let other_id = {
            let me: Value = me_with_key(app, &other_member_key)
                .await
                .json()
                .await
                .unwrap();
            me["data"]["authentication"]["key_id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let revoked = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{other_id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            revoked.status(),
            StatusCode::OK,
            "an admin revokes a member's key"
        );
        assert_eq!(
            refusal(me_with_key(app, &other_member_key).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
        let admin_created: Value = app
            .client
            .post(app.url("/v1/users"))
            .json(&json!({ "email": "new@example.com", "role": "member" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(admin_created["data"]["email"], "new@example.com");
        assert_eq!(
            admin_created["data"]["password"].as_str().unwrap().len(),
            20
        );
        let csrf = app.session_csrf().await;
        let disabled = app
            .post_form(
                &format!("/admin/users/{member_id}/disable"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
        assert_eq!(disabled.headers()["location"], "/admin/users");
        let member: Value = app
            .client
            .get(app.url(&format!("/v1/users/{member_id}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(member["data"]["disabled"], true, "{member}");
        assert_eq!(
            refusal(me_with_key(app, &member_key).await).await,
            (StatusCode::UNAUTHORIZED, "AUTH_002".into())
        );
    }
);

both_backends!(
    ip_allowlists_admit_only_listed_addresses,
    |app| async move {
        app.login_admin().await;
        let (id, elsewhere) = app
            .create_key(json!({ "name": "office", "allowed_ips": ["10.0.0.0/8", "2001:db8::/32"] }))
            .await;
        assert_eq!(
            refusal(me_with_key(app, &elsewhere).await).await,
            (StatusCode::FORBIDDEN, "AUTH_005".into())
        );
        let (_, loopback) = app
            .create_key(json!({ "name": "local", "allowed_ips": "127.0.0.0/8" }))
            .await;
        assert_eq!(me_with_key(app, &loopback).await.status(), StatusCode::OK);
        let patched = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{id}")))
            .json(&json!({ "allowed_ips": ["127.0.0.1"], "name": "office (moved)" }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        let patched: Value = patched.json().await.unwrap();
        assert_eq!(patched["data"]["allowed_ips"], json!(["127.0.0.1/32"]));
        assert_eq!(patched["data"]["name"], "office (moved)");
        assert_eq!(
            me_with_key(app, &elsewhere).await.status(),
            StatusCode::OK,
            "the new allowlist applies at once"
        );
        let bad = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{id}")))
            .json(&json!({ "allowed_ips": ["nonsense"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(bad).await,
            (StatusCode::BAD_REQUEST, "VALIDATION_001".into())
        );
    }
);

async fn ipv6_allowlist(backend: crate::helpers::Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.bind = "[::1]:0".into()).await else {
        return;
    };
    app.login_admin().await;
    let (_, v6_only) = app
        .create_key(json!({ "name": "v6", "allowed_ips": ["::1/128"] }))
        .await;
    let (_, v4_only) = app
        .create_key(json!({ "name": "v4", "allowed_ips": ["127.0.0.1"] }))
        .await;
    let (_, block) = app
        .create_key(json!({ "name": "v6 block", "allowed_ips": ["::/64"] }))
        .await;
    assert!(app.address.starts_with("http://[::1]"));
    assert_eq!(me_with_key(&app, &v6_only).await.status(), StatusCode::OK);
    assert_eq!(me_with_key(&app, &block).await.status(), StatusCode::OK);
    assert_eq!(
        refusal(me_with_key(&app, &v4_only).await).await,
        (StatusCode::FORBIDDEN, "AUTH_005".into())
    );
    app.stop().await;
}

#[actix_web::test]
async fn ipv6_allowlists_sqlite() {
    ipv6_allowlist(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn ipv6_allowlists_postgres() {
    ipv6_allowlist(crate::helpers::Backend::Postgres).await;
}

both_backends!(last_used_appears_after_a_flush, |app| async move {
    app.login_admin().await;
    let (id, key) = app.create_key(json!({ "name": "used" })).await;
    assert_eq!(key_status(app, &id).await["last_used_at"], Value::Null);
    let before = app.state.db_calls();
    for _ in 0..3 {
        assert_eq!(me_with_key(app, &key).await.status(), StatusCode::OK);
    }
    assert!(
        app.state.db_calls() - before <= 1,
        "one lookup at most; uses are not written per request"
    );
    assert_eq!(
        key_status(app, &id).await["last_used_at"],
        Value::Null,
        "not written yet"
    );
    let flushed = gatehouse::api_keys::flush_usage(&app.state).await.unwrap();
    assert_eq!(flushed, 1);
    let status = key_status(app, &id).await;
    assert!(status["last_used_at"].is_string());
    assert_eq!(status["last_used_ip"], "127.0.0.1");
});

both_backends!(lists_page_with_cursors, |app| async move {
    app.login_admin().await;
    for i in 0..3 {
        app.create_key(json!({ "name": format!("k{i}") })).await;
        app.clock.advance(chrono::Duration::seconds(1));
    }
    let first: Value = app
        .client
        .get(app.url("/v1/api-keys?limit=2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["data"][0]["name"], "k2", "newest first");
    assert_eq!(first["pagination"]["has_more"], true);
    let cursor = first["pagination"]["next_cursor"].as_str().unwrap();
    let second: Value = app
        .client
        .get(app.url(&format!("/v1/api-keys?limit=2&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert_eq!(second["data"][0]["name"], "k0");
    assert_eq!(second["pagination"]["has_more"], false);
    for bad in [
        "limit=0",
        "limit=101",
        "cursor=garbage",
        "status=gone",
        "bogus=1",
    ] {
        let response = app
            .client
            .get(app.url(&format!("/v1/api-keys?{bad}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            refusal(response).await,
            (StatusCode::BAD_REQUEST, "VALIDATION_001".into()),
            "{bad}"
        );
    }
});

both_backends!(key_events_are_audited_without_secrets, |app| async move {
    app.login_admin().await;
    let (id, key) = app
        .create_key(json!({ "name": "audited", "allowed_ips": ["10.0.0.0/8"] }))
        .await;
    let _ = me_with_key(app, &key).await; // refused: IP
    app.client
        .patch(app.url(&format!("/v1/api-keys/{id}")))
        .json(&json!({ "name": "renamed" }))
        .send()
        .await
        .unwrap();
    app.client
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    let _ = me_with_key(app, &key).await; // refused: revoked
    // Refusals are written off the request path: await those writes.
    app.state.background.settled().await;
    let events: Value = app
        .client
        .get(app.url(&format!("/v1/audit-events?key_id={id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<String> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "api_key.created",
        "api_key.updated",
        "api_key.revoked",
        "api_key.refused.ip_not_allowed",
        "api_key.refused.revoked",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
    let by_action: Value = app
        .client
        .get(app.url("/v1/audit-events?action=api_key.created"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        by_action["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] == "api_key.created")
    );
    let all = app
        .client
        .get(app.url("/v1/audit-events"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!all.contains(&key), "no key in the audit log");
    assert!(!all.contains(&key[8..]), "not even its random part");
});

both_backends!(no_key_or_digest_appears_in_the_logs, |app| async move {
    app.login_admin().await;
    let (id, key) = app
        .create_key(json!({ "name": "quiet", "allowed_ips": ["10.0.0.0/8"] }))
        .await;
    let _ = me_with_key(app, &key).await;
    let _ = reqwest::Client::new()
        .get(app.url(&format!("/v1/users/me?api_key={key}")))
        .send()
        .await
        .unwrap();
    app.client
        .delete(app.url(&format!("/v1/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    let _ = me_with_key(app, &key).await;
    let digest = app
        .state
        .digest_pepper
        .digest_secret(&gatehouse::secrets::PlainSecret::parse(&key[..8], &key).unwrap());
    let logs = captured_logs();
    assert!(
        logs.iter().any(|l| l.contains(&id)),
        "the refusals were logged by key id"
    );
    for line in &logs {
        assert!(
            !line.contains(&key[8..]),
            "a key leaked into the log: {line}"
        );
        assert!(
            !line.contains(&digest),
            "a digest leaked into the log: {line}"
        );
    }
});

async fn rate_limited(backend: crate::helpers::Backend) {
    let Some(app) = spawn_app_with(backend, |s| {
        s.keys.rate_limit_per_minute = 5;
        s.keys.sensitive_rate_limit_per_minute = 3;
    })
    .await
    else {
        return;
    };
    app.login_admin().await;
    let (_, key) = app.create_key(json!({ "name": "busy" })).await;
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let response = me_with_key(&app, &key).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "5");
        assert!(
            response.headers()["x-ratelimit-reset"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 1_700_000_000
        );
        remaining.push(
            response.headers()["x-ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    let limited = me_with_key(&app, &key).await;
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(
        refusal(limited).await,
        (StatusCode::TOO_MANY_REQUESTS, "RATE_001".into())
    );

    // Another credential has its own allowance; a per-key limit lowers this one's, and can
    // never rise above the server's.
    let (_, frugal) = app
        .create_key(json!({ "name": "frugal", "rate_limit_per_minute": 2 }))
        .await;
    let response = me_with_key(&app, &frugal).await;
    assert_eq!(response.headers()["x-ratelimit-limit"], "2");
    let above = app
        .client
        .post(app.url("/v1/api-keys"))
        .json(&json!({ "name": "roomy", "rate_limit_per_minute": 50 }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(above).await,
        (StatusCode::BAD_REQUEST, "VALIDATION_001".into())
    );

    // Sensitive endpoints (allowance 3): the session already made three key requests
    // ("busy", "frugal", the refused "roomy"); no fourth this minute.
    let fourth = app
        .client
        .post(app.url("/v1/api-keys"))
        .json(&json!({ "name": "fourth" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(fourth).await,
        (StatusCode::TOO_MANY_REQUESTS, "RATE_001".into())
    );

    // Without credentials, the address is limited.
    let anonymous = reqwest::Client::new();
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        last = anonymous
            .get(app.url("/v1/users/me"))
            .send()
            .await
            .unwrap()
            .status();
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
}

#[actix_web::test]
async fn rate_limits_answer_429_with_headers_sqlite() {
    rate_limited(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn rate_limits_answer_429_with_headers_postgres() {
    rate_limited(crate::helpers::Backend::Postgres).await;
}

// Behind a trusted reverse proxy the client is the address it forwards; a client's own
// `X-Forwarded-For` is never believed.
#[actix_web::test]
async fn allowlists_see_the_client_behind_a_trusted_proxy() {
    async fn me_from(
        app: &crate::helpers::TestApp,
        key: &str,
        forwarded: Option<&str>,
    ) -> StatusCode {
        let mut request = reqwest::Client::new()
            .get(app.url("/v1/users/me"))
            .bearer_auth(key);
        if let Some(f) = forwarded {
            request = request.header("X-Forwarded-For", f);
        }
        request.send().await.unwrap().status()
    }
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    app.login_admin().await;
    let (_, key) = app
        .create_key(json!({"name": "office", "allowed_ips": ["203.0.113.0/24"]}))
        .await;
    assert_eq!(
        me_from(&app, &key, Some("203.0.113.7")).await,
        StatusCode::OK
    );
    assert_eq!(
        me_from(&app, &key, None).await,
        StatusCode::FORBIDDEN,
        "the proxy itself"
    );
    assert_eq!(
        me_from(&app, &key, Some("203.0.113.7, 198.51.100.9")).await,
        StatusCode::FORBIDDEN,
        "the hop the proxy saw is 198.51.100.9, whatever the client wrote before it"
    );
    app.stop().await;

    // Without trusted proxies the header counts for nothing.
    let Some(plain) = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    plain.login_admin().await;
    let (_, key) = plain
        .create_key(json!({"name": "office", "allowed_ips": ["203.0.113.0/24"]}))
        .await;
    assert_eq!(
        me_from(&plain, &key, Some("203.0.113.7")).await,
        StatusCode::FORBIDDEN
    );
    plain.stop().await;
}
