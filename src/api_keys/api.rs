//! `/v1/api-keys` (the caller's own keys), `/v1/users/{id}/api-keys` (admins holding
//! `admin:users` for anyone) and `/v1/audit-events` (admins holding `read:audit`). Handlers
//! parse, ask the policy, and call `service`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use chrono::{DateTime, Duration};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::format::Mode;
use super::model::{self, ApiKey, ApiKeyView, ListFilter, ParsedRights, Status};
use super::restrictions::Restrictions;
use super::service;
use super::{
    Expiry, KeyRequest, duration_from_seconds, parse_duration, validate_description, validate_name,
};
use crate::accounts::model::{self as users, User};
use crate::audit::{self, AuditEventView, EventFilter};
use crate::http::envelope::{Done, Page, Success, cursor, with_status};
use crate::http::errors::ErrorEnvelope;
use crate::http::middleware::optional_json;
use crate::http::openapi::{addresses_given, grace_period, lifetime, scopes_given};
use crate::http::{ApiError, ApiResult, done, nullable, ok, page};
use crate::policy::{self, Action, Allowed, Denied};
use crate::principal::Principal;
use crate::scopes::ScopeSet;
use crate::state::AppState;
use crate::workspaces::Standing;

/// A new key. Give at most one of `expires_in`, `expires_at` and `never_expires` (default:
/// the server's default lifetime, clipped to the calling credential's own expiry).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "CI deploys",
    "expires_in": "90d",
    "mode": "live",
    "scopes": ["read:users"],
    "allowed_ips": ["203.0.113.0/24"]
}))]
pub struct CreateKeyBody {
    /// The workspace the key acts in. Default: the calling credential's workspace, else your
    /// personal workspace.
    #[schema(example = "ws_4x9TQbJ2mR8pLw3nV6yZ1cKe")]
    workspace_id: Option<String>,
    /// Required.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    name: Option<String>,
    #[serde(default)]
    #[schema(max_length = 500, pattern = "^[^\\x00-\\x09\\x0B-\\x1F\\x7F-\\x9F]*$")]
    description: String,
    #[schema(schema_with = lifetime)]
    expires_in: Option<Value>,
    #[schema(format = DateTime, example = "2027-01-31T00:00:00Z")]
    expires_at: Option<String>,
    /// Only when the server allows keys that never expire.
    #[serde(default)]
    never_expires: bool,
    /// Default: `live`.
    #[schema(value_type = Option<Mode>)]
    mode: Option<String>,
    /// Makes a restricted key (`rk_…`) holding only these scopes.
    #[schema(schema_with = scopes_given)]
    scopes: Option<Value>,
    /// IPv4/IPv6 addresses and CIDR blocks the key may be used from.
    #[schema(schema_with = addresses_given)]
    allowed_ips: Option<Value>,
    /// Origins (`https://app.example.com`) and host patterns (`*.example.com`) of the pages
    /// that may use the key (matched against `Origin`, then `Referer`); at most 50.
    #[schema(nullable, max_items = 50, example = json!(["https://app.example.com"]))]
    allowed_referrers: Option<Vec<String>>,
    /// `METHOD /path` patterns the key may call (`GET /v1/orders/*`); at most 50.
    #[schema(nullable, max_items = 50, example = json!(["GET /v1/users/me"]))]
    allowed_endpoints: Option<Vec<String>>,
    /// At most the server's (and the calling key's) allowance.
    #[schema(minimum = 1)]
    rate_limit_per_minute: Option<i64>,
}

/// A key as issued: `key` is the secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct NewKey {
    #[serde(flatten)]
    pub(crate) view: ApiKeyView,
    #[schema(example = "sk_live_4eC39HqLyjWDarjtT1zdp7dcA1b2C3")]
    pub(crate) key: String,
}

/// A rolled key: the new one (with `key`, shown once) and the one it replaces.
#[derive(Serialize, ToSchema)]
pub struct RolledKey {
    #[serde(flatten)]
    view: ApiKeyView,
    key: String,
    previous_key: ApiKeyView,
}

fn string_list(field: &'static str, value: &Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| ApiError::validation(field, "Expected a list of strings"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join(" ")),
        _ => Err(ApiError::validation(field, "Expected a list of strings")),
    }
}

