//! `GET /oauth/authorize` and the consent decision `POST /oauth/authorize` (RFC 6749 §4.1,
//! PKCE per RFC 7636 with S256 only, `iss` per RFC 9207). Problems with the client or the
//! redirect URI are shown on a page, never redirected; everything else is reported to the
//! client's redirect URI with `state` and `iss`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::clients::{Client, ClientType};
use super::grants::{self, NewCode};
use crate::accounts::model;
use crate::audit::{self, Action, NewEvent};
use crate::pages::{Nav, csrf_matches, error_page, render, see_other};
use crate::principal::{PageAccess, SignedIn, urlencode};
use crate::scopes::ScopeSet;
use crate::scopes::registry;
use crate::state::AppState;

/// A consent form stays valid this long.
const CONSENT_FORM_SECONDS: i64 = 600;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
    prompt: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
}

/// A request that passed every check.
struct Valid {
    client: Client,
    redirect_uri: String,
    scopes: ScopeSet,
    state: Option<String>,
    challenge: Option<String>,
    /// RFC 8707: the one resource server the tokens of this grant will be for.
    resource: Option<String>,
    prompts: Vec<String>,
}

impl Valid {
    /// An error sent back to the client, with its `state`.
    fn refusal(&self, error: &'static str, description: &str) -> Refusal {
        Refusal::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

/// Where an invalid request is answered.
enum Refusal {
    /// Shown to the user: the client or redirect URI cannot be trusted with a redirect.
    Page(&'static str),
    /// Sent back to the client.
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: &'static str,
        description: String,
    },
}

fn redirect_with(base: &str, params: &[(&str, &str)]) -> String {
    let mut out = base.to_owned();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&urlencode(v).replace('/', "%2F"));
        sep = '&';
    }
    out
}

fn refuse(state: &AppState, refusal: Refusal) -> HttpResponse {
    match refusal {
        Refusal::Page(message) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in link is not valid",
            message,
        ),
        Refusal::Redirect {
            redirect_uri,
            state: client_state,
            error,
            description,
        } => {
            let mut params = vec![
                ("error", error),
                ("error_description", description.as_str()),
            ];
            if let Some(s) = client_state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", &state.settings.issuer));
            see_other(&redirect_with(&redirect_uri, &params))
        }
    }
}

