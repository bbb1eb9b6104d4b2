//! `POST /oauth/token` (RFC 6749 §3.2): parse the request, authenticate the client, hand the
//! typed request to its grant (`grants::{authorization_code, refresh_token,
//! client_credentials}`, free of HTTP) and answer RFC 6749 §5.1 JSON. Bodies may be
//! form-encoded or JSON; clients authenticate with `client_secret_basic`,
//! `client_secret_post` or, if public, `none`. Also the client authentication and body parsing
//! that introspection and revocation share, and the denial of revoked grants' access tokens.

pub mod introspect;

use crate::oauth::error::Respond;
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use utoipa::ToSchema;

use crate::clients::assertion;
use crate::clients::{self, Client, ClientType};
use crate::grants::authorization_code::{self, CodeGrant};
use crate::grants::client_credentials::{self, ClientCredentialsGrant};
use crate::grants::device_code::{self, DeviceGrant};
use crate::grants::issue::Issued;
use crate::grants::refresh_token::{self, RefreshGrant};
use crate::grants::token_exchange::{self, ExchangeRequest};
use crate::scopes::ScopeSet;
use crate::state::AppState;

pub use crate::oauth::error::{OAuthError, OAuthErrorBody};

/// The parameters the token, introspection and revocation endpoints read.
const PARAMETERS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "scope",
    "resource",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "audience",
    "device_code",
    "client_assertion",
    "client_assertion_type",
];

/// The body as name → value, from a form or a JSON object.
/// The body of an OAuth endpoint's request, read (too large or unreadable: RFC 6749 JSON, not
/// the `/v1` envelope) and parsed.
pub(crate) fn read_body(
    req: &HttpRequest,
    body: Result<web::Bytes, actix_web::Error>,
) -> Result<HashMap<String, String>, OAuthError> {
    parse_body(req, &body.map_err(|e| crate::oauth::error::unreadable(&e))?)
}

pub(crate) fn parse_body(
    req: &HttpRequest,
    body: &[u8],
) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| OAuthError::InvalidRequest("The body is not valid JSON".into()))?;
        let object = value
            .as_object()
            .ok_or_else(|| OAuthError::InvalidRequest("The body must be a JSON object".into()))?;
        let mut map = HashMap::new();
        for (k, v) in object {
            match v {
                serde_json::Value::String(s) => {
                    map.insert(k.clone(), s.clone());
                }
                serde_json::Value::Number(n) => {
                    map.insert(k.clone(), n.to_string());
                }
                // A parameter we read given as anything but text is refused, not ignored (it
                // would silently read as absent); unknown parameters are ignored (RFC 6749 §3.2).
                serde_json::Value::Null => {}
                _ if PARAMETERS.contains(&k.as_str()) => {
                    return Err(OAuthError::InvalidRequest(format!(
                        "The parameter {k} must be a string"
                    )));
                }
                _ => {}
            }
        }
        Ok(map)
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::InvalidRequest("The form body cannot be parsed".into()))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                if k == "resource" {
                    return Err(OAuthError::InvalidTarget(
                        "Gatehouse issues a token for one resource at a time".into(),
                    ));
                }
                return Err(OAuthError::InvalidRequest(format!(
                    "The parameter {k} appears twice"
                )));
            }
        }
        Ok(map)
    } else {
        Err(OAuthError::InvalidRequest(
            "Send the body as application/x-www-form-urlencoded or application/json".into(),
        ))
    }
}

/// `client_secret_basic`: `Basic base64(urlencoded id ":" urlencoded secret)`.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        OAuthError::InvalidClient("The Authorization header is not valid Basic credentials".into())
    };
    let value = value.to_str().map_err(|_| bad())?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Err(bad());
    };
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).map_err(|_| bad())?)
        .map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
    };
    Ok(Some((
        decode(id).ok_or_else(bad)?,
        decode(secret).ok_or_else(bad)?,
    )))
}

