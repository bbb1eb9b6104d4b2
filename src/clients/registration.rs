//! Dynamic Client Registration (RFC 7591 `POST /oauth/register`) and its management protocol
//! (RFC 7592 `GET`/`PUT`/`DELETE /oauth/register/{client_id}` with the registration access
//! token), for agents and MCP clients that arrive without anyone registering them by hand.
//!
//! `GATEHOUSE_REGISTRATION` decides who may register: `off` (the endpoint answers 404),
//! `token` (an initial access token, `iat_…`, minted by an administrator on the Agents page or
//! with `gatehouse registration-token create`) or `open` (anyone; rate-limited per address).
//! Either way a self-registered app gets only non-administrative scopes, the resource servers
//! the operator opened to such apps, no owner, and is deleted when nobody uses it for
//! `GATEHOUSE_REGISTRATION_UNUSED_DAYS`. Users see it on the consent page as an app that
//! registered itself, with what it claims about itself.

use crate::oauth::error::{Respond, unreadable};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::audit::{self, Action};
use crate::clients::redirect::RedirectUri;
use crate::clients::{self, Client, ClientType, NewClient, Origin, SelfDescription};
use crate::config::RegistrationMode;
use crate::oauth::error::{OAuthError, OAuthErrorBody};
use crate::scopes::ScopeSet;
use crate::secrets::{PlainSecret, constant_time_eq};
use crate::state::AppState;

/// Prefix of initial access tokens (RFC 7591 §3).
/// Prefix of registration access tokens (RFC 7592 §1).
pub const REGISTRATION_TOKEN_PREFIX: &str = "rat_";
const MAX_REDIRECT_URIS: usize = 10;

/// Client metadata (RFC 7591 §2). Members Gatehouse does not use are ignored.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
pub struct ClientMetadata {
    /// Required with the `authorization_code` grant; matched exactly (https, or http on a
    /// loopback address for native apps, or a reverse-domain scheme).
    pub redirect_uris: Option<Vec<String>>,
    /// `none` (a public client: PKCE), `client_secret_basic` (the default) or
    /// `client_secret_post`.
    pub token_endpoint_auth_method: Option<String>,
    /// Among `authorization_code` (the default), `refresh_token`, `client_credentials`.
    pub grant_types: Option<Vec<String>>,
    /// `code`, or none when the app uses only `client_credentials`.
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    /// https URLs shown on the consent page as what the app claims.
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    pub policy_uri: Option<String>,
    pub tos_uri: Option<String>,
    /// Space-separated; absent: every scope a self-registered app may have.
    pub scope: Option<String>,
    pub contacts: Option<Vec<String>>,
    pub software_id: Option<String>,
    pub software_version: Option<String>,
    /// RFC 7592 `PUT`: must be the app's own.
    pub client_id: Option<String>,
    /// RFC 7592 `PUT`: if sent, must be the app's current secret.
    pub client_secret: Option<String>,
    /// `private_key_jwt`: the app's public keys (a JWK Set)…
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// …or the https URL where it publishes them.
    pub jwks_uri: Option<String>,
    /// RFC 9449 §5.2: the app's tokens are always bound to a DPoP key.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Gatehouse: a public app's web origins (CORS; up to 20, `https://host[:port]` or `http`
    /// on a loopback host). Absent: the origins of its redirect URIs.
    pub allowed_origins: Option<Vec<String>>,
}

/// A registration as answered (RFC 7591 §3.2.1, RFC 7592 §3).
#[derive(Debug, Serialize, ToSchema)]
pub struct RegistrationResponse {
    pub client_id: String,
    /// Confidential apps only; shown once, at registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire (confidential apps only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    /// RFC 7592: the bearer token that reads, changes and deletes this registration; shown
    /// once, at registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    #[schema(format = "uri")]
    pub registration_client_uri: String,
    pub client_name: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub token_endpoint_auth_method: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The web origins the app registered (absent: its redirect URIs' origins).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub claims: SelfDescription,
}

/// What a valid registration makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub name: String,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<String>,
    pub scopes: ScopeSet,
    pub description: SelfDescription,
    /// `private_key_jwt`: a checked JWK Set, or a URL (checked where the server's rules for
    /// fetching are known).
    pub jwks: Option<serde_json::Value>,
    pub jwks_uri: Option<String>,
    /// A public app's web origins (`None`: its redirect URIs').
    pub allowed_origins: Option<Vec<String>>,
}

