//! Pushed authorization requests (RFC 9126): the parameters travel from the app to
//! `/oauth/par`, authenticated; the browser carries only a single-use `request_uri` that this
//! client alone can use, for a minute. Apps (or the whole server) can require it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, TestClient, authorize, exchange, oauth_error, pkce, register};

/// Push a request for `client`; the answer.
async fn push(app: &TestApp, client: &TestClient, params: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/par"));
    let mut form: Vec<(&str, &str)> = params.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    request.form(&form).send().await.unwrap()
}

/// A valid pushed request: its `request_uri` and PKCE verifier.
async fn pushed(app: &TestApp, client: &TestClient, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let response = push(
        app,
        client,
        &[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "pushed-state"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 60);
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    (uri, verifier)
}

fn authorize_url(client: &TestClient, request_uri: &str, extra: &str) -> String {
    format!(
        "/oauth/authorize?client_id={}&request_uri={}{extra}",
        client.id,
        gatehouse::principal::urlencode(request_uri)
    )
}

async fn page_status(app: &TestApp, url: &str) -> (StatusCode, String) {
    let response = app.get(url).await;
    (response.status(), response.text().await.unwrap())
}

both_backends!(
    a_pushed_request_is_used_once_by_its_client_and_only_its_parameters_count,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let (uri, verifier) = pushed(app, &client, "read:users").await;
        // Parameters in the URL besides client_id and request_uri are ignored (RFC 9126 §4).
        let url = authorize_url(
            &client,
            &uri,
            "&scope=write:orders&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state=forged",
        );
        let answer = authorize(app, &url, "approve").await;
        assert_eq!(answer["state"], "pushed-state");
        let tokens: Value = exchange(
            app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &answer["code"]),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(tokens["scope"], "read:users", "{tokens}");
        // Spent: the same request_uri again is refused, without redirecting anywhere.
        let (status, page) = page_status(app, &authorize_url(&client, &uri, "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("already used"), "{page}");
        // Another client cannot use this client's request_uri.
        let (uri, _) = pushed(app, &client, "read:users").await;
        let other = register(app, false, false).await;
        let (status, page) = page_status(app, &authorize_url(&other, &uri, "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("invalid_request_uri"), "{page}");
        // Made-up and expired ones neither.
        let (status, _) = page_status(
            app,
            &authorize_url(&client, "urn:ietf:params:oauth:request_uri:par_nothing", ""),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        app.clock.advance(chrono::Duration::seconds(61));
        let (status, page) = page_status(app, &authorize_url(&client, &uri, "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("expired"), "{page}");
        // The janitor deletes them once they are an hour past their minute.
        app.clock.advance(chrono::Duration::hours(2));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.pushed_requests, 2, "{swept:?}");
    }
);

both_backends!(
    the_user_may_take_minutes_to_decide_once_the_browser_arrived_in_time,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let (uri, _) = pushed(app, &client, "read:users").await;
        // The browser arrives within the minute; the user reads the page for five minutes.
        let answer = crate::oauth::authorize_pausing(
            app,
            &authorize_url(&client, &uri, ""),
            "approve",
            chrono::Duration::minutes(5),
        )
        .await;
        assert!(answer.contains_key("code"), "{answer:?}");
        // Not forever: ten minutes after the push the request has expired.
        let another = register(app, false, false).await;
        let (uri, _) = pushed(app, &another, "read:users").await;
        let (status, _) = page_status(app, &authorize_url(&another, &uri, "")).await;
        assert_eq!(status, StatusCode::OK, "the consent page");
        app.clock.advance(chrono::Duration::minutes(10));
        let (status, page) = page_status(app, &authorize_url(&another, &uri, "")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("expired"), "{page}");
    }
);

both_backends!(a_denied_pushed_request_is_spent_too, |app| async move {
    app.login_admin().await;
    let client = register(app, false, false).await;
    let (uri, _) = pushed(app, &client, "read:users").await;
    let answer = authorize(app, &authorize_url(&client, &uri, ""), "deny").await;
    assert_eq!(answer["error"], "access_denied");
    let (status, _) = page_status(app, &authorize_url(&client, &uri, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
});

both_backends!(
    pushing_checks_the_request_and_the_client_at_once,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let (_, challenge) = pkce();
        let base = |redirect: &'static str, scope: &'static str| {
            vec![
                ("response_type", "code"),
                ("redirect_uri", redirect),
                ("scope", scope),
            ]
        };
        let bad_redirect = push(app, &client, &base("https://evil.example/cb", "read:users")).await;
        assert_eq!(
            oauth_error(bad_redirect).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
        let bad_scope = push(app, &client, &base(REDIRECT, "admin:users")).await;
        assert_eq!(
            oauth_error(bad_scope).await,
            (StatusCode::BAD_REQUEST, "invalid_scope".into())
        );
        let mut with_uri = base(REDIRECT, "read:users");
        with_uri.push(("request_uri", "urn:ietf:params:oauth:request_uri:par_x"));
        assert_eq!(
            oauth_error(push(app, &client, &with_uri).await).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
        let wrong_secret = TestClient {
            id: client.id.clone(),
            secret: Some("cs_wrong".into()),
        };
        let unauthenticated = push(app, &wrong_secret, &base(REDIRECT, "read:users")).await;
        assert_eq!(
            oauth_error(unauthenticated).await.0,
            StatusCode::UNAUTHORIZED
        );
        // A public client pushes with its client_id alone, and PKCE stays required.
        let public = register(app, true, false).await;
        let no_pkce = push(app, &public, &base(REDIRECT, "read:users")).await;
        assert_eq!(
            oauth_error(no_pkce).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
        let mut with_pkce = base(REDIRECT, "read:users");
        with_pkce.push(("code_challenge", &challenge));
        with_pkce.push(("code_challenge_method", "S256"));
        assert_eq!(
            push(app, &public, &with_pkce).await.status(),
            StatusCode::CREATED
        );
    }
);

both_backends!(
    an_app_that_requires_pushed_requests_cannot_be_started_from_a_plain_link,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let plain = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read:users",
            client.id,
            gatehouse::principal::urlencode(REDIRECT)
        );
        let (status, _) = page_status(app, &plain).await;
        assert_eq!(status, StatusCode::OK, "a consent page while not required");
        let changed = app
            .client
            .patch(app.url(&format!("/v1/clients/{}", client.id)))
            .json(&json!({"require_pushed_authorization_requests": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        let view: Value = changed.json().await.unwrap();
        assert_eq!(view["data"]["require_pushed_authorization_requests"], true);
        let (status, page) = page_status(app, &plain).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(page.contains("/oauth/par"), "{page}");
        // An empty request_uri is no pushed request.
        let (status, _) = page_status(app, &format!("{plain}&request_uri=")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (uri, _) = pushed(app, &client, "read:users").await;
        let answer = authorize(app, &authorize_url(&client, &uri, ""), "approve").await;
        assert!(answer.contains_key("code"), "{answer:?}");
        // The metadata names the endpoint; this server does not require it of every app.
        let metadata: Value = app
            .get("/.well-known/oauth-authorization-server")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata["pushed_authorization_request_endpoint"],
            app.url("/oauth/par")
                .replace(&app.address, &app.state.settings.issuer)
        );
        assert_eq!(metadata["require_pushed_authorization_requests"], false);
    }
);

both_backends!(
    the_server_can_require_pushed_requests_of_every_app,
    settings = |s: &mut gatehouse::config::Settings| s.require_par = true,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let plain = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read:users",
            client.id,
            gatehouse::principal::urlencode(REDIRECT)
        );
        let (status, _) = page_status(app, &plain).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (uri, _) = pushed(app, &client, "read:users").await;
        let answer = authorize(app, &authorize_url(&client, &uri, ""), "approve").await;
        assert!(answer.contains_key("code"), "{answer:?}");
        let metadata: Value = app
            .get("/.well-known/openid-configuration")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["require_pushed_authorization_requests"], true);
    }
);
