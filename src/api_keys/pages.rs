//! Settings → API keys, and the admin's view of a user's keys: list, create (the key is shown
//! once, with a copy button), details, roll with a grace period, revoke after confirmation.
//! Every form carries the session's CSRF token.

use crate::http::ApiError;
use crate::http::errors::HttpStatus;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Duration;
use serde::Deserialize;

use super::api::{client_ip, key_denied, load_key, load_user, may_roll, parse_grace};
use super::format::Mode;
use super::model::{self, ApiKeyView, ListFilter};
use super::service;
use super::{Expiry, KeyRequest};
use crate::accounts::model::User;
use crate::pages::{Nav, csrf_matches, error_page, failure_page, form_expired, render, see_other};
use crate::policy::{self, Action, Allowed};
use crate::principal::SignedIn;
use crate::scopes::registry::{self, RegisteredScope};
use crate::scopes::{Scope, ScopeSet};
use crate::state::AppState;

/// Where a list of keys lives: the caller's own settings, or an admin's view of a user.
fn base_path(owner: &User, signed_in: &SignedIn) -> String {
    if owner.id == signed_in.user.id {
        "/settings/api-keys".to_owned()
    } else {
        format!("/admin/users/{}/api-keys", owner.id)
    }
}

#[derive(Template)]
#[template(path = "api_keys/list.html")]
struct ListPage<'a> {
    nav: Option<Nav>,
    owner_email: &'a str,
    own: bool,
    base: &'a str,
    keys: Vec<ApiKeyView>,
    scopes: Vec<RegisteredScope>,
    allow_no_expiry: bool,
    csrf_token: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    /// The workspaces a new key of one's own can act in (id, name), personal first; shown
    /// when there are several.
    workspaces: Vec<(String, String)>,
}

async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    owner: &User,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let (owner_id, now, is_admin) = (owner.id.clone(), state.now(), owner.is_admin());
    let loaded = state
        .db(move |c| {
            let keys = model::list_for_user(
                c,
                &owner_id,
                &ListFilter {
                    limit: 500,
                    ..Default::default()
                },
                now,
            )?;
            let all = registry::all(c)?;
            let workspaces = crate::workspaces::of_user(c, &owner_id)?;
            Ok((keys, all, workspaces))
        })
        .await;
    let (keys, all, workspaces) = match loaded {
        Ok(loaded) => loaded,
        Err(e) => return failure_page(&e.into()),
    };
    let grantable = crate::policy::grantable::key_may_hold(crate::policy::Role::of(is_admin), &all);
    let base = base_path(owner, signed_in);
    let own = owner.id == signed_in.user.id;
    render(
        status,
        &ListPage {
            nav: Some(signed_in.nav(if own { "keys" } else { "users" })),
            owner_email: &owner.email,
            own,
            base: &base,
            keys: keys.iter().map(|k| k.view(now)).collect(),
            scopes: all
                .into_iter()
                .filter(|s| grantable.contains(&s.name))
                .collect(),
            allow_no_expiry: state.settings.keys.allow_no_expiry,
            csrf_token: &signed_in.csrf_token,
            error,
            notice,
            workspaces: if own {
                workspaces
                    .iter()
                    .map(|(w, _)| (w.id.clone(), w.display_name().to_owned()))
                    .collect()
            } else {
                Vec::new()
            },
        },
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    revoked: Option<String>,
}

pub async fn own_keys(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    let notice = query
        .revoked
        .is_some()
        .then_some("The key was revoked. It no longer works.");
    let owner = signed_in.user.clone();
    list_page(&state, &signed_in, &owner, StatusCode::OK, None, notice).await
}

