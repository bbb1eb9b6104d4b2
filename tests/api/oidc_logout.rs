//! Sign-out for OpenID Connect: RP-Initiated Logout (`/oauth/logout`, with and without the
//! confirmation page, and its bad inputs) and Back-Channel Logout (a receiver in the test
//! checks the `logout+jwt`; an endpoint that is down or hangs never holds up the user).

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{REDIRECT, TestClient};
use crate::oidc::{OIDC_SCOPES, sign_in};

const SIGNED_OUT: &str = "https://app.example.com/signed-out";

/// A back-channel receiver: records every `logout_token`; while `hold` is set it keeps each
/// request waiting until released (an app that hangs).
#[derive(Clone)]
struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    hold: Arc<tokio::sync::Semaphore>,
    holding: bool,
}

impl Receiver {
    async fn start(holding: bool) -> (Receiver, String) {
        Receiver::start_at("127.0.0.1", holding).await
    }

    /// As [`Receiver::start`], listening on `ip` (an IPv6 address is written in brackets in
    /// the URL).
    async fn start_at(ip: &str, holding: bool) -> (Receiver, String) {
        let receiver = Receiver {
            holding,
            hold: Arc::new(tokio::sync::Semaphore::new(0)),
            tokens: Arc::default(),
        };
        let shared = receiver.clone();
        let server = actix_web::HttpServer::new(move || {
            let shared = shared.clone();
            actix_web::App::new().route(
                "/bc",
                actix_web::web::post().to(
                    move |form: actix_web::web::Form<Vec<(String, String)>>| {
                        let shared = shared.clone();
                        async move {
                            if shared.holding {
                                let _ = shared.hold.acquire().await;
                            }
                            for (k, v) in form.into_inner() {
                                if k == "logout_token" {
                                    shared.tokens.lock().unwrap().push(v);
                                }
                            }
                            actix_web::HttpResponse::Ok().finish()
                        }
                    },
                ),
            )
        })
        .workers(1)
        .bind((ip, 0))
        .unwrap();
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        let host = if ip.contains(':') {
            format!("[{ip}]")
        } else {
            ip.to_owned()
        };
        (receiver, format!("http://{host}:{port}/bc"))
    }

    /// The tokens received once `app`'s background deliveries have ended (each records its
    /// token before it answers, and a delivery ends with the answer).
    async fn received(&self, app: &TestApp) -> Vec<String> {
        app.state.background.settled().await;
        self.tokens.lock().unwrap().clone()
    }
}

