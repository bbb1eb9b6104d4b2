//! Presenting a key: a new key is shown once and works in all three header styles; malformed,
//! wrong-scheme, URL-borne and bad-checksum credentials are refused; and no key or digest
//! reaches the audit events or the logs.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, captured_logs};

use super::{key_status, me_with_key, refusal};

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
