//! The authorization-code flow with PKCE over HTTP (login and consent form posts with a cookie
//! jar, as a browser would), the token endpoint, refresh rotation, and the attacks on each.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::both_backends;
use crate::helpers::{TestApp, hidden_field};

pub(crate) const REDIRECT: &str = "https://app.example.com/callback";

pub(crate) struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

pub(crate) async fn register(app: &TestApp, public: bool, first_party: bool) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{ClientType, NewClient};
    let me: Value = app.me().await.json().await.unwrap();
    let owner = me["data"]["id"].as_str().unwrap().to_owned();
    let new = NewClient {
        name: "Orders app".into(),
        owner_user_id: Some(owner),
        client_type: if public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        redirect_uris: vec![
            RedirectUri::parse(REDIRECT).unwrap(),
            RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
        ],
        scopes: gatehouse::scopes::ScopeSet::parse("read:users read:orders write:orders").unwrap(),
        first_party,
        grant_types: gatehouse::clients::default_grant_types(),
        resources: Vec::new(),
        ..Default::default()
    };
    crate::oauth::create_client(app, new).await
}

/// Register `new` as the app (the one way the tests create apps in the database).
pub(crate) async fn create_client(app: &TestApp, new: gatehouse::clients::NewClient) -> TestClient {
    let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
    let (client, secret) = app
        .state
        .db(move |c| gatehouse::clients::create(c, &pepper, &new, now))
        .await
        .unwrap();
    TestClient {
        id: client.id,
        secret: secret.map(|s| s.expose().to_owned()),
    }
}

/// A first-party flow for `read:users`: the token endpoint's answer.
pub(crate) async fn obtain_tokens(app: &TestApp, client: &TestClient) -> Value {
    obtain_tokens_for(app, client, "read:users").await
}

/// A code for `scope`, approving on the consent page if it is shown.
pub(crate) async fn code_for(app: &TestApp, client: &TestClient, scope: &str) -> String {
    authorize(app, &authorize_url(client, scope, None, ""), "approve").await["code"].clone()
}

/// A flow for `scope` (approving if asked): the token endpoint's answer.
pub(crate) async fn obtain_tokens_for(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    let code = code_for(app, client, scope).await;
    exchange(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap()
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = gatehouse::secrets::random_base62(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn authorize_url(
    client: &TestClient,
    scope: &str,
    challenge: Option<&str>,
    extra: &str,
) -> String {
    let mut url = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st4te",
        client.id,
        urlencode(REDIRECT),
        urlencode(scope)
    );
    if let Some(c) = challenge {
        url.push_str(&format!("&code_challenge={c}&code_challenge_method=S256"));
    }
    url.push_str(extra);
    url
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// Follow the authorize request through the consent page (approving or denying) and return
/// the redirect's query.
pub(crate) async fn authorize(
    app: &TestApp,
    url: &str,
    decision: &str,
) -> std::collections::HashMap<String, String> {
    authorize_pausing(app, url, decision, chrono::Duration::zero()).await
}

/// The same, with the user reading the consent page for `pause` (on the server's clock)
/// before deciding.
pub(crate) async fn authorize_pausing(
    app: &TestApp,
    url: &str,
    decision: &str,
    pause: chrono::Duration,
) -> std::collections::HashMap<String, String> {
    let response = app.get(url).await;
    let location = if response.status() == StatusCode::OK {
        let page = response.text().await.unwrap();
        app.clock.advance(pause);
        assert!(page.contains("id=\"consent-title\""), "a consent page");
        // The consent form's own fields (the page's sign-out form has a CSRF token too).
        let page = &page[page.find("id=\"consent-form\"").unwrap()..];
        let fields: Vec<(String, String)> = [
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
            "request_uri",
        ]
        .iter()
        .map(|f| (f.to_string(), hidden_field(page, f).unwrap_or_default()))
        .chain([("decision".to_string(), decision.to_string())])
        .collect();
        let decided = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        if decided.status() != StatusCode::SEE_OTHER {
            panic!(
                "{:?} {:?}: {}",
                fields,
                decided.status(),
                decided.text().await.unwrap()
            );
        }
        decided.headers()["location"].to_str().unwrap().to_owned()
    } else {
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers()["location"].to_str().unwrap().to_owned()
    };
    assert!(
        location.starts_with(REDIRECT),
        "back to the client: {location}"
    );
    query_of(&location)
}

pub(crate) async fn exchange(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/token"));
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret))
    }
    let mut form: Vec<(&str, &str)> = form.to_vec();
    if client.secret.is_none() {
        form.push(("client_id", &client.id));
    }
    request.form(&form).send().await.unwrap()
}

