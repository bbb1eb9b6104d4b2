//! `POST /oauth/token` (RFC 6749 §3.2): the authorization-code grant (with PKCE) and the
//! refresh-token grant (rotation with reuse detection). Bodies may be form-encoded or JSON;
//! clients authenticate with `client_secret_basic`, `client_secret_post` or, if public,
//! `none`. Errors are RFC 6749 JSON.

use std::collections::HashMap;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::clients::{self, Client, ClientType};
use super::grants::{self, FamilyPolicy, Redemption, Refresh};
use crate::accounts::model;
use crate::audit::{self, Action, NewEvent};
use crate::ids::{IdKind, new_id};
use crate::jwt::{AccessClaims, denylist};
use crate::scopes::ScopeSet;
use crate::secrets::constant_time_eq;
use crate::state::AppState;

/// An RFC 6749 §5.2 error.
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let status = match error {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "insufficient_scope" => StatusCode::FORBIDDEN,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            error,
            description: description.into(),
        }
    }

    fn grant(description: &str) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            ));
        }
        response.json(json!({ "error": self.error, "error_description": self.description }))
    }
}

/// The body could not be read (too large, or the connection failed): RFC 6749 JSON, not the
/// `/v1` envelope.
impl From<actix_web::Error> for OAuthError {
    fn from(e: actix_web::Error) -> Self {
        let status = e.as_response_error().status_code();
        let mut error = OAuthError::new("invalid_request", "The request body cannot be read");
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            error.description = "The request body is too large".into();
            error.status = status;
        }
        error
    }
}

impl From<crate::db::DbError> for OAuthError {
    fn from(e: crate::db::DbError) -> Self {
        log::error!("token endpoint: {e}");
        OAuthError::new(
            "temporarily_unavailable",
            "The server cannot complete the request now",
        )
    }
}

/// The body as name → value, from a form or a JSON object.
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
            .map_err(|_| OAuthError::new("invalid_request", "The body is not valid JSON"))?;
        let object = value
            .as_object()
            .ok_or_else(|| OAuthError::new("invalid_request", "The body must be a JSON object"))?;
        Ok(object
            .iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k.clone(), s.clone())),
                serde_json::Value::Number(n) => Some((k.clone(), n.to_string())),
                _ => None,
            })
            .collect())
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| OAuthError::new("invalid_request", "The form body cannot be parsed"))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            if map.insert(k.clone(), v).is_some() {
                if k == "resource" {
                    return Err(OAuthError::new(
                        "invalid_target",
                        "Gatehouse issues a token for one resource at a time",
                    ));
                }
                return Err(OAuthError::new(
                    "invalid_request",
                    format!("The parameter {k} appears twice"),
                ));
            }
        }
        Ok(map)
    } else {
        Err(OAuthError::new(
            "invalid_request",
            "Send the body as application/x-www-form-urlencoded or application/json",
        ))
    }
}

/// `client_secret_basic`: `Basic base64(urlencoded id ":" urlencoded secret)`.
fn basic_credentials(req: &HttpRequest) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || {
        OAuthError::new(
            "invalid_client",
            "The Authorization header is not valid Basic credentials",
        )
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
pub(crate) async fn authenticate_client(
    state: &AppState,
    req: &HttpRequest,
    body: &HashMap<String, String>,
) -> Result<Arc<Client>, OAuthError> {
    let basic = basic_credentials(req)?;
    let post_secret = body.get("client_secret").cloned();
    if basic.is_some() && post_secret.is_some() {
        return Err(OAuthError::new(
            "invalid_request",
            "Use one client authentication method, not two",
        ));
    }
    let (client_id, secret) = match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (
            body.get("client_id").cloned().ok_or_else(|| {
                OAuthError::new("invalid_client", "Client authentication is required")
            })?,
            post_secret,
        ),
    };
    if let (Some(body_id), Some(_)) = (body.get("client_id"), &secret)
        && body_id != &client_id
    {
        return Err(OAuthError::new(
            "invalid_client",
            "client_id does not match the authenticated client",
        ));
    }
    let unknown = || OAuthError::new("invalid_client", "Client authentication failed");
    let client = load_client(state, &client_id).await?.ok_or_else(unknown)?;
    if client.disabled_at.is_some() {
        return Err(unknown());
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

/// A client from the cache or the database.
pub(crate) async fn load_client(
    state: &AppState,
    client_id: &str,
) -> Result<Option<Arc<Client>>, crate::db::DbError> {
    // Ids are printable; PostgreSQL text cannot hold NUL (the lookup would fail, not miss).
    if client_id.contains('\0') {
        return Ok(None);
    }
    if let Some(cached) = state.key_cache.get_client(client_id) {
        return Ok(Some(cached));
    }
    let lookup = client_id.to_owned();
    let found = state.db(move |c| clients::find(c, &lookup)).await?;
    Ok(found.map(|client| state.key_cache.put_client(client)))
}

fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An access token and a refresh token, as RFC 6749 §5.1 answers them.
fn token_response(
    access: String,
    expires_in: i64,
    refresh: &str,
    scopes: &ScopeSet,
) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": expires_in,
            "refresh_token": refresh,
            "scope": scopes.to_storage(),
        }))
}

