//! OpenID Connect UserInfo (Core §5.3): the claims of a user for a token that holds `openid`.
//! The ID token and the request parameters are made in `id_token`.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::accounts::model::User;
use crate::oauth::error::OAuthError;
use crate::policy::{Action, Denied};
use crate::scopes::{Builtin, ScopeSet};
use crate::state::AppState;

pub use crate::oidc::id_token::*;

/// What UserInfo answers (Core §5.3.2).
#[derive(Serialize, ToSchema)]
pub struct UserInfo {
    pub sub: String,
    #[serde(flatten)]
    pub claims: UserClaims,
}

/// The form of `POST /oauth/userinfo` (RFC 6750 §2.2: the token in the body).
#[derive(Deserialize, Default)]
pub struct UserInfoForm {
    access_token: Option<String>,
}

/// An RFC 6750 §3 refusal: the status, `WWW-Authenticate` and a JSON body.
fn bearer_refusal(status: StatusCode, error: Option<&str>, description: &str) -> HttpResponse {
    let mut challenge = String::from("Bearer realm=\"gatehouse\"");
    if let Some(error) = error {
        challenge.push_str(&format!(
            ", error=\"{error}\", error_description=\"{}\"",
            description.replace(['"', '\\'], "'")
        ));
        if error == "insufficient_scope" {
            challenge.push_str(", scope=\"openid\"");
        }
    }
    let mut answer = HttpResponse::build(status);
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        answer.insert_header((header::WWW_AUTHENTICATE, value));
    }
    answer.insert_header((header::CACHE_CONTROL, "no-store"));
    // Without any credential the challenge carries no error (RFC 6750 §3.1); the body still
    // says what is missing, as every OAuth error here does.
    let missing = OAuthError::InvalidToken(String::new());
    answer.json(serde_json::json!({
        "error": error.unwrap_or(missing.code()),
        "error_description": if error.is_some() { description } else { "No access token was sent" },
    }))
}

/// UserInfo (OpenID Connect Core §5.3)
///
/// The claims about the signed-in user that the access token's scopes release: `sub` always,
/// `profile` and `email` claims by scope. Only an app's access token with `openid`, for this
/// server's own API (the default audience), is answered; an API key, a client_credentials
/// token or a token for another resource server is `invalid_token` (401), a token without
/// `openid` is `insufficient_scope` (403), each with `WWW-Authenticate` (RFC 6750 §3).
#[utoipa::path(get, path = "/oauth/userinfo", tag = "oauth",
    security(("bearer" = ["openid"])),
    responses(
        (status = 200, description = "The claims", body = UserInfo),
        (status = 401, description = "No token, or not a valid access token for this server (`WWW-Authenticate: Bearer error=\"invalid_token\"`)", body = crate::oauth::error::OAuthErrorBody),
        (status = 403, description = "The token lacks `openid` (`insufficient_scope`)", body = crate::oauth::error::OAuthErrorBody),
    ))]
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    answer_userinfo(&req, &state, None).await
}

/// UserInfo, POST (OpenID Connect Core §5.3.1)
///
/// As `GET /oauth/userinfo`; the token may also come form-encoded as `access_token`
/// (RFC 6750 §2.2).
#[utoipa::path(post, path = "/oauth/userinfo", tag = "oauth",
    security(("bearer" = ["openid"])),
    request_body(content_type = "application/x-www-form-urlencoded", description = "Optional: `access_token`"),
    responses(
        (status = 200, description = "The claims", body = UserInfo),
        (status = 400, description = "The token came twice (header and body)", body = crate::oauth::error::OAuthErrorBody),
        (status = 401, description = "No token, or not a valid access token for this server", body = crate::oauth::error::OAuthErrorBody),
        (status = 403, description = "The token lacks `openid` (`insufficient_scope`)", body = crate::oauth::error::OAuthErrorBody),
    ))]