fn parse_expiry(body: &CreateKeyBody) -> Result<Expiry, ApiError> {
    let given = [
        body.expires_in.is_some(),
        body.expires_at.is_some(),
        body.never_expires,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if given > 1 {
        return Err(ApiError::validation(
            "expires_in",
            "Give at most one of expires_in, expires_at and never_expires",
        ));
    }
    if body.never_expires {
        return Ok(Expiry::Never);
    }
    if let Some(v) = &body.expires_in {
        let parsed = match v {
            Value::Number(n) => n.as_i64().and_then(duration_from_seconds),
            Value::String(s) => parse_duration(s),
            _ => None,
        };
        return parsed.map(Expiry::In).ok_or_else(|| {
            ApiError::validation(
                "expires_in",
                "Expected a duration such as \"90d\", \"12h\" or a number of seconds",
            )
        });
    }
    if let Some(at) = &body.expires_at {
        let t = DateTime::parse_from_rfc3339(at).map_err(|_| {
            ApiError::validation(
                "expires_at",
                "Expected an RFC 3339 time such as 2027-01-31T00:00:00Z",
            )
        })?;
        return Ok(Expiry::At(crate::clock::truncate(t.naive_utc())));
    }
    Ok(Expiry::Default)
}

pub(crate) fn key_request(body: &CreateKeyBody) -> Result<KeyRequest, ApiError> {
    let mode = match body.mode.as_deref() {
        None => Mode::Live,
        Some(m) => {
            Mode::parse(m).ok_or_else(|| ApiError::validation("mode", "mode is live or test"))?
        }
    };
    let scopes = match &body.scopes {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            ScopeSet::parse(&string_list("scopes", v)?)
                .map_err(|e| ApiError::validation("scopes", e.to_string()))?,
        ),
    };
    let allowed_ips = match &body.allowed_ips {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => model::parse_allowed_ips(&string_list("allowed_ips", v)?)
            .map_err(|m| ApiError::validation("allowed_ips", m))?,
    };
    let restrictions = Restrictions::parse(
        body.allowed_referrers.as_deref().unwrap_or_default(),
        body.allowed_endpoints.as_deref().unwrap_or_default(),
    )
    .map_err(|(field, message)| ApiError::validation(field, message))?;
    Ok(KeyRequest {
        name: body.name.clone().unwrap_or_default(),
        description: body.description.clone(),
        mode,
        scopes,
        allowed_ips,
        restrictions,
        expiry: parse_expiry(body)?,
        rate_limit_per_minute: body.rate_limit_per_minute,
        workspace_id: String::new(),
    })
}

/// The workspace a new key of `owner_id` goes to: the one named, else the calling
/// credential's (for one's own keys), else the owner's personal workspace; with the caller's
/// standing there.
async fn key_workspace(
    state: &AppState,
    principal: &Principal,
    owner_id: &str,
    named: Option<&str>,
) -> Result<Standing, ApiError> {
    let own = owner_id == principal.user.id;
    let asked = named
        .or_else(|| principal.workspace().bound().filter(|_| own))
        .map(str::to_owned);
    let (owner, caller) = (owner_id.to_owned(), principal.user.id.clone());
    let standing = state
        .db(move |c| {
            let owner_standing = Standing::load_or_personal(c, asked.as_deref(), &owner)?;
            if owner == caller {
                return Ok::<_, crate::db::DbError>(owner_standing);
            }
            // Someone else's key (an administrator of the install): the owner must be a
            // member; the caller's own standing is what the policy weighs.
            if owner_standing.role.is_none() {
                return Ok(Standing {
                    role: None,
                    ..owner_standing
                });
            }
            Standing::load(c, &owner_standing.id, &caller)
        })
        .await?;
    if !own && standing.workspace.is_some() && standing.role.is_none() && named.is_some() {
        return Err(ApiError::validation(
            "workspace_id",
            "The key's owner is not a member of this workspace",
        ));
    }
    Ok(standing)
}

impl CreateKeyBody {
    pub(crate) fn workspace_id(&self) -> Option<&str> {
        self.workspace_id.as_deref()
    }
}

pub(crate) fn client_ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_ip::client_ip(req).map(|ip| ip.to_string())
}

