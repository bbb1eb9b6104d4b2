//! Device authorization (RFC 8628): sign-in for CLIs and TVs. The device asks
//! `POST /oauth/device_authorization` for a `device_code` (its secret, kept as a digest) and a
//! `user_code` (eight consonants, `BDFH-JKLM`, typed by the user in any case, with or without
//! the dash, also kept as a digest); the signed-in user enters it on `/device`, sees the app
//! and the scopes, and approves or denies (CSRF, the consent page's rules: scopes the user may
//! grant, a private app only in its workspace); the device polls the token endpoint
//! (`grants::device_code`) until then. Entering codes is limited per session and per address,
//! so that nobody guesses a live code. The codes themselves are kept by the core (`gatehouse_core::device`).

use crate::oauth::error::Respond;
use crate::token::read_body;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::{self, Action, NewEvent};
use crate::clients::{self, Client};
use crate::grants::{self, Approval};
use crate::pages::{Nav, csrf_matches, error_page, form_expired, render};
use crate::policy::{Role, grantable};
use crate::principal::SignedIn;
use crate::scopes::{ScopeSet, registry};
use crate::state::AppState;
use crate::token::{OAuthError, OAuthErrorBody, authenticate_client};
use crate::workspaces;

pub use gatehouse_core::device::*;

/// RFC 8628 §3.2.
#[derive(Serialize, ToSchema)]
pub struct DeviceAuthorization {
    /// The device's secret for polling the token endpoint.
    #[schema(example = "dc_4eC39HqLyjWDarjtT1zdp7dcA1b2C3")]
    pub device_code: String,
    /// What the user types at `verification_uri`.
    #[schema(example = "BDFH-JKLM")]
    pub user_code: String,
    #[schema(format = "uri")]
    pub verification_uri: String,
    /// `verification_uri` with the code filled in (for a QR code or a link).
    #[schema(format = "uri")]
    pub verification_uri_complete: String,
    #[schema(example = 600)]
    pub expires_in: i64,
    /// Seconds to wait between polls.
    #[schema(example = 5)]
    pub interval: i32,
}

/// What `POST /oauth/device_authorization` reads: the client's authentication (as at the
/// token endpoint; a public client sends its `client_id`) and what it asks for.
#[derive(ToSchema)]
#[schema(example = json!({"client_id": "cli_5tGh8Jk2LmN0pQrS", "scope": "read:users"}))]
pub struct DeviceRequest {
    #[schema(required = false)]
    pub client_id: String,
    /// `client_secret_post` (not with `Authorization: Basic`).
    #[schema(required = false)]
    pub client_secret: String,
    /// Space-separated, within the client's (default: all of the client's).
    #[schema(required = false)]
    pub scope: String,
    /// RFC 8707: the one resource server the tokens will be for.
    #[schema(required = false)]
    pub resource: String,
}

/// Device authorization (RFC 8628)
///
/// For apps without a browser (CLIs, TVs): answers a `device_code` to poll the token endpoint
/// with (`grant_type=urn:ietf:params:oauth:grant-type:device_code`) and a `user_code` the user
/// enters at `verification_uri`. The client must be registered for the device grant.
#[utoipa::path(post, path = "/oauth/device_authorization", tag = "oauth",
    security((), ("client_basic" = [])),
    request_body(content(
        (DeviceRequest = "application/x-www-form-urlencoded"),
        (DeviceRequest = "application/json"),
    )),
    responses(
        (status = 200, description = "The codes", body = DeviceAuthorization),
        (status = 400, description = "`invalid_request`, `invalid_scope`, `invalid_target`, `unauthorized_client`", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`", body = OAuthErrorBody),
        (status = 413, description = "`invalid_request`: the body is too large", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`", body = OAuthErrorBody),
    ))]
