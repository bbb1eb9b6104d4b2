//! Settings → Your apps (register an app, its secret shown once; rotate the secret; disable,
//! enable, delete), Settings → Connected apps (disconnect), and the admins' All apps (disable
//! any). Every form carries the session's CSRF token; the work is `manage`'s, shared with the
//! REST API.

use crate::http::errors::HttpStatus;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::api_keys::api::{client_ip, parse_grace};
use crate::clients::ClientView;
use crate::clients::manage::{self, Actor, ClientInput, ConsentView};
use crate::http::ApiError;
use crate::pages::{Nav, csrf_matches, error_page, failure_page, form_expired, render, see_other};
use crate::policy::Action;
use crate::principal::SignedIn;
use crate::scopes::registry::RegisteredScope;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "apps/list.html")]
struct AppsPage<'a> {
    nav: Option<Nav>,
    title: &'a str,
    everyone: bool,
    back: &'a str,
    apps: Vec<ClientView>,
    scopes: Vec<RegisteredScope>,
    csrf_token: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn apps_page(
    state: &AppState,
    req: &HttpRequest,
    signed_in: &SignedIn,
    everyone: bool,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
) -> HttpResponse {
    let principal = signed_in.principal();
    let actor = Actor::of(&principal, client_ip(req));
    let apps = match manage::list(state, &actor, everyone).await {
        Ok(apps) => apps,
        Err(e) => return failure_page(&e),
    };
    let all = match state.scope_registry().await {
        Ok(all) => all,
        Err(e) => return failure_page(&e.into()),
    };
    let grantable = crate::policy::grantable::app_may_be_given(&actor.caller, &all);
    render(
        status,
        &AppsPage {
            nav: Some(signed_in.nav(if everyone { "all-apps" } else { "apps" })),
            title: if everyone { "All apps" } else { "Your apps" },
            everyone,
            back: if everyone {
                "/admin/apps"
            } else {
                "/settings/apps"
            },
            apps: apps.iter().map(|a| a.view()).collect(),
            scopes: all
                .iter()
                .filter(|s| grantable.contains(&s.name))
                .cloned()
                .collect(),
            csrf_token: &signed_in.csrf_token,
            error,
            notice,
        },
    )
}

#[derive(Deserialize)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "disabled" => Some("The app is disabled: its users' tokens no longer work."),
        "enabled" => Some("The app is enabled again."),
        "deleted" => Some("The app was deleted and its users disconnected."),
        "disconnected" => Some("The app was disconnected. It can no longer act for you."),
        _ => None,
    }
}

pub async fn own_apps(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    let notice = notice_for(query.done.as_deref());
    apps_page(
        &state,
        &req,
        &signed_in,
        false,
        StatusCode::OK,
        None,
        notice,
    )
    .await
}

pub async fn all_apps(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    if signed_in
        .principal()
        .authorize(Action::ListAllClients)
        .is_err()
    {
        return error_page(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Only administrators can see every app.",
        );
    }
    let notice = notice_for(query.done.as_deref());
    apps_page(&state, &req, &signed_in, true, StatusCode::OK, None, notice).await
}

#[derive(Template)]
#[template(path = "apps/secret.html")]
struct SecretPage<'a> {
    nav: Option<Nav>,
    title: &'a str,
    app: ClientView,
    secret: Option<&'a str>,
    note: Option<String>,
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// The registration form as the API's input.
fn input_of(pairs: &[(String, String)]) -> ClientInput {
    let lines = |name: &str| -> Vec<String> {
        field(pairs, name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let scopes: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .collect();
    let mut grants = crate::clients::default_grant_types();
    if field(pairs, "client_credentials") == "1" {
        grants.push("client_credentials".into());
    }
    ClientInput {
        name: Some(field(pairs, "name").to_owned()),
        redirect_uris: Some(lines("redirect_uris")),
        client_type: Some(field(pairs, "client_type").to_owned()).filter(|t| !t.is_empty()),
        scopes: Some(scopes),
        grant_types: Some(grants),
        first_party: None,
        resources: None,
        post_logout_redirect_uris: Some(lines("post_logout_redirect_uris")),
        backchannel_logout_uri: Some(field(pairs, "backchannel_logout_uri").to_owned()),
        backchannel_logout_session_required: Some(
            field(pairs, "backchannel_logout_session_required") == "1",
        ),
        require_pushed_authorization_requests: Some(
            field(pairs, "require_pushed_authorization_requests") == "1",
        ),
        jwks: None,
        jwks_uri: None,
        dpop_bound_access_tokens: None,
        workspace_id: None,
        // Empty: the redirect URIs' origins.
        allowed_origins: Some(lines("allowed_origins"))
            .filter(|o| !o.is_empty())
            .map(Some),
    }
}

pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let pairs = form.into_inner();
    if !csrf_matches(&signed_in.csrf_token, field(&pairs, "csrf_token")) {
        return form_expired();
    }
    let input = input_of(&pairs);
    match manage::create(
        &state,
        &Actor::of(&signed_in.principal(), client_ip(&req)),
        input,
    )
    .await
    {
        Ok((client, secret)) => render(
            StatusCode::CREATED,
            &SecretPage {
                nav: Some(signed_in.nav("apps")),
                title: "App registered",
                app: client.view(),
                secret: secret.as_ref().map(|s| s.expose()),
                note: None,
            },
        ),
        Err(e) if e.code.status().is_client_error() => {
            apps_page(
                &state,
                &req,
                &signed_in,
                false,
                StatusCode::BAD_REQUEST,
                Some(&e.message),
                None,
            )
            .await
        }
        Err(e) => failure_page(&e),
    }
}

#[derive(Deserialize)]
pub struct ActionForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    grace: String,
    #[serde(default)]
    back: String,
}