/// RFC 8707: the audience a token request names in `resource` (one of the configured
/// resource servers), or the default audience.
/// An app may name only the resource servers an administrator bound to it.
fn audience_for(
    state: &AppState,
    client: &Client,
    body: &HashMap<String, String>,
) -> Result<String, OAuthError> {
    let Some(resource) = body.get("resource") else {
        return Ok(state.settings.token_audience().to_owned());
    };
    if !crate::config::valid_resource(resource) {
        return Err(OAuthError::new(
            "invalid_target",
            "resource must be an absolute URI without a fragment",
        ));
    }
    if !state.settings.audiences().contains(&resource.as_str()) {
        return Err(OAuthError::new(
            "invalid_target",
            "This server issues no tokens for that resource",
        ));
    }
    if resource != state.settings.token_audience() && !client.may_ask_for(resource) {
        return Err(OAuthError::new(
            "invalid_target",
            "This app may not ask for tokens for that resource: an administrator binds resource servers to apps",
        ));
    }
    Ok(resource.clone())
}

/// The audience of a grant bound to a resource at authorization: that resource, which the
/// token request may repeat but not change.
fn bound_audience(
    bound: Option<&str>,
    body: &HashMap<String, String>,
    requested: String,
) -> Result<String, OAuthError> {
    match (bound, body.get("resource")) {
        (None, _) => Ok(requested),
        (Some(bound), Some(asked)) if asked != bound => Err(OAuthError::new(
            "invalid_target",
            "The authorization was for another resource",
        )),
        (Some(bound), _) => Ok(bound.to_owned()),
    }
}

/// Sign an access token for `sub`; `grant` (the refresh family) goes into its `jti`, so that
/// revoking the grant revokes the token.
#[allow(clippy::too_many_arguments)]
fn mint(
    state: &AppState,
    client: &Client,
    sub: &str,
    scopes: &ScopeSet,
    auth_time: Option<chrono::NaiveDateTime>,
    grant: Option<&str>,
    aud: String,
) -> Result<(String, i64), OAuthError> {
    let now = state.now().and_utc().timestamp();
    let ttl = state.settings.access_token_ttl.num_seconds();
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: sub.to_owned(),
        aud,
        client_id: client.id.clone(),
        scope: scopes.to_storage(),
        iat: now,
        exp: now + ttl,
        jti: denylist::new_jti(grant),
        auth_time: auth_time.map(|t| t.and_utc().timestamp()),
    };
    let token = state.key_ring().sign(&claims).map_err(|e| {
        log::error!("signing an access token: {e}");
        OAuthError::new("server_error", "The token could not be signed")
    })?;
    Ok((token, ttl))
}

