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
const CALLERS: [&str; 18] = [
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
    // The second ordinary user: the member's things are another user's to them.
    "other member's session",
    "other member's sk_live",
    // The member's own key, issued to her in a shared workspace by its owner (who saw it):
    // it reaches that workspace's things only — not her profile, apps, keys or other
    // workspaces.
    "member's key of a shared workspace",
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
type Row = (&'static str, &'static str, Body, [u16; 18]);

/// A 303 to the sign-in page (told apart from a 303 that means "done").
const SI: u16 = 1303;

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
    //                                                           anon mS   aS   msk  mskt mrk  mrk0 ask  ark  ark0 mtok mt0  atok cc   dis  oS   osk  mwsk
    ("GET",    "/v1/users/me", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("PATCH",  "/v1/users/me", Body::Json(r#"{"display_name":"Mo"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 403]),
    ("GET",    "/v1/users", Body::None,                          [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("POST",   "/v1/users", Body::Json(r#"{"email":"u{uniq}@example.com"}"#),
                                                                  [401, 403, 201, 403, 403, 403, 403, 201, 201, 403, 403, 403, 201, 403, 401, 403, 403, 403]),
    ("GET",    "/v1/users/{member}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 200]),
    ("GET",    "/v1/users/{admin}", Body::None,                  [401, 404, 200, 404, 404, 404, 403, 200, 200, 403, 404, 403, 200, 403, 401, 404, 404, 404]),
    ("GET",    "/v1/users/{member}/api-keys", Body::None,        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 200]),
    ("POST",   "/v1/users/{member}/api-keys", Body::Json(NEW_KEY),
                                                                  [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401, 404, 404, 201]),
    ("GET",    "/v1/api-keys", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("POST",   "/v1/api-keys", Body::Json(NEW_KEY),              [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401, 201, 201, 201]),
    ("GET",    "/v1/api-keys/{key}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("PATCH",  "/v1/api-keys/{key}", Body::Json(r#"{"name":"renamed"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 403, 403, 403, 403, 401, 404, 404, 404]),
    ("DELETE", "/v1/api-keys/{key}", Body::None,                 [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("POST",   "/v1/api-keys/{key}/roll", Body::None,            [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 403, 403, 403, 403, 401, 404, 404, 404]),
    ("GET",    "/v1/audit-events", Body::None,                   [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401, 403, 403, 403]),
    ("GET",    "/v1/clients", Body::None,                        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("GET",    "/v1/clients?all=true", Body::None,               [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401, 403, 403, 403]),
    ("POST",   "/v1/clients", Body::Json(NEW_APP),               [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 201, 403, 201, 403, 401, 201, 201, 201]),
    ("GET",    "/v1/clients/{client}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("PATCH",  "/v1/clients/{client}", Body::Json(r#"{"name":"y"}"#),
                                                                  [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("PATCH",  "/v1/clients/{client}", Body::Json(r#"{"first_party":true}"#),
                                                                  [401, 403, 200, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 403, 401, 404, 404, 404]),
    ("DELETE", "/v1/clients/{client}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("POST",   "/v1/clients/{client}/secret", Body::None,        [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 404, 404, 404]),
    ("GET",    "/v1/consents", Body::None,                       [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("DELETE", "/v1/consents/{consent}", Body::None,             [401, 200, 404, 200, 200, 200, 403, 404, 404, 403, 200, 403, 404, 403, 401, 404, 404, 404]),
    // Workspaces. `{ws}` is fresh for every cell: a shared workspace the member owns, with the
    // second member in it, `{wskey}` the second member's key there, `{inv}` a pending invitation
    // there; `{pws}` is the member's personal workspace. Keys and app tokens act in the
    // workspace they were made in (their user's personal one here): any other workspace does
    // not exist for them (404), even the member's own. An administrator of the install holding
    // `admin:users` reaches any workspace from a session (the operator's oversight).
    ("GET",    "/v1/workspaces", Body::None,                     [401, 200, 200, 200, 200, 200, 403, 200, 200, 403, 200, 403, 200, 403, 401, 200, 200, 200]),
    ("POST",   "/v1/workspaces", Body::Json(r#"{"name":"Team {uniq}"}"#),
                                                                  [401, 201, 201, 201, 201, 201, 403, 201, 201, 403, 201, 403, 201, 403, 401, 201, 201, 403]),
    ("GET",    "/v1/workspaces/{ws}", Body::None,                [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 200, 404, 404]),
    ("GET",    "/v1/workspaces/{pws}", Body::None,               [401, 200, 200, 200, 200, 200, 403, 404, 404, 403, 200, 403, 404, 403, 401, 404, 404, 404]),
    ("PATCH",  "/v1/workspaces/{ws}", Body::Json(r#"{"name":"Renamed"}"#),
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("DELETE", "/v1/workspaces/{ws}", Body::None,                [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("GET",    "/v1/workspaces/{ws}/members", Body::None,        [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 200, 404, 404]),
    ("PATCH",  "/v1/workspaces/{ws}/members/{member2}", Body::Json(r#"{"role":"admin"}"#),
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("DELETE", "/v1/workspaces/{ws}/members/{member2}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 200, 404, 404]),
    ("POST",   "/v1/workspaces/{ws}/members/{member2}/api-keys", Body::Json(NEW_KEY),
                                                                  [401, 201, 201, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("GET",    "/v1/workspaces/{ws}/invitations", Body::None,    [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("POST",   "/v1/workspaces/{ws}/invitations", Body::Json(r#"{"email":"i{uniq}@example.com"}"#),
                                                                  [401, 201, 201, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("DELETE", "/v1/workspaces/{ws}/invitations/{inv}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("GET",    "/v1/workspaces/{ws}/api-keys", Body::None,       [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("DELETE", "/v1/workspaces/{ws}/api-keys/{wskey}", Body::None,
                                                                  [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    ("GET",    "/v1/workspaces/{ws}/audit-events", Body::None,   [401, 200, 200, 404, 404, 404, 403, 404, 404, 403, 404, 403, 404, 403, 401, 403, 404, 404]),
    // `{inv_token}`: an invitation for the member's address to a workspace of the second
    // member's. Another user's credential is refused (403, WORKSPACE_004).
    ("POST",   "/v1/invitations/accept", Body::Json(r#"{"token":"{inv_token}"}"#),
                                                                  [401, 200, 403, 200, 200, 200, 403, 403, 403, 403, 200, 403, 403, 403, 401, 403, 403, 403]),
    // Public: the OpenAPI document, whoever asks.
    ("GET",    "/openapi.json", Body::None,                      [200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200]),
    // OAuth endpoints with a Bearer credential (client authentication is the OAuth suites').
    ("POST",   "/oauth/introspect", Body::Form("token={key_secret}"),
                                                                  [401, 401, 401, 403, 403, 403, 403, 200, 200, 403, 403, 403, 200, 401, 401, 401, 403, 403]),
    ("POST",   "/oauth/revoke", Body::Form("token={key_secret}"),
                                                                  [401, 401, 401, 200, 200, 200, 200, 200, 200, 400, 200, 200, 200, 401, 401, 401, 400, 200]),
    // OpenID Connect UserInfo: an app's access token only (a key, a session or a
    // client_credentials token is not one: 401), and only with `openid` (403); the tokens
    // with `openid` are answered in the OpenID Connect suite.
    ("GET",    "/oauth/userinfo", Body::None,                    [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403, 403, 401, 401, 401, 401, 401]),
    ("POST",   "/oauth/userinfo", Body::None,                    [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403, 403, 401, 401, 401, 401, 401]),
    // The metrics token only: no user's credential reads metrics, an administrator's neither.
    ("GET",    "/metrics", Body::None,                           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    // Pages: a browser session only; any other caller is sent to sign in.
    ("GET",    "/account", Body::None,                           [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/settings/api-keys", Body::None,                 [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/settings/api-keys/{key}", Body::None,           [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("GET",    "/settings/api-keys/{key}/revoke", Body::None,    [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("GET",    "/settings/apps", Body::None,                     [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/settings/connected-apps", Body::None,           [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/admin/users", Body::None,                       [ SI, 403, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("GET",    "/admin/apps", Body::None,                        [ SI, 403, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("GET",    "/admin/agents", Body::None,                      [ SI, 403, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("GET",    "/admin/users/{member}/api-keys", Body::None,     [ SI, 403, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("GET",    "/workspaces", Body::None,                        [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/workspaces/{ws}", Body::None,                   [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    ("GET",    "/workspaces/{pws}", Body::None,                  [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("GET",    "/invitations/{inv_token}", Body::None,           [ SI, 200, 200,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 200,  SI,  SI]),
    // Page forms: the session's CSRF token is added for the session columns; without a
    // session a form is sent to sign in.
    ("POST",   "/settings/api-keys/{key}/revoke", Body::None,   [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/admin/users/{member}/api-keys", Body::None,     [ SI, 403, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/users", Body::None,                       [ SI, 403, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/users/{user3}/disable", Body::None,     [ SI, 403, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/settings/apps/{client}/disable", Body::None,    [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/settings/connected-apps/{consent}/revoke", Body::None,
                                                                  [ SI, 303, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    // The workspace pages' forms act through the `/v1/workspaces` functions: a form without
    // its fields is refused on the page (400), complete ones go back to the workspace (303).
    ("POST",   "/workspaces", Body::None,                        [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/settings", Body::None,          [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/members/{member2}/remove", Body::None,
                                                                  [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 303,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/invitations/{inv}/revoke", Body::None,
                                                                  [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/api-keys/{wskey}/revoke", Body::None,
                                                                  [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    // The Agents page's forms: administrators holding admin:clients; a form without its
    // fields is refused on the page.
    ("POST",   "/admin/agents/apps", Body::None,                 [ SI, 403, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/agents/tokens/{uniq}/revoke", Body::None, [ SI, 403, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/agents/hosts", Body::None,                [ SI, 403, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/agents/hosts/unblock", Body::None,        [ SI, 403, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/agents/tokens", Body::None,               [ SI, 403, 201,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    // RFC 7592: only the registration's own `rat_` token manages it — no session, key or
    // token of any user, an administrator's neither.
    ("GET",    "/oauth/register/{client}", Body::None,           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    ("PUT",    "/oauth/register/{client}", Body::Json("{}"),     [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    ("DELETE", "/oauth/register/{client}", Body::None,           [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401]),
    // The forms that mint or change credentials, and one row per `{action}` of the action
    // routes. A form carries the session's CSRF token and nothing else: a form that needs
    // fields is refused on the page (400) before anything is made.
    ("POST",   "/settings/api-keys", Body::None,                 [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/settings/api-keys/{key}/roll", Body::None,      [ SI, 201, 201,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/settings/apps", Body::None,                     [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/settings/apps/{client}/secret", Body::None,     [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/account/password", Body::None,                  [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/settings/apps/{client}/enable", Body::None,     [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/settings/apps/{client}/delete", Body::None,     [ SI, 303, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/settings/apps/{client}/unknown", Body::None,    [ SI, 404, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/admin/users/{user3}/enable", Body::None,        [ SI, 403, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/users/{user3}/end-sessions", Body::None,  [ SI, 403, 303,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/admin/users/{user3}/unknown", Body::None,       [ SI, 403, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/invite", Body::None,            [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/issue-key", Body::None,         [ SI, 404, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/unknown", Body::None,           [ SI, 404, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/members/{member2}/role", Body::None,
                                                                  [ SI, 400, 400,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 400,  SI,  SI]),
    ("POST",   "/workspaces/{ws}/members/{member2}/unknown", Body::None,
                                                                  [ SI, 404, 404,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 404,  SI,  SI]),
    // The invitation is the member's: another user is refused.
    ("POST",   "/invitations/{inv_token}", Body::None,           [ SI, 303, 403,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI,  SI, 403,  SI,  SI]),
];

/// Routes and page actions that are public or belong to the OAuth suites (client
/// authentication, the browser flow), each with the test that covers it (`file::test`):
/// `every_exemption_names_a_test_that_exists` fails when that test is gone or renamed.
const COVERED_ELSEWHERE: &[(&str, &str, &str)] = &[
    ("GET", "/healthz", "health::healthz_and_readyz_answer"),
    ("GET", "/readyz", "health::healthz_and_readyz_answer"),
    (
        "GET",
        "/.well-known/jwks.json",
        "oauth::forged_or_confused_jwts_are_refused_at_the_api",
    ),
    (
        "GET",
        "/.well-known/oauth-authorization-server",
        "openapi::public_answers_match_the_document",
    ),
    (
        "GET",
        "/.well-known/openid-configuration",
        "oidc::discovery_says_exactly_what_is_supported_at_both_addresses",
    ),
    (
        "GET",
        "/.well-known/oauth-protected-resource",
        "verify_crate::the_actix_extractor_answers_in_the_envelope",
    ),
    // Dynamic registration (off, token, open) and its attacks.
    (
        "POST",
        "/oauth/register",
        "agents::a_flood_of_registrations_from_one_address_is_refused",
    ),
    (
        "GET",
        "/oauth/logout",
        "oidc_logout::an_expired_or_foreign_hint_asks_first",
    ),
    (
        "POST",
        "/oauth/logout",
        "oidc_logout::an_expired_or_foreign_hint_asks_first",
    ),
    (
        "GET",
        "/oauth/authorize",
        "oauth::consent_needs_its_csrf_token_and_a_signed_in_user",
    ),
    (
        "POST",
        "/oauth/authorize",
        "oauth::consent_needs_its_csrf_token_and_a_signed_in_user",
    ),
    (
        "POST",
        "/oauth/token",
        "dpop::the_token_endpoint_wants_a_fresh_single_use_proof_with_its_nonce",
    ),
    // Pushed authorization requests and their attacks.
    (
        "POST",
        "/oauth/par",
        "par::an_app_that_requires_pushed_requests_cannot_be_started_from_a_plain_link",
    ),
    // Device authorization, its page and its attacks.
    (
        "POST",
        "/oauth/device_authorization",
        "device::a_cli_signs_in_once_the_user_approves_its_code",
    ),
    (
        "GET",
        "/device",
        "device::a_cli_signs_in_once_the_user_approves_its_code",
    ),
    (
        "POST",
        "/device",
        "device::denied_expired_and_foreign_device_codes_give_nothing",
    ),
    (
        "GET",
        "/docs/errors",
        "api_envelope::error_catalogue_documents_every_code",
    ),
    (
        "GET",
        "/static/app.css",
        "permissions::static_assets_are_served_to_anyone",
    ),
    (
        "GET",
        "/static/app.js",
        "permissions::static_assets_are_served_to_anyone",
    ),
    ("GET", "/", "sessions::logout_ends_the_session_for_good"),
    (
        "GET",
        "/login",
        "sessions::logout_ends_the_session_for_good",
    ),
    (
        "POST",
        "/login",
        "sessions::logout_ends_the_session_for_good",
    ),
    (
        "POST",
        "/logout",
        "sessions::logout_needs_the_session_csrf_token",
    ),
    ("GET", "/signup", "account_audit::sign_ups_are_audited"),
    ("POST", "/signup", "account_audit::sign_ups_are_audited"),
];

#[test]
fn every_exemption_names_a_test_that_exists() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api");
    let mut missing = Vec::new();
    for (method, path, test) in COVERED_ELSEWHERE {
        let (file, name) = test.split_once("::").expect("file::test");
        let source = std::fs::read_to_string(dir.join(format!("{file}.rs"))).unwrap_or_default();
        let defined = source.contains(&format!("fn {name}("))
            || source.contains(&format!("both_backends!(\n    {name},"))
            || source.contains(&format!("both_backends!({name},"));
        if !defined {
            missing.push(format!("{method} {path}: {test}"));
        }
    }
    assert!(
        missing.is_empty(),
        "exemptions naming tests that do not exist: {missing:?}"
    );
}

both_backends!(static_assets_are_served_to_anyone, |app| async move {
    for (path, kind) in [
        ("/static/app.css", "text/css"),
        ("/static/app.js", "javascript"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(content_type.contains(kind), "{path}: {content_type}");
    }
});

/// The bodies of every `fn …routes(` in the server's source, wherever the routes are wired.
fn routing_functions() -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, found: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            for (at, _) in source.match_indices("fn ") {
                let name_end = source[at..].find('(').map_or(at, |p| at + p);
                let name = &source[at + 3..name_end];
                if !name.ends_with("routes") || name.contains(char::is_whitespace) {
                    continue;
                }
                // The function ends at the first closing brace in column 0.
                let body_end = source[at..].find("\n}").map_or(source.len(), |p| at + p);
                found.push((path.display().to_string(), source[at..body_end].to_owned()));
            }
        }
    }
    let mut found = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    found
}

/// The (method, path) pairs the server wires, read from the source of its routing functions
/// (`fn routes` in `src/app.rs` today; any `fn …routes(` under `src/` where they move).
pub(crate) fn wired_routes() -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for (file, routes_fn) in routing_functions() {
        routes.extend(routes_in(&file, &routes_fn));
    }
    routes
}

fn routes_in(file: &str, routes_fn: &str) -> Vec<(String, String)> {
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
        assert_eq!(
            routed, allowed,
            "{file} {path}: Allow list vs routed methods"
        );
        for m in allowed {
            routes.push((m, path.to_owned()));
        }
    }
    assert!(
        !routes_fn.contains(".route(\""),
        "{file}: every route is wired through resource() or api_resource() (405 with Allow)"
    );
    routes
}

/// How many (method, path) routes were wired when the reader was taught to follow the routes
/// wherever they are wired (the crate split).
const ROUTES_AT_THE_SPLIT: usize = 107;

/// Routes removed on purpose since then: (method, path, why). A route that disappears from the
/// reader's sight without a row here fails `the_route_reader_still_sees_every_route`.
const REMOVED_ROUTES: &[(&str, &str, &str)] = &[];

#[test]
fn the_route_reader_still_sees_every_route() {
    let wired = wired_routes();
    assert!(
        wired.len() + REMOVED_ROUTES.len() >= ROUTES_AT_THE_SPLIT,
        "the route reader finds {} routes (+{} removed on purpose), fewer than the {} wired at \
         the split: routes moved where `wired_routes` does not look, or were removed without a \
         row in REMOVED_ROUTES",
        wired.len(),
        REMOVED_ROUTES.len(),
        ROUTES_AT_THE_SPLIT
    );
    for (method, path, why) in REMOVED_ROUTES {
        assert!(!why.is_empty(), "{method} {path}: say why it was removed");
        assert!(
            !wired.iter().any(|(m, p)| m == method && p == path),
            "{method} {path} is listed as removed but is still wired"
        );
    }
    let mut unique = wired.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), wired.len(), "a route is wired twice");
}

/// A matrix path in the shape `src/app.rs` writes it (`{id}` placeholders).
fn as_pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap();
    path.split('/')
        .map(|seg| match seg {
            "{member}" | "{admin}" | "{key}" | "{client}" | "{consent}" | "{member2}"
            | "{user3}" | "{ws}" | "{pws}" | "{inv}" | "{wskey}" => "{id}",
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
                .any(|(m, p, _)| m == method && route_matches(path, p));
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
    /// A third user, whom only the admin-page forms act on (disabling them ends nobody's
    /// caller).
    user3_id: String,
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
    let user3_id = app
        .create_user("una@example.com", "una password 1", false)
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

    // The second member, and a shared workspace of theirs where the member is a member and
    // was issued a key by them.
    let (max_browser, max_csrf) = login_browser(app, "max@example.com", "max password 1").await;
    let issued_in_shared = {
        let created: Value = max_browser
            .post(app.url("/v1/workspaces"))
            .json(&json!({ "name": "Max's team" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let team = created["data"]["id"].as_str().unwrap().to_owned();
        let (team_id, mia) = (team.clone(), member_id.clone());
        // Set up as the operator would (the test's own arrangement, not a caller's request).
        let allowed = gatehouse::policy::authorize(
            &gatehouse::policy::Caller::operator(),
            gatehouse::policy::Action::JoinWorkspace,
        )
        .unwrap();
        app.state
            .db(move |c| {
                gatehouse::workspaces::add_member(
                    c,
                    allowed,
                    &team_id,
                    &mia,
                    gatehouse::workspaces::WsRole::Member,
                    gatehouse::accounts::now(),
                )
            })
            .await
            .unwrap();
        let issued: Value = max_browser
            .post(app.url(&format!(
                "/v1/workspaces/{team}/members/{member_id}/api-keys"
            )))
            .json(&json!({ "name": "issued by max" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        issued["data"]["key"]
            .as_str()
            .unwrap_or_else(|| panic!("issued: {issued}"))
            .to_owned()
    };

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
        Presents::Session(max_browser.clone(), max_csrf),
        Presents::Bearer(key_via(&max_browser, app, json!({ "name": "max's" })).await),
        Presents::Bearer(issued_in_shared),
    ];
    assert_eq!(callers.len(), CALLERS.len());
    World {
        member_id,
        member2_id,
        user3_id,
        admin_id,
        callers,
    }
}

/// Fresh targets of the member's for one cell: (key id, key secret, client id, consent id).
async fn fresh_targets(app: &TestApp, member_id: &str) -> (String, String, String, String) {
    use gatehouse::api_keys::format::{Kind, Mode};
    use gatehouse::api_keys::model::{self, NewKey};
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{self, ClientType, NewClient, default_grant_types};
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
    // Arranged as the operator would: the services that change state take an `Allowed`.
    let allowed = gatehouse::policy::authorize(
        &gatehouse::policy::Caller::operator(),
        gatehouse::policy::Action::CreateWorkspace,
    )
    .unwrap();
    app.state
        .db(move |c| {
            let tag = gatehouse::secrets::random_base62(10).to_lowercase();
            let shared =
                ws::create_shared(c, allowed, "Shared", &format!("shared-{tag}"), &member, now)?
                    .unwrap();
            ws::add_member(c, allowed, &shared.id, &member2, WsRole::Member, now)?;
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
                allowed,
                &pepper,
                &shared.id,
                &format!("x{tag}@example.com"),
                WsRole::Member,
                &member,
                now,
            )?;
            let theirs = ws::create_shared(
                c,
                allowed,
                "Theirs",
                &format!("theirs-{tag}"),
                &member2,
                now,
            )?
            .unwrap();
            let (_, token) = ws::invite(
                c,
                allowed,
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

/// A key as `state_of` compares it: id, name, revoked, rolled to, expiry, allowlist.
type KeyState = (
    String,
    String,
    Option<chrono::NaiveDateTime>,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    String,
);
/// An app as `state_of` compares it: id, name, redirect URIs, secret, disabled, first party.
type AppState = (
    String,
    String,
    String,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    bool,
);

/// What a refused request must have left alone: the cell's targets as stored, and how many
/// rows each table holds (a refusal creates nothing). Times of use and audit events are not
/// in it (a refusal may be audited).
async fn state_of(app: &TestApp, targets: [String; 6]) -> String {
    use diesel::{ExpressionMethods, QueryDsl};
    use gatehouse::db::schema::{
        api_keys as k, clients as c, consents as n, users as u, workspace_invitations as i,
        workspace_members as m, workspaces as w,
    };
    app.state
        .db(move |conn| {
            let [key, client, consent, ws, wskey, inv] = targets;
            let users: Vec<(String, String, String, Option<chrono::NaiveDateTime>)> = u::table
                .select((u::id, u::display_name, u::role, u::disabled_at))
                .order(u::id)
                .load(conn)?;
            let keys: Vec<KeyState> = k::table
                .filter(k::id.eq_any([&key, &wskey]))
                .select((k::id, k::name, k::revoked_at, k::rolled_to, k::expires_at, k::allowed_ips))
                .order(k::id)
                .load(conn)?;
            let apps: Vec<AppState> =
                c::table
                    .filter(c::id.eq(&client))
                    .select((c::id, c::name, c::redirect_uris, c::secret_digest, c::disabled_at, c::first_party))
                    .load(conn)?;
            let consents: i64 = n::table.filter(n::id.eq(&consent)).count().get_result(conn)?;
            let spaces: Vec<(String, String, String)> = w::table
                .filter(w::id.eq(&ws))
                .select((w::id, w::name, w::key_issuance))
                .load(conn)?;
            let members: Vec<(String, String, String)> = m::table
                .select((m::workspace_id, m::user_id, m::role))
                .order((m::workspace_id, m::user_id))
                .load(conn)?;
            let invitations: Vec<(String, Option<chrono::NaiveDateTime>)> = i::table
                .filter(i::id.eq(&inv))
                .select((i::id, i::revoked_at))
                .load(conn)?;
            let counts: Vec<i64> = vec![
                k::table.count().get_result(conn)?,
                c::table.count().get_result(conn)?,
                n::table.count().get_result(conn)?,
                w::table.count().get_result(conn)?,
                i::table.count().get_result(conn)?,
            ];
            Ok::<_, gatehouse::db::DbError>(format!(
                "{users:?}\n{keys:?}\n{apps:?}\n{consents}\n{spaces:?}\n{members:?}\n{invitations:?}\n{counts:?}"
            ))
        })
        .await
        .unwrap()
}

/// One cell: the status (`SI` for a 303 to the sign-in page), and whether a refusal changed
/// what it must not have.
async fn ask(
    app: &TestApp,
    world: &World,
    caller: &Presents,
    row: &Row,
    uniq: usize,
) -> (u16, Option<String>) {
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
    let targets = [
        key.clone(),
        client.clone(),
        consent.clone(),
        ws.clone(),
        wskey.clone(),
        inv.clone(),
    ];
    let before = state_of(app, targets.clone()).await;
    let path = path
        .replace("{wskey}", &wskey)
        .replace("{ws}", &ws)
        .replace("{pws}", &pws)
        .replace("{inv}", &inv)
        .replace("{inv_token}", &inv_token)
        .replace("{member2}", &world.member2_id)
        .replace("{user3}", &world.user3_id)
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
    let response = request.send().await.unwrap();
    let mut status = response.status().as_u16();
    if status == 303
        && response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .is_some_and(|l| l.starts_with("/login"))
    {
        status = SI;
    }
    drop(response);
    app.state.background.settled().await;
    let refused = status >= 400;
    let after = state_of(app, targets).await;
    let changed =
        (refused && before != after).then(|| format!("before:\n{before}\nafter:\n{after}"));
    (status, changed)
}

both_backends!(every_caller_gets_what_the_matrix_says, |app| async move {
    let world = world(app).await;
    let mut wrong = Vec::new();
    let mut uniq = 0;
    // GATEHOUSE_MATRIX_PRINT=1 prints what every cell answered, as rows to compare.
    let print = std::env::var_os("GATEHOUSE_MATRIX_PRINT").is_some();
    for row in MATRIX {
        let mut seen = Vec::new();
        for (column, caller) in world.callers.iter().enumerate() {
            uniq += 1;
            let (got, changed) = ask(app, &world, caller, row, uniq).await;
            seen.push(if got == SI {
                "SI".to_owned()
            } else {
                got.to_string()
            });
            let expected = row.3[column];
            if got != expected {
                wrong.push(format!(
                    "{} {} as {}: expected {expected}, got {got}",
                    row.0, row.1, CALLERS[column]
                ));
            }
            if let Some(changed) = changed {
                wrong.push(format!(
                    "{} {} as {}: refused ({got}) but changed what it must not:\n{changed}",
                    row.0, row.1, CALLERS[column]
                ));
            }
        }
        if print {
            eprintln!("MATRIX {} {} [{}]", row.0, row.1, seen.join(", "));
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
