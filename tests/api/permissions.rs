//! The permission matrix: every route and page of Gatehouse × every kind of caller → the
//! status the caller gets. The table is data (`MATRIX`); one loop asks every cell against a
//! live server on both databases. A route wired in `src/app.rs` without rows here fails
//! `every_route_has_rows_in_the_matrix`. The README's "Who may do what" is this table's
//! summary.

use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{TestClient, exchange, obtain_tokens_for};

/// The kinds of caller, in the order of the matrix's columns.
const CALLERS: [&str; 15] = [
    "anonymous",
    "member session",
    "admin session",
    "member sk_live",
    "member sk_test",
    "member rk_ with the scopes",
    "member rk_ without",
    "admin sk_live",
    "admin rk_ with the scopes",
    "admin rk_ without",
    "member's app token with the scopes",
    "member's app token without",
    "admin's app token with the scopes",
    "client_credentials token",
    "disabled user's key",
];

/// Every scope a member may hold (the member's "with the scopes" credentials carry them).
const MEMBER_SCOPES: &str = "read:users write:profile read:api_keys write:api_keys read:clients \
     write:clients read:consents write:consents read:products read:workspaces write:workspaces";
/// Every scope, admin-only ones included.
const ALL_SCOPES: &str = "read:users write:profile read:api_keys write:api_keys read:clients \
     write:clients read:consents write:consents read:products write:users admin:users \
     admin:clients introspect read:audit read:workspaces write:workspaces";
/// The "without" credentials hold a scope no route of Gatehouse's needs.
const UNRELATED_SCOPE: &str = "read:products";

/// One row: method, path (with `{member}`, `{admin}`, `{key}`, `{client}`, `{consent}`,
/// `{uniq}` placeholders), JSON or form body, and the status per caller (in `CALLERS` order).
/// `{key}`, `{client}` and `{consent}` are fresh for every cell: the member's restricted
/// test-mode key (`read:products`, one hour), the member's confidential app, a consent of the
/// member's.
type Row = (&'static str, &'static str, Body, [u16; 15]);

