//! `/v1/clients` (developers' apps; admins see and disable any) and `/v1/consents` (the apps a
//! user connected).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::manage::{self, Actor, ClientInput};
use crate::api_keys::api::{client_ip, parse_grace};
use crate::http::envelope::with_status;
use crate::http::{ApiError, ApiResult, nullable, ok, page};
use crate::policy::Action;
use crate::principal::Principal;
use crate::state::AppState;

fn actor<'a>(principal: &'a Principal, req: &HttpRequest) -> Actor<'a> {
    Actor::of(principal, client_ip(req))
}

/// A registration or a PATCH. No field of an app may be empty, so an explicit `null` is
/// refused (400) rather than read as "unchanged".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    redirect_uris: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    client_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    scopes: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    grant_types: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    first_party: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    resources: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    disabled: Option<Option<bool>>,
}

fn not_null<T: Clone>(
    field: &'static str,
    value: &Option<Option<T>>,
) -> Result<Option<T>, ApiError> {
    match value {
        Some(None) => Err(ApiError::validation(
            field,
            format!("{field} cannot be null: leave it out to keep it as it is"),
        )),
        Some(Some(v)) => Ok(Some(v.clone())),
        None => Ok(None),
    }
}

impl ClientBody {
    fn input(&self) -> Result<ClientInput, ApiError> {
        Ok(ClientInput {
            name: not_null("name", &self.name)?,
            redirect_uris: not_null("redirect_uris", &self.redirect_uris)?,
            client_type: not_null("client_type", &self.client_type)?,
            scopes: not_null("scopes", &self.scopes)?,
            grant_types: not_null("grant_types", &self.grant_types)?,
            first_party: not_null("first_party", &self.first_party)?,
            resources: not_null("resources", &self.resources)?,
        })
    }

    fn disabled(&self) -> Result<Option<bool>, ApiError> {
        not_null("disabled", &self.disabled)
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
    if body.disabled.is_some() {
        return Err(ApiError::validation(
            "disabled",
            "A new app cannot start disabled",
        ));
    }
    let (client, secret) = manage::create(&state, &actor(&principal, &req), body.input()?).await?;
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
    let client =
        manage::visible(&state, &actor(&principal, &req), path.into_inner(), false).await?;
    ok(manage::client_json(&client, state.now()))
}

pub async fn update_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<ClientBody>,
) -> ApiResult {
    let input = body.input()?;
    let disabled = body.disabled()?;
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner(), true).await?;
    let updated = manage::update(&state, &actor, client, input, disabled).await?;
    ok(manage::client_json(&updated, state.now()))
}

pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner(), true).await?;
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
    let grace = parse_grace(body.as_ref().and_then(|b| b.grace_period.as_ref()))?;
    let actor = actor(&principal, &req);
    let client = manage::visible(&state, &actor, path.into_inner(), true).await?;
    let (client, secret) = manage::rotate_secret(&state, &actor, client, grace).await?;
    let mut data = manage::client_json(&client, state.now());
    data["client_secret"] = json!(secret.expose());
    ok(data)
}

pub async fn list_consents(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    principal.authorize(Action::ReadConsents)?;
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
    principal.authorize(Action::WriteConsents)?;
    manage::revoke_consent(&state, &actor(&principal, &req), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "message": "App disconnected" })))
}