pub async fn authorization(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Result<web::Bytes, actix_web::Error>,
) -> HttpResponse {
    let answer = async {
        let body = read_body(&req, body)?;
        let client = authenticate_client(&state, &req, &body).await?;
        if !client.allows_grant(clients::DEVICE_CODE) {
            return Err(OAuthError::UnauthorizedClient(
                "This client may not use the device grant".into(),
            ));
        }
        let allowed = client.scopes();
        let scopes = match body
            .get("scope")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
        {
            None => allowed.clone(),
            Some(raw) => {
                ScopeSet::parse(raw).map_err(|e| OAuthError::InvalidScope(e.to_string()))?
            }
        };
        if let Some(extra) = scopes.difference(&allowed).first() {
            return Err(OAuthError::InvalidScope(format!(
                "This client may not ask for {extra}"
            )));
        }
        if scopes.is_empty() {
            return Err(OAuthError::InvalidScope("No scope was requested".into()));
        }
        let resource = body
            .get("resource")
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty());
        if resource.is_some() {
            grants::issue::requested_audience(&state, &client, resource.as_deref())?;
        }
        let new = NewDevice {
            client_id: client.id.clone(),
            scopes,
            resource,
        };
        let (pepper, now) = (state.digest_pepper.clone(), state.now());
        let (device_code, user_code) = state.db(move |c| insert(c, &pepper, &new, now)).await?;
        let issuer = &state.settings.issuer;
        let shown = display_user_code(&user_code);
        Ok(DeviceAuthorization {
            device_code: device_code.expose().to_owned(),
            verification_uri: format!("{issuer}/device"),
            verification_uri_complete: format!("{issuer}/device?user_code={shown}"),
            user_code: shown,
            expires_in: LIFETIME.num_seconds(),
            interval: INTERVAL,
        })
    };
    match answer.await {
        Ok(codes) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(codes),
        Err(e) => e.response(),
    }
}

#[derive(Template)]
#[template(path = "device.html")]
struct DevicePage<'a> {
    nav: Option<Nav>,
    /// `enter`, `approve` or `done`.
    stage: &'static str,
    csrf_token: &'a str,
    user_code: String,
    error: Option<String>,
    client_name: String,
    owner_name: String,
    self_registered: bool,
    scopes: Vec<(String, String)>,
    /// The user's workspaces to pick from (id, name, role); empty: one, or fixed by the app.
    workspace_choices: Vec<(String, String, &'static str)>,
    fixed_workspace_name: String,
    approved: bool,
}

