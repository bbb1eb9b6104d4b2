//! OpenID Connect (Core 1.0) on the authorization-code flow: what an authorization request
//! adds (`nonce`, `max_age`, `id_token_hint`), the ID token the token endpoint returns with the
//! access token when the grant holds `openid`, and UserInfo.
//!
//! The rules, in one place:
//! - An ID token is issued only for a grant that holds `openid`: at the code exchange (with the
//!   request's `nonce`) and at every refresh (same `sub` and `auth_time`, no `nonce`).
//! - A sign-in (`openid`) gets a refresh token only if it also holds `offline_access`; a plain
//!   OAuth grant (no `openid`) always gets one, as before.
//! - Claims follow the scopes: `profile` → `name`, `preferred_username`, `updated_at`;
//!   `email` → `email`, `email_verified` (always `false`: Gatehouse does not verify
//!   addresses yet).
//! - `sub` is the user id (stable, public subject type); `sid` is the browser session the user
//!   approved in; `aud` is the client id alone, so `azp` is not needed.
//! - `acr_values` / `acr` are not supported yet (one authentication method: a password).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use utoipa::ToSchema;

use super::clients::Client;
use super::error::OAuthError;
use crate::accounts::model::User;
use crate::policy::{Action, Denied};
use crate::scopes::{Builtin, ScopeSet};
use crate::state::AppState;

/// The longest `nonce` kept (a client's random value; real ones are 16–64 characters).
const MAX_NONCE: usize = 512;

/// What an authorization request asks of OpenID Connect, checked.
pub struct Requested {
    pub nonce: Option<String>,
    pub max_age: Option<i64>,
    /// The `sub` of a valid `id_token_hint` issued to this client.
    pub hinted_sub: Option<String>,
}

/// The claims of an `id_token_hint` that matter.
#[derive(Deserialize)]
struct Hint {
    sub: String,
}

impl Requested {
    pub fn from_params(
        state: &AppState,
        client: &Client,
        nonce: Option<&str>,
        max_age: Option<&str>,
        id_token_hint: Option<&str>,
    ) -> Result<Requested, &'static str> {
        let nonce = nonce.filter(|n| !n.is_empty());
        if nonce.is_some_and(|n| n.len() > MAX_NONCE || n.chars().any(char::is_control)) {
            return Err("nonce must be at most 512 printable characters");
        }
        let max_age = match max_age.filter(|m| !m.is_empty()) {
            None => None,
            Some(raw) => Some(
                raw.parse::<u32>()
                    .map(i64::from)
                    .map_err(|_| "max_age must be a whole number of seconds")?,
            ),
        };
        let hinted_sub = match id_token_hint.filter(|h| !h.is_empty()) {
            None => None,
            Some(hint) => Some(
                state
                    .key_ring()
                    .verify_id_token_hint::<Hint>(hint, &state.settings.issuer, &client.id)
                    .map_err(|_| "id_token_hint is not an ID token this server issued to this app")?
                    .sub,
            ),
        };
        Ok(Requested {
            nonce: nonce.map(str::to_owned),
            max_age,
            hinted_sub,
        })
    }
}

/// The user claims a set of scopes releases (ID token and UserInfo alike).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct UserClaims {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Seconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl UserClaims {
    pub fn of(user: &User, scopes: &ScopeSet) -> UserClaims {
        let mut claims = UserClaims::default();
        if scopes.contains(Builtin::Profile.as_str()) {
            claims.name = Some(user.display_name.clone());
            claims.preferred_username = Some(user.email.clone());
            claims.updated_at = Some(user.updated_at.and_utc().timestamp());
        }
        if scopes.contains(Builtin::Email.as_str()) {
            claims.email = Some(user.email.clone());
            claims.email_verified = Some(false);
        }
        claims
    }
}

/// An ID token (Core §2).
#[derive(Debug, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The workspace the user signed in to the app in, with their role there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspaces::WorkspaceClaim>,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// What a grant knows about the sign-in behind it.
pub struct SignIn<'a> {
    pub auth_time: NaiveDateTime,
    /// The authorization request's, at the code exchange only.
    pub nonce: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub workspace: Option<&'a crate::workspaces::WorkspaceClaim>,
}

pub fn wants_id_token(scopes: &ScopeSet) -> bool {
    scopes.contains(Builtin::OpenId.as_str())
}

