//! How the OAuth endpoints answer an [`OAuthError`] (the core's typed RFC errors): RFC 6749
//! §5.2 JSON with its status, `Cache-Control: no-store`, `Retry-After` for `slow_down`,
//! `DPoP-Nonce` when a nonce is asked for, and `WWW-Authenticate` for 401s (`Bearer` for
//! `invalid_token`, `Basic` for `invalid_client`).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

pub use gatehouse_core::oauth::error::*;

/// An [`OAuthError`] as an endpoint's answer: handlers return `Result<_, OAuthReply>` and `?`
/// turns the core's errors (and unreadable bodies) into it.
#[derive(Debug)]
pub struct OAuthReply(pub OAuthError);

impl std::fmt::Display for OAuthReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<OAuthError> for OAuthReply {
    fn from(e: OAuthError) -> Self {
        OAuthReply(e)
    }
}

impl From<crate::db::DbError> for OAuthReply {
    fn from(e: crate::db::DbError) -> Self {
        OAuthReply(e.into())
    }
}

/// The body could not be read (too large, or the connection failed): RFC 6749 JSON, not the
/// `/v1` envelope.
impl From<actix_web::Error> for OAuthReply {
    fn from(e: actix_web::Error) -> Self {
        OAuthReply(unreadable(&e))
    }
}

/// Why a body could not be read, as an OAuth error.
pub fn unreadable(e: &actix_web::Error) -> OAuthError {
    if e.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
        return OAuthError::BodyTooLarge;
    }
    OAuthError::InvalidRequest("The request body cannot be read".into())
}

/// An [`OAuthError`] answered as an HTTP response.
pub trait Respond {
    fn response(&self) -> HttpResponse;
}

impl Respond for OAuthError {
    fn response(&self) -> HttpResponse {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let OAuthError::SlowDown(seconds) = self {
            response.insert_header((header::RETRY_AFTER, *seconds));
        }
        if let OAuthError::UseDpopNonce(nonce) = self {
            response.insert_header(("DPoP-Nonce", nonce.as_str()));
        }
        if let OAuthError::InvalidToken(_) = self {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse\", error=\"invalid_token\""),
            ));
        } else if status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            ));
        }
        response.json(OAuthErrorBody {
            error: self.code(),
            error_description: self.to_string(),
        })
    }
}

impl ResponseError for OAuthReply {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        self.0.response()
    }
}
