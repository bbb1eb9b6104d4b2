//! The success side of the `/v1` envelope: `{"success": true, "data": …}`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use serde::Serialize;
use serde_json::json;

use super::ApiError;

pub type ApiResult = Result<HttpResponse, ApiError>;

/// `200 {"success": true, "data": data}`.
pub fn ok<T: Serialize>(data: T) -> ApiResult {
    with_status(StatusCode::OK, data)
}

/// `{"success": true, "data": data}` with another success status (e.g. 201).
pub fn with_status<T: Serialize>(status: StatusCode, data: T) -> ApiResult {
    Ok(HttpResponse::build(status).json(json!({ "success": true, "data": data })))
}
