//! OpenID Connect in a real headless Chromium: sign-in → consent for the OpenID scopes →
//! back to the app with a code that brings an ID token; RP-initiated sign-out with an
//! `id_token_hint` (at once) and without one (the confirmation page first).

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::Value;

use crate::browser::{
    Browser, VERIFIER, approve_and_land, authorize_url, click, landed_on, loopback_app,
    sign_in_to_consent, submit_login,
};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, spawn_app};

#[actix_web::test]
async fn sign_in_with_openid_then_sign_out_with_and_without_confirmation_in_chromium() {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{LogoutSettings, NewClient};
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    // The app's pages are our own /healthz (callback) and /readyz (after sign-out).
    let after = format!("{}/readyz", app.address);
    let logout = LogoutSettings {
        post_logout_redirect_uris: vec![RedirectUri::parse(&after).unwrap()],
        ..Default::default()
    };
    let more = NewClient {
        logout,
        ..Default::default()
    };
    let client = loopback_app(&app, "Sign-in app", "openid profile email", more).await;
    let url = authorize_url(
        &app,
        &client.id,
        "openid profile email",
        "st",
        "&nonce=n0nce",
    );
    sign_in_to_consent(c, &url).await;
    let redirect = app.url("/healthz");
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let scopes = c
        .wait()
        .for_element(Locator::Id("new-scopes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for words in [
        "Know who you are",
        "See your name",
        "See your email address",
    ] {
        assert!(
            scopes.contains(words),
            "the consent page says {words:?}: {scopes}"
        );
    }
    browser.screenshot("oidc-consent").await;
    let query = approve_and_land(c, "/healthz").await;
    assert_eq!(query["state"], "st");
    let tokens: Value = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", VERIFIER),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id_token = tokens["id_token"].as_str().expect("an ID token").to_owned();
    assert_eq!(crate::helpers::jwt_claims(&id_token)["nonce"], "n0nce");

    // With the hint: signed out at once, back to the app with its state.
    c.goto(&app.url(&format!(
        "/oauth/logout?id_token_hint={id_token}&post_logout_redirect_uri={}&state=bye",
        encode(&after)
    )))
    .await
    .unwrap();
    let query = landed_on(c, "/readyz").await;
    assert_eq!(query["state"], "bye");
    c.goto(&app.url("/account")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();

    // Signed in again, without a hint: the confirmation page, then back to the app.
    submit_login(c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    landed_on(c, "/account").await;
    c.goto(&app.url(&format!(
        "/oauth/logout?client_id={}&post_logout_redirect_uri={}&state=again",
        client.id,
        encode(&after)
    )))
    .await
    .unwrap();
    let title = c
        .wait()
        .for_element(Locator::Id("logout-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(title.contains("Sign out"), "{title}");
    browser.screenshot("oidc-logout-confirm").await;
    click(c, "confirm-logout").await;
    let query = landed_on(c, "/readyz").await;
    assert_eq!(query["state"], "again");
    // The session is gone.
    c.goto(&app.url("/account")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );

    browser.close().await;
    app.stop().await;
}
