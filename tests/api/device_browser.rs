//! The device flow's page in a real headless Chromium: a CLI starts, the user follows the
//! verification link, signs in, lands back on the code, continues, sees the app and the scopes,
//! allows — and the CLI's next poll gets its tokens. Then a code typed by hand, in lower case
//! and without the dash, denied.

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{Browser, click, fill, submit_login};
use crate::device::{DEVICE, cli_app, codes, poll};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, spawn_app_with};

#[actix_web::test]
async fn approve_a_device_in_chromium_and_the_cli_gets_its_tokens() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app_with(Backend::Sqlite, crate::oidc::own_issuer)
        .await
        .expect("SQLite is always available");
    app.login_admin().await;
    let cli = cli_app(&app, "read:users", &[DEVICE, "refresh_token"]).await;
    let answer = codes(&app, &cli, "read:users").await;
    let c = &browser.client;

    // The link the CLI shows (or its QR code): sign in first, then back to the code.
    c.goto(answer["verification_uri_complete"].as_str().unwrap())
        .await
        .unwrap();
    submit_login(c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let field = c
        .wait()
        .for_element(Locator::Id("user-code"))
        .await
        .unwrap();
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        answer["user_code"].as_str(),
        "the code is filled in"
    );
    click(c, "continue").await;
    let title = c
        .wait()
        .for_element(Locator::Id("consent-title"))
        .await
        .unwrap();
    assert!(title.text().await.unwrap().contains("Deploy CLI"));
    let scopes = c.find(Locator::Id("new-scopes")).await.unwrap();
    assert!(scopes.text().await.unwrap().contains("read:users"));
    browser.screenshot("device-approve").await;
    click(c, "approve").await;
    let done = c
        .wait()
        .for_element(Locator::Id("device-done"))
        .await
        .unwrap();
    assert_eq!(done.text().await.unwrap(), "Device connected");
    let tokens: Value = poll(&app, &cli, answer["device_code"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"]
        .as_str()
        .expect("tokens after approval");
    assert_eq!(
        app.get_with_key("/v1/users/me", access).await.status(),
        reqwest::StatusCode::OK
    );

    // Typed by hand: lower case, no dash; denied.
    let second = codes(&app, &cli, "read:users").await;
    c.goto(&app.url("/device")).await.unwrap();
    let typed = second["user_code"]
        .as_str()
        .unwrap()
        .replace('-', "")
        .to_lowercase();
    fill(c, "user-code", &typed).await;
    click(c, "continue").await;
    c.wait()
        .for_element(Locator::Id("consent-title"))
        .await
        .unwrap();
    click(c, "deny").await;
    let done = c
        .wait()
        .for_element(Locator::Id("device-done"))
        .await
        .unwrap();
    assert_eq!(done.text().await.unwrap(), "Device not connected");
    let refused: Value = poll(&app, &cli, second["device_code"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(refused["error"], "access_denied");

    // A wrong code: the form again, with the reason.
    c.goto(&app.url("/device")).await.unwrap();
    fill(c, "user-code", "BCDF-GHJK").await;
    click(c, "continue").await;
    let error = c
        .wait()
        .for_element(Locator::Id("device-error"))
        .await
        .unwrap();
    assert!(error.text().await.unwrap().contains("not valid"));
    browser.close().await;
    app.stop().await;
}
