//! Who is calling. `Principal` resolves the caller of a `/v1` route (today from the browser
//! session; API keys and JWTs plug in as further `Credential`s); `SignedIn` does the same for
//! pages and sends anyone not signed in to the login page.

use crate::http::errors::HttpStatus;
use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};

use std::net::IpAddr;
use std::sync::Arc;

use actix_web::HttpMessage;

use crate::accounts::model::{User, UserView};
use crate::accounts::session_cookie_name;
use crate::accounts::sessions::{Session, find_live_session};
use crate::api_keys::{self, Refusal, Verified};
use crate::cache::KeyRecord;
use crate::config::KeyPolicy;
use crate::db::{DbConn, DbError};
use crate::http::{ApiError, ErrorCode};
use crate::jwt::VerifiedToken;
use crate::pages::{Nav, session_csrf_token};
use crate::policy::{self, Action, Allowed, Bound, Caller, KeyBounds, Reach, Role};
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Credential {
    Session {
        session_id: String,
    },
    /// A verified API key with its owner, shared with the verification cache.
    ApiKey(Arc<KeyRecord>),
    /// A JWT access token issued to an OAuth client on the user's behalf.
    AccessToken {
        client_id: String,
        scopes: Arc<ScopeSet>,
        /// Unix time.
        expires_at: i64,
        /// The workspace the authorization was made in (`personal`: the user's own).
        workspace: Option<Arc<str>>,
        personal: bool,
        /// A token exchanged for an API key: the key's bounds, which the token keeps.
        key: Option<Arc<crate::jwt::TokenKey>>,
        /// DPoP: the key the token is bound to (every request proved it).
        jkt: Option<Arc<str>>,
    },
}

#[derive(Debug, Clone)]
pub struct Principal {
    /// Shared with the key cache: a request costs no copy of the user.
    pub user: Arc<User>,
    pub credential: Credential,
    /// The user as `/v1` shows them, when already rendered (the key cache keeps one).
    rendered: Option<Arc<UserView>>,
}

impl Principal {
    /// The holder of a verified API key.
    pub fn of_key(record: Arc<KeyRecord>) -> Principal {
        Principal {
            user: record.user.clone(),
            rendered: Some(record.user_view.clone()),
            credential: Credential::ApiKey(record),
        }
    }

    /// The caller's ids for the access log.
    pub fn logged(&self) -> crate::logs::LoggedCaller {
        crate::logs::LoggedCaller {
            user_id: self.user.id.clone(),
            credential_id: match &self.credential {
                Credential::Session { .. } => None,
                Credential::ApiKey(record) => Some(record.key.id.clone()),
                Credential::AccessToken { client_id, .. } => Some(client_id.clone()),
            },
        }
    }

    /// The caller as `/v1` shows users.
    pub fn user_view(&self) -> Arc<UserView> {
        self.rendered
            .clone()
            .unwrap_or_else(|| Arc::new(self.user.view()))
    }