/// A public app's registered web origins, checked.
fn web_origins(
    client_type: ClientType,
    raw: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, OAuthError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    clients::cors::checked_origins(client_type, &raw)
        .map(Some)
        .map_err(|e| metadata_error(format!("allowed_origins: {e}")))
}

fn metadata_error(why: impl Into<String>) -> OAuthError {
    OAuthError::InvalidClientMetadata(why.into())
}

/// An https URL shown to users, or refused.
fn https_url(field: &str, raw: Option<String>) -> Result<Option<String>, OAuthError> {
    match raw.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
        None => Ok(None),
        Some(u)
            if u.len() <= 500
                && url::Url::parse(&u)
                    .is_ok_and(|p| p.scheme() == "https" && p.host().is_some()) =>
        {
            Ok(Some(u))
        }
        Some(_) => Err(metadata_error(format!("{field} must be an https URL"))),
    }
}

fn short_text(field: &str, raw: Option<String>, max: usize) -> Result<Option<String>, OAuthError> {
    match raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() <= max && !t.chars().any(char::is_control) => Ok(Some(t)),
        Some(_) => Err(metadata_error(format!(
            "{field} must be at most {max} characters, without control characters"
        ))),
    }
}

/// RFC 7591 §2 checks, every field. `grantable`: the scopes a self-registered app may have.
/// `machine_grants`: whether `client_credentials` may be registered (only with an initial
/// access token: anyone could otherwise mint tokens that act for no user).
pub fn validate(
    m: ClientMetadata,
    grantable: &ScopeSet,
    machine_grants: bool,
) -> Result<Validated, OAuthError> {
    let method = m
        .token_endpoint_auth_method
        .clone()
        .unwrap_or_else(|| "client_secret_basic".into());
    let client_type = client_type_of(&method)?;
    let (jwks, jwks_uri) = keys_of(&method, &m)?;
    let grant_types = grant_types_of(&m, client_type, machine_grants)?;
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    let redirect_uris = redirect_uris_of(&m, code_flow)?;
    let scopes = match m.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => grantable.clone(),
        Some(raw) => {
            let asked = ScopeSet::parse(raw).map_err(|e| metadata_error(format!("scope: {e}")))?;
            if let Some(extra) = asked.difference(grantable).first() {
                return Err(metadata_error(format!(
                    "scope {extra} is unknown or cannot be given to an app that registers itself"
                )));
            }
            asked
        }
    };
    let contacts = m.contacts.clone().unwrap_or_default();
    if contacts.len() > 5
        || contacts
            .iter()
            .any(|c| c.len() > 200 || c.chars().any(char::is_control))
    {
        return Err(metadata_error(
            "contacts: at most 5, each at most 200 characters",
        ));
    }
    let name = short_text("client_name", m.client_name, 100)?
        .map(|n| clients::shown_name(&n))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "Unnamed app".into());
    Ok(Validated {
        allowed_origins: web_origins(client_type, m.allowed_origins)?,
        jwks,
        jwks_uri,
        name,
        client_type,
        redirect_uris,
        grant_types,
        scopes,
        description: SelfDescription {
            token_endpoint_auth_method: Some(method),
            client_uri: https_url("client_uri", m.client_uri)?,
            logo_uri: https_url("logo_uri", m.logo_uri)?,
            policy_uri: https_url("policy_uri", m.policy_uri)?,
            tos_uri: https_url("tos_uri", m.tos_uri)?,
            contacts,
            software_id: short_text("software_id", m.software_id, 200)?,
            software_version: short_text("software_version", m.software_version, 100)?,
        },
    })
}