/// Whether a user's grant with these scopes gets a refresh token (see the module header).
pub fn gets_refresh_token(scopes: &ScopeSet) -> bool {
    !wants_id_token(scopes) || scopes.contains(Builtin::OfflineAccess.as_str())
}

/// `at_hash` (Core §3.1.3.6): the left half of the hash of the access token, with the hash of
/// the signing algorithm (SHA-256 for ES256 and RS256; SHA-512 for EdDSA over Ed25519).
pub fn at_hash(access_token: &str, alg: &str) -> String {
    if alg == "EdDSA" {
        let digest = Sha512::digest(access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..32])
    } else {
        let digest = Sha256::digest(access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    }
}

/// Sign the ID token that goes with `access_token`.
pub fn id_token(
    state: &AppState,
    client: &Client,
    user: &User,
    sign_in: SignIn<'_>,
    scopes: &ScopeSet,
    access_token: &str,
) -> Result<String, OAuthError> {
    let now = state.now().and_utc().timestamp();
    let ring = state.key_ring();
    let claims = IdClaims {
        iss: state.settings.issuer.clone(),
        sub: user.id.clone(),
        aud: client.id.clone(),
        exp: now + state.settings.access_token_ttl.num_seconds(),
        iat: now,
        auth_time: sign_in.auth_time.and_utc().timestamp(),
        nonce: sign_in.nonce.map(str::to_owned),
        at_hash: at_hash(access_token, ring.signing_alg()),
        sid: sign_in.session_id.map(str::to_owned),
        workspace: sign_in.workspace.cloned(),
        user: UserClaims::of(user, scopes),
    };
    let token = ring.sign_as(&claims, "JWT").map_err(|e| {
        log::error!("signing an ID token: {e}");
        OAuthError::ServerError("The ID token could not be signed".into())
    })?;
    crate::metrics::token_issued("id_token", ring.signing_alg());
    Ok(token)
}

/// What UserInfo answers (Core §5.3.2).
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub claims: UserClaims,
}

/// The form of `POST /oauth/userinfo` (RFC 6750 §2.2: the token in the body).
#[derive(Deserialize, Default)]
pub struct UserInfoForm {
    access_token: Option<String>,
}

/// An RFC 6750 §3 refusal: the status, `WWW-Authenticate` and a JSON body.
fn bearer_refusal(status: StatusCode, error: Option<&str>, description: &str) -> HttpResponse {
    let mut challenge = String::from("Bearer realm=\"gatehouse\"");
    if let Some(error) = error {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ));
        if error == "insufficient_scope" {
            challenge.push_str(", scope=\"openid\"");
        }
    }
    let mut answer = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        answer.insert_header((header::WWW_AUTHENTICATE, value));
    }
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    // Without any credential the challenge carries no error (RFC 6750 §3.1); the body still
    // says what is missing, as every OAuth error here does.
    let missing = OAuthError::InvalidToken(String::new());
    answer.json(serde_json::json!({
        "error": error.unwrap_or(missing.code()),
        "error_description": if error.is_some() { description } else { "No access token was sent" },
    }))
}

/// UserInfo (OpenID Connect Core §5.3)
///
/// The claims about the signed-in user that the access token's scopes release: `sub` always,
/// `profile` and `email` claims by scope. Only an app's access token with `openid`, for this
/// server's own API (the default audience), is answered; an API key, a client_credentials
/// token or a token for another resource server is `invalid_token` (401), a token without
/// `openid` is `insufficient_scope` (403), each with `WWW-Authenticate` (RFC 6750 §3).
#[utoipa::path(get, path = "/oauth/userinfo", tag = "oauth",
    security(("bearer" = ["openid"])),
    responses(
        (status = 200, description = "The claims", body = UserInfo),
        (status = 401, description = "No token, or not a valid access token for this server (`WWW-Authenticate: Bearer error=\"invalid_token\"`)", body = super::error::OAuthErrorBody),
        (status = 403, description = "The token lacks `openid` (`insufficient_scope`)", body = super::error::OAuthErrorBody),
    ))]
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    answer_userinfo(&req, &state, None).await
}

/// UserInfo, POST (OpenID Connect Core §5.3.1)
///
/// As `GET /oauth/userinfo`; the token may also come form-encoded as `access_token`
/// (RFC 6750 §2.2).
#[utoipa::path(post, path = "/oauth/userinfo", tag = "oauth",
    security(("bearer" = ["openid"])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "Optional: `access_token`"),
    responses(
        (status = 200, description = "The claims", body = UserInfo),
        (status = 400, description = "The token came twice (header and body)", body = super::error::OAuthErrorBody),
        (status = 401, description = "No token, or not a valid access token for this server", body = super::error::OAuthErrorBody),
        (status = 403, description = "The token lacks `openid` (`insufficient_scope`)", body = super::error::OAuthErrorBody),
    ))]