    /// The caller as the policy weighs it.
    pub fn caller(&self) -> Caller<'_> {
        let role = Role::of(self.user.is_admin());
        let Credential::AccessToken {
            client_id,
            scopes,
            expires_at,
            key,
            workspace,
            personal,
            ..
        } = &self.credential
        else {
            return match &self.credential {
                Credential::ApiKey(record) => record.caller(),
                _ => Caller::session(&self.user.id, role),
            };
        };
        let expires_at = chrono::DateTime::from_timestamp(*expires_at, 0)
            .map_or(chrono::NaiveDateTime::MIN, |t| t.naive_utc());
        let credential = match key {
            // A token exchanged for a key is weighed as a restricted key holding the token's
            // scopes, in the key's mode, until the token expires.
            Some(key) => Bound::Key(KeyBounds {
                key_id: &key.id,
                kind: crate::api_keys::format::Kind::Restricted,
                mode: if key.test_mode {
                    crate::api_keys::format::Mode::Test
                } else {
                    crate::api_keys::format::Mode::Live
                },
                scopes,
                expires_at: Some(expires_at),
                nets: &key.nets,
                rate_limit_per_minute: key.rate_limit_per_minute,
                restrictions: &policy::attenuate::NO_RESTRICTIONS,
            }),
            None => Bound::AppToken {
                client_id,
                scopes,
                expires_at,
            },
        };
        let workspace = workspace.as_deref().map(|id| (id, *personal));
        Caller::bound(Some(&self.user.id), role, credential, workspace)
    }

    /// Ask the policy whether this caller may do `action`.
    pub fn authorize(&self, action: Action<'_>) -> Result<Allowed, ApiError> {
        policy::authorize(&self.caller(), action).map_err(ApiError::from)
    }

    /// Where this credential reaches: a session every workspace of the user's, a key or an
    /// app's token the one it is bound to (a user's token naming none: none).
    pub fn workspace(&self) -> Reach<'_> {
        match &self.credential {
            Credential::Session { .. } => Reach::Everywhere,
            Credential::ApiKey(record) => Reach::Workspace {
                id: &record.key.workspace_id,
                personal: record.in_personal_workspace(),
            },
            Credential::AccessToken {
                workspace: Some(id),
                personal,
                ..
            } => Reach::Workspace {
                id,
                personal: *personal,
            },
            Credential::AccessToken {
                workspace: None, ..
            } => Reach::Nowhere,
        }
    }

    /// The scopes of an access token (`None` for keys and sessions).
    pub fn token_scopes(&self) -> Option<&ScopeSet> {
        match &self.credential {
            Credential::AccessToken { scopes, .. } => Some(scopes),
            _ => None,
        }
    }

    pub fn key_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::ApiKey(record) => Some(&record.key.id),
            Credential::AccessToken { key: Some(key), .. } => Some(&key.id),
            Credential::Session { .. } | Credential::AccessToken { .. } => None,
        }
    }

    /// Who acts, for the audit log.
    pub fn actor(&self, ip: Option<String>) -> crate::audit::Actor {
        crate::audit::Actor {
            user_id: Some(self.user.id.clone()),
            key_id: self.key_id().map(str::to_owned),
            client_id: self.client_id().map(str::to_owned),
            ip,
            via: None,
        }
    }

    /// The app acting for the user, when the caller is an app's access token.
    pub fn client_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::AccessToken { client_id, .. } => Some(client_id),
            Credential::Session { .. } | Credential::ApiKey(_) => None,
        }
    }

    /// The rate-limit subject and per-minute allowance of this caller.
    fn rate_subject(&self, policy: &KeyPolicy, sensitive: bool) -> (String, u32) {
        let (subject, override_limit) = match &self.credential {
            Credential::ApiKey(record) => (
                format!("key:{}", record.key.id),
                record.key.rate_limit_per_minute,
            ),
            Credential::Session { .. } => (format!("user:{}", self.user.id), None),
            // A token exchanged for a key spends the key's own allowance.
            Credential::AccessToken { key: Some(key), .. } => {
                (format!("key:{}", key.id), key.rate_limit_per_minute)
            }
            Credential::AccessToken { client_id, .. } => {
                (format!("token:{client_id}:{}", self.user.id), None)
            }
        };
        if sensitive {
            (
                format!("{subject}:sensitive"),
                policy.sensitive_rate_limit_per_minute,
            )
        } else {
            let limit = override_limit.map_or(policy.rate_limit_per_minute, |l| {
                u32::try_from(l).unwrap_or(u32::MAX)
            });
            (subject, limit)
        }
    }
}

fn app_state(req: &HttpRequest) -> Option<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned()
}

