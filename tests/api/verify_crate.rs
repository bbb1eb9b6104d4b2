//! `gatehouse-verify`, the resource-server crate, against a running Gatehouse: JWTs offline
//! (tampering, audience, a rotated signing key), API keys through introspection (cache bound
//! on revocation, endpoint lists), and its actix-web extractor's answers.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_verify::actix::Authenticated;
use gatehouse_verify::{Config, Credential, Error, Request, Verifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{obtain_tokens, register};

async fn verifier_for(app: &TestApp, audience: &str, ttl: Duration) -> Verifier {
    let (_, introspection_key) = app
        .create_key(json!({ "name": "orders service", "scopes": ["introspect"] }))
        .await;
    Verifier::new(Config {
        introspection_key: Some(introspection_key),
        key_cache_ttl: ttl,
        jwks_refetch_interval: Duration::ZERO,
        ..Config::new(&app.address, audience)
    })
    .unwrap()
}

fn get(path: &str) -> Request<'_> {
    Request {
        method: "GET",
        path,
        ..Request::default()
    }
}

both_backends!(the_crate_verifies_access_tokens_offline, |app| async move {
    app.login_admin().await;
    let audience = app.state.settings.token_audience().to_owned();
    let verifier = verifier_for(app, &audience, Duration::from_secs(5)).await;
    let client = register(app, false, true).await;
    let tokens = obtain_tokens(app, &client).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();

    let Credential::AccessToken(claims) = verifier.verify(&token, &get("/")).await.unwrap() else {
        panic!("a JWT is an access token")
    };
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(claims.subject, me["data"]["id"].as_str().unwrap());
    assert_eq!(claims.client_id, client.id);
    assert_eq!(claims.scopes, ["read:users"]);
    assert!(!claims.test);
    // The workspace the user authorized the app in, typed.
    let workspace = claims.workspace.clone().expect("a workspace claim");
    assert!(workspace.id.starts_with("ws_") && workspace.slug.starts_with("personal-"));
    assert_eq!(workspace.role, "owner");
    assert!(workspace.administers());
    // Cached: the same claims without verifying again.
    assert!(Arc::ptr_eq(&claims, &verifier.cached_jwt(&token).unwrap()));

    // A changed signature, another audience, an ID token: refused.
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        verifier.verify_jwt(&tampered).await,
        Err(Error::Invalid(_))
    ));
    let elsewhere = Verifier::new(Config::new(&app.address, "https://other.example.com")).unwrap();
    assert!(matches!(
        elsewhere.verify_jwt(&token).await,
        Err(Error::Invalid(_))
    ));

    // A rotated signing key: the crate fetches the JWKS again for the unknown kid.
    let (vault, now, ttl) = (
        app.state.key_vault.clone(),
        app.state.now(),
        app.state.settings.access_token_ttl,
    );
    app.state
        .db(move |c| {
            gatehouse::jwt::keys::rotate(
                c,
                &vault,
                gatehouse::jwt::keys::SigningAlg::Es256,
                now,
                chrono::Duration::zero(),
                ttl,
            )
            .map_err(|e| match e {
                gatehouse::jwt::keys::KeyError::Db(e) => e,
                other => panic!("{other}"),
            })
        })
        .await
        .unwrap();
    app.state.reload_keys().await.unwrap();
    let newer = obtain_tokens(app, &client).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let header = jsonwebtoken::decode_header(&newer).unwrap();
    let old_header = jsonwebtoken::decode_header(&token).unwrap();
    assert_ne!(header.kid, old_header.kid, "signed with the new key");
    assert!(verifier.verify_jwt(&newer).await.is_ok());
});

