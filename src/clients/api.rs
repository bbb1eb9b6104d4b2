//! `/v1/clients` (developers' apps; admins see and disable any) and `/v1/consents` (the apps a
//! user connected).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::api_keys::api::{client_ip, parse_grace};
use crate::clients::ClientType;
use crate::clients::manage::{self, Actor, ClientDetails, ClientInput, ConsentView};
use crate::http::envelope::{Done, Page, Success, with_status};
use crate::http::middleware::optional_json;
use crate::http::openapi::{grace_period, scope_names};
use crate::http::{ApiError, ApiResult, done, nullable, ok, page};
use crate::policy::Action;
use crate::principal::Principal;
use crate::state::AppState;

fn actor<'a>(principal: &'a Principal, req: &HttpRequest) -> Actor<'a> {
    Actor::of(principal, client_ip(req))
}

/// A registration or a PATCH. No field of an app may be empty, so an explicit `null` is
/// refused (400) rather than read as "unchanged".
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Orders app",
    "redirect_uris": ["https://orders.example.com/callback"],
    "scopes": ["read:users"]
}))]
pub struct ClientBody {
    /// 1 to 100 characters (required to register).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    name: Option<Option<String>>,
    /// 1 to 10 exact redirect URIs: `https`, or `http` on a loopback address (required to
    /// register).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Vec<String>, min_items = 1, max_items = 10)]
    redirect_uris: Option<Option<Vec<String>>>,
    /// Default: `confidential` (a secret is issued).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = ClientType)]
    client_type: Option<Option<String>>,
    /// The scopes it may ask for; within the registering credential's.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = scope_names)]
    scopes: Option<Option<Vec<String>>>,
    /// Among `authorization_code`, `refresh_token`, `client_credentials` (the last for
    /// confidential clients only).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Vec<String>)]
    grant_types: Option<Option<Vec<String>>>,
    /// Administrators holding `admin:clients` only.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = bool)]
    first_party: Option<Option<bool>>,
    /// Resource servers (of `GATEHOUSE_RESOURCES`) it may ask tokens for; administrators
    /// holding `admin:clients` only.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Vec<String>)]
    resources: Option<Option<Vec<String>>>,
    /// OpenID Connect: up to 10 exact URIs `/oauth/logout` may send the browser to afterwards
    /// (`https`, or `http` on a loopback address).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Vec<String>, max_items = 10)]
    post_logout_redirect_uris: Option<Option<Vec<String>>>,
    /// OpenID Connect Back-Channel Logout: an absolute `https` URI without a fragment, or `""`
    /// to stop the notices.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = String, format = "uri")]
    backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = bool)]
    backchannel_logout_session_required: Option<Option<bool>>,
    /// RFC 9126: the app's authorization requests must be pushed to `/oauth/par` first
    /// (default `false`; `GATEHOUSE_REQUIRE_PAR` requires it of every app).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = bool)]
    require_pushed_authorization_requests: Option<Option<bool>>,
    /// `private_key_jwt` (RFC 7523): the app's public keys as a JWK Set (1 to 10 EC P-256, RSA
    /// or Ed25519 keys). A confidential app registered with keys gets no secret and
    /// authenticates with signed assertions only; a PATCH replaces its keys.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Object)]
    jwks: Option<Option<serde_json::Value>>,
    /// `private_key_jwt`: the https URL of the app's JWK Set instead (fetched when needed).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = String, format = "uri")]
    jwks_uri: Option<Option<String>>,
    /// RFC 9449: every token request of the app must carry a DPoP proof, so that all its
    /// access tokens are bound to a key (default `false`).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = bool)]
    dpop_bound_access_tokens: Option<Option<bool>>,
    /// Public apps: up to 20 web origins (`https://app.example.com`, or `http` on a loopback
    /// host) whose pages may call the token endpoint, revocation and UserInfo (CORS). Left
    /// out (or `null` on a PATCH): the origins of the app's redirect URIs. Confidential apps
    /// get no CORS.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, max_items = 20)]
    allowed_origins: Option<Option<Vec<String>>>,
    /// PATCH only: disable or enable the app.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = bool)]
    disabled: Option<Option<bool>>,
    /// Registration only: make the app private to a workspace you administer (only its
    /// members authorize it; its grants act there).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = String, example = "ws_4x9TQbJ2mR8pLw3nV6yZ1cKe")]
    workspace_id: Option<Option<String>>,
}

/// A registered app: a confidential one's `client_secret` is shown this once.
#[derive(Serialize, ToSchema)]
pub struct RegisteredClient {
    #[serde(flatten)]
    client: ClientDetails,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "cs_Vb7Qe2Rt9Yu1Io3Pa5Sd7Fg9Hj1Kl3Zx5Cv")]
    client_secret: Option<String>,
}

/// An app with its new secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct RotatedClient {
    #[serde(flatten)]
    client: ClientDetails,
    client_secret: String,
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
            post_logout_redirect_uris: not_null(
                "post_logout_redirect_uris",
                &self.post_logout_redirect_uris,
            )?,
            backchannel_logout_uri: not_null(
                "backchannel_logout_uri",
                &self.backchannel_logout_uri,
            )?,
            backchannel_logout_session_required: not_null(
                "backchannel_logout_session_required",
                &self.backchannel_logout_session_required,
            )?,
            require_pushed_authorization_requests: not_null(
                "require_pushed_authorization_requests",
                &self.require_pushed_authorization_requests,
            )?,
            jwks: not_null("jwks", &self.jwks)?,
            jwks_uri: not_null("jwks_uri", &self.jwks_uri)?,
            dpop_bound_access_tokens: not_null(
                "dpop_bound_access_tokens",
                &self.dpop_bound_access_tokens,
            )?,
            workspace_id: not_null("workspace_id", &self.workspace_id)?,
            allowed_origins: self.allowed_origins.clone(),
        })
    }

    fn disabled(&self) -> Result<Option<bool>, ApiError> {
        not_null("disabled", &self.disabled)
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Admins holding `admin:clients`: every app, not only their own.
    #[serde(default)]
    all: bool,
}