/// The live session named by the request's cookie, if any.
async fn session_of(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, ApiError> {
    let Some(cookie) = req.cookie(session_cookie_name(&state.settings)) else {
        return Ok(None);
    };
    let value = cookie.value().to_owned();
    let pepper = state.digest_pepper.clone();
    let idle = state.settings.session_idle;
    let at = state.now();
    Ok(state
        .db(move |c| find_live_session(c, &pepper, &value, at, idle))
        .await?)
}

/// A browser session may change state through `/v1` only from our own pages: a request with
/// a foreign `Origin` is refused even though SameSite=Lax already keeps the cookie off most
/// cross-site requests.
fn same_origin_or_safe(req: &HttpRequest, issuer: &str) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        None => true,
        Some(origin) => {
            issuer.starts_with(origin)
                && issuer[origin.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '/')
        }
    }
}

/// Query parameters that would carry a credential in the URL.
const URL_CREDENTIAL_PARAMS: &[&str] = &["api_key", "key", "access_token", "apikey", "token"];

/// What credential the request carries in its headers.
enum Presented {
    Nothing,
    Key(String),
    /// `Authorization: DPoP <token>` (RFC 9449 §7.1).
    Dpop(String),
    Malformed(&'static str),
}

fn presented_credential(req: &HttpRequest) -> Presented {
    let in_url = req
        .query_string()
        .split('&')
        .filter_map(|kv| kv.split('=').next())
        .any(|name| {
            URL_CREDENTIAL_PARAMS
                .iter()
                .any(|p| p.eq_ignore_ascii_case(name))
        });
    if in_url {
        return Presented::Malformed(
            "Credentials in the URL are refused: send the key in the Authorization header (Bearer or ApiKey) or in X-API-Key",
        );
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        // UTF-8 (with its ASCII fast path) rather than `to_str`'s byte-by-byte check: the
        // credential's own parser or verifier decides what is valid in it.
        let Ok(value) = std::str::from_utf8(value.as_bytes()) else {
            return Presented::Malformed("The Authorization header is not valid text");
        };
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
        let token = token.trim();
        let dpop = scheme.eq_ignore_ascii_case("dpop");
        if !(dpop || scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("apikey"))
        {
            return Presented::Malformed(
                "Use Authorization: Bearer <key> or Authorization: ApiKey <key> (DPoP <token> for a DPoP-bound token)",
            );
        }
        if token.is_empty() {
            return Presented::Malformed(
                "The Authorization header has no credential after its scheme",
            );
        }
        if dpop {
            return Presented::Dpop(token.to_owned());
        }
        return Presented::Key(token.to_owned());
    }
    if let Some(value) = req.headers().get("x-api-key") {
        return match value.to_str().map(str::trim) {
            Ok(v) if !v.is_empty() => Presented::Key(v.to_owned()),
            _ => Presented::Malformed("The X-API-Key header is empty or not valid text"),
        };
    }
    Presented::Nothing
}

/// A JWT's first part is a base64url JSON object (`eyJ`); API keys start with their prefix.
/// (The rest of its shape is the verifier's business, on a cache miss.)
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ")
}

/// A bearer token that came in a form body (RFC 6750 §2.2), not a header: an access token is
/// checked as in a header; anything else is not an access token.
pub(crate) async fn bearer_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if looks_like_jwt(token) {
        let principal = access_token_principal(state, token).await?;
        if let Credential::AccessToken { jkt: Some(_), .. } = &principal.credential {
            return Err(ApiError::new(
                ErrorCode::InvalidDpopProof,
                "This access token is bound to a DPoP key: send it as Authorization: DPoP with a proof",
            ));
        }
        Ok(principal)
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidCredential,
            "Only an access token may be sent in the body",
        ))
    }
}

/// Verify an access token against our keys (signature, `typ`, `iss`, `aud`, expiry) and load
/// its user, who must still be enabled.
async fn access_token_principal(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    let (outcome, result) = check_access_token(state, token).await;
    crate::metrics::credential_checked(crate::metrics::Checked::AccessToken, outcome);
    result
}