#[derive(Clone, Copy)]
enum Body {
    None,
    Json(&'static str),
    /// An OAuth form; `{key}` is replaced.
    Form(&'static str),
}

const NEW_KEY: &str = r#"{"name":"m","mode":"test","scopes":["read:products"],"expires_in":"1h"}"#;
const NEW_APP: &str =
    r#"{"name":"x","redirect_uris":["https://x.example.com/cb"],"scopes":["read:products"]}"#;

#[rustfmt::skip]
const MATRIX: &[Row] = &[
    //                                                           anon mS   aS   msk  mskt mrk  mrk0 ask  ark  ark0 mtok mt0  atok cc   dis
    ("GET",    "/v1/users/me", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("PATCH",  "/v1/users/me", Body::Json(r#"{"display_name":"Mo"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("GET",    "/v1/users", Body::None,                          [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/users", Body::Json(r#"{"email":"u{uniq}@example.com"}"#),
                                                                  [401, 403, 201, 403, 403, 403, 403, 201, 201, 403, 403, 403, 201, 403, 401]),
    ("GET",    "/v1/users/{member}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("GET",    "/v1/users/{admin}", Body::None,                  [401, 404, 200, 404, 404, 404, 403, 200, 200, 403, 404, 403, 200, 403, 401]),
    ("GET",    "/v1/users/{member}/api-keys", Body::None,        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/users/{member}/api-keys", Body::Json(NEW_KEY),
                                                                  [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401]),
    ("GET",    "/v1/api-keys", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/api-keys", Body::Json(NEW_KEY),              [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401]),
    ("GET",    "/v1/api-keys/{key}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("PATCH",  "/v1/api-keys/{key}", Body::Json(r#"{"name":"renamed"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 401]),
    ("DELETE", "/v1/api-keys/{key}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/api-keys/{key}/roll", Body::None,            [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401]),
    ("GET",    "/v1/audit-events", Body::None,                   [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401]),
    ("GET",    "/v1/clients", Body::None,                        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("GET",    "/v1/clients?all=true", Body::None,               [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401]),
    ("POST",   "/v1/clients", Body::Json(NEW_APP),               [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 201, 403, 201, 403, 401]),
    ("GET",    "/v1/clients/{client}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("PATCH",  "/v1/clients/{client}", Body::Json(r#"{"name":"y"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("PATCH",  "/v1/clients/{client}", Body::Json(r#"{"first_party":true}"#),
                                                                  [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401]),
    ("DELETE", "/v1/clients/{client}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/clients/{client}/secret", Body::None,        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("GET",    "/v1/consents", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("DELETE", "/v1/consents/{consent}", Body::None,             [401, 200, 404, 200, 200, 200, 403, 404, 404, 403, 200, 403, 404, 403, 401]),
    // Workspaces. `{ws}` is fresh for every cell: a shared workspace the member owns, with the
    // second member in it, `{wskey}` the second member's key there, `{inv}` a pending invitation
    // there; `{pws}` is the member's personal workspace. Keys and app tokens act in the
    // workspace they were made in (their user's personal one here): any other workspace does
    // not exist for them (404), even the member's own. An administrator of the install holding
    // `admin:users` reaches any workspace from a session (the operator's oversight).
    ("GET",    "/v1/workspaces", Body::None,                     [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401]),
    ("POST",   "/v1/workspaces", Body::Json(r#"{"name":"Team {uniq}"}"#),
                                                                  [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 201, 403, 201, 403, 401]),
    ("GET",    "/v1/workspaces/{ws}", Body::None,                [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("GET",    "/v1/workspaces/{pws}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 404, 404, 403, 200, 403, 404, 403, 401]),
    ("PATCH",  "/v1/workspaces/{ws}", Body::Json(r#"{"name":"Renamed"}"#),
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("DELETE", "/v1/workspaces/{ws}", Body::None,                [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("GET",    "/v1/workspaces/{ws}/members", Body::None,        [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("PATCH",  "/v1/workspaces/{ws}/members/{member2}", Body::Json(r#"{"role":"admin"}"#),
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("DELETE", "/v1/workspaces/{ws}/members/{member2}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("POST",   "/v1/workspaces/{ws}/members/{member2}/api-keys", Body::Json(NEW_KEY),
                                                                  [401, 201, 201, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("GET",    "/v1/workspaces/{ws}/invitations", Body::None,    [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("POST",   "/v1/workspaces/{ws}/invitations", Body::Json(r#"{"email":"i{uniq}@example.com"}"#),
                                                                  [401, 201, 201, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("DELETE", "/v1/workspaces/{ws}/invitations/{inv}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("GET",    "/v1/workspaces/{ws}/api-keys", Body::None,       [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("DELETE", "/v1/workspaces/{ws}/api-keys/{wskey}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    ("GET",    "/v1/workspaces/{ws}/audit-events", Body::None,   [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401]),
    // `{inv_token}`: an invitation for the member's address to a workspace of the second
    // member's. Another user's credential is refused (403, WORKSPACE_004).
    ("POST",   "/v1/invitations/accept", Body::Json(r#"{"token":"{inv_token}"}"#),
                                                                  [401, 200, 403, 200, 200, 200, 403, 403, 403, 403, 200, 403, 403, 403, 401]),
    // Public: the OpenAPI document, whoever asks.
    ("GET",    "/openapi.json", Body::None,                      [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    // OAuth endpoints with a Bearer credential (client authentication is the OAuth suites').
    ("POST",   "/oauth/introspect", Body::Form("token={key_secret}"),
                                                                  [401, 401, 401, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 401, 401]),
    ("POST",   "/oauth/revoke", Body::Form("token={key_secret}"),
                                                                  [401, 401, 401, 200, 200, 200, 200, 200, 200, 400, 200, 200, 200, 401, 401]),
    // OpenID Connect UserInfo: an app's access token only (a key, a session or a
    // client_credentials token is not one: 401), and only with `openid` (403); the tokens
    // with `openid` are answered in the OpenID Connect suite.
    ("GET",    "/oauth/userinfo", Body::None,                    [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403, 403, 401, 401]),
    ("POST",   "/oauth/userinfo", Body::None,                    [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403, 403, 401, 401]),
    // The metrics token only: no user's credential reads metrics, an administrator's neither.
    ("GET",    "/metrics", Body::None,                           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    // Pages: a browser session only; any other caller is sent to sign in.
    ("GET",    "/account", Body::None,                           [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/settings/api-keys", Body::None,                 [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/settings/api-keys/{key}", Body::None,           [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/settings/api-keys/{key}/revoke", Body::None,    [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/settings/apps", Body::None,                     [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/settings/connected-apps", Body::None,           [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/admin/users", Body::None,                       [303, 403, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/admin/apps", Body::None,                        [303, 403, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/admin/agents", Body::None,                      [303, 403, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/admin/users/{member}/api-keys", Body::None,     [303, 403, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/workspaces", Body::None,                        [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/workspaces/{ws}", Body::None,                   [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/workspaces/{pws}", Body::None,                  [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("GET",    "/invitations/{inv_token}", Body::None,           [303, 200, 200, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    // Page forms: the session's CSRF token is added for the session columns; without a
    // session a form is sent to sign in.
    ("POST",   "/settings/api-keys/{key}/revoke", Body::None,   [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/users/{member}/api-keys", Body::None,     [303, 403, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/users", Body::None,                       [303, 403, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/users/{member2}/disable", Body::None,     [303, 403, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/settings/apps/{client}/disable", Body::None,    [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/settings/connected-apps/{consent}/revoke", Body::None,
                                                                  [303, 303, 404, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    // The workspace pages' forms act through the `/v1/workspaces` functions: a form without
    // its fields is refused on the page (400), complete ones go back to the workspace (303).
    ("POST",   "/workspaces", Body::None,                        [303, 400, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/workspaces/{ws}/settings", Body::None,          [303, 400, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/workspaces/{ws}/members/{member2}/remove", Body::None,
                                                                  [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/workspaces/{ws}/invitations/{inv}/revoke", Body::None,
                                                                  [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/workspaces/{ws}/api-keys/{wskey}/revoke", Body::None,
                                                                  [303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    // The Agents page's forms: administrators holding admin:clients; a form without its
    // fields is refused on the page.
    ("POST",   "/admin/agents/apps", Body::None,                 [303, 403, 404, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/agents/tokens/{uniq}/revoke", Body::None, [303, 403, 404, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/agents/hosts", Body::None,                [303, 403, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/agents/hosts/unblock", Body::None,        [303, 403, 400, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    ("POST",   "/admin/agents/tokens", Body::None,               [303, 403, 201, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
    // RFC 7592: only the registration's own `rat_` token manages it — no session, key or
    // token of any user, an administrator's neither.
    ("GET",    "/oauth/register/{client}", Body::None,           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    ("PUT",    "/oauth/register/{client}", Body::Json("{}"),     [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    ("DELETE", "/oauth/register/{client}", Body::None,           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    // The invitation is the member's: another user is refused.
    ("POST",   "/invitations/{inv_token}", Body::None,           [303, 303, 403, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303, 303]),
];

/// Routes and page actions that are public or belong to the OAuth suites (client
/// authentication, the browser flow), with where they are tested.
const COVERED_ELSEWHERE: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/oauth-authorization-server"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/oauth-protected-resource"),
    // Dynamic registration (off, token, open) and its attacks: tests/api/agents.rs.
    ("POST", "/oauth/register"),
    ("GET", "/oauth/logout"),
    ("POST", "/oauth/logout"),
    ("GET", "/oauth/authorize"),
    ("POST", "/oauth/authorize"),
    ("POST", "/oauth/token"),
    // Pushed authorization requests and their attacks: tests/api/par.rs.
    ("POST", "/oauth/par"),
    // Device authorization, its page and its attacks: tests/api/device.rs.
    ("POST", "/oauth/device_authorization"),
    ("GET", "/device"),
    ("POST", "/device"),
    ("GET", "/docs/errors"),
    ("GET", "/static/app.css"),
    ("GET", "/static/app.js"),
    ("GET", "/"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/signup"),
    ("POST", "/signup"),
    ("POST", "/account/password"),
    ("POST", "/settings/api-keys"),
    ("POST", "/settings/api-keys/{id}/roll"),
    ("POST", "/settings/apps"),
    ("POST", "/settings/apps/{id}/secret"),
];

/// The (method, path) pairs `src/app.rs` wires, read from its source.
pub(crate) fn wired_routes() -> Vec<(String, String)> {
    let source = include_str!("../../src/app.rs");
    let routes_fn = &source[source.find("fn routes(").expect("fn routes")..];
    let routes_fn = &routes_fn[..routes_fn
        .find(".default_service(web::to(not_found))")
        .expect("the routes end with the fallback")];
    let mut routes = Vec::new();
    // `api_resource("/v1/…", "GET, POST")` and `resource("/oauth/…", "GET")`: the second
    // argument is the `Allow` list, which must name exactly the methods routed inside.
    let starts: Vec<usize> = routes_fn
        .match_indices("resource(\"")
        .map(|(at, _)| at + "resource(\"".len())
        .collect();
    for (i, &at) in starts.iter().enumerate() {
        let rest = &routes_fn[at..];
        let path = &rest[..rest.find('"').unwrap()];
        let after = &rest[path.len() + 1..];
        let methods_start = after.find('"').unwrap() + 1;
        let methods =
            &after[methods_start..methods_start + after[methods_start..].find('"').unwrap()];
        let block_end = starts.get(i + 1).map_or(rest.len(), |next| next - at);
        let routed: Vec<String> = rest[..block_end]
            .match_indices("web::")
            .filter_map(|(w, _)| {
                let name = &rest[w + "web::".len()..];
                let name = &name[..name.find('(')?];
                ["get", "post", "put", "patch", "delete"]
                    .contains(&name)
                    .then(|| name.to_uppercase())
            })
            .collect();
        let allowed: Vec<String> = methods.split(", ").map(str::to_owned).collect();
        assert_eq!(routed, allowed, "{path}: Allow list vs routed methods");
        for m in allowed {
            routes.push((m, path.to_owned()));
        }
    }
    assert!(
        !routes_fn.contains(".route(\""),
        "every route is wired through resource() or api_resource() (405 with Allow)"
    );
    routes
}

/// A matrix path in the shape `src/app.rs` writes it (`{id}` placeholders).
fn as_pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    path.split('/')
        .map(|seg| match seg {
            "{member}" | "{admin}" | "{key}" | "{client}" | "{consent}" | "{member2}" | "{ws}"
            | "{pws}" | "{inv}" | "{wskey}" => "{id}",
            other => other,
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn route_matches(pattern: &str, path: &str) -> bool {
    let (a, b): (Vec<_>, Vec<_>) = (pattern.split('/').collect(), path.split('/').collect());
    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x == y || x.starts_with('{'))
}

#[test]
fn every_route_has_rows_in_the_matrix() {
    let wired = wired_routes();
    assert!(
        wired.len() > 40,
        "the route reader found {} routes",
        wired.len()
    );
    let missing: Vec<_> = wired
        .iter()
        .filter(|(method, path)| {
            let in_matrix = MATRIX
                .iter()
                .any(|(m, p, _, _)| m == method && route_matches(path, &as_pattern(p)));
            let elsewhere = COVERED_ELSEWHERE
                .iter()
                .any(|(m, p)| m == method && route_matches(path, p));
            !in_matrix && !elsewhere
        })
        .collect();
    assert!(
        missing.is_empty(),
        "routes without rows in the permission matrix: {missing:?}"
    );
}

/// How one kind of caller sends a request.
#[derive(Clone)]
enum Presents {
    Nothing,
    Session(reqwest::Client, String),
    Bearer(String),
}

struct World {
    member_id: String,
    member2_id: String,
    admin_id: String,
    callers: Vec<Presents>,
}

async fn login_browser(app: &TestApp, email: &str, password: &str) -> (reqwest::Client, String) {
    let (browser, response) = app.login_in_new_browser(email, password).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    let page = browser
        .get(app.url("/account"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token").expect("a CSRF token");
    (browser, csrf)
}

async fn key_via(browser: &reqwest::Client, app: &TestApp, body: Value) -> String {
    let response = browser
        .post(app.url("/v1/api-keys"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "{body}");
    let created: Value = response.json().await.unwrap();
    created["data"]["key"].as_str().unwrap().to_owned()
}

async fn token(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let tokens = obtain_tokens_for(app, client, scope).await;
    tokens["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("a token for {scope}: {tokens}"))
        .to_owned()
}

async fn world(app: &TestApp) -> World {
    let member_id = app
        .create_user("mia@example.com", "mia password 1", false)
        .await;
    let member2_id = app
        .create_user("max@example.com", "max password 1", false)
        .await;
    let gone_id = app
        .create_user("gone@example.com", "gone password 1", false)
        .await;
    app.login_admin().await;
    let me: Value = app.me().await.json().await.unwrap();
    let admin_id = me["data"]["id"].as_str().unwrap().to_owned();
    // A first-party app owned by the admin, allowed every scope, with client_credentials.
    let everything = crate::integrity::app_with(app, ALL_SCOPES, &[]).await;

    // The member's tokens: the member signs in on the test's own browser for the flow.
    let (member_browser, member_csrf) =
        login_browser(app, "mia@example.com", "mia password 1").await;
    let response = app.login("mia@example.com", "mia password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let member_token = token(app, &everything, MEMBER_SCOPES).await;
    let member_token0 = token(app, &everything, UNRELATED_SCOPE).await;
    app.login_admin().await;
    let admin_token = token(app, &everything, ALL_SCOPES).await;
    let (admin_browser, admin_csrf) = login_browser(
        app,
        crate::helpers::ADMIN_EMAIL,
        crate::helpers::ADMIN_PASSWORD,
    )
    .await;

    let cc: Value = exchange(
        app,
        &everything,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read:users"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let cc_token = cc["access_token"].as_str().unwrap().to_owned();

    let gone_key = {
        let (gone_browser, _) = login_browser(app, "gone@example.com", "gone password 1").await;
        key_via(&gone_browser, app, json!({ "name": "gone" })).await
    };
    let id = gone_id.clone();
    app.state
        .db(move |c| {
            gatehouse::accounts::model::set_disabled(c, &id, true, gatehouse::accounts::now())
        })
        .await
        .unwrap();
    app.state.key_cache.invalidate_all();

    let callers = vec![
        Presents::Nothing,
        Presents::Session(member_browser.clone(), member_csrf),
        Presents::Session(admin_browser.clone(), admin_csrf),
        Presents::Bearer(key_via(&member_browser, app, json!({ "name": "sk" })).await),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "skt", "mode": "test" }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "rk", "scopes": MEMBER_SCOPES }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &member_browser,
                app,
                json!({ "name": "rk0", "scopes": UNRELATED_SCOPE }),
            )
            .await,
        ),
        Presents::Bearer(key_via(&admin_browser, app, json!({ "name": "ask" })).await),
        Presents::Bearer(
            key_via(
                &admin_browser,
                app,
                json!({ "name": "ark", "scopes": ALL_SCOPES }),
            )
            .await,
        ),
        Presents::Bearer(
            key_via(
                &admin_browser,
                app,
                json!({ "name": "ark0", "scopes": UNRELATED_SCOPE }),
            )
            .await,
        ),
        Presents::Bearer(member_token),
        Presents::Bearer(member_token0),
        Presents::Bearer(admin_token),
        Presents::Bearer(cc_token),
        Presents::Bearer(gone_key),
    ];
    assert_eq!(callers.len(), CALLERS.len());
    World {
        member_id,
        member2_id,
        admin_id,
        callers,
    }
}

/// Fresh targets of the member's for one cell: (key id, key secret, client id, consent id).
async fn fresh_targets(app: &TestApp, member_id: &str) -> (String, String, String, String) {
    use gatehouse::api_keys::format::{Kind, Mode};
    use gatehouse::api_keys::model::{self, NewKey};
    use gatehouse::oauth::clients::{self, ClientType, NewClient, default_grant_types};
    use gatehouse::oauth::redirect::RedirectUri;
    use gatehouse::scopes::ScopeSet;
    let (pepper, now, owner) = (
        app.state.digest_pepper.clone(),
        app.state.now(),
        member_id.to_owned(),
    );
    app.state
        .db(move |c| {
            let personal = gatehouse::workspaces::personal_of(c, &owner)?.unwrap();
            let key = NewKey {
                user_id: owner.clone(),
                workspace_id: personal.id.clone(),
                issued_by: owner.clone(),
                name: "target".into(),
                description: String::new(),
                mode: Mode::Test,
                kind: Kind::Restricted,
                scopes: ScopeSet::parse("read:products").unwrap(),
                allowed_ips: Vec::new(),
                restrictions: Default::default(),
                rate_limit_per_minute: None,
                expires_at: Some(now + chrono::Duration::hours(1)),
                rolled_from: None,
            };
            let (key, secret) = model::insert(c, &pepper, &key, now)?;
            let app_row = NewClient {
                name: "Mia's app".into(),
                owner_user_id: Some(owner.clone()),
                client_type: ClientType::Confidential,
                redirect_uris: vec![RedirectUri::parse("https://mia.example.com/cb").unwrap()],
                scopes: ScopeSet::parse("read:products").unwrap(),
                first_party: false,
                grant_types: default_grant_types(),
                resources: Vec::new(),
                ..Default::default()
            };
            let (client, _) = clients::create(c, &pepper, &app_row, now)?;
            let consent_id = format!("con_{}", gatehouse::secrets::random_base62(16));
            {
                use diesel::ExpressionMethods;
                use gatehouse::db::schema::consents::dsl as k;
                diesel::insert_into(k::consents)
                    .values((
                        k::id.eq(&consent_id),
                        k::user_id.eq(&owner),
                        k::client_id.eq(&client.id),
                        k::scopes.eq("read:products"),
                        // Approved in the member's personal workspace, as every approval is
                        // recorded in the workspace it was given in.
                        k::workspace_id.eq(&personal.id),
                        k::created_at.eq(now),
                        k::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            Ok((key.id, secret.expose().to_owned(), client.id, consent_id))
        })
        .await
        .unwrap()
}

/// Fresh workspace targets for one cell: (shared workspace, the member's personal workspace,
/// the second member's key in the shared one, a pending invitation there, the token of an
/// invitation for the member to a workspace of the second member's).
async fn fresh_workspaces(app: &TestApp, world: &World) -> [String; 5] {
    use gatehouse::api_keys::format::{Kind, Mode};
    use gatehouse::api_keys::model::{self, NewKey};
    use gatehouse::scopes::ScopeSet;
    use gatehouse::workspaces::{self as ws, WsRole};
    let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
    let (member, member2) = (world.member_id.clone(), world.member2_id.clone());
    app.state
        .db(move |c| {
            let tag = gatehouse::secrets::random_base62(10).to_lowercase();
            let shared =
                ws::create_shared(c, "Shared", &format!("shared-{tag}"), &member, now)?.unwrap();
            ws::add_member(c, &shared.id, &member2, WsRole::Member, now)?;
            let personal = ws::personal_of(c, &member)?.unwrap();
            let key = NewKey {
                user_id: member2.clone(),
                workspace_id: shared.id.clone(),
                issued_by: member.clone(),
                name: "member key".into(),
                description: String::new(),
                mode: Mode::Test,
                kind: Kind::Restricted,
                scopes: ScopeSet::parse("read:products").unwrap(),
                allowed_ips: Vec::new(),
                restrictions: Default::default(),
                rate_limit_per_minute: None,
                expires_at: Some(now + chrono::Duration::hours(1)),
                rolled_from: None,
            };
            let (key, _) = model::insert(c, &pepper, &key, now)?;
            let (invitation, _) = ws::invite(
                c,
                &pepper,
                &shared.id,
                &format!("x{tag}@example.com"),
                WsRole::Member,
                &member,
                now,
            )?;
            let theirs =
                ws::create_shared(c, "Theirs", &format!("theirs-{tag}"), &member2, now)?.unwrap();
            let (_, token) = ws::invite(
                c,
                &pepper,
                &theirs.id,
                "mia@example.com",
                WsRole::Member,
                &member2,
                now,
            )?;
            Ok::<_, gatehouse::db::DbError>([
                shared.id,
                personal.id,
                key.id,
                invitation.id,
                token.expose().to_owned(),
            ])
        })
        .await
        .unwrap()
}

async fn ask(app: &TestApp, world: &World, caller: &Presents, row: &Row, uniq: usize) -> u16 {
    let (method, path, body, _) = row;
    let (key, secret, client, consent) = fresh_targets(app, &world.member_id).await;
    let needs_workspaces = path.contains("{ws")
        || path.contains("{pws}")
        || path.contains("{inv_token}")
        || matches!(body, Body::Json(j) if j.contains("{inv_token}"));
    let [ws, pws, wskey, inv, inv_token] = if needs_workspaces {
        fresh_workspaces(app, world).await
    } else {
        Default::default()
    };
    let path = path
        .replace("{wskey}", &wskey)
        .replace("{ws}", &ws)
        .replace("{pws}", &pws)
        .replace("{inv}", &inv)
        .replace("{inv_token}", &inv_token)
        .replace("{member2}", &world.member2_id)
        .replace("{member}", &world.member_id)
        .replace("{admin}", &world.admin_id)
        .replace("{key}", &key)
        .replace("{client}", &client)
        .replace("{consent}", &consent);
    let http = match caller {
        Presents::Session(browser, _) => browser.clone(),
        _ => reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    };
    let mut request = http.request(method.parse().unwrap(), app.url(&path));
    if let Presents::Bearer(credential) = caller {
        request = request.bearer_auth(credential);
    }
    request = match body {
        Body::None
            if *method == "POST" && !path.starts_with("/v1") && !path.starts_with("/oauth") =>
        {
            let csrf = match caller {
                Presents::Session(_, csrf) => csrf.clone(),
                _ => String::new(),
            };
            request.form(&[("csrf_token", csrf.as_str())])
        }
        Body::None => request,
        Body::Json(json) => request.header("content-type", "application/json").body(
            json.replace("{uniq}", &uniq.to_string())
                .replace("{inv_token}", &inv_token),
        ),
        Body::Form(form) => request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.replace("{key_secret}", &secret)),
    };
    request.send().await.unwrap().status().as_u16()
}

both_backends!(every_caller_gets_what_the_matrix_says, |app| async move {
    let world = world(app).await;
    let mut wrong = Vec::new();
    let mut uniq = 0;
    for row in MATRIX {
        for (column, caller) in world.callers.iter().enumerate() {
            uniq += 1;
            let got = ask(app, &world, caller, row, uniq).await;
            let expected = row.3[column];
            if got != expected {
                wrong.push(format!(
                    "{} {} as {}: expected {expected}, got {got}",
                    row.0, row.1, CALLERS[column]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
});

#[test]
fn the_readme_says_who_may_do_what_for_every_api_route_of_the_matrix() {
    let readme = include_str!("../../README.md");
    let start = readme
        .find("## Who may do what")
        .expect("README has a \"Who may do what\" section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut missing = Vec::new();
    for (method, path, _, _) in MATRIX {
        if !(path.starts_with("/v1") || path.starts_with("/oauth")) {
            continue;
        }
        let pattern = as_pattern(path);
        let described = section.lines().any(|line| {
            line.starts_with('|')
                && line.contains(method)
                && [format!("{pattern}`"), format!("{pattern},")]
                    .iter()
                    .any(|token| line.contains(token.as_str()))
        });
        if !described {
            missing.push(format!("{method} {pattern}"));
        }
    }
    assert!(
        missing.is_empty(),
        "README's \"Who may do what\" lacks: {missing:?}"
    );
}
