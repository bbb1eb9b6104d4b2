//! OpenID Connect: a real relying party (the `openidconnect` crate) signs in through discovery,
//! the code flow with PKCE and `nonce`, and validates the ID token (signature from the JWKS,
//! `iss`, `aud`, `exp`, `nonce`, `at_hash`); refresh, UserInfo, `max_age`, `prompt`,
//! `id_token_hint` and `login_hint`, and the attacks on each.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{
    REDIRECT, TestClient, authorize, authorize_url, exchange, oauth2_http, query_of, urlencode,
};

/// Serve on a port chosen now and make the issuer that exact origin, so that discovery (which
/// requires the document's `issuer` to be the URL it was fetched from) works as in production.
pub(crate) fn own_issuer(settings: &mut gatehouse::config::Settings) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    settings.bind = format!("127.0.0.1:{port}");
    settings.issuer = format!("http://127.0.0.1:{port}");
}

pub(crate) const OIDC_SCOPES: &str = "openid profile email offline_access read:users";

/// A confidential app allowed the OpenID scopes (and `read:users`).
pub(crate) async fn register_oidc(app: &TestApp, scopes: &str) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{self, ClientType, NewClient};
    let me: Value = app.me().await.json().await.unwrap();
    let new = NewClient {
        name: "Sign-in app".into(),
        owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
        client_type: ClientType::Confidential,
        redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
        scopes: gatehouse::scopes::ScopeSet::parse(scopes).unwrap(),
        first_party: false,
        grant_types: clients::default_grant_types(),
        resources: Vec::new(),
        ..NewClient::default()
    };
    crate::oauth::create_client(app, new).await
}

/// A code-flow sign-in for `scope` with `extra` authorization parameters: the token answer.
pub(crate) async fn sign_in(app: &TestApp, client: &TestClient, scope: &str, extra: &str) -> Value {
    let answer = authorize(app, &authorize_url(client, scope, None, extra), "approve").await;
    exchange(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &answer["code"]),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap()
}