/// The client type a `token_endpoint_auth_method` makes.
fn client_type_of(method: &str) -> Result<ClientType, OAuthError> {
    match method {
        "none" => Ok(ClientType::Public),
        "client_secret_basic" | "client_secret_post" | "private_key_jwt" => {
            Ok(ClientType::Confidential)
        }
        "client_secret_jwt" | "tls_client_auth" | "self_signed_tls_client_auth" => {
            Err(metadata_error(format!(
                "token_endpoint_auth_method {method} is not supported: use none, client_secret_basic, client_secret_post or private_key_jwt"
            )))
        }
        other => Err(metadata_error(format!(
            "token_endpoint_auth_method {other:?} is unknown"
        ))),
    }
}

/// `jwks` or `jwks_uri`: exactly one for `private_key_jwt`, neither otherwise.
type Keys = (Option<serde_json::Value>, Option<String>);

fn keys_of(method: &str, m: &ClientMetadata) -> Result<Keys, OAuthError> {
    match (method, m.jwks.clone(), m.jwks_uri.clone()) {
        ("private_key_jwt", Some(set), None) => {
            crate::clients::assertion::validate_jwks(&set).map_err(metadata_error)?;
            Ok((Some(set), None))
        }
        ("private_key_jwt", None, Some(uri)) => Ok((None, Some(uri))),
        ("private_key_jwt", _, _) => Err(metadata_error(
            "private_key_jwt needs the app's keys: jwks or jwks_uri (one of them)",
        )),
        (_, None, None) => Ok((None, None)),
        _ => Err(metadata_error(
            "jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt",
        )),
    }
}

/// The grant types, checked against the response types, the client type and whether machine
/// grants may be registered here.
fn grant_types_of(
    m: &ClientMetadata,
    client_type: ClientType,
    machine_grants: bool,
) -> Result<Vec<String>, OAuthError> {
    let grant_types = m
        .grant_types
        .clone()
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if grant_types.is_empty() {
        return Err(metadata_error("grant_types cannot be empty"));
    }
    for g in &grant_types {
        if !clients::GRANT_TYPES.contains(&g.as_str()) {
            return Err(metadata_error(format!(
                "grant_type {g:?} is not supported: {}",
                clients::GRANT_TYPES.join(", ")
            )));
        }
    }
    let code_flow = grant_types.iter().any(|g| g == "authorization_code");
    check_response_types(m, code_flow)?;
    let device_flow = grant_types.iter().any(|g| g == clients::DEVICE_CODE);
    if grant_types.iter().any(|g| g == "refresh_token") && !code_flow && !device_flow {
        return Err(metadata_error(
            "refresh_token needs authorization_code or the device grant: nothing else issues refresh tokens",
        ));
    }
    let machine = |g: &String| g == "client_credentials" || g == clients::TOKEN_EXCHANGE;
    if grant_types.iter().any(machine) && !machine_grants {
        return Err(metadata_error(
            "client_credentials and token exchange are not open to apps that register themselves here: ask an administrator for an initial access token",
        ));
    }
    if grant_types.iter().any(machine) && client_type == ClientType::Public {
        return Err(metadata_error(
            "client_credentials and token exchange need a client secret: token_endpoint_auth_method none cannot use them",
        ));
    }
    Ok(grant_types)
}

/// RFC 7591 §2.1: only `code`, and `code` goes with `authorization_code` and the other way round.
fn check_response_types(m: &ClientMetadata, code_flow: bool) -> Result<(), OAuthError> {
    let response_types = m.response_types.clone().unwrap_or_else(|| {
        if code_flow {
            vec!["code".into()]
        } else {
            Vec::new()
        }
    });
    if let Some(t) = response_types.iter().find(|t| *t != "code") {
        return Err(metadata_error(format!(
            "response_type {t:?} is not supported: only code"
        )));
    }
    if code_flow != response_types.iter().any(|t| t == "code") {
        return Err(metadata_error(
            "grant_types and response_types disagree: authorization_code goes with the response type code",
        ));
    }
    Ok(())
}