impl<'a> DevicePage<'a> {
    fn enter(signed_in: &'a SignedIn, user_code: String, error: Option<String>) -> Self {
        DevicePage {
            nav: Some(signed_in.nav("device")),
            stage: "enter",
            csrf_token: &signed_in.csrf_token,
            user_code,
            error,
            client_name: String::new(),
            owner_name: String::new(),
            self_registered: false,
            scopes: Vec::new(),
            workspace_choices: Vec::new(),
            fixed_workspace_name: String::new(),
            approved: false,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct DeviceQuery {
    user_code: Option<String>,
}

/// The page where a signed-in user enters the code their device shows.
pub async fn page(signed_in: SignedIn, query: web::Query<DeviceQuery>) -> HttpResponse {
    let code = query
        .user_code
        .as_deref()
        .and_then(normalize_user_code)
        .map(|c| display_user_code(&c))
        .unwrap_or_default();
    render(StatusCode::OK, &DevicePage::enter(&signed_in, code, None))
}

#[derive(Debug, Default, Deserialize)]
pub struct DeviceForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    user_code: String,
    /// Absent: show the app and the scopes; `approve` or `deny`: the decision.
    decision: Option<String>,
    chosen_workspace: Option<String>,
}

/// The pending device code the user typed, and its app (still enabled, its document's host
/// still allowed); `Ok(None)`: no such code, or not usable any more.
async fn pending(
    state: &AppState,
    code: &str,
    now: chrono::NaiveDateTime,
) -> Result<Option<(DeviceCode, std::sync::Arc<Client>)>, ()> {
    let (pepper, lookup) = (state.digest_pepper.clone(), code.to_owned());
    let found = state
        .db(move |c| find_by_user_code(c, &pepper, &lookup))
        .await
        .map_err(|e| log::error!("reading a device code: {e}"))?;
    let Some(device) = found.filter(|d| d.status == "pending" && d.expires_at > now) else {
        return Ok(None);
    };
    match state.client(&device.client_id).await {
        Ok(Some(c)) if c.disabled_at.is_none() && clients::documents::still_allowed(state, &c) => {
            Ok(Some((device, c)))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            log::error!("reading a client: {e}");
            Err(())
        }
    }
}

/// Record the user's denial: `Some(false)` when the code was decided meanwhile, `None` when
/// the database failed.
async fn deny(state: &AppState, id: &str, now: chrono::NaiveDateTime) -> Option<bool> {
    let id = id.to_owned();
    state
        .db(move |c| decide(c, &id, None, now))
        .await
        .map_err(|e| log::error!("recording a device decision: {e}"))
        .ok()
}

/// Whether this session or address entered too many codes this minute.
async fn too_many_entries(state: &AppState, signed_in: &SignedIn, req: &HttpRequest) -> bool {
    let ip = crate::http::client_ip::client_ip(req);
    for (subject, limit) in [
        (
            format!("device-entry:session:{}", signed_in.session.id),
            ENTRIES_PER_SESSION,
        ),
        // Per IPv4 address or IPv6 /64.
        (
            crate::http::address::address_subject("device-entry:ip", ip),
            ENTRIES_PER_ADDRESS,
        ),
    ] {
        if state
            .rate_limits
            .check(subject, limit)
            .await
            .retry_after
            .is_some()
        {
            return true;
        }
    }
    false
}

type Memberships = Vec<(workspaces::Workspace, workspaces::WsRole)>;

/// The scope registry and the user's workspaces, which the decision weighs.
async fn grant_context(
    state: &AppState,
    signed_in: &SignedIn,
) -> Result<(std::sync::Arc<Vec<registry::RegisteredScope>>, Memberships), ()> {
    let registry_all = state.scope_registry().await.map_err(|e| {
        log::error!("reading the scope registry: {e}");
    })?;
    let user_id = signed_in.user.id.clone();
    let memberships = state
        .db(move |c| workspaces::of_user(c, &user_id))
        .await
        .map_err(|e| log::error!("reading workspaces: {e}"))?;
    Ok((registry_all, memberships))
}

/// The workspace the approval is made in: a private app's own, else the one chosen (the first
/// of the user's when none is); none when the user is not a member there.
fn chosen_workspace(
    client: &Client,
    form: &DeviceForm,
    memberships: &Memberships,
) -> Option<String> {
    let picked = client
        .workspace_id
        .clone()
        .or_else(|| form.chosen_workspace.clone().filter(|w| !w.is_empty()));
    match picked {
        Some(asked) => memberships
            .iter()
            .find(|(w, _)| w.id == asked)
            .map(|(w, _)| w.id.clone()),
        None => memberships.first().map(|(w, _)| w.id.clone()),
    }
}

/// A code entered (show what it asks), or the decision about it.
pub async fn submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<DeviceForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let typed = form.user_code.trim().to_owned();
    let again = |status: StatusCode, error: &str| {
        render(
            status,
            &DevicePage::enter(&signed_in, typed.clone(), Some(error.to_owned())),
        )
    };
    // Entries count before the code is even read: guessing costs the same, right or wrong.
    if too_many_entries(&state, &signed_in, &req).await {
        crate::metrics::rate_limited("device_code");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many codes entered: wait a minute and try again.",
        );
    }
    let Some(code) = normalize_user_code(&typed) else {
        return again(
            StatusCode::BAD_REQUEST,
            "That is not a code Gatehouse gives: eight letters, such as BDFH-JKLM.",
        );
    };
    let now = state.now();
    let invalid =
        "That code is not valid, was already used, or has expired. Start again on your device.";
    let (device, client) = match pending(&state, &code, now).await {
        Ok(Some(found)) => found,
        Ok(None) => return again(StatusCode::BAD_REQUEST, invalid),
        Err(()) => return unavailable(),
    };
    on_pending(&state, &signed_in, &form, device, client, &code, now).await
}

/// The user's answer for a pending code: the approval page, a denial or an approval.
async fn on_pending(
    state: &AppState,
    signed_in: &SignedIn,
    form: &DeviceForm,
    device: DeviceCode,
    client: std::sync::Arc<Client>,
    code: &str,
    now: chrono::NaiveDateTime,
) -> HttpResponse {
    let again = |status: StatusCode, error: &str| {
        let typed = form.user_code.trim().to_owned();
        render(
            status,
            &DevicePage::enter(signed_in, typed, Some(error.to_owned())),
        )
    };
    let invalid =
        "That code is not valid, was already used, or has expired. Start again on your device.";
    let shown = display_user_code(code);
    let scopes = device.scope_set();
    // The consent page's rule: an app gets only what this user may grant.
    let Ok((registry_all, memberships)) = grant_context(state, signed_in).await else {
        return unavailable();
    };
    let grantable =
        grantable::consent_may_grant(Role::of(signed_in.user.is_admin()), &registry_all);
    if let Some(scope) = scopes.difference(&grantable).first() {
        return again(
            StatusCode::FORBIDDEN,
            &format!("Your account cannot grant {scope} to an application."),
        );
    }
    match form.decision.as_deref() {
        None => {
            approval_page(
                state,
                signed_in,
                &client,
                shown,
                &scopes,
                &registry_all,
                &memberships,
            )
            .await
        }
        Some("deny") => match deny(state, &device.id, now).await {
            Some(true) => done(signed_in, shown, false),
            Some(false) => again(StatusCode::BAD_REQUEST, invalid),
            None => unavailable(),
        },
        Some("approve") => match chosen_workspace(&client, form, &memberships) {
            Some(workspace) => {
                approve(
                    state, signed_in, &client, &device, &scopes, workspace, shown,
                )
                .await
            }
            None => again(
                StatusCode::FORBIDDEN,
                "This app is private to a workspace you are not a member of.",
            ),
        },
        Some(_) => again(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    }
}

fn unavailable() -> HttpResponse {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Unavailable",
        "Gatehouse cannot complete the request now. Try again in a moment.",
    )
}

