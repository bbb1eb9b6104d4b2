//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009), for every credential
//! Gatehouse issues: JWT access tokens, refresh tokens and API keys. A resource server asks one
//! question whatever the caller presented.
//!
//! Who may ask:
//! - a confidential client, about the tokens issued to it; a client whose allowed scopes include
//!   the admin-only `introspect` scope (a trusted resource server) about every credential;
//! - a Bearer credential of an admin that carries `introspect` (a restricted key or an access
//!   token with that scope, or an admin's unrestricted secret key).
//!
//! Who may revoke (the policy's `RevokeCredential`): a client, the tokens issued to it; a user
//! (any Bearer credential of theirs), their own access tokens, refresh tokens and API keys;
//! holders of `introspect` (admins' credentials, trusted resource servers), any. Unknown, malformed or already-dead tokens: 200, as RFC 7009 asks.

use crate::oauth::error::Respond;
use crate::token::read_body;
use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::model::User;
use crate::api_keys::format::{Kind, Mode};
use crate::api_keys::{self, KeyUse, Refusal, Verified};
use crate::audit;
use crate::clients::{Client, ClientType};
use crate::grants::audit::{RevokedToken, Revoker, token_revoked};
use crate::grants::{self, deny_grants, family_policy};
use crate::jwt::AccessClaims;
use crate::policy::{self, Allowed, Denied, Role};
use crate::principal::{Principal, authenticate, looks_like_jwt};
use crate::state::AppState;
use crate::token::{OAuthError, OAuthErrorBody, authenticate_client};

/// Who is asking.
enum Caller {
    Client(Arc<Client>),
    User(Principal),
}

impl Caller {
    /// Ask the policy about this caller.
    fn authorize(&self, action: policy::Action<'_>) -> Result<Allowed, Denied> {
        match self {
            Caller::Client(client) => {
                let scopes = client.scopes();
                // An app acting as itself: its own workspace if private, else none.
                let workspace = client.workspace_id.as_deref().map(|id| (id, false));
                let app = policy::Bound::App {
                    client_id: &client.id,
                    scopes: &scopes,
                };
                let caller = policy::Caller::bound(None, Role::Member, app, workspace);
                policy::authorize(&caller, action)
            }
            Caller::User(p) => policy::authorize(&p.caller(), action),
        }
    }

    /// May ask about (or revoke) credentials that are not its own.
    fn sees_everything(&self) -> bool {
        self.authorize(policy::Action::InspectAnyCredential).is_ok()
    }

    /// Who acts, for the audit log.
    fn actor(&self, req: &HttpRequest) -> audit::Actor {
        let ip = crate::http::client_ip::client_ip(req).map(|ip| ip.to_string());
        match self {
            Caller::Client(c) => audit::Actor {
                client_id: Some(c.id.clone()),
                ip,
                ..audit::Actor::default()
            },
            Caller::User(p) => p.actor(ip),
        }
    }
}

impl Caller {
    /// Who revoked, for the audit log.
    fn revoker(&self, req: &HttpRequest) -> Revoker {
        let ip = crate::http::client_ip::client_ip(req).map(|ip| ip.to_string());
        match self {
            Caller::Client(c) => Revoker {
                client_id: Some(c.id.clone()),
                ip,
                ..Revoker::default()
            },
            Caller::User(p) => Revoker {
                user_id: Some(p.user.id.clone()),
                key_id: p.key_id().map(str::to_owned),
                ip,
                ..Revoker::default()
            },
        }
    }
}

/// A credential, whoever it belongs to.
enum Presented {
    AccessToken(Box<AccessClaims>),
    Refresh(Box<grants::RefreshLookup>),
    ApiKey(Arc<crate::cache::KeyRecord>, Option<Refusal>),
    /// Not ours, malformed, unknown, or expired beyond recognition.
    Nothing,
}

