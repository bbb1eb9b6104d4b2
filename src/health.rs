//! Liveness and readiness: `/healthz` (the process answers) and `/readyz` (its database
//! answers; also where rate limits are counted).

use actix_web::{HttpResponse, web};

use crate::db;
use crate::state::AppState;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    status: &'static str,
}

/// Whether this instance can serve: its database answers. Where rate limits are counted is
/// reported but never makes the server unready: without Redis they are counted per instance,
/// which is safe.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(example = "sqlite")]
    database: &'static str,
    /// `local`, `shared (redis)`, or `local (redis unreachable: …)`.
    #[schema(example = "local")]
    rate_limits: String,
}

/// Liveness
///
/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "Up", body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Readiness
///
/// The database answers; also where rate limits are counted.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "The database does not answer", body = Readiness),
    ))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let database = state.settings.database.backend_name();
    let rate_limits = state.rate_limits.describe();
    match state.db(db::ping).await {
        Ok(()) => HttpResponse::Ok().json(Readiness {
            status: "ready",
            database,
            rate_limits,
        }),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::ServiceUnavailable().json(Readiness {
                status: "unavailable",
                database,
                rate_limits,
            })
        }
    }
}
