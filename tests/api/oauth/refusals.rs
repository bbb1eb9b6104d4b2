//! What the authorization and token endpoints refuse: bad clients and redirect URIs (a page,
//! never a redirect), bad requests, client authentication and grant errors per RFC 6749,
//! consent without its CSRF token or a signed-in user, and admin-only scopes a member asks for.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::hidden_field;

use super::{
    REDIRECT, TestClient, authorize, authorize_url, exchange, oauth_error, pkce, query_of,
    register, urlencode,
};

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
