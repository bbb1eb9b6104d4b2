//! `/v1/users`: who the caller is (`/me`), changing one's display name, and for holders of
//! `read:users` / `write:users` listing, reading and creating users.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{self, CreateUserError, NewAccount, Role, UserView};
use super::{Email, NewPassword};
use crate::api_keys::format::{Kind, Mode};
use crate::http::envelope::{Success, with_status};
use crate::http::{ApiError, ApiResult, ErrorCode, ok};
use crate::policy::Action;
use crate::principal::{Credential, Principal};
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// `/v1/users/me`: the user's fields and how they authenticated (for a key: which key, its
/// mode and scopes). Fields are listed, not `#[serde(flatten)]`ed: this is a hot path.
#[derive(Serialize, ToSchema)]
pub struct Me<'a> {
    id: &'a str,
    email: &'a str,
    display_name: &'a str,
    role: Role,
    #[schema(format = DateTime)]
    created_at: &'a str,
    disabled: bool,
    #[schema(format = DateTime)]
    disabled_at: Option<&'a str>,
    authentication: Authentication<'a>,
}

/// How the caller authenticated.
#[derive(Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Authentication<'a> {
    Session {
        session_id: &'a str,
    },
    ApiKey {
        key_id: &'a str,
        mode: Mode,
        kind: Kind,
        livemode: bool,
        scopes: &'a ScopeSet,
    },
    AccessToken {
        client_id: &'a str,
        scopes: &'a ScopeSet,
        /// `false` for a token exchanged for a test key (it acts in test mode, as the key).
        livemode: bool,
    },
}

fn me_view<'a>(principal: &'a Principal, user: &'a UserView) -> Me<'a> {
    let authentication = match &principal.credential {
        Credential::Session { session_id } => Authentication::Session { session_id },
        Credential::ApiKey(record) => Authentication::ApiKey {
            key_id: &record.key.id,
            mode: record.key.mode(),
            kind: record.key.kind(),
            livemode: record.key.mode() == Mode::Live,
            scopes: &record.scopes,
        },
        Credential::AccessToken {
            client_id,
            scopes,
            key,
            ..
        } => Authentication::AccessToken {
            client_id,
            scopes,
            livemode: key.as_ref().is_none_or(|k| !k.test_mode),
        },
    };
    Me {
        id: &user.id,
        email: &user.email,
        display_name: &user.display_name,
        role: user.role,
        created_at: &user.created_at,
        disabled: user.disabled,
        disabled_at: user.disabled_at.as_deref(),
        authentication,
    }
}

/// The caller
///
/// The user behind the credential and how they authenticated (for a key: which key, its mode
/// and scopes; for an app's token: the app and its scopes).
#[utoipa::path(get, path = "/v1/users/me", tag = "users",
    security(("oauth2" = ["read:users"])),
    responses((status = 200, description = "The caller", body = Success<Me>)))]
// The hot path of `/v1` (every resource server's "who is this?"): the user's members come
// pre-rendered from the cached view, only `authentication` is serialised per request. The
// answer is byte for byte what `me_view` serialises to.
pub async fn get_me(principal: Principal) -> ApiResult {
    principal.authorize(Action::ReadProfile)?;
    let view = principal.user_view();
    let me = me_view(&principal, &view);
    let authentication = serde_json::to_string(&me.authentication).map_err(ApiError::internal)?;
    let members = view.json_members();
    let mut body = String::with_capacity(members.len() + authentication.len() + 48);
    body.push_str(r#"{"success":true,"data":{"#);
    body.push_str(members);
    body.push_str(r#","authentication":"#);
    body.push_str(&authentication);
    body.push_str("}}");
    Ok(actix_web::HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "display_name": "Mia" }))]
pub struct UpdateMe {
    /// 1 to 100 characters; absent or `null` leaves it as it is.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$"
    )]
    display_name: Option<String>,
}

/// Change your display name
#[utoipa::path(patch, path = "/v1/users/me", tag = "users",
    security(("oauth2" = ["write:profile"])),
    request_body = UpdateMe,
    responses((status = 200, description = "The caller, changed", body = Success<Me>)))]