async fn authorization_code(
    state: &AppState,
    client: Arc<Client>,
    body: &HashMap<String, String>,
) -> Result<HttpResponse, OAuthError> {
    let code = body
        .get("code")
        .cloned()
        .ok_or_else(|| OAuthError::new("invalid_request", "code is required"))?;
    let aud = audience_for(state, &client, body)?;
    let (pepper, now) = (state.digest_pepper.clone(), state.now());
    let redeemed = match state
        .db(move |c| grants::redeem_code(c, &pepper, &code, now))
        .await?
    {
        Redemption::Redeemed(code) => code,
        Redemption::Replayed {
            client_id,
            user_id,
            families,
        } => {
            log::warn!(
                "authorization code replay detected for client {client_id}: its tokens are revoked"
            );
            deny_grants(state, &families).await;
            let details = json!({ "client_id": client_id, "presented_by": client.id, "families_revoked": families.len() });
            record(state, Action::CodeReplayDetected, &user_id, details).await;
            return Err(OAuthError::grant(
                "The code was already used; the tokens issued from it are revoked",
            ));
        }
        Redemption::Expired => return Err(OAuthError::grant("The code has expired")),
        Redemption::Unknown => return Err(OAuthError::grant("The code is not valid")),
    };
    if redeemed.client_id != client.id {
        return Err(OAuthError::grant("The code was issued to another client"));
    }
    if body.get("redirect_uri") != Some(&redeemed.redirect_uri) {
        return Err(OAuthError::grant(
            "redirect_uri does not match the authorization request",
        ));
    }
    match (
        redeemed.code_challenge.as_deref(),
        body.get("code_verifier"),
    ) {
        (Some(challenge), Some(verifier))
            if valid_verifier(verifier)
                && constant_time_eq(pkce_s256(verifier).as_bytes(), challenge.as_bytes()) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::grant(
                "The code_verifier does not match the code_challenge",
            ));
        }
        (Some(_), None) => return Err(OAuthError::grant("code_verifier is required")),
        (None, Some(_)) => {
            return Err(OAuthError::grant(
                "A code_verifier was sent for a code issued without a challenge",
            ));
        }
        (None, None) => {}
    }
    let user = state.user(&redeemed.user_id).await?.map(|(user, _)| user);
    if user.as_ref().is_none_or(|u| u.is_disabled()) {
        return Err(OAuthError::grant("The user can no longer sign in"));
    }
    let scopes = ScopeSet::parse(&redeemed.scopes).unwrap_or_default();
    let aud = bound_audience(redeemed.resource.as_deref(), body, aud)?;
    let family_id = new_id(IdKind::RefreshFamily);
    let (access, ttl) = mint(
        state,
        &client,
        &redeemed.user_id,
        &scopes,
        Some(redeemed.auth_time),
        Some(&family_id),
        aud,
    )?;
    let (pepper, now, policy) = (
        state.digest_pepper.clone(),
        state.now(),
        family_policy(state),
    );
    let (client_id, user_id, code_id, family_scopes, auth_time, resource) = (
        client.id.clone(),
        redeemed.user_id.clone(),
        redeemed.id.clone(),
        scopes.clone(),
        redeemed.auth_time,
        redeemed.resource.clone(),
    );
    let refresh = state
        .db(move |c| {
            grants::start_family(
                c,
                &pepper,
                &family_id,
                &client_id,
                &user_id,
                Some(&code_id),
                resource.as_deref(),
                &family_scopes,
                auth_time,
                policy,
                now,
            )
        })
        .await?;
    Ok(token_response(access, ttl, refresh.expose(), &scopes))
}

async fn refresh_token(
    state: &AppState,
    client: Arc<Client>,
    body: &HashMap<String, String>,
) -> Result<HttpResponse, OAuthError> {
    let presented = body
        .get("refresh_token")
        .cloned()
        .ok_or_else(|| OAuthError::new("invalid_request", "refresh_token is required"))?;
    let aud = audience_for(state, &client, body)?;
    let requested = match body
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        Some(raw) => Some(
            ScopeSet::parse(raw).map_err(|e| OAuthError::new("invalid_scope", e.to_string()))?,
        ),
        None => None,
    };
    let (pepper, now, client_id, policy) = (
        state.digest_pepper.clone(),
        state.now(),
        client.id.clone(),
        family_policy(state),
    );
    // One trip to the database: the rotation, and the user it is for unless cached.
    let cache = state.key_cache.clone();
    let (outcome, user) = state
        .db(move |c| {
            let outcome = grants::rotate(
                c,
                &pepper,
                &presented,
                &client_id,
                requested.as_ref(),
                policy,
                now,
            )?;
            let user = match &outcome {
                Refresh::Rotated { family, .. } => match cache.get_user(&family.user_id) {
                    Some((user, _)) => Some(user),
                    None => model::find_by_id(c, &family.user_id)?.map(|u| cache.put_user(u).0),
                },
                _ => None,
            };
            Ok((outcome, user))
        })
        .await?;
    match outcome {
        Refresh::Rotated {
            family,
            token,
            scopes,
        } => {
            if user.as_ref().is_none_or(|u| u.is_disabled()) {
                return Err(OAuthError::grant("The user can no longer sign in"));
            }
            // An app whose allowed scopes were narrowed since the approval gets only what it
            // may still have.
            let allowed = client.scopes();
            let scopes: ScopeSet = scopes
                .iter()
                .filter(|s| allowed.contains(s.as_str()))
                .cloned()
                .collect();
            if scopes.is_empty() {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "The app may no longer ask for any of the scopes this grant holds",
                ));
            }
            let aud = bound_audience(family.resource.as_deref(), body, aud)?;
            let (access, ttl) = mint(
                state,
                &client,
                &family.user_id,
                &scopes,
                Some(family.auth_time),
                Some(&family.id),
                aud,
            )?;
            Ok(token_response(access, ttl, token.expose(), &scopes))
        }
        Refresh::Reused { family_id, user_id } => {
            log::warn!(
                "refresh token reuse detected for client {}: the family is revoked",
                client.id
            );
            deny_grants(state, std::slice::from_ref(&family_id)).await;
            record(
                state,
                Action::RefreshReuseDetected,
                &user_id,
                json!({ "client_id": client.id, "family_id": family_id }),
            )
            .await;
            Err(OAuthError::grant(
                "The refresh token was already used; every token of this authorization is revoked",
            ))
        }
        Refresh::Invalid => Err(OAuthError::grant("The refresh token is not valid")),
        Refresh::ScopeWidened => Err(OAuthError::new(
            "invalid_scope",
            "A refresh may narrow the scope, never widen it",
        )),
    }
}