/// The caller an access token names, with the outcome for the metrics.
async fn check_access_token(
    state: &AppState,
    token: &str,
) -> (&'static str, Result<Principal, ApiError>) {
    let now = state.now().and_utc().timestamp();
    let verified = match verified_token(state, token, now) {
        Ok(verified) => verified,
        Err((outcome, refusal)) => return (outcome, Err(refusal)),
    };
    let claims = &verified.claims;
    if let Err((outcome, refusal)) = usable_here(state, &verified, now) {
        return (outcome, Err(refusal));
    }
    // A token an app exchanged for an API key is that app's as well: it ends when the app is
    // disabled or deleted (its grants' tokens end with the grants; a key holder's own exchange
    // names the key as its client, and the key's revocation is on the denylist).
    if let Some(key) = &verified.key
        && key.id != claims.client_id
    {
        match state.client(&claims.client_id).await {
            Ok(Some(app)) if app.disabled_at.is_none() => {}
            Ok(_) => return ("client_disabled", Err(token_refused())),
            Err(e) => return ("error", Err(e.into())),
        }
    }
    let (user, view) = match state.user(&claims.sub).await {
        Ok(Some((user, view))) if !user.is_disabled() => (user, view),
        Ok(_) => return ("user_disabled", Err(token_refused())),
        Err(e) => return ("error", Err(e.into())),
    };
    (
        "valid",
        Ok(Principal {
            user,
            credential: Credential::AccessToken {
                client_id: claims.client_id.clone(),
                scopes: verified.scopes.clone(),
                expires_at: claims.exp,
                workspace: verified.workspace_id.clone(),
                personal: verified.workspace_personal,
                key: verified.key.clone(),
                jkt: verified.jkt.clone(),
            },
            rendered: Some(view),
        }),
    )
}

fn token_refused() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidCredential,
        "Invalid or expired access token",
    )
}

