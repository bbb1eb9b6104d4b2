//! Administration → Agents: the apps nobody registered by hand — those that registered
//! themselves (RFC 7591) and those described by Client ID Metadata Documents — with where they
//! came from, their first and last use and how many users connected them; disable, enable or
//! delete one; block a host's documents (its apps are disabled at once and never fetched
//! again); mint and revoke the initial access tokens registration may need.
//!
//! Reading asks the policy `ListAllClients`, every change `AdministerClients`; every form
//! carries the session's CSRF token.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{Duration, NaiveDateTime};
use serde::Deserialize;
use serde_json::json;

use crate::api_keys::api::client_ip;
use crate::audit::{self, Action as AuditAction};
use crate::clients::manage::{self, Actor, ClientInput};
use crate::clients::registration::{self as reg, RegistrationToken};
use crate::clients::{self, Client, Origin};
use crate::config::{CimdPolicy, RegistrationMode};
use crate::db::{DbConn, DbError};
use crate::pages::{Nav, csrf_matches, error_page, failure_page, form_expired, render, see_other};
use crate::policy::Action;
use crate::principal::SignedIn;
use crate::state::AppState;

pub struct AgentRow {
    pub client_id: String,
    pub name: String,
    /// "registered itself" or "metadata document".
    pub origin: &'static str,
    /// The host of a document, or the address a registration came from.
    pub source: String,
    pub created: String,
    pub first_used: String,
    pub last_used: String,
    pub users: i64,
    pub disabled: bool,
}

pub struct TokenRow {
    pub id: String,
    pub label: String,
    pub created: String,
    pub expires: String,
    pub uses_left: String,
    pub usable: bool,
}

#[derive(Template)]
#[template(path = "apps/agents.html")]
struct AgentsPage<'a> {
    nav: Option<Nav>,
    csrf_token: &'a str,
    registration: &'static str,
    cimd: String,
    agents: Vec<AgentRow>,
    tokens: Vec<TokenRow>,
    blocked: Vec<(String, String)>,
    minted: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
}