pub(crate) async fn oauth_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

both_backends!(
    the_full_flow_gives_a_jwt_that_calls_the_api_and_a_rotating_refresh_token,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let (verifier, challenge) = pkce();
        let answer = authorize(
            app,
            &authorize_url(&client, "read:users read:orders", Some(&challenge), ""),
            "approve",
        )
        .await;
        assert_eq!(answer["state"], "st4te");
        assert_eq!(answer["iss"], app.state.settings.issuer);
        let code = answer["code"].clone();
        assert!(code.starts_with("ac_"));

        let tokens = exchange(
            app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(tokens.status(), StatusCode::OK);
        assert_eq!(tokens.headers()["cache-control"], "no-store");
        let tokens: Value = tokens.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["scope"], "read:orders read:users");
        assert_eq!(tokens["expires_in"], 900);
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        assert!(refresh.starts_with("rt_"));
        let header = jsonwebtoken::decode_header(&access).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));

        let me = app.get_with_key("/v1/users/me", &access).await;
        assert_eq!(me.status(), StatusCode::OK);
        let me: Value = me.json().await.unwrap();
        assert_eq!(me["data"]["email"], crate::helpers::ADMIN_EMAIL);
        assert_eq!(me["data"]["authentication"]["type"], "access_token");
        assert_eq!(
            me["data"]["authentication"]["client_id"],
            client.id.as_str()
        );
        assert_eq!(
            app.get_with_key("/v1/api-keys", &access).await.status(),
            StatusCode::FORBIDDEN,
            "scopes gate the token"
        );

        // The consent is remembered: no page the second time.
        let again = app
            .get(&authorize_url(&client, "read:users", Some(&challenge), ""))
            .await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
        assert!(query_of(again.headers()["location"].to_str().unwrap()).contains_key("code"));
        // A new scope asks again, showing only what is new.
        let wider = app
            .get(&authorize_url(
                &client,
                "read:users write:orders",
                Some(&challenge),
                "",
            ))
            .await
            .text()
            .await
            .unwrap();
        assert!(wider.contains("It now also asks to"));
        assert!(wider.contains("write:orders"));

        // Rotation: the new refresh token works, the old one is reuse and kills the family.
        let rotated = exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("scope", "read:users"),
            ],
        )
        .await;
        assert_eq!(rotated.status(), StatusCode::OK);
        let rotated: Value = rotated.json().await.unwrap();
        assert_eq!(rotated["scope"], "read:users", "narrowed");
        let next = rotated["refresh_token"].as_str().unwrap().to_owned();
        let widened = exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &next),
                ("scope", "write:orders"),
            ],
        )
        .await;
        assert_eq!(
            oauth_error(widened).await,
            (StatusCode::BAD_REQUEST, "invalid_scope".into())
        );
        let reused = exchange(
            app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(
            oauth_error(reused).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        let after_reuse = exchange(
            app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &next)],
        )
        .await;
        assert_eq!(
            app.get_with_key("/v1/users/me", &access).await.status(),
            StatusCode::UNAUTHORIZED,
            "reuse revokes the grant's access tokens too"
        );
        assert_eq!(
            oauth_error(after_reuse).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into()),
            "the whole family is revoked"
        );
        for action in ["oauth.consent.granted", "oauth.refresh.reuse_detected"] {
            let events: Value = app
                .get(&format!("/v1/audit-events?action={action}"))
                .await
                .json()
                .await
                .unwrap();
            assert!(
                !events["data"].as_array().unwrap().is_empty(),
                "{action} is audited"
            );
            assert!(
                !events.to_string().contains(&refresh),
                "no token in the audit log"
            );
        }
    }
);

both_backends!(
    a_replayed_code_is_refused_and_revokes_what_it_issued,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let answer = authorize(
            app,
            &authorize_url(&client, "read:users", None, ""),
            "approve",
        )
        .await;
        let code = answer["code"].clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let first: Value = exchange(app, &client, &form).await.json().await.unwrap();
        let refresh = first["refresh_token"].as_str().unwrap().to_owned();
        let access = first["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get_with_key("/v1/users/me", &access).await.status(),
            StatusCode::OK
        );
        let replay = exchange(app, &client, &form).await;
        assert_eq!(
            oauth_error(replay).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        let refused = app.get_with_key("/v1/users/me", &access).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNAUTHORIZED,
            "the access token issued from the code is revoked too (and was cached as valid)"
        );
        let refreshed = exchange(
            app,
            &client,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(
            oauth_error(refreshed).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into()),
            "tokens from a replayed code are revoked"
        );
        let events: Value = app
            .get("/v1/audit-events?action=oauth.code.replay_detected")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            events["data"].as_array().unwrap().len(),
            1,
            "the replay is audited"
        );
        assert_eq!(events["data"][0]["details"]["families_revoked"], 1);
    }
);

