//! Attacks on the integrity of grants: codes and refresh tokens presented by a client they were
//! not issued to, silent approvals of public clients, consent forms replayed with other
//! parameters or too late, `prompt`, the lifetime limits of refresh families, first-party
//! grants the user can see and end, and the audit of revocations and machine tokens.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, hidden_field, new_client};
use crate::oauth::{
    REDIRECT, TestClient, authorize, authorize_url, code_for, exchange, oauth_error, obtain_tokens,
    pkce, query_of, register,
};

async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    exchange(app, client, &form).await
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    exchange(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

fn invalid_grant() -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, "invalid_grant".into())
}

fn field(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().unwrap_or_default().to_owned()
}

/// `/v1` with the signed-in session.
async fn api(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let (status, body) = api(
        app,
        Method::GET,
        &format!("/v1/audit-events?action={action}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    body["data"].as_array().cloned().unwrap_or_default()
}

async fn me_status(app: &TestApp, access: &str) -> StatusCode {
    app.get_with_key("/v1/users/me", access).await.status()
}

both_backends!(
    a_code_presented_by_another_client_is_refused_and_stays_redeemable,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, false).await;
        let attacker = register(app, false, false).await;
        let code = code_for(app, &victim, "read:users").await;
        assert_eq!(
            oauth_error(redeem(app, &attacker, &code, None).await).await,
            invalid_grant()
        );
        // The right client with the wrong redirect URI: refused, and nothing is spent either.
        let elsewhere = exchange(
            app,
            &victim,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1/cb"),
            ],
        )
        .await;
        assert_eq!(oauth_error(elsewhere).await, invalid_grant());
        let redeemed = redeem(app, &victim, &code, None).await;
        assert_eq!(
            redeemed.status(),
            StatusCode::OK,
            "the client the code was issued to still redeems it"
        );
    }
);

both_backends!(
    a_spent_code_presented_by_another_client_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, false).await;
        let attacker = register(app, false, false).await;
        let code = code_for(app, &victim, "read:users").await;
        let tokens: Value = redeem(app, &victim, &code, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(redeem(app, &attacker, &code, None).await).await,
            invalid_grant()
        );
        assert_eq!(
            me_status(app, &field(&tokens, "access_token")).await,
            StatusCode::OK,
            "the victim's access token still works"
        );
        assert_eq!(
            refresh(app, &victim, &field(&tokens, "refresh_token"))
                .await
                .status(),
            StatusCode::OK,
            "and so does its refresh token"
        );
        assert!(events(app, "oauth.code.replay_detected").await.is_empty());
    }
);

both_backends!(
    a_spent_public_code_without_its_verifier_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let native = register(app, true, false).await;
        let (verifier, challenge) = pkce();
        let url = authorize_url(&native, "read:users", Some(&challenge), "");
        let code = authorize(app, &url, "approve").await["code"].clone();
        let tokens: Value = redeem(app, &native, &code, Some(&verifier))
            .await
            .json()
            .await
            .unwrap();
        // Anyone can name a public client; only the verifier ties a request to its code.
        for wrong in [None, Some(pkce().0)] {
            let presented = redeem(app, &native, &code, wrong.as_deref()).await;
            assert_eq!(oauth_error(presented).await, invalid_grant());
        }
        let refresh_token = field(&tokens, "refresh_token");
        let rotated: Value = refresh(app, &native, &refresh_token)
            .await
            .json()
            .await
            .unwrap();
        assert!(
            field(&rotated, "refresh_token").starts_with("rt_"),
            "the grant survived: {rotated}"
        );
        // The real replay (the code with its verifier) is still detected and revokes.
        let replay = redeem(app, &native, &code, Some(&verifier)).await;
        assert_eq!(oauth_error(replay).await, invalid_grant());
        assert_eq!(
            oauth_error(refresh(app, &native, &field(&rotated, "refresh_token")).await).await,
            invalid_grant()
        );
    }
);