/// The token's verified claims: checked once (signature, issuer, expiry, one of this
/// server's audiences), then answered from memory until it expires.
fn verified_token(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Arc<VerifiedToken>, (&'static str, ApiError)> {
    if let Some(verified) = state.key_cache.get_token(token, now) {
        return Ok(verified);
    }
    let issuer = &state.settings.issuer;
    match state
        .key_ring()
        .verify(token, issuer, state.settings.token_audience())
    {
        Ok(claims) => {
            let verified = Arc::new(VerifiedToken::new(claims));
            state.key_cache.put_token(token, verified.clone(), now);
            Ok(verified)
        }
        Err(e) => {
            log::debug!("access token refused: {e}");
            Err((e.outcome(), token_refused()))
        }
    }
}

/// What `/v1` checks of a verified token on every use, cached or not: its audience (the cache
/// holds tokens verified for any of this server's audiences; introspection fills it too), that
/// it acts for a user, and that it is not revoked (a revocation takes effect at once).
fn usable_here(
    state: &AppState,
    verified: &VerifiedToken,
    now: i64,
) -> Result<(), (&'static str, ApiError)> {
    let claims = &verified.claims;
    if claims.aud != state.settings.token_audience() {
        return Err((
            "audience",
            ApiError::new(
                ErrorCode::InvalidCredential,
                "This access token is for another resource server",
            ),
        ));
    }
    if claims.sub.starts_with("cli_") {
        return Err((
            "app_token",
            ApiError::new(
                ErrorCode::Forbidden,
                "A client_credentials token acts for an app, not a user: the Gatehouse API needs a user's token",
            ),
        ));
    }
    if state.denylist.is_revoked(&claims.jti, now) {
        return Err((
            "revoked",
            ApiError::new(
                ErrorCode::InvalidCredential,
                "This access token has been revoked",
            ),
        ));
    }
    Ok(())
}

/// RFC 9449 §7: the request's DPoP proof, made with the key the token is bound to, for this
/// method and URL, with `ath` the token's hash, fresh, and not seen before on this instance.
fn dpop_proven(
    state: &AppState,
    req: &HttpRequest,
    token: &str,
    jkt: &str,
) -> Result<(), ApiError> {
    use crate::jwt::dpop::{self, Expected};
    let refused = |why: &'static str| ApiError::new(ErrorCode::InvalidDpopProof, why);
    let mut headers = req.headers().get_all("dpop");
    let proof = headers
        .next()
        .ok_or_else(|| refused("A DPoP-bound token needs a DPoP proof header"))?;
    if headers.next().is_some() {
        return Err(refused("Send one DPoP header, not several"));
    }
    let proof = proof
        .to_str()
        .map_err(|_| refused("The DPoP header is not text"))?;
    let now = state.now().and_utc().timestamp();
    let url = format!("{}{}", state.settings.issuer, req.uri().path());
    let expected = Expected {
        method: req.method().as_str(),
        url: &url,
        access_token: Some(token),
        nonce_required: false,
        now,
    };
    let proof = dpop::verify(proof, &expected, &state.csrf_pepper, &state.dpop_headers)
        .map_err(|e| refused(e.message()))?;
    if proof.jkt != jkt {
        return Err(refused(
            "The DPoP proof was made with another key than the token is bound to",
        ));
    }
    if !state.dpop_replay.first_use(&proof, now) {
        return Err(refused(
            "This DPoP proof was used before: make a new one for each request",
        ));
    }
    Ok(())
}

/// A token exchanged for a key with an allowlist is usable where the key is.
fn key_allows(principal: &Principal, ip: Option<IpAddr>) -> Result<(), ApiError> {
    if let Credential::AccessToken { key: Some(key), .. } = &principal.credential
        && !key.nets.is_empty()
        && !api_keys::model::ip_allowed(&key.nets, ip)
    {
        return Err(ApiError::of(ErrorCode::IpNotAllowed));
    }
    Ok(())
}

/// Creating, rolling and revoking keys get the stricter allowance.
fn is_sensitive(req: &HttpRequest) -> bool {
    let path = req.path();
    let keys_path = path.starts_with("/v1/api-keys")
        || (path.starts_with("/v1/users/") && path.ends_with("/api-keys"));
    keys_path && matches!(*req.method(), Method::POST | Method::DELETE)
}

pub(crate) async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    match presented_credential(req) {
        Presented::Malformed(message) => {
            Err(ApiError::new(ErrorCode::MalformedCredential, message))
        }
        Presented::Dpop(token) => {
            if !looks_like_jwt(&token) {
                return Err(ApiError::new(
                    ErrorCode::MalformedCredential,
                    "Only an access token is sent with the DPoP scheme",
                ));
            }
            let principal = access_token_principal(state, &token).await?;
            let Credential::AccessToken { jkt: Some(jkt), .. } = &principal.credential else {
                return Err(ApiError::new(
                    ErrorCode::InvalidDpopProof,
                    "This access token is not bound to a DPoP key: send it as Bearer",
                ));
            };
            dpop_proven(state, req, &token, jkt)?;
            key_allows(&principal, ip)?;
            Ok(principal)
        }
        Presented::Key(token) if looks_like_jwt(&token) => {
            let principal = access_token_principal(state, &token).await?;
            if let Credential::AccessToken { jkt: Some(_), .. } = &principal.credential {
                return Err(ApiError::new(
                    ErrorCode::InvalidDpopProof,
                    "This access token is bound to a DPoP key: send it as Authorization: DPoP with a proof",
                ));
            }
            key_allows(&principal, ip)?;
            Ok(principal)
        }
        Presented::Key(key) => key_principal(state, req, &key, ip).await,
        Presented::Nothing => session_principal(state, req).await,
    }
}

