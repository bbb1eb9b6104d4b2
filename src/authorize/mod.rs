//! `GET /oauth/authorize` and the consent decision `POST /oauth/authorize` (RFC 6749 §4.1,
//! PKCE per RFC 7636 with S256 only, `iss` per RFC 9207).
//!
//! Where an error goes (RFC 6749 §4.1.2.1, RFC 9700 §4.11.2): a redirect to the client carries
//! only the answer to a *valid* request — the code; `access_denied`, the user's decision;
//! `login_required` or `consent_required`, asked for with `prompt=none`. Anything wrong with the
//! request itself (client, redirect URI, `response_type`, scope, PKCE, `resource`, `prompt`, a
//! grant type the client may not use, a scope this user may not grant) is shown on an error
//! page (400), signed in or not, and so is a server failure (503). With open registration
//! anyone can register a redirect URI; redirecting a bad request there, with no user involved,
//! would make Gatehouse an open redirector.
//!
//! When the user is asked: always for public clients (RFC 8252 §8.6: any local process can
//! start a flow to a loopback port, and a silent approval would hand it a code) and whenever
//! `prompt=consent`; for confidential clients, when the request asks for scopes not approved
//! before; never for first-party clients, whose grant is recorded (marked first-party) so that
//! the user can see and disconnect it.

pub use gatehouse_core::authorize::*;

pub mod par;

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::accounts::model;
use crate::audit::{self, Action, NewEvent};
use crate::clients::{Client, ClientType, documents};
use crate::db::{DbConn, DbError};
use crate::grants::{self, Approval, NewCode, StoredConsent};
use crate::pages::{Nav, csrf_matches, error_page, render, see_other};
use crate::principal::{PageAccess, SessionCookie, SignedIn, urlencode};
use crate::scopes::ScopeSet;
use crate::scopes::registry;
use crate::secrets::{Pepper, PlainSecret};
use crate::state::AppState;
use crate::workspaces;

/// A consent form stays valid this long.
const CONSENT_FORM_SECONDS: i64 = 600;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuthorizeParams {
    client_id: Option<String>,
    /// RFC 9126: the parameters were pushed to `/oauth/par`; only they count.
    request_uri: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    resource: Option<String>,
    prompt: Option<String>,
    /// OpenID Connect Core §3.1.2.1.
    nonce: Option<String>,
    max_age: Option<String>,
    login_hint: Option<String>,
    id_token_hint: Option<String>,
    /// The workspace (id or slug) the app asks the user to authorize it in.
    workspace: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
    /// The workspace the user picked on the consent page (when the app named none).
    chosen_workspace: Option<String>,
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
    /// OpenID Connect: echoed in the ID token.
    nonce: Option<String>,
    /// OpenID Connect: the longest time since the user last entered their password.
    max_age: Option<i64>,
    /// The user the client expects (`id_token_hint`, checked): with `prompt=none`, anyone
    /// else signed in is `login_required`.
    hinted_sub: Option<String>,
    /// The workspace the app named (`workspace`), or the one a private app belongs to.
    workspace: Option<String>,
    /// RFC 9126: the pushed request this came from (its row id and `request_uri`), spent when
    /// the user decides.
    pushed: Option<(String, String)>,
}

impl Valid {
    /// Whether the request asked for this `prompt` value (`none`, `login`, `consent`).
    fn prompted(&self, value: &str) -> bool {
        self.prompts.iter().any(|p| p == value)
    }

    /// An answer to this valid request sent back to the client, with its `state`: only the
    /// user's decision or a `prompt=none` outcome (see the module header).
    fn answer(&self, error: &'static str, description: &str) -> Refusal {
        Refusal::Redirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

/// Where a refusal is answered.
enum Refusal {
    /// Shown to the user: the request is not valid, so nothing is redirected. `error`: the
    /// OAuth error code (what `/oauth/par` answers for the same request).
    Page {
        status: StatusCode,
        error: String,
        message: String,
    },
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
        Refusal::Page {
            status, message, ..
        } => {
            let title = if status.is_server_error() {
                "Unavailable"
            } else {
                "This sign-in link is not valid"
            };
            error_page(status, title, &message)
        }
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

impl Refusal {
    /// A request Gatehouse will not redirect: shown on a 400 page.
    fn bad(error: &str, description: &str) -> Refusal {
        Refusal::Page {
            status: StatusCode::BAD_REQUEST,
            error: error.to_owned(),
            message: format!("{description} ({error})."),
        }
    }

    fn unavailable() -> Refusal {
        Refusal::Page {
            status: StatusCode::SERVICE_UNAVAILABLE,
            error: "temporarily_unavailable".into(),
            message: "Gatehouse cannot complete the request now. Try again in a moment.".into(),
        }
    }
}

/// The client, enabled, and the redirect URI it registered.
async fn client_and_redirect(
    state: &AppState,
    p: &AuthorizeParams,
) -> Result<(Client, String), Refusal> {
    let client_id = p
        .client_id
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Refusal::bad("invalid_request", "The request names no client (client_id)")
        })?;
    let found = if documents::is_document_id(&client_id) {
        match documents::client(state, &client_id).await {
            Ok(Some(client)) => Some(client),
            Ok(None) => {
                return Err(Refusal::bad(
                    "invalid_client",
                    "This server does not accept applications described by a metadata document at that address",
                ));
            }
            Err(documents::ClientError::Document(e)) => {
                return Err(Refusal::bad(
                    "invalid_client",
                    &format!("The application's metadata document cannot be used: {e}"),
                ));
            }
            Err(documents::ClientError::Db(_)) => {
                return Err(Refusal::unavailable());
            }
        }
    } else {
        state
            .client(&client_id)
            .await
            .map_err(|_| Refusal::unavailable())?
    };
    let client = found
        .filter(|c| c.disabled_at.is_none())
        .map(|c| (*c).clone())
        .ok_or_else(|| {
            Refusal::bad(
                "invalid_client",
                "The application asking you to sign in is not registered here, or was disabled",
            )
        })?;
    let requested = p
        .redirect_uri
        .clone()
        .ok_or_else(|| Refusal::bad("invalid_request", "The request has no redirect_uri"))?;
    if client.redirect_for(&requested).is_none() {
        return Err(Refusal::bad(
            "invalid_request",
            "The redirect_uri is not one the application registered",
        ));
    }
    Ok((client, requested))
}

fn requested_scopes(client: &Client, p: &AuthorizeParams) -> Result<ScopeSet, Refusal> {
    let scopes = match p.scope.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => client.scopes(),
        Some(raw) => {
            ScopeSet::parse(raw).map_err(|e| Refusal::bad("invalid_scope", &e.to_string()))?
        }
    };
    if let Some(extra) = scopes.difference(&client.scopes()).first() {
        return Err(Refusal::bad(
            "invalid_scope",
            &format!("The application may not ask for {extra}"),
        ));
    }
    if scopes.is_empty() {
        return Err(Refusal::bad("invalid_scope", "No scope was requested"));
    }
    Ok(scopes)
}

