//! Apps that arrive on their own, as MCP clients and agents do: the protected-resource metadata
//! that points them here, dynamic client registration (RFC 7591/7592) under each policy, and
//! Client ID Metadata Documents served by a test web server — with the attacks on each (bad
//! metadata, floods, stolen or dead registration tokens, documents that redirect, lie, are too
//! large or slow, or point at private addresses).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, TestClient, authorize, exchange, pkce, urlencode};

fn open_registration(s: &mut gatehouse::config::Settings) {
    crate::oidc::own_issuer(s);
    s.registration.mode = gatehouse::config::RegistrationMode::Open;
}

async fn register(app: &TestApp, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/register"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    request.json(&body).send().await.unwrap()
}

fn agent_metadata() -> Value {
    json!({
        "client_name": "Desk Agent",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "scope": "read:users",
        "client_uri": "https://agent.example.com",
        "policy_uri": "https://agent.example.com/privacy",
    })
}

/// The authorization URL an MCP client builds: PKCE S256 and the resource it wants.
fn authorize_url(client_id: &str, challenge: &str, resource: &str) -> String {
    format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&state=s1&code_challenge={challenge}&code_challenge_method=S256&resource={}",
        urlencode(client_id),
        urlencode(REDIRECT),
        urlencode(resource)
    )
}

/// Sign in through the consent page and trade the code: the token answer.
async fn sign_in(app: &TestApp, client_id: &str) -> Value {
    let (verifier, challenge) = pkce();
    let resource = app.state.settings.token_audience().to_owned();
    let answer = authorize(
        app,
        &authorize_url(client_id, &challenge, &resource),
        "approve",
    )
    .await;
    let client = TestClient {
        id: client_id.to_owned(),
        secret: None,
    };
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
    tokens.json().await.unwrap()
}

async fn registration(
    app: &TestApp,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut request = match method {
        "GET" => client.get(uri),
        "PUT" => client.put(uri),
        _ => client.delete(uri),
    };
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let _ = app;
    request.send().await.unwrap()
}

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

// ---- Client ID Metadata Documents ------------------------------------------------------------

/// A web server for metadata documents on 127.0.0.1, counting fetches per path.
pub(crate) struct DocumentServer {
    pub base: String,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    handle: actix_web::dev::ServerHandle,
}

impl DocumentServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

struct Served {
    base: String,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

fn document(base: &str, path: &str, redirect_uris: Value) -> Value {
    json!({
        "client_id": format!("{base}{path}"),
        "client_name": "Research Agent",
        "redirect_uris": redirect_uris,
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "client_uri": "https://agent.example.net",
        "unknown_member": {"is": "ignored"},
    })
}

async fn serve(req: HttpRequest, served: web::Data<Served>) -> HttpResponse {
    let path = req.path().to_owned();
    *served.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let base = &served.base;
    match path.as_str() {
        "/client.json" => HttpResponse::Ok()
            .insert_header(("cache-control", "max-age=3600"))
            .json(document(base, &path, json!([REDIRECT]))),
        "/local.json" => HttpResponse::Ok().json(document(
            base,
            &path,
            json!(["http://127.0.0.1:33418/callback", "http://localhost/cb"]),
        )),
        "/redirect.json" => HttpResponse::Found()
            .insert_header(("location", "/client.json"))
            .finish(),
        "/missing.json" => HttpResponse::NotFound().finish(),
        "/big.json" => {
            let mut doc = document(base, &path, json!([REDIRECT]));
            doc["padding"] = json!("x".repeat(6000));
            HttpResponse::Ok().json(doc)
        }
        "/slow.json" => {
            actix_web::rt::time::sleep(std::time::Duration::from_secs(4)).await;
            HttpResponse::Ok().json(document(base, &path, json!([REDIRECT])))
        }
        "/wrong-id.json" => {
            HttpResponse::Ok().json(document(base, "/wrong-id.jsoN", json!([REDIRECT])))
        }
        "/secret.json" => {
            let mut doc = document(base, &path, json!([REDIRECT]));
            doc["token_endpoint_auth_method"] = json!("client_secret_basic");
            HttpResponse::Ok().json(doc)
        }
        _ => HttpResponse::NotFound().finish(),
    }
}

pub(crate) async fn document_server() -> DocumentServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let data = web::Data::new(Served {
        base: base.clone(),
        hits: hits.clone(),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(serve))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    DocumentServer { base, hits, handle }
}

fn documents_on(s: &mut gatehouse::config::Settings) {
    crate::oidc::own_issuer(s);
    s.cimd = gatehouse::config::CimdPolicy::All;
    s.cimd_loopback_http = true;
}

both_backends!(
    an_app_described_by_a_metadata_document_signs_in_without_registration,
    settings = documents_on,
    |app| async move {
        let docs = document_server().await;
        let client_id = docs.url("/client.json");
        let server: Value = app
            .get("/.well-known/oauth-authorization-server")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(server["client_id_metadata_document_supported"], true);
        app.login_admin().await;
        let (_, challenge) = pkce();
        let issuer = app.state.settings.issuer.clone();
        let page = app
            .get(&authorize_url(&client_id, &challenge, &issuer))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        // The host first; the name only as the host's claim.
        assert!(
            page.contains("id=\"consent-host\"><strong>127.0.0.1</strong>"),
            "{page}"
        );
        assert!(
            page.contains("“Research Agent” — a name claimed by 127.0.0.1"),
            "{page}"
        );
        assert!(!page.contains("id=\"consent-localhost\""));
        // It returns to app.example.com, not to the host that describes it: the page says so.
        assert!(page.contains("id=\"consent-elsewhere\""), "{page}");
        assert!(
            page.contains("you go back to <strong>app.example.com</strong>"),
            "{page}"
        );
        let tokens = sign_in(app, &client_id).await;
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        // The warm cache: one fetch for all of that.
        assert_eq!(docs.hits("/client.json"), 1);
        // After its cache lifetime (max-age=3600) it is fetched again.
        app.clock.advance(Duration::minutes(61));
        sign_in(app, &client_id).await;
        assert_eq!(docs.hits("/client.json"), 2);

        // Only loopback redirect URIs: the page warns.
        let local = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(&docs.url("/local.json")),
            urlencode("http://127.0.0.1:40001/callback")
        );
        let page = app.get(&local).await.text().await.unwrap();
        assert!(page.contains("id=\"consent-localhost\""), "{page}");
        docs.stop().await;
    }
);

