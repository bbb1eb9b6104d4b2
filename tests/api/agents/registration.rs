//! Dynamic client registration (RFC 7591/7592) under each policy: an MCP client discovers,
//! registers, signs in and calls the API; confidential registrations; metadata checked field by
//! field; registration off by default, behind initial access tokens, against floods; the
//! janitor; and a real OpenID Connect library registering itself.

use std::collections::HashMap;

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::oauth::{REDIRECT, TestClient, authorize, exchange, pkce};

use super::{agent_metadata, authorize_url, open_registration, register, registration, sign_in};

both_backends!(
    an_mcp_client_discovers_registers_signs_in_and_calls_the_api,
    settings = open_registration,
    |app| async move {
        // 1. The API's 401 says where its metadata is.
        let refused = app
            .client
            .get(app.url("/v1/users/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let challenge = refused.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let issuer = app.state.settings.issuer.clone();
        let metadata_url = format!("{issuer}/.well-known/oauth-protected-resource");
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains(&format!("resource_metadata=\"{metadata_url}\"")),
            "{challenge}"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "AUTH_001",
            "the envelope stays the body"
        );

        // 2. Protected-resource metadata → the authorization server → its metadata.
        let resource: Value = reqwest::get(&metadata_url)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(resource["resource"], issuer.as_str());
        assert_eq!(resource["authorization_servers"][0], issuer.as_str());
        assert_eq!(resource["bearer_methods_supported"], json!(["header"]));
        let server: Value =
            reqwest::get(format!("{issuer}/.well-known/oauth-authorization-server"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert_eq!(
            server["registration_endpoint"],
            format!("{issuer}/oauth/register")
        );
        assert_eq!(server["code_challenge_methods_supported"], json!(["S256"]));
        assert!(
            server["token_endpoint_auth_methods_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("none"))
        );
        assert_eq!(
            server["authorization_response_iss_parameter_supported"],
            true
        );

        // 3. Register.
        let registered = register(app, None, agent_metadata()).await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        assert_eq!(registered.headers()["cache-control"], "no-store");
        let reg: Value = registered.json().await.unwrap();
        let client_id = reg["client_id"].as_str().unwrap().to_owned();
        let rat = reg["registration_access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(rat.starts_with("rat_"));
        assert!(
            reg.get("client_secret").is_none(),
            "a public client has no secret"
        );
        assert_eq!(reg["token_endpoint_auth_method"], "none");
        assert_eq!(reg["scope"], "read:users");
        assert_eq!(reg["client_uri"], "https://agent.example.com");
        let manage_uri = reg["registration_client_uri"].as_str().unwrap().to_owned();
        assert_eq!(manage_uri, format!("{issuer}/oauth/register/{client_id}"));

        // 4. Sign in with PKCE and the resource; the consent page says it registered itself.
        app.login_admin().await;
        let (_, challenge) = pkce();
        let page = app
            .get(&authorize_url(&client_id, &challenge, &issuer))
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("id=\"consent-self-registered\""), "{page}");
        assert!(page.contains("https://agent.example.com/privacy"));
        let tokens = sign_in(app, &client_id).await;
        let access = tokens["access_token"].as_str().unwrap();
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        // Public clients' refresh tokens rotate.
        let refreshed = exchange(
            app,
            &TestClient {
                id: client_id.clone(),
                secret: None,
            },
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = refreshed.json().await.unwrap();
        assert_ne!(refreshed["refresh_token"], tokens["refresh_token"]);

        // Its use is recorded (the Agents page and the janitor read it).
        let id = client_id.clone();
        let row = app
            .state
            .db(move |c| gatehouse::clients::find(c, &id))
            .await
            .unwrap()
            .unwrap();
        assert!(row.first_used_at.is_some() && row.last_used_at.is_some());
        assert!(row.owner_user_id.is_none());

        // 5. RFC 7592: read, change, delete — only with its own token.
        let read = registration(app, "GET", &manage_uri, Some(&rat), None).await;
        assert_eq!(read.status(), StatusCode::OK);
        let read: Value = read.json().await.unwrap();
        assert_eq!(read["client_name"], "Desk Agent");
        assert!(read.get("registration_access_token").is_none());
        for token in [None, Some("rat_not-a-real-token"), Some(access)] {
            let r = registration(app, "GET", &manage_uri, token, None).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token:?}");
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
        }
        let mut changed = agent_metadata();
        changed["client_id"] = json!(client_id);
        changed["client_name"] = json!("Desk Agent 2");
        let put = registration(app, "PUT", &manage_uri, Some(&rat), Some(changed.clone())).await;
        assert_eq!(put.status(), StatusCode::OK);
        assert_eq!(
            put.json::<Value>().await.unwrap()["client_name"],
            "Desk Agent 2"
        );
        let mut switch = changed.clone();
        switch["token_endpoint_auth_method"] = json!("client_secret_basic");
        let put = registration(app, "PUT", &manage_uri, Some(&rat), Some(switch)).await;
        assert_eq!(put.status(), StatusCode::BAD_REQUEST);
        let mut other = changed.clone();
        other["client_id"] = json!("cli_someone_else");
        let put = registration(app, "PUT", &manage_uri, Some(&rat), Some(other)).await;
        assert_eq!(
            put.json::<Value>().await.unwrap()["error"],
            "invalid_client_metadata"
        );

        // Another registration's token does not reach this one.
        let second: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let second_rat = second["registration_access_token"].as_str().unwrap();
        assert_eq!(
            registration(app, "GET", &manage_uri, Some(second_rat), None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );

        let deleted = registration(app, "DELETE", &manage_uri, Some(&rat), None).await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        // The deleted registration's token is dead, the app's tokens with it.
        assert_eq!(
            registration(app, "GET", &manage_uri, Some(&rat), None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            registration(app, "DELETE", &manage_uri, Some(&rat), None)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let after = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(refreshed["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        let again = exchange(
            app,
            &TestClient {
                id: client_id.clone(),
                secret: None,
            },
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    refreshed["refresh_token"].as_str().unwrap(),
                ),
            ],
        )
        .await;
        assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    a_confidential_registration_gets_a_secret_once_and_uses_it,
    settings = |s: &mut gatehouse::config::Settings| s.registration.mode =
        gatehouse::config::RegistrationMode::Token,
    |app| async move {
        let mut body = agent_metadata();
        body["token_endpoint_auth_method"] = json!("client_secret_basic");
        body["grant_types"] = json!(["authorization_code", "refresh_token", "client_credentials"]);
        // client_credentials (tokens that act for no user) only with an administrator's token.
        let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
        let (_, initial) = app
            .state
            .db(move |c| {
                gatehouse::clients::registration::mint_initial_token(
                    c,
                    &pepper,
                    "m2m",
                    None,
                    now + Duration::days(1),
                    None,
                    now,
                )
            })
            .await
            .unwrap();
        let reg: Value = register(app, Some(initial.expose()), body)
            .await
            .json()
            .await
            .unwrap();
        let id = reg["client_id"].as_str().unwrap();
        let secret = reg["client_secret"].as_str().unwrap();
        assert!(secret.starts_with("cs_"));
        assert_eq!(reg["client_secret_expires_at"], 0);
        let cc = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "read:users"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(cc.status(), StatusCode::OK);
        // Reading the registration never shows the secret again.
        let read: Value = registration(
            app,
            "GET",
            reg["registration_client_uri"].as_str().unwrap(),
            reg["registration_access_token"].as_str(),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        assert!(read.get("client_secret").is_none());
    }
);

both_backends!(
    registration_metadata_is_checked_field_by_field,
    settings = open_registration,
    |app| async move {
        let with = |change: Value| {
            let mut body = agent_metadata();
            for (k, v) in change.as_object().unwrap() {
                if v.is_null() {
                    body.as_object_mut().unwrap().remove(k);
                } else {
                    body[k] = v.clone();
                }
            }
            body
        };
        let cases = [
            (
                with(json!({"redirect_uris": ["http://agent.example.com/callback"]})),
                "invalid_redirect_uri",
            ),
            (
                with(json!({"redirect_uris": ["https://agent.example.com/callback#x"]})),
                "invalid_redirect_uri",
            ),
            (
                with(json!({"redirect_uris": ["https://*.example.com/callback"]})),
                "invalid_redirect_uri",
            ),
            (with(json!({"redirect_uris": null})), "invalid_redirect_uri"),
            (with(json!({"redirect_uris": []})), "invalid_redirect_uri"),
            (
                with(json!({"grant_types": ["authorization_code"], "response_types": ["token"]})),
                "invalid_client_metadata",
            ),
            (
                with(
                    json!({"grant_types": ["client_credentials"], "response_types": ["code"], "token_endpoint_auth_method": "client_secret_post"}),
                ),
                "invalid_client_metadata",
            ),
            (
                with(json!({"grant_types": ["implicit"]})),
                "invalid_client_metadata",
            ),
            (
                with(
                    json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none", "response_types": [], "redirect_uris": null}),
                ),
                "invalid_client_metadata",
            ),
            (
                with(json!({"token_endpoint_auth_method": "client_secret_jwt"})),
                "invalid_client_metadata",
            ),
            (
                with(json!({"scope": "admin:users"})),
                "invalid_client_metadata",
            ),
            (
                with(json!({"scope": "no-such:scope"})),
                "invalid_client_metadata",
            ),
            (
                with(json!({"logo_uri": "http://agent.example.com/logo.png"})),
                "invalid_client_metadata",
            ),
            (
                with(json!({"client_id": "cli_chosen_by_me"})),
                "invalid_client_metadata",
            ),
            // Anyone may register: no app that acts for nobody (client_credentials).
            (
                with(
                    json!({"grant_types": ["authorization_code", "client_credentials"], "token_endpoint_auth_method": "client_secret_basic"}),
                ),
                "invalid_client_metadata",
            ),
            (json!(["not", "an", "object"]), "invalid_client_metadata"),
            (
                with(json!({"redirect_uris": "https://agent.example.com/callback"})),
                "invalid_client_metadata",
            ),
        ];
        for (body, code) in cases {
            let r = register(app, None, body.clone()).await;
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
            let answer: Value = r.json().await.unwrap();
            assert_eq!(answer["error"], code, "{body}: {answer}");
            assert!(
                answer["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
        }
        // Nothing was registered by any of them.
        let count = app
            .state
            .db(|c| {
                use diesel::prelude::*;
                use gatehouse::db::schema::clients;
                Ok(clients::table
                    .filter(clients::origin.eq("dcr"))
                    .count()
                    .get_result::<i64>(c)?)
            })
            .await
            .unwrap();
        assert_eq!(count, 0);
    }
);

both_backends!(registration_is_off_by_default, |app| async move {
    let r = register(app, None, agent_metadata()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    let server: Value = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(server.get("registration_endpoint").is_none());
    assert_eq!(server["client_id_metadata_document_supported"], false);
});

both_backends!(
    with_the_token_policy_only_a_live_initial_access_token_registers,
    settings = |s: &mut gatehouse::config::Settings| s.registration.mode =
        gatehouse::config::RegistrationMode::Token,
    |app| async move {
        use gatehouse::clients::registration as reg;
        let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
        let mint = move |uses: Option<i32>, days: i64| {
            let pepper = pepper.clone();
            move |c: &mut gatehouse::db::DbConn| {
                reg::mint_initial_token(
                    c,
                    &pepper,
                    "test",
                    None,
                    now + Duration::days(days),
                    uses,
                    now,
                )
            }
        };
        let (_, once) = app.state.db(mint(Some(1), 7)).await.unwrap();
        let (revoked, revoked_secret) = app.state.db(mint(None, 7)).await.unwrap();
        let (_, short) = app.state.db(mint(None, 1)).await.unwrap();
        let id = revoked.id.clone();
        let at = app.state.now();
        app.state
            .db(move |c| reg::revoke_initial_token(c, &id, at))
            .await
            .unwrap();

        for token in [None, Some("iat_garbage"), Some(revoked_secret.expose())] {
            let r = register(app, token, agent_metadata()).await;
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{token:?}");
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_token");
        }
        assert_eq!(
            register(app, Some(once.expose()), agent_metadata())
                .await
                .status(),
            StatusCode::CREATED
        );
        // Used up.
        assert_eq!(
            register(app, Some(once.expose()), agent_metadata())
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        // Bad metadata does not spend a use.
        assert_eq!(
            register(app, Some(short.expose()), json!({"redirect_uris": []}))
                .await
                .status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            register(app, Some(short.expose()), agent_metadata())
                .await
                .status(),
            StatusCode::CREATED
        );
        app.clock.advance(Duration::days(2));
        assert_eq!(
            register(app, Some(short.expose()), agent_metadata())
                .await
                .status(),
            StatusCode::UNAUTHORIZED,
            "expired"
        );
    }
);

both_backends!(
    a_flood_of_registrations_from_one_address_is_refused,
    settings = |s: &mut gatehouse::config::Settings| {
        s.registration.mode = gatehouse::config::RegistrationMode::Open;
        s.open_limits.registration_per_address = 10;
    },
    |app| async move {
        let client = reqwest::Client::new();
        let mut statuses: HashMap<u16, usize> = HashMap::new();
        for _ in 0..1000 {
            let r = client
                .post(app.url("/oauth/register"))
                .json(&agent_metadata())
                .send()
                .await
                .unwrap();
            if r.status() == StatusCode::TOO_MANY_REQUESTS {
                assert!(r.headers().contains_key("retry-after"));
            }
            *statuses.entry(r.status().as_u16()).or_default() += 1;
        }
        assert!(
            statuses.get(&201).copied().unwrap_or(0) <= 11,
            "{statuses:?}"
        );
        assert!(
            statuses.get(&429).copied().unwrap_or(0) >= 989,
            "{statuses:?}"
        );
        // The API itself still answers.
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
);

both_backends!(
    unused_self_registered_apps_are_deleted_by_the_janitor,
    settings = |s: &mut gatehouse::config::Settings| {
        open_registration(s);
        s.registration.unused_after = Some(Duration::days(30));
    },
    |app| async move {
        let unused: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let used: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        app.clock.advance(Duration::days(20));
        app.login_admin().await;
        sign_in(app, used["client_id"].as_str().unwrap()).await;
        app.clock.advance(Duration::days(11));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.unused_clients, 1);
        let gone = registration(
            app,
            "GET",
            unused["registration_client_uri"].as_str().unwrap(),
            unused["registration_access_token"].as_str(),
            None,
        )
        .await;
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
        let kept = registration(
            app,
            "GET",
            used["registration_client_uri"].as_str().unwrap(),
            used["registration_access_token"].as_str(),
            None,
        )
        .await;
        assert_eq!(kept.status(), StatusCode::OK);
        // Registered apps are never the janitor's business, used or not.
        app.login_admin().await;
        crate::oauth::register(app, true, false).await;
        app.clock.advance(Duration::days(400));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.unused_clients, 1, "only the self-registered one");
    }
);

both_backends!(
    a_real_openid_connect_library_registers_itself_and_signs_in,
    settings = open_registration,
    |app| async move {
        use crate::oauth::oauth2_http;
        use openidconnect::core::{
            CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod,
            CoreClientRegistrationRequest, CoreGrantType, CoreProviderMetadata,
        };
        use openidconnect::registration::EmptyAdditionalClientMetadata;
        use openidconnect::{
            AuthorizationCode, ClientName, CsrfToken, IssuerUrl, LocalizedClaim, Nonce,
            OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope,
        };
        let issuer = IssuerUrl::new(app.state.settings.issuer.clone()).unwrap();
        let metadata = CoreProviderMetadata::discover_async(issuer, &oauth2_http)
            .await
            .expect("discovery");
        let endpoint = metadata
            .registration_endpoint()
            .expect("registration_endpoint")
            .clone();
        let mut name = LocalizedClaim::new();
        name.insert(None, ClientName::new("Library Agent".into()));
        let registered = CoreClientRegistrationRequest::new(
            vec![RedirectUrl::new(REDIRECT.into()).unwrap()],
            EmptyAdditionalClientMetadata {},
        )
        .set_client_name(Some(name))
        .set_grant_types(Some(vec![
            CoreGrantType::AuthorizationCode,
            CoreGrantType::RefreshToken,
        ]))
        .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::None))
        .register_async(&endpoint, &oauth2_http)
        .await
        .expect("the library registers itself");
        let client =
            CoreClient::from_provider_metadata(metadata, registered.client_id().clone(), None)
                .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("read:users".into()))
            .set_pkce_challenge(challenge)
            .url();
        app.login_admin().await;
        let answer = authorize(
            app,
            &format!("{}?{}", url.path(), url.query().unwrap()),
            "approve",
        )
        .await;
        let tokens = client
            .exchange_code(AuthorizationCode::new(answer["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&oauth2_http)
            .await
            .expect("the code exchange succeeds");
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(tokens.access_token().secret())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        // The library's own error type reads Gatehouse's RFC 7591 errors.
        let refused = CoreClientRegistrationRequest::new(
            vec![RedirectUrl::new("http://agent.example.com/cb".into()).unwrap()],
            EmptyAdditionalClientMetadata {},
        )
        .register_async(&endpoint, &oauth2_http)
        .await
        .expect_err("an http redirect on a public host is refused");
        assert!(
            format!("{refused:?}").contains("InvalidRedirectUri"),
            "{refused:?}"
        );
    }
);
