//! OpenID Connect (Core 1.0) on the authorization-code flow: what an authorization request
//! adds (`nonce`, `max_age`, `id_token_hint`) and the ID token the token endpoint returns with
//! the access token when the grant holds `openid` (UserInfo answers in the server's `oidc::userinfo`).
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

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use utoipa::ToSchema;

use crate::accounts::model::User;
use crate::clients::Client;
use crate::oauth::error::OAuthError;
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
    pub workspace: Option<crate::workspaces::roles::WorkspaceClaim>,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// What a grant knows about the sign-in behind it.
pub struct SignIn<'a> {
    pub auth_time: NaiveDateTime,
    /// The authorization request's, at the code exchange only.
    pub nonce: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub workspace: Option<&'a crate::workspaces::roles::WorkspaceClaim>,
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
}