both_backends!(
    bad_metadata_documents_get_a_clear_error_page_and_no_fetch_loop,
    settings = documents_on,
    |app| async move {
        let docs = document_server().await;
        let (_, challenge) = pkce();
        let issuer = app.state.settings.issuer.clone();
        // Nobody signed in: the sign-in page first, nothing fetched.
        let anonymous = crate::helpers::new_client()
            .get(app.url(&authorize_url(
                &docs.url("/client.json"),
                &challenge,
                &issuer,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        assert!(
            anonymous.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );
        assert_eq!(docs.hits("/client.json"), 0);
        app.login_admin().await;
        for (path, says) in [
            ("/redirect.json", "redirects are not followed"),
            ("/missing.json", "answered 404"),
            ("/big.json", "larger than 5 KB"),
            ("/slow.json", "within 3 seconds"),
            ("/wrong-id.json", "not exactly the URL"),
        ] {
            let url = authorize_url(&docs.url(path), &challenge, &issuer);
            let page = app.get(&url).await;
            assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(page.headers().get("location").is_none(), "never redirected");
            let text = page.text().await.unwrap();
            assert!(text.contains(says), "{path}: {text}");
            // Asked again at once: answered from memory, not fetched again.
            let again = app.get(&url).await;
            assert_eq!(again.status(), StatusCode::BAD_REQUEST);
            assert_eq!(docs.hits(path), 1, "{path} fetched once");
        }
        // Five failures on one host in a minute: its other documents (another path, another
        // query) are not fetched either until the minute has passed.
        let page = app
            .get(&authorize_url(
                &docs.url("/secret.json"),
                &challenge,
                &issuer,
            ))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("failed too often lately")
        );
        assert_eq!(docs.hits("/secret.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    documents_on_private_addresses_or_unlisted_hosts_are_never_fetched,
    settings = |s: &mut gatehouse::config::Settings| {
        crate::oidc::own_issuer(s);
        s.cimd = gatehouse::config::CimdPolicy::All;
    },
    |app| async move {
        let docs = document_server().await;
        app.login_admin().await;
        let (_, challenge) = pkce();
        let port = docs.base.rsplit(':').next().unwrap().to_owned();
        for (client_id, says) in [
            // Without the test switch, plain http is refused…
            (docs.url("/client.json"), "must use https"),
            // …and an https name for a loopback or private address is never fetched.
            (
                "https://localhost/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://10.0.0.1/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://169.254.169.254/latest/meta-data.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://[::1]/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://[::ffff:a00:1]/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://no-such-host.invalid/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            // Only the default https port: no other service of a public address is reached.
            (
                format!("https://localhost:{port}/client.json"),
                "default https port",
            ),
        ] {
            let page = app.get(&authorize_url(&client_id, &challenge, "")).await;
            assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{client_id}");
            let text = page.text().await.unwrap();
            assert!(text.contains(says), "{client_id}: {text}");
        }
        assert_eq!(docs.hits("/client.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    the_operator_decides_which_hosts_describe_apps,
    settings = |s: &mut gatehouse::config::Settings| {
        documents_on(s);
        s.cimd = gatehouse::config::CimdPolicy::parse("*.example.org, tools.example.com").unwrap();
    },
    |app| async move {
        let docs = document_server().await;
        app.login_admin().await;
        let (_, challenge) = pkce();
        let page = app
            .get(&authorize_url(&docs.url("/client.json"), &challenge, ""))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("does not accept applications described by a metadata document")
        );
        assert_eq!(docs.hits("/client.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    the_agents_page_shows_where_apps_came_from_and_administers_them,
    settings = |s: &mut gatehouse::config::Settings| {
        documents_on(s);
        s.registration.mode = gatehouse::config::RegistrationMode::Open;
    },
    |app| async move {
        let docs = document_server().await;
        let reg: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let dcr_id = reg["client_id"].as_str().unwrap().to_owned();
        app.login_admin().await;
        let tokens = sign_in(app, &dcr_id).await;
        let document_id = docs.url("/client.json");
        sign_in(app, &document_id).await;

        let page = app.get("/admin/agents").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        for expected in [
            format!("data-client-id=\"{dcr_id}\""),
            format!("data-client-id=\"{document_id}\""),
            "registered itself".into(),
            "metadata document".into(),
            "Block 127.0.0.1".into(),
            "id=\"registration-policy\">open".into(),
        ] {
            assert!(page.contains(&expected), "{expected}: {page}");
        }
        let row = &page[page.find(&format!("data-client-id=\"{dcr_id}\"")).unwrap()..];
        assert!(row[..row.find("</tr>").unwrap()].contains("<td class=\"users\">1</td>"));
        // Users see where such apps came from.
        let connected = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            connected.contains("<strong class=\"app-origin\">127.0.0.1</strong>"),
            "{connected}"
        );
        assert!(connected.contains("registered itself"));

        let csrf = app.session_csrf().await;
        // Disable: its tokens stop working at once.
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &dcr_id),
                    ("action", "disable"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &dcr_id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let gone = registration(
            app,
            "GET",
            reg["registration_client_uri"].as_str().unwrap(),
            reg["registration_access_token"].as_str(),
            None,
        )
        .await;
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
        // A registered app is not the Agents page's to touch.
        let own = crate::oauth::register(app, false, false).await;
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &own.id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Without the session's CSRF token nothing happens.
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", "forged"),
                    ("client_id", &document_id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let still = document_id.clone();
        assert!(
            app.state
                .db(move |c| gatehouse::clients::find(c, &still))
                .await
                .unwrap()
                .is_some()
        );

        // Block the host: its app is disabled, a new document there is never fetched.
        let r = app
            .post_form(
                "/admin/agents/hosts",
                &[("csrf_token", &csrf), ("host", "127.0.0.1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (_, challenge) = pkce();
        let refused = app.get(&authorize_url(&document_id, &challenge, "")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let other = app
            .get(&authorize_url(&docs.url("/local.json"), &challenge, ""))
            .await;
        assert!(other.text().await.unwrap().contains("blocked"));
        assert_eq!(docs.hits("/local.json"), 0);
        let r = app
            .post_form(
                "/admin/agents/hosts/unblock",
                &[("csrf_token", &csrf), ("host", "127.0.0.1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let local = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(&docs.url("/local.json")),
            urlencode("http://127.0.0.1:40001/callback")
        );
        assert_eq!(
            app.get(&local).await.status(),
            StatusCode::OK,
            "fetched again once unblocked"
        );
        // The blocked app stays disabled until enabled.
        let still_off = app.get(&authorize_url(&document_id, &challenge, "")).await;
        assert_eq!(still_off.status(), StatusCode::BAD_REQUEST);
        assert!(still_off.text().await.unwrap().contains("or was disabled"));

        // Registration tokens: minted once on the page, revoked there.
        let minted = app
            .post_form(
                "/admin/agents/tokens",
                &[
                    ("csrf_token", &csrf),
                    ("label", "sales agents"),
                    ("days", "3"),
                    ("uses", "2"),
                ],
            )
            .await;
        assert_eq!(minted.status(), StatusCode::CREATED);
        let minted = minted.text().await.unwrap();
        let start = minted.find("id=\"minted-token\">").unwrap() + "id=\"minted-token\">".len();
        let token = &minted[start..start + minted[start..].find('<').unwrap()];
        assert!(token.starts_with("iat_"), "{token}");
        let listed = app.get("/admin/agents").await.text().await.unwrap();
        assert!(!listed.contains(token), "shown once only");
        let id = listed[listed.find("data-token-id=\"").unwrap() + 15..]
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let bad = app
            .post_form(
                "/admin/agents/tokens",
                &[("csrf_token", &csrf), ("days", "9999")],
            )
            .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let r = app
            .post_form(
                &format!("/admin/agents/tokens/{id}/revoke"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let tokens = app
            .state
            .db(gatehouse::clients::registration::list_initial_tokens)
            .await
            .unwrap();
        assert!(tokens.iter().all(|t| !t.usable(app.state.now())));
        docs.stop().await;
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

both_backends!(
    a_document_app_whose_host_is_no_longer_allowed_gets_no_tokens,
    settings = |s: &mut gatehouse::config::Settings| {
        s.cimd = gatehouse::config::CimdPolicy::parse("allowed.example.com").unwrap();
    },
    |app| async move {
        // Two document apps as an earlier policy left them (fresh rows, so no fetch).
        for id in [
            "https://allowed.example.com/c.json",
            "https://dropped.example.net/c.json",
        ] {
            let id = id.to_owned();
            let until = app.state.now() + Duration::hours(1);
            app.state
                .db(move |c| {
                    use diesel::prelude::*;
                    use gatehouse::db::schema::clients;
                    diesel::insert_into(clients::table)
                        .values((
                            clients::id.eq(&id),
                            clients::name.eq("Agent"),
                            clients::client_type.eq("public"),
                            clients::redirect_uris.eq(REDIRECT),
                            clients::allowed_scopes.eq("read:users"),
                            clients::grant_types.eq("authorization_code refresh_token"),
                            clients::first_party.eq(false),
                            clients::resources.eq(""),
                            clients::post_logout_redirect_uris.eq(""),
                            clients::backchannel_logout_session_required.eq(false),
                            clients::origin.eq("cimd"),
                            clients::metadata_expires_at.eq(until),
                            clients::created_at.eq(until),
                            clients::updated_at.eq(until),
                        ))
                        .execute(c)?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        let refresh = |id: &'static str| async move {
            reqwest::Client::new()
                .post(app.url("/oauth/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "rtk_nothing"),
                    ("client_id", id),
                ])
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(
            refresh("https://allowed.example.com/c.json").await,
            StatusCode::BAD_REQUEST,
            "a bad grant, from a known app"
        );
        assert_eq!(
            refresh("https://dropped.example.net/c.json").await,
            StatusCode::UNAUTHORIZED,
            "the app itself is refused"
        );
    }
);

both_backends!(
    self_registered_apps_keep_only_what_the_operator_opens_to_them_now,
    settings = |s: &mut gatehouse::config::Settings| {
        open_registration(s);
        s.resources = vec![
            "https://mcp.example.com/mcp".into(),
            "https://billing.example.com".into(),
        ];
        s.registration.resources = vec!["https://mcp.example.com/mcp".into()];
    },
    |app| async move {
        let reg: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let id = reg["client_id"].as_str().unwrap().to_owned();
        app.login_admin().await;
        let (_, challenge) = pkce();
        // The MCP server the operator opened: asked for, consented to.
        let page = app
            .get(&authorize_url(
                &id,
                &challenge,
                "https://mcp.example.com/mcp",
            ))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        // Another resource server of the install: not for apps that registered themselves,
        // even if an administrator's binding were copied onto the app.
        let set = id.clone();
        app.state
            .db(move |c| {
                use diesel::prelude::*;
                use gatehouse::db::schema::clients;
                diesel::update(clients::table.find(&set))
                    .set(
                        clients::resources
                            .eq("https://mcp.example.com/mcp https://billing.example.com"),
                    )
                    .execute(c)?;
                Ok(())
            })
            .await
            .unwrap();
        app.state.key_cache.invalidate_all();
        let page = app
            .get(&authorize_url(
                &id,
                &challenge,
                "https://billing.example.com",
            ))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("may not ask for tokens for that resource")
        );

        // Disabled by an administrator: its registration is frozen (it may still delete it).
        let csrf = app.session_csrf().await;
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &id),
                    ("action", "disable"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let mut body = agent_metadata();
        body["client_id"] = json!(id);
        let uri = reg["registration_client_uri"].as_str().unwrap();
        let rat = reg["registration_access_token"].as_str();
        assert_eq!(
            registration(app, "PUT", uri, rat, Some(body))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            registration(app, "DELETE", uri, rat, None).await.status(),
            StatusCode::NO_CONTENT
        );
    }
);
