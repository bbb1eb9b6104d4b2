//! CORS: which pages of other origins may read Gatehouse's answers.
//!
//! - Discovery, the JWKS and the protected-resource metadata are public documents: any origin
//!   reads them (`Access-Control-Allow-Origin: *`, never with credentials).
//! - The token endpoint, revocation and UserInfo serve **public apps' pages**. A preflight
//!   carries no `client_id`, so it is answered for an origin that some enabled public app
//!   registered (or derives from its redirect URIs: `clients::cors`); the request itself is
//!   then held against its own app (`admit_for_app`): the token endpoint and revocation
//!   *refuse* a browser request whose app did not register its origin — a confidential app's,
//!   or a key holder's exchange, included — so no page of another site spends a code or a
//!   token; UserInfo answers it without the CORS headers (the browser withholds the answer).
//!   `DPoP` may be sent; `DPoP-Nonce` and `WWW-Authenticate` are exposed.
//! - `/v1` is readable from a page only with a restricted `rk_` key limited to that page's
//!   origin (the key's referrer restriction, checked at verification); never with an `sk_` key
//!   (a referrer is not a secret) or a session (no credentials are ever allowed).
//!
//! A request without `Origin`, or from Gatehouse's own origin, is not a CORS request and
//! passes untouched. Handlers say "readable" through a request extension ([`Readable`]); the
//! plumbing middleware answers preflights and writes the headers ([`CrossOrigin`]).

use actix_web::dev::ServiceRequest;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};

use crate::oauth::error::OAuthError;
use crate::state::AppState;

/// How long a browser may keep a preflight's answer.
const MAX_AGE: &str = "600";
/// Request headers a page may send.
const ALLOWED_HEADERS: &str = "Authorization, Content-Type, DPoP";
/// Response headers a page may read (besides the safelisted ones).
const EXPOSED_OAUTH: &str = "DPoP-Nonce, WWW-Authenticate";
const EXPOSED_API: &str = "DPoP-Nonce, WWW-Authenticate, X-Request-Id, X-RateLimit-Limit, \
     X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After";

/// What a path is to CORS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Public metadata: any origin, `GET`.
    Public,
    /// An endpoint of public apps' pages, with its methods.
    App(&'static str),
    /// The Gatehouse API.
    Api,
    /// Not served to other origins.
    None,
}

fn kind_of(path: &str) -> Kind {
    match path {
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/.well-known/jwks.json"
        | "/.well-known/oauth-protected-resource" => Kind::Public,
        "/oauth/token" | "/oauth/revoke" => Kind::App("POST"),
        "/oauth/userinfo" => Kind::App("GET, POST"),
        p if p.starts_with("/v1/") => Kind::Api,
        _ => Kind::None,
    }
}

/// The handler found the request's credential may be used from its page's origin.
#[derive(Debug, Clone, Copy)]
pub struct Readable;

/// `scheme://host[:port]` of a URL (the issuer's origin).
pub fn origin_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default()
}

/// The `Origin` of a request from a page of another origin than Gatehouse's own (`None`: no
/// header, or this server's own pages).
pub fn foreign_origin(req: &HttpRequest, issuer: &str) -> Option<String> {
    let origin = req.headers().get(header::ORIGIN)?.to_str().ok()?;
    (origin != origin_of(issuer)).then(|| origin.to_owned())
}

/// Let the page read this answer.
pub fn mark_readable(req: &HttpRequest) {
    req.extensions_mut().insert(Readable);
}

/// The token endpoint and revocation, from a page of another origin: allowed only for a
/// public, enabled app (`client_id`, as the request names it) that registered the page's
/// origin; refused otherwise. The refusal itself is readable when some public app registered
/// the origin (a developer sees why).
pub async fn admit_for_app(
    req: &HttpRequest,
    state: &AppState,
    client_id: Option<&str>,
) -> Result<(), OAuthError> {
    let Some(origin) = foreign_origin(req, &state.settings.issuer) else {
        return Ok(());
    };
    if allowed_for(state, client_id, &origin).await {
        mark_readable(req);
        return Ok(());
    }
    if state
        .web_origins()
        .await
        .is_ok_and(|all| all.allows(&origin))
    {
        mark_readable(req);
    }
    Err(OAuthError::InvalidRequest(format!(
        "A page of {origin} may not call this endpoint for this app: only a public app's \
         registered web origins may (allowed_origins)"
    )))
}

/// UserInfo with a valid token: its answer is readable by the page only when the token's own
/// app registered the page's origin.
pub async fn hold_to_app(req: &HttpRequest, state: &AppState, client_id: &str) {
    if let Some(origin) = foreign_origin(req, &state.settings.issuer)
        && !allowed_for(state, Some(client_id), &origin).await
    {
        req.extensions_mut().remove::<Readable>();
    }
}