/// The caller an API key names, checked against its restrictions (address, origin, endpoint).
async fn key_principal(
    state: &AppState,
    req: &HttpRequest,
    key: &str,
    ip: Option<IpAddr>,
) -> Result<Principal, ApiError> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let seen = api_keys::Seen {
        ip,
        origin: header(actix_web::http::header::ORIGIN),
        referer: header(actix_web::http::header::REFERER),
        method: req.method().as_str(),
        path: req.uri().path(),
    };
    let invalid = || ApiError::new(ErrorCode::InvalidCredential, "Invalid or expired API key");
    let from_a_page = seen.origin.is_some();
    match api_keys::verify(state, key, api_keys::KeyUse::Request(seen)).await? {
        Verified::Valid(record) => {
            // A restricted key limited to web origins was just checked against this page's:
            // its answer is readable there (never an `sk_` key's: a referrer is no secret).
            if from_a_page
                && record.key.kind() == crate::api_keys::format::Kind::Restricted
                && !record.restrictions.referrers.is_empty()
            {
                crate::http::cors::mark_readable(req);
            }
            Ok(Principal::of_key(record))
        }
        Verified::NotAKey => Err(ApiError::new(
            ErrorCode::MalformedCredential,
            "The credential is not a Gatehouse API key",
        )),
        Verified::BadChecksum | Verified::Unknown => Err(invalid()),
        Verified::Refused(_, Refusal::IpNotAllowed) => Err(ApiError::of(ErrorCode::IpNotAllowed)),
        Verified::Refused(_, Refusal::ReferrerNotAllowed) => {
            Err(ApiError::of(ErrorCode::ReferrerNotAllowed))
        }
        Verified::Refused(_, Refusal::EndpointNotAllowed) => {
            Err(ApiError::of(ErrorCode::EndpointNotAllowed))
        }
        Verified::Refused(_, _) => Err(invalid()),
    }
}

/// The signed-in user of a same-origin browser request without a credential.
async fn session_principal(state: &AppState, req: &HttpRequest) -> Result<Principal, ApiError> {
    let Some((session, user)) = session_of(state, req).await? else {
        return Err(ApiError::of(ErrorCode::NotAuthenticated));
    };
    if !same_origin_or_safe(req, &state.settings.issuer) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "A browser session cannot be used from another origin",
        ));
    }
    if user.password_change_required {
        return Err(ApiError::of(ErrorCode::PasswordChangeRequired));
    }
    Ok(Principal {
        user: Arc::new(user),
        credential: Credential::Session {
            session_id: session.id,
        },
        rendered: None,
    })
}

/// The caller of a `/v1` request as the gate found it, for the handler's `Principal`.
struct Gated(Result<Principal, ApiError>);

/// The rate-limit subject and allowance of a request: its caller's, or its address's when it
/// presents nothing valid.
fn rate_subject_of(
    state: &AppState,
    req: &HttpRequest,
    result: &Result<Principal, ApiError>,
    ip: Option<IpAddr>,
) -> (String, u32) {
    let policy = &state.settings.keys;
    let sensitive = is_sensitive(req);
    match result {
        Ok(principal) => principal.rate_subject(policy, sensitive),
        Err(_) => {
            let ip = ip.map(|i| i.to_canonical().to_string()).unwrap_or_default();
            let limit = if sensitive {
                policy.sensitive_rate_limit_per_minute
            } else {
                policy.rate_limit_per_minute
            };
            (format!("ip:{ip}"), limit)
        }
    }
}

