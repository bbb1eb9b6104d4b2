//! `private_key_jwt` (RFC 7523): apps registered with keys prove themselves with assertions
//! signed by an independent JOSE implementation; replays, wrong audiences, expired or
//! long-lived assertions, unregistered keys, `none` and HMAC are refused; keys published at a
//! `jwks_uri` are fetched and rotated; self-registered and metadata-document apps use it too.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::jose::{TestKey, b64};

const ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn claims(app: &TestApp, client_id: &str, aud: &str, exp_in: i64) -> Value {
    let now = app.state.now().and_utc().timestamp();
    json!({
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + exp_in,
        "jti": gatehouse::secrets::random_base62(20),
    })
}

fn token_endpoint(app: &TestApp) -> String {
    format!("{}/oauth/token", app.state.settings.issuer)
}

/// A fresh, valid assertion for the token endpoint, signed by `key` under `kid`.
fn assertion(app: &TestApp, key: &TestKey, kid: &str, client_id: &str) -> String {
    key.jwt(
        json!({"typ": "JWT", "kid": kid}),
        &claims(app, client_id, &token_endpoint(app), 60),
    )
}

async fn with_assertion(
    app: &TestApp,
    path: &str,
    assertion: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = form.to_vec();
    form.push(("client_assertion_type", ASSERTION));
    form.push(("client_assertion", assertion));
    reqwest::Client::new()
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn machine_token(app: &TestApp, assertion: &str) -> reqwest::Response {
    with_assertion(
        app,
        "/oauth/token",
        assertion,
        &[("grant_type", "client_credentials")],
    )
    .await
}

fn jwk_with_kid(key: &TestKey, kid: &str) -> Value {
    let mut jwk = key.public_jwk();
    jwk["kid"] = json!(kid);
    jwk
}

/// Register (with the admin's session) a confidential machine app with these keys.
async fn register_with(app: &TestApp, keys: Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/clients"))
        .json(&json!({
            "name": "Signing service",
            "redirect_uris": ["https://svc.example.com/cb"],
            "scopes": ["read:users"],
            "grant_types": ["authorization_code", "client_credentials"],
            "jwks": keys,
        }))
        .send()
        .await
        .unwrap()
}

both_backends!(
    an_app_with_keys_authenticates_with_signed_assertions_only,
    |app| async move {
        app.login_admin().await;
        let (es, ed) = (TestKey::es256(), TestKey::eddsa());
        let created = register_with(
            app,
            json!({"keys": [jwk_with_kid(&es, "es-1"), jwk_with_kid(&ed, "ed-1")]}),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let created: Value = created.json().await.unwrap();
        let id = created["data"]["client_id"].as_str().unwrap().to_owned();
        assert!(
            created["data"].get("client_secret").is_none(),
            "no secret: {created}"
        );
        assert_eq!(
            created["data"]["token_endpoint_auth_method"],
            "private_key_jwt"
        );
        // Each key signs; each assertion is accepted once.
        for (key, kid) in [(&es, "es-1"), (&ed, "ed-1")] {
            let signed = assertion(app, key, kid, &id);
            let answer = machine_token(app, &signed).await;
            assert_eq!(answer.status(), StatusCode::OK, "{kid}");
            let replayed = machine_token(app, &signed).await;
            assert_eq!(
                replayed.status(),
                StatusCode::UNAUTHORIZED,
                "{kid} replayed"
            );
            let body: Value = replayed.json().await.unwrap();
            assert_eq!(body["error"], "invalid_client");
        }
        // Without a kid, the registered keys are tried.
        let no_kid = es.jwt(json!({}), &claims(app, &id, &token_endpoint(app), 60));
        assert_eq!(machine_token(app, &no_kid).await.status(), StatusCode::OK);
        // Refused: another audience, expired, too long-lived, iss ≠ sub, an unregistered key
        // under a registered kid, none, HMAC, a half-given method, a secret.
        let refused = [
            es.jwt(
                json!({"kid": "es-1"}),
                &claims(app, &id, "https://elsewhere.example/token", 60),
            ),
            es.jwt(
                json!({"kid": "es-1"}),
                &claims(app, &id, &token_endpoint(app), -120),
            ),
            es.jwt(
                json!({"kid": "es-1"}),
                &claims(app, &id, &token_endpoint(app), 600),
            ),
            {
                let mut c = claims(app, &id, &token_endpoint(app), 60);
                c["iss"] = json!("cli_someone_else");
                es.jwt(json!({"kid": "es-1"}), &c)
            },
            TestKey::es256().jwt(
                json!({"kid": "es-1"}),
                &claims(app, &id, &token_endpoint(app), 60),
            ),
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none"}"#),
                b64(claims(app, &id, &token_endpoint(app), 60)
                    .to_string()
                    .as_bytes())
            ),
            {
                // Signed by the EC key, labelled HS256 (keyed, a server might think, with
                // the public key).
                es.jwt(
                    json!({"kid": "es-1", "alg": "HS256"}),
                    &claims(app, &id, &token_endpoint(app), 60),
                )
            },
        ];
        for (n, bad) in refused.iter().enumerate() {
            let answer = machine_token(app, bad).await;
            assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "case {n}");
        }
        let wrong_type = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", "urn:example:other"),
                ("client_assertion", &assertion(app, &es, "es-1", &id)),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status(), StatusCode::UNAUTHORIZED);
        let with_secret = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&id, Some("cs_guess"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(with_secret.status(), StatusCode::UNAUTHORIZED);
        // The same assertion method at introspection, revocation and PAR (their own URL as aud
        // is accepted too).
        let token: Value = machine_token(app, &assertion(app, &es, "es-1", &id))
            .await
            .json()
            .await
            .unwrap();
        let access = token["access_token"].as_str().unwrap();
        let introspect_aud = format!("{}/oauth/introspect", app.state.settings.issuer);
        let for_introspection = es.jwt(
            json!({"kid": "es-1"}),
            &claims(app, &id, &introspect_aud, 60),
        );
        let introspected: Value = with_assertion(
            app,
            "/oauth/introspect",
            &for_introspection,
            &[("token", access)],
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(introspected["active"], true, "{introspected}");
        let pushed = with_assertion(
            app,
            "/oauth/par",
            &assertion(app, &ed, "ed-1", &id),
            &[
                ("response_type", "code"),
                ("redirect_uri", "https://svc.example.com/cb"),
                ("scope", "read:users"),
            ],
        )
        .await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        let revoked = with_assertion(
            app,
            "/oauth/revoke",
            &assertion(app, &es, "es-1", &id),
            &[("token", access)],
        )
        .await;
        assert_eq!(revoked.status(), StatusCode::OK);
        // Keys are public keys of the supported kinds: private material is refused.
        let mut private = jwk_with_kid(&es, "leak");
        private["d"] = json!("c2VjcmV0");
        let leaked = register_with(app, json!({"keys": [private]})).await;
        assert_eq!(leaked.status(), StatusCode::BAD_REQUEST);
        let hmac = register_with(app, json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})).await;
        assert_eq!(hmac.status(), StatusCode::BAD_REQUEST);
        // The janitor forgets spent assertion ids once they would be refused as expired.
        app.clock.advance(chrono::Duration::minutes(10));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert!(swept.used_jtis >= 5, "{swept:?}");
    }
);

