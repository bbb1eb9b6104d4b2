//! Managing apps: developers register and change their OAuth clients and rotate secrets,
//! admins list and disable any, users see and disconnect the apps they approved. The REST API
//! (`/v1/clients`, `/v1/consents`) and the pages share these functions.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;
use serde_json::json;

use crate::accounts::model::utc;
use crate::audit::{self, Action, NewEvent};
use crate::clients::redirect::RedirectUri;
use crate::clients::{
    self, CLIENT_SECRET_PREFIX, Client, ClientType, ClientView, GRANT_TYPES, NewClient,
};
use crate::db::{DbConn, DbError};
use crate::grants;
use crate::http::{ApiError, ErrorCode};
use crate::policy::{self, Action as PolicyAction, Allowed, Caller, Denied};
use crate::principal::Principal;
use crate::scopes::ScopeSet;
use crate::secrets::PlainSecret;
use crate::state::AppState;

/// Who acts: the caller the policy weighs, and who the audit log names.
pub struct Actor<'a> {
    pub caller: Caller<'a>,
    pub audit: audit::Actor,
}

impl<'a> Actor<'a> {
    pub fn of(principal: &'a Principal, ip: Option<String>) -> Actor<'a> {
        Actor {
            caller: principal.caller(),
            audit: principal.actor(ip),
        }
    }

    fn user_id(&self) -> &str {
        self.caller.user_id().unwrap_or_default()
    }

    fn authorize(&self, action: PolicyAction<'_>) -> Result<Allowed, ApiError> {
        policy::authorize(&self.caller, action).map_err(|denied| match denied {
            Denied::NotFound(_) => ApiError::not_found("Client"),
            other => other.into(),
        })
    }

    fn event(&self, action: Action, client: &Client) -> NewEvent {
        let mut event = self.audit.event(action);
        event.subject_user_id = client.owner_user_id.clone();
        event.details = json!({ "client_id": client.id, "name": client.name });
        event
    }
}

/// What a developer sends to register or change an app (absent: unchanged / the default).
#[derive(Debug, Default, Clone)]
pub struct ClientInput {
    pub name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub client_type: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub first_party: Option<bool>,
    /// Resource servers the app may ask tokens for (administrators only).
    pub resources: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `""`: none.
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: Option<bool>,
    /// RFC 9126: the app must push its authorization requests.
    pub require_pushed_authorization_requests: Option<bool>,
    /// `private_key_jwt`: the app's public keys (a JWK Set)…
    pub jwks: Option<serde_json::Value>,
    /// …or where it publishes them.
    pub jwks_uri: Option<String>,
    /// RFC 9449: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: Option<bool>,
    /// Registration only: the workspace the app is private to (its admins register them).
    pub workspace_id: Option<String>,
    /// Public apps' web origins (CORS): `Some(None)` derives them from the redirect URIs again.
    pub allowed_origins: Option<Option<Vec<String>>>,
}

pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest overlap of an old and a new secret.
pub const MAX_SECRET_GRACE: Duration = Duration::days(7);

fn validate_name(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "name",
            "The name is 1 to 100 characters",
        ));
    }
    Ok(name.to_owned())
}

/// A public app's web origins (CORS); confidential apps have none.
fn validate_origins(
    client_type: ClientType,
    raw: Option<&Option<Vec<String>>>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(Some(raw)) = raw else {
        return Ok(None);
    };
    clients::cors::checked_origins(client_type, raw)
        .map(Some)
        .map_err(|e| ApiError::validation("allowed_origins", e.to_string()))
}

fn validate_post_logout(raw: &[String]) -> Result<Vec<RedirectUri>, ApiError> {
    parse_uris("post_logout_redirect_uris", raw, 0)
}

/// An absolute `https` URI with a host and without a fragment or user name (`http` too when
/// private endpoints are allowed, for development); `""`: none. The API and the CLI both ask.
pub fn backchannel_uri(raw: &str, allow_private: bool) -> Result<Option<String>, &'static str> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.len() > 2000 {
        return Err("At most 2000 characters");
    }
    let url = reqwest::Url::parse(raw).map_err(|_| "Not an absolute URI")?;
    if url.scheme() != "https" && !(allow_private && url.scheme() == "http") {
        return Err("The URI must be https");
    }
    if url.fragment().is_some() || url.host_str().is_none() || !url.username().is_empty() {
        return Err("The URI must have a host, and no fragment or user name");
    }
    Ok(Some(raw.to_owned()))
}

fn validate_backchannel(state: &AppState, raw: &str) -> Result<Option<String>, ApiError> {
    backchannel_uri(raw, state.settings.backchannel_allow_private)
        .map_err(|why| ApiError::validation("backchannel_logout_uri", why))
}