async fn identify(
    state: &AppState,
    token: &str,
    allow_expired: bool,
) -> Result<Presented, OAuthError> {
    if looks_like_jwt(token) {
        let now = state.now().and_utc().timestamp();
        // A token verified before (here or at /v1) is answered from memory until it expires.
        if !allow_expired && let Some(verified) = state.key_cache.get_token(token, now) {
            return Ok(Presented::AccessToken(Box::new(verified.claims.clone())));
        }
        let ring = state.key_ring();
        let verified = if allow_expired {
            ring.verify_ignoring_expiry(token, &state.settings.issuer, &state.settings.audiences())
        } else {
            ring.verify_for_any(token, &state.settings.issuer, &state.settings.audiences())
        };
        // Expiry against this server's clock too (the library reads the system's).
        return Ok(match verified {
            Ok(claims) if allow_expired || claims.exp > now => {
                if !allow_expired {
                    let cached = Arc::new(crate::jwt::VerifiedToken::new(claims.clone()));
                    state.key_cache.put_token(token, cached, now);
                }
                Presented::AccessToken(Box::new(claims))
            }
            _ => Presented::Nothing,
        });
    }
    if token.starts_with(grants::REFRESH_PREFIX) {
        let (pepper, presented) = (state.digest_pepper.clone(), token.to_owned());
        let found = state
            .db(move |c| grants::find_refresh(c, &pepper, &presented))
            .await?;
        return Ok(found.map_or(Presented::Nothing, |r| Presented::Refresh(Box::new(r))));
    }
    Ok(
        match api_keys::verify(state, token, KeyUse::Introspection).await? {
            Verified::Valid(record) => Presented::ApiKey(record, None),
            Verified::Refused(record, why) => Presented::ApiKey(record, Some(why)),
            _ => Presented::Nothing,
        },
    )
}

/// The caller: Bearer credentials (an API key or access token of a user), else client
/// authentication as at the token endpoint.
async fn caller(
    state: &AppState,
    req: &HttpRequest,
    body: &HashMap<String, String>,
) -> Result<Caller, OAuthError> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if bearer || req.headers().contains_key("x-api-key") {
        let ip = crate::http::client_ip::client_ip(req);
        return authenticate(state, req, ip)
            .await
            .map(Caller::User)
            .map_err(|_| OAuthError::new("invalid_client", "The Bearer credential is not valid"));
    }
    authenticate_client(state, req, body)
        .await
        .map(Caller::Client)
}

fn required_token(body: &HashMap<String, String>) -> Result<&str, OAuthError> {
    body.get("token")
        .map(String::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::new("invalid_request", "token is required"))
}

/// What `POST /oauth/introspect` and `POST /oauth/revoke` read, form-encoded or as a JSON
/// object (the handlers read it as names and values: this type only describes it).
#[derive(ToSchema)]
#[schema(example = json!({ "token": "rt_9Rk2mQ7xL0pZ4vN8sT1yW6cB3hJ5dF2gA7e" }))]
pub struct TokenQuestion {
    /// The credential asked about: an access token, a refresh token or an API key.
    #[schema(min_length = 1)]
    pub token: String,
    /// Revocation refuses any other value (`unsupported_token_type`); introspection ignores
    /// it (RFC 7662 §2.1 lets it).
    #[schema(required = false)]
    pub token_type_hint: CredentialType,
    /// Client authentication by `client_secret_post` (or `none` for a public client's
    /// revocation).
    #[schema(required = false)]
    pub client_id: String,
    #[schema(required = false)]
    pub client_secret: String,
}

/// RFC 7662 §2.2. `{"active": false}` for anything revoked, expired, malformed, unknown or not
/// the caller's to see; otherwise the members of its `token_type`.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<CredentialType>,
    /// Space-separated (an access or refresh token's, a restricted key's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user id (the client id for a `client_credentials` token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The user's email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Unix time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Unix time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// API keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub livemode: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted: Option<bool>,
    /// An API key's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An API key's IP allowlist (reported, not applied to the asker).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_ips: Option<Vec<String>>,
    /// An API key's allowed origins and host patterns, for the resource server to match
    /// against its request's `Origin` (then `Referer`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_referrers: Option<Vec<String>>,
    /// An API key's allowed `METHOD /path` patterns, for the resource server to match against
    /// its own request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_endpoints: Option<Vec<String>>,
    /// The workspace the credential acts in, with its user's role there (as the access
    /// token's `workspace` claim has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspaces::WorkspaceClaim>,
    /// A token from a delegating exchange (RFC 8693 §4.1): who acts for `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub act: Option<serde_json::Value>,
    /// RFC 9449 §6.2: a DPoP-bound token's key (`{"jkt": …}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub cnf: Option<crate::jwt::Confirmation>,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CredentialType {
    AccessToken,
    RefreshToken,
    ApiKey,
}