both_backends!(
    of_sixteen_concurrent_redemptions_and_refreshes_exactly_one_wins,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = authorize(
            app,
            &authorize_url(&client, "read:users", None, ""),
            "approve",
        )
        .await["code"]
            .clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let attempts = (0..16).map(|_| exchange(app, &client, &form));
        let results = futures_join(attempts).await;
        let winners: Vec<&reqwest::Response> = results
            .iter()
            .filter(|r| r.status() == StatusCode::OK)
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "{:?}",
            results.iter().map(|r| r.status()).collect::<Vec<_>>()
        );
        assert!(
            results
                .iter()
                .all(|r| r.status() == StatusCode::OK || r.status() == StatusCode::BAD_REQUEST)
        );

        let tokens = obtain_tokens(app, &client).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        let attempts = (0..16).map(|_| exchange(app, &client, &form));
        let results = futures_join(attempts).await;
        assert_eq!(
            results
                .iter()
                .filter(|r| r.status() == StatusCode::OK)
                .count(),
            1,
            "{:?}",
            results.iter().map(|r| r.status()).collect::<Vec<_>>()
        );
        assert!(
            results
                .iter()
                .all(|r| r.status() == StatusCode::OK || r.status() == StatusCode::BAD_REQUEST)
        );
    }
);

