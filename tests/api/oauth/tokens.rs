//! The tokens the server signs and what it publishes about them: the metadata, forged or
//! confused JWTs refused at the API, the configured audience, revocations seen from another
//! instance, and the signing algorithms an operator may choose.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Sha256;

use crate::both_backends;
use crate::helpers::TestApp;

use super::{obtain_tokens, register};

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