/// 201 with the new key, shown this once.
async fn issue_response(
    state: &AppState,
    principal: &Principal,
    allowed: Allowed,
    owner: User,
    body: &CreateKeyBody,
    standing: Standing,
    ip: Option<String>,
) -> ApiResult {
    let mut request = key_request(body)?;
    request.workspace_id = standing.id;
    let (key, secret) = service::issue(
        state,
        allowed,
        &principal.caller(),
        &principal.actor(ip),
        owner,
        request,
    )
    .await?;
    let created = NewKey {
        view: key.view(state.now()),
        key: secret.expose().to_owned(),
    };
    with_status(StatusCode::CREATED, created)
}

/// Create a key for yourself
///
/// The key is in the answer, once. It is never broader than the credential that creates it
/// (`AUTH_006`); an app's access token cannot create keys.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys",
    security(("oauth2" = ["write:api_keys"])),
    request_body = CreateKeyBody,
    responses((status = 201, description = "Created", body = Success<NewKey>),
        (status = 404, description = "No such workspace of yours (`workspace_id`)", body = ErrorEnvelope)))]
pub async fn create_own(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateKeyBody>,
) -> ApiResult {
    let standing = key_workspace(
        &state,
        &principal,
        &principal.user.id,
        body.workspace_id.as_deref(),
    )
    .await?;
    let allowed = principal.authorize(Action::MintKey {
        owner: &principal.user.id,
        workspace: standing.policy(),
    })?;
    if standing.workspace.is_none() {
        return Err(ApiError::not_found("Workspace"));
    }
    let owner = (*principal.user).clone();
    issue_response(
        &state,
        &principal,
        allowed,
        owner,
        &body,
        standing,
        client_ip(&req),
    )
    .await
}

/// Create a key for a user
///
/// Yourself, or anyone for admins holding `admin:users`.
#[utoipa::path(post, path = "/v1/users/{id}/api-keys", tag = "api-keys",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "The owner's user id")),
    request_body = CreateKeyBody,
    responses((status = 201, description = "Created", body = Success<NewKey>)))]
pub async fn create_for_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<CreateKeyBody>,
) -> ApiResult {
    let id = path.into_inner();
    // Rights first (another user's existence is not disclosed), then the workspace.
    principal.authorize(Action::ReadKeys {
        owner: &id,
        workspace: None,
    })?;
    let standing = key_workspace(&state, &principal, &id, body.workspace_id.as_deref()).await?;
    let allowed = principal.authorize(Action::MintKey {
        owner: &id,
        workspace: standing.policy(),
    })?;
    if standing.workspace.is_none() {
        return Err(ApiError::not_found("Workspace"));
    }
    let owner = load_user(&state, &principal, id).await?;
    issue_response(
        &state,
        &principal,
        allowed,
        owner,
        &body,
        standing,
        client_ip(&req),
    )
    .await
}

/// The user named by a path the policy already let the caller act on (themselves, or anyone
/// for administrators holding `admin:users`).
pub(crate) async fn load_user(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<User, ApiError> {
    if id == principal.user.id {
        return Ok((*principal.user).clone());
    }
    state
        .db(move |c| users::find_by_id(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Keys per page (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `pagination.next_cursor` of the previous page.
    cursor: Option<String>,
    #[param(value_type = Option<Status>)]
    status: Option<String>,
    /// Only keys expiring within this duration.
    #[param(example = "30d")]
    expiring_within: Option<String>,
}

pub(crate) fn list_filter(query: &ListQuery) -> Result<ListFilter, ApiError> {
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::validation("limit", "limit is between 1 and 100"));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::validation("status", "status is active, expired or revoked")
        })?),
    };
    let expiring_within = match query.expiring_within.as_deref() {
        None => None,
        Some(d) => Some(parse_duration(d).ok_or_else(|| {
            ApiError::validation("expiring_within", "Expected a duration such as \"30d\"")
        })?),
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(cursor::decode(c).ok_or_else(|| {
            ApiError::validation("cursor", "The cursor is not one this API gave out")
        })?),
    };
    // One more than asked tells whether there is a next page.
    Ok(ListFilter {
        status,
        expiring_within,
        before,
        limit: limit + 1,
        workspace_id: None,
    })
}