both_backends!(
    the_crate_verifies_api_keys_through_introspection,
    |app| async move {
        app.login_admin().await;
        let audience = app.state.settings.token_audience().to_owned();
        let verifier = verifier_for(app, &audience, Duration::from_secs(5)).await;
        let (id, key) = app.create_key(json!({ "name": "full" })).await;
        let (_, narrow) = app
            .create_key(json!({
                "name": "orders reader",
                "scopes": ["read:users"],
                "allowed_endpoints": ["GET /orders/*"]
            }))
            .await;

        let Credential::ApiKey(info) = verifier.verify(&key, &get("/orders/1")).await.unwrap()
        else {
            panic!("a key")
        };
        assert_eq!(info.key_id, id);
        assert!(info.scopes.is_none(), "a full-access key");
        assert_eq!(
            info.workspace.as_ref().map(|w| w.role.as_str()),
            Some("owner"),
            "the key's workspace, from introspection"
        );
        assert!(Credential::ApiKey(info).has_scope("write:orders"));

        let narrow_info = verifier
            .verify_api_key(&narrow, &get("/orders/7"))
            .await
            .unwrap();
        assert_eq!(
            narrow_info.scopes.as_deref(),
            Some(&["read:users".to_owned()][..])
        );
        assert_eq!(
            verifier
                .verify_api_key(&narrow, &get("/invoices/7"))
                .await
                .unwrap_err(),
            Error::EndpointNotAllowed
        );

        // Revoked: a cached answer is reused while it is younger than `key_cache_ttl` (an
        // hour here, so still this one), and refused once the answer is asked again (a
        // verifier whose answers are never reused: TTL zero) — no waiting on a wall clock.
        let remembering = verifier_for(app, &audience, Duration::from_secs(3600)).await;
        let asking = verifier_for(app, &audience, Duration::ZERO).await;
        for v in [&remembering, &asking] {
            assert!(v.verify_api_key(&key, &get("/orders/1")).await.is_ok());
        }
        let revoked = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        assert!(
            remembering
                .verify_api_key(&key, &get("/orders/1"))
                .await
                .is_ok(),
            "within the TTL the cached answer stands"
        );
        assert!(matches!(
            asking.verify_api_key(&key, &get("/orders/1")).await,
            Err(Error::Invalid(_))
        ));
    }
);

async fn orders(who: Authenticated) -> String {
    format!("orders of {}", who.0.subject())
}

both_backends!(
    the_actix_extractor_answers_in_the_envelope,
    |app| async move {
        app.login_admin().await;
        let audience = app.state.settings.token_audience().to_owned();
        let verifier =
            actix_web::web::Data::new(verifier_for(app, &audience, Duration::from_secs(5)).await);
        let (_, key) = app
            .create_key(json!({ "name": "svc", "allowed_endpoints": ["GET /orders"] }))
            .await;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(verifier.clone())
                .route("/orders", actix_web::web::get().to(orders))
                .route(
                    "/.well-known/oauth-protected-resource",
                    actix_web::web::get().to(gatehouse_verify::actix::resource_metadata),
                )
                .route("/invoices", actix_web::web::get().to(orders))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();

        let ok = http
            .get(format!("{base}/orders"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert!(ok.text().await.unwrap().starts_with("orders of usr_"));
        let via_header = http
            .get(format!("{base}/orders"))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        assert_eq!(via_header.status(), StatusCode::OK);

        let none = http.get(format!("{base}/orders")).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        let challenge = none.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer resource_metadata=\"")
                && challenge.contains("/.well-known/oauth-protected-resource"),
            "{challenge}"
        );
        let body: Value = none.json().await.unwrap();
        assert_eq!(body["error"]["code"], "AUTH_001");

        let garbage = http
            .get(format!("{base}/orders"))
            .bearer_auth("sk_live_not_a_real_key")
            .send()
            .await
            .unwrap();
        assert_eq!(garbage.status(), StatusCode::UNAUTHORIZED);
        let body: Value = garbage.json().await.unwrap();
        assert_eq!(body["error"]["code"], "AUTH_003");

        let elsewhere = http
            .get(format!("{base}/invoices"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), StatusCode::FORBIDDEN);
        let body: Value = elsewhere.json().await.unwrap();
        assert_eq!(body["error"]["code"], "AUTH_009");
        let metadata: Value = http
            .get(format!("{base}/.well-known/oauth-protected-resource"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["authorization_servers"][0], app.address.as_str());
        assert_eq!(metadata["bearer_methods_supported"], json!(["header"]));

        // A DPoP-bound token through the extractor: refused as Bearer (with the DPoP
        // challenge), accepted as DPoP with a proof for this service's URL (the audience's
        // origin and the path), refused when the proof comes again.
        let client = register(app, false, false).await;
        let key = crate::jose::TestKey::es256();
        let nonce = crate::dpop::nonce(app, &client, &key).await;
        let bound = crate::dpop::bound_tokens(app, &client, &key, &nonce).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let proof = crate::dpop::proof(app, &key, "GET", "/orders", Some(&bound), None);
        let as_bearer = http
            .get(format!("{base}/orders"))
            .bearer_auth(&bound)
            .header("DPoP", &proof)
            .send()
            .await
            .unwrap();
        assert_eq!(as_bearer.status(), StatusCode::UNAUTHORIZED);
        assert!(
            as_bearer.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("DPoP error=\"invalid_dpop_proof\"")
        );
        let body: Value = as_bearer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "AUTH_011");
        let with_proof = |proof: String| {
            http.get(format!("{base}/orders"))
                .header("Authorization", format!("DPoP {bound}"))
                .header("DPoP", proof)
                .send()
        };
        assert_eq!(
            with_proof(proof.clone()).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            with_proof(proof).await.unwrap().status(),
            StatusCode::UNAUTHORIZED,
            "a replayed proof"
        );
        handle.stop(true).await;
    }
);