/// The redirect URIs: 1 to 10 exact URIs for the code flow, none otherwise.
fn redirect_uris_of(m: &ClientMetadata, code_flow: bool) -> Result<Vec<RedirectUri>, OAuthError> {
    match m.redirect_uris.clone() {
        None | Some(_) if !code_flow => {
            if m.redirect_uris.as_ref().is_some_and(|u| !u.is_empty()) {
                return Err(OAuthError::InvalidRedirectUri(
                    "redirect_uris are only for the authorization_code grant".into(),
                ));
            }
            Ok(Vec::new())
        }
        None => Err(OAuthError::InvalidRedirectUri(
            "redirect_uris are required for the authorization_code grant".into(),
        )),
        Some(uris) if uris.is_empty() || uris.len() > MAX_REDIRECT_URIS => {
            Err(OAuthError::InvalidRedirectUri(format!(
                "Register 1 to {MAX_REDIRECT_URIS} redirect_uris"
            )))
        }
        Some(uris) => uris
            .iter()
            .map(|u| {
                if u.contains('*') {
                    return Err(OAuthError::InvalidRedirectUri(format!(
                        "{u}: wildcards are not allowed (redirect URIs are matched exactly)"
                    )));
                }
                RedirectUri::parse(u)
                    .map_err(|e| OAuthError::InvalidRedirectUri(format!("{u}: {e}")))
            })
            .collect(),
    }
}

fn answer(
    state: &AppState,
    client: &Client,
    secret: Option<&PlainSecret>,
    token: Option<&PlainSecret>,
) -> RegistrationResponse {
    let description = client.description();
    let confidential = client.client_type() == ClientType::Confidential;
    let code_flow = client.allows_grant("authorization_code");
    RegistrationResponse {
        client_id: client.id.clone(),
        client_secret: secret.map(|s| s.expose().to_owned()),
        client_id_issued_at: client.created_at.and_utc().timestamp(),
        client_secret_expires_at: confidential.then_some(0),
        registration_access_token: token.map(|t| t.expose().to_owned()),
        registration_client_uri: format!("{}/oauth/register/{}", state.settings.issuer, client.id),
        client_name: client.name.clone(),
        redirect_uris: client.redirect_uris.lines().map(str::to_owned).collect(),
        grant_types: client.grant_types.split(' ').map(str::to_owned).collect(),
        response_types: if code_flow {
            vec!["code".into()]
        } else {
            Vec::new()
        },
        token_endpoint_auth_method: description
            .token_endpoint_auth_method
            .clone()
            .unwrap_or_else(|| {
                if confidential {
                    "client_secret_basic".into()
                } else {
                    "none".into()
                }
            }),
        scope: client.scopes().to_storage(),
        jwks: client.options().jwks,
        jwks_uri: client.options().jwks_uri,
        allowed_origins: client.options().allowed_origins,
        claims: SelfDescription {
            token_endpoint_auth_method: None,
            ..description
        },
    }
}

fn json_answer(status: actix_web::http::StatusCode, body: &RegistrationResponse) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

fn parse_metadata(body: &[u8]) -> Result<ClientMetadata, OAuthError> {
    serde_json::from_slice(body).map_err(|e| {
        metadata_error(format!(
            "The body must be a JSON object of client metadata (RFC 7591 §2): {e}"
        ))
    })
}

async fn grantable(state: &AppState) -> Result<ScopeSet, OAuthError> {
    let all = state.scope_registry().await?;
    Ok(crate::policy::grantable::self_registered_may_ask(&all))
}

