//! Pushed authorization requests (RFC 9126). An app sends its authorization parameters to
//! `POST /oauth/par` (authenticated as at the token endpoint, so they cannot be forged or read
//! in the browser's address bar) and gets a `request_uri` for `/oauth/authorize`. The request
//! is validated when it is pushed, stored as its parameters under the digest of the
//! `request_uri`'s secret, usable by that client only, for a minute, until the user decides.
//! An app registered with `require_pushed_authorization_requests` (or every app, with
//! `GATEHOUSE_REQUIRE_PAR`) is refused at `/oauth/authorize` without one. The only place that
//! queries `pushed_requests`.

use crate::oauth::error::Respond;
use crate::token::read_body;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::authorize::{self, AuthorizeParams};
use crate::state::AppState;
use crate::token::{OAuthError, OAuthErrorBody, authenticate_client};
pub use gatehouse_core::authorize::pushed::*;

/// The authorization parameters an app may push (`request_uri` itself may not be pushed).
const PUSHABLE: &[&str] = &[
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "prompt",
    "nonce",
    "max_age",
    "login_hint",
    "id_token_hint",
    "workspace",
];

/// RFC 9126 §2.2.
#[derive(Serialize, ToSchema)]
pub struct PushedRequest {
    #[schema(example = "urn:ietf:params:oauth:request_uri:par_6fJ2kQ9wX3mZ8pLr4TbV7nYc1Hs5Gd0e")]
    pub request_uri: String,
    #[schema(example = 60)]
    pub expires_in: i64,
}

/// What `POST /oauth/par` reads: the authorization request's parameters (as at
/// `/oauth/authorize`) and the client's authentication (as at the token endpoint).
#[derive(ToSchema)]
#[schema(example = json!({"response_type": "code", "client_id": "cli_5tGh8Jk2LmN0pQrS",
    "redirect_uri": "https://app.example.com/callback", "scope": "read:users",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"}))]
pub struct PushRequest {
    pub response_type: String,
    #[schema(required = false)]
    pub client_id: String,
    pub redirect_uri: String,
    #[schema(required = false)]
    pub scope: String,
    #[schema(required = false)]
    pub state: String,
    #[schema(required = false)]
    pub code_challenge: String,
    #[schema(required = false)]
    pub code_challenge_method: String,
    #[schema(required = false)]
    pub resource: String,
    #[schema(required = false)]
    pub prompt: String,
    #[schema(required = false)]
    pub nonce: String,
    #[schema(required = false)]
    pub max_age: String,
    #[schema(required = false)]
    pub login_hint: String,
    #[schema(required = false)]
    pub id_token_hint: String,
    #[schema(required = false)]
    pub workspace: String,
    /// `client_secret_post` (not with `Authorization: Basic`).
    #[schema(required = false)]
    pub client_secret: String,
}

/// Pushed authorization request (RFC 9126)
///
/// Validates an authorization request as `/oauth/authorize` would and answers a `request_uri`
/// to send the browser with (`/oauth/authorize?client_id=…&request_uri=…`), usable for 60
/// seconds by this client only. Errors are RFC 6749 JSON.
#[utoipa::path(post, path = "/oauth/par", tag = "oauth",
    security((), ("client_basic" = [])),
    request_body(content(
        (PushRequest = "application/x-www-form-urlencoded"),
        (PushRequest = "application/json"),
    )),
    responses(
        (status = 201, description = "The request_uri", body = PushedRequest),
        (status = 400, description = "`invalid_request`, `invalid_scope`, `invalid_target`, `unauthorized_client`, `unsupported_response_type`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn push(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let answer = async {
        let body = read_body(&req, body)?;
        if body.contains_key("request_uri") {
            return Err(OAuthError::InvalidRequest(
                "request_uri cannot be pushed (RFC 9126 §2.1)".into(),
            ));
        }
        let client = authenticate_client(&state, &req, &body).await?;
        let mut pushed: serde_json::Map<String, serde_json::Value> = body
            .iter()
            .filter(|(k, _)| PUSHABLE.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        pushed.insert("client_id".into(), client.id.clone().into());
        let params: AuthorizeParams = serde_json::from_value(pushed.clone().into())
            .map_err(|_| OAuthError::InvalidRequest("The parameters cannot be read".into()))?;
        authorize::check_pushed(&state, &params)
            .await
            .map_err(|(error, description)| OAuthError::new(error, &description))?;
        let (pepper, now) = (state.digest_pepper.clone(), state.now());
        let (client_id, params) = (
            client.id.clone(),
            serde_json::Value::from(pushed).to_string(),
        );
        let secret = state
            .db(move |c| store(c, &pepper, &client_id, &params, now))
            .await?;
        Ok(PushedRequest {
            request_uri: format!("{REQUEST_URI_PREFIX}{}", secret.expose()),
            expires_in: LIFETIME.num_seconds(),
        })
    };
    match answer.await {
        Ok(pushed) => HttpResponse::Created()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(pushed),
        Err(e) => e.response(),
    }
}
