//! Workspaces: invitations, roles, who issues keys, what a workspace admin reaches (their
//! workspace's keys, members and events, nothing of another's), what leaving costs (keys and
//! grants end at once), and the workspace an app's authorization names (consent page choice,
//! the `workspace` claim in tokens and introspection).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{REDIRECT, exchange, query_of};

mod apps;
mod keys;
mod membership;

/// A signed-in browser of a new member user.
async fn member(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let id = app.create_user(email, "member password 1", false).await;
    let (browser, response) = app.login_in_new_browser(email, "member password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    (browser, id)
}

pub(crate) async fn call(
    http: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = http.request(method.parse().unwrap(), app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `call` expecting `status`; the answer's `data`.
pub(crate) async fn expect(
    http: &reqwest::Client,
    app: &TestApp,
    (method, path): (&str, &str),
    bearer: Option<&str>,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let response = call(http, app, method, path, bearer, body).await;
    let got = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer["data"].clone()
}

pub(crate) async fn create_workspace(
    http: &reqwest::Client,
    app: &TestApp,
    body: Value,
) -> (String, String) {
    let ws = expect(
        http,
        app,
        ("POST", "/v1/workspaces"),
        None,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(ws["role"], "owner");
    (
        ws["id"].as_str().unwrap().to_owned(),
        ws["slug"].as_str().unwrap().to_owned(),
    )
}

/// Invite `email` with `role` and accept as `invitee`.
pub(crate) async fn join(
    app: &TestApp,
    inviter: &reqwest::Client,
    invitee: &reqwest::Client,
    workspace: &str,
    email: &str,
    role: &str,
) {
    let invited = expect(
        inviter,
        app,
        ("POST", &format!("/v1/workspaces/{workspace}/invitations")),
        None,
        Some(json!({ "email": email, "role": role })),
        StatusCode::CREATED,
    )
    .await;
    let token = invited["token"].as_str().unwrap();
    let joined = expect(
        invitee,
        app,
        ("POST", "/v1/invitations/accept"),
        None,
        Some(json!({ "token": token })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(joined["role"], role);
}

async fn new_key(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (String, String) {
    let created = expect(
        http,
        app,
        ("POST", path),
        bearer,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

/// Through the consent page, picking `chosen` (a workspace id) if it offers a choice: the
/// redirect's query.
async fn consent_in(
    app: &TestApp,
    url: &str,
    chosen: Option<&str>,
) -> (bool, std::collections::HashMap<String, String>) {
    let response = app.get(url).await;
    if response.status() == StatusCode::SEE_OTHER {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        return (false, query_of(&location));
    }
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let form = &page[page.find("id=\"consent-form\"").unwrap()..];
    let offered = form.contains("id=\"workspace-choice\"");
    let mut fields: Vec<(String, String)> = [
        "csrf_token",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "nonce",
        "workspace",
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .collect();
    fields.push(("decision".into(), "approve".into()));
    if let Some(chosen) = chosen {
        assert!(
            form.contains(&format!("value=\"{chosen}\"")),
            "{chosen} offered"
        );
        fields.push(("chosen_workspace".into(), chosen.into()));
    }
    let decided = app
        .client
        .post(app.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        decided.status(),
        StatusCode::SEE_OTHER,
        "{}",
        decided.text().await.unwrap()
    );
    let location = decided.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT));
    (offered, query_of(&location))
}

async fn token_for_code(app: &TestApp, client: &crate::oauth::TestClient, code: &str) -> Value {
    let tokens: Value = exchange(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    tokens
}