// The crate's example service, mounted as it is written, in front of a running Gatehouse.
#[allow(dead_code)]
#[path = "../../gatehouse-verify/examples/orders_service.rs"]
mod orders_service;

both_backends!(
    the_example_service_serves_verified_callers_only,
    |app| async move {
        app.login_admin().await;
        let audience = app.state.settings.token_audience().to_owned();
        let verifier =
            actix_web::web::Data::new(verifier_for(app, &audience, Duration::from_secs(5)).await);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(verifier.clone())
                .configure(orders_service::routes)
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        let orders = format!("http://127.0.0.1:{port}/orders");
        let http = reqwest::Client::new();
        let me: Value = app.me().await.json().await.unwrap();
        let user_id = me["data"]["id"].as_str().unwrap();

        // An app's token with read:orders, and one without.
        let client = register(app, false, true).await;
        let tokens = crate::oauth::obtain_tokens_for(app, &client, "read:orders").await;
        let answer = http
            .get(&orders)
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK);
        let body: Value = answer.json().await.unwrap();
        assert_eq!(body["owner"], user_id);
        assert!(body["workspace"].as_str().unwrap().starts_with("personal-"));
        let narrow = obtain_tokens(app, &client).await;
        let refused = http
            .get(&orders)
            .bearer_auth(narrow["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        // An API key with the scope.
        let (_, key) = app
            .create_key(json!({ "name": "orders", "scopes": ["read:orders"] }))
            .await;
        let ok = http.get(&orders).bearer_auth(&key).send().await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        // Nothing, or garbage: 401 with the challenge naming the metadata.
        let none = http.get(&orders).send().await.unwrap();
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .contains("/.well-known/oauth-protected-resource")
        );
        let metadata: Value = http
            .get(format!(
                "http://127.0.0.1:{port}/.well-known/oauth-protected-resource"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(metadata["authorization_servers"][0], app.address.as_str());
        handle.stop(true).await;
    }
);

/// A service of a resource server's: the subject of the verified credential, or 500 if the
/// layer let an unverified request through.
#[derive(Clone)]
struct WhoAmI;

impl tower_service::Service<http::Request<String>> for WhoAmI {
    type Response = http::Response<String>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<String>) -> Self::Future {
        let answer = match req.extensions().get::<Credential>() {
            Some(credential) => http::Response::new(format!("orders of {}", credential.subject())),
            None => {
                let mut refused = http::Response::new("unverified".to_owned());
                *refused.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
                refused
            }
        };
        std::future::ready(Ok(answer))
    }
}

both_backends!(
    the_tower_layer_verifies_before_the_service_runs,
    |app| async move {
        use gatehouse_verify::tower::{ClientIp, VerifyLayer};
        use tower_layer::Layer;
        use tower_service::Service;
        app.login_admin().await;
        let audience = app.state.settings.token_audience().to_owned();
        let verifier = Arc::new(verifier_for(app, &audience, Duration::from_secs(5)).await);
        let mut service = VerifyLayer::new(verifier).layer(WhoAmI);
        let (_, key) = app
            .create_key(json!({ "name": "svc", "allowed_ips": ["10.0.0.0/8"] }))
            .await;
        let request = |credential: Option<&str>, ip: &str| {
            let mut builder = http::Request::builder().uri("/orders");
            if let Some(c) = credential {
                builder = builder.header("authorization", format!("Bearer {c}"));
            }
            let mut req = builder.body(String::new()).unwrap();
            req.extensions_mut().insert(ClientIp(ip.parse().unwrap()));
            req
        };
        let me: Value = app.me().await.json().await.unwrap();
        let answer = service.call(request(Some(&key), "10.1.2.3")).await.unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.body(),
            &format!("orders of {}", me["data"]["id"].as_str().unwrap())
        );
        // Outside its allowlist, without a credential, with garbage: refused before the
        // service runs, in the envelope, with the challenge.
        let elsewhere = service
            .call(request(Some(&key), "192.0.2.1"))
            .await
            .unwrap();
        assert_eq!(elsewhere.status(), 403);
        let body: Value = serde_json::from_str(elsewhere.body()).unwrap();
        assert_eq!(body["error"]["code"], "AUTH_005");
        let none = service.call(request(None, "10.1.2.3")).await.unwrap();
        assert_eq!(none.status(), 401);
        assert!(
            none.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer resource_metadata=\"")
        );
        let garbage = service
            .call(request(Some("sk_live_garbage"), "10.1.2.3"))
            .await
            .unwrap();
        assert_eq!(garbage.status(), 401);
        let body: Value = serde_json::from_str(garbage.body()).unwrap();
        assert_eq!(body["error"]["code"], "AUTH_003");
    }
);