/// The S256 challenge, required of public clients.
fn pkce_challenge(client: &Client, p: &AuthorizeParams) -> Result<Option<String>, Refusal> {
    let s256_only = || {
        Refusal::bad(
            "invalid_request",
            "Only code_challenge_method=S256 is supported",
        )
    };
    match (
        p.code_challenge.as_deref().filter(|c| !c.is_empty()),
        p.code_challenge_method.as_deref(),
    ) {
        (None, _) if client.client_type() == ClientType::Public => Err(Refusal::bad(
            "invalid_request",
            "PKCE is required: send code_challenge with code_challenge_method=S256",
        )),
        (None, _) => Ok(None),
        (Some(_), m) if m != Some("S256") => Err(s256_only()),
        (Some(c), _) if !valid_challenge(c) => Err(Refusal::bad(
            "invalid_request",
            "code_challenge must be 43 base64url characters",
        )),
        (Some(c), _) => Ok(Some(c.to_owned())),
    }
}

fn prompts(p: &AuthorizeParams) -> Result<Vec<String>, Refusal> {
    let prompts: Vec<String> = p
        .prompt
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if prompts.iter().any(|x| x == "none") && prompts.len() > 1 {
        return Err(Refusal::bad(
            "invalid_request",
            "prompt=none cannot be combined with other values",
        ));
    }
    Ok(prompts)
}

/// RFC 8707: one configured resource server, or none.
/// An app may name only the resource servers an administrator bound to it.
fn resource(
    state: &AppState,
    client: &Client,
    p: &AuthorizeParams,
) -> Result<Option<String>, Refusal> {
    match p.resource.as_deref().filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(r) if !crate::config::valid_resource(r) => Err(Refusal::bad(
            "invalid_target",
            "resource must be an absolute URI without a fragment",
        )),
        Some(r) if !state.settings.audiences().contains(&r) => Err(Refusal::bad(
            "invalid_target",
            "This server issues no tokens for that resource",
        )),
        Some(r)
            if r != state.settings.token_audience()
                && !client.may_ask_for(r, &state.settings.registration.resources) =>
        {
            Err(Refusal::bad(
                "invalid_target",
                "This app may not ask for tokens for that resource",
            ))
        }
        Some(r) => Ok(Some(r.to_owned())),
    }
}

/// How a request reaches validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// The browser, at `/oauth/authorize`.
    Browser,
    /// The app, pushing it to `/oauth/par`.
    Pushed,
}

/// Validate a request pushed to `/oauth/par` as `/oauth/authorize` will: `Err((error,
/// description))` as the OAuth error the app gets.
pub(crate) async fn check_pushed(
    state: &AppState,
    p: &AuthorizeParams,
) -> Result<(), (&'static str, String)> {
    match validate(state, p, Arrival::Pushed).await {
        Ok(_) => Ok(()),
        Err(Refusal::Page { error, message, .. }) => {
            let code = match error.as_str() {
                "invalid_scope" => "invalid_scope",
                "invalid_target" => "invalid_target",
                "unauthorized_client" => "unauthorized_client",
                "unsupported_response_type" => "unsupported_response_type",
                "temporarily_unavailable" => "temporarily_unavailable",
                _ => "invalid_request",
            };
            Err((code, message))
        }
        Err(Refusal::Redirect { description, .. }) => Err(("invalid_request", description)),
    }
}

