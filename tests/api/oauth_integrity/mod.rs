//! Attacks on the integrity of grants: codes and refresh tokens presented by a client they were
//! not issued to, silent approvals of public clients, consent forms replayed with other
//! parameters or too late, `prompt`, the lifetime limits of refresh families, first-party
//! grants the user can see and end, and the audit of revocations and machine tokens.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, TestClient, exchange};

mod consent;
mod database;
mod lifetimes;
mod other_clients;
mod races;

async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    exchange(app, client, &form).await
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    exchange(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

fn invalid_grant() -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, "invalid_grant".into())
}

fn field(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().unwrap_or_default().to_owned()
}

/// `/v1` with the signed-in session.
async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let (status, body) = api(
        app,
        Method::GET,
        &format!("/v1/audit-events?action={action}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn me_status(app: &TestApp, access: &str) -> StatusCode {
    app.get_with_key("/v1/users/me", access).await.status()
}