/// What one side said of a credential: accepted (with its test mode) or refused (status).
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted { test: bool },
    Refused(u16),
}

/// Gatehouse's own answer at `GET /v1/users/me` (the test mode from its `authentication`).
async fn gatehouse_says(
    app: &TestApp,
    scheme: &str,
    credential: &str,
    proof: Option<&str>,
) -> Verdict {
    let mut request = reqwest::Client::new()
        .get(app.url("/v1/users/me"))
        .header("Authorization", format!("{scheme} {credential}"));
    if let Some(proof) = proof {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return Verdict::Refused(status);
    }
    let body: Value = response.json().await.unwrap();
    Verdict::Accepted {
        test: body["data"]["authentication"]["livemode"] == false,
    }
}

/// The crate's answer for the same request (from 127.0.0.1, as the test's requests come).
async fn crate_says(
    verifier: &Verifier,
    scheme: &str,
    credential: &str,
    proof: Option<&str>,
) -> Verdict {
    let url = verifier.request_url("/v1/users/me");
    let request = Request {
        ip: Some("127.0.0.1".parse().unwrap()),
        method: "GET",
        path: "/v1/users/me",
        dpop_scheme: scheme == "DPoP",
        dpop_proof: proof,
        url: Some(&url),
        ..Request::default()
    };
    match verifier.verify(credential, &request).await {
        Ok(credential) => Verdict::Accepted {
            test: credential.is_test(),
        },
        Err(e) => Verdict::Refused(e.status()),
    }
}

async fn exchanged_for(app: &TestApp, key: &str) -> String {
    let answer: Value = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", key),
            (
                "subject_token_type",
                "urn:gatehouse:params:oauth:token-type:api_key",
            ),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("exchanged: {answer}"))
        .to_owned()
}