/// A page of keys: one user's (`owner`), or every member's of the filter's workspace.
pub(crate) async fn list_keys_with(
    state: &AppState,
    owner: Option<String>,
    filter: ListFilter,
) -> ApiResult {
    let now = state.now();
    let wanted = (filter.limit - 1) as usize;
    let mut keys = state
        .db(move |c| model::list(c, owner.as_deref(), &filter, now))
        .await?;
    let next = (keys.len() > wanted).then(|| {
        keys.truncate(wanted);
        keys.last().map(|k| cursor::encode(k.created_at, &k.id))
    });
    page(keys.iter().map(|k| k.view(now)).collect(), next.flatten())
}

/// List your keys
///
/// Newest first, a page at a time.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    security(("oauth2" = ["read:api_keys"])),
    params(ListQuery),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyView>)))]
pub async fn list_own(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult {
    principal.authorize(Action::ReadKeys {
        owner: &principal.user.id,
        workspace: None,
    })?;
    // A credential bound to a workspace lists that workspace's keys only.
    let mut filter = list_filter(&query)?;
    filter.workspace_id = principal.workspace().bound().map(str::to_owned);
    list_keys_with(&state, Some(principal.user.id.clone()), filter).await
}

/// List a user's keys
///
/// Yours, or anyone's for admins holding `admin:users`.
#[utoipa::path(get, path = "/v1/users/{id}/api-keys", tag = "api-keys",
    security(("oauth2" = ["read:api_keys"])),
    params(("id" = String, Path, description = "The owner's user id"), ListQuery),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyView>)))]
pub async fn list_for_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> ApiResult {
    let id = path.into_inner();
    principal.authorize(Action::ReadKeys {
        owner: &id,
        workspace: None,
    })?;
    let owner = load_user(&state, &principal, id).await?;
    let mut filter = list_filter(&query)?;
    // One's own keys, by this path too: a credential bound to a workspace sees that
    // workspace's only.
    if owner.id == principal.user.id {
        filter.workspace_id = principal.workspace().bound().map(str::to_owned);
    }
    list_keys_with(&state, Some(owner.id), filter).await
}

/// A stored key, whoever owns it; the caller's right to it is the policy's to decide.
pub(crate) async fn load_key(state: &AppState, id: String) -> Result<ApiKey, ApiError> {
    state
        .db(move |c| model::find(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))
}

/// Another user's key is "not found" to whoever may not know it exists.
pub(crate) fn key_denied(denied: Denied) -> ApiError {
    match denied {
        Denied::NotFound(_) => ApiError::not_found("API key"),
        other => other.into(),
    }
}

/// May the caller change (PATCH, roll) this key? Never one broader than itself.
pub(crate) fn may_change(principal: &Principal, key: &ApiKey) -> Result<Allowed, ApiError> {
    let rights = ParsedRights::of(key);
    policy::authorize(
        &principal.caller(),
        Action::ChangeKey {
            owner: &key.user_id,
            workspace: &key.workspace_id,
            key: rights.shape(),
            roll: None,
        },
    )
    .map_err(key_denied)
}

/// May the caller roll this key? As [`may_change`], and a roll issues a key: where only
/// workspace admins issue keys, a member does not roll their own either.
pub(crate) async fn may_roll(
    state: &AppState,
    principal: &Principal,
    key: &ApiKey,
) -> Result<Allowed, ApiError> {
    let (ws, user) = (key.workspace_id.clone(), key.user_id.clone());
    let standing = state
        .db(move |c| crate::workspaces::Standing::load(c, &ws, &user))
        .await?;
    let rights = ParsedRights::of(key);
    policy::authorize(
        &principal.caller(),
        Action::ChangeKey {
            owner: &key.user_id,
            workspace: &key.workspace_id,
            key: rights.shape(),
            roll: Some(standing.policy()),
        },
    )
    .map_err(key_denied)
}

/// A key
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("oauth2" = ["read:api_keys"])),
    params(("id" = String, Path, description = "A key id (`key_…`)")),
    responses((status = 200, description = "The key", body = Success<ApiKeyView>)))]
pub async fn get_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let key = load_key(&state, path.into_inner()).await?;
    policy::authorize(
        &principal.caller(),
        Action::ReadKeys {
            owner: &key.user_id,
            workspace: Some(&key.workspace_id),
        },
    )
    .map_err(key_denied)?;
    ok(key.view(state.now()))
}

