//! `GET /.well-known/oauth-authorization-server` (RFC 8414): exactly what this server supports.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let scopes: Vec<String> = match state.scope_registry().await {
        Ok(all) => all.iter().map(|s| s.name.clone()).collect(),
        Err(e) => {
            log::error!("metadata: {e}");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    HttpResponse::Ok().insert_header(("cache-control", "public, max-age=300")).json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint": format!("{issuer}/oauth/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "bearer"],
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent"],
    }))
}