pub async fn update_me(
    state: web::Data<AppState>,
    mut principal: Principal,
    body: web::Json<UpdateMe>,
) -> ApiResult {
    principal.authorize(Action::UpdateProfile)?;
    let Some(raw) = body.into_inner().display_name else {
        return ok(me_view(&principal, &principal.user_view()));
    };
    if raw.trim().is_empty() {
        return Err(ApiError::validation(
            "display_name",
            "The display name cannot be empty",
        ));
    }
    let name = model::normalize_display_name(&raw, &principal.user.email())
        .map_err(|m| ApiError::validation("display_name", m))?;
    let (id, saved, now) = (principal.user.id.clone(), name.clone(), state.now());
    state
        .db(move |c| model::set_display_name(c, &id, &saved, now))
        .await?;
    let user = Arc::make_mut(&mut principal.user);
    user.display_name = name;
    user.updated_at = now;
    // Rendered afresh: the name just changed.
    ok(me_view(&principal, &principal.user.view()))
}

/// List users
///
/// Admins holding `admin:users` see everyone; everyone else sees themselves.
#[utoipa::path(get, path = "/v1/users", tag = "users",
    security(("oauth2" = ["read:users"])),
    responses((status = 200, description = "The users", body = Success<Vec<UserView>>)))]
pub async fn list_users(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    if !principal.authorize(Action::ListUsers)?.everyone() {
        return ok(vec![principal.user.view()]);
    }
    let users = state.db(model::list_users).await?;
    ok(users.iter().map(model::User::view).collect::<Vec<_>>())
}

/// A user
///
/// Yourself, or anyone for admins holding `admin:users` (others are not found).
#[utoipa::path(get, path = "/v1/users/{id}", tag = "users",
    security(("oauth2" = ["read:users"])),
    params(("id" = String, Path, description = "A user id (`usr_…`)")),
    responses((status = 200, description = "The user", body = Success<UserView>)))]
pub async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let id = path.into_inner();
    principal.authorize(Action::ReadUser { id: &id })?;
    if id == principal.user.id {
        return ok(principal.user.view());
    }
    let user = state
        .db(move |c| model::find_by_id(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    ok(user.view())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "email": "mia@example.com", "display_name": "Mia", "role": "member" }))]
pub struct CreateUserBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// Default: the part of the email before `@`.
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    display_name: String,
    /// Default: `member`.
    #[schema(value_type = Option<Role>)]
    role: Option<String>,
    /// Default: a generated password, answered once, to be changed at first sign-in.
    #[schema(min_length = 10)]
    password: Option<String>,
}

/// A user, as created: `password` is there, once, when it was generated.
#[derive(Serialize, ToSchema)]
pub struct CreatedUser {
    #[serde(flatten)]
    user: UserView,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

/// Create a user (admins)
///
/// A generated password is answered once and must be changed at first sign-in.
#[utoipa::path(post, path = "/v1/users", tag = "users",
    security(("oauth2" = ["write:users"])),
    request_body = CreateUserBody,
    responses(
        (status = 201, description = "Created", body = Success<CreatedUser>),
        (status = 409, description = "A user with this email exists (`RESOURCE_002`)", body = crate::http::errors::ErrorEnvelope),
    ))]
pub async fn create_user(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateUserBody>,
) -> ApiResult {
    let allowed = principal.authorize(Action::CreateUser)?;
    let body = body.into_inner();
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::validation("email", e.to_string()))?;
    let display_name = model::normalize_display_name(&body.display_name, &email)
        .map_err(|m| ApiError::validation("display_name", m))?;
    let role = match body.role.as_deref() {
        None => Role::Member,
        Some(r) => {
            Role::parse(r).ok_or_else(|| ApiError::validation("role", "role is admin or member"))?
        }
    };
    let password = body
        .password
        .as_deref()
        .map(|p| NewPassword::parse(p).map_err(|e| ApiError::validation("password", e.to_string())))
        .transpose()?;
    let (account, generated) = NewAccount::issued_by_admin(email, display_name, role, password);
    let hash = state
        .password_gate
        .hash(account.password.clone())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::Unavailable,
                "Gatehouse is busy: try again in a moment",
            )
            .with_retry_after(1)
        })?;
    let now = state.now();
    let actor = principal.actor(crate::api_keys::api::client_ip(&req));
    let created = state
        .db(move |c| {
            Ok(super::create_audited(
                c, allowed, &account, &hash, &actor, now,
            ))
        })
        .await?;
    match created {
        Ok(user) => with_status(
            StatusCode::CREATED,
            CreatedUser {
                user: user.view(),
                password: generated.map(|p| p.expose().to_owned()),
            },
        ),
        Err(CreateUserError::DuplicateEmail(email)) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("A user with email {email} already exists"),
        )),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}