/// A `jwks_uri` as app management checks it (the guarded fetch's rules for its host).
fn checked_jwks_uri(state: &AppState, uri: Option<&str>) -> Result<Option<String>, OAuthError> {
    let Some(uri) = uri else {
        return Ok(None);
    };
    Ok(
        crate::clients::manage::validate_keys(state, None, Some(uri))
            .map_err(|e| metadata_error(format!("jwks_uri: {}", e.message)))?
            .1,
    )
}

/// The app's options after a PUT: the authentication method and where its keys are stay as
/// registered; `private_key_jwt` keys are replaced (how an app rotates them).
fn replaced_keys(
    state: &AppState,
    client: &Client,
    valid: &Validated,
) -> Result<String, OAuthError> {
    if valid.client_type != client.client_type()
        || valid.jwks.is_some() != client.options().jwks.is_some()
        || valid.jwks_uri.is_some() != client.options().jwks_uri.is_some()
    {
        return Err(metadata_error(
            "token_endpoint_auth_method (and where the keys are) cannot change: register a new app",
        ));
    }
    let mut options = client.options();
    if let Some(set) = &valid.jwks {
        options.jwks = Some(set.clone());
    }
    if valid.jwks_uri.is_some() {
        options.jwks_uri = checked_jwks_uri(state, valid.jwks_uri.as_deref())?;
    }
    // RFC 7592: the new metadata replaces the old, origins included.
    options.allowed_origins = valid.allowed_origins.clone();
    Ok(options.to_storage())
}

/// The digest of the initial access token the request carries (`Authorization: Bearer iat_…`).
fn initial_token_digest(state: &AppState, req: &HttpRequest) -> Result<String, OAuthError> {
    let token = bearer(req).ok_or_else(|| {
        OAuthError::InvalidToken(
            "Registration needs an initial access token (Authorization: Bearer iat_…)".into(),
        )
    })?;
    PlainSecret::parse(INITIAL_TOKEN_PREFIX, &token)
        .map(|s| state.digest_pepper.digest_secret(&s))
        .map_err(|_| OAuthError::InvalidToken("The initial access token is not valid".into()))
}

/// Insert the app and audit it, spending the initial access token in the same transaction:
/// `None` when the token is used up (two registrations racing for its last use get one app).
async fn store_registered(
    state: &AppState,
    new: NewClient,
    initial_digest: Option<String>,
) -> Result<Option<(Client, Option<PlainSecret>)>, OAuthError> {
    let (pepper, now) = (state.digest_pepper.clone(), state.now());
    let ip = new.registered_from.clone();
    let stored = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                if let Some(digest) = &initial_digest
                    && !spend_initial_token(c, digest, now)?
                {
                    return Ok(None);
                }
                let (client, secret) = clients::create(c, &pepper, &new, now)?;
                let mut event = audit::NewEvent::new(Action::ClientSelfRegistered);
                event.ip = ip;
                event.details = json!({
                    "client_id": client.id,
                    "name": client.name,
                    "with_initial_token": initial_digest.is_some(),
                });
                audit::record(c, &event, now)?;
                Ok(Some((client, secret)))
            })
        })
        .await?;
    state.forget_web_origins();
    Ok(stored)
}