/// Another user's keys, for an administrator: the policy decides, the page shows its answer.
async fn owner_for_admin(
    state: &AppState,
    signed_in: &SignedIn,
    user_id: String,
    mint: bool,
) -> Result<(User, Allowed), HttpResponse> {
    let principal = signed_in.principal();
    // The admin pages are for those who see every user.
    if !principal
        .authorize(Action::ListUsers)
        .is_ok_and(|a| a.everyone())
    {
        return Err(error_page(
            StatusCode::FORBIDDEN,
            "Admins only",
            "This page is for administrators.",
        ));
    }
    // An administrator's page issues keys in the owner's personal workspace.
    let owner_id = user_id.clone();
    let standing = state
        .db(move |c| crate::workspaces::Standing::load_or_personal(c, None, &owner_id))
        .await
        .map_err(|e| failure_page(&e.into()))?;
    let action = if mint {
        Action::MintKey {
            owner: &user_id,
            workspace: standing.policy(),
        }
    } else {
        Action::ReadKeys {
            owner: &user_id,
            workspace: None,
        }
    };
    let allowed = principal.authorize(action).map_err(|e| failure_page(&e))?;
    let owner = load_user(state, &principal, user_id)
        .await
        .map_err(|e| failure_page(&e))?;
    Ok((owner, allowed))
}

pub async fn user_keys(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    let owner = match owner_for_admin(&state, &signed_in, path.into_inner(), false).await {
        Ok((o, _)) => o,
        Err(page) => return page,
    };
    let notice = query
        .revoked
        .is_some()
        .then_some("The key was revoked. It no longer works.");
    list_page(&state, &signed_in, &owner, StatusCode::OK, None, notice).await
}

/// The create form's fields (scopes come as repeated `scope` fields).
pub(crate) struct CreateForm {
    pub(crate) csrf_token: String,
    pub(crate) request: Result<KeyRequest, String>,
}

pub(crate) fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

pub(crate) fn parse_create_form(
    pairs: &[(String, String)],
    now: chrono::NaiveDateTime,
) -> CreateForm {
    let csrf_token = field(pairs, "csrf_token").to_owned();
    let request = (|| {
        let expiry = match field(pairs, "expires") {
            "30d" => Expiry::In(Duration::days(30)),
            "90d" => Expiry::In(Duration::days(90)),
            "" | "1y" => Expiry::In(Duration::days(365)),
            "never" => Expiry::Never,
            "date" => {
                let day = chrono::NaiveDate::parse_from_str(field(pairs, "expires_on"), "%Y-%m-%d")
                    .map_err(|_| "Pick the expiry date".to_owned())?;
                let at = day.and_hms_opt(0, 0, 0).ok_or("Pick the expiry date")?;
                if at <= now {
                    return Err("The expiry date must be in the future".to_owned());
                }
                Expiry::At(at)
            }
            _ => return Err("Choose when the key expires".to_owned()),
        };
        let mode = Mode::parse(field(pairs, "mode")).unwrap_or(Mode::Live);
        let scopes = if field(pairs, "access") == "restricted" {
            let chosen: Result<ScopeSet, _> = pairs
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| Scope::parse(v))
                .collect();
            Some(chosen.map_err(|e| e.to_string())?)
        } else {
            None
        };
        let allowed_ips = model::parse_allowed_ips(field(pairs, "allowed_ips"))?;
        // One entry per line (a referrer list may also use spaces or commas).
        let lines = |name: &str, separators: &[char]| -> Vec<String> {
            field(pairs, name)
                .split(separators)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let restrictions = super::restrictions::Restrictions::parse(
            &lines("allowed_referrers", &['\n', ',', ' ']),
            &lines("allowed_endpoints", &['\n']),
        )
        .map_err(|(_, message)| message)?;
        Ok(KeyRequest {
            name: field(pairs, "name").to_owned(),
            description: field(pairs, "description").to_owned(),
            mode,
            scopes,
            allowed_ips,
            restrictions,
            expiry,
            rate_limit_per_minute: None,
            workspace_id: field(pairs, "workspace_id").to_owned(),
        })
    })();
    CreateForm {
        csrf_token,
        request,
    }
}