fn logout_settings(
    state: &AppState,
    input: &ClientInput,
) -> Result<clients::LogoutSettings, ApiError> {
    Ok(clients::LogoutSettings {
        post_logout_redirect_uris: validate_post_logout(
            input.post_logout_redirect_uris.as_deref().unwrap_or(&[]),
        )?,
        backchannel_logout_uri: validate_backchannel(
            state,
            input.backchannel_logout_uri.as_deref().unwrap_or(""),
        )?,
        backchannel_logout_session_required: input
            .backchannel_logout_session_required
            .unwrap_or(false),
    })
}

fn validate_redirects(raw: &[String]) -> Result<Vec<RedirectUri>, ApiError> {
    parse_uris("redirect_uris", raw, 1)
}

/// `min` to 10 redirect URIs (as `RedirectUri` takes them), for `field`.
fn parse_uris(
    field: &'static str,
    raw: &[String],
    min: usize,
) -> Result<Vec<RedirectUri>, ApiError> {
    if raw.len() < min || raw.len() > MAX_REDIRECT_URIS {
        return Err(ApiError::validation(
            field,
            format!("Register {min} to {MAX_REDIRECT_URIS} URIs"),
        ));
    }
    raw.iter()
        .map(|u| {
            RedirectUri::parse(u.trim())
                .map_err(|e| ApiError::validation(field, format!("{}: {e}", u.trim())))
        })
        .collect()
}

async fn validate_scopes(
    state: &AppState,
    actor: &Actor<'_>,
    raw: &[String],
) -> Result<ScopeSet, ApiError> {
    let asked =
        ScopeSet::from_list(raw).map_err(|e| ApiError::validation("scopes", format!("{e}")))?;
    let all = state.scope_registry().await?;
    let grantable = crate::policy::grantable::app_may_be_given(&actor.caller, &all);
    if let Some(extra) = asked.difference(&grantable).first() {
        return Err(ApiError::validation(
            "scopes",
            format!("{extra} is not a scope you may give an app (see GET /v1/scopes)"),
        ));
    }
    // Attenuation: an app gets no scope the credential registering it lacks.
    if let Some(lacking) = asked
        .iter()
        .find(|s| !actor.caller.holds_name(s.as_str(), false))
    {
        return Err(ApiError::new(
            ErrorCode::Broader,
            format!("You cannot give an app {lacking}: the credential you are using lacks it"),
        ));
    }
    if asked.is_empty() {
        return Err(ApiError::validation(
            "scopes",
            "Give the app at least one scope",
        ));
    }
    Ok(asked)
}

fn validate_grants(raw: &[String], client_type: ClientType) -> Result<Vec<String>, ApiError> {
    let mut grants = Vec::new();
    for g in raw {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(ApiError::validation(
                "grant_types",
                format!("{g} is not one of {}", GRANT_TYPES.join(", ")),
            ));
        }
        if !grants.contains(g) {
            grants.push(g.clone());
        }
    }
    if grants.is_empty() {
        return Err(ApiError::validation(
            "grant_types",
            "Give at least one grant type",
        ));
    }
    if client_type == ClientType::Public
        && grants
            .iter()
            .any(|g| g == "client_credentials" || g == crate::clients::TOKEN_EXCHANGE)
    {
        return Err(ApiError::validation(
            "grant_types",
            "client_credentials and token exchange need a confidential client",
        ));
    }
    Ok(grants)
}

/// `private_key_jwt` keys: a JWK Set, or the https URL of one (not both).
pub(crate) fn validate_keys(
    state: &AppState,
    jwks: Option<&serde_json::Value>,
    jwks_uri: Option<&str>,
) -> Result<(Option<serde_json::Value>, Option<String>), ApiError> {
    match (jwks, jwks_uri) {
        (Some(_), Some(_)) => Err(ApiError::validation(
            "jwks",
            "Give jwks or jwks_uri, not both",
        )),
        (Some(set), None) => {
            crate::clients::assertion::validate_jwks(set)
                .map_err(|why| ApiError::validation("jwks", why))?;
            Ok((Some(set.clone()), None))
        }
        (None, Some(uri)) => {
            let url =
                crate::clients::documents::parse_client_id(uri, state.settings.cimd_loopback_http)
                    .map_err(|e| ApiError::validation("jwks_uri", e.0))?;
            Ok((None, Some(url.to_string())))
        }
        (None, None) => Ok((None, None)),
    }
}

fn parse_type(raw: Option<&str>) -> Result<ClientType, ApiError> {
    match raw.unwrap_or("confidential") {
        "confidential" => Ok(ClientType::Confidential),
        "public" => Ok(ClientType::Public),
        _ => Err(ApiError::validation(
            "client_type",
            "client_type is confidential or public",
        )),
    }
}