/// Register an app (RFC 7591)
///
/// With `GATEHOUSE_REGISTRATION=token`, send an initial access token minted by an administrator
/// as `Authorization: Bearer iat_…`; with `open`, nothing (rate-limited per address). The app
/// gets only scopes that need no administrator, no owner, and is deleted when nobody uses it.
/// Keep `registration_access_token`: it reads, changes and deletes the registration.
#[utoipa::path(post, path = "/oauth/register", tag = "oauth",
    request_body(content = ClientMetadata, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered", body = RegistrationResponse),
        (status = 400, description = "`invalid_redirect_uri` or `invalid_client_metadata` (RFC 7591 §3.2.2)", body = OAuthErrorBody),
        (status = 401, description = "`invalid_token`: the initial access token is missing, unknown, used up, expired or revoked", body = OAuthErrorBody),
        (status = 404, description = "`not_found`: registration is off on this server", body = OAuthErrorBody),
        (status = 413, description = "The body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`: too many registrations from this address", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let mode = state.settings.registration.mode;
        if mode == RegistrationMode::Off {
            return Err(OAuthError::NotFound(
                "Client registration is not enabled on this server".into(),
            ));
        }
        let initial_digest = match mode {
            RegistrationMode::Token => Some(initial_token_digest(&state, &req)?),
            _ => None,
        };
        let metadata = parse_metadata(&body.map_err(|e| unreadable(&e))?)?;
        if metadata.client_id.is_some() || metadata.client_secret.is_some() {
            return Err(metadata_error(
                "client_id and client_secret are assigned by the server, not sent",
            ));
        }
        let dpop_bound = metadata.dpop_bound_access_tokens.unwrap_or(false);
        let valid = validate(
            metadata,
            &grantable(&state).await?,
            initial_digest.is_some(),
        )?;
        let jwks_uri = checked_jwks_uri(&state, valid.jwks_uri.as_deref())?;
        let token = PlainSecret::generate(REGISTRATION_TOKEN_PREFIX);
        let new = NewClient {
            name: valid.name,
            owner_user_id: None,
            client_type: valid.client_type,
            redirect_uris: valid.redirect_uris,
            scopes: valid.scopes,
            first_party: false,
            grant_types: valid.grant_types,
            resources: state.settings.registration.resources.clone(),
            origin: Origin::Dcr,
            description: valid.description,
            registration_token_digest: Some(state.digest_pepper.digest_secret(&token)),
            registered_from: crate::http::client_ip::client_ip(&req).map(|ip| ip.to_string()),
            options: clients::ClientOptions {
                jwks: valid.jwks,
                jwks_uri,
                dpop_bound_access_tokens: dpop_bound,
                allowed_origins: valid.allowed_origins.clone(),
                ..Default::default()
            },
            ..NewClient::default()
        };
        let created = store_registered(&state, new, initial_digest).await?;
        let (client, secret) = created.ok_or_else(|| {
            OAuthError::InvalidToken(
                "The initial access token is unknown, used up, expired or revoked".into(),
            )
        })?;
        Ok(json_answer(
            actix_web::http::StatusCode::CREATED,
            &answer(&state, &client, secret.as_ref(), Some(&token)),
        ))
    };
    let answer = outcome.await;
    crate::metrics::registration(match &answer {
        Ok(_) => "registered",
        Err(OAuthError::InvalidToken(_)) => "unauthorized",
        Err(OAuthError::InvalidClientMetadata(_) | OAuthError::InvalidRedirectUri(_)) => "invalid",
        Err(_) => "other",
    });
    answer.unwrap_or_else(|e| e.response())
}

/// The self-registered app the registration access token belongs to; anything else (no token,
/// another app's, a deleted app's) is `invalid_token`, never a hint that the app exists.
async fn registered(
    state: &AppState,
    req: &HttpRequest,
    client_id: &str,
) -> Result<Client, OAuthError> {
    let refused = || {
        OAuthError::InvalidToken(
            "The registration access token is not valid for this client".into(),
        )
    };
    let presented = bearer(req).ok_or_else(refused)?;
    let secret =
        PlainSecret::parse(REGISTRATION_TOKEN_PREFIX, &presented).map_err(|_| refused())?;
    let digest = state.digest_pepper.digest_secret(&secret);
    if client_id.contains('\0') || client_id.len() > 2000 {
        return Err(refused());
    }
    let id = client_id.to_owned();
    let client = state
        .db(move |c| clients::find(c, &id))
        .await?
        .ok_or_else(refused)?;
    let matches = client
        .registration_token_digest
        .as_deref()
        .is_some_and(|d| constant_time_eq(d.as_bytes(), digest.as_bytes()));
    if !matches || client.origin() != Origin::Dcr {
        return Err(refused());
    }
    Ok(client)
}