/// Serves a JWK Set that the test can change, and a metadata document naming it.
struct KeyServer {
    base: String,
    jwks: Arc<Mutex<Value>>,
    handle: actix_web::dev::ServerHandle,
}

async fn key_server() -> KeyServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let jwks: Arc<Mutex<Value>> = Arc::new(Mutex::new(json!({"keys": []})));
    let (served, doc_base) = (jwks.clone(), base.clone());
    let server = HttpServer::new(move || {
        let served = served.clone();
        let doc_base = doc_base.clone();
        App::new()
            .route(
                "/jwks.json",
                web::get().to(move || {
                    let set = served.lock().unwrap().clone();
                    async move { HttpResponse::Ok().json(set) }
                }),
            )
            .route(
                "/client.json",
                web::get().to(move || {
                    let doc = json!({
                        "client_id": format!("{doc_base}/client.json"),
                        "client_name": "Keyed Agent",
                        "redirect_uris": [crate::oauth::REDIRECT],
                        "token_endpoint_auth_method": "private_key_jwt",
                        "jwks_uri": format!("{doc_base}/jwks.json"),
                        "grant_types": ["authorization_code"],
                    });
                    async move { HttpResponse::Ok().json(doc) }
                }),
            )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    KeyServer { base, jwks, handle }
}

fn keys_from_urls(s: &mut gatehouse::config::Settings) {
    crate::oidc::own_issuer(s);
    s.cimd = gatehouse::config::CimdPolicy::All;
    s.cimd_loopback_http = true;
}

both_backends!(
    keys_at_a_jwks_uri_are_fetched_and_rotated,
    settings = keys_from_urls,
    |app| async move {
        app.login_admin().await;
        let server = key_server().await;
        let old = TestKey::es256();
        *server.jwks.lock().unwrap() = json!({"keys": [jwk_with_kid(&old, "2026-11")]});
        let created: Value = app
            .client
            .post(app.url("/v1/clients"))
            .json(&json!({
                "name": "Rotating service",
                "redirect_uris": ["https://svc.example.com/cb"],
                "scopes": ["read:users"],
                "grant_types": ["authorization_code", "client_credentials"],
                "jwks_uri": format!("{}/jwks.json", server.base),
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["data"]["client_id"].as_str().unwrap().to_owned();
        assert_eq!(
            created["data"]["jwks_uri"],
            format!("{}/jwks.json", server.base)
        );
        let first = machine_token(app, &assertion(app, &old, "2026-11", &id)).await;
        assert_eq!(first.status(), StatusCode::OK);
        // The app publishes a new key and signs with it: the unknown kid fetches the set again
        // (once the last fetch is 30 s old).
        let new = TestKey::eddsa();
        *server.jwks.lock().unwrap() = json!({"keys": [jwk_with_kid(&new, "2026-12")]});
        // Before 30 s the cached set answers: the new key is not known yet.
        let early = machine_token(app, &assertion(app, &new, "2026-12", &id)).await;
        assert_eq!(early.status(), StatusCode::UNAUTHORIZED);
        app.clock.advance(chrono::Duration::seconds(31));
        let rotated = machine_token(app, &assertion(app, &new, "2026-12", &id)).await;
        assert_eq!(rotated.status(), StatusCode::OK);
        server.handle.stop(false).await;
    }
);

both_backends!(
    self_registered_and_document_apps_authenticate_with_their_keys,
    settings = |s: &mut gatehouse::config::Settings| {
        keys_from_urls(s);
        s.registration.mode = gatehouse::config::RegistrationMode::Open;
    },
    |app| async move {
        // RFC 7591: a registration with keys gets no secret.
        let key = TestKey::es256();
        let registered = reqwest::Client::new()
            .post(app.url("/oauth/register"))
            .json(&json!({
                "client_name": "Keyed registrant",
                "redirect_uris": [crate::oauth::REDIRECT],
                "token_endpoint_auth_method": "private_key_jwt",
                "jwks": {"keys": [jwk_with_kid(&key, "dcr-1")]},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(registered.status(), StatusCode::CREATED);
        let registered: Value = registered.json().await.unwrap();
        assert!(registered.get("client_secret").is_none(), "{registered}");
        assert_eq!(registered["token_endpoint_auth_method"], "private_key_jwt");
        assert_eq!(registered["jwks"]["keys"][0]["kid"], "dcr-1");
        let id = registered["client_id"].as_str().unwrap().to_owned();
        let pushed = with_assertion(
            app,
            "/oauth/par",
            &assertion(app, &key, "dcr-1", &id),
            &[
                ("response_type", "code"),
                ("redirect_uri", crate::oauth::REDIRECT),
                ("scope", "read:users"),
            ],
        )
        .await;
        assert_eq!(pushed.status(), StatusCode::CREATED);
        let keyless = reqwest::Client::new()
            .post(app.url("/oauth/register"))
            .json(&json!({
                "redirect_uris": [crate::oauth::REDIRECT],
                "token_endpoint_auth_method": "private_key_jwt",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(keyless.status(), StatusCode::BAD_REQUEST);
        let body: Value = keyless.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");

        // A Client ID Metadata Document naming private_key_jwt and a jwks_uri.
        let server = key_server().await;
        let doc_key = TestKey::eddsa();
        *server.jwks.lock().unwrap() = json!({"keys": [jwk_with_kid(&doc_key, "doc-1")]});
        app.login_admin().await;
        let client_id = format!("{}/client.json", server.base);
        let url = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read:users&state=s",
            gatehouse::principal::urlencode(&client_id),
            gatehouse::principal::urlencode(crate::oauth::REDIRECT)
        );
        let answer = crate::oauth::authorize(app, &url, "approve").await;
        let code = answer["code"].clone();
        let redeemed = with_assertion(
            app,
            "/oauth/token",
            &assertion(app, &doc_key, "doc-1", &client_id),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", crate::oauth::REDIRECT),
            ],
        )
        .await;
        assert_eq!(redeemed.status(), StatusCode::OK);
        // Without its assertion the document app is nobody.
        let anonymous = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", crate::oauth::REDIRECT),
                ("client_id", client_id.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        server.handle.stop(false).await;
    }
);

/// A `jwks_uri` host that answers 500 and counts the requests it gets; its base URL.
async fn failing_key_server(
    hits: Arc<std::sync::atomic::AtomicUsize>,
) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(move || {
        let hits = hits.clone();
        App::new().default_service(web::to(move || {
            hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { HttpResponse::InternalServerError().finish() }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (base, handle)
}

both_backends!(
    a_failing_jwks_uri_is_not_fetched_again_for_every_assertion_nor_on_a_blocked_host,
    settings = keys_from_urls,
    |app| async move {
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        app.login_admin().await;
        let hits = Arc::new(AtomicUsize::new(0));
        let (base, handle) = failing_key_server(hits.clone()).await;
        let register = |uri: String| async move {
            let created: Value = app
                .client
                .post(app.url("/v1/clients"))
                .json(&json!({
                    "name": "Keys elsewhere",
                    "redirect_uris": ["https://svc.example.com/cb"],
                    "scopes": ["read:users"],
                    "grant_types": ["client_credentials"],
                    "jwks_uri": uri,
                }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            created["data"]["client_id"].as_str().unwrap().to_owned()
        };
        let key = TestKey::es256();
        // A host an administrator blocked is never fetched, keys or documents.
        let host = base
            .trim_start_matches("http://")
            .split(':')
            .next()
            .unwrap()
            .to_owned();
        let block = |blocked: bool| {
            let host = host.clone();
            app.state.db(move |c| {
                use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
                use gatehouse::db::schema::blocked_client_hosts as b;
                if blocked {
                    diesel::insert_into(b::table)
                        .values((
                            b::host.eq(&host),
                            b::created_at.eq(chrono::Utc::now().naive_utc()),
                        ))
                        .execute(c)
                } else {
                    diesel::delete(b::table.filter(b::host.eq(&host))).execute(c)
                }
                .map_err(gatehouse::db::DbError::from)
            })
        };
        block(true).await.unwrap();
        let blocked = register(format!("{base}/blocked.json")).await;
        let refused = machine_token(app, &assertion(app, &key, "k1", &blocked)).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(hits.load(SeqCst), 0, "nothing fetched from a blocked host");
        block(false).await.unwrap();

        let id = register(format!("{base}/jwks.json")).await;
        // Ten assertions naming a failing jwks_uri: one fetch, nine answers from memory.
        for _ in 0..10 {
            let refused = machine_token(app, &assertion(app, &key, "k1", &id)).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(hits.load(SeqCst), 1, "the failure is remembered");
        // For a minute of the server's clock: then one fetch again.
        app.clock.advance(chrono::Duration::seconds(61));
        for _ in 0..3 {
            let refused = machine_token(app, &assertion(app, &key, "k1", &id)).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(hits.load(SeqCst), 2, "asked again once the minute passed");
        // Other paths on the host count against it: after five failures it rests.
        for n in 0..8 {
            let other = register(format!("{base}/keys-{n}.json")).await;
            let refused = machine_token(app, &assertion(app, &key, "k1", &other)).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        }
        // The host failed once in this window already: four more, then it rests.
        assert_eq!(
            hits.load(SeqCst),
            6,
            "a failing host is not asked again in the window"
        );
        handle.stop(false).await;
    }
);
