//! A resource server protected by Gatehouse: `GET /orders` answers any verified access token or
//! API key holding `read:orders`, and `/.well-known/oauth-protected-resource` tells clients
//! where to get one. Gatehouse's tests mount these routes against a running Gatehouse.
//!
//! ```text
//! GATEHOUSE_ISSUER=http://127.0.0.1:8080 GATEHOUSE_AUDIENCE=http://127.0.0.1:8080 \
//! GATEHOUSE_INTROSPECTION_KEY=rk_live_… PORT=9090 \
//!     cargo run -p gatehouse-verify --example orders_service
//! ```

use actix_web::{App, HttpResponse, HttpServer, web};
use gatehouse_verify::actix::{Authenticated, resource_metadata};
use gatehouse_verify::{Config, Verifier};
use serde_json::json;

/// The service's routes; the `Verifier` comes from the app data.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders", web::get().to(orders)).route(
        "/.well-known/oauth-protected-resource",
        web::get().to(resource_metadata),
    );
}

async fn orders(caller: Authenticated) -> HttpResponse {
    let credential = &caller.0;
    if !credential.has_scope("read:orders") {
        return HttpResponse::Forbidden().json(json!({ "error": "insufficient_scope" }));
    }
    HttpResponse::Ok().json(json!({
        "owner": credential.subject(),
        "workspace": credential.workspace().map(|w| &w.slug),
        "orders": [],
    }))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let var = |name: &str| std::env::var(name).ok();
    let issuer = var("GATEHOUSE_ISSUER").unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let audience = var("GATEHOUSE_AUDIENCE").unwrap_or_else(|| issuer.clone());
    let config = Config {
        introspection_key: var("GATEHOUSE_INTROSPECTION_KEY"),
        ..Config::new(&issuer, &audience)
    };
    let verifier = web::Data::new(Verifier::new(config).expect("a valid configuration"));
    let port: u16 = var("PORT").and_then(|p| p.parse().ok()).unwrap_or(9090);
    HttpServer::new(move || App::new().app_data(verifier.clone()).configure(routes))
        .bind(("127.0.0.1", port))?
        .run()
        .await
}