/// Marking an app first-party (no consent page) is an administrator's, with `admin:clients`.
fn first_party(actor: &Actor<'_>, wanted: Option<bool>) -> Result<bool, ApiError> {
    match wanted {
        Some(true) => {
            actor.authorize(PolicyAction::AdministerClients)?;
            Ok(true)
        }
        Some(v) => Ok(v),
        None => Ok(false),
    }
}

/// Binding resource servers to an app is an administrator's; each must be configured.
fn validate_resources(
    state: &AppState,
    actor: &Actor<'_>,
    raw: &[String],
) -> Result<Vec<String>, ApiError> {
    actor.authorize(PolicyAction::AdministerClients)?;
    let mut resources: Vec<String> = Vec::new();
    for r in raw {
        if !state.settings.resources.iter().any(|known| known == r) {
            return Err(ApiError::validation(
                "resources",
                format!("{r} is not a resource server this Gatehouse knows (GATEHOUSE_RESOURCES)"),
            ));
        }
        if !resources.contains(r) {
            resources.push(r.clone());
        }
    }
    Ok(resources)
}

/// Every scope a member may hold, within what the registering credential holds.
async fn default_scopes(state: &AppState, actor: &Actor<'_>) -> Result<ScopeSet, ApiError> {
    let all = state.scope_registry().await?;
    Ok(crate::policy::grantable::self_registered_may_ask(&all)
        .iter()
        .filter(|s| actor.caller.holds_name(s.as_str(), false))
        .cloned()
        .collect())
}

/// The workspace a private app is registered for: its admins register them.
async fn private_to(state: &AppState, actor: &Actor<'_>, asked: &str) -> Result<String, ApiError> {
    let (asked, user) = (asked.to_owned(), actor.user_id().to_owned());
    let standing = state
        .db(move |c| crate::workspaces::Standing::load(c, &asked, &user))
        .await?;
    policy::authorize(
        &actor.caller,
        PolicyAction::ManageWorkspace(standing.policy()),
    )
    .map_err(ApiError::from)?;
    if standing.workspace.is_none() {
        return Err(ApiError::not_found("Workspace"));
    }
    Ok(standing.id)
}

/// Register an app; a confidential one's secret is returned here, once.
pub async fn create(
    state: &AppState,
    actor: &Actor<'_>,
    input: ClientInput,
) -> Result<(Client, Option<PlainSecret>), ApiError> {
    let name = validate_name(input.name.as_deref().unwrap_or(""))?;
    let redirect_uris = validate_redirects(input.redirect_uris.as_deref().unwrap_or(&[]))?;
    let client_type = parse_type(input.client_type.as_deref())?;
    actor.authorize(PolicyAction::RegisterClient)?;
    let scopes = match &input.scopes {
        Some(s) => validate_scopes(state, actor, s).await?,
        None => default_scopes(state, actor).await?,
    };
    let resources = match &input.resources {
        Some(r) => validate_resources(state, actor, r)?,
        None => Vec::new(),
    };
    let grant_types = match &input.grant_types {
        Some(g) => validate_grants(g, client_type)?,
        None => clients::default_grant_types(),
    };
    let logout = logout_settings(state, &input)?;
    let keys = validate_keys(state, input.jwks.as_ref(), input.jwks_uri.as_deref())?;
    if keys != (None, None) && client_type != ClientType::Confidential {
        return Err(ApiError::validation(
            "jwks",
            "private_key_jwt is for confidential apps: a public app has no keys to keep",
        ));
    }
    let workspace_id = match &input.workspace_id {
        None => None,
        Some(asked) => Some(private_to(state, actor, asked).await?),
    };
    // Who controls it: the workspace it is private to, else the one the registering
    // credential is bound to, else (a session) the registrant's personal workspace.
    let owner_workspace_id = workspace_id.clone().or(match actor.caller.reach() {
        policy::Reach::Workspace { id, .. } => Some(id.to_owned()),
        policy::Reach::Everywhere | policy::Reach::Nowhere => None,
    });
    let new = NewClient {
        workspace_id,
        owner_workspace_id,
        logout,
        name,
        owner_user_id: Some(actor.user_id().to_owned()),
        client_type,
        redirect_uris,
        scopes,
        first_party: first_party(actor, input.first_party)?,
        grant_types,
        resources,
        options: clients::ClientOptions {
            require_pushed_authorization_requests: input
                .require_pushed_authorization_requests
                .unwrap_or(false),
            jwks: keys.0,
            jwks_uri: keys.1,
            dpop_bound_access_tokens: input.dpop_bound_access_tokens.unwrap_or(false),
            allowed_origins: validate_origins(client_type, input.allowed_origins.as_ref())?,
        },
        ..NewClient::default()
    };
    store_new(state, actor, new).await
}

