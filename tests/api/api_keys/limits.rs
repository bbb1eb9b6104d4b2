//! What a key may reach: a restricted key its scopes, a member no admin scope nor others' keys,
//! an allowlisted key only its addresses (IPv6 too, and the client behind a trusted proxy), and
//! every key its rate limit.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::spawn_app_with;

use super::{me_with_key, refusal};

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
