//! Device authorization (RFC 8628): a CLI asks for codes, the signed-in user enters the user
//! code on `/device` and decides, the CLI polls. Pending, too fast, denied, expired, spent,
//! another client's code, wrong or guessed user codes, forged forms and scopes the user may
//! not grant are each tried.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{TestClient, oauth_error};

pub(crate) const DEVICE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public app (a CLI) allowed the device grant and refresh tokens, with these scopes.
pub(crate) async fn cli_app(app: &TestApp, scopes: &str, grants: &[&str]) -> TestClient {
    use gatehouse::clients::{ClientType, NewClient};
    let me: Value = app.me().await.json().await.unwrap();
    let new = NewClient {
        name: "Deploy CLI".into(),
        owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
        client_type: ClientType::Public,
        scopes: gatehouse::scopes::ScopeSet::parse(scopes).unwrap(),
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        ..Default::default()
    };
    let client = crate::oauth::create_client(app, new).await;
    TestClient {
        id: client.id,
        secret: None,
    }
}

pub(crate) async fn start(app: &TestApp, client: &TestClient, scope: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/device_authorization"))
        .form(&[("client_id", client.id.as_str()), ("scope", scope)])
        .send()
        .await
        .unwrap()
}

pub(crate) async fn codes(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    let response = start(app, client, scope).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

pub(crate) async fn poll(
    app: &TestApp,
    client: &TestClient,
    device_code: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", DEVICE),
            ("device_code", device_code),
            ("client_id", client.id.as_str()),
        ])
        .send()
        .await
        .unwrap()
}

fn bad(code: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, code.into())
}

/// The signed-in browser enters `user_code` (and decides, if `decision`): the page's status
/// and text.
async fn enter(app: &TestApp, user_code: &str, decision: Option<&str>) -> (StatusCode, String) {
    let csrf = app.session_csrf().await;
    let mut form = vec![("csrf_token", csrf.as_str()), ("user_code", user_code)];
    if let Some(d) = decision {
        form.push(("decision", d));
    }
    let response = app.post_form("/device", &form).await;
    (response.status(), response.text().await.unwrap())
}