/// Authenticate the client by exactly one method.
/// Count the request against the allowance of the client it names, before any database work.
/// Only ids shaped like ours are counted, so made-up names do not grow the counters.
async fn per_client_allowance(state: &AppState, client_id: &str) -> Result<(), OAuthError> {
    if !client_id.starts_with("cli_") || client_id.len() > 64 {
        return Ok(());
    }
    let per_minute = state.settings.open_limits.oauth_per_client;
    let decision = state
        .rate_limits
        .check(format!("oauth-client:{client_id}"), per_minute)
        .await;
    match decision.retry_after {
        None => Ok(()),
        Some(seconds) => {
            crate::metrics::rate_limited("client");
            Err(OAuthError::slow_down(seconds))
        }
    }
}

pub(crate) async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    body: &HashMap<String, String>,
) -> Result<Arc<Client>, OAuthError> {
    if body.contains_key("client_assertion") || body.contains_key("client_assertion_type") {
        return assertion_client(state, req, body).await;
    }
    let basic = basic_credentials(req)?;
    let post_secret = body.get("client_secret").cloned();
    if basic.is_some() && post_secret.is_some() {
        return Err(OAuthError::InvalidRequest(
            "Use one client authentication method, not two".into(),
        ));
    }
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            body.get("client_id").cloned().ok_or_else(|| {
                OAuthError::InvalidClient("Client authentication is required".into())
            })?,
            post_secret,
        ),
    };
    if let (Some(body_id), Some(_)) = (body.get("client_id"), &secret)
        && body_id != &client_id
    {
        return Err(OAuthError::InvalidClient(
            "client_id does not match the authenticated client".into(),
        ));
    }
    per_client_allowance(state, &client_id).await?;
    let unknown = || OAuthError::InvalidClient("Client authentication failed".into());
    let client = state.client(&client_id).await?.ok_or_else(unknown)?;
    if client.disabled_at.is_some() || !crate::clients::documents::still_allowed(state, &client) {
        return Err(unknown());
    }
    // An app registered for `private_key_jwt` proves itself with its keys only.
    if client.options().private_key_jwt() {
        return Err(OAuthError::InvalidClient(
            "This client authenticates with private_key_jwt: send client_assertion".into(),
        ));
    }
    match (client.client_type(), secret) {
        (ClientType::Confidential, Some(secret))
            if client.secret_matches(&state.digest_pepper, &secret, state.now()) =>
        {
            Ok(client)
        }
        (ClientType::Public, None) => Ok(client),
        _ => Err(unknown()),
    }
}

/// `private_key_jwt` (RFC 7523 §2.2): the client named by a signed assertion, verified.
async fn assertion_client(
    state: &AppState,
    req: &HttpRequest,
    body: &HashMap<String, String>,
) -> Result<Arc<Client>, OAuthError> {
    if req.headers().contains_key(header::AUTHORIZATION) || body.contains_key("client_secret") {
        return Err(OAuthError::InvalidRequest(
            "Use one client authentication method, not two".into(),
        ));
    }
    if body.get("client_assertion_type").map(String::as_str) != Some(assertion::ASSERTION_TYPE) {
        return Err(OAuthError::InvalidClient(format!(
            "client_assertion_type must be {}",
            assertion::ASSERTION_TYPE
        )));
    }
    let presented = body
        .get("client_assertion")
        .ok_or_else(|| OAuthError::InvalidClient("client_assertion is required".into()))?;
    let client_id = assertion::claimed_client(presented)
        .ok_or_else(|| OAuthError::InvalidClient("The client assertion names no client".into()))?;
    if body.get("client_id").is_some_and(|id| id != &client_id) {
        return Err(OAuthError::InvalidClient(
            "client_id does not match the client assertion".into(),
        ));
    }
    per_client_allowance(state, &client_id).await?;
    let unknown = || OAuthError::InvalidClient("Client authentication failed".into());
    let client = state.client(&client_id).await?.ok_or_else(unknown)?;
    if client.disabled_at.is_some()
        || !crate::clients::documents::still_allowed(state, &client)
        || !client.options().private_key_jwt()
    {
        return Err(unknown());
    }
    let endpoint = format!("{}{}", state.settings.issuer, req.path());
    assertion::verify(state, &client, presented, &endpoint).await?;
    Ok(client)
}