/// Read a registration (RFC 7592 §2.1)
#[utoipa::path(get, path = "/oauth/register/{client_id}", tag = "oauth",
    params(("client_id" = String, Path, description = "The registered app")),
    responses(
        (status = 200, description = "The registration as it stands (no secrets)", body = RegistrationResponse),
        (status = 401, description = "`invalid_token`: not this app's registration access token, or the app is gone", body = OAuthErrorBody),
        (status = 404, description = "The path holds control characters (an HTML page, no JSON)"),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ),
    security(("registration_access_token" = [])))]
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    match registered(&state, &req, &path).await {
        Ok(client) => json_answer(
            actix_web::http::StatusCode::OK,
            &answer(&state, &client, None, None),
        ),
        Err(e) => e.response(),
    }
}

/// Change a registration (RFC 7592 §2.2)
///
/// The body replaces every field (absent: the default); `client_id` must be the app's, a
/// `client_secret`, if sent, its current one. Whether the app has a secret cannot change.
#[utoipa::path(put, path = "/oauth/register/{client_id}", tag = "oauth",
    params(("client_id" = String, Path, description = "The registered app")),
    request_body(content = ClientMetadata, content_type = "application/json"),
    responses(
        (status = 200, description = "The registration as changed", body = RegistrationResponse),
        (status = 400, description = "`invalid_redirect_uri` or `invalid_client_metadata`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_token`", body = OAuthErrorBody),
        (status = 404, description = "The path holds control characters (an HTML page, no JSON)"),
        (status = 413, description = "The body is too large", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ),
    security(("registration_access_token" = [])))]
pub async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let outcome = async {
        let client = registered(&state, &req, &path).await?;
        if client.disabled_at.is_some() {
            return Err(OAuthError::InvalidToken(
                "The app is disabled: its registration cannot be changed (it may still delete itself)"
                    .into(),
            ));
        }
        let metadata = parse_metadata(&body.map_err(|e| unreadable(&e))?)?;
        if metadata.client_id.as_deref() != Some(client.id.as_str()) {
            return Err(metadata_error("client_id must be sent, and be this app's"));
        }
        if let Some(secret) = &metadata.client_secret
            && !client.secret_matches(&state.digest_pepper, secret, state.now())
        {
            return Err(metadata_error(
                "client_secret is not this app's current secret",
            ));
        }
        let machine = state.settings.registration.mode == RegistrationMode::Token
            || client.allows_grant("client_credentials");
        let valid = validate(metadata, &grantable(&state).await?, machine)?;
        let options = replaced_keys(&state, &client, &valid)?;
        let (id, now) = (client.id.clone(), state.now());
        let uris: Vec<String> = valid
            .redirect_uris
            .iter()
            .map(|u| u.as_str().into())
            .collect();
        let metadata = serde_json::to_string(&valid.description).unwrap_or_else(|_| "{}".into());
        let updated = state
            .db(move |c| {
                crate::db::write_transaction(c, |c| {
                    let registered = clients::Registered {
                        name: &valid.name,
                        redirect_uris: &uris,
                        scopes: &valid.scopes,
                        grant_types: &valid.grant_types,
                        metadata: &metadata,
                        options: &options,
                    };
                    clients::update_registered(c, &id, &registered, now)?;
                    let mut event = audit::NewEvent::new(Action::ClientRegistrationChanged);
                    event.details = json!({ "client_id": id, "name": valid.name });
                    audit::record(c, &event, now)?;
                    clients::find(c, &id)
                })
            })
            .await?
            .ok_or_else(|| OAuthError::InvalidToken("The app is gone".into()))?;
        state.key_cache.invalidate_all();
        state.forget_web_origins();
        Ok(json_answer(
            actix_web::http::StatusCode::OK,
            &answer(&state, &updated, None, None),
        ))
    };
    outcome.await.unwrap_or_else(|e| e.response())
}