/// `/v1` middleware: authenticate the caller once, count the request against its allowance
/// (its key's, its user's, or its address's), refuse a spent allowance with 429 before any
/// handler runs, and leave the caller for the handler's `Principal`. Rate limiting lives here,
/// not in the extractor, so that it applies whatever the handler extracts.
pub async fn v1_gate<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let Some(state) = app_state(req.request()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let ip = crate::http::client_ip::client_ip(req.request());
    let result = authenticate(&state, req.request(), ip).await;
    let (subject, per_minute) = rate_subject_of(&state, req.request(), &result, ip);
    let decision = state.rate_limits.check(subject, per_minute).await;
    req.extensions_mut().insert(decision);
    if let Some(retry_after) = decision.retry_after {
        crate::metrics::rate_limited("credential");
        let refusal = ApiError::new(
            ErrorCode::RateLimited,
            format!("Too many requests: retry in {retry_after} s"),
        )
        .with_retry_after(retry_after);
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    if let (Ok(principal), true) = (&result, crate::logs::access_enabled()) {
        req.extensions_mut().insert(principal.logged());
    }
    req.extensions_mut().insert(Gated(result));
    Ok(next.call(req).await?.map_into_left_body())
}

/// The extractor's future: behind the gate (every `/v1` route) the caller is already known and
/// no future is allocated; elsewhere the credential is authenticated here.
pub enum PrincipalFuture {
    Ready(Option<Result<Principal, ApiError>>),
    Authenticating(Pin<Box<dyn Future<Output = Result<Principal, ApiError>>>>),
}

impl Future for PrincipalFuture {
    type Output = Result<Principal, ApiError>;

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.get_mut() {
            PrincipalFuture::Ready(result) => std::task::Poll::Ready(
                result
                    .take()
                    .unwrap_or_else(|| Err(ApiError::internal("Principal polled twice"))),
            ),
            PrincipalFuture::Authenticating(future) => future.as_mut().poll(cx),
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = PrincipalFuture;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        if let Some(Gated(result)) = req.extensions_mut().remove::<Gated>() {
            return PrincipalFuture::Ready(Some(result));
        }
        let req = req.clone();
        PrincipalFuture::Authenticating(Box::pin(async move {
            let state = app_state(&req).ok_or_else(|| ApiError::internal("AppState missing"))?;
            let ip = crate::http::client_ip::client_ip(&req);
            authenticate(&state, &req, ip).await
        }))
    }
}

/// A signed-in user on a page, with the session's CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub csrf_token: String,
}

impl SignedIn {
    /// The page's user as a caller of the shared key operations.
    pub fn principal(&self) -> Principal {
        Principal {
            user: Arc::new(self.user.clone()),
            credential: Credential::Session {
                session_id: self.session.id.clone(),
            },
            rendered: None,
        }
    }

    pub fn nav(&self, current: &'static str) -> Nav {
        Nav {
            display_name: self.user.display_name.clone(),
            is_admin: self.user.is_admin(),
            csrf_token: self.csrf_token.clone(),
            current,
        }
    }
}

/// Why a page could not be shown to the caller as they are.
#[derive(Debug)]
pub enum PageAccess {
    /// Not signed in: go to the login page, then come back here.
    Login {
        next: Option<String>,
    },
    /// Must choose a new password first.
    ChangePassword,
    Failed(ApiError),
}

impl std::fmt::Display for PageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sign-in required")
    }
}

impl ResponseError for PageAccess {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        let location = match self {
            PageAccess::Login { next: Some(next) } => format!("/login?next={}", urlencode(next)),
            PageAccess::Login { next: None } => "/login".to_owned(),
            PageAccess::ChangePassword => "/account".to_owned(),
            PageAccess::Failed(e) => {
                return crate::pages::error_page(
                    e.code.status(),
                    "Something went wrong",
                    "Gatehouse could not complete this request. Try again in a moment.",
                );
            }
        };
        crate::pages::see_other(&location)
    }
}

/// Percent-encode everything but unreserved characters and `/`.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A request's session cookie and what a page needs to answer without one, taken before any
/// trip to the database: the `SignedIn` extractor resolves it in a trip of its own, a handler
/// with a trip to make anyway (the authorization endpoint) resolves it in that one.
pub struct SessionCookie {
    value: Option<String>,
    /// Where the login page sends the user back (GET requests only; not `/`).
    next: Option<String>,
    /// Pages under `/account` (and `/logout`) stay open to a user who must change password.
    open_before_password_change: bool,
    pepper: crate::secrets::Pepper,
    csrf_pepper: crate::secrets::Pepper,
    at: chrono::NaiveDateTime,
    idle: chrono::Duration,
}