/// Insert the app (a session registers it in the registrant's personal workspace) and audit it.
async fn store_new(
    state: &AppState,
    actor: &Actor<'_>,
    new: NewClient,
) -> Result<(Client, Option<PlainSecret>), ApiError> {
    let (pepper, now) = (state.digest_pepper.clone(), state.now());
    let actor_event = |client: &Client| actor.event(Action::ClientCreated, client);
    let registrant = actor.user_id().to_owned();
    let (client, secret) = state
        .db(move |c| {
            let mut new = new;
            // A session registers in the registrant's personal workspace.
            if new.owner_workspace_id.is_none() {
                new.owner_workspace_id =
                    crate::workspaces::personal_of(c, &registrant)?.map(|w| w.id);
            }
            clients::create(c, &pepper, &new, now)
        })
        .await?;
    state.forget_web_origins();
    let event = actor_event(&client);
    state.db(move |c| audit::record(c, &event, now)).await?;
    Ok((client, secret))
}

/// The workspace that controls `client` (`None`: the install's own app). An app registered
/// by an instance older than the column has none stored: its owner's personal workspace,
/// as the migration that added the column backfilled.
fn control_workspace(conn: &mut DbConn, client: &Client) -> Result<Option<String>, DbError> {
    match (
        &client.owner_workspace_id,
        &client.workspace_id,
        &client.owner_user_id,
    ) {
        (Some(ws), _, _) | (None, Some(ws), _) => Ok(Some(ws.clone())),
        (None, None, Some(owner)) => Ok(crate::workspaces::personal_of(conn, owner)?.map(|w| w.id)),
        (None, None, None) => Ok(None),
    }
}

/// A client the actor may see: their own, or any for administrators holding
/// `admin:clients`; else "not found".
pub async fn visible(state: &AppState, actor: &Actor<'_>, id: String) -> Result<Client, ApiError> {
    Ok(checked(state, actor, id, false).await?.0)
}

/// A client the actor may change, with the policy's word for it: what `update`, `delete` and
/// `rotate_secret` take, so none of them changes an app nobody was allowed to.
pub async fn controlled(
    state: &AppState,
    actor: &Actor<'_>,
    id: String,
) -> Result<Controlled, ApiError> {
    let (client, allowed) = checked(state, actor, id, true).await?;
    Ok(Controlled {
        client,
        _allowed: allowed,
    })
}

/// An app the caller may change: made only by `controlled`, after the policy said so.
pub struct Controlled {
    client: Client,
    _allowed: Allowed,
}

impl Controlled {
    pub fn client(&self) -> &Client {
        &self.client
    }
}

async fn checked(
    state: &AppState,
    actor: &Actor<'_>,
    id: String,
    change: bool,
) -> Result<(Client, Allowed), ApiError> {
    let client = state
        .db(move |c| clients::find(c, &id))
        .await?
        .ok_or_else(|| ApiError::not_found("Client"))?;
    let standing = control_standing(state, actor, &client).await?;
    let privileged = privileged(state, &client).await?;
    let app = app_owner(&standing, &client, privileged);
    let allowed = actor.authorize(if change {
        PolicyAction::ChangeClient(app)
    } else {
        PolicyAction::ReadClients(app)
    })?;
    Ok((client, allowed))
}

/// `client` as the policy weighs its control, with the actor's `standing` in its workspace.
fn app_owner<'a>(
    standing: &'a Option<crate::workspaces::Standing>,
    client: &'a Client,
    privileged: bool,
) -> policy::AppOwner<'a> {
    policy::AppOwner {
        workspace: standing.as_ref().map(crate::workspaces::Standing::policy),
        registrant: client.owner_user_id.as_deref(),
        privileged,
    }
}

/// Whether `client` holds what only the install grants: an admin-only scope (as the registry
/// says), first-party standing or resource bindings.
async fn privileged(state: &AppState, client: &Client) -> Result<bool, ApiError> {
    if client.first_party || !client.resources.trim().is_empty() {
        return Ok(true);
    }
    let registry = state.scope_registry().await?;
    Ok(client.scopes().iter().any(|scope| {
        crate::scopes::Builtin::parse(scope.as_str())
            .is_some_and(crate::scopes::Builtin::admin_only)
            || registry
                .iter()
                .any(|r| r.name == scope.as_str() && r.is_admin_only())
    }))
}

/// The actor's standing in the workspace that controls `client` (`None`: the install's app).
async fn control_standing(
    state: &AppState,
    actor: &Actor<'_>,
    client: &Client,
) -> Result<Option<crate::workspaces::Standing>, ApiError> {
    let (found, user) = (client.clone(), actor.user_id().to_owned());
    Ok(state
        .db(move |c| match control_workspace(c, &found)? {
            Some(ws) => crate::workspaces::Standing::load(c, &ws, &user).map(Some),
            None => Ok(None),
        })
        .await?)
}