/// Delete a registration (RFC 7592 §2.3)
///
/// The app, its users' grants and its refresh tokens go; its access tokens are refused from
/// now on; its registration access token stops working.
#[utoipa::path(delete, path = "/oauth/register/{client_id}", tag = "oauth",
    params(("client_id" = String, Path, description = "The registered app")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`invalid_token`", body = OAuthErrorBody),
        (status = 404, description = "The path holds control characters (an HTML page, no JSON)"),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ),
    security(("registration_access_token" = [])))]
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> HttpResponse {
    let outcome = async {
        let client = registered(&state, &req, &path).await?;
        let mut event = audit::NewEvent::new(Action::ClientRegistrationDeleted);
        event.details = json!({ "client_id": client.id, "name": client.name });
        crate::clients::manage::remove(&state, &client.id, event).await?;
        Ok(HttpResponse::NoContent()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish())
    };
    outcome.await.unwrap_or_else(|e: OAuthError| e.response())
}

pub use gatehouse_core::clients::registration_tokens::*;

#[cfg(test)]
mod tests {
    use super::*;

    fn grantable() -> ScopeSet {
        ScopeSet::parse("read:users write:orders openid").unwrap()
    }

    fn meta(v: serde_json::Value) -> ClientMetadata {
        serde_json::from_value(v).unwrap()
    }

    fn code(e: Result<Validated, OAuthError>) -> &'static str {
        e.err().map_or("ok", |e| e.code())
    }

    #[test]
    fn a_minimal_public_registration_gets_defaults() {
        let v = validate(
            meta(json!({"redirect_uris": ["http://127.0.0.1:33418/callback"], "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"], "client_name": "Agent"})),
            &grantable(),
            true,
        )
        .unwrap();
        assert_eq!(v.client_type, ClientType::Public);
        assert_eq!(v.scopes, grantable());
        assert_eq!(v.name, "Agent");
        let confidential = validate(
            meta(json!({"redirect_uris": ["https://a.example/cb"]})),
            &grantable(),
            true,
        )
        .unwrap();
        assert_eq!(confidential.client_type, ClientType::Confidential);
        assert_eq!(confidential.grant_types, vec!["authorization_code"]);
    }

    #[test]
    fn redirect_uris_follow_the_registered_apps_rules() {
        for uris in [
            json!(["http://app.example.com/cb"]),
            json!(["https://app.example.com/cb#frag"]),
            json!(["https://*.example.com/cb"]),
            json!([]),
            json!(["not a url"]),
        ] {
            assert_eq!(
                code(validate(
                    meta(json!({"redirect_uris": uris})),
                    &grantable(),
                    true
                )),
                "invalid_redirect_uri",
                "{uris}"
            );
        }
        assert_eq!(
            code(validate(meta(json!({})), &grantable(), true)),
            "invalid_redirect_uri"
        );
    }

    #[test]
    fn contradictory_or_unsupported_metadata_is_refused() {
        for m in [
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code"], "response_types": ["token"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["client_credentials"], "response_types": ["code"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["authorization_code"], "response_types": []}),
            json!({"grant_types": ["refresh_token"], "response_types": []}),
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["implicit"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "grant_types": ["password"]}),
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
            json!({"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "magic"}),
            json!({"redirect_uris": ["https://a.example/cb"], "scope": "admin:users"}),
            json!({"redirect_uris": ["https://a.example/cb"], "logo_uri": "http://a.example/logo.png"}),
            json!({"redirect_uris": ["https://a.example/cb"], "tos_uri": "javascript:alert(1)"}),
            json!({"redirect_uris": ["https://a.example/cb"], "client_name": "x".repeat(101)}),
        ] {
            assert_eq!(
                code(validate(meta(m.clone()), &grantable(), true)),
                "invalid_client_metadata",
                "{m}"
            );
        }
        let machine = validate(
            meta(json!({"grant_types": ["client_credentials"]})),
            &grantable(),
            true,
        )
        .unwrap();
        assert!(machine.redirect_uris.is_empty());
    }
}
