//! DPoP (RFC 9449): tokens bound to a key the client proves on every request, with proofs made
//! by an independent JOSE implementation. Nonces at the token endpoint; replays, wrong
//! `htm`/`htu`, stale `iat`, a missing `ath`, another key's proof, a bound token sent as
//! Bearer, `none` and HMAC proofs are refused; public clients' refresh tokens are bound too.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::helpers::jwt_claims;
use crate::jose::{TestKey, b64};
use crate::oauth::{REDIRECT, TestClient, authorize, authorize_url, pkce, register};

fn now(app: &TestApp) -> i64 {
    app.state.now().and_utc().timestamp()
}

fn issuer_url(app: &TestApp, path: &str) -> String {
    format!("{}{path}", app.state.settings.issuer)
}

/// A proof for `method` `path`, optionally with `ath` (of `token`) and a nonce.
pub(crate) fn proof(
    app: &TestApp,
    key: &TestKey,
    method: &str,
    path: &str,
    token: Option<&str>,
    nonce: Option<&str>,
) -> String {
    let mut claims = json!({
        "jti": gatehouse::secrets::random_base62(16),
        "htm": method,
        "htu": issuer_url(app, path),
        "iat": now(app),
    });
    if let Some(token) = token {
        claims["ath"] = json!(gatehouse::jwt::dpop::access_token_hash(token));
    }
    if let Some(nonce) = nonce {
        claims["nonce"] = json!(nonce);
    }
    key.jwt(json!({"typ": "dpop+jwt", "jwk": key.public_jwk()}), &claims)
}

/// POST /oauth/token for `client` with a DPoP header.
async fn token_with(
    app: &TestApp,
    client: &TestClient,
    dpop: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/token"));
    let mut form = form.to_vec();
    match &client.secret {
        Some(secret) => request = request.basic_auth(&client.id, Some(secret)),
        None => form.push(("client_id", &client.id)),
    }
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    request.form(&form).send().await.unwrap()
}