/// Revoke the access tokens issued under these grants: each is denied until the last token it
/// can have issued expires (a failure is logged; the refresh side is already revoked).
pub async fn deny_grants(state: &AppState, grants: &[String]) {
    if grants.is_empty() {
        return;
    }
    let until = state.now() + state.settings.access_token_ttl + chrono::Duration::minutes(1);
    let entries = grants.iter().map(|g| (g.clone(), until)).collect();
    if let Err(e) = deny(state, entries).await {
        log::error!("could not record revoked grants: {e}");
    }
}

/// Put `jti`s or grant ids on the denylist until the given times: this instance refuses them
/// at once, whatever the database says; the others when they next read the table.
pub async fn deny(
    state: &AppState,
    entries: Vec<(String, chrono::NaiveDateTime)>,
) -> Result<(), crate::db::DbError> {
    state.denylist.remember(entries.clone());
    let now = state.now();
    state.db(move |c| denylist::revoke(c, &entries, now)).await
}

/// RFC 6749 §4.4: a confidential client acting for itself. `sub` is the client id; no refresh
/// token (the client can always ask again).
fn client_credentials(
    state: &AppState,
    client: Arc<Client>,
    body: &HashMap<String, String>,
) -> Result<HttpResponse, OAuthError> {
    if client.client_type() != ClientType::Confidential {
        return Err(OAuthError::new(
            "unauthorized_client",
            "Only confidential clients may use client_credentials",
        ));
    }
    let allowed = client.scopes();
    let scopes = match body
        .get("scope")
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
    {
        None => allowed,
        Some(raw) => {
            let asked = ScopeSet::parse(raw)
                .map_err(|e| OAuthError::new("invalid_scope", e.to_string()))?;
            if let Some(extra) = asked.difference(&allowed).first() {
                return Err(OAuthError::new(
                    "invalid_scope",
                    format!("This client may not ask for {extra}"),
                ));
            }
            asked
        }
    };
    let aud = audience_for(state, &client, body)?;
    let (access, ttl) = mint(state, &client, &client.id, &scopes, None, None, aud)?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ttl,
            "scope": scopes.to_storage(),
        })))
}

pub(crate) fn family_policy(state: &AppState) -> FamilyPolicy {
    FamilyPolicy {
        reuse_grace: state.settings.refresh_grace,
        ..FamilyPolicy::default()
    }
}

/// An OAuth security event for the audit log (a failure to write it is logged, not fatal).
async fn record(state: &AppState, action: Action, user_id: &str, details: serde_json::Value) {
    let mut event = NewEvent::new(action);
    event.subject_user_id = Some(user_id.to_owned());
    event.details = details;
    let now = state.now();
    if let Err(e) = state.db(move |c| audit::record(c, &event, now)).await {
        log::error!("could not audit {}: {e}", action.as_str());
    }
}

pub async fn token(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let result = async {
        let body = parse_body(&req, &body?)?;
        let grant = body
            .get("grant_type")
            .cloned()
            .ok_or_else(|| OAuthError::new("invalid_request", "grant_type is required"))?;
        if !clients::GRANT_TYPES.contains(&grant.as_str()) {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                "Supported: authorization_code, refresh_token, client_credentials",
            ));
        }
        let client = authenticate_client(&state, &req, &body).await?;
        if !client.allows_grant(&grant) {
            return Err(OAuthError::new(
                "unauthorized_client",
                "This client may not use this grant",
            ));
        }
        match grant.as_str() {
            "authorization_code" => authorization_code(&state, client, &body).await,
            "refresh_token" => refresh_token(&state, client, &body).await,
            _ => client_credentials(&state, client, &body),
        }
    }
    .await;
    result.unwrap_or_else(|e| e.response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a+".repeat(30)));
    }
}