/// The actor's apps, or with `everyone` (admins) every app; newest first.
pub async fn list(
    state: &AppState,
    actor: &Actor<'_>,
    everyone: bool,
) -> Result<Vec<Client>, ApiError> {
    if everyone {
        actor.authorize(PolicyAction::ListAllClients)?;
    } else {
        actor.authorize(PolicyAction::ListOwnClients)?;
    }
    let user = actor.user_id().to_owned();
    // A credential bound to a workspace lists that workspace's apps only (everyone's, for an
    // administrator acting as one, is the install's listing).
    let bound = actor.caller.reach().bound().map(str::to_owned);
    Ok(state
        .db(move |c| {
            if everyone {
                clients::list_all(c, 500)
            } else {
                let personal = crate::workspaces::personal_of(c, &user)?.map(|w| w.id);
                clients::controlled_by(c, &user, bound.as_deref(), personal.as_deref(), 500)
            }
        })
        .await?)
}

/// Change name, redirect URIs, scopes, grants or first-party; `disabled` switches the app off
/// (its users' grants end, their access tokens are refused) or on again.
pub async fn update(
    state: &AppState,
    actor: &Actor<'_>,
    app: Controlled,
    input: ClientInput,
    disabled: Option<bool>,
) -> Result<Client, ApiError> {
    let client = app.client;
    let edits = Edits::validate(state, actor, &client, &input).await?;
    let switch = Switch::decide(state, actor, &client, disabled).await?;
    let events = edits.events(actor, &client, &switch);
    let id = client.id.clone();
    // Approvals were given for where the codes went: new redirect URIs ask again.
    let redirects_changed = edits
        .redirects
        .as_deref()
        .is_some_and(|r| r != client.redirect_uris);
    let now = state.now();
    let changes = edits.into_changes(&client, &switch, actor.user_id(), now);
    let disabling = switch.disabling;
    let (updated, families) = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                clients::apply_changes(c, &id, &changes)?;
                let families = if disabling {
                    revoke_client_families(c, &id, now, "client_disabled")?
                } else {
                    Vec::new()
                };
                if redirects_changed {
                    grants::forget_approvals_of(c, &id)?;
                }
                for event in &events {
                    audit::record(c, event, now)?;
                }
                let updated = clients::find(c, &id)?
                    .ok_or(DbError::Query(diesel::result::Error::NotFound))?;
                Ok((updated, families))
            })
        })
        .await?;
    crate::grants::deny_grants(state, &families).await;
    state.key_cache.invalidate_all();
    state.forget_web_origins();
    Ok(updated)
}

/// The checked fields of a change of an app, as stored (`None`: left as it is).
struct Edits {
    name: Option<String>,
    redirects: Option<String>,
    scopes: Option<String>,
    grants: Option<String>,
    first: Option<bool>,
    resources: Option<String>,
    post_logout: Option<String>,
    backchannel: Option<Option<String>>,
    session_required: Option<bool>,
    require_par: Option<bool>,
    new_keys: bool,
    dpop_bound: Option<bool>,
    /// Web origins: `Some(None)` derives them from the redirect URIs again.
    origins: Option<Option<Vec<String>>>,
    options: Option<String>,
}

/// The change of the resource servers an app may ask tokens for (administrators only).
fn resources_edit(
    state: &AppState,
    actor: &Actor<'_>,
    input: &ClientInput,
) -> Result<Option<String>, ApiError> {
    Ok(input
        .resources
        .as_deref()
        .map(|r| validate_resources(state, actor, r))
        .transpose()?
        .map(|r| r.join(" ")))
}

/// The change of an app's web origins: `Some(None)` derives them from its redirect URIs again.
fn origins_edit(
    client: &Client,
    input: &ClientInput,
) -> Result<Option<Option<Vec<String>>>, ApiError> {
    Ok(match &input.allowed_origins {
        None => None,
        Some(None) => Some(None),
        Some(listed) => Some(validate_origins(client.client_type(), Some(listed))?),
    })
}