/// List your apps
///
/// `?all=true`: every app (admins holding `admin:clients`).
#[utoipa::path(get, path = "/v1/clients", tag = "clients",
    security(("oauth2" = ["read:clients"])),
    params(ListQuery),
    responses((status = 200, description = "The apps", body = Page<ClientDetails>)))]
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
            .map(|c| manage::client_details(c, now))
            .collect(),
        None,
    )
}

/// Register an app
///
/// A confidential app's `client_secret` is in the answer, once.
#[utoipa::path(post, path = "/v1/clients", tag = "clients",
    security(("oauth2" = ["write:clients"])),
    request_body = ClientBody,
    responses((status = 201, description = "Registered", body = Success<RegisteredClient>)))]
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
    let registered = RegisteredClient {
        client: manage::client_details(&client, state.now()),
        client_secret: secret.map(|s| s.expose().to_owned()),
    };
    with_status(StatusCode::CREATED, registered)
}

/// An app
///
/// Yours, or anyone's for admins holding `admin:clients`.
#[utoipa::path(get, path = "/v1/clients/{id}", tag = "clients",
    security(("oauth2" = ["read:clients"])),
    params(("id" = String, Path, description = "A client id (`cli_…`)")),
    responses((status = 200, description = "The app", body = Success<ClientDetails>)))]
pub async fn get_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let client = manage::visible(&state, &actor(&principal, &req), path.into_inner()).await?;
    ok(manage::client_details(&client, state.now()))
}

/// Change an app
///
/// Absent fields are left as they are; `null` is refused. `first_party`, `resources` and
/// lifting an administrator's lock need admin + `admin:clients`.
#[utoipa::path(patch, path = "/v1/clients/{id}", tag = "clients",
    security(("oauth2" = ["write:clients"])),
    params(("id" = String, Path, description = "A client id (`cli_…`)")),
    request_body = ClientBody,
    responses((status = 200, description = "The app, changed", body = Success<ClientDetails>)))]
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
    let app = manage::controlled(&state, &actor, path.into_inner()).await?;
    let updated = manage::update(&state, &actor, app, input, disabled).await?;
    ok(manage::client_details(&updated, state.now()))
}

/// Delete an app
///
/// Its grants end and its consents are forgotten.
#[utoipa::path(delete, path = "/v1/clients/{id}", tag = "clients",
    security(("oauth2" = ["write:clients"])),
    params(("id" = String, Path, description = "A client id (`cli_…`)")),
    responses((status = 200, description = "Deleted", body = Done)))]
pub async fn delete_client(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let actor = actor(&principal, &req);
    let app = manage::controlled(&state, &actor, path.into_inner()).await?;
    manage::delete(&state, &actor, app).await?;
    done("Client deleted")
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "grace_period": "1h" }))]
pub struct RotateBody {
    /// How long the old secret keeps working: 0 (default) to 7 days.
    #[schema(schema_with = grace_period)]
    grace_period: Option<Value>,
}

/// Rotate an app's secret
///
/// The new secret is in the answer, once; the old one is accepted for `grace_period`.
#[utoipa::path(post, path = "/v1/clients/{id}/secret", tag = "clients",
    security(("oauth2" = ["write:clients"])),
    params(("id" = String, Path, description = "A client id (`cli_…`)")),
    request_body(content = Option<RotateBody>, description = "Optional"),
    responses((status = 200, description = "The app and its new secret", body = Success<RotatedClient>)))]
pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> ApiResult {
    let body: RotateBody = optional_json(body, "grace_period")?;
    let grace = parse_grace(body.grace_period.as_ref())?;
    let actor = actor(&principal, &req);
    let app = manage::controlled(&state, &actor, path.into_inner()).await?;
    let (client, secret) = manage::rotate_secret(&state, &actor, app, grace).await?;
    ok(RotatedClient {
        client: manage::client_details(&client, state.now()),
        client_secret: secret.expose().to_owned(),
    })
}

/// The apps you connected
///
/// What you approved, when, and when the app last used it.
#[utoipa::path(get, path = "/v1/consents", tag = "consents",
    security(("oauth2" = ["read:consents"])),
    responses((status = 200, description = "Your consents", body = Page<ConsentView>)))]
pub async fn list_consents(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    principal.authorize(Action::ReadConsents)?;
    page(
        manage::list_consents(
            &state,
            principal.user.id.clone(),
            principal.workspace().bound().map(str::to_owned),
        )
        .await?,
        None,
    )
}

/// Disconnect an app
///
/// The approval is forgotten and every grant under it ends, refresh and access tokens alike.
#[utoipa::path(delete, path = "/v1/consents/{id}", tag = "consents",
    security(("oauth2" = ["write:consents"])),
    params(("id" = String, Path, description = "A consent id (`con_…`)")),
    responses((status = 200, description = "Disconnected", body = Done)))]
pub async fn revoke_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    manage::revoke_consent(&state, &actor(&principal, &req), path.into_inner()).await?;
    done("App disconnected")
}