/// RFC 7009 §2.2: an empty object, also for a token that was unknown or already dead.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {}

fn inactive() -> HttpResponse {
    answer(Introspection::default())
}

fn answer(body: impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

fn utc_seconds(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

async fn user(state: &AppState, id: &str) -> Result<Option<Arc<User>>, OAuthError> {
    Ok(state.user(id).await?.map(|(user, _)| user))
}

/// Introspection (RFC 7662)
///
/// For every credential Gatehouse issues: access tokens, refresh tokens and API keys. A
/// confidential client asks about the tokens issued to it; a client allowed `introspect`, or
/// an admin's Bearer credential holding `introspect`, about any.
#[utoipa::path(post, path = "/oauth/introspect", tag = "oauth",
    security(("client_basic" = []), ("bearer" = ["introspect"]), ("api_key_header" = ["introspect"]), ()),
    request_body(content(
        (TokenQuestion = "application/x-www-form-urlencoded"),
        (TokenQuestion = "application/json"),
    )),
    responses(
        (status = 200, description = "What the credential is, or `{\"active\": false}`", body = Introspection),
        (status = 400, description = "`invalid_request`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: no valid client authentication or Bearer credential", body = OAuthErrorBody),
        (status = 403, description = "`insufficient_scope`: a Bearer credential without `introspect`", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn introspect(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let result = async {
        let body = read_body(&req, body)?;
        let caller = caller(&state, &req, &body).await?;
        if let Caller::Client(client) = &caller
            && client.client_type() != ClientType::Confidential
        {
            return Err(OAuthError::new(
                "invalid_client",
                "Introspection needs a confidential client",
            ));
        }
        if let Caller::User(_) = &caller
            && !caller.sees_everything()
        {
            return Err(OAuthError::new(
                "insufficient_scope",
                "Introspection needs an admin's key or token with the introspect scope",
            ));
        }
        let token = required_token(&body)?;
        let everything = caller.sees_everything();
        let own_client = match &caller {
            Caller::Client(c) => Some(c.id.as_str()),
            Caller::User(_) => None,
        };
        let visible = |client_id: &str| everything || own_client == Some(client_id);
        let now = state.now();
        match identify(&state, token, false).await? {
            Presented::AccessToken(claims) if visible(&claims.client_id) => {
                access_token(&state, *claims, now).await
            }
            Presented::Refresh(found)
                if visible(&found.family.client_id)
                    && found.is_active(family_policy(&state), now) =>
            {
                refresh_token(&state, *found).await
            }
            // The caller's address is not the key's: an allowlist does not make it inactive.
            Presented::ApiKey(record, refusal)
                if everything && refusal.is_none_or(|r| r == Refusal::IpNotAllowed) =>
            {
                Ok(api_key(&record))
            }
            _ => Ok(inactive()),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.response())
}

/// An access token's answer: active while it is not revoked, its app exists and is enabled and
/// its user is not disabled.
async fn access_token(
    state: &AppState,
    claims: AccessClaims,
    now: chrono::NaiveDateTime,
) -> Result<HttpResponse, OAuthError> {
    // The same answer /v1 gives: revocations made here at once, elsewhere within
    // the 5-second sync.
    if state.denylist.is_revoked(&claims.jti, utc_seconds(now)) {
        return Ok(inactive());
    }
    let mut out = Introspection {
        active: true,
        token_type: Some(CredentialType::AccessToken),
        scope: Some(claims.scope),
        client_id: Some(claims.client_id.clone()),
        sub: Some(claims.sub.clone()),
        iss: Some(claims.iss),
        aud: Some(claims.aud),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        jti: Some(claims.jti),
        workspace: claims.workspace,
        act: claims.act,
        cnf: claims.cnf,
        ..Introspection::default()
    };
    if let Some(key) = claims.key {
        // Exchanged for an API key: its bounds, as a key's answer reports them.
        out.key_id = Some(key.id);
        out.livemode = Some(key.livemode);
        out.allowed_ips = (!key.allowed_ips.is_empty()).then_some(key.allowed_ips);
    }
    // The app must still exist and be enabled (a key holder's own exchange names
    // the key, whose revocation the denylist carries).
    let keys_own = out.key_id.as_deref() == Some(claims.client_id.as_str());
    if !keys_own {
        let app = state.client(&claims.client_id).await?;
        if app.is_none_or(|c| c.disabled_at.is_some()) {
            return Ok(inactive());
        }
    }
    if !claims.sub.starts_with("cli_") {
        match user(state, &claims.sub).await? {
            Some(u) if !u.is_disabled() => out.username = Some(u.email.clone()),
            _ => return Ok(inactive()),
        }
    }
    Ok(answer(out))
}

/// A refresh token's answer: active while its app exists and is enabled and its user is not
/// disabled.
async fn refresh_token(
    state: &AppState,
    found: grants::RefreshLookup,
) -> Result<HttpResponse, OAuthError> {
    let app = state.client(&found.family.client_id).await?;
    if app.is_none_or(|c| c.disabled_at.is_some()) {
        return Ok(inactive());
    }
    let Some(u) = user(state, &found.family.user_id)
        .await?
        .filter(|u| !u.is_disabled())
    else {
        return Ok(inactive());
    };
    Ok(answer(Introspection {
        active: true,
        token_type: Some(CredentialType::RefreshToken),
        exp: Some(utc_seconds(found.expires_at(family_policy(state)))),
        iat: Some(utc_seconds(found.created_at)),
        scope: Some(found.scopes),
        client_id: Some(found.family.client_id),
        sub: Some(found.family.user_id),
        username: Some(u.email.clone()),
        ..Introspection::default()
    }))
}

/// An API key's answer (to a caller that sees everything).
fn api_key(record: &crate::cache::KeyRecord) -> HttpResponse {
    let key = &record.key;
    let restricted = key.kind() == Kind::Restricted;
    answer(Introspection {
        active: true,
        token_type: Some(CredentialType::ApiKey),
        key_id: Some(key.id.clone()),
        livemode: Some(key.mode() == Mode::Live),
        restricted: Some(restricted),
        scope: restricted.then(|| record.scopes.to_storage()),
        sub: Some(key.user_id.clone()),
        username: Some(record.user.email.clone()),
        iat: Some(utc_seconds(key.created_at)),
        exp: key.expires_at.map(utc_seconds),
        name: Some(key.name.to_string()),
        allowed_ips: (!record.nets.is_empty())
            .then(|| record.nets.iter().map(ToString::to_string).collect()),
        allowed_referrers: (!record.restrictions.referrers.is_empty())
            .then(|| record.restrictions.referrer_strings()),
        allowed_endpoints: (!record.restrictions.endpoints.is_empty())
            .then(|| record.restrictions.endpoint_strings()),
        workspace: record.workspace.clone(),
        ..Introspection::default()
    })
}

/// Revocation (RFC 7009)
///
/// Refresh tokens (the whole grant), access tokens (their `jti`) and API keys. A client revokes
/// the tokens issued to it; a user, with any Bearer credential of theirs, their own; holders
/// of `introspect`, any. An unknown or dead token is answered 200 too.
#[utoipa::path(post, path = "/oauth/revoke", tag = "oauth",
    security(("client_basic" = []), ("bearer" = []), ("api_key_header" = []), ()),
    request_body(content(
        (TokenQuestion = "application/x-www-form-urlencoded"),
        (TokenQuestion = "application/json"),
    )),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke", body = Revoked),
        (status = 400, description = "`invalid_request`, `unsupported_token_type`, or `unauthorized_client` (the token is not the caller's)", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let result = async {
        let body = read_body(&req, body)?;
        let named = body.get("client_id").map(String::as_str);
        crate::http::cors::admit_for_app(&req, &state, named).await?;
        let caller = caller(&state, &req, &body).await?;
        let token = required_token(&body)?;
        if let Some(hint) = body.get("token_type_hint")
            && !matches!(hint.as_str(), "access_token" | "refresh_token" | "api_key")
        {
            return Err(OAuthError::new(
                "unsupported_token_type",
                "token_type_hint is access_token, refresh_token or api_key",
            ));
        }
        match identify(&state, token, true).await? {
            Presented::AccessToken(claims) => revoke_access(&state, &caller, &req, &claims).await?,
            Presented::Refresh(found) => revoke_refresh(&state, &caller, &req, *found).await?,
            Presented::ApiKey(record, _) => revoke_key(&state, &caller, &req, &record).await?,
            Presented::Nothing => {}
        }
        Ok(answer(Revoked {}))
    }
    .await;
    result.unwrap_or_else(|e| e.response())
}

fn not_yours() -> OAuthError {
    OAuthError::new(
        "unauthorized_client",
        "The token was not issued to the caller",
    )
}

/// Whether the caller may revoke what `client_id` holds for `user_id`.
fn may_revoke(caller: &Caller, client_id: &str, user_id: &str) -> bool {
    caller
        .authorize(policy::Action::RevokeCredential {
            user_id,
            client_id: Some(client_id),
        })
        .is_ok()
}

/// An access token: its `jti` is denied until it would have expired anyway.
async fn revoke_access(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    claims: &AccessClaims,
) -> Result<(), OAuthError> {
    if !may_revoke(caller, &claims.client_id, &claims.sub) {
        return Err(not_yours());
    }
    let now = state.now();
    let exp = chrono::DateTime::from_timestamp(claims.exp + 60, 0)
        .map(|t| t.naive_utc())
        .unwrap_or(now);
    if exp > now {
        crate::grants::deny(state, vec![(claims.jti.clone(), exp)]).await?;
        let revoked = RevokedToken {
            token_type: "access_token",
            client_id: claims.client_id.clone(),
            user_id: claims.sub.clone(),
            reference: claims.jti.clone(),
        };
        token_revoked(state, caller.revoker(req), revoked).await;
    }
    Ok(())
}

/// A refresh token: its whole family ends, and the access tokens issued under it.
async fn revoke_refresh(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    found: grants::RefreshLookup,
) -> Result<(), OAuthError> {
    let family = found.family;
    if !may_revoke(caller, &family.client_id, &family.user_id) {
        return Err(not_yours());
    }
    let now = state.now();
    let ids = vec![family.id.clone()];
    let stored = ids.clone();
    let changed = state
        .db(move |c| grants::revoke_families(c, &stored, now, "revoked"))
        .await?;
    deny_grants(state, &ids).await;
    if changed > 0 {
        let revoked = RevokedToken {
            token_type: "refresh_token",
            client_id: family.client_id.clone(),
            user_id: family.user_id.clone(),
            reference: family.id.clone(),
        };
        token_revoked(state, caller.revoker(req), revoked).await;
    }
    Ok(())
}

/// An API key, as the key service revokes it (audited, forgotten at once).
async fn revoke_key(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    record: &crate::cache::KeyRecord,
) -> Result<(), OAuthError> {
    let allowed = caller
        .authorize(policy::Action::RevokeCredential {
            user_id: &record.key.user_id,
            client_id: None,
        })
        .map_err(|_| not_yours())?;
    // The cache keeps only what verification reads; the revocation (and its audit event)
    // works on the row as it is now.
    let id = record.key.id.clone();
    let current = state
        .db(move |c| crate::api_keys::model::find(c, &id))
        .await?;
    if let Some(key) = current.filter(|k| k.revoked_at.is_none()) {
        crate::api_keys::service::revoke(state, allowed, &caller.actor(req), key)
            .await
            .map_err(|e| {
                log::error!("revocation of an API key failed: {e}");
                OAuthError::new(
                    "temporarily_unavailable",
                    "The server cannot complete the request now",
                )
            })?;
    }
    Ok(())
}