fn joined_uris(uris: Vec<RedirectUri>) -> String {
    uris.iter()
        .map(|u| u.as_str().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Edits {
    async fn validate(
        state: &AppState,
        actor: &Actor<'_>,
        client: &Client,
        input: &ClientInput,
    ) -> Result<Edits, ApiError> {
        if input.workspace_id.is_some() {
            return Err(ApiError::validation(
                "workspace_id",
                "An app's workspace is set when it is registered",
            ));
        }
        if input
            .client_type
            .as_deref()
            .is_some_and(|t| t != client.client_type)
        {
            return Err(ApiError::validation(
                "client_type",
                "The type of an app cannot change: register a new one",
            ));
        }
        let name = input.name.as_deref().map(validate_name).transpose()?;
        let redirects = input
            .redirect_uris
            .as_deref()
            .map(validate_redirects)
            .transpose()?
            .map(joined_uris);
        let scopes = match &input.scopes {
            Some(s) => Some(validate_scopes(state, actor, s).await?.to_storage()),
            None => None,
        };
        let grants = input
            .grant_types
            .as_deref()
            .map(|g| validate_grants(g, client.client_type()))
            .transpose()?
            .map(|g| g.join(" "));
        let first = match input.first_party {
            Some(v) => Some(first_party(actor, Some(v))?),
            None => None,
        };
        let mut edits = Edits {
            name,
            redirects,
            scopes,
            grants,
            first,
            resources: resources_edit(state, actor, input)?,
            post_logout: input
                .post_logout_redirect_uris
                .as_deref()
                .map(validate_post_logout)
                .transpose()?
                .map(joined_uris),
            backchannel: input
                .backchannel_logout_uri
                .as_deref()
                .map(|u| validate_backchannel(state, u))
                .transpose()?,
            session_required: input.backchannel_logout_session_required,
            require_par: input.require_pushed_authorization_requests,
            new_keys: false,
            dpop_bound: input.dpop_bound_access_tokens,
            origins: origins_edit(client, input)?,
            options: None,
        };
        edits.options = edits.options_of(state, client, input)?;
        Ok(edits)
    }

    /// The app's options with the asked changes (PAR, keys, DPoP binding), if any.
    fn options_of(
        &mut self,
        state: &AppState,
        client: &Client,
        input: &ClientInput,
    ) -> Result<Option<String>, ApiError> {
        let new_keys = if input.jwks.is_some() || input.jwks_uri.is_some() {
            if !client.options().private_key_jwt() {
                return Err(ApiError::validation(
                    "jwks",
                    "This app authenticates with a secret: register a new app for private_key_jwt",
                ));
            }
            Some(validate_keys(
                state,
                input.jwks.as_ref(),
                input.jwks_uri.as_deref(),
            )?)
        } else {
            None
        };
        self.new_keys = new_keys.is_some();
        if self.require_par.is_none()
            && new_keys.is_none()
            && self.dpop_bound.is_none()
            && self.origins.is_none()
        {
            return Ok(None);
        }
        let mut options = client.options();
        if let Some(origins) = &self.origins {
            options.allowed_origins = origins.clone();
        }
        if let Some(bound) = self.dpop_bound {
            options.dpop_bound_access_tokens = bound;
        }
        if let Some(required) = self.require_par {
            options.require_pushed_authorization_requests = required;
        }
        if let Some((jwks, jwks_uri)) = new_keys {
            options.jwks = jwks;
            options.jwks_uri = jwks_uri;
        }
        Ok(Some(options.to_storage()))
    }

    /// The names of the fields that change.
    fn changed(&self) -> Vec<&'static str> {
        [
            ("name", self.name.is_some()),
            ("redirect_uris", self.redirects.is_some()),
            ("scopes", self.scopes.is_some()),
            ("grant_types", self.grants.is_some()),
            ("first_party", self.first.is_some()),
            ("resources", self.resources.is_some()),
            ("post_logout_redirect_uris", self.post_logout.is_some()),
            ("backchannel_logout_uri", self.backchannel.is_some()),
            (
                "backchannel_logout_session_required",
                self.session_required.is_some(),
            ),
            (
                "require_pushed_authorization_requests",
                self.require_par.is_some(),
            ),
            ("jwks", self.new_keys),
            ("dpop_bound_access_tokens", self.dpop_bound.is_some()),
            ("allowed_origins", self.origins.is_some()),
        ]
        .iter()
        .filter(|(_, changed)| *changed)
        .map(|(field, _)| *field)
        .collect()
    }

    /// The audit events of the change: what changed, and the switch.
    fn events(&self, actor: &Actor<'_>, client: &Client, switch: &Switch) -> Vec<audit::NewEvent> {
        let mut events = Vec::new();
        let changed = self.changed();
        if !changed.is_empty() {
            let mut event = actor.event(Action::ClientUpdated, client);
            event.details["changed"] = json!(changed);
            events.push(event);
        }
        if switch.disabling {
            events.push(actor.event(Action::ClientDisabled, client));
        } else if switch.enabling {
            let mut event = actor.event(Action::ClientUpdated, client);
            event.details["changed"] = json!(["enabled"]);
            events.push(event);
        }
        events
    }

    fn into_changes(
        self,
        _client: &Client,
        switch: &Switch,
        actor: &str,
        now: NaiveDateTime,
    ) -> clients::ClientChanges {
        let (disabling, enabling) = (switch.disabling, switch.enabling);
        clients::ClientChanges {
            name: self.name,
            redirect_uris: self.redirects,
            allowed_scopes: self.scopes,
            grant_types: self.grants,
            first_party: self.first,
            resources: self.resources,
            post_logout_redirect_uris: self.post_logout,
            backchannel_logout_uri: self.backchannel,
            backchannel_logout_session_required: self.session_required,
            options: self.options,
            disabled_at: if disabling {
                Some(Some(now))
            } else if switch.asked_enabled {
                Some(None)
            } else {
                None
            },
            admin_locked: if disabling {
                Some(switch.by_admin)
            } else if enabling {
                Some(false)
            } else {
                None
            },
            disabled_by: if disabling {
                Some(Some(actor.to_owned()))
            } else if enabling {
                Some(None)
            } else {
                None
            },
            updated_at: now,
        }
    }
}

/// Switching an app off or on: who may, and whether it is an administrator's lock.
struct Switch {
    disabling: bool,
    enabling: bool,
    /// `disabled: false` was asked (the app is marked enabled even if it was).
    asked_enabled: bool,
    by_admin: bool,
}

impl Switch {
    async fn decide(
        state: &AppState,
        actor: &Actor<'_>,
        client: &Client,
        disabled: Option<bool>,
    ) -> Result<Switch, ApiError> {
        let disabling = disabled == Some(true) && client.disabled_at.is_none();
        let enabling = disabled == Some(false) && client.disabled_at.is_some();
        // The actor's standing in the app's workspace, read once for either switch.
        let standing = if disabling || enabling {
            control_standing(state, actor, client).await?
        } else {
            None
        };
        let app = app_owner(&standing, client, false);
        // An administrator's disable of an app they do not control through its workspace is
        // a lock only an administrator lifts; its workspace's admins disabling it is no lock.
        let by_admin = disabling && !policy::controls_through_workspace(&actor.caller, &app);
        if enabling
            && !client.admin_locked
            && !policy::may_enable(&actor.caller, &app, client.disabled_by.as_deref())
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "An admin of the app's workspace disabled it: only they enable it again",
            ));
        }
        if enabling && client.admin_locked {
            actor
                .authorize(PolicyAction::AdministerClients)
                .map_err(|_| {
                    ApiError::new(
                        ErrorCode::Forbidden,
                        "An administrator disabled this app: only an administrator can enable it again",
                    )
                })?;
        }
        Ok(Switch {
            disabling,
            enabling,
            asked_enabled: disabled == Some(false),
            by_admin,
        })
    }
}