#[derive(Template)]
#[template(path = "api_keys/created.html")]
pub(crate) struct CreatedPage<'a> {
    pub(crate) nav: Option<Nav>,
    pub(crate) title: &'a str,
    pub(crate) key: ApiKeyView,
    pub(crate) secret: &'a str,
    pub(crate) back: &'a str,
    pub(crate) note: Option<&'a str>,
}

/// The owner's personal workspace, where a key the form places nowhere acts.
async fn personal_workspace(state: &AppState, owner: &User) -> Result<String, ApiError> {
    let owner_id = owner.id.clone();
    state
        .db(move |c| crate::workspaces::personal_of(c, &owner_id))
        .await?
        .map(|w| w.id)
        .ok_or_else(|| ApiError::not_found("Workspace"))
}

async fn create_for(
    state: &AppState,
    signed_in: &SignedIn,
    req: &HttpRequest,
    owner: User,
    allowed: Allowed,
    pairs: &[(String, String)],
) -> HttpResponse {
    let form = parse_create_form(pairs, state.now());
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let mut request = match form.request {
        Ok(r) => r,
        Err(message) => {
            return list_page(
                state,
                signed_in,
                &owner,
                StatusCode::BAD_REQUEST,
                Some(&message),
                None,
            )
            .await;
        }
    };
    let back = base_path(&owner, signed_in);
    let principal = signed_in.principal();
    // An administrator's page issues keys in the owner's personal workspace (what its policy
    // check weighed), whatever the form says.
    if owner.id != signed_in.user.id {
        request.workspace_id.clear();
    }
    if request.workspace_id.is_empty() {
        match personal_workspace(state, &owner).await {
            Ok(id) => request.workspace_id = id,
            Err(e) => return failure_page(&e),
        }
    }
    match service::issue(
        state,
        allowed,
        &principal.caller(),
        &principal.actor(client_ip(req)),
        owner.clone(),
        request,
    )
    .await
    .map_err(ApiError::from)
    {
        Ok((key, secret)) => render(
            StatusCode::CREATED,
            &CreatedPage {
                nav: Some(signed_in.nav("keys")),
                title: "Your new API key",
                key: key.view(state.now()),
                secret: secret.expose(),
                back: &back,
                note: None,
            },
        ),
        Err(e) if e.code.status().is_client_error() => {
            list_page(
                state,
                signed_in,
                &owner,
                e.code.status(),
                Some(&e.message),
                None,
            )
            .await
        }
        Err(e) => failure_page(&e),
    }
}

pub async fn create_own(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let owner = signed_in.user.clone();
    // The workspace picked in the form (the personal one when none is).
    let asked = Some(field(&form, "workspace_id"))
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    let owner_id = owner.id.clone();
    let standing = match state
        .db(move |c| crate::workspaces::Standing::load_or_personal(c, asked.as_deref(), &owner_id))
        .await
    {
        Ok(standing) => standing,
        Err(e) => return failure_page(&e.into()),
    };
    let allowed = match signed_in.principal().authorize(Action::MintKey {
        owner: &owner.id,
        workspace: standing.policy(),
    }) {
        Ok(allowed) => allowed,
        Err(e) => return failure_page(&e),
    };
    create_for(&state, &signed_in, &req, owner, allowed, &form).await
}

pub async fn create_for_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (owner, allowed) = match owner_for_admin(&state, &signed_in, path.into_inner(), true).await
    {
        Ok(found) => found,
        Err(page) => return page,
    };
    create_for(&state, &signed_in, &req, owner, allowed, &form).await
}

#[derive(Template)]
#[template(path = "api_keys/detail.html")]
struct DetailPage<'a> {
    nav: Option<Nav>,
    key: ApiKeyView,
    csrf_token: &'a str,
    back: String,
    error: Option<&'a str>,
}

