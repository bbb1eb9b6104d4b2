//! The keys that sign access tokens: published at `/.well-known/jwks.json`, private parts never
//! shown, rotation publishes first and signs later, old keys stay until their tokens expire.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;

async fn jwks(app: &crate::helpers::TestApp) -> Vec<Value> {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age")
    );
    let body: Value = response.json().await.unwrap();
    body["keys"].as_array().unwrap().clone()
}

both_backends!(the_jwks_publishes_public_keys_only, |app| async move {
    let keys = jwks(app).await;
    assert_eq!(keys.len(), 1, "one key on a fresh server");
    let key = &keys[0];
    assert_eq!(
        (
            key["kty"].as_str(),
            key["crv"].as_str(),
            key["alg"].as_str(),
            key["use"].as_str()
        ),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    assert!(key["kid"].as_str().unwrap().starts_with("sig_"));
    assert!(key.get("d").is_none(), "never the private part");
    assert_eq!(app.state.key_ring().signing_kid(), key["kid"].as_str());
});

both_backends!(
    rotation_publishes_now_signs_later_and_retires_after_tokens_expire,
    |app| async move {
        use gatehouse::jwt::keys;
        let old_kid = app.state.key_ring().signing_kid().unwrap().to_owned();
        let (vault, now, ttl) = (
            app.state.key_vault.clone(),
            app.state.now(),
            app.state.settings.access_token_ttl,
        );
        let new = app
            .state
            .db(move |c| {
                keys::rotate(
                    c,
                    &vault,
                    keys::SigningAlg::Es256,
                    now,
                    chrono::Duration::minutes(10),
                    ttl,
                )
                .map_err(|e| match e {
                    keys::KeyError::Db(e) => e,
                    other => panic!("{other}"),
                })
            })
            .await
            .unwrap();
        app.state.reload_keys().await.unwrap();
        let published: Vec<String> = jwks(app)
            .await
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            published,
            vec![old_kid.clone(), new.id.clone()],
            "the new key is published at once"
        );
        assert_eq!(
            app.state.key_ring().signing_kid(),
            Some(old_kid.as_str()),
            "the old key still signs during the delay"
        );

        app.clock.advance(chrono::Duration::minutes(11));
        app.state.reload_keys().await.unwrap();
        assert_eq!(
            app.state.key_ring().signing_kid(),
            Some(new.id.as_str()),
            "the new key signs after the delay"
        );
        assert_eq!(
            jwks(app).await.len(),
            2,
            "the old key stays while its tokens may be alive"
        );

        app.clock.advance(ttl + chrono::Duration::minutes(2));
        app.state.reload_keys().await.unwrap();
        let published: Vec<String> = jwks(app)
            .await
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            published,
            vec![new.id.clone()],
            "the old key is gone once its tokens have expired"
        );
    }
);

both_backends!(
    tokens_signed_by_the_ring_verify_against_the_published_keys,
    |app| async move {
        let ring = app.state.key_ring();
        let now = app.state.now().and_utc().timestamp();
        let claims = gatehouse::jwt::AccessClaims {
            iss: app.state.settings.issuer.clone(),
            sub: "usr_x".into(),
            aud: app.state.settings.issuer.clone(),
            client_id: "cli_x".into(),
            scope: "read:users".into(),
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            auth_time: None,
            workspace: None,
            key: None,
            act: None,
            cnf: None,
        };
        let token = ring.sign(&claims).unwrap();
        // A resource server's view: the key from the JWKS, by kid.
        let header = jsonwebtoken::decode_header(&token).unwrap();
        let published = jwks(app).await;
        let jwk = published
            .iter()
            .find(|k| k["kid"].as_str() == header.kid.as_deref())
            .unwrap();
        let key = jsonwebtoken::DecodingKey::from_ec_components(
            jwk["x"].as_str().unwrap(),
            jwk["y"].as_str().unwrap(),
        )
        .unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[app.state.settings.issuer.as_str()]);
        let decoded =
            jsonwebtoken::decode::<gatehouse::jwt::AccessClaims>(&token, &key, &validation)
                .unwrap();
        assert_eq!(decoded.claims, claims);
    }
);
