//! `/v1/clients` (developers' apps; admins see and disable any) and `/v1/consents` (the apps a
//! user connected).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::manage::{self, Actor, ClientInput};
use crate::api_keys::api::{client_ip, parse_grace};
use crate::http::envelope::with_status;
use crate::http::{ApiResult, ok, page};
use crate::principal::Principal;
use crate::state::AppState;

fn actor(principal: &Principal, req: &HttpRequest) -> Actor {
    Actor {
        user: principal.user.clone(),
        key_id: principal.key_id().map(str::to_owned),
        ip: client_ip(req),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    client_type: Option<String>,
    scopes: Option<Vec<String>>,
    grant_types: Option<Vec<String>>,
    first_party: Option<bool>,
    disabled: Option<bool>,
}

impl ClientBody {
    fn input(&self) -> ClientInput {
        ClientInput {
            name: self.name.clone(),
            redirect_uris: self.redirect_uris.clone(),
            client_type: self.client_type.clone(),
            scopes: self.scopes.clone(),
            grant_types: self.grant_types.clone(),
            first_party: self.first_party,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Admins: every app, not only their own.
    #[serde(default)]
    all: bool,
}

pub async fn list_clients(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult {
    principal.require_scope("read:clients")?;
    let clients = manage::list(&state, &actor(&principal, &req), query.all).await?;
    let now = state.now();
    page(
        clients
            .iter()
            .map(|c| manage::client_json(c, now))
            .collect(),
        None,
    )
}

pub async fn create_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<ClientBody>,
) -> ApiResult {
    principal.require_scope("write:clients")?;
    if body.disabled.is_some() {
        return Err(crate::http::ApiError::validation(
            "disabled",
            "A new app cannot start disabled",
        ));
    }
    let (client, secret) = manage::create(&state, &actor(&principal, &req), body.input()).await?;
    let mut data = manage::client_json(&client, state.now());
    if let Some(secret) = secret {
        data["client_secret"] = json!(secret.expose());
    }
    with_status(StatusCode::CREATED, data)
}

pub async fn get_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("read:clients")?;
    let client = manage::visible(&state, &actor(&principal, &req), path.into_inner()).await?;
    ok(manage::client_json(&client, state.now()))
}

pub async fn update_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<ClientBody>,
) -> ApiResult {
    principal.require_scope("write:clients")?;
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner()).await?;
    let updated = manage::update(&state, &actor, client, body.input(), body.disabled).await?;
    ok(manage::client_json(&updated, state.now()))
}

pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("write:clients")?;
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner()).await?;
    manage::delete(&state, &actor, client).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "Client deleted" })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RotateBody {
    /// How long the old secret keeps working: 0 (default) to 7 days.
    grace_period: Option<Value>,
}

pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Option<web::Json<RotateBody>>,
) -> ApiResult {
    principal.require_scope("write:clients")?;
    let grace = parse_grace(body.as_ref().and_then(|b| b.grace_period.as_ref()))?;
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner()).await?;
    let (client, secret) = manage::rotate_secret(&state, &actor, client, grace).await?;
    let mut data = manage::client_json(&client, state.now());
    data["client_secret"] = json!(secret.expose());
    ok(data)
}

pub async fn list_consents(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    principal.require_scope("read:consents")?;
    page(
        manage::list_consents(&state, principal.user.id.clone()).await?,
        None,
    )
}

pub async fn revoke_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("write:consents")?;
    manage::revoke_consent(&state, &actor(&principal, &req), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "App disconnected" })))
}
