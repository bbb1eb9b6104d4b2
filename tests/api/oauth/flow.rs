//! The authorization-code flow end to end: a JWT that calls the API and a rotating refresh
//! token, replayed and concurrent redemptions, the refresh grace window, a real `oauth2` client,
//! and what a full flow costs the database.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;

use super::{
    REDIRECT, authorize, authorize_url, exchange, futures_join, oauth_error, oauth2_http,
    obtain_tokens, pkce, query_of, register,
};

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