/// A refusal before the app is known (no or a bad token): readable when some public app
/// registered the origin, so the page can read `WWW-Authenticate`.
pub async fn readable_if_registered(req: &HttpRequest, state: &AppState) {
    if let Some(origin) = foreign_origin(req, &state.settings.issuer)
        && state
            .web_origins()
            .await
            .is_ok_and(|all| all.allows(&origin))
    {
        mark_readable(req);
    }
}

async fn allowed_for(state: &AppState, client_id: Option<&str>, origin: &str) -> bool {
    let Some(client_id) = client_id else {
        return false;
    };
    match state.client(client_id).await {
        Ok(Some(app)) => app.disabled_at.is_none() && app.web_origins().allows(origin),
        _ => false,
    }
}

/// A request from a page of another origin, on a path served to other origins: what
/// `http::middleware::plumbing` asks before and after the handler.
pub struct CrossOrigin {
    kind: Kind,
    origin: String,
}

impl CrossOrigin {
    /// `None` for most requests (a path not served to other origins, no `Origin`, Gatehouse's
    /// own origin): they pay a few string comparisons.
    pub fn of(req: &ServiceRequest, issuer_origin: &str) -> Option<CrossOrigin> {
        Self::from_parts(req.path(), req.headers(), issuer_origin)
    }

    fn from_parts(path: &str, headers: &HeaderMap, issuer_origin: &str) -> Option<CrossOrigin> {
        let kind = kind_of(path);
        if kind == Kind::None {
            return None;
        }
        let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
        (origin != issuer_origin).then(|| CrossOrigin {
            kind,
            origin: origin.to_owned(),
        })
    }

    /// The CORS headers of the answer: `*` on public documents, the origin where the handler
    /// found the credential may be used from it ([`Readable`]).
    pub fn finish(&self, headers: &mut HeaderMap, readable: bool) {
        match self.kind {
            Kind::Public => {
                headers.insert(
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                );
            }
            Kind::App(_) | Kind::Api if readable => {
                if let Ok(value) = HeaderValue::from_str(&self.origin) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
                }
                let exposed = if self.kind == Kind::Api {
                    EXPOSED_API
                } else {
                    EXPOSED_OAUTH
                };
                headers.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(exposed),
                );
            }
            _ => {}
        }
        if matches!(self.kind, Kind::App(_) | Kind::Api) {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }
}

/// A CORS preflight's answer, where the route has no handler for `OPTIONS` (its resource's
/// default service asks before answering 405): `None` when the request is not one.
pub async fn preflight_for(req: &HttpRequest) -> Option<HttpResponse> {
    if req.method() != Method::OPTIONS
        || !req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return None;
    }
    let state = req.app_data::<web::Data<AppState>>()?;
    let own = origin_of(&state.settings.issuer);
    let cross = CrossOrigin::from_parts(req.path(), req.headers(), &own)?;
    Some(preflight(req, &cross.origin, cross.kind).await)
}

/// The answer to a preflight from `origin`: 204 with what may be sent, or 403 without CORS
/// headers (the browser then sends nothing).
async fn preflight(req: &HttpRequest, origin: &str, kind: Kind) -> HttpResponse {
    let methods = match kind {
        Kind::Public => "GET",
        Kind::App(methods) => {
            let registered = match req.app_data::<web::Data<AppState>>() {
                Some(state) => state
                    .web_origins()
                    .await
                    .is_ok_and(|all| all.allows(origin)),
                None => false,
            };
            if !registered {
                return HttpResponse::build(StatusCode::FORBIDDEN).json(serde_json::json!({
                    "error": "invalid_request",
                    "error_description": format!(
                        "No public app registered the web origin {origin} (allowed_origins)"
                    ),
                }));
            }
            methods
        }
        // The preflight carries no key: the request's own key decides whether its answer is
        // readable (no credentials are allowed, so no cookie ever goes along).
        Kind::Api => "GET, POST, PATCH, DELETE",
        // Not a CORS path: `cors` passes those on before asking.
        Kind::None => return HttpResponse::NotFound().finish(),
    };
    let mut answer = HttpResponse::NoContent();
    let allow_origin = if kind == Kind::Public { "*" } else { origin };
    answer
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin))
        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
        .insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE));
    // `Vary: Origin` is the plumbing's (`CrossOrigin::finish`), as on every answer here.
    answer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_sorted_by_what_they_serve() {
        assert_eq!(kind_of("/.well-known/jwks.json"), Kind::Public);
        assert_eq!(kind_of("/oauth/token"), Kind::App("POST"));
        assert_eq!(kind_of("/oauth/userinfo"), Kind::App("GET, POST"));
        assert_eq!(kind_of("/v1/users/me"), Kind::Api);
        assert_eq!(kind_of("/oauth/authorize"), Kind::None);
        assert_eq!(kind_of("/oauth/introspect"), Kind::None);
        assert_eq!(kind_of("/login"), Kind::None);
        assert_eq!(
            origin_of("https://id.example.com/"),
            "https://id.example.com"
        );
    }
}