pub async fn rotate_secret(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let grace = match parse_grace(Some(&serde_json::Value::String(form.grace.clone()))) {
        Ok(g) => g,
        Err(e) => return failure_page(&e),
    };
    let principal = signed_in.principal();
    let actor = Actor::of(&principal, client_ip(&req));
    let result = async {
        let app = manage::controlled(&state, &actor, path.into_inner()).await?;
        manage::rotate_secret(&state, &actor, app, grace).await
    }
    .await;
    match result {
        Ok((client, secret)) => render(
            StatusCode::OK,
            &SecretPage {
                nav: Some(signed_in.nav("apps")),
                title: "New client secret",
                app: client.view(),
                secret: Some(secret.expose()),
                note: Some(if grace.is_zero() {
                    "The old secret no longer works.".to_owned()
                } else {
                    format!(
                        "The old secret keeps working for {} more hour(s).",
                        grace.num_hours()
                    )
                }),
            },
        ),
        Err(e) => failure_page(&e),
    }
}

/// Disable, enable or delete an app (admins: any app).
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let (id, action) = path.into_inner();
    let back = if form.back == "/admin/apps" {
        "/admin/apps"
    } else {
        "/settings/apps"
    };
    let principal = signed_in.principal();
    let actor = Actor::of(&principal, client_ip(&req));
    let result = async {
        let app = manage::controlled(&state, &actor, id).await?;
        match action.as_str() {
            "disable" | "enable" => manage::update(
                &state,
                &actor,
                app,
                ClientInput::default(),
                Some(action == "disable"),
            )
            .await
            .map(|_| ()),
            "delete" => manage::delete(&state, &actor, app).await,
            _ => Err(ApiError::not_found("Action")),
        }
    }
    .await;
    match result {
        Ok(()) => {
            let done = match action.as_str() {
                "disable" => "disabled",
                "enable" => "enabled",
                _ => "deleted",
            };
            see_other(&format!("{back}?done={done}"))
        }
        Err(e) => failure_page(&e),
    }
}

#[derive(Template)]
#[template(path = "apps/connected.html")]
struct ConnectedPage<'a> {
    nav: Option<Nav>,
    consents: Vec<ConsentView>,
    /// Per consent: what the last back-channel sign-out notice to that app became ("" none).
    signed_out: Vec<String>,
    csrf_token: &'a str,
    notice: Option<&'a str>,
}

pub async fn connected(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    let user_id = signed_in.user.id.clone();
    let notices = state
        .db(move |c| crate::oidc::logout::last_notices(c, &user_id))
        .await
        .unwrap_or_else(|e| {
            log::warn!("connected apps: sign-out notices: {e}");
            Vec::new()
        });
    match manage::list_consents(&state, signed_in.user.id.clone(), None).await {
        Ok(consents) => render(
            StatusCode::OK,
            &ConnectedPage {
                nav: Some(signed_in.nav("connected")),
                signed_out: consents
                    .iter()
                    .map(|c| {
                        notices
                            .iter()
                            .find(|n| n.0 == c.client_id)
                            .map(|(_, at, delivered, failed)| {
                                let when = at.format("%Y-%m-%d %H:%M");
                                match (delivered, failed) {
                                    (Some(_), _) => format!("signed out {when}"),
                                    (None, Some(_)) => {
                                        format!("sign-out at {when} could not be delivered")
                                    }
                                    (None, None) => format!("signing out (since {when})"),
                                }
                            })
                            .unwrap_or_default()
                    })
                    .collect(),
                consents,
                csrf_token: &signed_in.csrf_token,
                notice: notice_for(query.done.as_deref()),
            },
        ),
        Err(e) => failure_page(&e),
    }
}

pub async fn disconnect(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    match manage::revoke_consent(
        &state,
        &Actor::of(&signed_in.principal(), client_ip(&req)),
        path.into_inner(),
    )
    .await
    {
        Ok(()) => see_other("/settings/connected-apps?done=disconnected"),
        Err(e) => failure_page(&e),
    }
}