pub(crate) fn revoke_client_families(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    grants::revoke_client_families(conn, client_id, now, reason)
}

/// Delete an app: its consents, codes and refresh tokens go with it, its access tokens are
/// refused from now on.
pub async fn delete(state: &AppState, actor: &Actor<'_>, app: Controlled) -> Result<(), ApiError> {
    let client = app.client;
    let event = actor.event(Action::ClientDeleted, &client);
    Ok(remove(state, &client.id, event).await?)
}

/// Delete an app and record `event`, in one transaction: its consents, codes and refresh
/// families go with it, and its access tokens are refused from now on.
pub(crate) async fn remove(
    state: &AppState,
    client_id: &str,
    event: audit::NewEvent,
) -> Result<(), DbError> {
    let (id, now) = (client_id.to_owned(), state.now());
    let families = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let families = revoke_client_families(c, &id, now, "client_deleted")?;
                clients::delete(c, &id)?;
                audit::record(c, &event, now)?;
                Ok(families)
            })
        })
        .await?;
    crate::grants::deny_grants(state, &families).await;
    state.key_cache.invalidate_all();
    state.forget_web_origins();
    Ok(())
}

/// A new secret; the old one keeps working for `grace` (0: stops now). Public apps have none.
pub async fn rotate_secret(
    state: &AppState,
    actor: &Actor<'_>,
    app: Controlled,
    grace: Duration,
) -> Result<(Client, PlainSecret), ApiError> {
    let client = app.client;
    if client.client_type() != ClientType::Confidential {
        return Err(ApiError::validation(
            "client_type",
            "A public app has no secret to rotate",
        ));
    }
    let secret = PlainSecret::generate(CLIENT_SECRET_PREFIX);
    let digest = state.digest_pepper.digest_secret(&secret);
    let mut event = actor.event(Action::ClientSecretRotated, &client);
    event.details["grace_seconds"] = json!(grace.num_seconds());
    let (id, now, old) = (client.id.clone(), state.now(), client.secret_digest.clone());
    let updated = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let previous = old.filter(|_| !grace.is_zero());
                let until = (!grace.is_zero()).then_some(now + grace);
                let rotated = clients::set_secret(c, &id, &digest, previous, until, now)?;
                audit::record(c, &event, now)?;
                Ok(rotated)
            })
        })
        .await?;
    state.key_cache.invalidate_all();
    state.forget_web_origins();
    Ok((updated, secret))
}