fn when(t: Option<NaiveDateTime>) -> String {
    t.map_or_else(
        || "never".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

type Loaded = (
    Vec<Client>,
    HashMap<String, i64>,
    Vec<RegistrationToken>,
    Vec<(String, NaiveDateTime)>,
);

fn load(conn: &mut DbConn) -> Result<Loaded, DbError> {
    let agents = clients::self_registered(conn, 500)?;
    let ids: Vec<&str> = agents.iter().map(|c| c.id.as_str()).collect();
    let users = crate::grants::consent_counts(conn, &ids)?;
    let tokens = reg::list_initial_tokens(conn)?;
    let blocked = crate::clients::documents::blocked_hosts(conn)?;
    Ok((agents, users.into_iter().collect(), tokens, blocked))
}

/// One self-registered app as the agents page lists it.
fn agent_row(c: &Client, users: &std::collections::HashMap<String, i64>) -> AgentRow {
    AgentRow {
        client_id: c.id.clone(),
        name: c.name.clone(),
        origin: if c.origin() == Origin::Cimd {
            "metadata document"
        } else {
            "registered itself"
        },
        source: c
            .document_host()
            .or_else(|| c.registered_from.clone())
            .unwrap_or_default(),
        created: when(Some(c.created_at)),
        first_used: when(c.first_used_at),
        last_used: when(c.last_used_at),
        users: users.get(&c.id).copied().unwrap_or(0),
        disabled: c.disabled_at.is_some(),
    }
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    minted: Option<String>,
    notice: Option<&'static str>,
    error: Option<String>,
) -> HttpResponse {
    if signed_in
        .principal()
        .authorize(Action::ListAllClients)
        .is_err()
    {
        return error_page(
            StatusCode::FORBIDDEN,
            "Administrators only",
            "Only administrators can see the agents that registered themselves.",
        );
    }
    let (agents, users, tokens, blocked) = match state.db(load).await {
        Ok(loaded) => loaded,
        Err(e) => return failure_page(&e.into()),
    };
    let now = state.now();
    let settings = &state.settings;
    render(
        status,
        &AgentsPage {
            nav: Some(signed_in.nav("agents")),
            csrf_token: &signed_in.csrf_token,
            registration: match settings.registration.mode {
                RegistrationMode::Off => "off",
                RegistrationMode::Token => "token",
                RegistrationMode::Open => "open",
            },
            cimd: match &settings.cimd {
                CimdPolicy::Off => "off".into(),
                CimdPolicy::All => "any host".into(),
                CimdPolicy::Hosts(hosts) => hosts.join(", "),
            },
            agents: agents.iter().map(|c| agent_row(c, &users)).collect(),
            tokens: tokens
                .iter()
                .map(|t| TokenRow {
                    id: t.id.clone(),
                    label: t.label.clone(),
                    created: when(Some(t.created_at)),
                    expires: when(Some(t.expires_at)),
                    uses_left: t
                        .uses_left
                        .map_or_else(|| "any".to_owned(), |n| n.to_string()),
                    usable: t.usable(now),
                })
                .collect(),
            blocked: blocked
                .into_iter()
                .map(|(h, at)| (h, when(Some(at))))
                .collect(),
            minted,
            notice,
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "disabled" => Some("The app is disabled: its users' tokens no longer work."),
        "enabled" => Some("The app is enabled again."),
        "deleted" => Some("The app was deleted and its users disconnected."),
        "blocked" => Some(
            "The host is blocked: its apps are disabled and its documents are no longer fetched.",
        ),
        "unblocked" => Some("The host is no longer blocked."),
        "revoked" => Some("The registration token is revoked."),
        _ => None,
    }
}

pub async fn agents(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    query: web::Query<DoneQuery>,
) -> HttpResponse {
    let notice = notice_for(query.done.as_deref());
    page(&state, &signed_in, StatusCode::OK, None, notice, None).await
}

/// Every form of the page: the session's CSRF token, then the policy (`AdministerClients`);
/// the audit actor of what it does.
fn administers(
    signed_in: &SignedIn,
    req: &HttpRequest,
    csrf_token: &str,
) -> Result<audit::Actor, HttpResponse> {
    if !csrf_matches(&signed_in.csrf_token, csrf_token) {
        return Err(form_expired());
    }
    let principal = signed_in.principal();
    principal
        .authorize(Action::AdministerClients)
        .map_err(|_| {
            error_page(
                StatusCode::FORBIDDEN,
                "Administrators only",
                "Only administrators holding admin:clients manage agents.",
            )
        })?;
    Ok(principal.actor(client_ip(req)))
}

#[derive(Deserialize)]
pub struct AgentForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    action: String,
}

/// Disable, enable or delete a self-registered or metadata-document app.
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<AgentForm>,
) -> HttpResponse {
    if let Err(refused) = administers(&signed_in, &req, &form.csrf_token) {
        return refused;
    }
    let principal = signed_in.principal();
    let actor = Actor::of(&principal, client_ip(&req));
    let result = async {
        let app = manage::controlled(&state, &actor, form.client_id.clone()).await?;
        if !app.client().self_registered() {
            return Err(crate::http::ApiError::not_found("Client"));
        }
        match form.action.as_str() {
            "disable" | "enable" => {
                let off = form.action == "disable";
                manage::update(&state, &actor, app, ClientInput::default(), Some(off)).await?;
                Ok(if off { "disabled" } else { "enabled" })
            }
            "delete" => {
                manage::delete(&state, &actor, app).await?;
                Ok("deleted")
            }
            _ => Err(crate::http::ApiError::validation(
                "action",
                "disable, enable or delete",
            )),
        }
    }
    .await;
    match result {
        Ok(done) => see_other(&format!("/admin/agents?done={done}")),
        Err(e) => failure_page(&e),
    }
}

#[derive(Deserialize)]
pub struct MintForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    uses: String,
}

/// The form's lifetime in days (default 7) and number of uses (default: any).
fn days_and_uses(form: &MintForm) -> Result<(i64, Option<i32>), &'static str> {
    let days = match form.days.trim() {
        "" => 7,
        d => match d.parse::<i64>() {
            Ok(n) if (1..=365).contains(&n) => n,
            _ => return Err("Days: a whole number from 1 to 365."),
        },
    };
    let uses = match form.uses.trim() {
        "" => None,
        u => match u.parse::<i32>() {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => return Err("Uses: empty for any number, or 1 to 100000."),
        },
    };
    Ok((days, uses))
}