both_backends!(
    the_crate_and_gatehouse_agree_on_every_kind_of_credential,
    |app| async move {
        use crate::dpop::{bound_tokens, nonce, proof};
        use crate::jose::TestKey;
        app.login_admin().await;
        let audience = app.state.settings.token_audience().to_owned();
        // The crate serves where Gatehouse's API is, so that one proof's `htu` names both.
        assert_eq!(
            audience, app.state.settings.issuer,
            "the test's audience is the issuer"
        );
        let verifier = verifier_for(app, &audience, Duration::ZERO).await;
        let (_, live) = app
            .create_key(json!({ "name": "live", "scopes": ["read:users"] }))
            .await;
        let (_, test) = app
            .create_key(json!({ "name": "test", "mode": "test", "scopes": ["read:users"] }))
            .await;
        let (_, elsewhere) = app
            .create_key(json!({ "name": "elsewhere", "scopes": ["read:users"], "allowed_ips": ["10.0.0.0/8"] }))
            .await;
        let (_, here) = app
            .create_key(json!({ "name": "here", "scopes": ["read:users"], "allowed_ips": ["127.0.0.1/32", "::1/128"] }))
            .await;
        let (revoked_id, revoked) = app
            .create_key(json!({ "name": "revoked", "scopes": ["read:users"] }))
            .await;
        let from_test = exchanged_for(app, &test).await;
        let from_here = exchanged_for(app, &here).await;
        // The allowlist applies at the exchange too: exchange first, then narrow.
        let (narrowed_id, narrowed) = app
            .create_key(json!({ "name": "narrowed", "scopes": ["read:users"] }))
            .await;
        let from_narrowed = exchanged_for(app, &narrowed).await;
        let patched = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{narrowed_id}")))
            .json(&json!({ "allowed_ips": ["10.0.0.0/8"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), StatusCode::OK);
        let revoking = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{revoked_id}")))
            .send()
            .await
            .unwrap();
        assert!(revoking.status().is_success());
        let client = register(app, false, false).await;
        let plain = obtain_tokens(app, &client).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let bound = bound_tokens(app, &client, &key, &nonce).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let fresh = || proof(app, &key, "GET", "/v1/users/me", Some(&bound), None);
        let replayed = fresh();
        let accepted = |test| Verdict::Accepted { test };
        let cases: Vec<(&str, &str, &str, Option<String>, Verdict)> = vec![
            ("a live key", "Bearer", &live, None, accepted(false)),
            ("a test key", "Bearer", &test, None, accepted(true)),
            (
                "a token exchanged for a test key",
                "Bearer",
                &from_test,
                None,
                accepted(true),
            ),
            (
                "a key from outside its allowlist",
                "Bearer",
                &elsewhere,
                None,
                Verdict::Refused(403),
            ),
            (
                "a token exchanged for a key allowed here",
                "Bearer",
                &from_here,
                None,
                accepted(false),
            ),
            (
                "a revoked key",
                "Bearer",
                &revoked,
                None,
                Verdict::Refused(401),
            ),
            ("an app's token", "Bearer", &plain, None, accepted(false)),
            (
                "an app's token with the DPoP scheme",
                "DPoP",
                &plain,
                Some(proof(app, &key, "GET", "/v1/users/me", Some(&plain), None)),
                Verdict::Refused(401),
            ),
            (
                "a DPoP-bound token as Bearer",
                "Bearer",
                &bound,
                Some(fresh()),
                Verdict::Refused(401),
            ),
            (
                "a DPoP-bound token without a proof",
                "DPoP",
                &bound,
                None,
                Verdict::Refused(401),
            ),
            (
                "a DPoP-bound token with another key's proof",
                "DPoP",
                &bound,
                Some(proof(
                    app,
                    &TestKey::es256(),
                    "GET",
                    "/v1/users/me",
                    Some(&bound),
                    None,
                )),
                Verdict::Refused(401),
            ),
            (
                "a DPoP-bound token for another URL",
                "DPoP",
                &bound,
                Some(proof(app, &key, "GET", "/v1/users", Some(&bound), None)),
                Verdict::Refused(401),
            ),
            (
                "a DPoP-bound token with its proof",
                "DPoP",
                &bound,
                Some(replayed.clone()),
                accepted(false),
            ),
            (
                "the same proof again",
                "DPoP",
                &bound,
                Some(replayed),
                Verdict::Refused(401),
            ),
            (
                "an API key with the DPoP scheme",
                "DPoP",
                &live,
                None,
                Verdict::Refused(401),
            ),
        ];
        for (what, scheme, credential, proof, expected) in cases {
            let ours = gatehouse_says(app, scheme, credential, proof.as_deref()).await;
            let theirs = crate_says(&verifier, scheme, credential, proof.as_deref()).await;
            assert_eq!(ours, expected, "Gatehouse, {what}");
            assert_eq!(theirs, expected, "the crate, {what}");
        }
        // A token exchanged before its key was narrowed: Gatehouse ends it at once (its
        // denylist); a resource server verifying offline cannot know until the token expires
        // (at most 15 minutes), as with any revocation — what introspection is for (README).
        assert_eq!(
            gatehouse_says(app, "Bearer", &from_narrowed, None).await,
            Verdict::Refused(401)
        );
        assert_eq!(
            crate_says(&verifier, "Bearer", &from_narrowed, None).await,
            accepted(false)
        );
        // The key itself, through introspection, is refused here at once.
        assert_eq!(
            crate_says(&verifier, "Bearer", &narrowed, None).await,
            Verdict::Refused(403)
        );
    }
);
