//! `/v1/api-keys` (the caller's own keys), `/v1/users/{id}/api-keys` (admins for anyone) and
//! `/v1/audit-events` (admins).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration};
use serde::Deserialize;
use serde_json::{Value, json};

use super::format::Mode;
use super::model::{self, ApiKey, ListFilter, NewKey, RollOutcome, Status};
use super::{
    Expiry, KeyRequest, Requester, build_new_key, parse_duration, validate_description,
    validate_name,
};
use crate::accounts::model::{self as users, User};
use crate::audit::{self, Action, EventFilter, NewEvent};
use crate::http::envelope::{cursor, with_status};
use crate::http::{ApiError, ApiResult, ErrorCode, ok, page};
use crate::principal::Principal;
use crate::scopes::ScopeSet;
use crate::scopes::registry;
use crate::secrets::PlainSecret;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    name: Option<String>,
    #[serde(default)]
    description: String,
    expires_in: Option<Value>,
    expires_at: Option<String>,
    #[serde(default)]
    never_expires: bool,
    mode: Option<String>,
    scopes: Option<Value>,
    allowed_ips: Option<Value>,
    rate_limit_per_minute: Option<i64>,
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
            Value::Number(n) => n.as_i64().filter(|n| *n > 0).map(Duration::seconds),
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

fn key_request(body: &CreateKeyBody) -> Result<KeyRequest, ApiError> {
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
    Ok(KeyRequest {
        name: body.name.clone().unwrap_or_default(),
        description: body.description.clone(),
        mode,
        scopes,
        allowed_ips,
        expiry: parse_expiry(body)?,
        rate_limit_per_minute: body.rate_limit_per_minute,
    })
}

pub(crate) fn client_ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_ip::client_ip(req).map(|ip| ip.to_string())
}

/// Validate, insert and audit a new key for `owner` on behalf of `principal`. Shared by the
/// API and the settings pages.
pub async fn issue(
    state: &AppState,
    principal: &Principal,
    owner: User,
    request: KeyRequest,
    ip: Option<String>,
) -> Result<(ApiKey, PlainSecret), ApiError> {
    let requester: Requester = principal.requester();
    let actor_key = principal.key_id().map(str::to_owned);
    let (pepper, policy, now) = (
        state.digest_pepper.clone(),
        state.settings.keys,
        state.now(),
    );
    let issued = state
        .db(move |c| {
            let registry = registry::all(c)?;
            let new = match build_new_key(&request, &owner, &requester, &registry, &policy, now) {
                Ok(new) => new,
                Err(e) => return Ok(Err(e)),
            };
            let (key, secret) = model::insert(c, &pepper, &new, now)?;
            let mut event = NewEvent::new(Action::KeyCreated);
            event.actor_user_id = Some(requester.user_id.clone());
            event.actor_key_id = actor_key;
            event.subject_user_id = Some(owner.id.clone());
            event.key_id = Some(key.id.clone());
            event.ip = ip;
            event.details = json!({ "name": key.name, "mode": key.mode, "kind": key.kind, "scopes": key.scopes });
            audit::record(c, &event, now)?;
            Ok(Ok((key, secret)))
        })
        .await??;
    Ok(issued)
}

/// 201 with the new key, shown this once.
async fn issue_response(
    state: &AppState,
    principal: &Principal,
    owner: User,
    body: &CreateKeyBody,
    ip: Option<String>,
) -> ApiResult {
    let (key, secret) = issue(state, principal, owner, key_request(body)?, ip).await?;
    let mut data = serde_json::to_value(key.view(state.now())).map_err(ApiError::internal)?;
    data["key"] = json!(secret.expose());
    with_status(StatusCode::CREATED, data)
}

pub async fn create_own(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateKeyBody>,
) -> ApiResult {
    principal.require_scope("write:api_keys")?;
    let owner = (*principal.user).clone();
    issue_response(&state, &principal, owner, &body, client_ip(&req)).await
}

pub async fn create_for_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<CreateKeyBody>,
) -> ApiResult {
    principal.require_scope("write:api_keys")?;
    let owner = visible_user(&state, &principal, path.into_inner()).await?;
    if owner.id != principal.user.id {
        principal.require_admin()?;
    }
    issue_response(&state, &principal, owner, &body, client_ip(&req)).await
}