/// The parameters of a request: those pushed when it names a `request_uri` (RFC 9126 §4: any
/// other authorization parameter in the URL is ignored), with the row to spend. `arriving`:
/// the browser's arrival at `/oauth/authorize` (not the user's decision).
async fn expand(
    state: &AppState,
    p: AuthorizeParams,
    arriving: bool,
) -> Result<(AuthorizeParams, Option<(String, String)>), Refusal> {
    let Some(uri) = p.request_uri.clone().filter(|u| !u.is_empty()) else {
        return Ok((p, None));
    };
    let Some(client_id) = p.client_id.clone().filter(|c| !c.is_empty()) else {
        return Err(Refusal::bad(
            "invalid_request",
            "A request_uri comes with the client_id of the application that pushed it",
        ));
    };
    match pushed::find(state, &client_id, &uri, arriving).await {
        Err(e) => {
            log::error!("reading a pushed authorization request: {e}");
            Err(Refusal::unavailable())
        }
        Ok(Err(why)) => Err(Refusal::bad("invalid_request_uri", why.message())),
        Ok(Ok(pushed)) => {
            let Ok(pushed_params) = serde_json::from_str::<AuthorizeParams>(&pushed.params) else {
                return Err(Refusal::bad(
                    "invalid_request_uri",
                    pushed::Unusable::Unknown.message(),
                ));
            };
            let params = AuthorizeParams {
                client_id: Some(client_id),
                request_uri: Some(uri.clone()),
                csrf_token: p.csrf_token,
                decision: p.decision,
                chosen_workspace: p.chosen_workspace,
                ..pushed_params
            };
            Ok((params, Some((pushed.id, uri))))
        }
    }
}