/// A confidential OpenID app with a post-logout URI and, if given, a back-channel URI.
async fn register_with_logout(app: &TestApp, backchannel: Option<&str>) -> TestClient {
    let mut body = serde_json::json!({
        "name": "Sign-in app",
        "redirect_uris": [REDIRECT],
        "scopes": OIDC_SCOPES.split(' ').collect::<Vec<_>>(),
        "post_logout_redirect_uris": [SIGNED_OUT],
    });
    if let Some(uri) = backchannel {
        body["backchannel_logout_uri"] = uri.into();
        body["backchannel_logout_session_required"] = true.into();
    }
    let response = app
        .client
        .post(app.url("/v1/clients"))
        .header("origin", app.address.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let data = &created["data"];
    assert_eq!(data["post_logout_redirect_uris"][0], SIGNED_OUT);
    TestClient {
        id: data["client_id"].as_str().unwrap().to_owned(),
        secret: data["client_secret"].as_str().map(str::to_owned),
    }
}

/// `browser` (a signed-in session) approves `client` for `openid` and the app redeems the code:
/// the app's token answer, ID token included.
async fn app_signs_in(app: &TestApp, browser: &reqwest::Client, client: &TestClient) -> Value {
    let url = crate::oauth::authorize_url(client, "openid", None, "");
    let consent = browser
        .get(app.url(&url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = &consent[consent.find("id=\"consent-form\"").unwrap()..];
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
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .chain([("decision".to_string(), "approve".to_string())])
    .collect();
    let approved = browser
        .post(app.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::SEE_OTHER);
    let location = approved.headers()["location"].to_str().unwrap().to_owned();
    let code = crate::oauth::query_of(&location)["code"].clone();
    let tokens: Value = crate::oauth::exchange(
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
    .unwrap();
    assert!(tokens["id_token"].is_string(), "{tokens}");
    tokens
}

async fn signed_in(app: &TestApp) -> bool {
    app.get("/account").await.status() == StatusCode::OK
}

both_backends!(
    a_hint_of_the_signed_in_user_signs_out_at_once_and_ends_the_online_sign_ins,
    |app| async move {
        app.login_admin().await;
        let client = register_with_logout(app, None).await;
        let online = sign_in(app, &client, "openid profile", "").await;
        let offline = sign_in(app, &client, "openid offline_access", "").await;
        let hint = online["id_token"].as_str().unwrap();
        let response = app
            .get(&format!(
                "/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye%201",
                crate::oauth::urlencode(SIGNED_OUT)
            ))
            .await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(
            location.starts_with(&format!("{SIGNED_OUT}?")),
            "{location}"
        );
        assert_eq!(crate::oauth::query_of(&location)["state"], "bye 1");
        assert!(!signed_in(app).await, "the browser session ended");
        // The online sign-in's access token stops; the offline grant lives on.
        let userinfo = reqwest::Client::new()
            .get(app.url("/oauth/userinfo"))
            .bearer_auth(online["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(userinfo.status(), StatusCode::UNAUTHORIZED);
        let refreshed: Value = crate::oauth::exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", offline["refresh_token"].as_str().unwrap()),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        assert!(
            refreshed["access_token"].is_string(),
            "offline_access survives: {refreshed}"
        );
    }
);

both_backends!(
    an_unregistered_post_logout_uri_is_an_error_page_and_signs_nobody_out,
    |app| async move {
        app.login_admin().await;
        let client = register_with_logout(app, None).await;
        let online = sign_in(app, &client, "openid", "").await;
        let hint = online["id_token"].as_str().unwrap();
        for uri in [
            "https://evil.example.com/",
            "https://app.example.com/signed-out/",
            "https://app.example.com/signed-out?x=1",
        ] {
            let response = app
                .get(&format!(
                    "/oauth/logout?id_token_hint={hint}&post_logout_redirect_uri={}",
                    crate::oauth::urlencode(uri)
                ))
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            assert!(response.headers().get("location").is_none());
        }
        // Without a way to know the app, a redirect is refused too.
        let response = app
            .get(&format!(
                "/oauth/logout?post_logout_redirect_uri={}",
                crate::oauth::urlencode(SIGNED_OUT)
            ))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(signed_in(app).await, "nobody was signed out");
    }
);

both_backends!(an_expired_or_foreign_hint_asks_first, |app| async move {
    app.login_admin().await;
    let client = register_with_logout(app, None).await;
    let online = sign_in(app, &client, "openid", "").await;
    let hint = online["id_token"].as_str().unwrap().to_owned();
    // Another user's ID token for the same app (signed by us): not a silent logout.
    let mut foreign = jwt_claims(&hint);
    foreign["sub"] = "usr_someoneelse".into();
    let foreign = app.state.key_ring().sign_as(&foreign, "JWT").unwrap();
    // The same user's, expired.
    let mut expired = jwt_claims(&hint);
    expired["exp"] = (app.state.now().and_utc().timestamp() - 10).into();
    let expired = app.state.key_ring().sign_as(&expired, "JWT").unwrap();
    for (label, token) in [
        ("foreign", foreign.as_str()),
        ("expired", expired.as_str()),
        ("none", ""),
    ] {
        let url = format!(
            "/oauth/logout?id_token_hint={token}&client_id={}&post_logout_redirect_uri={}&state=s",
            client.id,
            crate::oauth::urlencode(SIGNED_OUT)
        );
        let page = app.get(&url).await;
        assert_eq!(page.status(), StatusCode::OK, "{label}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("id=\"logout-form\""),
            "{label}: the confirmation page"
        );
        assert!(signed_in(app).await, "{label}: still signed in");
    }
    // Confirming with the page's token signs out and goes back to the app.
    let page = app
        .get(&format!(
            "/oauth/logout?client_id={}&post_logout_redirect_uri={}&state=s",
            client.id,
            crate::oauth::urlencode(SIGNED_OUT)
        ))
        .await
        .text()
        .await
        .unwrap();
    let form = &page[page.find("id=\"logout-form\"").unwrap()..];
    let fields: Vec<(String, String)> = [
        "csrf_token",
        "id_token_hint",
        "client_id",
        "post_logout_redirect_uri",
        "state",
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .collect();
    // A forged confirmation (no token, or the page's token with another redirect) fails.
    let mut forged = fields.clone();
    forged[0].1 = "forged".into();
    forged.push(("decision".into(), "logout".into()));
    let refused = app
        .client
        .post(app.url("/oauth/logout"))
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(signed_in(app).await);
    let mut confirmed = fields.clone();
    confirmed.push(("decision".into(), "logout".into()));
    let done = app
        .client
        .post(app.url("/oauth/logout"))
        .form(&confirmed)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()["location"].to_str().unwrap(),
        format!("{SIGNED_OUT}?state=s")
    );
    assert!(!signed_in(app).await);
    // Signed out already: a logout request just goes on to the app.
    let again = app
        .get(&format!(
            "/oauth/logout?client_id={}&post_logout_redirect_uri={}",
            client.id,
            crate::oauth::urlencode(SIGNED_OUT)
        ))
        .await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
});

both_backends!(
    a_sign_out_posts_a_signed_logout_token_to_the_app,
    |app| async move {
        let (receiver, uri) = Receiver::start(false).await;
        app.login_admin().await;
        let client = register_with_logout(app, Some(&uri)).await;
        let online = sign_in(app, &client, "openid", "").await;
        let id_claims = jwt_claims(online["id_token"].as_str().unwrap());
        let csrf = app.session_csrf().await;
        let out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        let tokens = receiver.received(app).await;
        assert_eq!(tokens.len(), 1, "one logout token");
        // Verified with the JWKS alone, as the app would.
        let jwks: jsonwebtoken::jwk::JwkSet = app
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        let header = jsonwebtoken::decode_header(&tokens[0]).unwrap();
        assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[&client.id]);
        validation.set_issuer(&[&app.state.settings.issuer]);
        let claims = jsonwebtoken::decode::<Value>(&tokens[0], &key, &validation)
            .expect("a valid logout token")
            .claims;
        assert_eq!(claims["sub"], id_claims["sub"]);
        assert_eq!(claims["sid"], id_claims["sid"]);
        assert!(claims["jti"].is_string());
        assert!(claims["iat"].is_number());
        assert!(
            claims.get("nonce").is_none(),
            "a logout token never carries a nonce"
        );
        assert!(
            claims["events"]
                .get("http://schemas.openid.net/event/backchannel-logout")
                .is_some()
        );
        // The page says the app was signed out.
        app.login_admin().await;
        let page = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            page.contains("signed out "),
            "the connected apps page says so"
        );
    }
);

both_backends!(
    an_app_that_hangs_or_is_down_never_holds_up_the_sign_out,
    |app| async move {
        let (hanging, hanging_uri) = Receiver::start(true).await;
        app.login_admin().await;
        let slow = register_with_logout(app, Some(&hanging_uri)).await;
        // A port nothing listens on.
        let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down =
            register_with_logout(app, Some(&format!("http://127.0.0.1:{dead_port}/bc"))).await;
        sign_in(app, &slow, "openid", "").await;
        sign_in(app, &down, "openid", "").await;
        let csrf = app.session_csrf().await;
        // The receiver holds every request until released below: the sign-out answers while
        // the notice is still hanging.
        let out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        assert!(!signed_in(app).await);
        hanging.hold.add_permits(10);
        assert_eq!(
            hanging.received(app).await.len(),
            1,
            "delivered once released"
        );
        // The dead endpoint: retried at each pass when due, given up after four tries, audited.
        for _ in 0..4 {
            gatehouse::app::housekeeping_pass(&app.state).await;
            app.clock.advance(chrono::Duration::seconds(301));
        }
        gatehouse::app::housekeeping_pass(&app.state).await;
        let failed: Vec<(i64, Option<String>)> = {
            use diesel::prelude::*;
            use gatehouse::db::schema::backchannel_logouts as b;
            let id = down.id.clone();
            app.state
                .db(move |c| {
                    Ok(b::table
                        .filter(b::client_id.eq(&id))
                        .filter(b::failed_at.is_not_null())
                        .select((b::attempts, b::last_error))
                        .load(c)?)
                })
                .await
                .unwrap()
        };
        assert_eq!(
            failed.len(),
            1,
            "the notice to the dead app failed for good"
        );
        assert_eq!(failed[0].0, 4, "after four tries");
        let events: Vec<String> = {
            use diesel::prelude::*;
            use gatehouse::db::schema::audit_events as a;
            app.state
                .db(|c| Ok(a::table.select(a::action).load(c)?))
                .await
                .unwrap()
        };
        assert!(
            events
                .iter()
                .any(|a| a == "oauth.backchannel_logout.failed"),
            "{events:?}"
        );
    }
);

both_backends!(
    disabling_a_user_notifies_the_apps_they_signed_in_to,
    |app| async move {
        let (receiver, uri) = Receiver::start(false).await;
        app.login_admin().await;
        let client = register_with_logout(app, Some(&uri)).await;
        // A member signs in to the app in their own browser.
        let member = app
            .create_user("member@example.com", "member password 1", false)
            .await;
        let (browser, _) = app
            .login_in_new_browser("member@example.com", "member password 1")
            .await;
        app_signs_in(app, &browser, &client).await;
        let csrf = app.session_csrf().await;
        let disabled = app
            .post_form(
                &format!("/admin/users/{member}/disable"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(disabled.status(), StatusCode::SEE_OTHER);
        let tokens = receiver.received(app).await;
        assert_eq!(tokens.len(), 1);
        assert_eq!(jwt_claims(&tokens[0])["sub"], member);
    }
);

both_backends!(
    logout_settings_are_checked_at_registration,
    |app| async move {
        app.login_admin().await;
        for (field, value) in [
            (
                "backchannel_logout_uri",
                serde_json::json!("ftp://app.example.com/bc"),
            ),
            (
                "backchannel_logout_uri",
                serde_json::json!("https://app.example.com/bc#frag"),
            ),
            ("backchannel_logout_uri", serde_json::json!("not a uri")),
            (
                "post_logout_redirect_uris",
                serde_json::json!(["http://app.example.com/out"]),
            ),
            (
                "post_logout_redirect_uris",
                serde_json::json!(["https://app.example.com/out#x"]),
            ),
        ] {
            let mut body = serde_json::json!({"name": "x", "redirect_uris": [REDIRECT]});
            body[field] = value.clone();
            let response = app
                .client
                .post(app.url("/v1/clients"))
                .header("origin", app.address.clone())
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::BAD_REQUEST,
                "{field}: {value}"
            );
        }
    }
);

both_backends!(
    a_password_change_signs_the_other_sessions_out_of_their_apps,
    |app| async move {
        let (receiver, uri) = Receiver::start(false).await;
        app.login_admin().await;
        let client = register_with_logout(app, Some(&uri)).await;
        // A second browser of the same user signs in to the app.
        let (other, _) = app
            .login_in_new_browser(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
            .await;
        let tokens = app_signs_in(app, &other, &client).await;
        let sid = jwt_claims(tokens["id_token"].as_str().unwrap())["sid"].clone();
        // The first browser changes the password: the second session ends, its app is told.
        let csrf = app.session_csrf().await;
        let changed = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", &csrf),
                    ("current_password", crate::helpers::ADMIN_PASSWORD),
                    ("new_password", "a brand new admin password"),
                    ("confirm_password", "a brand new admin password"),
                ],
            )
            .await;
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
        let tokens = receiver.received(app).await;
        assert_eq!(tokens.len(), 1, "the app of the ended session is told");
        assert_eq!(jwt_claims(&tokens[0])["sid"], sid);
    }
);

both_backends!(
    an_admin_signs_a_user_out_everywhere_and_their_apps_are_told,
    |app| async move {
        let (receiver, uri) = Receiver::start(false).await;
        app.login_admin().await;
        let client = register_with_logout(app, Some(&uri)).await;
        let member = app
            .create_user("member@example.com", "member password 1", false)
            .await;
        let (browser, _) = app
            .login_in_new_browser("member@example.com", "member password 1")
            .await;
        app_signs_in(app, &browser, &client).await;
        // A member cannot do it (the page is for administrators).
        let member_csrf = {
            let page = browser
                .get(app.url("/account"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            hidden_field(&page, "csrf_token").unwrap()
        };
        let refused = browser
            .post(app.url(&format!("/admin/users/{member}/end-sessions")))
            .form(&[("csrf_token", member_csrf.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        // The administrator does.
        let csrf = app.session_csrf().await;
        let ended = app
            .post_form(
                &format!("/admin/users/{member}/end-sessions"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(ended.status(), StatusCode::SEE_OTHER);
        let account = browser.get(app.url("/account")).send().await.unwrap();
        assert_eq!(
            account.status(),
            StatusCode::SEE_OTHER,
            "the member's browser is signed out"
        );
        let tokens = receiver.received(app).await;
        assert_eq!(tokens.len(), 1, "the app is told");
        assert_eq!(jwt_claims(&tokens[0])["sub"], member);
        // The member can still sign in (not disabled).
        let (_, again) = app
            .login_in_new_browser("member@example.com", "member password 1")
            .await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
);

both_backends!(a_notice_reaches_an_ipv6_literal_uri, |app| async move {
    let (receiver, uri) = Receiver::start_at("::1", false).await;
    app.login_admin().await;
    let client = register_with_logout(app, Some(&uri)).await;
    sign_in(app, &client, "openid", "").await;
    let csrf = app.session_csrf().await;
    let out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(receiver.received(app).await.len(), 1, "delivered to [::1]");
});

both_backends!(
    without_the_private_switch_no_notice_goes_to_a_private_address,
    settings = |s: &mut gatehouse::config::Settings| s.backchannel_allow_private = false,
    |app| async move {
        let (receiver, uri) = Receiver::start(false).await;
        // An https URI is accepted at registration; it resolves to a loopback address.
        let uri = uri.replace("http://", "https://");
        app.login_admin().await;
        let client = register_with_logout(app, Some(&uri)).await;
        sign_in(app, &client, "openid", "").await;
        let csrf = app.session_csrf().await;
        let out = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
        assert_eq!(out.status(), StatusCode::SEE_OTHER);
        // The background delivery's attempt, then one more now (the clock past any backoff):
        // both refused before connecting, saying why.
        app.state.background.settled().await;
        app.clock.advance(chrono::Duration::hours(1));
        gatehouse::oidc::logout::deliver_due(&app.state).await;
        let id = client.id.clone();
        let errors: Vec<Option<String>> = app
            .state
            .db(move |c| {
                use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
                use gatehouse::db::schema::backchannel_logouts as b;
                b::table
                    .filter(b::client_id.eq(&id))
                    .select(b::last_error)
                    .load(c)
                    .map_err(gatehouse::db::DbError::from)
            })
            .await
            .unwrap();
        assert_eq!(errors.len(), 1, "one notice queued");
        let error = errors[0].clone().unwrap_or_default();
        assert!(error.contains("private address"), "{error}");
        assert!(
            receiver.tokens.lock().unwrap().is_empty(),
            "nothing arrived"
        );
    }
);
