//! How the OAuth endpoints answer an [`OAuthError`] (the core's typed RFC errors): RFC 6749
//! §5.2 JSON with its status, `Cache-Control: no-store`, `Retry-After` for `slow_down`,
//! `DPoP-Nonce` when a nonce is asked for, and `WWW-Authenticate` for 401s (`Bearer` for
//! `invalid_token`, `Basic` for `invalid_client`).

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};

pub use gatehouse_core::oauth::error::*;

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
