//! The `/v1` error catalogue and `ApiError`, which renders the seeds' error envelope:
//! `{"success": false, "error": {"code", "message", "doc_url"}, "meta": {"request_id", "timestamp"}}`.
//! Every code here has a section in `docs/errors.md` (a unit test checks it).

use std::borrow::Cow;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use super::context;

pub use crate::errors::ErrorCode;

/// The status an error code is answered with, as the server speaks it.
pub trait HttpStatus {
    fn status(self) -> StatusCode;
}

impl HttpStatus for ErrorCode {
    fn status(self) -> StatusCode {
        StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// An error answered to a `/v1` caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: Cow<'static, str>,
    /// For validation errors: which field.
    pub field: Option<&'static str>,
    pub retry_after: Option<u64>,
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn of(code: ErrorCode) -> Self {
        Self::new(code, code.title())
    }

    pub fn validation(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            field: Some(field),
            ..Self::new(ErrorCode::Validation, message)
        }
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A failure that is ours, not the caller's: logged with its cause, answered generically.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let request_id = context::current()
            .map(|c| c.request_id.to_string())
            .unwrap_or_default();
        log::error!("internal error (request {request_id}): {cause}");
        Self::of(ErrorCode::Internal)
    }

    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }

    /// The JSON body of the envelope.
    /// The JSON body of the envelope.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(self.envelope(&context::current())).unwrap_or_default()
    }

    fn envelope<'a>(&'a self, ctx: &'a Option<context::RequestContext>) -> ErrorEnvelope<'a> {
        let issuer = ctx.as_ref().map_or("", |c| &c.issuer);
        ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: self.code,
                message: &self.message,
                doc_url: format!("{issuer}/docs/errors#{}", self.code.as_str()),
                field: self.field,
            },
            meta: Meta {
                request_id: ctx.as_ref().map_or("", |c| &c.request_id),
                timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        }
    }
}

/// The error envelope, serialised without an intermediate `Value` (refusals are a hot path
/// too: a revoked key in a retry loop must cost no more than a valid one).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "success": false,
    "error": {
        "code": "AUTH_001",
        "message": "User is not authenticated",
        "doc_url": "https://auth.example.com/docs/errors#AUTH_001"
    },
    "meta": { "request_id": "req_4fN0xGm2kQh1sTz8", "timestamp": "2026-11-22T10:00:00Z" }
}))]
pub struct ErrorEnvelope<'a> {
    /// Always `false` here.
    success: bool,
    error: ErrorBody<'a>,
    meta: Meta<'a>,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody<'a> {
    code: ErrorCode,
    /// For people; may change. Branch on `code`.
    message: &'a str,
    /// This code's section of the error catalogue.
    #[schema(format = "uri")]
    doc_url: String,
    /// For `VALIDATION_001`: the field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

#[derive(Serialize, ToSchema)]
pub struct Meta<'a> {
    /// Also in the `X-Request-Id` header: quote it when you ask for help.
    request_id: &'a str,
    #[schema(format = DateTime)]
    timestamp: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if let Some(allow) = self.allow {
            response.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        let ctx = context::current();
        if self.status_code() == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3 with RFC 9728 §5.1: where a client learns how to get a token.
            let issuer = ctx.as_ref().map_or("", |c| &c.issuer);
            let (error, dpop_error) = match self.code {
                ErrorCode::NotAuthenticated => ("", ""),
                // RFC 9449 §7.1: the DPoP scheme's challenge carries the proof's error.
                ErrorCode::InvalidDpopProof => ("", "error=\"invalid_dpop_proof\", "),
                _ => (", error=\"invalid_token\"", ""),
            };
            response.insert_header((
                header::WWW_AUTHENTICATE,
                format!(
                    "Bearer realm=\"gatehouse\"{error}, resource_metadata=\"{issuer}/.well-known/oauth-protected-resource\", DPoP {dpop_error}algs=\"ES256 RS256 EdDSA\""
                ),
            ));
        }
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        response.json(self.envelope(&ctx))
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(e: crate::db::DbError) -> Self {
        let lost = e.is_lost_connection();
        match e {
            crate::db::DbError::Pool(_) | crate::db::DbError::Connect { .. } => {
                log::error!("database unavailable: {e}");
                ApiError::of(ErrorCode::Unavailable)
            }
            _ if lost => {
                log::error!("database unavailable: {e}");
                ApiError::of(ErrorCode::Unavailable)
            }
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_documented_in_the_catalogue() {
        let catalogue = include_str!("../../docs/errors.md");
        for code in ErrorCode::ALL {
            let heading = format!("## {} {{#{}}}", code.as_str(), code.as_str());
            assert!(
                catalogue.contains(&heading),
                "docs/errors.md lacks the heading `{heading}`"
            );
        }
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(
                seen.insert(code.as_str()),
                "{} appears twice",
                code.as_str()
            );
        }
    }

    #[test]
    fn envelope_has_the_seed_shape() {
        let body = ApiError::of(ErrorCode::InvalidCredential).body();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "AUTH_002");
        assert!(
            body["error"]["doc_url"]
                .as_str()
                .unwrap()
                .ends_with("/docs/errors#AUTH_002")
        );
        assert!(body["meta"]["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