/// A PKCE S256 challenge: 43 characters of base64url (RFC 7636 §4.2).
fn valid_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn validate(state: &AppState, p: &AuthorizeParams) -> Result<Valid, Refusal> {
    let client_id = p
        .client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or(Refusal::Page("The request names no client (client_id)."))?;
    let client = super::token::load_client(state, &client_id)
        .await
        .map_err(|_| Refusal::Page("Gatehouse cannot reach its database. Try again in a moment."))?
        .filter(|c| c.disabled_at.is_none())
        .map(|c| (*c).clone())
        .ok_or(Refusal::Page(
            "The application asking you to sign in is not registered here, or was disabled.",
        ))?;
    let requested = p
        .redirect_uri
        .clone()
        .ok_or(Refusal::Page("The request has no redirect_uri."))?;
    if client.redirect_for(&requested).is_none() {
        return Err(Refusal::Page(
            "The redirect_uri is not one the application registered.",
        ));
    }
    let back = |error: &'static str, description: &str| Refusal::Redirect {
        redirect_uri: requested.clone(),
        state: p.state.clone(),
        error,
        description: description.to_owned(),
    };
    if p.response_type.as_deref() != Some("code") {
        return Err(back(
            "unsupported_response_type",
            "Only response_type=code is supported",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(back(
            "unauthorized_client",
            "This client may not use the authorization code flow",
        ));
    }
    let scopes = match p.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => client.scopes(),
        Some(raw) => ScopeSet::parse(raw).map_err(|e| back("invalid_scope", &e.to_string()))?,
    };
    if let Some(extra) = scopes.difference(&client.scopes()).first() {
        return Err(back(
            "invalid_scope",
            &format!("The client may not ask for {extra}"),
        ));
    }
    if scopes.is_empty() {
        return Err(back("invalid_scope", "No scope was requested"));
    }
    let challenge = match (
        p.code_challenge.as_deref().filter(|c| !c.is_empty()),
        p.code_challenge_method.as_deref(),
    ) {
        (None, _) if client.client_type() == ClientType::Public => {
            return Err(back(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        (None, _) => None,
        (Some(_), Some("plain")) | (Some(_), None) => {
            return Err(back(
                "invalid_request",
                "Only code_challenge_method=S256 is supported",
            ));
        }
        (Some(_), Some(m)) if m != "S256" => {
            return Err(back(
                "invalid_request",
                "Only code_challenge_method=S256 is supported",
            ));
        }
        (Some(c), _) if !valid_challenge(c) => {
            return Err(back(
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            ));
        }
        (Some(c), _) => Some(c.to_owned()),
    };
    let prompts: Vec<String> = p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if prompts.iter().any(|x| x == "none") && prompts.len() > 1 {
        return Err(back(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    let resource = match p.resource.as_deref().filter(|r| !r.is_empty()) {
        None => None,
        Some(r) if !crate::config::valid_resource(r) => {
            return Err(back(
                "invalid_target",
                "resource must be an absolute URI without a fragment",
            ));
        }
        Some(r) if !state.settings.audiences().contains(&r) => {
            return Err(back(
                "invalid_target",
                "This server issues no tokens for that resource",
            ));
        }
        Some(r) if r != state.settings.token_audience() && !client.may_ask_for(r) => {
            return Err(back(
                "invalid_target",
                "This app may not ask for tokens for that resource",
            ));
        }
        Some(r) => Some(r.to_owned()),
    };
    Ok(Valid {
        client,
        redirect_uri: requested,
        scopes,
        state: p.state.clone(),
        challenge,
        resource,
        prompts,
    })
}

/// The CSRF token of one consent form: bound to the session, to this exact request and to
/// the minute it was made (valid for ten minutes).
fn consent_token(state: &AppState, session_id: &str, v: &Valid, issued: i64) -> String {
    let digest = state.csrf_pepper.digest(&[
        "consent",
        session_id,
        &v.client.id,
        &v.redirect_uri,
        &v.scopes.to_storage(),
        v.state.as_deref().unwrap_or(""),
        v.challenge.as_deref().unwrap_or(""),
        v.resource.as_deref().unwrap_or(""),
        &issued.to_string(),
    ]);
    format!("{issued}.{digest}")
}

fn consent_token_valid(state: &AppState, session_id: &str, v: &Valid, presented: &str) -> bool {
    let Some((issued, _)) = presented.split_once('.') else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    let age = state.now().and_utc().timestamp() - issued;
    (0..=CONSENT_FORM_SECONDS).contains(&age)
        && csrf_matches(&consent_token(state, session_id, v, issued), presented)
}

/// Issue the code and send the browser back to the client.
async fn approve(state: &AppState, signed_in: &SignedIn, v: &Valid) -> HttpResponse {
    let new = NewCode {
        client_id: v.client.id.clone(),
        user_id: signed_in.user.id.clone(),
        redirect_uri: v.redirect_uri.clone(),
        scopes: v.scopes.clone(),
        code_challenge: v.challenge.clone(),
        auth_time: signed_in.session.created_at,
        resource: v.resource.clone(),
    };
    let (pepper, now) = (state.digest_pepper.clone(), state.now());
    match state
        .db(move |c| grants::issue_code(c, &pepper, &new, now))
        .await
    {
        Ok(code) => {
            let mut params = vec![("code", code.expose())];
            if let Some(s) = v.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", &state.settings.issuer));
            see_other(&redirect_with(&v.redirect_uri, &params))
        }
        Err(e) => {
            log::error!("issuing an authorization code: {e}");
            refuse(state, v.refusal("server_error", "Try again"))
        }
    }
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    nav: Option<Nav>,
    client_name: &'a str,
    owner_name: &'a str,
    user_email: &'a str,
    new_scopes: Vec<(String, String)>,
    previously_granted: Vec<String>,
    csrf_token: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    code_challenge_method: &'a str,
    resource: &'a str,
}

pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: Result<SignedIn, PageAccess>,
    query: web::Query<AuthorizeParams>,
) -> HttpResponse {
    let v = match validate(&state, &query).await {
        Ok(v) => v,
        Err(refusal) => return refuse(&state, refusal),
    };
    let back = |error, description| v.refusal(error, description);
    let prompt_none = v.prompts.iter().any(|p| p == "none");
    let signed_in = match signed_in {
        Ok(s) => s,
        Err(_) if prompt_none => {
            return refuse(&state, back("login_required", "The user is not signed in"));
        }
        Err(PageAccess::Login { .. }) => {
            return see_other(&format!(
                "/login?next={}",
                urlencode(&path_and_query(&req, false))
            ));
        }
        Err(other) => return actix_web::ResponseError::error_response(&other),
    };
    if let Some(refusal) = beyond_the_user(&state, &signed_in, &v).await {
        return refuse(&state, refusal);
    }
    let now = state.now();
    if v.prompts.iter().any(|p| p == "login")
        && now - signed_in.session.created_at > chrono::Duration::seconds(60)
    {
        // A fresh sign-in was asked for; come back without `prompt=login` so it is not asked again.
        return see_other(&format!(
            "/login?next={}",
            urlencode(&path_and_query(&req, true))
        ));
    }
    let (user_id, client_id) = (signed_in.user.id.clone(), v.client.id.clone());
    let prior = match state
        .db(move |c| grants::consented_scopes(c, &user_id, &client_id))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            log::error!("reading consent: {e}");
            return refuse(&state, back("server_error", "Try again"));
        }
    };
    let force_consent = v.prompts.iter().any(|p| p == "consent");
    if v.client.first_party || (v.scopes.is_subset(&prior) && !force_consent) {
        return approve(&state, &signed_in, &v).await;
    }
    if prompt_none {
        return refuse(
            &state,
            back("consent_required", "The user has not approved these scopes"),
        );
    }
    consent_page(&state, &signed_in, &v, &prior).await
}

/// An app can be granted only what the user may hold: admin-only scopes (e.g. `write:users`)
/// are refused for members.
async fn beyond_the_user(state: &AppState, signed_in: &SignedIn, v: &Valid) -> Option<Refusal> {
    let all = match state.scope_registry().await {
        Ok(all) => all,
        Err(e) => {
            log::error!("reading the scope registry: {e}");
            return Some(v.refusal("server_error", "Try again"));
        }
    };
    let allowed = registry::grantable(&all, signed_in.user.is_admin());
    v.scopes
        .difference(&allowed)
        .first()
        .map(|scope| v.refusal("invalid_scope", &format!("This user may not grant {scope}")))
}

/// This request's path and query, optionally without `prompt=login`.
fn path_and_query(req: &HttpRequest, drop_prompt_login: bool) -> String {
    let query: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|kv| !(kv.is_empty() || drop_prompt_login && kv.starts_with("prompt=")))
        .collect();
    format!("{}?{}", req.path(), query.join("&"))
}

async fn consent_page(
    state: &AppState,
    signed_in: &SignedIn,
    v: &Valid,
    prior: &ScopeSet,
) -> HttpResponse {
    let owner_id = v.client.owner_user_id.clone();
    let looked_up = state
        .db(move |c| Ok((registry::all(c)?, model::find_by_id(c, &owner_id)?)))
        .await;
    let (registered, owner) = match looked_up {
        Ok(found) => found,
        Err(e) => {
            log::error!("consent page: {e}");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "Try again in a moment.",
            );
        }
    };
    let describe = |name: &str| {
        registered
            .iter()
            .find(|r| r.name == name)
            .map_or_else(|| name.to_owned(), |r| r.description.clone())
    };
    let new_scopes = v
        .scopes
        .difference(prior)
        .iter()
        .map(|s| (s.to_string(), describe(s.as_str())))
        .collect();
    let previously_granted = v
        .scopes
        .iter()
        .filter(|s| prior.contains(s.as_str()))
        .map(ToString::to_string)
        .collect();
    let issued = state.now().and_utc().timestamp();
    let csrf_token = consent_token(state, &signed_in.session.id, v, issued);
    let scope = v.scopes.to_storage();
    render(
        StatusCode::OK,
        &ConsentPage {
            nav: Some(signed_in.nav("apps")),
            client_name: &v.client.name,
            owner_name: owner
                .as_ref()
                .map_or("an unknown developer", |o| o.display_name.as_str()),
            user_email: &signed_in.user.email,
            new_scopes,
            previously_granted,
            csrf_token: &csrf_token,
            client_id: &v.client.id,
            redirect_uri: &v.redirect_uri,
            scope: &scope,
            state: v.state.as_deref().unwrap_or(""),
            code_challenge: v.challenge.as_deref().unwrap_or(""),
            code_challenge_method: if v.challenge.is_some() { "S256" } else { "" },
            resource: v.resource.as_deref().unwrap_or(""),
        },
    )
}

/// The consent decision (a POST only: a link can never approve anything).
pub async fn decide(
    state: web::Data<AppState>,
    signed_in: Result<SignedIn, PageAccess>,
    form: web::Form<AuthorizeParams>,
) -> HttpResponse {
    let Ok(signed_in) = signed_in else {
        return error_page(
            StatusCode::FORBIDDEN,
            "Signed out",
            "Your session ended before you decided. Start again from the application.",
        );
    };
    let v = match validate(&state, &form).await {
        Ok(v) => v,
        Err(refusal) => return refuse(&state, refusal),
    };
    if !consent_token_valid(
        &state,
        &signed_in.session.id,
        &v,
        form.csrf_token.as_deref().unwrap_or(""),
    ) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This approval form has expired or did not come from Gatehouse. Start again from the application.",
        );
    }
    if let Some(refusal) = beyond_the_user(&state, &signed_in, &v).await {
        return refuse(&state, refusal);
    }
    if form.decision.as_deref() != Some("approve") {
        return refuse(
            &state,
            v.refusal("access_denied", "The user denied the request"),
        );
    }
    let (user_id, client_id, scopes, now) = (
        signed_in.user.id.clone(),
        v.client.id.clone(),
        v.scopes.clone(),
        state.now(),
    );
    let mut event = NewEvent::new(Action::ConsentGranted);
    event.actor_user_id = Some(user_id.clone());
    event.subject_user_id = Some(user_id.clone());
    event.details = serde_json::json!({ "client_id": client_id, "scopes": scopes.to_storage() });
    let remembered = state.db(move |c| {
        grants::remember_consent(c, &user_id, &client_id, &scopes, now)?;
        audit::record(c, &event, now)
    });
    if let Err(e) = remembered.await {
        log::error!("remembering consent: {e}");
        return error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            "Try again in a moment.",
        );
    }
    approve(&state, &signed_in, &v).await
}
