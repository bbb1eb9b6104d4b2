//! CORS: which pages of other origins may call Gatehouse, and read its answers. Tried as a
//! page of a foreign site would: preflights, codes and tokens spent from the wrong origin, a
//! confidential app's secret used from a page, `sk_` keys from a page.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, TestClient, authorize, authorize_url, pkce, register};

const APP_ORIGIN: &str = "https://app.example.com";
const EVIL: &str = "https://evil.example";

fn allow_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", "content-type, dpop")
        .send()
        .await
        .unwrap()
}

/// A fresh code of `client` (PKCE), with its verifier.
async fn code_of(app: &TestApp, client: &TestClient, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let query = authorize(
        app,
        &authorize_url(client, scope, Some(&challenge), ""),
        "approve",
    )
    .await;
    (query["code"].clone(), verifier)
}

async fn redeem(
    app: &TestApp,
    client: &TestClient,
    code: &str,
    verifier: &str,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/token"));
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", &client.id),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

both_backends!(
    a_public_apps_page_may_call_the_token_endpoint_and_no_other_page_may,
    |app| async move {
        app.login_admin().await;
        // Its redirect URIs (https://app.example.com/callback, http://127.0.0.1/cb) give its
        // web origins: the https origin exactly, the loopback host on any port.
        let client = register(app, true, false).await;

        let asked = preflight(app, "/oauth/token", APP_ORIGIN, "POST").await;
        assert_eq!(asked.status(), StatusCode::NO_CONTENT);
        let headers = asked.headers();
        assert_eq!(allow_origin(headers), Some(APP_ORIGIN));
        let allowed = headers["access-control-allow-headers"].to_str().unwrap();
        assert!(allowed.contains("DPoP"), "{allowed}");
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "never with cookies"
        );
        assert!(headers["vary"].to_str().unwrap().contains("Origin"));
        let loopback = preflight(app, "/oauth/token", "http://127.0.0.1:5173", "POST").await;
        assert_eq!(loopback.status(), StatusCode::NO_CONTENT);
        for stranger in [
            EVIL,
            "http://app.example.com",
            "https://app.example.com:8443",
            "null",
        ] {
            let refused = preflight(app, "/oauth/token", stranger, "POST").await;
            assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{stranger}");
            assert_eq!(allow_origin(refused.headers()), None, "{stranger}");
        }

        // A foreign page cannot spend a code: refused before anything is spent…
        let (code, verifier) = code_of(app, &client, "read:users").await;
        let stolen = redeem(app, &client, &code, &verifier, Some(EVIL)).await;
        assert_eq!(stolen.status(), StatusCode::BAD_REQUEST);
        assert_eq!(allow_origin(stolen.headers()), None);
        let body: Value = stolen.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        // …so the app's own page still redeems it, and reads the answer.
        let redeemed = redeem(app, &client, &code, &verifier, Some(APP_ORIGIN)).await;
        assert_eq!(redeemed.status(), StatusCode::OK);
        assert_eq!(allow_origin(redeemed.headers()), Some(APP_ORIGIN));
        let exposed = redeemed.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(exposed.contains("DPoP-Nonce"), "{exposed}");
        let tokens: Value = redeemed.json().await.unwrap();
        let refresh = tokens["refresh_token"].as_str().unwrap();

        // Revocation the same way: a foreign page is refused, the app's page is answered.
        let revoke = |origin: &'static str| {
            reqwest::Client::new()
                .post(app.url("/oauth/revoke"))
                .header("Origin", origin)
                .form(&[("token", refresh), ("client_id", client.id.as_str())])
                .send()
        };
        let refused = revoke(EVIL).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let revoked = revoke(APP_ORIGIN).await.unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        assert_eq!(allow_origin(revoked.headers()), Some(APP_ORIGIN));

        // Requests without Origin (servers, the CLI) and Gatehouse's own pages are not CORS.
        let (code, verifier) = code_of(app, &client, "read:users").await;
        let own = app.address.clone();
        let same_site = redeem(app, &client, &code, &verifier, Some(&own)).await;
        assert_eq!(same_site.status(), StatusCode::OK);
        assert_eq!(allow_origin(same_site.headers()), None);
    }
);

