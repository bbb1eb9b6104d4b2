//! `GET /metrics`: on the main address for scrapers presenting `GATEHOUSE_METRICS_TOKEN`, or
//! without a token on the separate `GATEHOUSE_METRICS_BIND` address. Either way the policy is
//! asked as the scraper; users' credentials never read metrics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::http::{ApiError, ErrorCode};
use crate::policy::{self, Action, Caller};
use crate::state::AppState;

const SCRAPER: Caller<'static> = Caller::scraper();

/// Metrics (Prometheus)
///
/// The Prometheus text exposition, for the operator's monitoring: on this address with the
/// metrics token (`GATEHOUSE_METRICS_TOKEN`) as a Bearer credential, never a user's; without a
/// token configured the route does not exist here (404). With `GATEHOUSE_METRICS_BIND` it is
/// served, without a token, on that separate address instead.
#[utoipa::path(get, path = "/metrics", tag = "health",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain", body = String),
        (status = 401, description = "No metrics token (`AUTH_001`), or another one (`AUTH_002`)", body = crate::http::errors::ErrorEnvelope),
        (status = 404, description = "No metrics token is configured on this address (`RESOURCE_001`)", body = crate::http::errors::ErrorEnvelope),
    ))]
// On the main address: the metrics token is the credential.
pub async fn scrape(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let Some(expected) = &state.settings.metrics.token else {
        // Off on this address: as if the route did not exist.
        return Err(ApiError::not_found("Route"));
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        return Err(ApiError::new(
            ErrorCode::NotAuthenticated,
            "Present the metrics token as a Bearer credential",
        ));
    };
    if !bool::from(presented.as_bytes().ct_eq(expected.0.as_bytes())) {
        return Err(ApiError::new(
            ErrorCode::InvalidCredential,
            "Invalid metrics token",
        ));
    }
    exposition(&state)
}

/// On the separate metrics address, which only the monitoring network reaches.
pub async fn scrape_separate(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    exposition(&state)
}

fn exposition(state: &AppState) -> Result<HttpResponse, ApiError> {
    policy::authorize(&SCRAPER, Action::ReadMetrics)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(super::render(state.scrape())))
}

/// A method as a label: the standard ones by name, anything else as `other`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