// RFC 6749 §10.4 / RFC 9700 §4.14.2: a refresh token is bound to its client. Another client's
// attempt is refused and changes nothing: it proves nothing against the grant's own client,
// and revoking on it would let any registered app end other apps' grants with a leaked or
// spent token.
both_backends!(
    a_refresh_token_presented_by_another_client_is_refused_and_revokes_nothing,
    |app| async move {
        app.login_admin().await;
        let victim = register(app, false, true).await;
        let attacker = register(app, false, true).await;
        let tokens = obtain_tokens(app, &victim).await;
        let first = field(&tokens, "refresh_token");
        assert_eq!(
            oauth_error(refresh(app, &attacker, &first).await).await,
            invalid_grant(),
            "a live token, another client"
        );
        let rotated: Value = refresh(app, &victim, &first).await.json().await.unwrap();
        let second = field(&rotated, "refresh_token");
        assert!(second.starts_with("rt_"), "{rotated}");
        assert_eq!(
            oauth_error(refresh(app, &attacker, &first).await).await,
            invalid_grant(),
            "a rotated token, another client"
        );
        assert!(events(app, "oauth.refresh.reuse_detected").await.is_empty());
        assert_eq!(
            refresh(app, &victim, &second).await.status(),
            StatusCode::OK,
            "the family was not revoked by the attempts"
        );
    }
);

both_backends!(
    public_clients_are_asked_every_time_unless_first_party,
    |app| async move {
        app.login_admin().await;
        let native = register(app, true, false).await;
        let (_, challenge) = pkce();
        let url = authorize_url(&native, "read:users", Some(&challenge), "");
        authorize(app, &url, "approve").await;
        // RFC 8252 §8.6: any local process could start this flow to a loopback port.
        let again = app.get(&url).await;
        assert_eq!(again.status(), StatusCode::OK, "asked again");
        let page = again.text().await.unwrap();
        assert!(page.contains("id=\"consent-title\""));
        assert!(page.contains("id=\"consent-each-time\""));
        let silent = app.get(&format!("{url}&prompt=none")).await;
        assert_eq!(silent.status(), StatusCode::SEE_OTHER);
        let q = query_of(silent.headers()["location"].to_str().unwrap());
        assert_eq!(q.get("error").map(String::as_str), Some("consent_required"));
        assert!(!q.contains_key("code"));

        let first_party = register(app, true, true).await;
        let url = authorize_url(&first_party, "read:users", Some(&challenge), "");
        let trusted = app.get(&url).await;
        assert_eq!(trusted.status(), StatusCode::SEE_OTHER);
        assert!(query_of(trusted.headers()["location"].to_str().unwrap()).contains_key("code"));
    }
);

