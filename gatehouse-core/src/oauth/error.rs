//! The errors of the OAuth endpoints (token, introspection, revocation, registration, device),
//! typed: each variant is one RFC 6749 §5.2 / RFC 7009 / RFC 6750 / RFC 7591 / RFC 8628 / RFC
//! 9449 code with its HTTP status. The server answers them as RFC JSON.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("The request body is too large")]
    BodyTooLarge,
    #[error("{0}")]
    InvalidClient(String),
    #[error("{0}")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("{0}")]
    UnsupportedGrantType(String),
    #[error("{0}")]
    UnsupportedTokenType(String),
    #[error("{0}")]
    InvalidScope(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    InsufficientScope(String),
    /// RFC 6750 §3.1: the bearer token is missing, not valid, or not one this endpoint takes
    /// (OpenID Connect UserInfo).
    #[error("{0}")]
    InvalidToken(String),
    #[error("{0}")]
    ServerError(String),
    #[error("The server cannot complete the request now")]
    TemporarilyUnavailable,
    /// 429 with `Retry-After` (RFC 8628's `slow_down`): the client or the address has used its
    /// allowance, as the per-address middleware answers (`http::open_limits`).
    #[error("Too many requests: try again in {0} seconds")]
    SlowDown(u64),
    /// RFC 7591 §3.2.2: a redirect URI a registration cannot have.
    #[error("{0}")]
    InvalidRedirectUri(String),
    /// RFC 7591 §3.2.2: any other metadata a registration cannot have.
    #[error("{0}")]
    InvalidClientMetadata(String),
    /// Registration is off on this server (404).
    #[error("{0}")]
    NotFound(String),
    /// RFC 8628 §3.5: the user has not decided yet; poll again after the interval.
    #[error("{0}")]
    AuthorizationPending(String),
    /// RFC 8628 §3.5 `slow_down` (400): polled faster than the interval, which grows by 5 s.
    #[error("{0}")]
    PollingTooFast(String),
    /// RFC 8628 §3.5: the user denied the device.
    #[error("{0}")]
    AccessDenied(String),
    /// RFC 8628 §3.5: the device code expired before the user decided.
    #[error("{0}")]
    ExpiredToken(String),
    /// RFC 9449 §5: the DPoP proof is missing, malformed, replayed or not for this request.
    #[error("{0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §8: retry with the nonce in `DPoP-Nonce` (the variant holds it).
    #[error("Send the nonce of the DPoP-Nonce header in the DPoP proof")]
    UseDpopNonce(String),
}

/// Every code the OAuth endpoints answer (the per-address limiter's `slow_down` included).
pub const CODES: &[&str] = &[
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_token_type",
    "invalid_scope",
    "invalid_target",
    "insufficient_scope",
    "invalid_token",
    "server_error",
    "temporarily_unavailable",
    "slow_down",
    "invalid_redirect_uri",
    "invalid_client_metadata",
    "not_found",
    "authorization_pending",
    "access_denied",
    "expired_token",
    "invalid_dpop_proof",
    "use_dpop_nonce",
];

/// An RFC 6749 §5.2 error body: `{"error": …, "error_description": …}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"error": "invalid_grant", "error_description": "The code has expired"}))]
pub struct OAuthErrorBody {
    #[schema(schema_with = error_code_schema)]
    pub error: &'static str,
    /// For people; may change.
    pub error_description: String,
}

fn error_code_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(CODES.iter().copied()))
        .into()
}