/// The nonce the token endpoint asks for (a first proof without one is refused with it).
pub(crate) async fn nonce(app: &TestApp, client: &TestClient, key: &TestKey) -> String {
    let first = proof(app, key, "POST", "/oauth/token", None, None);
    let refused = token_with(
        app,
        client,
        Some(&first),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let nonce = refused.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    nonce
}

/// A code for a bound grant, redeemed with a proof of `key`: the token response.
pub(crate) async fn bound_tokens(
    app: &TestApp,
    client: &TestClient,
    key: &TestKey,
    nonce: &str,
) -> Value {
    let (verifier, challenge) = pkce();
    let code = authorize(
        app,
        &authorize_url(client, "read:users", Some(&challenge), ""),
        "approve",
    )
    .await["code"]
        .clone();
    let dpop = proof(app, key, "POST", "/oauth/token", None, Some(nonce));
    let response = token_with(
        app,
        client,
        Some(&dpop),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().contains_key("dpop-nonce"),
        "a fresh nonce"
    );
    response.json().await.unwrap()
}

async fn me_with(
    app: &TestApp,
    scheme: &str,
    token: &str,
    dpop: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut request = reqwest::Client::new()
        .get(app.url("/v1/users/me"))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(proof) = dpop {
        request = request.header("DPoP", proof);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
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
    a_bound_token_works_only_with_fresh_proofs_of_its_key,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let tokens = bound_tokens(app, &client, &key, &nonce).await;
        assert_eq!(tokens["token_type"], "DPoP");
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt_claims(&access)["cnf"]["jkt"], key.thumbprint());
        let good = |key: &TestKey| proof(app, key, "GET", "/v1/users/me", Some(&access), None);
        let first = good(&key);
        let (status, _, body) = me_with(app, "DPoP", &access, Some(&first)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        // Each refusal is AUTH_011 with the DPoP challenge's error.
        let attempts: Vec<(&str, &str, Option<String>)> = vec![
            ("replayed proof", "DPoP", Some(first.clone())),
            ("no proof", "DPoP", None),
            ("as Bearer", "Bearer", Some(good(&key))),
            ("another key", "DPoP", Some(good(&TestKey::es256()))),
            ("wrong htm", "DPoP", Some(proof(app, &key, "POST", "/v1/users/me", Some(&access), None))),
            ("wrong htu", "DPoP", Some(proof(app, &key, "GET", "/v1/users", Some(&access), None))),
            ("no ath", "DPoP", Some(proof(app, &key, "GET", "/v1/users/me", None, None))),
            ("ath of another token", "DPoP", Some(proof(app, &key, "GET", "/v1/users/me", Some("eyJother"), None))),
            ("stale iat", "DPoP", Some(key.jwt(
                json!({"typ": "dpop+jwt", "jwk": key.public_jwk()}),
                &json!({"jti": "stale-1", "htm": "GET", "htu": issuer_url(app, "/v1/users/me"),
                    "iat": now(app) - 120, "ath": gatehouse::jwt::dpop::access_token_hash(&access)}),
            ))),
            ("HS256 label", "DPoP", Some(key.jwt(
                json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": key.public_jwk()}),
                &json!({"jti": "hs-1", "htm": "GET", "htu": issuer_url(app, "/v1/users/me"),
                    "iat": now(app), "ath": gatehouse::jwt::dpop::access_token_hash(&access)}),
            ))),
            ("alg none", "DPoP", Some(format!(
                "{}.{}.",
                b64(json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk()}).to_string().as_bytes()),
                b64(json!({"jti": "none-1", "htm": "GET", "htu": issuer_url(app, "/v1/users/me"),
                    "iat": now(app), "ath": gatehouse::jwt::dpop::access_token_hash(&access)}).to_string().as_bytes()),
            ))),
            ("typ JWT", "DPoP", Some(key.jwt(
                json!({"typ": "JWT", "jwk": key.public_jwk()}),
                &json!({"jti": "typ-1", "htm": "GET", "htu": issuer_url(app, "/v1/users/me"),
                    "iat": now(app), "ath": gatehouse::jwt::dpop::access_token_hash(&access)}),
            ))),
        ];
        for (what, scheme, dpop) in attempts {
            let (status, challenge, body) = me_with(app, scheme, &access, dpop.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
            assert_eq!(body["error"]["code"], "AUTH_011", "{what}");
            assert!(
                challenge.contains("DPoP error=\"invalid_dpop_proof\""),
                "{what}: {challenge}"
            );
        }
        // Still fine with a fresh proof; introspection names the key.
        let (status, _, _) = me_with(app, "DPoP", &access, Some(&good(&key))).await;
        assert_eq!(status, StatusCode::OK);
        let introspected: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .basic_auth(&client.id, client.secret.as_deref())
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            introspected["cnf"]["jkt"],
            key.thumbprint(),
            "{introspected}"
        );
        // A plain Bearer token is not accepted with the DPoP scheme.
        let plain = crate::oauth::obtain_tokens(app, &client).await;
        let (status, _, _) = me_with(
            app,
            "DPoP",
            plain["access_token"].as_str().unwrap(),
            Some(&proof(
                app,
                &key,
                "GET",
                "/v1/users/me",
                plain["access_token"].as_str(),
                None,
            )),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    the_token_endpoint_wants_a_fresh_single_use_proof_with_its_nonce,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let key = TestKey::eddsa();
        let nonce = nonce(app, &client, &key).await;
        let (verifier, challenge) = pkce();
        let code = authorize(
            app,
            &authorize_url(&client, "read:users", Some(&challenge), ""),
            "approve",
        )
        .await["code"]
            .clone();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
        ];
        let refused = |proof: String| {
            let client = &client;
            async move {
                let answer = token_with(app, client, Some(&proof), &form).await;
                let status = answer.status();
                let body: Value = answer.json().await.unwrap();
                (
                    status,
                    body["error"].as_str().unwrap_or_default().to_owned(),
                )
            }
        };
        let invalid = (StatusCode::BAD_REQUEST, "invalid_dpop_proof".to_owned());
        assert_eq!(
            refused(proof(app, &key, "POST", "/oauth/par", None, Some(&nonce))).await,
            invalid
        );
        assert_eq!(
            refused(proof(app, &key, "GET", "/oauth/token", None, Some(&nonce))).await,
            invalid
        );
        assert_eq!(
            refused(proof(
                app,
                &key,
                "POST",
                "/oauth/token",
                None,
                Some("made-up")
            ))
            .await,
            (StatusCode::BAD_REQUEST, "use_dpop_nonce".to_owned())
        );
        let mut private = key.public_jwk();
        private["d"] = json!(b64(b"not really"));
        let leaked = key.jwt(
            json!({"typ": "dpop+jwt", "jwk": private}),
            &json!({"jti": "p-1", "htm": "POST", "htu": issuer_url(app, "/oauth/token"), "iat": now(app), "nonce": nonce}),
        );
        assert_eq!(refused(leaked).await, invalid);
        // The code survived those: a good proof redeems it, and cannot be used twice.
        let good = proof(app, &key, "POST", "/oauth/token", None, Some(&nonce));
        let answer = token_with(app, &client, Some(&good), &form).await;
        assert_eq!(answer.status(), StatusCode::OK);
        let tokens: Value = answer.json().await.unwrap();
        let replay = token_with(
            app,
            &client,
            Some(&good),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        let body: Value = replay.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
        // The metadata says which algorithms proofs may use.
        let metadata: Value = app
            .get("/.well-known/oauth-authorization-server")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata["dpop_signing_alg_values_supported"],
            json!(["ES256", "RS256", "EdDSA"])
        );
    }
);

