//! A key's life: revocation and expiry end it at once, expiry is bounded by policy, rolling keeps
//! the old key for the grace period only, last use appears after a flush, and lists page with
//! cursors.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;

use super::{key_status, me_with_key, refusal};

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
