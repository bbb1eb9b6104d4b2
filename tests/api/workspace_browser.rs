//! Workspaces in real headless Chromium: create a workspace where only admins issue keys,
//! invite a member by link, the member joins, the admin issues the member's key and revokes
//! it, and the consent page asks which workspace an app acts in.

use fantoccini::{Client, Locator};
use serde_json::Value;

use crate::browser::{
    Browser, VERIFIER, approve_and_land, authorize_url, click, fill, loopback_app, submit_login,
};
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, TestApp, spawn_app};

async fn text_of(c: &Client, id: &str) -> String {
    c.wait()
        .for_element(Locator::Id(id))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn sign_in_as(c: &Client, app: &TestApp, email: &str, password: &str) {
    c.delete_all_cookies().await.unwrap();
    c.goto(&app.url("/login")).await.unwrap();
    submit_login(c, email, password).await;
    c.wait().for_element(Locator::Id("welcome")).await.unwrap();
}

#[actix_web::test]
async fn create_a_workspace_invite_issue_a_members_key_and_pick_it_on_consent_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    let mia_id = app
        .create_user("mia@example.com", "mia password 1", false)
        .await;

    // The administrator creates a workspace where only admins issue keys.
    sign_in_as(c, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.find(Locator::LinkText("Workspaces"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("workspaces"))
        .await
        .unwrap();
    fill(c, "workspace-name", "Acme Platform").await;
    click(c, "admins-issue-keys").await;
    click(c, "create-workspace").await;
    assert!(text_of(c, "notice").await.contains("created"));
    assert_eq!(text_of(c, "workspace-title").await, "Acme Platform");
    assert_eq!(text_of(c, "key-issuance").await, "admins");
    let acme = c.current_url().await.unwrap().path()["/workspaces/".len()..].to_owned();

    // Invite Mia: the link is shown once.
    fill(c, "invite-email", "mia@example.com").await;
    click(c, "send-invite").await;
    let link = text_of(c, "invite-link").await;
    assert!(link.contains("/invitations/wsi_"), "{link}");
    browser.screenshot("workspace-invited").await;

    // Mia follows it: sign-in first, then the invitation, then the workspace.
    c.delete_all_cookies().await.unwrap();
    c.goto(&link).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();
    submit_login(c, "mia@example.com", "mia password 1").await;
    assert_eq!(text_of(c, "invited-role").await, "member");
    click(c, "accept").await;
    assert!(text_of(c, "notice").await.contains("joined"));
    assert_eq!(text_of(c, "my-role").await, "member");
    // A member issues no keys here and sees nobody's.
    assert!(c.find(Locator::Id("issue-key-form")).await.is_err());
    assert!(c.find(Locator::Id("member-keys")).await.is_err());

    // The administrator issues Mia's key from the workspace page.
    sign_in_as(c, &app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.goto(&app.url(&format!("/workspaces/{acme}")))
        .await
        .unwrap();
    let members = text_of(c, "members").await;
    assert!(members.contains("mia@example.com"), "{members}");
    c.find(Locator::Css(&format!(
        "#issue-key-member option[value='{mia_id}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    fill(c, "issue-key-name", "Mia's deploy key").await;
    click(c, "issue-key").await;
    let key = text_of(c, "new-key").await;
    assert!(key.starts_with("sk_live_"), "{key}");
    browser.screenshot("workspace-member-key").await;
    let me: Value = app
        .get_with_key("/v1/users/me", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["data"]["id"], mia_id.as_str(), "the key is Mia's");
    let listed: Value = app
        .get_with_key("/v1/workspaces", &key)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["data"][0]["id"],
        acme.as_str(),
        "…acting in Acme only"
    );
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1));

    // Back on the workspace page, the admin sees it and revokes it: at once.
    click(c, "done").await;
    let keys = text_of(c, "member-keys").await;
    assert!(
        keys.contains("Mia's deploy key") && keys.contains("mia@example.com"),
        "{keys}"
    );
    c.find(Locator::Css("button.revoke-member-key"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert!(text_of(c, "notice").await.contains("Revoked"));
    assert_eq!(
        app.get_with_key("/v1/users/me", &key).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    // An app: the administrator, in two workspaces now, picks Acme on the consent page.
    let client = loopback_app(&app, "Orders app", "read:users", Default::default()).await;
    let redirect = app.url("/healthz");
    c.goto(&authorize_url(&app, &client.id, "read:users", "s1", ""))
        .await
        .unwrap();
    let choice = text_of(c, "workspace-choice").await;
    assert!(
        choice.contains("Personal") && choice.contains("Acme Platform"),
        "{choice}"
    );
    c.find(Locator::Css(&format!(
        "input[name='chosen_workspace'][value='{acme}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    browser.screenshot("consent-workspace").await;
    let query = approve_and_land(c, "/healthz").await;
    let tokens: Value = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", query["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
            ("client_id", client.id.as_str()),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().expect("an access token");
    let claims = crate::helpers::jwt_claims(access);
    assert_eq!(claims["workspace"]["id"], acme.as_str());
    assert_eq!(claims["workspace"]["slug"], "acme-platform");
    assert_eq!(claims["workspace"]["role"], "owner");

    browser.close().await;
    app.stop().await;
}