/// A body field, if present and not blank.
fn optional(body: &HashMap<String, String>, name: &str) -> Option<String> {
    body.get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn required(body: &HashMap<String, String>, name: &str) -> Result<String, OAuthError> {
    body.get(name)
        .cloned()
        .ok_or_else(|| OAuthError::InvalidRequest(format!("{name} is required")))
}

fn scope(body: &HashMap<String, String>) -> Result<Option<ScopeSet>, OAuthError> {
    optional(body, "scope")
        .map(|raw| ScopeSet::parse(&raw).map_err(|e| OAuthError::InvalidScope(e.to_string())))
        .transpose()
}

/// RFC 8693's `resource` or `audience`: one target; both must name the same.
fn exchange_target(body: &HashMap<String, String>) -> Result<Option<String>, OAuthError> {
    match (optional(body, "resource"), optional(body, "audience")) {
        (Some(r), Some(a)) if r != a => Err(OAuthError::InvalidTarget(
            "resource and audience name different targets: Gatehouse issues a token for one".into(),
        )),
        (r, a) => Ok(r.or(a)),
    }
}

/// Whether the request authenticates a client at all (a key holder's token exchange does not).
fn presents_client(req: &HttpRequest, body: &HashMap<String, String>) -> bool {
    req.headers().contains_key(header::AUTHORIZATION)
        || body.contains_key("client_id")
        || body.contains_key("client_secret")
        || body.contains_key("client_assertion")
        || body.contains_key("client_assertion_type")
}

/// DPoP at the token endpoint (RFC 9449 §5): the request's proof, when it carries one, checked
/// without the database: for this request, fresh, with the server's nonce (unless
/// `GATEHOUSE_DPOP_NONCE=false`). `spend_proof` then accepts it once on every instance, after
/// the client authenticated (an anonymous caller makes no write).
fn dpop_proof(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<crate::jwt::dpop::Proof>, OAuthError> {
    use crate::jwt::dpop::{self, Expected, ProofError};
    let mut headers = req.headers().get_all("dpop");
    let Some(value) = headers.next() else {
        return Ok(None);
    };
    if headers.next().is_some() {
        return Err(OAuthError::InvalidDpopProof(
            "Send one DPoP header, not several".into(),
        ));
    }
    let proof = value
        .to_str()
        .map_err(|_| OAuthError::InvalidDpopProof("The DPoP header is not text".into()))?;
    let now = state.now().and_utc().timestamp();
    let url = format!("{}{}", state.settings.issuer, req.path());
    let expected = Expected {
        method: "POST",
        url: &url,
        access_token: None,
        nonce_required: state.settings.dpop_nonce,
        now,
    };
    dpop::verify(proof, &expected, &state.csrf_pepper, &state.dpop_headers)
        .map(Some)
        .map_err(|e| match e {
            ProofError::NonceRequired => {
                OAuthError::UseDpopNonce(dpop::nonce(&state.csrf_pepper, now))
            }
            ProofError::Invalid(why) => OAuthError::InvalidDpopProof(why.into()),
        })
}

/// Spend a verified proof's `jti` (every instance refuses it afterwards): the key's thumbprint.
async fn spend_proof(
    state: &AppState,
    proof: Option<crate::jwt::dpop::Proof>,
) -> Result<Option<String>, OAuthError> {
    let Some(proof) = proof else {
        return Ok(None);
    };
    let id = format!("dpop:{}:{}", proof.jkt, proof.jti);
    let until = chrono::DateTime::from_timestamp(proof.iat + 120, 0)
        .map_or_else(|| state.now(), |t| t.naive_utc());
    if !state
        .db(move |c| assertion::spend_jti(c, &id, until))
        .await?
    {
        return Err(OAuthError::InvalidDpopProof(
            "This DPoP proof was used before: make a new one for each request".into(),
        ));
    }
    Ok(Some(proof.jkt))
}

/// RFC 8693 token exchange, for `client` or (an API key's holder) for no client.
async fn run_exchange(
    state: &AppState,
    req: &HttpRequest,
    client: Option<&Client>,
    body: &HashMap<String, String>,
    jkt: Option<String>,
) -> Result<Issued, OAuthError> {
    let request = ExchangeRequest {
        subject_token: required(body, "subject_token")?,
        subject_token_type: required(body, "subject_token_type")?,
        actor_token: optional(body, "actor_token"),
        actor_token_type: optional(body, "actor_token_type"),
        requested_token_type: optional(body, "requested_token_type"),
        scope: scope(body)?,
        target: exchange_target(body)?,
        jkt,
    };
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let origin = token_exchange::Origin {
        ip: crate::http::client_ip::client_ip(req),
        origin: header(header::ORIGIN),
        referer: header(header::REFERER),
    };
    token_exchange::exchange(state, client, request, origin).await
}

/// The grant named by `grant_type`, with its typed request, run for `client`.
async fn run_grant(
    state: &AppState,
    client: &Client,
    grant: &str,
    body: &HashMap<String, String>,
    jkt: Option<String>,
) -> Result<Issued, OAuthError> {
    let resource = body.get("resource").cloned();
    match grant {
        "authorization_code" => {
            let request = CodeGrant {
                code: required(body, "code")?,
                redirect_uri: body.get("redirect_uri").cloned(),
                code_verifier: body.get("code_verifier").cloned(),
                resource,
                jkt,
            };
            authorization_code::exchange(state, client, request).await
        }
        "refresh_token" => {
            let request = RefreshGrant {
                refresh_token: required(body, "refresh_token")?,
                scope: scope(body)?,
                resource,
                jkt,
            };
            refresh_token::exchange(state, client, request).await
        }
        clients::DEVICE_CODE => {
            let request = DeviceGrant {
                device_code: required(body, "device_code")?,
                resource,
                jkt,
            };
            device_code::exchange(state, client, request).await
        }
        clients::TOKEN_EXCHANGE => Err(OAuthError::UnsupportedGrantType(
            "Token exchange is answered before the grants".into(),
        )),
        _ => {
            let request = ClientCredentialsGrant {
                scope: scope(body)?,
                resource,
                jkt,
            };
            client_credentials::exchange(state, client, request).await
        }
    }
}

/// What `POST /oauth/token` reads, form-encoded or as a JSON object (the handler reads it as
/// names and values: this type only describes it). Each grant needs its own fields; a client
/// authenticates with `Authorization: Basic` or `client_id` + `client_secret` here, or, if
/// public, `client_id` alone.
#[derive(ToSchema)]
#[schema(example = json!({ "grant_type": "client_credentials", "scope": "read:users" }))]
pub struct TokenRequest {
    #[schema(schema_with = grant_type_schema)]
    pub grant_type: String,
    /// `authorization_code`: the code from the redirect.
    #[schema(required = false)]
    pub code: String,
    /// `authorization_code`: the redirect URI of the authorization request.
    #[schema(required = false)]
    pub redirect_uri: String,
    /// `authorization_code`: the PKCE verifier (RFC 7636).
    #[schema(required = false)]
    pub code_verifier: String,
    /// `refresh_token`: the refresh token.
    #[schema(required = false)]
    pub refresh_token: String,
    /// Space-separated scopes: at most what was granted (`refresh_token`) or the client's
    /// (`client_credentials`).
    #[schema(required = false)]
    pub scope: String,
    /// RFC 8707: the one resource server the access token is for.
    #[schema(required = false)]
    pub resource: String,
    #[schema(required = false)]
    pub client_id: String,
    /// `client_secret_post` (not with `Authorization: Basic`).
    #[schema(required = false)]
    pub client_secret: String,
    /// Token exchange (RFC 8693): an API key, or an access token issued to the client.
    #[schema(required = false)]
    pub subject_token: String,
    /// `urn:gatehouse:params:oauth:token-type:api_key` or
    /// `urn:ietf:params:oauth:token-type:access_token`.
    #[schema(required = false)]
    pub subject_token_type: String,
    /// Token exchange: the acting party's access token (delegation: the result's `act`).
    #[schema(required = false)]
    pub actor_token: String,
    #[schema(required = false)]
    pub actor_token_type: String,
    /// Token exchange: only `urn:ietf:params:oauth:token-type:access_token` (or `…:jwt`).
    #[schema(required = false)]
    pub requested_token_type: String,
    /// Token exchange: the target, as `resource` (both must agree when both are sent).
    #[schema(required = false)]
    pub audience: String,
    /// `urn:ietf:params:oauth:grant-type:device_code`: the code from
    /// `/oauth/device_authorization`.
    #[schema(required = false)]
    pub device_code: String,
}

fn grant_type_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(clients::GRANT_TYPES))
        .into()
}