both_backends!(
    first_party_grants_are_listed_and_can_be_disconnected,
    |app| async move {
        app.login_admin().await;
        let trusted = register(app, false, true).await;
        let tokens = obtain_tokens(app, &trusted).await;
        let (_, listed) = api(app, Method::GET, "/v1/consents", None).await;
        let entry = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == trusted.id.as_str())
            .cloned()
            .expect("the first-party grant is listed");
        assert_eq!(entry["scopes"], json!(["read:users"]));
        assert_eq!(entry["first_party"], true, "marked as first-party");
        let page = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Orders app"), "shown on Connected apps");

        let id = entry["id"].as_str().unwrap();
        let (status, _) = api(app, Method::DELETE, &format!("/v1/consents/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            oauth_error(refresh(app, &trusted, &field(&tokens, "refresh_token")).await).await,
            invalid_grant()
        );
        assert_eq!(
            me_status(app, &field(&tokens, "access_token")).await,
            StatusCode::UNAUTHORIZED
        );

        // Approved without asking again, and recorded again.
        obtain_tokens(app, &trusted).await;
        let (_, listed) = api(app, Method::GET, "/v1/consents", None).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        // What the app got as first-party is not the user's approval: demoted, it asks.
        let (status, _) = api(
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", trusted.id),
            Some(json!({ "first_party": false })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let asked = app
            .get(&authorize_url(&trusted, "read:users", None, ""))
            .await;
        assert_eq!(asked.status(), StatusCode::OK, "the consent page");
    }
);

/// The consent form's fields, as the page's form would post them.
fn consent_fields(page: &str) -> Vec<(String, String)> {
    let form = &page[page.find("id=\"consent-form\"").expect("a consent form")..];
    [
        "csrf_token",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .chain([("decision".to_string(), "approve".to_string())])
    .collect()
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

async fn post_consent(app: &TestApp, fields: &[(String, String)]) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/authorize"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn consent_form_binding(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |s| {
        s.resources = vec!["https://orders.example.com".into()];
    })
    .await
    else {
        return;
    };
    let app = &app;
    app.login_admin().await;
    let client = register(app, false, false).await;
    // Bound, so that the CSRF token (not the binding) is what refuses a switched resource.
    crate::integrity::bind_resources(app, &client.id, &["https://orders.example.com"]).await;
    let other = register(app, false, false).await;
    let url = authorize_url(&client, "read:users", None, "");
    let page = app.get(&url).await.text().await.unwrap();
    let fields = consent_fields(&page);
    for (name, value, what) in [
        ("scope", "read:users write:orders", "a wider scope"),
        ("client_id", other.id.as_str(), "another client"),
        (
            "redirect_uri",
            "http://127.0.0.1/cb",
            "another registered redirect URI",
        ),
        ("resource", "https://orders.example.com", "a resource"),
    ] {
        let response = post_consent(app, &with(&fields, name, value)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(response.headers().get("location").is_none(), "{what}");
    }
    app.clock.advance(chrono::Duration::seconds(601));
    let late = post_consent(app, &fields).await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN, "ten minutes are over");
    let page = app.get(&url).await.text().await.unwrap();
    let fresh = post_consent(app, &consent_fields(&page)).await;
    assert_eq!(fresh.status(), StatusCode::SEE_OTHER, "a fresh form works");
    assert!(query_of(fresh.headers()["location"].to_str().unwrap()).contains_key("code"));
    app.stop().await;
}

#[actix_web::test]
async fn the_consent_form_is_bound_to_its_request_and_ten_minutes_sqlite() {
    consent_form_binding(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_consent_form_is_bound_to_its_request_and_ten_minutes_postgres() {
    consent_form_binding(crate::helpers::Backend::Postgres).await;
}

both_backends!(
    a_disabled_client_gets_an_error_page_not_a_redirect,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        let (status, _) = api(
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", client.id),
            Some(json!({ "disabled": true })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let stranger = new_client();
        for url in [url.clone(), format!("{url}&prompt=none")] {
            for browser in [&app.client, &stranger] {
                let response = browser.get(app.url(&url)).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
                assert!(response.headers().get("location").is_none(), "{url}");
            }
        }
    }
);

both_backends!(deleting_an_app_ends_its_tokens, |app| async move {
    app.login_admin().await;
    let client = register(app, false, true).await;
    let tokens = obtain_tokens(app, &client).await;
    let (access, refresh_token) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );
    assert_eq!(me_status(app, &access).await, StatusCode::OK);
    let (_, rs_key) = app
        .create_key(json!({ "name": "resource server", "scopes": ["introspect"] }))
        .await;
    let (status, _) = api(
        app,
        Method::DELETE,
        &format!("/v1/clients/{}", client.id),
        None,
    )
    .await;
    assert!(status.is_success(), "{status}");
    let refused = refresh(app, &client, &refresh_token).await;
    assert!(refused.status().is_client_error());
    assert_eq!(me_status(app, &access).await, StatusCode::UNAUTHORIZED);
    for token in [&access, &refresh_token] {
        let about: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .bearer_auth(&rs_key)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(about, json!({ "active": false }));
    }
});

both_backends!(
    prompt_login_asks_for_a_fresh_sign_in_despite_a_live_session,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        app.clock.advance(chrono::Duration::minutes(5));
        let plain = app.get(&url).await;
        assert_eq!(plain.status(), StatusCode::SEE_OTHER);
        assert!(
            plain.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with(REDIRECT),
            "the session is live and the consent remembered"
        );
        let forced = app.get(&format!("{url}&prompt=login")).await;
        assert_eq!(forced.status(), StatusCode::SEE_OTHER);
        let location = forced.headers()["location"].to_str().unwrap().to_owned();
        let next = location
            .strip_prefix("/login?next=")
            .map(|n| {
                url::form_urlencoded::parse(format!("n={n}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            })
            .unwrap_or_else(|| panic!("to the sign-in page: {location}"));
        assert!(!next.contains("prompt"), "not asked again after: {next}");
        let csrf = app.login_csrf().await;
        let signed_in = app
            .post_form(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", &next),
                ],
            )
            .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers()["location"].to_str().unwrap(), next);
        let back = app.get(&next).await;
        let code = query_of(back.headers()["location"].to_str().unwrap())["code"].clone();
        let tokens: Value = redeem(app, &client, &code, None)
            .await
            .json()
            .await
            .unwrap();
        let claims = crate::helpers::jwt_claims(&field(&tokens, "access_token"));
        assert_eq!(
            claims["auth_time"].as_i64(),
            Some(app.state.now().and_utc().timestamp()),
            "auth_time is the new sign-in"
        );
    }
);

both_backends!(
    prompt_consent_shows_the_page_even_when_remembered,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
        let asked = app.get(&format!("{url}&prompt=consent")).await;
        assert_eq!(asked.status(), StatusCode::OK);
        assert!(asked.text().await.unwrap().contains("id=\"consent-title\""));
        let trusted = register(app, false, true).await;
        let asked = app
            .get(&authorize_url(
                &trusted,
                "read:users",
                None,
                "&prompt=consent",
            ))
            .await;
        assert_eq!(
            asked.status(),
            StatusCode::OK,
            "first-party apps too, when they ask"
        );
    }
);

both_backends!(
    refresh_tokens_stop_after_14_idle_days_and_30_days_in_all,
    |app| async move {
        use chrono::Duration;
        app.login_admin().await;
        let client = register(app, false, true).await;
        let idle = field(&obtain_tokens(app, &client).await, "refresh_token");
        let mut busy = field(&obtain_tokens(app, &client).await, "refresh_token");
        let step = |days: i64, minutes: i64| {
            app.clock
                .advance(Duration::days(days) + Duration::minutes(minutes))
        };
        step(13, 0);
        let rotated: Value = refresh(app, &client, &busy).await.json().await.unwrap();
        busy = field(&rotated, "refresh_token");
        assert!(busy.starts_with("rt_"), "used within 14 days: {rotated}");
        step(1, 1);
        assert_eq!(
            oauth_error(refresh(app, &client, &idle).await).await,
            invalid_grant(),
            "14 days unused"
        );
        step(12, 0);
        let rotated: Value = refresh(app, &client, &busy).await.json().await.unwrap();
        busy = field(&rotated, "refresh_token");
        assert!(
            busy.starts_with("rt_"),
            "day 26, used 13 days ago: {rotated}"
        );
        step(4, 0);
        assert_eq!(
            oauth_error(refresh(app, &client, &busy).await).await,
            invalid_grant(),
            "30 days after the sign-in, however busy"
        );
    }
);

both_backends!(
    revoking_access_and_refresh_tokens_is_audited_without_the_token,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh_token = field(&tokens, "refresh_token");
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", refresh_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let recorded = events(app, "oauth.token.revoked").await;
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0]["details"]["token_type"], "refresh_token");
        assert_eq!(recorded[0]["details"]["client_id"], client.id.as_str());
        assert_eq!(
            recorded[0]["details"]["revoked_by_client"],
            client.id.as_str()
        );
        assert!(!recorded[0].to_string().contains(&refresh_token));

        // A user revoking an access token of theirs, with that token as the credential.
        let access = field(&obtain_tokens(app, &client).await, "access_token");
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .bearer_auth(&access)
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let recorded = events(app, "oauth.token.revoked").await;
        let event = recorded
            .iter()
            .find(|e| e["details"]["token_type"] == "access_token")
            .expect("the access token's revocation is audited");
        let (_, me) = api(app, Method::GET, "/v1/users/me", None).await;
        assert_eq!(event["actor_user_id"], me["data"]["id"]);
        assert_eq!(event["details"]["client_id"], client.id.as_str());
        assert!(!event.to_string().contains(&access));
    }
);