pub(crate) async fn futures_join<F: std::future::Future<Output = reqwest::Response>>(
    futures: impl Iterator<Item = F>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = futures.map(|f| Box::pin(f)).collect();
    let mut out = Vec::new();
    // Poll all together so the requests are in flight at the same time.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        out.push(r);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

both_backends!(
    bad_clients_and_redirect_uris_get_a_page_never_a_redirect,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let base = |redirect: &str| {
            format!(
                "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=s",
                client.id,
                urlencode(redirect)
            )
        };
        for redirect in [
            "https://app.example.com/callback/extra",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/callback/",
            "https://app.example.com:8443/callback",
            "https://user@app.example.com/callback",
            "https://app.example.com/callback#frag",
            "https://app.example.com/Callback",
            "http://app.example.com/callback",
            "https://evil.test/callback",
        ] {
            let response = app.get(&base(redirect)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{redirect}");
            assert!(
                response.headers().get("location").is_none(),
                "{redirect} must not be redirected to"
            );
        }
        let loopback = app
            .get(&format!(
                "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read:users",
                client.id,
                urlencode("http://127.0.0.1:51234/cb")
            ))
            .await;
        assert_eq!(
            loopback.status(),
            StatusCode::OK,
            "loopback redirect with any port is accepted"
        );
        for url in [
            "/oauth/authorize?response_type=code&client_id=cli_unknown&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback",
            "/oauth/authorize?response_type=code",
        ] {
            let response = app.get(url).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
            assert!(response.headers().get("location").is_none());
        }
        let no_redirect = app
            .get(&format!(
                "/oauth/authorize?response_type=code&client_id={}",
                client.id
            ))
            .await;
        assert_eq!(no_redirect.status(), StatusCode::BAD_REQUEST);
    }
);

// RFC 9700 §4.11.2: with open registration anyone can register a redirect URI, so a bad
// request redirected there with no user involved would be an open redirector. Before sign-in
// and after, whatever is wrong with the request is shown on a page; only the user's answer
// goes back.
both_backends!(
    bad_requests_get_a_page_and_only_the_users_answer_goes_back,
    |app| async move {
        app.login_admin().await;
        let confidential = register(app, false, false).await;
        let public = register(app, true, false).await;
        let machine_only = {
            let id = register(app, false, false).await.id;
            let stored = id.clone();
            app.state
                .db(move |c| {
                    use diesel::prelude::*;
                    use gatehouse::db::schema::clients;
                    diesel::update(clients::table.find(&stored))
                        .set(clients::grant_types.eq("client_credentials"))
                        .execute(c)?;
                    Ok(())
                })
                .await
                .unwrap();
            app.state.key_cache.invalidate_all();
            TestClient { id, secret: None }
        };
        let (verifier, challenge) = pkce();
        let cases = [
            (
                authorize_url(&confidential, "read:users", None, "")
                    .replace("response_type=code", "response_type=token"),
                "unsupported_response_type",
            ),
            (
                authorize_url(&confidential, "read:users", None, "")
                    .replace("response_type=code&", ""),
                "unsupported_response_type",
            ),
            (
                authorize_url(&confidential, "write:users", None, ""),
                "invalid_scope",
            ),
            (
                authorize_url(&confidential, "not a scope!", None, ""),
                "invalid_scope",
            ),
            (
                authorize_url(&public, "read:users", None, ""),
                "invalid_request",
            ),
            (
                authorize_url(&public, "read:users", Some(challenge.as_str()), "")
                    .replace("S256", "plain"),
                "invalid_request",
            ),
            (
                authorize_url(&public, "read:users", Some("short"), ""),
                "invalid_request",
            ),
            (
                authorize_url(&confidential, "read:users", None, "&prompt=none%20login"),
                "invalid_request",
            ),
            (
                authorize_url(
                    &confidential,
                    "read:users",
                    None,
                    "&resource=https%3A%2F%2Fevil.example.com",
                ),
                "invalid_target",
            ),
            (
                authorize_url(&machine_only, "read:users", None, ""),
                "unauthorized_client",
            ),
        ];
        let stranger = crate::helpers::new_client();
        for (url, error) in &cases {
            for (who, browser) in [("signed in", &app.client), ("signed out", &stranger)] {
                let response = browser.get(app.url(url)).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{who}: {url}");
                assert!(
                    response.headers().get("location").is_none(),
                    "{who}: {url} must not be redirected"
                );
                let page = response.text().await.unwrap();
                assert!(page.contains(error), "{who}: {url} shows {error}");
            }
        }
        let denied = authorize(
            app,
            &authorize_url(&public, "read:users", Some(&challenge), ""),
            "deny",
        )
        .await;
        assert_eq!(
            denied.get("error").map(String::as_str),
            Some("access_denied")
        );
        assert_eq!(denied.get("iss"), Some(&app.state.settings.issuer));

        // PKCE and redirect binding at the token endpoint: each case with a fresh code.
        let wrong_verifier = pkce().0;
        let cases = [
            (
                &public,
                Some(challenge.as_str()),
                REDIRECT,
                Some(wrong_verifier.as_str()),
                StatusCode::BAD_REQUEST,
                "wrong verifier",
            ),
            (
                &public,
                Some(challenge.as_str()),
                REDIRECT,
                None,
                StatusCode::BAD_REQUEST,
                "missing verifier",
            ),
            (
                &public,
                Some(challenge.as_str()),
                REDIRECT,
                Some(verifier.as_str()),
                StatusCode::OK,
                "public client, right verifier",
            ),
            (
                &confidential,
                None,
                REDIRECT,
                Some(verifier.as_str()),
                StatusCode::BAD_REQUEST,
                "verifier without a challenge (downgrade)",
            ),
            (
                &confidential,
                None,
                "http://127.0.0.1/cb",
                None,
                StatusCode::BAD_REQUEST,
                "another redirect_uri",
            ),
        ];
        for (client, code_challenge, redirect_uri, code_verifier, expected, label) in cases {
            let code = authorize(
                app,
                &authorize_url(client, "read:users", code_challenge, ""),
                "approve",
            )
            .await["code"]
                .clone();
            let mut form = vec![
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri),
            ];
            if let Some(v) = code_verifier {
                form.push(("code_verifier", v));
            }
            let response = exchange(app, client, &form).await;
            if expected == StatusCode::OK {
                assert_eq!(response.status(), StatusCode::OK, "{label}");
            } else {
                assert_eq!(
                    oauth_error(response).await,
                    (expected, "invalid_grant".into()),
                    "{label}"
                );
            }
        }
    }
);