both_backends!(
    a_real_relying_party_signs_in_and_validates_the_id_token,
    settings = own_issuer,
    |app| async move {
        use openidconnect::core::{
            CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
        };
        use openidconnect::{
            AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl,
            Nonce, OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
        };
        app.login_admin().await;
        let registered = register_oidc(app, OIDC_SCOPES).await;
        let issuer = IssuerUrl::new(app.state.settings.issuer.clone()).unwrap();
        let metadata = CoreProviderMetadata::discover_async(issuer, &oauth2_http)
            .await
            .expect("discovery from /.well-known/openid-configuration");
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(registered.id.clone()),
            Some(ClientSecret::new(registered.secret.clone().unwrap())),
        )
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, csrf, nonce) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("offline_access".into()))
            .set_pkce_challenge(challenge)
            .url();
        let path = format!("{}?{}", url.path(), url.query().unwrap());
        let page = app.get(&path).await.text().await.unwrap();
        for words in [
            "Know who you are",
            "See your email address",
            "Stay connected after you sign out",
        ] {
            assert!(page.contains(words), "the consent page says {words:?}");
        }
        let answer = authorize(app, &path, "approve").await;
        assert_eq!(answer["state"], *csrf.secret());
        let tokens = client
            .exchange_code(AuthorizationCode::new(answer["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&oauth2_http)
            .await
            .expect("the code exchange succeeds");
        let id_token = tokens.id_token().expect("an ID token for openid");
        let id_verifier = client.id_token_verifier();
        let claims = id_token
            .claims(&id_verifier, &nonce)
            .expect("signature, iss, aud, exp and nonce check out");
        let me: Value = app.me().await.json().await.unwrap();
        assert_eq!(
            claims.subject().as_str(),
            me["data"]["id"].as_str().unwrap()
        );
        assert_eq!(
            claims.email().map(|e| e.as_str()),
            Some(crate::helpers::ADMIN_EMAIL)
        );
        assert_eq!(claims.email_verified(), Some(false));
        assert!(claims.auth_time().is_some());
        let expected = claims.access_token_hash().expect("at_hash");
        let actual = AccessTokenHash::from_token(
            tokens.access_token(),
            id_token.signing_alg().unwrap(),
            id_token.signing_key(&id_verifier).unwrap(),
        )
        .unwrap();
        assert_eq!(*expected, actual, "at_hash matches the access token");
        // Another nonce (a replayed response) is refused by the relying party.
        assert!(
            id_token
                .claims(&id_verifier, &Nonce::new("another".into()))
                .is_err()
        );
        // UserInfo through the library: the same subject and claims.
        let info: CoreUserInfoClaims = client
            .user_info(tokens.access_token().clone(), None)
            .unwrap()
            .request_async(&oauth2_http)
            .await
            .expect("userinfo");
        assert_eq!(info.subject(), claims.subject());
        assert_eq!(
            info.email().map(|e| e.as_str()),
            Some(crate::helpers::ADMIN_EMAIL)
        );
        // offline_access: a refresh token, whose refresh brings a fresh ID token for the same
        // sign-in (same sub and auth_time, no nonce).
        let refresh = tokens
            .refresh_token()
            .expect("offline_access gives a refresh token");
        let refreshed = client
            .exchange_refresh_token(refresh)
            .unwrap()
            .request_async(&oauth2_http)
            .await
            .expect("the refresh succeeds");
        let again = refreshed.id_token().expect("a fresh ID token on refresh");
        let again_claims = jwt_claims(&again.to_string());
        let first_claims = jwt_claims(&id_token.to_string());
        assert_eq!(again_claims["sub"], first_claims["sub"]);
        assert_eq!(again_claims["auth_time"], first_claims["auth_time"]);
        assert_eq!(again_claims["sid"], first_claims["sid"]);
        assert!(again_claims.get("nonce").is_none());
        assert!(
            again
                .claims(&id_verifier, |_: Option<&Nonce>| Ok(()))
                .is_ok(),
            "the refreshed ID token verifies with the JWKS"
        );
    }
);

both_backends!(
    discovery_says_exactly_what_is_supported_at_both_addresses,
    |app| async move {
        let oidc: Value = app
            .get("/.well-known/openid-configuration")
            .await
            .json()
            .await
            .unwrap();
        let oauth: Value = app
            .get("/.well-known/oauth-authorization-server")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(oidc, oauth, "one document at both addresses");
        let issuer = &app.state.settings.issuer;
        assert_eq!(oidc["issuer"], *issuer);
        assert_eq!(
            oidc["userinfo_endpoint"],
            format!("{issuer}/oauth/userinfo")
        );
        assert_eq!(
            oidc["end_session_endpoint"],
            format!("{issuer}/oauth/logout")
        );
        assert_eq!(
            oidc["response_types_supported"],
            serde_json::json!(["code"])
        );
        assert_eq!(
            oidc["subject_types_supported"],
            serde_json::json!(["public"])
        );
        assert_eq!(
            oidc["id_token_signing_alg_values_supported"][0],
            app.state.key_ring().signing_alg()
        );
        assert_eq!(
            oidc["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(oidc["backchannel_logout_supported"], true);
        assert_eq!(oidc["authorization_response_iss_parameter_supported"], true);
        let scopes = oidc["scopes_supported"].as_array().unwrap();
        for scope in ["openid", "profile", "email", "offline_access"] {
            assert!(scopes.iter().any(|s| s == scope), "{scope}");
        }
        let claims = oidc["claims_supported"].as_array().unwrap();
        for claim in ["sub", "nonce", "at_hash", "sid", "email", "name"] {
            assert!(claims.iter().any(|c| c == claim), "{claim}");
        }
    }
);

both_backends!(
    id_tokens_only_for_openid_and_refresh_tokens_only_with_offline_access,
    |app| async move {
        app.login_admin().await;
        let client = register_oidc(app, OIDC_SCOPES).await;
        let plain = sign_in(app, &client, "read:users", "").await;
        assert!(
            plain.get("id_token").is_none(),
            "no openid, no ID token: {plain}"
        );
        assert!(
            plain["refresh_token"].is_string(),
            "a plain OAuth grant keeps its refresh token"
        );
        let online = sign_in(app, &client, "openid email", "&nonce=n-1").await;
        assert!(online["id_token"].is_string());
        assert!(
            online.get("refresh_token").is_none(),
            "a sign-in without offline_access gets no refresh token: {online}"
        );
        assert_eq!(
            jwt_claims(online["id_token"].as_str().unwrap())["nonce"],
            "n-1"
        );
        let offline = sign_in(app, &client, "openid offline_access", "").await;
        assert!(offline["refresh_token"].is_string());
        let claims = jwt_claims(offline["id_token"].as_str().unwrap());
        assert!(claims.get("nonce").is_none(), "no nonce asked, none given");
        assert!(
            claims.get("email").is_none(),
            "no email scope, no email claim"
        );
        assert_eq!(claims["aud"], client.id);
        // A refresh narrowed to drop openid gets no ID token.
        let narrowed: Value = exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", offline["refresh_token"].as_str().unwrap()),
                ("scope", "offline_access"),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        assert!(narrowed["access_token"].is_string(), "{narrowed}");
        assert!(narrowed.get("id_token").is_none());
    }
);

/// GET /oauth/userinfo with `Authorization: Bearer <token>`.
async fn userinfo(app: &TestApp, token: &str) -> (StatusCode, String, Value) {
    let response = reqwest::Client::new()
        .get(app.url("/oauth/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    // Claims about a person: never kept by a cache on the way (RFC 6749 §5.1's rule for
    // token answers, applied to every answer of the endpoint).
    assert_eq!(
        response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "UserInfo answered {status} without Cache-Control: no-store"
    );
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        challenge,
        response.json().await.unwrap_or(Value::Null),
    )
}

both_backends!(
    userinfo_answers_only_an_access_token_with_openid,
    |app| async move {
        app.login_admin().await;
        let client = register_oidc(app, OIDC_SCOPES).await;
        let signed_in = sign_in(app, &client, "openid profile", "").await;
        let token = signed_in["access_token"].as_str().unwrap();
        let (status, _, body) = userinfo(app, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let me: Value = app.me().await.json().await.unwrap();
        assert_eq!(body["sub"], me["data"]["id"]);
        assert_eq!(body["name"], me["data"]["display_name"]);
        assert!(body.get("email").is_none(), "no email scope: {body}");
        // POST, with the token in the body (RFC 6750 §2.2).
        let posted: Value = reqwest::Client::new()
            .post(app.url("/oauth/userinfo"))
            .form(&[("access_token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(posted["sub"], body["sub"]);

        // A token without openid: 403 insufficient_scope.
        let plain = sign_in(app, &client, "read:users", "").await;
        let (status, challenge, body) =
            userinfo(app, plain["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert!(
            challenge.contains("error=\"insufficient_scope\""),
            "{challenge}"
        );
        assert_eq!(body["error"], "insufficient_scope");

        // An API key of the same user (it holds every scope of its owner): 401 invalid_token.
        let (_, key) = app
            .create_key(serde_json::json!({"name": "ci", "mode": "live"}))
            .await;
        let (status, challenge, _) = userinfo(app, &key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

        // A client_credentials token (no user behind it): 401.
        let cc_client =
            crate::oauth_complete::register_confidential(app, "openid read:users", true).await;
        let cc: Value = exchange(
            app,
            &cc_client,
            &[("grant_type", "client_credentials"), ("scope", "openid")],
        )
        .await
        .json()
        .await
        .unwrap();
        if let Some(cc_token) = cc["access_token"].as_str() {
            let (status, challenge, _) = userinfo(app, cc_token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }

        // A token for another audience, signed by us: 401.
        let mut claims = jwt_claims(token);
        claims["aud"] = "https://other.example.com".into();
        let claims: gatehouse::jwt::AccessClaims = serde_json::from_value(claims).unwrap();
        let foreign = app.state.key_ring().sign(&claims).unwrap();
        let (status, _, _) = userinfo(app, &foreign).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // No credential: 401 with a bare challenge; garbage: 401 invalid_token.
        let bare = reqwest::Client::new()
            .get(app.url("/oauth/userinfo"))
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
        assert!(
            bare.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (status, _, _) = userinfo(app, "eyJnot.a.token").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);

        // The token twice (header and body): 400.
        let twice = reqwest::Client::new()
            .post(app.url("/oauth/userinfo"))
            .bearer_auth(token)
            .form(&[("access_token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(twice.status(), StatusCode::BAD_REQUEST);
    }
);

both_backends!(
    max_age_and_prompt_login_force_a_fresh_sign_in,
    |app| async move {
        app.login_admin().await;
        let client = register_oidc(app, OIDC_SCOPES).await;
        // max_age=0: always back to the sign-in page, even just after signing in; the way back
        // drops max_age, so the fresh sign-in then completes.
        let url = authorize_url(
            &client,
            "openid",
            None,
            "&max_age=0&login_hint=admin%40example.com",
        );
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/login?next="), "{location}");
        assert!(
            !location.contains("max_age"),
            "the way back drops max_age: {location}"
        );
        let login_page = app.get(&location).await.text().await.unwrap();
        assert!(
            login_page.contains("value=\"admin@example.com\""),
            "login_hint fills in the email"
        );
        // Within max_age: no new sign-in.
        let fresh = authorize(
            app,
            &authorize_url(&client, "openid", None, "&max_age=300"),
            "approve",
        )
        .await;
        assert!(fresh.contains_key("code"));
        // Past max_age with prompt=none: login_required, back to the client.
        app.clock.advance(chrono::Duration::seconds(400));
        let response = app
            .get(&authorize_url(
                &client,
                "openid",
                None,
                "&max_age=300&prompt=none",
            ))
            .await;
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(query_of(&location)["error"], "login_required");
        // A bad max_age is an error page, not a redirect.
        let response = app
            .get(&authorize_url(&client, "openid", None, "&max_age=soon"))
            .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
);

both_backends!(
    id_token_hint_must_be_ours_for_this_client_and_this_user,
    |app| async move {
        app.login_admin().await;
        let client = register_oidc(app, OIDC_SCOPES).await;
        let mine = sign_in(app, &client, "openid", "").await;
        let hint = mine["id_token"].as_str().unwrap().to_owned();
        // The hint of the signed-in user with prompt=none: a code.
        let answer = authorize(
            app,
            &authorize_url(
                &client,
                "openid",
                None,
                &format!("&prompt=none&id_token_hint={hint}"),
            ),
            "approve",
        )
        .await;
        assert!(answer.contains_key("code"), "{answer:?}");
        // Another user's hint with prompt=none: login_required (nobody else is signed in
        // silently).
        let other = app
            .create_user("other@example.com", "other user password", false)
            .await;
        let mut claims = jwt_claims(&hint);
        claims["sub"] = other.into();
        let other_hint = app.state.key_ring().sign_as(&claims, "JWT").unwrap();
        let response = app
            .get(&authorize_url(
                &client,
                "openid",
                None,
                &format!("&prompt=none&id_token_hint={other_hint}"),
            ))
            .await;
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(query_of(&location)["error"], "login_required");
        // A hint issued to another app, or not ours at all: an error page.
        let another = register_oidc(app, OIDC_SCOPES).await;
        for bad in [hint.as_str(), "eyJhbGciOiJub25lIn0.e30."] {
            let response = app
                .get(&authorize_url(
                    &another,
                    "openid",
                    None,
                    &format!("&prompt=none&id_token_hint={}", urlencode(bad)),
                ))
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        }
        let _ = hidden_field;
    }
);