/// RFC 6749 §5.1.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// An RFC 9068 JWT (`typ: at+jwt`).
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Space-separated.
    #[schema(example = "read:users")]
    pub scope: String,
    /// Not for `client_credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OpenID Connect: when the grant holds `openid` (a JWT signed with the JWKS's current key,
    /// `aud` = the client id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// RFC 8693 token exchange: `urn:ietf:params:oauth:token-type:access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

fn issued(issued: Issued) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(TokenResponse {
            token_type: if issued.dpop_bound { "DPoP" } else { "Bearer" },
            access_token: issued.access_token,
            expires_in: issued.expires_in,
            scope: issued.scopes.to_storage(),
            refresh_token: issued.refresh_token,
            id_token: issued.id_token,
            issued_token_type: issued.issued_token_type,
        })
}

/// Token endpoint (RFC 6749 §3.2)
///
/// The `authorization_code` (with PKCE), `refresh_token`, `client_credentials`, device
/// (RFC 8628) and token exchange (RFC 8693: an API key's holder needs no client
/// authentication) grants.
/// Errors are RFC 6749 JSON. Limited per client address and per `client_id`.
#[utoipa::path(post, path = "/oauth/token", tag = "oauth",
    security((), ("client_basic" = [])),
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope` or `invalid_target`; polling for a device: `authorization_pending`, `slow_down`, `access_denied`, `expired_token`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client` (with `WWW-Authenticate: Basic`)", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`: the address or the client used its allowance", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let answer = async {
        let body = read_body(&req, body)?;
        // A page of another origin: a public app's registered origin only (see `http::cors`).
        let named = body.get("client_id").map(String::as_str);
        crate::http::cors::admit_for_app(&req, &state, named).await?;
        let grant = required(&body, "grant_type")?;
        if !clients::GRANT_TYPES.contains(&grant.as_str()) {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "Supported: {}",
                clients::GRANT_TYPES.join(", ")
            )));
        }
        let proof = dpop_proof(&state, &req)?;
        // An API key's holder exchanges it without being a client.
        if grant == clients::TOKEN_EXCHANGE && !presents_client(&req, &body) {
            let jkt = spend_proof(&state, proof).await?;
            return run_exchange(&state, &req, None, &body, jkt).await;
        }
        let client = authenticate_client(&state, &req, &body).await?;
        let jkt = spend_proof(&state, proof).await?;
        if !client.allows_grant(&grant) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use this grant".into(),
            ));
        }
        if jkt.is_none() && client.options().dpop_bound_access_tokens {
            return Err(OAuthError::InvalidDpopProof(
                "This client's tokens are bound to a key: send a DPoP proof".into(),
            ));
        }
        let issued = if grant == clients::TOKEN_EXCHANGE {
            run_exchange(&state, &req, Some(&client), &body, jkt).await?
        } else {
            run_grant(&state, &client, &grant, &body, jkt).await?
        };
        if client.self_registered() {
            note_use(&state, &client).await;
        }
        Ok(issued)
    };
    let nonce = (state.settings.dpop_nonce && req.headers().contains_key("dpop"))
        .then(|| crate::jwt::dpop::nonce(&state.csrf_pepper, state.now().and_utc().timestamp()));
    match answer.await {
        Ok(tokens) => {
            let mut response = issued(tokens);
            if let Some(nonce) = nonce
                && let Ok(value) = header::HeaderValue::from_str(&nonce)
            {
                response
                    .headers_mut()
                    .insert(header::HeaderName::from_static("dpop-nonce"), value);
            }
            response
        }
        Err(e) => e.response(),
    }
}

/// An app that registered itself (or is described by a document) is deleted when nobody uses
/// it: its first and last use are written at most once an hour (never a write per request).
async fn note_use(state: &AppState, client: &Client) {
    let now = state.now();
    if client
        .last_used_at
        .is_some_and(|last| now - last < chrono::Duration::hours(1))
    {
        return;
    }
    let id = client.id.clone();
    let noted = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| clients::note_use(c, &id, now))?;
            clients::find(c, &id)
        })
        .await;
    match noted {
        Ok(Some(fresh)) => {
            state.key_cache.put_client(fresh);
        }
        Ok(None) => {}
        Err(e) => log::warn!("recording the use of an app: {e}"),
    }
}