impl OAuthError {
    /// An error by its RFC code, for endpoints that name it (an unknown code is
    /// `invalid_request`).
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        let d = description.into();
        match error {
            "invalid_client" => OAuthError::InvalidClient(d),
            "invalid_grant" => OAuthError::InvalidGrant(d),
            "unauthorized_client" => OAuthError::UnauthorizedClient(d),
            "unsupported_grant_type" => OAuthError::UnsupportedGrantType(d),
            "unsupported_token_type" => OAuthError::UnsupportedTokenType(d),
            "invalid_scope" => OAuthError::InvalidScope(d),
            "invalid_target" => OAuthError::InvalidTarget(d),
            "insufficient_scope" => OAuthError::InsufficientScope(d),
            "server_error" => OAuthError::ServerError(d),
            "temporarily_unavailable" => OAuthError::TemporarilyUnavailable,
            _ => OAuthError::InvalidRequest(d),
        }
    }

    pub fn slow_down(retry_after: u64) -> Self {
        OAuthError::SlowDown(retry_after.max(1))
    }

    pub fn grant(description: impl Into<String>) -> Self {
        OAuthError::InvalidGrant(description.into())
    }

    /// The RFC code.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::BodyTooLarge => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::UnsupportedTokenType(_) => "unsupported_token_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::InvalidTarget(_) => "invalid_target",
            OAuthError::InsufficientScope(_) => "insufficient_scope",
            OAuthError::InvalidToken(_) => "invalid_token",
            OAuthError::ServerError(_) => "server_error",
            OAuthError::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthError::SlowDown(_) => "slow_down",
            OAuthError::InvalidRedirectUri(_) => "invalid_redirect_uri",
            OAuthError::InvalidClientMetadata(_) => "invalid_client_metadata",
            OAuthError::NotFound(_) => "not_found",
            OAuthError::AuthorizationPending(_) => "authorization_pending",
            OAuthError::PollingTooFast(_) => "slow_down",
            OAuthError::AccessDenied(_) => "access_denied",
            OAuthError::ExpiredToken(_) => "expired_token",
            OAuthError::InvalidDpopProof(_) => "invalid_dpop_proof",
            OAuthError::UseDpopNonce(_) => "use_dpop_nonce",
        }
    }

    /// The HTTP status it is answered with.
    pub fn http_status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient(_) | OAuthError::InvalidToken(_) => 401,
            OAuthError::InsufficientScope(_) => 403,
            OAuthError::BodyTooLarge => 413,
            OAuthError::ServerError(_) => 500,
            OAuthError::TemporarilyUnavailable => 503,
            OAuthError::SlowDown(_) => 429,
            OAuthError::NotFound(_) => 404,
            _ => 400,
        }
    }
}

impl From<crate::db::DbError> for OAuthError {
    fn from(e: crate::db::DbError) -> Self {
        log::error!("OAuth endpoint: {e}");
        OAuthError::TemporarilyUnavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_rfc_statuses() {
        for (code, status) in [
            ("invalid_client", 401),
            ("insufficient_scope", 403),
            ("invalid_grant", 400),
            ("unsupported_token_type", 400),
            ("temporarily_unavailable", 503),
            ("server_error", 500),
        ] {
            let e = OAuthError::new(code, "x");
            assert_eq!((e.code(), e.http_status()), (code, status));
        }
        assert_eq!(OAuthError::new("nonsense", "x").code(), "invalid_request");
    }

    #[test]
    fn the_documented_codes_are_the_codes_answered() {
        let every_variant = [
            OAuthError::InvalidRequest(String::new()),
            OAuthError::BodyTooLarge,
            OAuthError::InvalidClient(String::new()),
            OAuthError::InvalidGrant(String::new()),
            OAuthError::UnauthorizedClient(String::new()),
            OAuthError::UnsupportedGrantType(String::new()),
            OAuthError::UnsupportedTokenType(String::new()),
            OAuthError::InvalidScope(String::new()),
            OAuthError::InvalidTarget(String::new()),
            OAuthError::InsufficientScope(String::new()),
            OAuthError::InvalidToken(String::new()),
            OAuthError::ServerError(String::new()),
            OAuthError::TemporarilyUnavailable,
            OAuthError::SlowDown(1),
            OAuthError::InvalidRedirectUri(String::new()),
            OAuthError::InvalidClientMetadata(String::new()),
            OAuthError::NotFound(String::new()),
            OAuthError::AuthorizationPending(String::new()),
            OAuthError::PollingTooFast(String::new()),
            OAuthError::AccessDenied(String::new()),
            OAuthError::ExpiredToken(String::new()),
            OAuthError::InvalidDpopProof(String::new()),
            OAuthError::UseDpopNonce(String::new()),
        ];
        let answered: std::collections::BTreeSet<_> =
            every_variant.iter().map(OAuthError::code).collect();
        let documented: std::collections::BTreeSet<_> = CODES.iter().copied().collect();
        assert_eq!(answered, documented);
    }
}