async fn validate(
    state: &AppState,
    p: &AuthorizeParams,
    arrival: Arrival,
) -> Result<Valid, Refusal> {
    let (client, redirect_uri) = client_and_redirect(state, p).await?;
    let pushed_required =
        state.settings.require_par || client.options().require_pushed_authorization_requests;
    // An empty `request_uri` is no pushed request (it must not pass for one).
    let pushed = p.request_uri.as_deref().is_some_and(|u| !u.is_empty());
    if arrival == Arrival::Browser && pushed_required && !pushed {
        return Err(Refusal::bad(
            "invalid_request",
            "This application must push its authorization request to /oauth/par first (RFC 9126)",
        ));
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(Refusal::bad(
            "unsupported_response_type",
            "Only response_type=code is supported",
        ));
    }
    if !client.allows_grant("authorization_code") {
        return Err(Refusal::bad(
            "unauthorized_client",
            "This application may not use the authorization code flow",
        ));
    }
    let openid = crate::oidc::userinfo::Requested::from_params(
        state,
        &client,
        p.nonce.as_deref(),
        p.max_age.as_deref(),
        p.id_token_hint.as_deref(),
    )
    .map_err(|why| Refusal::bad("invalid_request", why))?;
    let asked = p.workspace.as_deref().filter(|w| !w.is_empty());
    let workspace = match (&client.workspace_id, asked) {
        (Some(own), Some(asked)) if asked != own => {
            return Err(Refusal::bad(
                "invalid_request",
                "This app is private to a workspace: it cannot ask for another",
            ));
        }
        (Some(own), _) => Some(own.clone()),
        (None, asked) => asked.map(str::to_owned),
    };
    if workspace.as_ref().is_some_and(|w| w.len() > 100) {
        return Err(Refusal::bad("invalid_request", "workspace is too long"));
    }
    Ok(Valid {
        pushed: None,
        workspace,
        nonce: openid.nonce,
        max_age: openid.max_age,
        hinted_sub: openid.hinted_sub,
        scopes: requested_scopes(&client, p)?,
        challenge: pkce_challenge(&client, p)?,
        prompts: prompts(p)?,
        resource: resource(state, &client, p)?,
        client,
        redirect_uri,
        state: p.state.clone(),
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
        v.nonce.as_deref().unwrap_or(""),
        v.workspace.as_deref().unwrap_or(""),
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

/// The approval to record along with a code.
struct Recorded {
    approval: Approval,
    event: NewEvent,
}

impl Recorded {
    fn new(user_id: &str, v: &Valid, approval: Approval, workspace: &str) -> Recorded {
        let user_id = user_id.to_owned();
        let mut event = NewEvent::new(Action::ConsentGranted);
        event.actor_user_id = Some(user_id.clone());
        event.subject_user_id = Some(user_id);
        event.workspace_id = Some(workspace.to_owned());
        event.details = serde_json::json!({
            "client_id": v.client.id,
            "scopes": v.scopes.to_storage(),
            "first_party": approval == Approval::FirstParty,
        });
        Recorded { approval, event }
    }
}

/// What the signed-in browser brings to a code: the user, the session, when it signed in.
#[derive(Clone)]
struct Approver {
    user_id: String,
    session_id: String,
    auth_time: chrono::NaiveDateTime,
}

impl Approver {
    fn of(signed_in: &SignedIn) -> Approver {
        Approver {
            user_id: signed_in.user.id.clone(),
            session_id: signed_in.session.id.clone(),
            auth_time: signed_in.session.created_at,
        }
    }
}

/// Issue the code (recording the approval first, if there is one to record), on the caller's
/// connection. `None`: the pushed request was decided already.
fn issue(
    c: &mut DbConn,
    pepper: &Pepper,
    approver: &Approver,
    v: &Valid,
    workspace: String,
    record: Option<Recorded>,
    now: chrono::NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    let new = NewCode {
        client_id: v.client.id.clone(),
        user_id: approver.user_id.clone(),
        redirect_uri: v.redirect_uri.clone(),
        scopes: v.scopes.clone(),
        code_challenge: v.challenge.clone(),
        auth_time: approver.auth_time,
        resource: v.resource.clone(),
        nonce: v.nonce.clone(),
        session_id: Some(approver.session_id.clone()),
        workspace_id: Some(workspace),
    };
    // A pushed request gives one decision: of two approvals racing, one gets a code.
    if let Some((id, _)) = &v.pushed
        && !pushed::consume(c, id, now)?
    {
        return Ok(None);
    }
    if let Some(r) = record {
        grants::remember_consent(
            c,
            &new.user_id,
            &new.client_id,
            &new.scopes,
            r.approval,
            new.workspace_id.as_deref(),
            now,
        )?;
        audit::record(c, &r.event, now)?;
    }
    grants::issue_code(c, pepper, &new, now).map(Some)
}

/// Send the browser back to the client with the code (or the page saying why not).
fn send_back(
    state: &AppState,
    v: &Valid,
    issued: Result<Option<PlainSecret>, DbError>,
) -> HttpResponse {
    match issued {
        Ok(None) => refuse(
            state,
            Refusal::bad("invalid_request_uri", pushed::Unusable::Used.message()),
        ),
        Ok(Some(code)) => {
            let mut params = vec![("code", code.expose())];
            if let Some(s) = v.state.as_deref() {
                params.push(("state", s));
            }
            params.push(("iss", &state.settings.issuer));
            see_other(&redirect_with(&v.redirect_uri, &params))
        }
        Err(e) => {
            log::error!("issuing an authorization code: {e}");
            refuse(state, Refusal::unavailable())
        }
    }
}

/// Issue the code and send the browser back to the client.
async fn approve(
    state: &AppState,
    signed_in: &SignedIn,
    v: Arc<Valid>,
    workspace: String,
    record: Option<Recorded>,
) -> HttpResponse {
    let (pepper, now, approver) = (
        state.digest_pepper.clone(),
        state.now(),
        Approver::of(signed_in),
    );
    let valid = v.clone();
    let issued = state
        .db(move |c| issue(c, &pepper, &approver, &valid, workspace, record, now))
        .await;
    send_back(state, &v, issued)
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    nav: Option<Nav>,
    client_name: &'a str,
    owner_name: &'a str,
    /// A metadata-document app: the host of its `client_id`, shown first.
    document_host: Option<String>,
    /// Registered itself (RFC 7591): nobody vouches for it.
    self_registered: bool,
    /// What a self-registered app says it is (label, URL), shown as text.
    claimed_links: Vec<(&'static str, String)>,
    /// Every redirect URI is on the user's own machine.
    localhost_only: bool,
    /// A self-registered app: the host this request returns to.
    returns_to: Option<String>,
    /// A metadata-document app returning to a host other than its document's (not loopback).
    elsewhere: bool,
    user_email: &'a str,
    new_scopes: Vec<(String, String)>,
    previously_granted: Vec<String>,
    /// A public (native or browser) app: asked every time.
    asks_each_time: bool,
    csrf_token: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    scope: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    code_challenge_method: &'a str,
    resource: &'a str,
    nonce: &'a str,
    /// RFC 9126: the pushed request the form decides.
    request_uri: &'a str,
    /// The app named the workspace (or is private to it): shown, not chosen.
    workspace: &'a str,
    /// The user's workspaces to pick from (id, name, role), the preselected one first; empty
    /// when there is nothing to choose.
    workspace_choices: Vec<(String, String, &'static str)>,
    fixed_workspace_name: &'a str,
}

/// Where the authorization will act: the workspace the app named (or owns), else the one the
/// user chose before for this app, else their only one. `Err(choices)`: the user must pick.
enum Placement {
    In(String),
    Choose(Vec<(String, String, &'static str)>),
}

/// Whether the user must be asked (see the module header), given what they approved before.
fn must_ask(v: &Valid, approved: &ScopeSet) -> bool {
    if v.prompted("consent") {
        return true;
    }
    if v.client.first_party {
        return false;
    }
    v.client.client_type() == ClientType::Public || !v.scopes.is_subset(approved)
}

/// Authorization endpoint (RFC 6749 §4.1, PKCE)
///
/// A browser endpoint. A valid request from a signed-in user answers 303 to the client's
/// `redirect_uri` with `code`, `state` and `iss` (RFC 9207) when nothing needs asking (approved
/// before, or a first-party app), or 200 with the consent page. Not signed in: 303 to
/// `/login?next=…`, which comes straight back (with `prompt=none`: 303 to the client with
/// `error=login_required`). The user's refusal, and `consent_required` under `prompt=none`, are
/// also 303s to the client. A request that is not valid (client, redirect URI,
/// `response_type`, scope, PKCE, `resource`, `prompt`) is never redirected: it gets an
/// error page (400).
#[utoipa::path(get, path = "/oauth/authorize", tag = "oauth",
    security((), ("session" = [])),
    params(
        ("response_type" = String, Query, description = "`code`"),
        ("client_id" = String, Query),
        ("redirect_uri" = String, Query, description = "Exactly as registered (loopback `http` on any port)"),
        ("scope" = Option<String>, Query, description = "Space-separated; default: every scope the client may ask for"),
        ("state" = Option<String>, Query, description = "Returned to the client as given"),
        ("code_challenge" = Option<String>, Query, description = "PKCE S256 challenge, 43 base64url characters; required of public clients"),
        ("code_challenge_method" = Option<String>, Query, description = "`S256` (`plain` is refused)"),
        ("resource" = Option<String>, Query, description = "RFC 8707: one resource server the app is bound to"),
        ("prompt" = Option<String>, Query, description = "`none`, or `login` and/or `consent`"),
    ),
    responses(
        (status = 303, description = "To the client's redirect URI (`code`, or `error` = `access_denied` / `login_required` / `consent_required`, with `state` and `iss`), or to `/login?next=…`",
            headers(("Location" = String, description = "Where the browser goes next"))),
        (status = 200, description = "The consent page", content_type = "text/html", body = String),
        (status = 400, description = "The request is not valid: an error page, never a redirect", content_type = "text/html", body = String),
        (status = 503, description = "An error page: try again later", content_type = "text/html", body = String),
    ))]
pub async fn authorize(
    req: HttpRequest,
    state: web::Data<AppState>,
    cookie: SessionCookie,
    query: web::Query<AuthorizeParams>,
) -> HttpResponse {
    let (query, pushed) = match expand(&state, query.into_inner(), true).await {
        Ok(expanded) => expanded,
        Err(refusal) => return refuse(&state, refusal),
    };
    let session = match session_before_deciding(&req, &state, cookie, &query).await {
        Ok(session) => session,
        Err(answer) => return answer,
    };
    let mut v = match validate(&state, &query, Arrival::Browser).await {
        Ok(v) => v,
        Err(refusal) => return refuse(&state, refusal),
    };
    v.pushed = pushed;
    let registry = match grantable_registry(&state).await {
        Ok(all) => all,
        Err(refusal) => return refuse(&state, refusal),
    };
    let now = state.now();
    let session = match session {
        Session::Known(known) => match admit(&v, known, &registry, now) {
            Ok(signed_in) => Pending::Admitted(Box::new(signed_in)),
            Err(turned) => return turn(&state, &req, &query, turned),
        },
        Session::Unread(cookie) => Pending::Unread(Box::new(cookie)),
    };
    // One trip to the database when the approval is remembered (or the app is first-party):
    // read the session, what the user granted, decide, and issue the code.
    let v = Arc::new(v);
    let valid = v.clone();
    let pepper = state.digest_pepper.clone();
    let found = state
        .db(move |c| decide_in_one_trip(c, &valid, session, &registry, &pepper, now))
        .await;
    match found {
        Ok(Decided::Issued(issued)) => send_back(&state, &v, issued),
        Ok(Decided::Turned(turned)) => turn(&state, &req, &query, turned),
        Ok(Decided::Ask(signed_in, stored, memberships, placement)) => {
            ask(&state, &v, &signed_in, stored, memberships, placement).await
        }
        Err(e) => {
            log::error!("reading consent: {e}");
            refuse(&state, Refusal::unavailable())
        }
    }
}

/// The session as known before validating: a metadata document is fetched for signed-in
/// users only, so an anonymous request naming one goes to the sign-in page first (nobody makes
/// Gatehouse fetch, and store, documents without an account). Any other request reads the
/// session in the trip that decides it.
async fn session_before_deciding(
    req: &HttpRequest,
    state: &AppState,
    cookie: SessionCookie,
    query: &AuthorizeParams,
) -> Result<Session, HttpResponse> {
    if !documents::is_document_id(query.client_id.as_deref().unwrap_or("")) {
        return Ok(if cookie.is_present() {
            Session::Unread(cookie)
        } else {
            Session::Known(Err(cookie.absent()))
        });
    }
    match cookie.signed_in(state).await {
        Ok(signed_in) => Ok(Session::Known(Ok(signed_in))),
        Err(PageAccess::Login { .. }) if query.prompt.as_deref() != Some("none") => {
            Err(see_other(&login_url(req, query, false)))
        }
        Err(PageAccess::Login { .. }) => Err(refuse(
            state,
            Refusal::bad(
                "login_required",
                "Sign in to Gatehouse first: an app described by a metadata document is looked up for signed-in users only",
            ),
        )),
        Err(other) => Err(actix_web::ResponseError::error_response(&other)),
    }
}

/// The deciding trip: who is signed in, what they granted before, where the authorization
/// acts, and the code itself when nothing needs asking.
fn decide_in_one_trip(
    c: &mut DbConn,
    v: &Valid,
    session: Pending,
    registry: &[registry::RegisteredScope],
    pepper: &Pepper,
    now: chrono::NaiveDateTime,
) -> Result<Decided, DbError> {
    let signed_in = match session {
        Pending::Admitted(signed_in) => *signed_in,
        Pending::Unread(cookie) => match admit(v, cookie.resolve(c)?, registry, now) {
            Ok(signed_in) => signed_in,
            Err(turned) => return Ok(Decided::Turned(turned)),
        },
    };
    let approver = Approver::of(&signed_in);
    let stored = grants::find_consent(c, &approver.user_id, &v.client.id)?.unwrap_or_default();
    // The workspace chosen before (and still the user's) needs no other lookup.
    let memberships = if v.workspace.is_none() && stored.workspace_id.is_some() {
        Vec::new()
    } else {
        workspaces::of_user(c, &approver.user_id)?
    };
    let placement = place(v, &memberships, stored.workspace_id.as_deref());
    if let Ok(Placement::In(workspace)) = &placement
        && !must_ask(v, &stored.approved_by_user())
        && !elsewhere(v, &stored, workspace)
    {
        let record = first_party_grant_to_record(v, &stored)
            .then(|| Recorded::new(&approver.user_id, v, Approval::FirstParty, workspace));
        let issued = issue(c, pepper, &approver, v, workspace.clone(), record, now);
        return Ok(Decided::Issued(issued));
    }
    Ok(Decided::Ask(
        Box::new(signed_in),
        stored,
        memberships,
        placement,
    ))
}

/// The user must be asked: the consent page (or, under `prompt=none`, `consent_required` to
/// the client).
async fn ask(
    state: &AppState,
    v: &Valid,
    signed_in: &SignedIn,
    stored: StoredConsent,
    memberships: Vec<(workspaces::Workspace, workspaces::WsRole)>,
    placement: Result<Placement, Refusal>,
) -> HttpResponse {
    let placement = match placement {
        Ok(placement) => placement,
        Err(refusal) => return refuse(state, refusal),
    };
    let approved = stored.approved_by_user();
    if v.prompted("none") {
        return refuse(
            state,
            v.answer("consent_required", "The user must approve this request"),
        );
    }
    let memberships = if memberships.is_empty() {
        let user_id = signed_in.user.id.clone();
        match state.db(move |c| workspaces::of_user(c, &user_id)).await {
            Ok(m) => m,
            Err(e) => {
                log::error!("reading workspaces: {e}");
                return refuse(state, Refusal::unavailable());
            }
        }
    } else {
        memberships
    };
    consent_page(state, signed_in, v, &approved, &memberships, placement).await
}

/// The browser's session, as far as it is known before the trip that decides the request.
enum Session {
    /// Read already (an app described by a metadata document is looked up for signed-in
    /// users only), or no cookie at all.
    Known(Result<SignedIn, PageAccess>),
    /// To read in the deciding trip.
    Unread(SessionCookie),
}

/// The session as the deciding trip takes it: let through by `admit` already, or to read.
enum Pending {
    Admitted(Box<SignedIn>),
    Unread(Box<SessionCookie>),
}

/// Why a request goes no further than who is signed in.
enum Turned {
    /// To the client with an error (or an error page).
    Refuse(Refusal),
    /// To the sign-in page (`fresh`: a new sign-in is asked for, not a session).
    SignIn { fresh: bool },
    /// Must change password first, or the session could not be read.
    Page(PageAccess),
}

fn turn(
    state: &AppState,
    req: &HttpRequest,
    query: &AuthorizeParams,
    turned: Turned,
) -> HttpResponse {
    match turned {
        Turned::Refuse(refusal) => refuse(state, refusal),
        Turned::SignIn { fresh } => see_other(&login_url(req, query, fresh)),
        Turned::Page(access) => actix_web::ResponseError::error_response(&access),
    }
}

/// The signed-in user, or where the request goes instead: the sign-in page (or, under
/// `prompt=none`, `login_required` to the client), a refusal of scopes the user cannot grant,
/// another user than the one hinted, or a session older than `max_age` / `prompt=login` asks.
fn admit(
    v: &Valid,
    signed_in: Result<SignedIn, PageAccess>,
    registry: &[registry::RegisteredScope],
    now: chrono::NaiveDateTime,
) -> Result<SignedIn, Turned> {
    let prompt_none = v.prompted("none");
    let signed_in = match signed_in {
        Ok(s) => s,
        Err(_) if prompt_none => {
            return Err(Turned::Refuse(
                v.answer("login_required", "The user is not signed in"),
            ));
        }
        Err(PageAccess::Login { .. }) => return Err(Turned::SignIn { fresh: false }),
        Err(other) => return Err(Turned::Page(other)),
    };
    if let Some(refusal) = beyond_the_user(registry, &signed_in, v) {
        return Err(Turned::Refuse(refusal));
    }
    if v.hinted_sub
        .as_deref()
        .is_some_and(|sub| sub != signed_in.user.id)
        && prompt_none
    {
        return Err(Turned::Refuse(
            v.answer("login_required", "Another user is signed in"),
        ));
    }
    let age = (now - signed_in.session.created_at).num_seconds();
    let too_old = v.max_age.is_some_and(|max| max == 0 || age > max);
    if too_old && prompt_none {
        return Err(Turned::Refuse(
            v.answer("login_required", "The user must sign in again (max_age)"),
        ));
    }
    if too_old || (v.prompted("login") && age > 60) {
        // A fresh sign-in was asked for; come back without `prompt=login` and `max_age` so it
        // is not asked again (the new session's time is the ID token's `auth_time`).
        return Err(Turned::SignIn { fresh: true });
    }
    Ok(signed_in)
}

/// What the remembered-approval trip decided.
enum Decided {
    /// Nothing, because of who is (or is not) signed in.
    Turned(Turned),
    /// The code (or why none), issued in the same trip.
    Issued(Result<Option<PlainSecret>, DbError>),
    /// The user must be asked: who they are, what they granted before, their workspaces (empty
    /// when the remembered workspace made reading them unnecessary), and where the
    /// authorization acts (or the refusal when the app names a workspace the user is not in).
    Ask(
        Box<SignedIn>,
        StoredConsent,
        Vec<(workspaces::Workspace, workspaces::WsRole)>,
        Result<Placement, Refusal>,
    ),
}

/// An approval is for the workspace it was given in: another one the app names is asked
/// about (first-party apps excepted, as for scopes).
fn elsewhere(v: &Valid, stored: &StoredConsent, workspace: &str) -> bool {
    !v.client.first_party && stored.workspace_id.as_deref() != Some(workspace)
}

/// Where this authorization acts, given the user's workspaces and the one they chose for the
/// app last time. A workspace the app names that the user is not in is the user's refusal.
fn place(
    v: &Valid,
    memberships: &[(workspaces::Workspace, workspaces::WsRole)],
    remembered: Option<&str>,
) -> Result<Placement, Refusal> {
    if let Some(asked) = &v.workspace {
        return memberships
            .iter()
            .find(|(w, _)| &w.id == asked || &w.slug == asked)
            .map(|(w, _)| Placement::In(w.id.clone()))
            .ok_or_else(|| {
                v.answer(
                    "access_denied",
                    "The user is not a member of the workspace this app asks for",
                )
            });
    }
    // `remembered` is the user's (see `grants::find_consent`).
    if let Some(remembered) = remembered {
        return Ok(Placement::In(remembered.to_owned()));
    }
    if let [(only, _)] = memberships {
        return Ok(Placement::In(only.id.clone()));
    }
    Ok(Placement::Choose(choices(memberships, remembered)))
}

/// The workspaces to pick from, `first` (else the personal one) first.
fn choices(
    memberships: &[(workspaces::Workspace, workspaces::WsRole)],
    first: Option<&str>,
) -> Vec<(String, String, &'static str)> {
    let mut all: Vec<_> = memberships
        .iter()
        .map(|(w, role)| (w.id.clone(), w.display_name().to_owned(), role.as_str()))
        .collect();
    if let Some(pos) = first.and_then(|f| all.iter().position(|(id, _, _)| id == f)) {
        let preferred = all.remove(pos);
        all.insert(0, preferred);
    }
    all
}

/// A first-party grant is recorded when it adds scopes to what is stored (once, not at every
/// sign-in: the remembered flow keeps its statement count).
fn first_party_grant_to_record(v: &Valid, stored: &StoredConsent) -> bool {
    v.client.first_party && !v.scopes.is_subset(&stored.scopes)
}

/// The registered scopes, for `beyond_the_user` (the "try again later" page when they cannot
/// be read).
async fn grantable_registry(
    state: &AppState,
) -> Result<Arc<Vec<registry::RegisteredScope>>, Refusal> {
    state.scope_registry().await.map_err(|e| {
        log::error!("reading the scope registry: {e}");
        Refusal::unavailable()
    })
}

/// An app can be granted only what the user may hold: admin-only scopes (e.g. `write:users`)
/// are refused for members, on a page (the request cannot be granted as it stands).
fn beyond_the_user(
    all: &[registry::RegisteredScope],
    signed_in: &SignedIn,
    v: &Valid,
) -> Option<Refusal> {
    let allowed = crate::policy::grantable::consent_may_grant(
        crate::policy::Role::of(signed_in.user.is_admin()),
        all,
    );
    v.scopes.difference(&allowed).first().map(|scope| {
        Refusal::bad(
            "invalid_scope",
            &format!("Your account cannot grant {scope} to an application"),
        )
    })
}

/// The sign-in page, coming back to this request (after a fresh sign-in: without what asked
/// for it), with the email the client hinted.
fn login_url(req: &HttpRequest, p: &AuthorizeParams, fresh: bool) -> String {
    let mut url = format!("/login?next={}", urlencode(&path_and_query(req, fresh)));
    if let Some(hint) = p.login_hint.as_deref().filter(|h| !h.is_empty()) {
        url.push_str("&login_hint=");
        url.push_str(&urlencode(hint));
    }
    url
}

/// This request's path and query, optionally without `max_age` and `login` among its `prompt`
/// values.
fn path_and_query(req: &HttpRequest, drop_prompt_login: bool) -> String {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    let kept = pairs.into_iter().filter_map(|(k, v)| {
        if drop_prompt_login && k == "max_age" {
            return None;
        }
        if !(drop_prompt_login && k == "prompt") {
            return Some((k, v));
        }
        let rest: Vec<&str> = v
            .split(' ')
            .filter(|p| !p.is_empty() && *p != "login")
            .collect();
        (!rest.is_empty()).then(|| (k, rest.join(" ")))
    });
    let query = serde_urlencoded::to_string(kept.collect::<Vec<_>>()).unwrap_or_default();
    format!("{}?{}", req.path(), query)
}

/// The links a self-registered app gives about itself (registered apps: none shown).
fn claimed_links(client: &Client) -> Vec<(&'static str, String)> {
    if !client.self_registered() {
        return Vec::new();
    }
    let d = client.description();
    [
        ("home page", d.client_uri),
        ("privacy policy", d.policy_uri),
        ("terms", d.tos_uri),
    ]
    .into_iter()
    .filter_map(|(label, url)| url.map(|u| (label, u)))
    .collect()
}

/// Whether a metadata-document app sends the browser to a site other than the one that
/// describes it (loopback redirects of native apps excepted: the localhost warning covers
/// those).
fn returns_elsewhere(client: &Client, redirect_uri: &str) -> bool {
    let Some(document) = client.document_host() else {
        return false;
    };
    let Ok(target) = url::Url::parse(redirect_uri) else {
        return false;
    };
    match target.host() {
        Some(url::Host::Domain(d)) => {
            !d.eq_ignore_ascii_case("localhost")
                && !documents::host_and_parents(d).contains(&document.to_ascii_lowercase())
                && !documents::host_and_parents(&document).contains(&d.to_ascii_lowercase())
        }
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback() && ip.to_string() != document,
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        None => true,
    }
}

/// Whether every redirect URI of a self-registered app is a loopback address.
fn localhost_only(client: &Client) -> bool {
    let uris = client.redirect_uris();
    client.self_registered()
        && !uris.is_empty()
        && uris.iter().all(|u| {
            url::Url::parse(u.as_str()).is_ok_and(|p| match p.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            })
        })
}

/// With one workspace (or one fixed by the app) the page names it; with several, the user
/// picks, the last choice for this app (else the personal one) preselected.
fn workspace_on_page(
    v: &Valid,
    memberships: &[(workspaces::Workspace, workspaces::WsRole)],
    placement: &Placement,
) -> (Vec<(String, String, &'static str)>, String) {
    match placement {
        Placement::Choose(all) => (all.clone(), String::new()),
        Placement::In(id) => {
            let name = memberships
                .iter()
                .find(|(w, _)| &w.id == id)
                .map(|(w, _)| w.display_name().to_owned())
                .unwrap_or_default();
            if v.workspace.is_none() && memberships.len() > 1 {
                (choices(memberships, Some(id)), String::new())
            } else {
                (Vec::new(), name)
            }
        }
    }
}

/// Where a self-registered app sends the user back (its redirect URI's host), shown on the
/// consent page.
fn returns_to(v: &Valid) -> Option<String> {
    if !v.client.self_registered() {
        return None;
    }
    url::Url::parse(&v.redirect_uri)
        .ok()?
        .host_str()
        .map(str::to_owned)
}

/// The scopes the page asks for (each with its description) and those already granted.
fn scope_lists(
    v: &Valid,
    prior: &ScopeSet,
    registered: &[registry::RegisteredScope],
) -> (Vec<(String, String)>, Vec<String>) {
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
    (new_scopes, previously_granted)
}

async fn consent_page(
    state: &AppState,
    signed_in: &SignedIn,
    v: &Valid,
    prior: &ScopeSet,
    memberships: &[(workspaces::Workspace, workspaces::WsRole)],
    placement: Placement,
) -> HttpResponse {
    let (workspace_choices, fixed_workspace_name) = workspace_on_page(v, memberships, &placement);
    let owner_id = v.client.owner_user_id.clone();
    let looked_up = state
        .db(move |c| {
            let owner = match &owner_id {
                Some(id) => model::find_by_id(c, id)?,
                None => None,
            };
            Ok((registry::all(c)?, owner))
        })
        .await;
    let (registered, owner) = match looked_up {
        Ok(found) => found,
        Err(e) => {
            log::error!("consent page: {e}");
            return refuse(state, Refusal::unavailable());
        }
    };
    let (new_scopes, previously_granted) = scope_lists(v, prior, &registered);
    let issued = state.now().and_utc().timestamp();
    let csrf_token = consent_token(state, &signed_in.session.id, v, issued);
    let scope = v.scopes.to_storage();
    render(
        StatusCode::OK,
        &ConsentPage {
            nav: Some(signed_in.nav("apps")),
            client_name: &v.client.name,
            document_host: v.client.document_host(),
            self_registered: v.client.self_registered(),
            claimed_links: claimed_links(&v.client),
            localhost_only: localhost_only(&v.client),
            returns_to: returns_to(v),
            elsewhere: returns_elsewhere(&v.client, &v.redirect_uri),
            owner_name: owner
                .as_ref()
                .map_or("an unknown developer", |o| o.display_name.as_str()),
            user_email: &signed_in.user.email,
            new_scopes,
            previously_granted,
            asks_each_time: v.client.client_type() == ClientType::Public,
            csrf_token: &csrf_token,
            client_id: &v.client.id,
            redirect_uri: &v.redirect_uri,
            scope: &scope,
            state: v.state.as_deref().unwrap_or(""),
            code_challenge: v.challenge.as_deref().unwrap_or(""),
            code_challenge_method: if v.challenge.is_some() { "S256" } else { "" },
            resource: v.resource.as_deref().unwrap_or(""),
            nonce: v.nonce.as_deref().unwrap_or(""),
            request_uri: v.pushed.as_ref().map_or("", |(_, uri)| uri.as_str()),
            workspace: v.workspace.as_deref().unwrap_or(""),
            workspace_choices,
            fixed_workspace_name: &fixed_workspace_name,
        },
    )
}

/// The workspace an approval is made in: the app's (named or owning), else the user's pick,
/// checked against their memberships now (`None`: none chosen among several, or not theirs).
async fn approved_in(
    state: &AppState,
    signed_in: &SignedIn,
    v: &Valid,
    form: &AuthorizeParams,
) -> Result<Option<String>, Refusal> {
    let user_id = signed_in.user.id.clone();
    let memberships = state
        .db(move |c| workspaces::of_user(c, &user_id))
        .await
        .map_err(|e| {
            log::error!("reading workspaces: {e}");
            Refusal::unavailable()
        })?;
    let picked = v
        .workspace
        .clone()
        .or_else(|| form.chosen_workspace.clone().filter(|w| !w.is_empty()));
    Ok(match picked {
        Some(asked) => memberships
            .iter()
            .find(|(w, _)| w.id == asked || w.slug == asked)
            .map(|(w, _)| w.id.clone()),
        None if memberships.len() == 1 => Some(memberships[0].0.id.clone()),
        None => None,
    })
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
    let (form, pushed) = match expand(&state, form.into_inner(), false).await {
        Ok(expanded) => expanded,
        Err(refusal) => return refuse(&state, refusal),
    };
    let mut v = match validate(&state, &form, Arrival::Browser).await {
        Ok(v) => v,
        Err(refusal) => return refuse(&state, refusal),
    };
    v.pushed = pushed;
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
    let registry = match grantable_registry(&state).await {
        Ok(all) => all,
        Err(refusal) => return refuse(&state, refusal),
    };
    if let Some(refusal) = beyond_the_user(&registry, &signed_in, &v) {
        return refuse(&state, refusal);
    }
    if form.decision.as_deref() != Some("approve") {
        if let Some((id, _)) = v.pushed.clone() {
            let now = state.now();
            if let Err(e) = state.db(move |c| pushed::consume(c, &id, now)).await {
                log::warn!("spending a pushed authorization request: {e}");
            }
        }
        return refuse(
            &state,
            v.answer("access_denied", "The user denied the request"),
        );
    }
    let workspace = match approved_in(&state, &signed_in, &v, &form).await {
        Ok(workspace) => workspace,
        Err(refusal) => return refuse(&state, refusal),
    };
    let Some(workspace) = workspace else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Choose a workspace",
            "Pick the workspace this application will act in. Start again from the application.",
        );
    };
    let record = Recorded::new(&signed_in.user.id, &v, Approval::ByUser, &workspace);
    approve(&state, &signed_in, Arc::new(v), workspace, Some(record)).await
}