both_backends!(
    a_cli_signs_in_once_the_user_approves_its_code,
    |app| async move {
        app.login_admin().await;
        let cli = cli_app(app, "read:users write:profile", &[DEVICE, "refresh_token"]).await;
        let answer = codes(app, &cli, "read:users").await;
        let user_code = answer["user_code"].as_str().unwrap().to_owned();
        let device_code = answer["device_code"].as_str().unwrap().to_owned();
        assert_eq!(user_code.len(), 9, "{user_code}");
        assert_eq!(&user_code[4..5], "-");
        assert!(
            user_code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
            "{user_code}"
        );
        assert_eq!(answer["expires_in"], 600);
        assert_eq!(answer["interval"], 5);
        assert!(
            answer["verification_uri"]
                .as_str()
                .unwrap()
                .ends_with("/device")
        );
        assert!(
            answer["verification_uri_complete"]
                .as_str()
                .unwrap()
                .ends_with(&format!("/device?user_code={user_code}"))
        );
        // Before the user decides: pending; polled too fast: slow_down, five seconds more.
        assert_eq!(
            oauth_error(poll(app, &cli, &device_code).await).await,
            bad("authorization_pending")
        );
        let too_fast = poll(app, &cli, &device_code).await;
        assert_eq!(too_fast.status(), StatusCode::BAD_REQUEST);
        let body: Value = too_fast.json().await.unwrap();
        assert_eq!(body["error"], "slow_down", "{body}");
        app.clock.advance(chrono::Duration::seconds(8));
        assert_eq!(
            oauth_error(poll(app, &cli, &device_code).await).await,
            bad("slow_down"),
            "the interval is ten seconds now, fifteen after this"
        );
        app.clock.advance(chrono::Duration::seconds(16));
        assert_eq!(
            oauth_error(poll(app, &cli, &device_code).await).await,
            bad("authorization_pending")
        );
        // The link with the code fills the form in; typed in lower case without the dash
        // it is the same code.
        let page = app
            .get(&format!("/device?user_code={user_code}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(hidden_field(&page, "csrf_token").is_some());
        assert!(
            page.contains(&format!("value=\"{user_code}\"")),
            "prefilled"
        );
        let typed = user_code.replace('-', "").to_lowercase();
        let (status, page) = enter(app, &typed, None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("id=\"consent-title\""), "{page}");
        assert!(page.contains("Deploy CLI") && page.contains("read:users"));
        let (status, page) = enter(app, &user_code, Some("approve")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("Device connected"), "{page}");
        app.clock.advance(chrono::Duration::seconds(11));
        let tokens: Value = poll(app, &cli, &device_code).await.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
        assert_eq!(tokens["scope"], "read:users");
        let access = tokens["access_token"].as_str().unwrap();
        assert!(tokens["refresh_token"].as_str().is_some());
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::OK
        );
        // Single use: polling after the tokens were issued.
        app.clock.advance(chrono::Duration::seconds(11));
        assert_eq!(
            oauth_error(poll(app, &cli, &device_code).await).await,
            bad("invalid_grant")
        );
        // The code cannot be entered again either.
        let (status, _) = enter(app, &user_code, Some("approve")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The refresh token rotates like any other.
        let refreshed = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", cli.id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refreshed.status(), StatusCode::OK);
        // The approval is listed among the user's connected apps.
        let consents: Value = app.get("/v1/consents").await.json().await.unwrap();
        assert!(consents.to_string().contains(&cli.id), "{consents}");
    }
);

both_backends!(
    denied_expired_and_foreign_device_codes_give_nothing,
    |app| async move {
        app.login_admin().await;
        let cli = cli_app(app, "read:users", &[DEVICE]).await;
        // Denied.
        let denied = codes(app, &cli, "read:users").await;
        let (status, page) = enter(app, denied["user_code"].as_str().unwrap(), Some("deny")).await;
        assert_eq!(status, StatusCode::OK);
        assert!(page.contains("not connected"), "{page}");
        let device_code = denied["device_code"].as_str().unwrap();
        assert_eq!(
            oauth_error(poll(app, &cli, device_code).await).await,
            bad("access_denied")
        );
        // Another client's device code, even an approved one.
        let approved = codes(app, &cli, "read:users").await;
        enter(
            app,
            approved["user_code"].as_str().unwrap(),
            Some("approve"),
        )
        .await;
        let other = cli_app(app, "read:users", &[DEVICE]).await;
        let stolen = poll(app, &other, approved["device_code"].as_str().unwrap()).await;
        assert_eq!(oauth_error(stolen).await, bad("invalid_grant"));
        // …which stays the rightful client's: no refresh token without the refresh grant.
        let tokens: Value = poll(app, &cli, approved["device_code"].as_str().unwrap())
            .await
            .json()
            .await
            .unwrap();
        assert!(tokens["access_token"].is_string(), "{tokens}");
        assert!(tokens.get("refresh_token").is_none());
        // Made up.
        let made_up = poll(app, &cli, "dc_notacode").await;
        assert_eq!(oauth_error(made_up).await, bad("invalid_grant"));
        // Expired: polling and entering.
        let late = codes(app, &cli, "read:users").await;
        app.clock.advance(chrono::Duration::minutes(11));
        assert_eq!(
            oauth_error(poll(app, &cli, late["device_code"].as_str().unwrap()).await).await,
            bad("expired_token")
        );
        let (status, page) = enter(app, late["user_code"].as_str().unwrap(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("expired"), "{page}");
        // The janitor deletes them an hour after they expire.
        app.clock.advance(chrono::Duration::hours(2));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.device_codes, 3, "{swept:?}");
    }
);

both_backends!(
    only_apps_registered_for_the_device_grant_get_codes_within_their_scopes,
    |app| async move {
        app.login_admin().await;
        let web_app = crate::oauth::register(app, true, false).await;
        assert_eq!(
            oauth_error(start(app, &web_app, "read:users").await).await,
            bad("unauthorized_client")
        );
        let cli = cli_app(app, "read:users", &[DEVICE]).await;
        assert_eq!(
            oauth_error(start(app, &cli, "read:users write:users").await).await,
            bad("invalid_scope")
        );
        let nobody = TestClient {
            id: "cli_unknown".into(),
            secret: None,
        };
        assert_eq!(
            oauth_error(start(app, &nobody, "read:users").await).await.0,
            StatusCode::UNAUTHORIZED
        );
        // With no scope named: the app's.
        let answer = codes(app, &cli, "").await;
        assert!(answer["device_code"].is_string());
        // The grant without the registration is refused at the token endpoint too.
        let refused = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", DEVICE),
                ("device_code", answer["device_code"].as_str().unwrap()),
                ("client_id", web_app.id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(oauth_error(refused).await, bad("unauthorized_client"));
    }
);

both_backends!(
    guessing_user_codes_is_limited_and_forms_need_their_csrf_token,
    |app| async move {
        app.login_admin().await;
        let cli = cli_app(app, "read:users", &[DEVICE]).await;
        let live = codes(app, &cli, "read:users").await;
        let (status, page) = enter(app, "BCDF-GHJK", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("not valid"), "{page}");
        let (status, _) = enter(app, "not a code", None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Without the session's CSRF token nothing is looked up or decided.
        let forged = app
            .post_form(
                "/device",
                &[
                    ("csrf_token", "forged"),
                    ("user_code", live["user_code"].as_str().unwrap()),
                    ("decision", "approve"),
                ],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        // Ten entries a minute per session; the eleventh waits, even with the right code.
        for _ in 0..8 {
            enter(app, "BCDF-GHJK", None).await;
        }
        let (status, page) = enter(app, live["user_code"].as_str().unwrap(), None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{page}");
        // Not signed in: the sign-in page first, back to the code afterwards.
        let anonymous = crate::helpers::new_client()
            .get(app.url("/device?user_code=BCDF-GHJK"))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        assert!(
            anonymous.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );
    }
);

both_backends!(
    a_member_cannot_approve_scopes_beyond_their_role,
    |app| async move {
        app.login_admin().await;
        let cli = cli_app(app, "read:users write:users", &[DEVICE]).await;
        let answer = codes(app, &cli, "read:users write:users").await;
        app.create_user("member@example.com", "member-password-long", false)
            .await;
        assert_eq!(
            app.login("member@example.com", "member-password-long")
                .await
                .status(),
            StatusCode::SEE_OTHER
        );
        let (status, page) =
            enter(app, answer["user_code"].as_str().unwrap(), Some("approve")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
        assert!(page.contains("write:users"));
        assert_eq!(
            oauth_error(poll(app, &cli, answer["device_code"].as_str().unwrap()).await).await,
            bad("authorization_pending")
        );
    }
);

both_backends!(concurrent_polls_cannot_all_come_in_time, |app| async move {
    app.login_admin().await;
    let cli = cli_app(app, "read:users", &[DEVICE]).await;
    let answer = codes(app, &cli, "read:users").await;
    let device_code = answer["device_code"].as_str().unwrap().to_owned();
    assert_eq!(
        oauth_error(poll(app, &cli, &device_code).await).await,
        bad("authorization_pending")
    );
    // One interval later eight polls arrive together: one is in time, the others are
    // told to slow down (a CLI polling from many threads gains nothing).
    app.clock.advance(chrono::Duration::seconds(5));
    let polls = (0..8).map(|_| poll(app, &cli, &device_code));
    let mut answers = Vec::new();
    for response in crate::oauth::futures_join(polls).await {
        answers.push(oauth_error(response).await);
    }
    let in_time = answers
        .iter()
        .filter(|a| **a == bad("authorization_pending"))
        .count();
    let slowed = answers.iter().filter(|a| **a == bad("slow_down")).count();
    assert_eq!((in_time, slowed), (1, 7), "{answers:?}");
});