both_backends!(
    client_credentials_issuance_is_audited_once_a_minute_with_a_count,
    |app| async move {
        use gatehouse::clients::redirect::RedirectUri;
        use gatehouse::clients::{ClientType, NewClient, default_grant_types};
        app.login_admin().await;
        let (_, me) = api(app, Method::GET, "/v1/users/me", None).await;
        let mut grant_types = default_grant_types();
        grant_types.push("client_credentials".into());
        let new = NewClient {
            name: "Billing worker".into(),
            owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
            client_type: ClientType::Confidential,
            redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
            scopes: gatehouse::scopes::ScopeSet::parse("read:orders").unwrap(),
            first_party: false,
            grant_types,
            resources: Vec::new(),
            ..Default::default()
        };
        let machine = crate::oauth::create_client(app, new).await;
        let cc = [("grant_type", "client_credentials")];
        for _ in 0..3 {
            assert_eq!(exchange(app, &machine, &cc).await.status(), StatusCode::OK);
        }
        let action = "oauth.client_credentials.issued";
        assert!(
            events(app, action).await.is_empty(),
            "not one event per token"
        );
        app.clock.advance(chrono::Duration::seconds(61));
        assert_eq!(exchange(app, &machine, &cc).await.status(), StatusCode::OK);
        let recorded = events(app, action).await;
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0]["details"]["client_id"], machine.id.as_str());
        assert_eq!(recorded[0]["details"]["count"], 3);
        app.clock.advance(chrono::Duration::seconds(61));
        let flushed = gatehouse::grants::audit::flush_issuances(&app.state, false)
            .await
            .unwrap();
        assert_eq!(flushed, 1, "housekeeping writes the minute that is over");
        let counts: Vec<Value> = events(app, action)
            .await
            .iter()
            .map(|e| e["details"]["count"].clone())
            .collect();
        assert_eq!(counts, vec![json!(1), json!(3)], "newest first");
    }
);