/// A PATCH: an absent field is left as it is; `null` clears a field that may be empty
/// (`description`, `allowed_ips`) and is refused for one that may not (`name`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "name": "CI deploys (old runners)", "allowed_ips": null }))]
pub struct UpdateKeyBody {
    /// Cannot be `null`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = String, min_length = 1, max_length = 100, pattern = "^[^\\x00-\\x1F\\x7F-\\x9F]*$")]
    name: Option<Option<String>>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500, pattern = "^[^\\x00-\\x09\\x0B-\\x1F\\x7F-\\x9F]*$")]
    description: Option<Option<String>>,
    /// `null` clears it (any address).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = addresses_given)]
    allowed_ips: Option<Option<Value>>,
    /// `null` or `[]` clears it (any origin).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, nullable, max_items = 50)]
    allowed_referrers: Option<Option<Vec<String>>>,
    /// `null` or `[]` clears it (any endpoint).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<String>>, nullable, max_items = 50)]
    allowed_endpoints: Option<Option<Vec<String>>>,
}

fn key_changes(body: UpdateKeyBody) -> Result<service::KeyChanges, ApiError> {
    let name = match body.name {
        None => None,
        Some(None) => {
            return Err(ApiError::validation(
                "name",
                "A key's name cannot be removed, only changed",
            ));
        }
        Some(Some(n)) => Some(validate_name(&n)?),
    };
    let description = match body.description {
        None => None,
        Some(None) => Some(String::new()),
        Some(Some(d)) => Some(validate_description(&d)?),
    };
    let allowed_ips = match body.allowed_ips {
        None => None,
        Some(None) => Some(Vec::new()),
        Some(Some(v)) => Some(
            model::parse_allowed_ips(&string_list("allowed_ips", &v)?)
                .map_err(|m| ApiError::validation("allowed_ips", m))?,
        ),
    };
    let restrictions =
        (body.allowed_referrers.is_some() || body.allowed_endpoints.is_some()).then(|| {
            service::RestrictionChanges {
                referrers: body.allowed_referrers.map(Option::unwrap_or_default),
                endpoints: body.allowed_endpoints.map(Option::unwrap_or_default),
            }
        });
    Ok(service::KeyChanges {
        name,
        description,
        allowed_ips,
        restrictions,
    })
}

/// Change a key
///
/// Its name, description and IP allowlist; a key broader than the calling credential cannot
/// be changed with it (`AUTH_006`).
#[utoipa::path(patch, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "A key id (`key_…`)")),
    request_body = UpdateKeyBody,
    responses((status = 200, description = "The key, changed", body = Success<ApiKeyView>)))]
pub async fn update_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateKeyBody>,
) -> ApiResult {
    let changes = key_changes(body.into_inner())?;
    let key = load_key(&state, path.into_inner()).await?;
    let allowed = may_change(&principal, &key)?;
    let updated = service::update(
        &state,
        allowed,
        &principal.caller(),
        &principal.actor(client_ip(&req)),
        key,
        changes,
    )
    .await?;
    ok(updated.view(state.now()))
}

/// Revoke a key
///
/// At once, on every instance within a second.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "A key id (`key_…`)")),
    responses((status = 200, description = "Revoked", body = Done)))]
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let key = load_key(&state, path.into_inner()).await?;
    let allowed = policy::authorize(
        &principal.caller(),
        Action::RevokeKey {
            owner: &key.user_id,
            workspace: &key.workspace_id,
        },
    )
    .map_err(key_denied)?;
    service::revoke(&state, allowed, &principal.actor(client_ip(&req)), key).await?;
    done("API key revoked successfully")
}

#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "grace_period": "24h" }))]
pub struct RollBody {
    /// How long the old key keeps working: 0 (default) to 7 days.
    #[schema(schema_with = grace_period)]
    grace_period: Option<Value>,
}

pub const MAX_GRACE: Duration = Duration::days(7);