/// A key the signed-in user may see (the policy decides), and the list it belongs to.
async fn key_and_back(
    state: &AppState,
    signed_in: &SignedIn,
    id: String,
) -> Result<(model::ApiKey, String), HttpResponse> {
    let key = load_key(state, id).await.map_err(|e| failure_page(&e))?;
    policy::authorize(
        &signed_in.principal().caller(),
        Action::ReadKeys {
            owner: &key.user_id,
            workspace: Some(&key.workspace_id),
        },
    )
    .map_err(|d| failure_page(&key_denied(d)))?;
    let back = if key.user_id == signed_in.user.id {
        "/settings/api-keys".to_owned()
    } else {
        format!("/admin/users/{}/api-keys", key.user_id)
    };
    Ok((key, back))
}

pub async fn detail(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
) -> HttpResponse {
    let (key, back) = match key_and_back(&state, &signed_in, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    render(
        StatusCode::OK,
        &DetailPage {
            nav: Some(signed_in.nav("keys")),
            key: key.view(state.now()),
            csrf_token: &signed_in.csrf_token,
            back,
            error: None,
        },
    )
}

#[derive(Template)]
#[template(path = "api_keys/revoke.html")]
struct RevokePage<'a> {
    nav: Option<Nav>,
    key: ApiKeyView,
    csrf_token: &'a str,
    back: String,
}

/// The confirmation step before revoking.
pub async fn confirm_revoke(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
) -> HttpResponse {
    let (key, back) = match key_and_back(&state, &signed_in, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    render(
        StatusCode::OK,
        &RevokePage {
            nav: Some(signed_in.nav("keys")),
            key: key.view(state.now()),
            csrf_token: &signed_in.csrf_token,
            back,
        },
    )
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf_token: String,
}

pub async fn do_revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let (key, back) = match key_and_back(&state, &signed_in, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let principal = signed_in.principal();
    let allowed = match policy::authorize(
        &principal.caller(),
        Action::RevokeKey {
            owner: &key.user_id,
            workspace: &key.workspace_id,
        },
    ) {
        Ok(allowed) => allowed,
        Err(d) => return failure_page(&key_denied(d)),
    };
    match service::revoke(&state, allowed, &principal.actor(client_ip(&req)), key)
        .await
        .map_err(ApiError::from)
    {
        Ok(()) => see_other(&format!("{back}?revoked=1")),
        Err(e) => failure_page(&e),
    }
}

#[derive(Deserialize)]
pub struct RollForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    grace: String,
}

/// What the page says of the key that was rolled.
fn previous_key_note(old: &model::ApiKey, grace: Duration) -> String {
    let until = if grace.is_zero() {
        "stopped working now".to_owned()
    } else {
        let ends = old
            .expires_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string());
        format!("keeps working until {} UTC", ends.unwrap_or_default())
    };
    format!(
        "The previous key ({}…{}) {until}.",
        old.display_prefix, old.last4
    )
}

pub async fn do_roll(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<RollForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let (key, back) = match key_and_back(&state, &signed_in, path.into_inner()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let grace = match parse_grace(Some(&serde_json::Value::String(if form.grace.is_empty() {
        "0".into()
    } else {
        form.grace.clone()
    }))) {
        Ok(g) => g,
        Err(e) => return failure_page(&e),
    };
    let principal = signed_in.principal();
    let rolled = match may_roll(&state, &principal, &key).await {
        Ok(allowed) => service::roll(
            &state,
            allowed,
            &principal.caller(),
            &principal.actor(client_ip(&req)),
            key.clone(),
            grace,
        )
        .await
        .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match rolled {
        Ok((old, new, secret)) => {
            let note = previous_key_note(&old, grace);
            render(
                StatusCode::CREATED,
                &CreatedPage {
                    nav: Some(signed_in.nav("keys")),
                    title: "Your rolled API key",
                    key: new.view(state.now()),
                    secret: &secret,
                    back: &back,
                    note: Some(&note),
                },
            )
        }
        Err(e) if e.code.status().is_client_error() => render(
            e.code.status(),
            &DetailPage {
                nav: Some(signed_in.nav("keys")),
                key: key.view(state.now()),
                csrf_token: &signed_in.csrf_token,
                back,
                error: Some(&e.message),
            },
        ),
        Err(e) => failure_page(&e),
    }
}
