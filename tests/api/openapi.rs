//! The OpenAPI document (`GET /openapi.json`): it describes every API route that `src/app.rs`
//! wires (and nothing else), it is OpenAPI 3.1 in shape with every reference resolvable, and
//! real answers of the server — bodies, statuses, content types and documented headers —
//! are what it says they are.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, code_for, exchange};

/// Routes that answer HTML (pages and their forms, the consent decision, the rendered error
/// catalogue) or static assets: not part of the API, not in the document.
const NOT_API: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/signup"),
    ("POST", "/signup"),
    ("GET", "/account"),
    ("POST", "/account/password"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/logout"),
    ("GET", "/docs/errors"),
    ("GET", "/static/app.css"),
    ("GET", "/static/app.js"),
    ("GET", "/settings/apps"),
    ("GET", "/admin/agents"),
    ("POST", "/admin/agents/apps"),
    ("POST", "/admin/agents/tokens"),
    ("POST", "/admin/agents/tokens/{id}/revoke"),
    ("POST", "/admin/agents/hosts"),
    ("POST", "/admin/agents/hosts/unblock"),
    ("POST", "/settings/apps"),
    ("POST", "/settings/apps/{id}/secret"),
    ("POST", "/settings/apps/{id}/{action}"),
    ("GET", "/settings/connected-apps"),
    ("POST", "/settings/connected-apps/{id}/revoke"),
    ("GET", "/settings/api-keys"),
    ("POST", "/settings/api-keys"),
    ("GET", "/settings/api-keys/{id}"),
    ("GET", "/settings/api-keys/{id}/revoke"),
    ("POST", "/settings/api-keys/{id}/revoke"),
    ("POST", "/settings/api-keys/{id}/roll"),
    ("GET", "/admin/apps"),
    ("GET", "/admin/users"),
    ("POST", "/admin/users"),
    ("GET", "/admin/users/{id}/api-keys"),
    ("POST", "/admin/users/{id}/api-keys"),
    ("POST", "/admin/users/{id}/{action}"),
    ("GET", "/workspaces"),
    ("POST", "/workspaces"),
    ("GET", "/workspaces/{id}"),
    ("POST", "/workspaces/{id}/{action}"),
    ("POST", "/workspaces/{id}/members/{user_id}/{action}"),
    ("POST", "/workspaces/{id}/invitations/{inv_id}/revoke"),
    ("POST", "/workspaces/{id}/api-keys/{key_id}/revoke"),
    ("GET", "/invitations/{token}"),
    ("POST", "/invitations/{token}"),
    ("GET", "/device"),
    ("POST", "/device"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn generated() -> Value {
    gatehouse::openapi::document("http://127.0.0.1:8080")
}

/// The (METHOD, path) pairs the document describes.
fn documented_routes(document: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

#[test]
fn every_api_route_is_in_the_document_and_nothing_else() {
    let wired: BTreeSet<(String, String)> =
        crate::permissions::wired_routes().into_iter().collect();
    let not_api: BTreeSet<(String, String)> = NOT_API
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert!(
        not_api.is_subset(&wired),
        "NOT_API names routes that are not wired: {:?}",
        not_api.difference(&wired).collect::<Vec<_>>()
    );
    let api: BTreeSet<_> = wired.difference(&not_api).cloned().collect();
    let documented = documented_routes(&generated());
    let undocumented: Vec<_> = api.difference(&documented).collect();
    assert!(
        undocumented.is_empty(),
        "routes wired in src/app.rs that /openapi.json does not describe (add #[utoipa::path] \
         to the handler and list it in src/openapi.rs, or add the route to NOT_API if it \
         answers HTML): {undocumented:?}"
    );
    let unwired: Vec<_> = documented.difference(&api).collect();
    assert!(
        unwired.is_empty(),
        "the document describes routes that are not wired: {unwired:?}"
    );
}

/// The value at a local reference (`#/components/…`), if it resolves.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    document.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` in the document, with where it is.
fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                if key == "$ref"
                    && let Some(target) = member.as_str()
                {
                    found.push((at.to_owned(), target.to_owned()));
                }
                references(member, &format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                references(item, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((method.to_uppercase(), path.clone(), operation));
            }
        }
    }
    all
}

#[test]
fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let document = generated();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        document["openapi"]
    );
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());
    assert_eq!(document["servers"][0]["url"], "http://127.0.0.1:8080");

    let mut refs = Vec::new();
    references(&document, "#", &mut refs);
    assert!(refs.len() > 50, "only {} references", refs.len());
    let dangling: Vec<_> = refs
        .iter()
        .filter(|(_, target)| resolve(&document, target).is_none())
        .collect();
    assert!(dangling.is_empty(), "unresolved $refs: {dangling:?}");

    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    let oauth_scopes = &schemes["oauth2"]["flows"]["authorizationCode"]["scopes"];
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses
                .keys()
                .any(|s| s.starts_with('2') || s.starts_with('3')),
            "{method} {path} documents no success"
        );
        let id = operation["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for (scheme, scopes) in requirement.as_object().unwrap() {
                assert!(schemes.contains_key(scheme), "{method} {path}: {scheme}?");
                for scope in scopes.as_array().unwrap() {
                    assert!(
                        oauth_scopes.get(scope.as_str().unwrap()).is_some(),
                        "{method} {path} needs {scope}, which the OAuth flows do not list"
                    );
                }
            }
        }
        if path.starts_with("/v1/") {
            for status in ["401", "403", "429"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
        }
    }
    // Links name operations that exist.
    for (_, _, operation) in operations(&document) {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"].as_object().into_iter().flatten() {
                let target = link.1["operationId"].as_str().expect("operationId");
                assert!(ids.contains(target), "a link to {target}");
            }
        }
    }
}