async fn approval_page(
    state: &AppState,
    signed_in: &SignedIn,
    client: &Client,
    user_code: String,
    scopes: &ScopeSet,
    descriptions: &[registry::RegisteredScope],
    memberships: &[(workspaces::Workspace, workspaces::WsRole)],
) -> HttpResponse {
    let described = scopes
        .iter()
        .map(|s| {
            let text = descriptions
                .iter()
                .find(|r| r.name == s.as_str())
                .map(|r| r.description.clone())
                .unwrap_or_default();
            (s.to_string(), text)
        })
        .collect();
    let owner_name = match &client.owner_user_id {
        Some(owner) => state
            .user(owner)
            .await
            .ok()
            .flatten()
            .map(|(u, _)| u.display_name.clone())
            .unwrap_or_else(|| "an unknown developer".into()),
        None => String::new(),
    };
    let (workspace_choices, fixed_workspace_name) = match &client.workspace_id {
        Some(own) => (
            Vec::new(),
            memberships
                .iter()
                .find(|(w, _)| &w.id == own)
                .map(|(w, _)| w.display_name().to_owned())
                .unwrap_or_default(),
        ),
        None if memberships.len() > 1 => (
            memberships
                .iter()
                .map(|(w, role)| (w.id.clone(), w.display_name().to_owned(), role.as_str()))
                .collect(),
            String::new(),
        ),
        None => (
            Vec::new(),
            memberships
                .first()
                .map(|(w, _)| w.display_name().to_owned())
                .unwrap_or_default(),
        ),
    };
    render(
        StatusCode::OK,
        &DevicePage {
            nav: Some(signed_in.nav("device")),
            stage: "approve",
            csrf_token: &signed_in.csrf_token,
            user_code,
            error: None,
            client_name: client.name.clone(),
            owner_name,
            self_registered: client.self_registered(),
            scopes: described,
            workspace_choices,
            fixed_workspace_name,
            approved: false,
        },
    )
}

fn done(signed_in: &SignedIn, user_code: String, approved: bool) -> HttpResponse {
    let mut page = DevicePage::enter(signed_in, user_code, None);
    page.stage = "done";
    page.approved = approved;
    render(StatusCode::OK, &page)
}

async fn approve(
    state: &AppState,
    signed_in: &SignedIn,
    client: &Client,
    device: &DeviceCode,
    scopes: &ScopeSet,
    workspace: String,
    shown: String,
) -> HttpResponse {
    let user_id = signed_in.user.id.clone();
    let mut event = NewEvent::new(Action::ConsentGranted);
    event.actor_user_id = Some(user_id.clone());
    event.subject_user_id = Some(user_id.clone());
    event.workspace_id = Some(workspace.clone());
    event.details = serde_json::json!({
        "client_id": client.id,
        "scopes": scopes.to_storage(),
        "first_party": false,
        "device": true,
    });
    let (id, client_id, scopes) = (device.id.clone(), client.id.clone(), scopes.clone());
    let (session_id, auth_time) = (signed_in.session.id.clone(), signed_in.session.created_at);
    let now = state.now();
    let decided = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let approved = (
                    user_id.as_str(),
                    session_id.as_str(),
                    auth_time,
                    workspace.as_str(),
                );
                if !decide(c, &id, Some(approved), now)? {
                    return Ok(false);
                }
                grants::remember_consent(
                    c,
                    &user_id,
                    &client_id,
                    &scopes,
                    Approval::ByUser,
                    Some(&workspace),
                    now,
                )?;
                audit::record(c, &event, now)?;
                Ok(true)
            })
        })
        .await;
    match decided {
        Ok(true) => done(signed_in, shown, true),
        Ok(false) => render(
            StatusCode::BAD_REQUEST,
            &DevicePage::enter(
                signed_in,
                shown,
                Some(
                    "That code was already used or has expired. Start again on your device.".into(),
                ),
            ),
        ),
        Err(e) => {
            log::error!("recording a device approval: {e}");
            unavailable()
        }
    }
}