both_backends!(
    client_authentication_and_grant_errors_follow_rfc_6749,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = authorize(
            app,
            &authorize_url(&client, "read:users", None, ""),
            "approve",
        )
        .await["code"]
            .clone();
        let http = reqwest::Client::new();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let wrong_secret = http
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some("cs_wrong"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            wrong_secret.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
        assert_eq!(
            oauth_error(wrong_secret).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let no_auth = http
            .post(app.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(no_auth).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let secret = client.secret.clone().unwrap();
        let post_auth = http
        .post(app.url("/oauth/token"))
        .json(&serde_json::json!({ "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "client_id": client.id, "client_secret": secret }))
        .send()
        .await
        .unwrap();
        assert_eq!(
            post_auth.status(),
            StatusCode::OK,
            "client_secret_post with a JSON body"
        );
        let unsupported = http
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[("grant_type", "password")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(unsupported).await,
            (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
        );
        let no_grant = http
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[("code", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(no_grant).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
        let garbage = http
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "ac_nope"),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(garbage).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        let code = authorize(
            app,
            &authorize_url(&client, "read:users", None, ""),
            "approve",
        )
        .await["code"]
            .clone();
        app.clock.advance(chrono::Duration::seconds(61));
        let late = http
            .post(app.url("/oauth/token"))
            .basic_auth(&client.id, Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(late).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into()),
            "codes live 60 s"
        );
    }
);

both_backends!(
    consent_needs_its_csrf_token_and_a_signed_in_user,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let page = app
            .get(&authorize_url(&client, "read:users", None, ""))
            .await
            .text()
            .await
            .unwrap();
        let mut fields: Vec<(String, String)> = [
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
        ]
        .iter()
        .map(|f| (f.to_string(), hidden_field(&page, f).unwrap_or_default()))
        .chain([("decision".to_string(), "approve".to_string())])
        .collect();
        let missing = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::FORBIDDEN);
        fields.push(("csrf_token".into(), "123.forged".into()));
        let forged = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        // Another session's token does not fit this session.
        let (other, _) = app
            .login_in_new_browser(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await;
        let other_page = other
            .get(app.url(&authorize_url(&client, "read:users", None, "")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        fields.pop();
        let other_form = &other_page[other_page.find("id=\"consent-form\"").unwrap()..];
        fields.push((
            "csrf_token".into(),
            hidden_field(other_form, "csrf_token").unwrap(),
        ));
        let crossed = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(crossed.status(), StatusCode::FORBIDDEN);

        // Not signed in: to the login page and back; with prompt=none, login_required.
        let stranger = crate::helpers::new_client();
        let url = authorize_url(&client, "read:users", None, "");
        let to_login = stranger.get(app.url(&url)).send().await.unwrap();
        assert_eq!(to_login.status(), StatusCode::SEE_OTHER);
        assert!(
            to_login.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login?next=/oauth/authorize")
        );
        let none = stranger
            .get(app.url(&format!("{url}&prompt=none")))
            .send()
            .await
            .unwrap();
        let q = query_of(none.headers()["location"].to_str().unwrap());
        assert_eq!(q.get("error").map(String::as_str), Some("login_required"));
        let consent_needed = app.get(&format!("{url}&prompt=none")).await;
        let q = query_of(consent_needed.headers()["location"].to_str().unwrap());
        assert_eq!(q.get("error").map(String::as_str), Some("consent_required"));
    }
);

both_backends!(metadata_lists_what_is_supported, |app| async move {
    let metadata: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], app.state.settings.issuer);
    assert_eq!(
        metadata["token_endpoint"],
        format!("{}/oauth/token", app.state.settings.issuer)
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        metadata["authorization_response_iss_parameter_supported"],
        true
    );
    let issuer = &app.state.settings.issuer;
    assert_eq!(
        metadata["revocation_endpoint"],
        format!("{issuer}/oauth/revoke")
    );
    assert_eq!(
        metadata["introspection_endpoint"],
        format!("{issuer}/oauth/introspect")
    );
    assert_eq!(
        metadata["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:grant-type:device_code"
        ])
    );
    // Every endpoint it names answers (a POST without credentials is refused, not a 404).
    for endpoint in [
        "revocation_endpoint",
        "introspection_endpoint",
        "token_endpoint",
    ] {
        let response = reqwest::Client::new()
            .post(metadata[endpoint].as_str().unwrap())
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert!(
            matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED
            ),
            "{endpoint}: {}",
            response.status()
        );
    }
    assert!(
        metadata["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "read:users")
    );
});

/// A token with this header and these claims, signed by `sign` over `header.claims`.
fn token_with(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

both_backends!(
    forged_or_confused_jwts_are_refused_at_the_api,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let good = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get_with_key("/v1/users/me", &good).await.status(),
            StatusCode::OK
        );
        let parts: Vec<&str> = good.split('.').collect();
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let kid = header["kid"].as_str().unwrap();

        // HS256 "signed" with our public key, the classic confusion attack.
        let jwks: Value = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let public = jwks["keys"][0].to_string();
        let hs_header = serde_json::json!({ "alg": "HS256", "typ": "at+jwt", "kid": kid });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(hs_header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mac = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<Sha256>::new_from_slice(public.as_bytes()).unwrap();
            mac.update(signing_input.as_bytes());
            URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
        };
        let mut tampered = claims.clone();
        tampered["scope"] = Value::from("read:users write:users read:api_keys");
        let now = app.state.now().and_utc().timestamp();
        let mut expired = claims.clone();
        expired["exp"] = Value::from(now - 3600);
        let mut other_iss = claims.clone();
        other_iss["iss"] = Value::from("https://evil.test");
        let mut other_aud = claims.clone();
        other_aud["aud"] = Value::from("https://elsewhere.test");
        let cases = vec![
            (
                "alg none",
                token_with(
                    serde_json::json!({ "alg": "none", "typ": "at+jwt", "kid": kid }),
                    &claims,
                    "",
                ),
            ),
            (
                "HS256 with the public key",
                format!("{signing_input}.{mac}"),
            ),
            (
                "unknown kid",
                token_with(
                    serde_json::json!({ "alg": "ES256", "typ": "at+jwt", "kid": "sig_nope" }),
                    &claims,
                    parts[2],
                ),
            ),
            (
                "wrong typ",
                token_with(
                    serde_json::json!({ "alg": "ES256", "typ": "JWT", "kid": kid }),
                    &claims,
                    parts[2],
                ),
            ),
            (
                "tampered scope",
                token_with(header.clone(), &tampered, parts[2]),
            ),
            ("expired (re-signed by us)", sign_as_server(app, &expired)),
            (
                "other issuer (re-signed by us)",
                sign_as_server(app, &other_iss),
            ),
            (
                "other audience (re-signed by us)",
                sign_as_server(app, &other_aud),
            ),
        ];
        for (label, token) in cases {
            let response = app.get_with_key("/v1/users/me", &token).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{label}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "AUTH_002", "{label}");
        }
    }
);

fn sign_as_server(app: &TestApp, claims: &Value) -> String {
    let claims: gatehouse::jwt::AccessClaims = serde_json::from_value(claims.clone()).unwrap();
    app.state.key_ring().sign(&claims).unwrap()
}

/// An `oauth2` crate HTTP client over reqwest (the crate's own reqwest feature pins another
/// reqwest major version).
pub(crate) async fn oauth2_http(
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let bytes = response.bytes().await?;
    Ok(builder
        .body(bytes.to_vec())
        .expect("a response from its parts"))
}

both_backends!(
    the_oauth2_crate_completes_the_flow_as_a_real_client,
    |app| async move {
        use oauth2::basic::BasicClient;
        use oauth2::{
            AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
            RedirectUrl, Scope, TokenResponse, TokenUrl,
        };
        app.login_admin().await;
        let registered = register(app, false, false).await;
        let client = BasicClient::new(ClientId::new(registered.id.clone()))
            .set_client_secret(ClientSecret::new(registered.secret.clone().unwrap()))
            .set_auth_uri(AuthUrl::new(app.url("/oauth/authorize")).unwrap())
            .set_token_uri(TokenUrl::new(app.url("/oauth/token")).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, csrf) = client
            .authorize_url(CsrfToken::new_random)
            .add_scope(Scope::new("read:users".into()))
            .add_scope(Scope::new("read:orders".into()))
            .set_pkce_challenge(challenge)
            .url();
        // The user's browser: follow the authorization URL through the consent page.
        let path = format!("{}?{}", auth_url.path(), auth_url.query().unwrap());
        let answer = authorize(app, &path, "approve").await;
        assert_eq!(
            answer["state"],
            *csrf.secret(),
            "state comes back unchanged"
        );
        let token = client
            .exchange_code(AuthorizationCode::new(answer["code"].clone()))
            .set_pkce_verifier(verifier)
            .request_async(&oauth2_http)
            .await
            .expect("the code exchange succeeds");
        let access = token.access_token().secret().clone();
        let me: Value = app
            .get_with_key("/v1/users/me", &access)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["data"]["email"], crate::helpers::ADMIN_EMAIL);
        let refresh = token.refresh_token().expect("a refresh token").clone();
        let refreshed = client
            .exchange_refresh_token(&refresh)
            .request_async(&oauth2_http)
            .await
            .expect("the refresh succeeds");
        assert_ne!(
            refreshed.refresh_token().unwrap().secret(),
            refresh.secret(),
            "rotated"
        );
        // Refused by the server as a spent grant, not failed in transport.
        match client
            .exchange_refresh_token(&refresh)
            .request_async(&oauth2_http)
            .await
        {
            Err(oauth2::RequestTokenError::ServerResponse(e)) => assert_eq!(
                *e.error(),
                oauth2::basic::BasicErrorResponseType::InvalidGrant,
                "the old refresh token is spent"
            ),
            Err(e) => panic!("the refresh failed otherwise than invalid_grant: {e:?}"),
            Ok(_) => panic!("the old refresh token is spent, yet it was exchanged"),
        }
    }
);

both_backends!(
    a_member_cannot_grant_an_app_admin_only_scopes,
    |app| async move {
        use gatehouse::clients::redirect::RedirectUri;
        use gatehouse::clients::{ClientType, NewClient};
        let owner = app
            .create_user("dev@example.com", "developer password", false)
            .await;
        let new = NewClient {
            name: "Admin tool".into(),
            owner_user_id: Some(owner),
            client_type: ClientType::Confidential,
            redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
            scopes: gatehouse::scopes::ScopeSet::parse("read:users write:users").unwrap(),
            first_party: false,
            grant_types: gatehouse::clients::default_grant_types(),
            resources: Vec::new(),
            ..Default::default()
        };
        let client = crate::oauth::create_client(app, new).await;
        app.create_user("mo@example.com", "member password", false)
            .await;
        assert_eq!(
            app.login("mo@example.com", "member password")
                .await
                .status(),
            StatusCode::SEE_OTHER
        );
        let response = app
            .get(&authorize_url(&client, "read:users write:users", None, ""))
            .await;
        // The request cannot be granted as it stands: shown, not redirected.
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("write:users"));
        let allowed = app
            .get(&authorize_url(&client, "read:users", None, ""))
            .await;
        assert_eq!(
            allowed.status(),
            StatusCode::OK,
            "scopes a member may hold get the consent page"
        );
    }
);

