//! Apps that arrive on their own, as MCP clients and agents do: the protected-resource metadata
//! that points them here, dynamic client registration (RFC 7591/7592) under each policy, and
//! Client ID Metadata Documents served by a test web server — with the attacks on each (bad
//! metadata, floods, stolen or dead registration tokens, documents that redirect, lie, are too
//! large or slow, or point at private addresses).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, TestClient, authorize, exchange, pkce, urlencode};

mod administration;
mod documents;
mod registration;

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