#[test]
fn the_document_lists_every_error_code_of_the_catalogue() {
    let document = generated();
    let listed: BTreeSet<&str> = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let catalogue = include_str!("../../docs/errors.md");
    let documented: BTreeSet<&str> = catalogue
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .filter_map(|l| l.split_once(" {#").map(|(code, _)| code))
        .collect();
    assert_eq!(listed, documented);
    let oauth: BTreeSet<&str> =
        document["components"]["schemas"]["OAuthErrorBody"]["properties"]["error"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
    assert!(oauth.contains("invalid_grant") && oauth.contains("slow_down"));
}

/// The served document, and checks of real answers against it.
struct Spec {
    document: Value,
}

impl Spec {
    async fn fetch(app: &TestApp) -> Spec {
        let response = reqwest::get(app.url("/openapi.json")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let document: Value = response.json().await.unwrap();
        assert_eq!(
            document,
            gatehouse::openapi::document(&app.address),
            "the served document is the one generated for this server"
        );
        Spec { document }
    }

    fn deref<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            value = resolve(&self.document, target).unwrap_or_else(|| panic!("{target}"));
        }
        value
    }

    /// Check a real answer to `method template` against the document; its body, parsed.
    async fn check(&self, method: &str, template: &str, response: reqwest::Response) -> Value {
        let status = response.status();
        let operation = &self.document["paths"][template][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {template} is not documented"
        );
        let documented = operation["responses"]
            .get(status.as_str())
            .unwrap_or_else(|| panic!("{method} {template} answered {status}, undocumented"));
        let documented = self.deref(documented);
        for name in documented["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|h| h.0)
        {
            assert!(
                response.headers().contains_key(name.as_str()),
                "{method} {template} {status} lacks the documented header {name}"
            );
        }
        let media_type = response.headers().get("content-type").map(|v| {
            v.to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .trim()
                .to_owned()
        });
        let text = response.text().await.unwrap();
        let Some(content) = documented["content"].as_object() else {
            assert!(
                text.is_empty(),
                "{method} {template} {status}: a body: {text}"
            );
            return Value::Null;
        };
        let media_type = media_type.expect("a Content-Type");
        let Some(media) = content.get(&media_type) else {
            panic!("{method} {template} {status} answered {media_type}, documented {content:?}");
        };
        if media_type != "application/json" {
            return Value::String(text);
        }
        let body: Value = serde_json::from_str(&text).unwrap();
        self.validate(
            &media["schema"],
            &body,
            &format!("{method} {template} {status}"),
        );
        body
    }

    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        let mut root = schema.clone();
        root["components"] = self.document["components"].clone();
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{what}: the schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the document:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

/// A request without cookies or redirects, with `credential` as Bearer if given.
fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    credential: Option<&str>,
) -> reqwest::RequestBuilder {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let request = http.request(
        Method::from_bytes(method.as_bytes()).unwrap(),
        app.url(path),
    );
    match credential {
        Some(c) => request.bearer_auth(c),
        None => request,
    }
}

both_backends!(public_answers_match_the_document, |app| async move {
    let spec = Spec::fetch(app).await;
    for (path, status) in [
        ("/healthz", 200),
        ("/readyz", 200),
        ("/openapi.json", 200),
        ("/.well-known/jwks.json", 200),
        ("/.well-known/oauth-authorization-server", 200),
        ("/oauth/authorize", 400),
    ] {
        let response = request(app, "GET", path, None).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        spec.check("GET", path, response).await;
    }
    let token = Some(gatehouse::config::TEST_METRICS_TOKEN);
    for (credential, status) in [(None, 401), (Some("not-the-token"), 401), (token, 200)] {
        let response = request(app, "GET", "/metrics", credential)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{credential:?}");
        spec.check("GET", "/metrics", response).await;
    }
});

both_backends!(v1_answers_match_the_document, |app| async move {
    let spec = Spec::fetch(app).await;
    app.login_admin().await;
    let (_, admin_key) = app.create_key(json!({ "name": "admin" })).await;
    let key = Some(admin_key.as_str());
    let call = |method: &'static str, path: String, body: Option<Value>| {
        let mut r = request(app, method, &path, key);
        if let Some(body) = body {
            r = r.json(&body);
        }
        r.send()
    };

    let me = spec
        .check(
            "GET",
            "/v1/users/me",
            call("GET", "/v1/users/me".into(), None).await.unwrap(),
        )
        .await;
    assert_eq!(me["data"]["authentication"]["type"], "api_key");
    let patched = call(
        "PATCH",
        "/v1/users/me".into(),
        Some(json!({ "display_name": "Ada" })),
    );
    spec.check("PATCH", "/v1/users/me", patched.await.unwrap())
        .await;
    spec.check(
        "GET",
        "/v1/users",
        call("GET", "/v1/users".into(), None).await.unwrap(),
    )
    .await;
    let created = call(
        "POST",
        "/v1/users".into(),
        Some(json!({ "email": "new@example.com" })),
    );
    let created = spec
        .check("POST", "/v1/users", created.await.unwrap())
        .await;
    assert!(created["data"]["password"].is_string(), "{created}");
    let user = created["data"]["id"].as_str().unwrap().to_owned();
    let again = call(
        "POST",
        "/v1/users".into(),
        Some(json!({ "email": "new@example.com" })),
    );
    let conflict = spec.check("POST", "/v1/users", again.await.unwrap()).await;
    assert_eq!(conflict["error"]["code"], "RESOURCE_002");
    spec.check(
        "GET",
        "/v1/users/{id}",
        call("GET", format!("/v1/users/{user}"), None)
            .await
            .unwrap(),
    )
    .await;

    let theirs = json!({ "name": "theirs", "scopes": ["read:users"], "mode": "test" });
    let path = format!("/v1/users/{user}/api-keys");
    spec.check(
        "POST",
        "/v1/users/{id}/api-keys",
        call("POST", path.clone(), Some(theirs)).await.unwrap(),
    )
    .await;
    spec.check(
        "GET",
        "/v1/users/{id}/api-keys",
        call("GET", path, None).await.unwrap(),
    )
    .await;

    let mine = json!({ "name": "ci", "expires_in": "30d", "allowed_ips": ["10.0.0.0/8"] });
    let created = spec
        .check(
            "POST",
            "/v1/api-keys",
            call("POST", "/v1/api-keys".into(), Some(mine))
                .await
                .unwrap(),
        )
        .await;
    let id = created["data"]["id"].as_str().unwrap().to_owned();
    let listed = spec
        .check(
            "GET",
            "/v1/api-keys",
            call("GET", "/v1/api-keys?limit=1".into(), None)
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(listed["pagination"]["has_more"], true);
    let one = format!("/v1/api-keys/{id}");
    spec.check(
        "GET",
        "/v1/api-keys/{id}",
        call("GET", one.clone(), None).await.unwrap(),
    )
    .await;
    let patch = json!({ "description": null, "allowed_ips": null });
    spec.check(
        "PATCH",
        "/v1/api-keys/{id}",
        call("PATCH", one.clone(), Some(patch)).await.unwrap(),
    )
    .await;
    let roll = format!("/v1/api-keys/{id}/roll");
    let rolled = call("POST", roll.clone(), Some(json!({ "grace_period": "1h" })));
    let rolled = spec
        .check("POST", "/v1/api-keys/{id}/roll", rolled.await.unwrap())
        .await;
    assert_eq!(rolled["data"]["previous_key"]["id"], id.as_str());
    let twice = spec
        .check(
            "POST",
            "/v1/api-keys/{id}/roll",
            call("POST", roll, None).await.unwrap(),
        )
        .await;
    assert_eq!(twice["error"]["code"], "RESOURCE_002");
    spec.check(
        "DELETE",
        "/v1/api-keys/{id}",
        call("DELETE", one, None).await.unwrap(),
    )
    .await;
    spec.check(
        "GET",
        "/v1/audit-events",
        call("GET", "/v1/audit-events?limit=2".into(), None)
            .await
            .unwrap(),
    )
    .await;

    let app_body = json!({
        "name": "Orders app",
        "redirect_uris": ["https://orders.example.com/callback"],
        "scopes": ["read:users"],
    });
    let registered = spec
        .check(
            "POST",
            "/v1/clients",
            call("POST", "/v1/clients".into(), Some(app_body))
                .await
                .unwrap(),
        )
        .await;
    assert!(registered["data"]["client_secret"].is_string());
    let client = format!(
        "/v1/clients/{}",
        registered["data"]["client_id"].as_str().unwrap()
    );
    spec.check(
        "GET",
        "/v1/clients",
        call("GET", "/v1/clients?all=true".into(), None)
            .await
            .unwrap(),
    )
    .await;
    spec.check(
        "GET",
        "/v1/clients/{id}",
        call("GET", client.clone(), None).await.unwrap(),
    )
    .await;
    spec.check(
        "PATCH",
        "/v1/clients/{id}",
        call("PATCH", client.clone(), Some(json!({ "name": "Y" })))
            .await
            .unwrap(),
    )
    .await;
    let rotated = call(
        "POST",
        format!("{client}/secret"),
        Some(json!({ "grace_period": 0 })),
    );
    spec.check("POST", "/v1/clients/{id}/secret", rotated.await.unwrap())
        .await;
    spec.check(
        "DELETE",
        "/v1/clients/{id}",
        call("DELETE", client, None).await.unwrap(),
    )
    .await;
    spec.check(
        "GET",
        "/v1/consents",
        call("GET", "/v1/consents".into(), None).await.unwrap(),
    )
    .await;
    let unknown = call("DELETE", "/v1/consents/con_nope".into(), None)
        .await
        .unwrap();
    spec.check("DELETE", "/v1/consents/{id}", unknown).await;

    // The shared error answers.
    let anonymous = request(app, "GET", "/v1/users/me", None)
        .send()
        .await
        .unwrap();
    assert!(anonymous.headers().contains_key("www-authenticate"));
    spec.check("GET", "/v1/users/me", anonymous).await;
    let malformed = request(app, "GET", "/v1/users/me", Some("not-a-key"))
        .send()
        .await
        .unwrap();
    spec.check("GET", "/v1/users/me", malformed).await;
    let missing = call("GET", "/v1/api-keys/key_nope".into(), None)
        .await
        .unwrap();
    spec.check("GET", "/v1/api-keys/{id}", missing).await;
    let bad = call("GET", "/v1/api-keys?limit=0".into(), None)
        .await
        .unwrap();
    let bad = spec.check("GET", "/v1/api-keys", bad).await;
    assert_eq!(bad["error"]["field"], "limit");
    let text = request(app, "POST", "/v1/api-keys", key)
        .header("content-type", "text/plain")
        .body("name=x")
        .send()
        .await
        .unwrap();
    spec.check("POST", "/v1/api-keys", text).await;
});

both_backends!(oauth_answers_match_the_document, |app| async move {
    let spec = Spec::fetch(app).await;
    app.login_admin().await;
    let (_, admin_key) = app.create_key(json!({ "name": "admin" })).await;
    let key = Some(admin_key.as_str());
    let client = crate::integrity::app_with(app, "read:users", &[]).await;

    // The browser flow (first-party: straight back with a code), then its tokens.
    let location = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers",
        client.id,
        crate::oauth::urlencode(REDIRECT)
    );
    let signed_in = app.client.get(app.url(&location)).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    spec.check("GET", "/oauth/authorize", signed_in).await;
    let anonymous = request(app, "GET", &location, None).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    spec.check("GET", "/oauth/authorize", anonymous).await;
    let code = code_for(app, &client, "read:users").await;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let tokens = spec
        .check("POST", "/oauth/token", exchange(app, &client, &grant).await)
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let cc = exchange(app, &client, &[("grant_type", "client_credentials")]).await;
    let cc = spec.check("POST", "/oauth/token", cc).await;
    assert!(cc.get("refresh_token").is_none());
    let stranger = crate::oauth::TestClient {
        id: client.id.clone(),
        secret: Some("cs_wrong".into()),
    };
    let refused = exchange(app, &stranger, &[("grant_type", "client_credentials")]).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    spec.check("POST", "/oauth/token", refused).await;

    let me = spec
        .check(
            "GET",
            "/v1/users/me",
            request(app, "GET", "/v1/users/me", Some(&access))
                .send()
                .await
                .unwrap(),
        )
        .await;
    assert_eq!(me["data"]["authentication"]["type"], "access_token");
    let consents = request(app, "GET", "/v1/consents", key)
        .send()
        .await
        .unwrap();
    let consents = spec.check("GET", "/v1/consents", consents).await;
    let consent = consents["data"][0]["id"]
        .as_str()
        .expect("the first-party grant is recorded");

    for (token, kind) in [
        (admin_key.as_str(), "api_key"),
        (access.as_str(), "access_token"),
        (refresh.as_str(), "refresh_token"),
        ("rt_unknown", ""),
    ] {
        let asked = request(app, "POST", "/oauth/introspect", key).form(&[("token", token)]);
        let answer = spec
            .check("POST", "/oauth/introspect", asked.send().await.unwrap())
            .await;
        assert_eq!(answer["active"], !kind.is_empty(), "{answer}");
        if !kind.is_empty() {
            assert_eq!(answer["token_type"], kind);
        }
    }
    let nobody = request(app, "POST", "/oauth/introspect", None).form(&[("token", "x")]);
    spec.check("POST", "/oauth/introspect", nobody.send().await.unwrap())
        .await;
    let revoked = request(app, "POST", "/oauth/revoke", key).form(&[("token", refresh.as_str())]);
    let revoked = spec
        .check("POST", "/oauth/revoke", revoked.send().await.unwrap())
        .await;
    assert_eq!(revoked, json!({}));
    let hint = request(app, "POST", "/oauth/revoke", key)
        .form(&[("token", "x"), ("token_type_hint", "password")]);
    spec.check("POST", "/oauth/revoke", hint.send().await.unwrap())
        .await;
    let disconnect = request(app, "DELETE", &format!("/v1/consents/{consent}"), key);
    spec.check(
        "DELETE",
        "/v1/consents/{id}",
        disconnect.send().await.unwrap(),
    )
    .await;
    let replay = spec
        .check("POST", "/oauth/token", exchange(app, &client, &grant).await)
        .await;
    assert_eq!(replay["error"], "invalid_grant");
});
