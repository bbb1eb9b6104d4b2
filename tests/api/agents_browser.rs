//! An MCP client's whole journey in a real headless Chromium: the API's 401 → protected-resource
//! metadata → authorization-server metadata → dynamic registration → sign-in and consent with
//! PKCE and `resource` → token → the API; then the same with a Client ID Metadata Document
//! served by the test (the consent page shows its host and warns that it only returns to
//! localhost).

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::browser::{Browser, approve_and_land, sign_in_to_consent};
use crate::browser::{CHALLENGE, VERIFIER};
use crate::helpers::{ADMIN_EMAIL, Backend, spawn_app_with};

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Trade the code as a public client and call `/v1/users/me` with the token.
async fn redeem_and_call(
    app: &crate::helpers::TestApp,
    client_id: &str,
    redirect: &str,
    code: &str,
) {
    let tokens: Value = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().expect("an access token");
    let me = reqwest::Client::new()
        .get(app.url("/v1/users/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["data"]["email"], ADMIN_EMAIL);
}

#[actix_web::test]
async fn an_mcp_client_registers_itself_and_a_metadata_document_app_signs_in_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app_with(Backend::Sqlite, |s| {
        crate::oidc::own_issuer(s);
        s.registration.mode = gatehouse::config::RegistrationMode::Open;
        s.cimd = gatehouse::config::CimdPolicy::All;
        s.cimd_loopback_http = true;
    })
    .await
    .expect("SQLite is always available");
    let c = &browser.client;

    // Discovery, as the client does it.
    let refused = reqwest::get(app.url("/v1/users/me")).await.unwrap();
    let challenge = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let metadata_url = challenge
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("resource_metadata in the challenge")
        .to_owned();
    let resource: Value = reqwest::get(&metadata_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let server_url = format!(
        "{}/.well-known/oauth-authorization-server",
        resource["authorization_servers"][0].as_str().unwrap()
    );
    let server: Value = reqwest::get(&server_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    // Dynamic registration: a loopback redirect (any port), as native MCP clients use.
    let registered: Value = reqwest::Client::new()
        .post(server["registration_endpoint"].as_str().unwrap())
        .json(&json!({
            "client_name": "Desk Agent",
            "redirect_uris": ["http://127.0.0.1/healthz"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "read:users",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = registered["client_id"].as_str().unwrap().to_owned();
    let redirect = app.url("/healthz");
    let authorize = |client_id: &str, redirect: &str| {
        format!(
            "{}?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&state=st&code_challenge={CHALLENGE}&code_challenge_method=S256&resource={}",
            server["authorization_endpoint"].as_str().unwrap(),
            encode(client_id),
            encode(redirect),
            encode(resource["resource"].as_str().unwrap()),
        )
    };
    sign_in_to_consent(c, &authorize(&client_id, &redirect)).await;
    let notice = c
        .find(Locator::Id("consent-self-registered"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("registered itself"), "{notice}");
    let only_for = c
        .find(Locator::Id("consent-resource"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        only_for.contains(resource["resource"].as_str().unwrap()),
        "{only_for}"
    );
    browser.screenshot("agent-consent").await;
    let query = approve_and_land(c, "/healthz").await;
    assert_eq!(query["state"], "st");
    assert_eq!(query["iss"], app.state.settings.issuer.as_str());
    redeem_and_call(&app, &client_id, &redirect, &query["code"]).await;

    // A metadata document served by the test: the host first, the localhost warning.
    let docs = crate::agents::document_server().await;
    let document_id = docs.url("/local.json");
    let redirect = app.url("/callback");
    c.goto(&authorize(&document_id, &redirect)).await.unwrap();
    let host = c
        .wait()
        .for_element(Locator::Id("consent-host"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(host, "127.0.0.1");
    let warning = c
        .find(Locator::Id("consent-localhost"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(warning.contains("localhost"), "{warning}");
    let claimed = c
        .find(Locator::Id("consent-claimed-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        claimed.contains("Research Agent") && claimed.contains("claimed by 127.0.0.1"),
        "{claimed}"
    );
    browser.screenshot("document-consent").await;
    let query = approve_and_land(c, "/callback").await;
    redeem_and_call(&app, &document_id, &redirect, &query["code"]).await;
    assert_eq!(docs.hits("/local.json"), 1);

    docs.stop().await;
    browser.close().await;
    app.stop().await;
}