impl SessionCookie {
    pub fn of(state: &AppState, req: &HttpRequest) -> SessionCookie {
        let next = (req.method() == Method::GET)
            .then(|| {
                let uri = req.uri();
                uri.path_and_query()
                    .map_or(uri.path(), |pq| pq.as_str())
                    .to_owned()
            })
            .filter(|n| n != "/");
        let path = req.path();
        SessionCookie {
            value: req
                .cookie(session_cookie_name(&state.settings))
                .map(|c| c.value().to_owned()),
            next,
            open_before_password_change: path.starts_with("/account") || path == "/logout",
            pepper: state.digest_pepper.clone(),
            csrf_pepper: state.csrf_pepper.clone(),
            at: state.now(),
            idle: state.settings.session_idle,
        }
    }

    /// Whether the request carries a session cookie at all (without one, nothing to read).
    pub fn is_present(&self) -> bool {
        self.value.is_some()
    }

    /// Why a request without a session cookie cannot see the page.
    pub fn absent(self) -> PageAccess {
        PageAccess::Login { next: self.next }
    }

    /// The signed-in user, or why the page cannot be shown, on a connection the caller holds.
    pub fn resolve(self, c: &mut DbConn) -> Result<Result<SignedIn, PageAccess>, DbError> {
        let found = match &self.value {
            Some(value) => find_live_session(c, &self.pepper, value, self.at, self.idle)?,
            None => None,
        };
        let Some((session, user)) = found else {
            return Ok(Err(PageAccess::Login { next: self.next }));
        };
        if user.password_change_required && !self.open_before_password_change {
            return Ok(Err(PageAccess::ChangePassword));
        }
        let csrf_token = session_csrf_token(&self.csrf_pepper, &session.id);
        Ok(Ok(SignedIn {
            user,
            session,
            csrf_token,
        }))
    }

    /// `resolve` in a trip of its own.
    pub async fn signed_in(self, state: &AppState) -> Result<SignedIn, PageAccess> {
        if !self.is_present() {
            return Err(self.absent());
        }
        state
            .db(move |c| self.resolve(c))
            .await
            .map_err(|e| PageAccess::Failed(e.into()))?
    }
}

impl FromRequest for SessionCookie {
    type Error = PageAccess;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        std::future::ready(
            app_state(req)
                .map(|state| SessionCookie::of(&state, req))
                .ok_or_else(|| PageAccess::Failed(ApiError::internal("AppState missing"))),
        )
    }
}

impl FromRequest for SignedIn {
    type Error = PageAccess;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)
                .ok_or_else(|| PageAccess::Failed(ApiError::internal("AppState missing")))?;
            SessionCookie::of(&state, &req).signed_in(&state).await
        })
    }
}

impl From<crate::policy::Denied> for ApiError {
    fn from(d: crate::policy::Denied) -> ApiError {
        use crate::policy::Denied;
        match d {
            Denied::NotFound(what) => ApiError::not_found(what),
            Denied::MissingScope(scope) => ApiError::new(
                ErrorCode::Forbidden,
                format!("This credential lacks the scope {scope}"),
            ),
            Denied::AdminOnly => {
                ApiError::new(ErrorCode::Forbidden, "Only administrators may do this")
            }
            Denied::Broader(why) => ApiError::new(ErrorCode::Broader, why),
            Denied::NotWith(why) => ApiError::new(ErrorCode::Forbidden, why),
            Denied::AdminsIssueKeys => ApiError::of(ErrorCode::AdminsIssueKeys),
            Denied::WorkspaceRole(role) => ApiError::new(
                ErrorCode::Forbidden,
                format!("This needs the workspace role {} or higher", role.as_str()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_paths_readable_and_escapes_the_rest() {
        assert_eq!(
            urlencode("/oauth/authorize?a=b c&d"),
            "/oauth/authorize%3Fa%3Db%20c%26d"
        );
    }
}
