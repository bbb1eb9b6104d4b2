//! `GET /.well-known/oauth-authorization-server` (RFC 8414) and
//! `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0): one document, served
//! at both addresses, saying exactly what this server supports.

use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// RFC 8414 §2.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    #[schema(format = "uri")]
    pub issuer: String,
    #[schema(format = "uri")]
    pub authorization_endpoint: String,
    #[schema(format = "uri")]
    pub token_endpoint: String,
    #[schema(format = "uri")]
    pub jwks_uri: String,
    /// Every scope of the registry.
    pub scopes_supported: Vec<String>,
    pub response_types_supported: &'static [&'static str],
    pub response_modes_supported: &'static [&'static str],
    pub grant_types_supported: &'static [&'static str],
    pub code_challenge_methods_supported: &'static [&'static str],
    pub token_endpoint_auth_methods_supported: &'static [&'static str],
    /// `private_key_jwt` assertions.
    pub token_endpoint_auth_signing_alg_values_supported: &'static [&'static str],
    /// RFC 9449.
    pub dpop_signing_alg_values_supported: &'static [&'static str],
    #[schema(format = "uri")]
    pub revocation_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: &'static [&'static str],
    #[schema(format = "uri")]
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: &'static [&'static str],
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: &'static [&'static str],
    #[schema(format = "uri")]
    pub userinfo_endpoint: String,
    /// RP-Initiated Logout 1.0.
    #[schema(format = "uri")]
    pub end_session_endpoint: String,
    pub subject_types_supported: &'static [&'static str],
    /// The algorithms of the keys in the JWKS (the current signing key's first).
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub claims_supported: &'static [&'static str],
    pub claims_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    pub frontchannel_logout_supported: bool,
    /// RFC 7591: present when dynamic client registration is on (`GATEHOUSE_REGISTRATION`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = "uri")]
    pub registration_endpoint: Option<String>,
    /// A `client_id` may be the https URL of a Client ID Metadata Document
    /// (`GATEHOUSE_CIMD`).
    pub client_id_metadata_document_supported: bool,
    /// RFC 9126.
    #[schema(format = "uri")]
    pub pushed_authorization_request_endpoint: String,
    /// RFC 8628.
    #[schema(format = "uri")]
    pub device_authorization_endpoint: String,
    /// Every app must push its requests (`GATEHOUSE_REQUIRE_PAR`); otherwise only those
    /// registered so.
    pub require_pushed_authorization_requests: bool,
}

/// The claims an ID token or UserInfo may carry.
pub const CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "updated_at",
    "email",
    "email_verified",
];

/// Authorization server metadata (RFC 8414)
///
/// Exactly what this server supports; the same document as
/// `/.well-known/openid-configuration`. Caches may keep it five minutes.
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = ServerMetadata),
        (status = 503, description = "The scope registry could not be read (no body)"),
    ))]
pub async fn metadata(state: web::Data<AppState>) -> HttpResponse {
    document(&state).await
}

/// OpenID Provider configuration (OpenID Connect Discovery 1.0)
///
/// The same document as `/.well-known/oauth-authorization-server` (RFC 8414), which already
/// holds every OpenID Provider member. Caches may keep it five minutes.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = ServerMetadata),
        (status = 503, description = "The scope registry could not be read (no body)"),
    ))]
pub async fn openid_configuration(state: web::Data<AppState>) -> HttpResponse {
    document(&state).await
}

