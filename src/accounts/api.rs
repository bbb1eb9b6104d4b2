//! `/v1/users/me`: who the caller is, and changing one's own display name.

use actix_web::web;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::model::{self, UserView};
use super::now;
use crate::http::{ApiError, ApiResult, ok};
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
    Session { session_id: String },
}

fn me_view(principal: &Principal) -> Me {
    let authentication = match &principal.credential {
        Credential::Session { session_id } => Authentication::Session {
            session_id: session_id.clone(),
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
    let (id, saved) = (principal.user.id.clone(), name.clone());
    state
        .db(move |c| model::set_display_name(c, &id, &saved, now()))
        .await?;
    principal.user.display_name = name;
    principal.user.updated_at = Utc::now().naive_utc();
    ok(me_view(&principal))
}
