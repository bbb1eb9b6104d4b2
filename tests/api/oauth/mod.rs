//! The authorization-code flow with PKCE over HTTP (login and consent form posts with a cookie
//! jar, as a browser would), the token endpoint, refresh rotation, and the attacks on each.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, hidden_field};

mod flow;
mod refusals;
mod tokens;

pub(crate) const REDIRECT: &str = "https://app.example.com/callback";

pub(crate) struct TestClient {
    pub id: String,
    pub secret: Option<String>,
}

pub(crate) async fn register(app: &TestApp, public: bool, first_party: bool) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{ClientType, NewClient};
    let me: Value = app.me().await.json().await.unwrap();
    let owner = me["data"]["id"].as_str().unwrap().to_owned();
    let new = NewClient {
        name: "Orders app".into(),
        owner_user_id: Some(owner),
        client_type: if public {
            ClientType::Public
        } else {
            ClientType::Confidential
        },
        redirect_uris: vec![
            RedirectUri::parse(REDIRECT).unwrap(),
            RedirectUri::parse("http://127.0.0.1/cb").unwrap(),
        ],
        scopes: gatehouse::scopes::ScopeSet::parse("read:users read:orders write:orders").unwrap(),
        first_party,
        grant_types: gatehouse::clients::default_grant_types(),
        resources: Vec::new(),
        ..Default::default()
    };
    crate::oauth::create_client(app, new).await
}

/// Register `new` as the app (the one way the tests create apps in the database).
pub(crate) async fn create_client(app: &TestApp, new: gatehouse::clients::NewClient) -> TestClient {
    let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
    let (client, secret) = app
        .state
        .db(move |c| gatehouse::clients::create(c, &pepper, &new, now))
        .await
        .unwrap();
    TestClient {
        id: client.id,
        secret: secret.map(|s| s.expose().to_owned()),
    }
}

/// A first-party flow for `read:users`: the token endpoint's answer.
pub(crate) async fn obtain_tokens(app: &TestApp, client: &TestClient) -> Value {
    obtain_tokens_for(app, client, "read:users").await
}

/// A code for `scope`, approving on the consent page if it is shown.
pub(crate) async fn code_for(app: &TestApp, client: &TestClient, scope: &str) -> String {
    authorize(app, &authorize_url(client, scope, None, ""), "approve").await["code"].clone()
}

/// A flow for `scope` (approving if asked): the token endpoint's answer.
pub(crate) async fn obtain_tokens_for(app: &TestApp, client: &TestClient, scope: &str) -> Value {
    let code = code_for(app, client, scope).await;
    exchange(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap()
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = gatehouse::secrets::random_base62(64);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn authorize_url(
    client: &TestClient,
    scope: &str,
    challenge: Option<&str>,
    extra: &str,
) -> String {
    let mut url = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st4te",
        client.id,
        urlencode(REDIRECT),
        urlencode(scope)
    );
    if let Some(c) = challenge {
        url.push_str(&format!("&code_challenge={c}&code_challenge_method=S256"));
    }
    url.push_str(extra);
    url
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub(crate) fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

/// Follow the authorize request through the consent page (approving or denying) and return
/// the redirect's query.
pub(crate) async fn authorize(
    app: &TestApp,
    url: &str,
    decision: &str,
) -> std::collections::HashMap<String, String> {
    authorize_pausing(app, url, decision, chrono::Duration::zero()).await
}

/// The same, with the user reading the consent page for `pause` (on the server's clock)
/// before deciding.
pub(crate) async fn authorize_pausing(
    app: &TestApp,
    url: &str,
    decision: &str,
    pause: chrono::Duration,
) -> std::collections::HashMap<String, String> {
    let response = app.get(url).await;
    let location = if response.status() == StatusCode::OK {
        let page = response.text().await.unwrap();
        app.clock.advance(pause);
        assert!(page.contains("id=\"consent-title\""), "a consent page");
        // The consent form's own fields (the page's sign-out form has a CSRF token too).
        let page = &page[page.find("id=\"consent-form\"").unwrap()..];
        let fields: Vec<(String, String)> = [
            "csrf_token",
            "client_id",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "code_challenge",
            "code_challenge_method",
            "resource",
            "nonce",
            "workspace",
            "request_uri",
        ]
        .iter()
        .map(|f| (f.to_string(), hidden_field(page, f).unwrap_or_default()))
        .chain([("decision".to_string(), decision.to_string())])
        .collect();
        let decided = app
            .client
            .post(app.url("/oauth/authorize"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        if decided.status() != StatusCode::SEE_OTHER {
            panic!(
                "{:?} {:?}: {}",
                fields,
                decided.status(),
                decided.text().await.unwrap()
            );
        }
        decided.headers()["location"].to_str().unwrap().to_owned()
    } else {
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        response.headers()["location"].to_str().unwrap().to_owned()
    };
    assert!(
        location.starts_with(REDIRECT),
        "back to the client: {location}"
    );
    query_of(&location)
}

pub(crate) async fn exchange(
    app: &TestApp,
    client: &TestClient,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url("/oauth/token"));
    if let Some(secret) = &client.secret {
        request = request.basic_auth(&client.id, Some(secret))
    }
    let mut form: Vec<(&str, &str)> = form.to_vec();
    if client.secret.is_none() {
        form.push(("client_id", &client.id));
    }
    request.form(&form).send().await.unwrap()
}

pub(crate) async fn oauth_error(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

pub(crate) async fn futures_join<F: std::future::Future<Output = reqwest::Response>>(
    futures: impl Iterator<Item = F>,
) -> Vec<reqwest::Response> {
    let handles: Vec<_> = futures.map(|f| Box::pin(f)).collect();
    let mut out = Vec::new();
    // Poll all together so the requests are in flight at the same time.
    let mut pending: Vec<_> = handles.into_iter().map(Some).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => {
                        out.push(r);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out
}

/// An `oauth2` crate HTTP client over reqwest (the crate's own reqwest feature pins another
/// reqwest major version).
pub(crate) async fn oauth2_http(
    request: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, reqwest::Error> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (parts, body) = request.into_parts();
    let response = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let mut builder = http::Response::builder().status(response.status());
    if let Some(headers) = builder.headers_mut() {
        *headers = response.headers().clone();
    }
    let bytes = response.bytes().await?;
    Ok(builder
        .body(bytes.to_vec())
        .expect("a response from its parts"))
}