/// A client as the API shows it, with when its previous secret stops working.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientDetails {
    #[serde(flatten)]
    pub client: ClientView,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Until when the secret replaced by the last rotation is still accepted (`null`: it is not).
    #[schema(format = DateTime)]
    pub previous_secret_expires_at: Option<String>,
}

pub fn client_details(client: &Client, now: NaiveDateTime) -> ClientDetails {
    ClientDetails {
        client: client.view(),
        updated_at: utc(client.updated_at),
        previous_secret_expires_at: client
            .previous_secret_expires_at
            .filter(|at| *at > now)
            .map(utc),
    }
}

/// An app a user connected: what they approved and when it was last used.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConsentView {
    #[schema(example = "con_9aZx2LkQ0wErTy5u")]
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    /// `dcr`: the app registered itself; `cimd`: it is described by the document at its
    /// `client_id` URL (see `host`); `registered`: a user or an administrator registered it.
    pub origin: crate::clients::Origin,
    /// For a metadata-document app, the host that describes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    pub scopes: Vec<String>,
    /// Recorded for an app the operator marked first-party (no consent page was shown).
    pub first_party: bool,
    #[schema(format = DateTime)]
    pub approved_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

/// The user's connected apps; `workspace`: only those approved in it (a credential bound to
/// a workspace sees its own workspace's approvals only).
pub async fn list_consents(
    state: &AppState,
    user_id: String,
    workspace: Option<String>,
) -> Result<Vec<ConsentView>, ApiError> {
    Ok(state
        .db(move |c| {
            let rows = grants::consents_of(c, &user_id, workspace.as_deref())?;
            let mut views = Vec::with_capacity(rows.len());
            for row in rows {
                let grants::ConsentRow {
                    id,
                    client_id,
                    client_name,
                    scopes,
                    first_party,
                    created_at: created,
                    updated_at: updated,
                    origin,
                    last_used_at: last_used,
                } = row;
                let origin = match origin.as_str() {
                    "dcr" => crate::clients::Origin::Dcr,
                    "cimd" => crate::clients::Origin::Cimd,
                    _ => crate::clients::Origin::Registered,
                };
                let host = (origin == crate::clients::Origin::Cimd)
                    .then(|| {
                        url::Url::parse(&client_id)
                            .ok()?
                            .host_str()
                            .map(str::to_owned)
                    })
                    .flatten();
                views.push(ConsentView {
                    id,
                    client_id,
                    client_name,
                    origin,
                    host,
                    scopes: scopes
                        .split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    first_party,
                    approved_at: utc(created),
                    updated_at: utc(updated),
                    last_used_at: last_used.map(utc),
                });
            }
            Ok(views)
        })
        .await?)
}

/// Disconnect an app, if the policy lets the actor: forget the approval (the next
/// authorization asks again) and end every grant made under it — refresh tokens at once,
/// access tokens too.
pub async fn revoke_consent(
    state: &AppState,
    actor: &Actor<'_>,
    consent_id: String,
) -> Result<(), ApiError> {
    let allowed = actor.authorize(PolicyAction::WriteConsents)?;
    let (user_id, now) = (actor.user_id().to_owned(), state.now());
    let bound = actor.caller.reach().bound().map(str::to_owned);
    let mut event = actor.audit.event(Action::ConsentRevoked);
    event.subject_user_id = Some(user_id.clone());
    let families = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let found = grants::consent_client(c, &consent_id, &user_id, bound.as_deref())?;
                let Some(client_id) = found else {
                    return Ok(None);
                };
                // A credential bound to a workspace ends the grants made there only: the
                // user's grants of the app in other workspaces are not its to end.
                let live =
                    grants::live_families_in(c, &user_id, &client_id, bound.as_deref(), now)?;
                grants::revoke_families(c, &live, now, "consent_revoked")?;
                grants::forget_consent(c, allowed, &consent_id, &user_id, &client_id, bound.as_deref())?;
                event.details = json!({ "client_id": client_id, "consent_id": consent_id, "families_revoked": live.len() });
                audit::record(c, &event, now)?;
                Ok(Some(live))
            })
        })
        .await?
        .ok_or_else(|| ApiError::not_found("Consent"))?;
    crate::grants::deny_grants(state, &families).await;
    Ok(())
}
