//! `/v1/users`: who the caller is (`/me`), changing one's display name, and for holders of
//! `read:users` / `write:users` listing, reading and creating users.

use actix_web::http::StatusCode;
use actix_web::web;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::model::{self, CreateUserError, NewAccount, Role, UserView};
use super::{Email, NewPassword};
use crate::api_keys::format::{Kind, Mode};
use crate::http::envelope::with_status;
use crate::http::{ApiError, ApiResult, ErrorCode, ok};
use crate::principal::{Credential, Principal};
use crate::state::AppState;

#[derive(Serialize)]
struct Me {
    #[serde(flatten)]
    user: UserView,
    authentication: Authentication,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Authentication {
    Session {
        session_id: String,
    },
    ApiKey {
        key_id: String,
        mode: Mode,
        kind: Kind,
        livemode: bool,
        scopes: Vec<String>,
    },
}

fn me_view(principal: &Principal) -> Me {
    let authentication = match &principal.credential {
        Credential::Session { session_id } => Authentication::Session {
            session_id: session_id.clone(),
        },
        Credential::ApiKey {
            key_id,
            mode,
            kind,
            scopes,
            ..
        } => Authentication::ApiKey {
            key_id: key_id.clone(),
            mode: *mode,
            kind: *kind,
            livemode: *mode == Mode::Live,
            scopes: scopes.iter().map(ToString::to_string).collect(),
        },
    };
    Me {
        user: principal.user.view(),
        authentication,
    }
}

pub async fn get_me(principal: Principal) -> ApiResult {
    ok(me_view(&principal))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    display_name: Option<String>,
}

pub async fn update_me(
    state: web::Data<AppState>,
    mut principal: Principal,
    body: web::Json<UpdateMe>,
) -> ApiResult {
    principal.require_scope("write:users")?;
    let Some(raw) = body.into_inner().display_name else {
        return ok(me_view(&principal));
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
    principal.user.display_name = name;
    principal.user.updated_at = now;
    ok(me_view(&principal))
}

/// Admins see everyone; members see themselves.
pub async fn list_users(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    principal.require_scope("read:users")?;
    if !principal.user.is_admin() {
        return ok(vec![principal.user.view()]);
    }
    let users = state.db(model::list_users).await?;
    ok(users.iter().map(model::User::view).collect::<Vec<_>>())
}

pub async fn get_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("read:users")?;
    let id = path.into_inner();
    if id == principal.user.id {
        return ok(principal.user.view());
    }
    if !principal.user.is_admin() {
        return Err(ApiError::not_found("User"));
    }
    let user = state
        .db(move |c| model::find_by_id(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))?;
    ok(user.view())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    email: String,
    #[serde(default)]
    display_name: String,
    role: Option<String>,
    password: Option<String>,
}

/// Admins create users; a generated password is returned once and must be changed at first
/// sign-in.
pub async fn create_user(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateUserBody>,
) -> ApiResult {
    principal.require_scope("write:users")?;
    principal.require_admin()?;
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
    let (password, generated) = match body.password.as_deref() {
        Some(p) => (
            NewPassword::parse(p).map_err(|e| ApiError::validation("password", e.to_string()))?,
            false,
        ),
        None => (NewPassword::generate(), true),
    };
    let account = NewAccount {
        email,
        display_name,
        password: password.clone(),
        role,
        password_change_required: generated,
    };
    let now = state.now();
    let created = state
        .db(move |c| Ok(model::create_user(c, &account, now)))
        .await?;
    match created {
        Ok(user) => {
            let mut data = serde_json::to_value(user.view()).map_err(ApiError::internal)?;
            if generated {
                data["password"] = json!(password.expose());
            }
            with_status(StatusCode::CREATED, data)
        }
        Err(CreateUserError::DuplicateEmail(email)) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("A user with email {email} already exists"),
        )),
        Err(CreateUserError::Db(e)) => Err(e.into()),
    }
}