async fn refresh_grace(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |s| {
        s.refresh_grace = chrono::Duration::seconds(10)
    })
    .await
    else {
        return;
    };
    app.login_admin().await;
    let client = register(&app, false, true).await;
    let tokens = obtain_tokens(&app, &client).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let app = &app;
        let client = &client;
        async move {
            exchange(
                app,
                client,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            )
            .await
        }
    };
    let active = |token: String| {
        let app = &app;
        let client = &client;
        async move {
            let answer: Value = reqwest::Client::new()
                .post(app.url("/oauth/introspect"))
                .basic_auth(&client.id, client.secret.as_ref())
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            answer["active"].as_bool().unwrap()
        }
    };
    // Tab A rotates; tab B, a moment later, presents the same token: inside the window, once.
    assert_eq!(refresh(first.clone()).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(3));
    assert!(
        active(first.clone()).await,
        "introspection agrees: one retry is left"
    );
    let tab_b = refresh(first.clone()).await;
    assert_eq!(
        tab_b.status(),
        StatusCode::OK,
        "the grace window admits one retry"
    );
    let tab_b: Value = tab_b.json().await.unwrap();
    let from_b = tab_b["refresh_token"].as_str().unwrap().to_owned();
    assert!(!active(first.clone()).await, "the retry is spent");
    // A third presentation is reuse: the family is revoked.
    assert_eq!(
        oauth_error(refresh(first.clone()).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    assert_eq!(
        oauth_error(refresh(from_b).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );

    // After the window, even the first retry is reuse.
    let tokens = obtain_tokens(&app, &client).await;
    let token = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(token.clone()).await.status(), StatusCode::OK);
    app.clock.advance(chrono::Duration::seconds(11));
    assert_eq!(
        oauth_error(refresh(token).await).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    app.stop().await;
}

#[actix_web::test]
async fn a_refresh_grace_window_admits_one_retry_sqlite() {
    refresh_grace(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_refresh_grace_window_admits_one_retry_postgres() {
    refresh_grace(crate::helpers::Backend::Postgres).await;
}

#[actix_web::test]
async fn tokens_carry_the_configured_audience() {
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.audience = Some("https://api.example.com".into())
    })
    .await
    else {
        return;
    };
    app.login_admin().await;
    let client = register(&app, false, true).await;
    let tokens = obtain_tokens(&app, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let claims: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(claims["iss"], app.state.settings.issuer);
    assert_eq!(
        app.get_with_key("/v1/users/me", access).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

// A token revoked by another instance: this one learns of it at its next sync.
both_backends!(
    revocations_made_by_another_instance_are_seen_at_the_next_sync,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(
            app.get_with_key("/v1/users/me", &access).await.status(),
            StatusCode::OK
        );
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(access.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        let jti = claims["jti"].as_str().unwrap().to_owned();
        let grant = gatehouse::jwt::denylist::grant_of(&jti).unwrap().to_owned();
        assert!(grant.starts_with("fam_"), "the jti names its grant: {jti}");
        // What another instance writes when it revokes the grant.
        let now = app.state.now();
        let until = now + chrono::Duration::minutes(20);
        app.state
            .db(move |c| gatehouse::jwt::denylist::revoke(c, &[(grant, until)], now))
            .await
            .unwrap();
        assert_eq!(
            app.get_with_key("/v1/users/me", &access).await.status(),
            StatusCode::OK,
            "not yet synced"
        );
        gatehouse::app::housekeeping_pass(&app.state).await;
        assert_eq!(
            app.get_with_key("/v1/users/me", &access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

async fn other_algorithm(alg: gatehouse::jwt::keys::SigningAlg, kty: &str) {
    for backend in [
        crate::helpers::Backend::Sqlite,
        crate::helpers::Backend::Postgres,
    ] {
        other_algorithm_on(backend, alg, kty).await;
    }
}

async fn other_algorithm_on(
    backend: crate::helpers::Backend,
    alg: gatehouse::jwt::keys::SigningAlg,
    kty: &str,
) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |s| s.signing_alg = alg).await else {
        return;
    };
    app.login_admin().await;
    let client = register(&app, false, true).await;
    let tokens = obtain_tokens(&app, &client).await;
    let access = tokens["access_token"].as_str().unwrap();
    let header = jsonwebtoken::decode_header(access).unwrap();
    assert_eq!(header.alg, alg.jwt_algorithm());
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(
        (jwk["kty"].as_str(), jwk["alg"].as_str()),
        (Some(kty), Some(alg.as_str()))
    );
    // A resource server with nothing but the JWKS.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg.jwt_algorithm());
    validation.set_audience(&[app.state.settings.issuer.as_str()]);
    validation.set_issuer(&[app.state.settings.issuer.as_str()]);
    let decoded = jsonwebtoken::decode::<Value>(
        access,
        &jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap(),
        &validation,
    )
    .unwrap();
    assert_eq!(decoded.claims["client_id"], client.id.as_str());
    assert_eq!(
        app.get_with_key("/v1/users/me", access).await.status(),
        StatusCode::OK
    );
    app.stop().await;
}

#[actix_web::test]
async fn rs256_can_be_chosen_for_signing() {
    other_algorithm(gatehouse::jwt::keys::SigningAlg::Rs256, "RSA").await;
}

#[actix_web::test]
async fn eddsa_can_be_chosen_for_signing() {
    other_algorithm(gatehouse::jwt::keys::SigningAlg::EdDsa, "OKP").await;
}

// What a full flow costs the database once the user is signed in and has approved the app
// before (the benchmark's case): statements sent, counted by the connections themselves.
both_backends!(
    a_full_flow_with_remembered_consent_costs_few_queries,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let (verifier, challenge) = pkce();
        let url = authorize_url(&client, "read:users", Some(&challenge), "");
        authorize(app, &url, "approve").await; // approves once
        let counter = gatehouse::db::query_counter(&app.state.settings.database);
        let mut costs = Vec::new();
        for _ in 0..3 {
            let before = counter.load(std::sync::atomic::Ordering::SeqCst);
            let answer = authorize(app, &url, "approve").await;
            let after_code = counter.load(std::sync::atomic::Ordering::SeqCst);
            let tokens = exchange(
                app,
                &client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &answer["code"]),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                ],
            )
            .await;
            assert_eq!(tokens.status(), StatusCode::OK);
            let after = counter.load(std::sync::atomic::Ordering::SeqCst);
            costs.push((after_code - before, after - after_code));
        }
        eprintln!(
            "queries per flow ({:?}): (authorize, token) = {costs:?}",
            app.backend
        );
        for (authorize, token) in &costs {
            assert!(
                authorize + token <= 10,
                "a flow must cost at most 10 statements: {costs:?}"
            );
        }
    }
);
