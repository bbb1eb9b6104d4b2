//! The workspace boundary, tried as an attacker would: a credential bound to a workspace reaches
//! that workspace's things only (not the user's account nor their personal apps), an app's
//! control follows its workspace's roles and ends with membership, an install administrator's
//! oversight needs its scope, a private app exchanges its own workspace's keys only, a key's
//! changed limits end the tokens exchanged under the old ones, and a roll is an issuance.
//! Every attack is followed by a look at the effect: the row did not change.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::workspaces::{call, expect};

mod apps;
mod keys;
mod membership;
mod migration;

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

const API_KEY: &str = "urn:gatehouse:params:oauth:token-type:api_key";

/// A signed-in browser of a new user (an administrator of the install with `admin`).
async fn user(app: &TestApp, email: &str, admin: bool) -> (reqwest::Client, String) {
    let id = app.create_user(email, "boundary password 1", admin).await;
    let (browser, response) = app.login_in_new_browser(email, "boundary password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    (browser, id)
}

/// A shared workspace `name` owned by `owner`'s browser; its id.
async fn workspace(app: &TestApp, owner: &reqwest::Client, name: &str) -> String {
    crate::workspaces::create_workspace(owner, app, json!({ "name": name }))
        .await
        .0
}

/// Register an app in `owner`'s browser (`body` adds to a confidential code-flow app); its id
/// and secret.
async fn app_of(
    app: &TestApp,
    owner: &reqwest::Client,
    bearer: Option<&str>,
    body: Value,
) -> (String, String) {
    let mut form = json!({
        "name": "Member's app",
        "redirect_uris": ["https://app.example.com/cb"],
        "client_type": "confidential",
        "scopes": ["read:users"],
    });
    for (k, v) in body.as_object().unwrap() {
        form[k] = v.clone();
    }
    let created = expect(
        owner,
        app,
        ("POST", "/v1/clients"),
        bearer,
        Some(form),
        StatusCode::CREATED,
    )
    .await;
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The app as its controller sees it (through `http`'s session).
async fn app_row(app: &TestApp, http: &reqwest::Client, id: &str) -> Value {
    expect(
        http,
        app,
        ("GET", &format!("/v1/clients/{id}")),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

/// Every way of taking over an app, tried with `bearer` through `http`: each answers
/// `status`; the app's redirect URIs and secret are what they were (checked by the caller).
async fn try_takeover(
    app: &TestApp,
    http: &reqwest::Client,
    bearer: Option<&str>,
    id: &str,
    status: StatusCode,
) {
    let one = format!("/v1/clients/{id}");
    for (route, body) in [
        (("GET", one.as_str()), None),
        (
            ("PATCH", one.as_str()),
            Some(json!({ "redirect_uris": ["https://evil.example.net/cb"] })),
        ),
        (("PATCH", one.as_str()), Some(json!({ "disabled": true }))),
        (("POST", &format!("{one}/secret")), Some(json!({}))),
        (("DELETE", one.as_str()), None),
    ] {
        let response = call(http, app, route.0, route.1, bearer, body).await;
        assert_eq!(
            response.status(),
            status,
            "{} {}: {}",
            route.0,
            route.1,
            response.text().await.unwrap()
        );
    }
}

/// The app still answers its secret at the token endpoint (client_credentials): not rotated.
async fn secret_still_works(app: &TestApp, id: &str, secret: &str) -> StatusCode {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

/// A key holder's own exchange of `key`: the access token.
async fn own_exchange(app: &TestApp, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", key),
            ("subject_token_type", API_KEY),
        ])
        .send()
        .await
        .unwrap()
}

async fn token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}