/// A user the caller may see: themselves, or anyone for admins. Others are "not found".
pub(crate) async fn visible_user(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<User, ApiError> {
    if id == principal.user.id {
        return Ok((*principal.user).clone());
    }
    if !principal.user.is_admin() {
        return Err(ApiError::not_found("User"));
    }
    state
        .db(move |c| users::find_by_id(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("User"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    limit: Option<i64>,
    cursor: Option<String>,
    status: Option<String>,
    expiring_within: Option<String>,
}

fn list_filter(query: &ListQuery) -> Result<ListFilter, ApiError> {
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
    })
}

async fn list_keys_of(state: &AppState, user_id: String, query: &ListQuery) -> ApiResult {
    let filter = list_filter(query)?;
    let now = state.now();
    let wanted = (filter.limit - 1) as usize;
    let mut keys = state
        .db(move |c| model::list_for_user(c, &user_id, &filter, now))
        .await?;
    let next = (keys.len() > wanted).then(|| {
        keys.truncate(wanted);
        keys.last().map(|k| cursor::encode(k.created_at, &k.id))
    });
    page(keys.iter().map(|k| k.view(now)).collect(), next.flatten())
}

pub async fn list_own(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ListQuery>,
) -> ApiResult {
    principal.require_scope("read:api_keys")?;
    list_keys_of(&state, principal.user.id.clone(), &query).await
}

pub async fn list_for_user(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> ApiResult {
    principal.require_scope("read:api_keys")?;
    let owner = visible_user(&state, &principal, path.into_inner()).await?;
    list_keys_of(&state, owner.id, &query).await
}

/// A key the caller may manage: their own, or any for admins. Others are "not found".
pub(crate) async fn visible_key(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<ApiKey, ApiError> {
    let key = state
        .db(move |c| model::find(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    if key.user_id == principal.user.id || principal.user.is_admin() {
        Ok(key)
    } else {
        Err(ApiError::not_found("API key"))
    }
}

pub async fn get_key(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("read:api_keys")?;
    let key = visible_key(&state, &principal, path.into_inner()).await?;
    ok(key.view(state.now()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKeyBody {
    name: Option<String>,
    description: Option<String>,
    allowed_ips: Option<Value>,
}

pub async fn update_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateKeyBody>,
) -> ApiResult {
    principal.require_scope("write:api_keys")?;
    let key = visible_key(&state, &principal, path.into_inner()).await?;
    let name = body.name.as_deref().map(validate_name).transpose()?;
    let description = body
        .description
        .as_deref()
        .map(validate_description)
        .transpose()?;
    let nets = match &body.allowed_ips {
        None => None,
        Some(Value::Null) => Some(Vec::new()),
        Some(v) => Some(
            model::parse_allowed_ips(&string_list("allowed_ips", v)?)
                .map_err(|m| ApiError::validation("allowed_ips", m))?,
        ),
    };
    let now = state.now();
    let mut event = actor_event(Action::KeyUpdated, &principal, &key, client_ip(&req));
    event.details = json!({ "name": name.is_some(), "description": description.is_some(), "allowed_ips": nets.as_ref().map(|n| model::nets_to_storage(n)) });
    let id = key.id.clone();
    let updated = state
        .db(move |c| {
            model::update(
                c,
                &id,
                name.as_deref(),
                description.as_deref(),
                nets.as_deref(),
                now,
            )?;
            audit::record(c, &event, now)?;
            model::find(c, &id)
        })
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    state.key_cache.invalidate_all();
    ok(updated.view(now))
}

/// Revoke `key` now (a no-op for a revoked key) and forget it on this instance at once.
/// Shared by the API and the settings pages.
pub async fn revoke(
    state: &AppState,
    principal: &Principal,
    key: ApiKey,
    ip: Option<String>,
) -> Result<(), ApiError> {
    let now = state.now();
    let mut event = actor_event(Action::KeyRevoked, principal, &key, ip);
    event.details = json!({ "name": key.name });
    let by = principal.user.id.clone();
    state
        .db(move |c| {
            if model::revoke(c, &key.id, &by, now)? {
                audit::record(c, &event, now)?;
            }
            Ok(())
        })
        .await?;
    state.key_cache.invalidate_all();
    Ok(())
}

fn actor_event(
    action: Action,
    principal: &Principal,
    key: &ApiKey,
    ip: Option<String>,
) -> NewEvent {
    let mut event = NewEvent::new(action);
    event.actor_user_id = Some(principal.user.id.clone());
    event.actor_key_id = principal.key_id().map(str::to_owned);
    event.subject_user_id = Some(key.user_id.clone());
    event.key_id = Some(key.id.clone());
    event.ip = ip;
    event
}

pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    principal.require_scope("write:api_keys")?;
    let key = visible_key(&state, &principal, path.into_inner()).await?;
    revoke(&state, &principal, key, client_ip(&req)).await?;
    Ok(HttpResponse::Ok()
        .json(json!({ "success": true, "message": "API key revoked successfully" })))
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollBody {
    /// How long the old key keeps working: 0 (default) to 7 days.
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
            .filter(|n| *n > 0)
            .map(Duration::seconds)
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

/// Roll `key`: a new key with the same owner and rights; the old one works until the grace
/// period ends. Shared by the API and the settings page.
pub async fn roll(
    state: &AppState,
    principal: &Principal,
    key: ApiKey,
    grace: Duration,
    ip: Option<String>,
) -> Result<(ApiKey, ApiKey, String), ApiError> {
    let now = state.now();
    match key.status(now) {
        Status::Revoked => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "A revoked key cannot be rolled; create a new key",
            ));
        }
        Status::Expired => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                "An expired key cannot be rolled; create a new key",
            ));
        }
        Status::Active => {}
    }
    if let Some(successor) = &key.rolled_to {
        return Err(already_rolled(successor));
    }
    let template = NewKey {
        user_id: key.user_id.clone(),
        issued_by: principal.user.id.clone(),
        name: key.name.clone(),
        description: key.description.clone(),
        mode: key.mode(),
        kind: key.kind(),
        scopes: key.scope_set(),
        allowed_ips: key.allowed_nets(),
        rate_limit_per_minute: key.rate_limit_per_minute,
        expires_at: Some(
            now + state
                .settings
                .keys
                .default_lifetime
                .min(state.settings.keys.max_lifetime),
        ),
        rolled_from: Some(key.id.clone()),
    };
    let mut event = NewEvent::new(Action::KeyRolled);
    event.actor_user_id = Some(principal.user.id.clone());
    event.actor_key_id = principal.key_id().map(str::to_owned);
    event.subject_user_id = Some(key.user_id.clone());
    event.key_id = Some(key.id.clone());
    event.ip = ip;
    let pepper = state.digest_pepper.clone();
    let outcome = state
        .db(move |c| {
            let outcome = model::roll(c, &pepper, &key.id, &template, grace, now)?;
            if let RollOutcome::Rolled { new, .. } = &outcome {
                event.details =
                    json!({ "new_key_id": new.id, "grace_seconds": grace.num_seconds() });
                audit::record(c, &event, now)?;
            }
            Ok(outcome)
        })
        .await?;
    state.key_cache.invalidate_all();
    match outcome {
        RollOutcome::Rolled { old, new, secret } => Ok((*old, *new, secret.expose().to_owned())),
        RollOutcome::AlreadyRolled { successor } => Err(already_rolled(&successor)),
    }
}

fn already_rolled(successor: &str) -> ApiError {
    ApiError::new(
        ErrorCode::Conflict,
        format!("This key was already rolled to {successor}; roll that key instead"),
    )
}

pub async fn roll_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult {
    principal.require_scope("write:api_keys")?;
    // The body is optional, but a body that does not parse must not silently mean "no grace".
    let body: RollBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            if e.is_data() {
                ApiError::validation("grace_period", format!("Invalid request body: {e}"))
            } else {
                ApiError::new(
                    ErrorCode::MalformedBody,
                    "The request body is not valid JSON",
                )
            }
        })?
    };
    let grace = parse_grace(body.grace_period.as_ref())?;
    let key = visible_key(&state, &principal, path.into_inner()).await?;
    let (old, new, secret) = roll(&state, &principal, key, grace, client_ip(&req)).await?;
    let now = state.now();
    let mut data = serde_json::to_value(new.view(now)).map_err(ApiError::internal)?;
    data["key"] = json!(secret);
    data["previous_key"] = serde_json::to_value(old.view(now)).map_err(ApiError::internal)?;
    with_status(StatusCode::CREATED, data)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    /// Not `key`: a `key` query parameter is refused everywhere as a credential in the URL.
    key_id: Option<String>,
    action: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

pub async fn audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<AuditQuery>,
) -> ApiResult {
    principal.require_admin()?;
    let query = query.into_inner();
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