pub fn parse_grace(value: Option<&Value>) -> Result<Duration, ApiError> {
    let grace = match value {
        None | Some(Value::Null) => Duration::zero(),
        Some(Value::Number(n)) if n.as_i64() == Some(0) => Duration::zero(),
        Some(Value::String(s)) if s == "0" => Duration::zero(),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(duration_from_seconds)
            .ok_or_else(bad_grace)?,
        Some(Value::String(s)) => parse_duration(s).ok_or_else(bad_grace)?,
        Some(_) => return Err(bad_grace()),
    };
    if grace > MAX_GRACE {
        return Err(ApiError::validation(
            "grace_period",
            "The grace period is at most 7 days",
        ));
    }
    Ok(grace)
}

fn bad_grace() -> ApiError {
    ApiError::validation(
        "grace_period",
        "Expected a duration from 0 to 7d, such as \"24h\", or a number of seconds",
    )
}

/// Roll a key
///
/// A new key with the same rights; the old one works for `grace_period`, then expires. A
/// revoked or expired key, or one rolled before, cannot be rolled (`RESOURCE_002`).
#[utoipa::path(post, path = "/v1/api-keys/{id}/roll", tag = "api-keys",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "A key id (`key_…`)")),
    request_body(content = Option<RollBody>, description = "Optional"),
    responses(
        (status = 201, description = "Rolled", body = Success<RolledKey>),
        (status = 409, description = "Revoked, expired or rolled before (`RESOURCE_002`)", body = ErrorEnvelope),
    ))]
pub async fn roll_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: Result<web::Bytes, actix_web::Error>,
) -> ApiResult {
    let body: RollBody = optional_json(body, "grace_period")?;
    let grace = parse_grace(body.grace_period.as_ref())?;
    let key = load_key(&state, path.into_inner()).await?;
    let allowed = may_roll(&state, &principal, &key).await?;
    let (old, new, secret) = service::roll(
        &state,
        allowed,
        &principal.caller(),
        &principal.actor(client_ip(&req)),
        key,
        grace,
    )
    .await?;
    let now = state.now();
    let rolled = RolledKey {
        view: new.view(now),
        key: secret,
        previous_key: old.view(now),
    };
    with_status(StatusCode::CREATED, rolled)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Events of this acting user id.
    actor: Option<String>,
    /// Events about this key id.
    // Not `key`: a `key` query parameter is refused everywhere as a credential in the URL.
    key_id: Option<String>,
    /// Events of this action, e.g. `api_key.created`.
    action: Option<String>,
    /// Events per page (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<i64>,
    /// `pagination.next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The audit log (admins)
///
/// Newest first. Events name the user, the key or the app's token they used, and the address.
#[utoipa::path(get, path = "/v1/audit-events", tag = "audit",
    security(("oauth2" = ["read:audit"])),
    params(AuditQuery),
    responses((status = 200, description = "A page of events", body = Page<AuditEventView>)))]
pub async fn audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<AuditQuery>,
) -> ApiResult {
    principal.authorize(Action::ReadAuditLog)?;
    audit_page(&state, query.into_inner(), None).await
}

/// A page of audit events (of one workspace when `workspace_id` is given).
pub(crate) async fn audit_page(
    state: &AppState,
    query: AuditQuery,
    workspace_id: Option<String>,
) -> ApiResult {
    let limit = query.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::validation("limit", "limit is between 1 and 200"));
    }
    let before = match query.cursor.as_deref() {
        None => None,
        Some(c) => Some(cursor::decode(c).ok_or_else(|| {
            ApiError::validation("cursor", "The cursor is not one this API gave out")
        })?),
    };
    let filter = EventFilter {
        actor_user_id: query.actor,
        key_id: query.key_id,
        action: query.action,
        workspace_id,
        before,
        limit: limit + 1,
    };
    let mut events = state.db(move |c| audit::list(c, &filter)).await?;
    let next = (events.len() > limit as usize).then(|| {
        events.truncate(limit as usize);
        events.last().map(|e| cursor::encode(e.occurred_at, &e.id))
    });
    page(
        events.iter().map(audit::AuditEvent::view).collect(),
        next.flatten(),
    )
}

impl From<super::KeyInputError> for ApiError {
    fn from(e: super::KeyInputError) -> Self {
        ApiError {
            field: e.field,
            ..ApiError::new(e.code, e.message)
        }
    }
}

impl From<super::KeyError> for ApiError {
    fn from(e: super::KeyError) -> Self {
        match e {
            super::KeyError::Refused(refused) => refused.into(),
            super::KeyError::Db(e) => e.into(),
        }
    }
}