async fn document(state: &AppState) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let scopes: Vec<String> = match state.scope_registry().await {
        Ok(all) => all.iter().map(|s| s.name.clone()).collect(),
        Err(e) => {
            log::error!("metadata: {e}");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(ServerMetadata {
            issuer: issuer.clone(),
            authorization_endpoint: format!("{issuer}/oauth/authorize"),
            token_endpoint: format!("{issuer}/oauth/token"),
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            scopes_supported: scopes,
            response_types_supported: &["code"],
            response_modes_supported: &["query"],
            grant_types_supported: &crate::clients::GRANT_TYPES,
            code_challenge_methods_supported: &["S256"],
            token_endpoint_auth_methods_supported: AUTH_METHODS,
            token_endpoint_auth_signing_alg_values_supported:
                crate::clients::assertion::SIGNING_ALGS,
            dpop_signing_alg_values_supported: crate::jwt::dpop::ALGS,
            revocation_endpoint: format!("{issuer}/oauth/revoke"),
            revocation_endpoint_auth_methods_supported: AUTH_METHODS,
            introspection_endpoint: format!("{issuer}/oauth/introspect"),
            introspection_endpoint_auth_methods_supported: &[
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
                "bearer",
            ],
            authorization_response_iss_parameter_supported: true,
            prompt_values_supported: &["none", "login", "consent"],
            userinfo_endpoint: format!("{issuer}/oauth/userinfo"),
            end_session_endpoint: format!("{issuer}/oauth/logout"),
            subject_types_supported: &["public"],
            id_token_signing_alg_values_supported: state.key_ring().published_algs(),
            claims_supported: CLAIMS,
            claims_parameter_supported: false,
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: false,
            registration_endpoint: (state.settings.registration.mode
                != crate::config::RegistrationMode::Off)
                .then(|| format!("{issuer}/oauth/register")),
            client_id_metadata_document_supported: state.settings.cimd.enabled(),
            pushed_authorization_request_endpoint: format!("{issuer}/oauth/par"),
            device_authorization_endpoint: format!("{issuer}/oauth/device_authorization"),
            require_pushed_authorization_requests: state.settings.require_par,
        })
}

/// RFC 9728 §2: what a client needs to know to get a token for Gatehouse's own API.
#[derive(Serialize, ToSchema)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the `aud` of tokens for `/v1` (what a client sends as
    /// `resource`).
    #[schema(format = "uri")]
    pub resource: String,
    pub authorization_servers: Vec<String>,
    #[schema(format = "uri")]
    pub jwks_uri: String,
    pub scopes_supported: Vec<String>,
    pub bearer_methods_supported: &'static [&'static str],
    pub resource_signing_alg_values_supported: Vec<&'static str>,
    pub resource_name: &'static str,
    #[schema(format = "uri")]
    pub resource_documentation: String,
    /// RFC 9449: `/v1` takes DPoP-bound tokens (with proofs of these algorithms)…
    pub dpop_signing_alg_values_supported: &'static [&'static str],
    /// …and Bearer ones too.
    pub dpop_bound_access_tokens_required: bool,
}

/// Protected resource metadata (RFC 9728)
///
/// For Gatehouse's own `/v1`: every 401 there names this document in
/// `WWW-Authenticate: Bearer resource_metadata="…"`, which is how an MCP client or agent finds
/// the authorization server. Caches may keep it five minutes.
#[utoipa::path(get, path = "/.well-known/oauth-protected-resource", tag = "discovery",
    responses(
        (status = 200, description = "The metadata", body = ProtectedResourceMetadata),
        (status = 503, description = "The scope registry could not be read (no body)"),
    ))]
pub async fn protected_resource(state: web::Data<AppState>) -> HttpResponse {
    let issuer = &state.settings.issuer;
    let scopes: Vec<String> = match state.scope_registry().await {
        Ok(all) => all.iter().map(|s| s.name.clone()).collect(),
        Err(e) => {
            log::error!("protected resource metadata: {e}");
            return HttpResponse::ServiceUnavailable().finish();
        }
    };
    HttpResponse::Ok()
        .insert_header(("cache-control", "public, max-age=300"))
        .json(ProtectedResourceMetadata {
            resource: state.settings.token_audience().to_owned(),
            authorization_servers: vec![issuer.clone()],
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            scopes_supported: scopes,
            bearer_methods_supported: &["header"],
            resource_signing_alg_values_supported: state.key_ring().published_algs(),
            resource_name: "Gatehouse API",
            resource_documentation: format!("{issuer}/openapi.json"),
            dpop_signing_alg_values_supported: crate::jwt::dpop::ALGS,
            dpop_bound_access_tokens_required: false,
        })
}

/// Signing keys (JWKS, RFC 7517)
///
/// The public keys that verify access tokens. Caches may keep it five minutes: a rotated key
/// is published well before it signs.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "discovery",
    responses((status = 200, description = "The key set", body = Jwks)))]
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(state.key_ring().jwks().to_string())
}

/// RFC 7517 JSON Web Key Set, as `/.well-known/jwks.json` serves it.
#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// A public signing key: `EC` (P-256, ES256), `RSA` (RS256) or `OKP` (Ed25519, EdDSA).
#[derive(Serialize, ToSchema)]
pub struct Jwk {
    #[schema(example = "EC")]
    pub kty: String,
    /// The `kid` in the headers of the tokens it signs.
    pub kid: String,
    #[schema(example = "sig")]
    #[serde(rename = "use")]
    pub use_: String,
    #[schema(example = "ES256")]
    pub alg: String,
    /// EC and OKP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC and OKP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// RSA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}