pub async fn userinfo_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form: UserInfoForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    answer_userinfo(&req, &state, form.access_token.filter(|t| !t.is_empty())).await
}

async fn answer_userinfo(
    req: &HttpRequest,
    state: &AppState,
    from_body: Option<String>,
) -> HttpResponse {
    let in_header = req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key("x-api-key");
    let principal = match (from_body, in_header) {
        (Some(_), true) => {
            return bearer_refusal(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "Send the access token once: in the Authorization header or in the body",
            );
        }
        (Some(token), false) => crate::principal::bearer_principal(state, &token).await,
        (None, true) => crate::principal::authenticate(state, req, None).await,
        (None, false) => {
            return bearer_refusal(StatusCode::UNAUTHORIZED, None, "No access token was sent");
        }
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            return bearer_refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"), &e.message);
        }
    };
    if let Err(denied) = crate::policy::authorize(&principal.caller(), Action::ReadUserInfo) {
        return match denied {
            Denied::MissingScope(_) => bearer_refusal(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                "The access token does not hold the openid scope",
            ),
            Denied::NotWith(why) => {
                bearer_refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"), why)
            }
            other => bearer_refusal(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                &crate::http::ApiError::from(other).message,
            ),
        };
    }
    static NO_SCOPES: ScopeSet = ScopeSet::EMPTY;
    let scopes = principal.token_scopes().unwrap_or(&NO_SCOPES);
    // `Cache-Control: no-store` comes with every answer that sets none (`mw::plumbing`).
    HttpResponse::Ok().json(UserInfoBody::of(&principal.user, scopes))
}

/// `UserInfo` as it is written on the hot path: borrowed from the cached user, no copies.
#[derive(Serialize)]
struct UserInfoBody<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

impl<'a> UserInfoBody<'a> {
    /// The same claims as [`UserClaims::of`] (a test holds them equal).
    fn of(user: &'a User, scopes: &ScopeSet) -> UserInfoBody<'a> {
        let profile = scopes.contains(Builtin::Profile.as_str());
        let email = scopes.contains(Builtin::Email.as_str());
        UserInfoBody {
            sub: &user.id,
            name: profile.then_some(user.display_name.as_str()),
            preferred_username: profile.then_some(user.email.as_str()),
            updated_at: profile.then(|| user.updated_at.and_utc().timestamp()),
            email: email.then_some(user.email.as_str()),
            email_verified: email.then_some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_algorithms_hash() {
        // Core §3.1.3.6 with SHA-256: 16 bytes, base64url without padding.
        let token = "eyJhbGciOiJFUzI1NiJ9.payload.signature";
        let full = Sha256::digest(token.as_bytes());
        assert_eq!(at_hash(token, "ES256"), URL_SAFE_NO_PAD.encode(&full[..16]));
        assert_eq!(at_hash(token, "RS256").len(), 22);
        assert_eq!(at_hash(token, "EdDSA").len(), 43);
        assert_ne!(at_hash(token, "ES256"), at_hash("another", "ES256"));
    }

    #[test]
    fn a_sign_in_gets_a_refresh_token_only_with_offline_access() {
        let s = |raw: &str| ScopeSet::parse(raw).unwrap();
        assert!(gets_refresh_token(&s("read:users")));
        assert!(!gets_refresh_token(&s("openid profile")));
        assert!(gets_refresh_token(&s("openid offline_access")));
    }

    #[test]
    fn userinfo_body_writes_the_same_claims_as_the_id_token() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let user = User {
            id: "usr_1".into(),
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            password_hash: "x".into(),
            role: "member".into(),
            password_change_required: false,
            created_at: at,
            updated_at: at,
            disabled_at: None,
        };
        for raw in [
            "openid",
            "openid profile",
            "openid email",
            "openid profile email",
        ] {
            let scopes = ScopeSet::parse(raw).unwrap();
            let documented = serde_json::to_value(UserInfo {
                sub: user.id.clone(),
                claims: UserClaims::of(&user, &scopes),
            })
            .unwrap();
            let written = serde_json::to_value(UserInfoBody::of(&user, &scopes)).unwrap();
            assert_eq!(written, documented, "{raw}");
        }
    }
}