/// Mint an initial access token; the page shows it once.
pub async fn mint(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<MintForm>,
) -> HttpResponse {
    let actor = match administers(&signed_in, &req, &form.csrf_token) {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let (days, uses) = match days_and_uses(&form) {
        Ok(both) => both,
        Err(why) => {
            let error = Some(why.to_owned());
            return page(
                &state,
                &signed_in,
                StatusCode::BAD_REQUEST,
                None,
                None,
                error,
            )
            .await;
        }
    };
    let label: String = form
        .label
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let (pepper, now, by) = (
        state.digest_pepper.clone(),
        state.now(),
        signed_in.user.id.clone(),
    );
    let minted = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let (token, secret) = reg::mint_initial_token(
                    c,
                    &pepper,
                    &label,
                    Some(&by),
                    now + Duration::days(days),
                    uses,
                    now,
                )?;
                let mut event = actor.event(AuditAction::RegistrationTokenCreated);
                event.details =
                    json!({ "id": token.id, "label": label, "uses": uses, "days": days });
                audit::record(c, &event, now)?;
                Ok(secret)
            })
        })
        .await;
    match minted {
        Ok(secret) => {
            let shown = secret.expose().to_owned();
            page(
                &state,
                &signed_in,
                StatusCode::CREATED,
                Some(shown),
                None,
                None,
            )
            .await
        }
        Err(e) => failure_page(&e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    host: String,
}

pub async fn revoke_token(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let actor = match administers(&signed_in, &req, &form.csrf_token) {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let (id, now) = (path.into_inner(), state.now());
    let revoked = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let revoked = reg::revoke_initial_token(c, &id, now)?;
                if revoked {
                    let mut event = actor.event(AuditAction::RegistrationTokenRevoked);
                    event.details = json!({ "id": id });
                    audit::record(c, &event, now)?;
                }
                Ok(revoked)
            })
        })
        .await;
    match revoked {
        Ok(true) => see_other("/admin/agents?done=revoked"),
        Ok(false) => error_page(
            StatusCode::NOT_FOUND,
            "Not found",
            "No live registration token has that id.",
        ),
        Err(e) => failure_page(&e.into()),
    }
}

/// A host name as typed: lower-case letters, digits, dots and dashes (or an IP literal).
fn host_name(raw: &str) -> Option<String> {
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || b == b'.'
                || b == b'-'
                || b == b':'
                || b == b'['
                || b == b']'
        });
    ok.then_some(host)
}

/// Block a host: its metadata-document apps are disabled (locked: only an administrator
/// enables one again) with their grants ended, and its documents are never fetched again.
pub async fn block_host(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let actor = match administers(&signed_in, &req, &form.csrf_token) {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let Some(host) = host_name(&form.host) else {
        let error = Some("Host: a host name such as agents.example.com.".to_owned());
        return page(
            &state,
            &signed_in,
            StatusCode::BAD_REQUEST,
            None,
            None,
            error,
        )
        .await;
    };
    let (now, by) = (state.now(), signed_in.user.id.clone());
    let blocked = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                crate::clients::documents::block_host(c, &host, &by, now)?;
                let documents = clients::described_by_documents(c)?;
                let mut families = Vec::new();
                let mut disabled = Vec::new();
                for client in documents.iter().filter(|d| {
                    d.document_host().is_some_and(|h| {
                        crate::clients::documents::host_and_parents(&h).contains(&host)
                    })
                }) {
                    families.extend(manage::revoke_client_families(
                        c,
                        &client.id,
                        now,
                        "client_disabled",
                    )?);
                    clients::lock_disabled(c, &client.id, now)?;
                    disabled.push(client.id.clone());
                }
                let mut event = actor.event(AuditAction::ClientHostBlocked);
                event.details = json!({ "host": host, "disabled_client_ids": disabled });
                audit::record(c, &event, now)?;
                Ok(families)
            })
        })
        .await;
    match blocked {
        Ok(families) => {
            crate::grants::deny_grants(&state, &families).await;
            state.key_cache.invalidate_all();
            state.forget_web_origins();
            see_other("/admin/agents?done=blocked")
        }
        Err(e) => failure_page(&e.into()),
    }
}

/// Fetch a host's documents again (its disabled apps stay disabled until enabled one by one).
pub async fn unblock_host(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let actor = match administers(&signed_in, &req, &form.csrf_token) {
        Ok(actor) => actor,
        Err(refused) => return refused,
    };
    let Some(host) = host_name(&form.host) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Bad host",
            "That is not a host name.",
        );
    };
    let now = state.now();
    let removed = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let removed = crate::clients::documents::unblock_host(c, &host)?;
                if removed > 0 {
                    let mut event = actor.event(AuditAction::ClientHostUnblocked);
                    event.details = json!({ "host": host });
                    audit::record(c, &event, now)?;
                }
                Ok(removed)
            })
        })
        .await;
    match removed {
        Ok(_) => see_other("/admin/agents?done=unblocked"),
        Err(e) => failure_page(&e.into()),
    }
}