both_backends!(
    a_confidential_apps_secret_is_never_used_from_a_page,
    |app| async move {
        app.login_admin().await;
        // A public app registered the origin, so the preflight is answered…
        register(app, true, false).await;
        let confidential = register(app, false, false).await;
        assert_eq!(
            preflight(app, "/oauth/token", APP_ORIGIN, "POST")
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        // …but the request names a confidential app: refused, its credentials unused.
        let attempt = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .header("Origin", APP_ORIGIN)
            .basic_auth(&confidential.id, confidential.secret.as_deref())
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(attempt.status(), StatusCode::BAD_REQUEST);
        let body: Value = attempt.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        // A key holder's exchange names no app: not from a page either.
        let (_, key) = app.create_key(json!({ "name": "server key" })).await;
        let exchange = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .header("Origin", APP_ORIGIN)
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", key.as_str()),
                (
                    "subject_token_type",
                    "urn:gatehouse:params:oauth:token-type:api_key",
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(exchange.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            exchange.json::<Value>().await.unwrap()["error"],
            "invalid_request"
        );
    }
);

both_backends!(
    userinfo_answers_a_page_only_of_the_tokens_own_app,
    |app| async move {
        use gatehouse::clients::redirect::RedirectUri;
        use gatehouse::clients::{ClientType, NewClient};
        app.login_admin().await;
        let me: Value = app.me().await.json().await.unwrap();
        let spa = |name: &str, redirect: &str| NewClient {
            name: name.into(),
            owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
            client_type: ClientType::Public,
            redirect_uris: vec![RedirectUri::parse(redirect).unwrap()],
            scopes: gatehouse::scopes::ScopeSet::parse("openid read:users").unwrap(),
            grant_types: gatehouse::clients::default_grant_types(),
            ..Default::default()
        };
        let client = crate::oauth::create_client(app, spa("Orders SPA", REDIRECT)).await;
        crate::oauth::create_client(app, spa("Other SPA", "https://other.example/cb")).await;
        let (code, verifier) = code_of(app, &client, "openid read:users").await;
        let tokens: Value = redeem(app, &client, &code, &verifier, Some(APP_ORIGIN))
            .await
            .json()
            .await
            .unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let userinfo = |origin: &'static str, token: &str| {
            reqwest::Client::new()
                .get(app.url("/oauth/userinfo"))
                .header("Origin", origin)
                .bearer_auth(token)
                .send()
        };
        let own = userinfo(APP_ORIGIN, access).await.unwrap();
        assert_eq!(own.status(), StatusCode::OK);
        assert_eq!(allow_origin(own.headers()), Some(APP_ORIGIN));
        // Another public app's page holding this app's token: answered, but not readable.
        let other = userinfo("https://other.example", access).await.unwrap();
        assert_eq!(other.status(), StatusCode::OK);
        assert_eq!(allow_origin(other.headers()), None);
        // A refusal is readable by a registered origin (so the page sees WWW-Authenticate)…
        let refused = userinfo(APP_ORIGIN, "not-a-token").await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(allow_origin(refused.headers()), Some(APP_ORIGIN));
        let exposed = refused.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(exposed.contains("WWW-Authenticate"), "{exposed}");
        // …and by no one else.
        let stranger = userinfo(EVIL, access).await.unwrap();
        assert_eq!(allow_origin(stranger.headers()), None);
    }
);

both_backends!(
    discovery_and_keys_are_readable_from_any_origin,
    |app| async move {
        for path in [
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/.well-known/jwks.json",
        ] {
            let answer = reqwest::Client::new()
                .get(app.url(path))
                .header("Origin", EVIL)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
            assert_eq!(allow_origin(answer.headers()), Some("*"), "{path}");
            let asked = preflight(app, path, EVIL, "GET").await;
            assert_eq!(asked.status(), StatusCode::NO_CONTENT, "{path}");
            assert_eq!(allow_origin(asked.headers()), Some("*"), "{path}");
        }
        // The sign-in page and introspection are not served to other origins.
        let login = preflight(app, "/oauth/introspect", EVIL, "POST").await;
        assert_eq!(allow_origin(login.headers()), None);
    }
);

both_backends!(
    an_app_registers_its_origins_and_only_a_public_app_may,
    |app| async move {
        app.login_admin().await;
        let create = |body: Value| app.client.post(app.url("/v1/clients")).json(&body).send();
        let confidential = create(json!({
            "name": "Server app",
            "redirect_uris": [REDIRECT],
            "allowed_origins": ["https://spa.example.com"],
        }))
        .await
        .unwrap();
        assert_eq!(confidential.status(), StatusCode::BAD_REQUEST);
        for bad in [
            "https://spa.example.com/app",
            "http://spa.example.com",
            "https://*.example.com",
            "spa.example.com",
        ] {
            let refused = create(json!({
                "name": "SPA",
                "client_type": "public",
                "redirect_uris": [REDIRECT],
                "allowed_origins": [bad],
            }))
            .await
            .unwrap();
            assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        }
        let created = create(json!({
            "name": "SPA",
            "client_type": "public",
            "redirect_uris": [REDIRECT],
            "allowed_origins": ["https://SPA.example.com/", "http://localhost:5173"],
        }))
        .await
        .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let body: Value = created.json().await.unwrap();
        assert_eq!(
            body["data"]["allowed_origins"],
            json!(["https://spa.example.com", "http://localhost:5173"])
        );
        let id = body["data"]["client_id"].as_str().unwrap().to_owned();
        // Registered origins replace the redirect URIs' origin.
        let spa = preflight(app, "/oauth/token", "https://spa.example.com", "POST").await;
        assert_eq!(spa.status(), StatusCode::NO_CONTENT);
        let derived = preflight(app, "/oauth/token", APP_ORIGIN, "POST").await;
        assert_eq!(derived.status(), StatusCode::FORBIDDEN);
        // `null` goes back to the redirect URIs' origins, at once.
        let patched = app
            .client
            .patch(app.url(&format!("/v1/clients/{id}")))
            .json(&json!({ "allowed_origins": null }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        let body: Value = patched.json().await.unwrap();
        assert_eq!(body["data"]["allowed_origins"], json!([APP_ORIGIN]));
        let derived = preflight(app, "/oauth/token", APP_ORIGIN, "POST").await;
        assert_eq!(derived.status(), StatusCode::NO_CONTENT);
        let gone = preflight(app, "/oauth/token", "https://spa.example.com", "POST").await;
        assert_eq!(gone.status(), StatusCode::FORBIDDEN);
    }
);

fn open_registration(s: &mut gatehouse::config::Settings) {
    s.registration.mode = gatehouse::config::RegistrationMode::Open;
}

both_backends!(
    a_self_registered_app_may_name_its_origins,
    settings = open_registration,
    |app| async move {
        let register = |body: Value| {
            reqwest::Client::new()
                .post(app.url("/oauth/register"))
                .json(&body)
                .send()
        };
        let public = register(json!({
            "client_name": "Desk SPA",
            "redirect_uris": ["https://desk.example/cb"],
            "token_endpoint_auth_method": "none",
            "allowed_origins": ["https://desk.example"],
        }))
        .await
        .unwrap();
        assert_eq!(public.status(), StatusCode::CREATED);
        let body: Value = public.json().await.unwrap();
        assert_eq!(body["allowed_origins"], json!(["https://desk.example"]));
        let confidential = register(json!({
            "client_name": "Desk server",
            "redirect_uris": ["https://desk.example/cb"],
            "allowed_origins": ["https://desk.example"],
        }))
        .await
        .unwrap();
        assert_eq!(confidential.status(), StatusCode::BAD_REQUEST);
        let body: Value = confidential.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");
    }
);

both_backends!(
    the_api_is_readable_from_a_page_only_with_a_key_limited_to_it,
    |app| async move {
        app.login_admin().await;
        let (_, widget) = app
            .create_key(json!({
                "name": "web widget",
                "scopes": ["read:users"],
                "allowed_referrers": ["https://spa.example.com"],
            }))
            .await;
        let (_, secret) = app.create_key(json!({ "name": "server key" })).await;
        let get = |origin: &'static str, key: &str| {
            reqwest::Client::new()
                .get(app.url("/v1/users/me"))
                .header("Origin", origin)
                .bearer_auth(key)
                .send()
        };
        let read = get("https://spa.example.com", &widget).await.unwrap();
        assert_eq!(read.status(), StatusCode::OK);
        assert_eq!(
            allow_origin(read.headers()),
            Some("https://spa.example.com")
        );
        let exposed = read.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(exposed.contains("X-RateLimit-Remaining"), "{exposed}");
        // An sk_ key works from anywhere a referrer is no secret: never readable by a page.
        let server = get("https://spa.example.com", &secret).await.unwrap();
        assert_eq!(server.status(), StatusCode::OK);
        assert_eq!(allow_origin(server.headers()), None);
        // The widget's key from another origin: refused, and not readable.
        let elsewhere = get(EVIL, &widget).await.unwrap();
        assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
        assert_eq!(allow_origin(elsewhere.headers()), None);
        // The preflight carries no key and allows no credentials (cookies never go along).
        let asked = preflight(app, "/v1/users/me", "https://spa.example.com", "GET").await;
        assert_eq!(asked.status(), StatusCode::NO_CONTENT);
        assert!(
            asked
                .headers()
                .get("access-control-allow-credentials")
                .is_none()
        );
    }
);