pub async fn userinfo_post(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> HttpResponse {
    let form: UserInfoForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    answer_userinfo(&req, &state, form.access_token.filter(|t| !t.is_empty())).await
}

async fn answer_userinfo(
    req: &HttpRequest,
    state: &AppState,
    from_body: Option<String>,
) -> HttpResponse {
    // From a page of another origin: a refusal is readable where some public app registered
    // the origin; the claims only where the token's own app did (below).
    let from_a_page = req.headers().contains_key(header::ORIGIN);
    if from_a_page {
        crate::http::cors::readable_if_registered(req, state).await;
    }
    let in_header = req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key("x-api-key");
    let principal = match (from_body, in_header) {
        (Some(_), true) => {
            return bearer_refusal(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "Send the access token once: in the Authorization header or in the body",
            );
        }
        (Some(token), false) => crate::principal::bearer_principal(state, &token).await,
        (None, true) => crate::principal::authenticate(state, req, None).await,
        (None, false) => {
            return bearer_refusal(StatusCode::UNAUTHORIZED, None, "No access token was sent");
        }
    };
    let principal = match principal {
        Ok(p) => p,
        Err(e) => {
            return bearer_refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"), &e.message);
        }
    };
    if let Err(denied) = crate::policy::authorize(&principal.caller(), Action::ReadUserInfo) {
        return match denied {
            Denied::MissingScope(_) => bearer_refusal(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                "The access token does not hold the openid scope",
            ),
            Denied::NotWith(why) => {
                bearer_refusal(StatusCode::UNAUTHORIZED, Some("invalid_token"), why)
            }
            other => bearer_refusal(
                StatusCode::FORBIDDEN,
                Some("insufficient_scope"),
                &crate::http::ApiError::from(other).message,
            ),
        };
    }
    if from_a_page
        && let crate::principal::Credential::AccessToken { client_id, .. } = &principal.credential
    {
        crate::http::cors::hold_to_app(req, state, client_id).await;
    }
    static NO_SCOPES: ScopeSet = ScopeSet::EMPTY;
    let scopes = principal.token_scopes().unwrap_or(&NO_SCOPES);
    // `Cache-Control: no-store` comes with every answer that sets none (`mw::plumbing`).
    HttpResponse::Ok().json(UserInfoBody::of(&principal.user, scopes))
}

/// `UserInfo` as it is written on the hot path: borrowed from the cached user, no copies.
#[derive(Serialize)]
struct UserInfoBody<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    updated_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
}

impl<'a> UserInfoBody<'a> {
    /// The same claims as [`UserClaims::of`] (a test holds them equal).
    fn of(user: &'a User, scopes: &ScopeSet) -> UserInfoBody<'a> {
        let profile = scopes.contains(Builtin::Profile.as_str());
        let email = scopes.contains(Builtin::Email.as_str());
        UserInfoBody {
            sub: &user.id,
            name: profile.then_some(user.display_name.as_str()),
            preferred_username: profile.then_some(user.email.as_str()),
            updated_at: profile.then(|| user.updated_at.and_utc().timestamp()),
            email: email.then_some(user.email.as_str()),
            email_verified: email.then_some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn userinfo_body_writes_the_same_claims_as_the_id_token() {
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let user = User {
            id: "usr_1".into(),
            email: "ada@example.com".into(),
            display_name: "Ada".into(),
            password_hash: "x".into(),
            role: "member".into(),
            password_change_required: false,
            created_at: at,
            updated_at: at,
            disabled_at: None,
        };
        for raw in [
            "openid",
            "openid profile",
            "openid email",
            "openid profile email",
        ] {
            let scopes = ScopeSet::parse(raw).unwrap();
            let documented = serde_json::to_value(UserInfo {
                sub: user.id.clone(),
                claims: UserClaims::of(&user, &scopes),
            })
            .unwrap();
            let written = serde_json::to_value(UserInfoBody::of(&user, &scopes)).unwrap();
            assert_eq!(written, documented, "{raw}");
        }
    }
}
