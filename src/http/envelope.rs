//! The success side of the `/v1` envelope: `{"success": true, "data": …}`, a page of a list,
//! and the `{"success": true, "message": …}` of a deletion. The types are the ones serialised,
//! and the OpenAPI document's schemas are derived from them.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiError;

pub type ApiResult = Result<HttpResponse, ApiError>;

/// `200 {"success": true, "data": data}`.
pub fn ok<T: Serialize>(data: T) -> ApiResult {
    with_status(StatusCode::OK, data)
}

/// Serialised straight to bytes (no intermediate `serde_json::Value`): this is on every
/// `/v1` response.
#[derive(Serialize, ToSchema)]
pub struct Success<T> {
    /// Always `true` here.
    pub success: bool,
    pub data: T,
}

/// `{"success": true, "data": data}` with another success status (e.g. 201).
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> ApiResult {
    Ok(HttpResponse::build(status).json(Success {
        success: true,
        data,
    }))
}

/// A page of a list, newest first.
#[derive(Serialize, ToSchema)]
pub struct Page<T> {
    /// Always `true` here.
    pub success: bool,
    pub data: Vec<T>,
    pub pagination: Pagination,
}

#[derive(Serialize, ToSchema)]
pub struct Pagination {
    pub has_more: bool,
    /// Pass as `cursor` to get the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// A page of a list: `{"success": true, "data": [...], "pagination": {"has_more", "next_cursor"}}`.
pub fn page<T: Serialize>(items: Vec<T>, next_cursor: Option<String>) -> ApiResult {
    Ok(HttpResponse::Ok().json(Page {
        success: true,
        data: items,
        pagination: Pagination {
            has_more: next_cursor.is_some(),
            next_cursor,
        },
    }))
}

/// The answer to a deletion or revocation: there is nothing left to show.
#[derive(Serialize, ToSchema)]
pub struct Done {
    /// Always `true` here.
    pub success: bool,
    #[schema(example = "API key revoked successfully")]
    pub message: &'static str,
}

/// `200 {"success": true, "message": message}`.
pub fn done(message: &'static str) -> ApiResult {
    Ok(HttpResponse::Ok().json(Done {
        success: true,
        message,
    }))
}

/// Opaque list cursors: a (time, id) position, base64url-encoded.
pub mod cursor {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::{DateTime, NaiveDateTime};

    pub fn encode(at: NaiveDateTime, id: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{id}", at.and_utc().timestamp_micros()))
    }

    pub fn decode(raw: &str) -> Option<(NaiveDateTime, String)> {
        let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (micros, id) = text.split_once(':')?;
        let at = DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
        (!id.is_empty() && id.len() <= 64).then(|| (at, id.to_owned()))
    }
}