both_backends!(
    codes_long_expired_are_purged_and_recent_ones_kept,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let old = code_for(app, &client, "read:users").await;
        app.clock.advance(chrono::Duration::hours(2));
        app.login_admin().await;
        let recent = code_for(app, &client, "read:users").await;
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.auth_codes, 1);
        assert_eq!(
            redeem(app, &client, &recent, None).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            oauth_error(redeem(app, &client, &old, None).await).await,
            invalid_grant()
        );
    }
);

/// Six requests at once presenting the same credential to the token endpoint: exactly one
/// answers 200, the others `invalid_grant`. The winner's answer.
async fn one_of_six_wins(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> Value {
    let one = || async {
        let answer = exchange(app, client, form).await;
        let status = answer.status();
        (status, answer.json::<Value>().await.unwrap())
    };
    let (a, b, c, d, e, f) = tokio::join!(one(), one(), one(), one(), one(), one());
    let answers = [a, b, c, d, e, f];
    let (won, lost): (Vec<_>, Vec<_>) = answers.iter().partition(|(s, _)| *s == StatusCode::OK);
    assert_eq!(won.len(), 1, "exactly one wins: {answers:?}");
    for (status, body) in lost {
        assert_eq!(
            (*status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
    won[0].1.clone()
}

/// The refresh token no longer works.
async fn assert_refresh_refused(app: &TestApp, client: &TestClient, refresh: &str) {
    let answer = exchange(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        oauth_error(answer).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

both_backends!(
    racing_redemptions_of_one_code_give_tokens_once_and_revoke_them,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = code_for(app, &client, "read:users").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let won = one_of_six_wins(app, &client, &form).await;
        // The others were replays of a spent code: what the winner got is revoked.
        assert_refresh_refused(app, &client, won["refresh_token"].as_str().unwrap()).await;
        let access = won["access_token"].as_str().unwrap();
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

both_backends!(
    racing_refreshes_of_one_token_rotate_it_once_and_end_the_family,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        let won = one_of_six_wins(app, &client, &form).await;
        // Without a grace window every other presentation is a reuse: the family ends, the
        // winner's new refresh token with it.
        assert_refresh_refused(app, &client, won["refresh_token"].as_str().unwrap()).await;
    }
);

/// Eight threads, each on its own pooled connection, released at once by a barrier: what each
/// got from `work`. The database functions themselves, so that every read happens before any
/// write has committed (HTTP requests arrive too spread out to be sure of that).
fn eight_threads_at_once<T: Send>(
    app: &TestApp,
    work: impl Fn(&mut gatehouse::db::DbConn) -> T + Sync,
) -> Vec<T> {
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (barrier, work, pool) = (&barrier, &work, &app.state.pool);
                scope.spawn(move || {
                    let mut conn = pool.get().expect("a pooled connection");
                    barrier.wait();
                    work(&mut conn)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

fn policy() -> gatehouse::grants::FamilyPolicy {
    gatehouse::grants::FamilyPolicy {
        absolute: chrono::Duration::days(30),
        idle: chrono::Duration::days(14),
        reuse_grace: chrono::Duration::zero(),
    }
}

both_backends!(
    eight_rotations_of_one_token_released_together_give_one_new_token,
    |app| async move {
        use gatehouse::grants::{Refresh, rotate};
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
        let outcomes = eight_threads_at_once(app, |conn| {
            match rotate(
                conn,
                &pepper,
                &refresh,
                &client.id,
                None,
                None,
                policy(),
                now,
            ) {
                Ok(Refresh::Rotated { .. }) => "rotated",
                Ok(Refresh::Reused { .. }) => "reused",
                Ok(_) => "refused",
                Err(e) => panic!("rotation failed: {e}"),
            }
        });
        let rotated = outcomes.iter().filter(|o| **o == "rotated").count();
        assert_eq!(rotated, 1, "one rotation: {outcomes:?}");
        // The others are reuses, or find the family a reuse revoked already.
        assert!(outcomes.contains(&"reused"), "{outcomes:?}");
    }
);

both_backends!(
    eight_redemptions_of_one_code_released_together_spend_it_once,
    |app| async move {
        use gatehouse::grants::{
            CodeRequest, NewGrant, Redemption, claim_code, find_code, redeem_code_pg,
        };
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = code_for(app, &client, "read:users").await;
        let pepper = app.state.digest_pepper.clone();
        let now = app.state.now();
        let request = CodeRequest {
            client_id: &client.id,
            redirect_uri: Some(REDIRECT),
            code_verifier: None,
        };
        // As the token endpoint redeems: PostgreSQL's one statement, else (SQLite, or when it
        // spent nothing) the read and then the claim — with every thread's read done before
        // any claim, the interleaving the claim's own condition must settle.
        let read_done = std::sync::Barrier::new(8);
        let outcomes = eight_threads_at_once(app, |conn| {
            let family = gatehouse::ids::new_id(gatehouse::ids::IdKind::RefreshFamily);
            let one = redeem_code_pg(
                conn,
                &pepper,
                &code,
                &request,
                None,
                &family,
                policy(),
                None,
                now,
            )
            .expect("the statement runs");
            let found = match one {
                Some(_) => None,
                None => {
                    Some(find_code(conn, &pepper, &code, &request, now).expect("the read runs"))
                }
            };
            read_done.wait();
            let Some(Redemption::Usable(found, _)) = found else {
                return if one.is_some() {
                    "spent in one statement"
                } else {
                    "refused"
                };
            };
            let scopes = gatehouse::scopes::ScopeSet::parse(&found.scopes).unwrap();
            let grant = NewGrant {
                family_id: &family,
                scopes: &scopes,
                policy: policy(),
            };
            match claim_code(conn, &pepper, &found, grant, now).expect("the claim runs") {
                Some(_) => "spent by the claim",
                None => "lost the claim",
            }
        });
        let spent: Vec<_> = outcomes.iter().filter(|o| o.starts_with("spent")).collect();
        assert_eq!(spent.len(), 1, "one redemption: {outcomes:?}");
        if app.backend == crate::helpers::Backend::Postgres {
            assert_eq!(*spent[0], "spent in one statement", "{outcomes:?}");
        }
    }
);

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    synchronous_commit: String,
}

fn synchronous_commit(pg: &mut diesel::PgConnection) -> String {
    use diesel::RunQueryDsl;
    diesel::sql_query("SHOW synchronous_commit")
        .get_result::<Setting>(pg)
        .expect("SHOW")
        .synchronous_commit
}

both_backends!(
    a_new_code_commits_without_waiting_for_the_disk_and_nothing_else_does,
    |app| async move {
        use diesel::prelude::*;
        use gatehouse::db::DbConn;
        use gatehouse::db::schema::{auth_codes, users};
        use gatehouse::grants::{NewCode, issue_code, issue_code_relaxed};
        app.login_admin().await;
        let client = register(app, false, true).await;
        let pepper = app.state.digest_pepper.clone();
        let now = app.state.now();
        let mut conn = app.state.pool.get().expect("a pooled connection");
        let user_id: String = users::table
            .select(users::id)
            .first(&mut *conn)
            .expect("the admin");
        let new = NewCode {
            client_id: client.id.clone(),
            user_id,
            redirect_uri: REDIRECT.into(),
            scopes: gatehouse::scopes::ScopeSet::parse("read:users").unwrap(),
            code_challenge: None,
            auth_time: now,
            resource: None,
            nonce: Some("n-0S6".into()),
            session_id: None,
            workspace_id: None,
        };
        let codes = |conn: &mut DbConn| -> i64 {
            auth_codes::table
                .count()
                .get_result(conn)
                .expect("count codes")
        };
        let before = codes(&mut conn);
        // The cluster's own default may be either (CI's throwaway cluster runs with it off):
        // this connection starts from `on`, as a production server's does.
        if let DbConn::Pg(pg) = &mut *conn {
            diesel::sql_query("SET synchronous_commit = on")
                .execute(pg)
                .expect("SET");
        }
        // Outside a transaction (as the authorization endpoint issues): stored, and the
        // connection's later statements (a spend, a rotation) commit synchronously again.
        issue_code(&mut conn, &pepper, &new, now).expect("issued");
        assert_eq!(codes(&mut conn), before + 1);
        if let DbConn::Pg(pg) = &mut *conn {
            assert_eq!(synchronous_commit(pg), "on");
        }
        // Inside a transaction the code is written as any other row: the enclosing transaction
        // (which may hold other writes) is never relaxed.
        let plain: &mut DbConn = &mut conn;
        plain
            .transaction::<_, diesel::result::Error, _>(|conn| {
                issue_code(conn, &pepper, &new, now).expect("issued in a transaction");
                if let DbConn::Pg(pg) = conn {
                    assert_eq!(synchronous_commit(pg), "on");
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(codes(&mut conn), before + 2);
        // The relaxed statement's setting is in force for its own transaction (the planner
        // does not drop the `set_config`), and only there.
        if let DbConn::Pg(pg) = &mut *conn {
            pg.transaction::<_, diesel::result::Error, _>(|pg| {
                issue_code_relaxed(pg, "digest-of-a-relaxed-code", &new, now).expect("issued");
                assert_eq!(synchronous_commit(pg), "off");
                Ok(())
            })
            .unwrap();
            assert_eq!(synchronous_commit(pg), "on");
            diesel::sql_query("RESET synchronous_commit")
                .execute(pg)
                .expect("RESET");
        }
        assert_eq!(
            codes(&mut conn),
            before
                + if app.backend == crate::helpers::Backend::Postgres {
                    3
                } else {
                    2
                }
        );
    }
);

/// Where an authorization request without a live session goes, and the `Location` it names.
async fn signed_out_answer(app: &TestApp, url: &str, cookie: Option<&str>) -> String {
    let mut request = crate::helpers::new_client().get(app.url(url));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()["location"].to_str().unwrap().to_owned()
}

// The authorization endpoint's round trips to the database, with the caches' answers held
// for the whole test (so that only the request's own work is counted).
both_backends!(
    a_remembered_approval_takes_one_trip_to_the_database,
    settings = |s: &mut gatehouse::config::Settings| {
        s.keys.cache_ttl = std::time::Duration::from_secs(600);
    },
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        assert!(authorize(app, &url, "approve").await.contains_key("code"));
        // Approved before: the session, the approval and the new code in one trip.
        let before = app.state.db_calls();
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            app.state.db_calls() - before,
            1,
            "a remembered approval is one trip to the database"
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let code = query_of(&location)["code"].clone();
        let redeemed = exchange(
            app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
        assert_eq!(redeemed.status(), StatusCode::OK, "the code works");
        // No session cookie: to the sign-in page, without asking the database anything.
        let before = app.state.db_calls();
        let anonymous = signed_out_answer(app, &url, None).await;
        assert!(anonymous.starts_with("/login?next="), "{anonymous}");
        assert_eq!(app.state.db_calls(), before);
        // A cookie that names no session: read once, then the sign-in page.
        let stale =
            signed_out_answer(app, &url, Some("gatehouse_session=ses_notasessionatall")).await;
        assert!(stale.starts_with("/login?next="), "{stale}");
    }
);
