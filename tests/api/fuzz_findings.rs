//! What fuzzing the API from its OpenAPI document (`.ci/schemathesis.sh`) found, each pinned
//! here against the old behaviour: bodies that were silently read as "nothing asked" and an
//! error answered outside the envelope.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;

async fn new_app(app: &TestApp) -> String {
    let response = app
        .client
        .post(app.url("/v1/clients"))
        .json(&json!({
            "name": "Orders app",
            "redirect_uris": ["https://orders.example.com/callback"],
            "scopes": ["read:users"],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["data"]["client_id"].as_str().unwrap().to_owned()
}

async fn rotate(app: &TestApp, client: &str, body: &'static str) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/v1/clients/{client}/secret")))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

both_backends!(
    a_secret_rotation_whose_body_does_not_parse_is_refused_not_read_as_no_overlap,
    |app| async move {
        app.login_admin().await;
        let client = new_app(app).await;
        // A misspelt field, and text that is not JSON: once silently "no grace period", so the
        // old secret stopped working at once.
        for (body, code) in [
            (r#"{"grace_perod": "7d"}"#, "VALIDATION_001"),
            ("grace_period=7d", "REQUEST_001"),
        ] {
            let (status, answer) = rotate(app, &client, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(answer["error"]["code"], code, "{body}");
        }
        let (status, answer) = rotate(app, &client, "{\"grace_period\": \"1h\"}").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            answer["data"]["previous_secret_expires_at"].is_string(),
            "{answer}"
        );
        // No body, or `null`, is no overlap.
        for body in ["", "null"] {
            let (status, answer) = rotate(app, &client, body).await;
            assert_eq!(status, StatusCode::OK, "{body:?}: {answer}");
            assert!(answer["data"]["previous_secret_expires_at"].is_null());
        }
    }
);

both_backends!(
    an_oversized_optional_body_is_refused_in_the_envelope,
    |app| async move {
        app.login_admin().await;
        let (key_id, _) = app.create_key(json!({ "name": "rolled" })).await;
        let client = new_app(app).await;
        let padding = " ".repeat(128 * 1024);
        for path in [
            format!("/v1/api-keys/{key_id}/roll"),
            format!("/v1/clients/{client}/secret"),
        ] {
            let response = app
                .client
                .post(app.url(&path))
                .header("content-type", "application/json")
                .body(format!("{{\"grace_period\": 0}}{padding}"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "application/json",
                "{path}"
            );
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "REQUEST_002", "{path}: {body}");
        }
    }
);

both_backends!(
    an_oauth_parameter_given_as_json_that_is_not_text_is_refused,
    |app| async move {
        app.login_admin().await;
        let client = crate::integrity::app_with(app, "read:users write:profile", &[]).await;
        // A scope as an array was ignored: the token then carried every scope of the client.
        let response = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .json(&json!({ "grant_type": "client_credentials", "scope": ["read:users"] }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("scope")
        );
        // Text (and `null` for absent) is read as before; unknown members are ignored.
        let response = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, client.secret.as_deref())
            .json(&json!({
                "grant_type": "client_credentials",
                "scope": "read:users",
                "resource": null,
                "x_custom": {"ignored": true},
            }))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["scope"], "read:users", "{body}");
    }
);