both_backends!(
    a_public_clients_refresh_tokens_are_bound_to_its_key,
    |app| async move {
        app.login_admin().await;
        let client = register(app, true, false).await;
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let tokens = bound_tokens(app, &client, &key, &nonce).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        // A thief with the refresh token but not the key: refused, and nothing is spent.
        let stolen = token_with(app, &client, None, &form).await;
        let body: Value = stolen.json().await.unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
        let other_key = TestKey::es256();
        let other = proof(app, &other_key, "POST", "/oauth/token", None, Some(&nonce));
        let body: Value = token_with(app, &client, Some(&other), &form)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body["error"], "invalid_grant", "{body}");
        // The holder of the key refreshes (its token was not burned by the attempts).
        let own = proof(app, &key, "POST", "/oauth/token", None, Some(&nonce));
        let refreshed = token_with(app, &client, Some(&own), &form).await;
        assert_eq!(refreshed.status(), StatusCode::OK);
        let refreshed: Value = refreshed.json().await.unwrap();
        assert_eq!(refreshed["token_type"], "DPoP");
        assert_eq!(
            jwt_claims(refreshed["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.thumbprint()
        );
    }
);

both_backends!(
    an_app_can_require_dpop_for_all_its_tokens,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let changed = app
            .client
            .patch(app.url(&format!("/v1/clients/{}", client.id)))
            .json(&json!({"dpop_bound_access_tokens": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
        let view: Value = changed.json().await.unwrap();
        assert_eq!(view["data"]["dpop_bound_access_tokens"], true);
        let code = crate::oauth::code_for(app, &client, "read:users").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let without = token_with(app, &client, None, &form).await;
        let body: Value = without.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let with = token_with(
            app,
            &client,
            Some(&proof(
                app,
                &key,
                "POST",
                "/oauth/token",
                None,
                Some(&nonce),
            )),
            &form,
        )
        .await;
        assert_eq!(with.status(), StatusCode::OK);
    }
);

both_backends!(
    a_bound_token_is_exchanged_only_with_a_proof_of_its_key,
    |app| async move {
        app.login_admin().await;
        let exchange_grant = "urn:ietf:params:oauth:grant-type:token-exchange";
        let client = crate::token_exchange::client_with_grants(
            app,
            &["authorization_code", "refresh_token", exchange_grant],
        )
        .await;
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let code = crate::oauth::code_for(app, &client, "read:users").await;
        let dpop = proof(app, &key, "POST", "/oauth/token", None, Some(&nonce));
        let tokens: Value = token_with(
            app,
            &client,
            Some(&dpop),
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
        let bound = tokens["access_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", exchange_grant),
            ("subject_token", bound.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ];
        // The client's secret alone (a stolen bound token) gets no Bearer token out of it…
        let unbound: Value = token_with(app, &client, None, &form)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(unbound["error"], "invalid_request", "{unbound}");
        // …nor does a proof of another key.
        let other = proof(
            app,
            &TestKey::es256(),
            "POST",
            "/oauth/token",
            None,
            Some(&nonce),
        );
        let moved: Value = token_with(app, &client, Some(&other), &form)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(moved["error"], "invalid_request", "{moved}");
        // With its own key's proof, the narrower token stays bound to that key.
        let own = proof(app, &key, "POST", "/oauth/token", None, Some(&nonce));
        let narrowed: Value = token_with(app, &client, Some(&own), &form)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(narrowed["token_type"], "DPoP", "{narrowed}");
        assert_eq!(
            jwt_claims(narrowed["access_token"].as_str().unwrap())["cnf"]["jkt"],
            key.thumbprint()
        );
    }
);

both_backends!(
    a_proof_is_spent_only_once_the_client_authenticated,
    |app| async move {
        app.login_admin().await;
        let client = crate::token_exchange::client_with_grants(app, &["client_credentials"]).await;
        let key = TestKey::es256();
        let nonce = nonce(app, &client, &key).await;
        let dpop = proof(app, &key, "POST", "/oauth/token", None, Some(&nonce));
        let form = [("grant_type", "client_credentials")];
        // A caller without the client's secret is refused and leaves the proof unspent (it
        // costs the server no write)…
        let impostor = TestClient {
            id: client.id.clone(),
            secret: Some("cs_not_the_secret".into()),
        };
        let refused = token_with(app, &impostor, Some(&dpop), &form).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        // …so the client's own request with it succeeds, bound to the key, once.
        let issued = token_with(app, &client, Some(&dpop), &form).await;
        assert_eq!(issued.status(), StatusCode::OK);
        let body: Value = issued.json().await.unwrap();
        assert_eq!(body["token_type"], "DPoP", "{body}");
        let replayed = token_with(app, &client, Some(&dpop), &form).await;
        assert_eq!(replayed.status(), StatusCode::BAD_REQUEST);
        let body: Value = replayed.json().await.unwrap();
        assert_eq!(body["error"], "invalid_dpop_proof", "{body}");
    }
);
