//! The permission matrix: every route and page of Gatehouse × every kind of caller → the
//! status the caller gets. The table is data (`MATRIX`); one loop asks every cell against a
//! live server on both databases. A route wired in `src/app.rs` without rows here fails
//! `every_route_has_rows_in_the_matrix`. The README's "Who may do what" is this table's
//! summary.

mod callers;
mod coverage;

pub(crate) use coverage::wired_routes;

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
