//! The append-only audit log: who did what to which key or user, sign-ins and sign-outs, and
//! refused uses of existing keys. It never holds a secret: keys appear by id only, and no
//! event carries a password or the email typed into a failed sign-in.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::audit_events;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};

/// What happened. The stored name is stable (filters use it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    KeyCreated,
    KeyUpdated,
    KeyRolled,
    KeyRevoked,
    KeyRefusedExpired,
    KeyRefusedRevoked,
    KeyRefusedIp,
    KeyRefusedReferrer,
    KeyRefusedEndpoint,
    KeyRefusedUserDisabled,
    UserCreated,
    UserDisabled,
    UserEnabled,
    /// An administrator ended every session of a user.
    SessionsEnded,
    ConsentGranted,
    CodeReplayDetected,
    RefreshReuseDetected,
    /// A back-channel logout notice could not be delivered after every try.
    BackchannelLogoutFailed,
    ConsentRevoked,
    ClientCreated,
    ClientUpdated,
    ClientSecretRotated,
    ClientDisabled,
    ClientDeleted,
    /// An app registered itself (RFC 7591).
    ClientSelfRegistered,
    /// A self-registered app changed or deleted its registration (RFC 7592).
    ClientRegistrationChanged,
    ClientRegistrationDeleted,
    /// An app nobody used was deleted by the janitor.
    ClientUnusedDeleted,
    RegistrationTokenCreated,
    RegistrationTokenRevoked,
    /// Metadata documents of a host are no longer fetched; its apps are disabled.
    ClientHostBlocked,
    ClientHostUnblocked,
    TokenRevoked,
    ClientCredentialsIssued,
    /// RFC 8693: tokens exchanged for an API key or an access token (counted per minute).
    TokenExchanged,
    SignInSucceeded,
    /// A wrong password, an unknown email or a disabled account (throttled attempts are not
    /// recorded: they check nothing, and a flood of them must not become a flood of writes).
    SignInFailed,
    SignedOut,
    PasswordChanged,
    SignedUp,
    WorkspaceCreated,
    WorkspaceUpdated,
    WorkspaceDeleted,
    MemberInvited,
    InvitationRevoked,
    MemberJoined,
    MemberRoleChanged,
    MemberRemoved,
    MemberLeft,
}

impl Action {
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::KeyCreated => "api_key.created",
            Action::KeyUpdated => "api_key.updated",
            Action::KeyRolled => "api_key.rolled",
            Action::KeyRevoked => "api_key.revoked",
            Action::KeyRefusedExpired => "api_key.refused.expired",
            Action::KeyRefusedRevoked => "api_key.refused.revoked",
            Action::KeyRefusedIp => "api_key.refused.ip_not_allowed",
            Action::KeyRefusedReferrer => "api_key.refused.referrer_not_allowed",
            Action::KeyRefusedEndpoint => "api_key.refused.endpoint_not_allowed",
            Action::KeyRefusedUserDisabled => "api_key.refused.user_disabled",
            Action::UserCreated => "user.created",
            Action::UserDisabled => "user.disabled",
            Action::UserEnabled => "user.enabled",
            Action::SessionsEnded => "user.sessions_ended",
            Action::ConsentGranted => "oauth.consent.granted",
            Action::CodeReplayDetected => "oauth.code.replay_detected",
            Action::RefreshReuseDetected => "oauth.refresh.reuse_detected",
            Action::BackchannelLogoutFailed => "oauth.backchannel_logout.failed",
            Action::ConsentRevoked => "oauth.consent.revoked",
            Action::ClientCreated => "oauth.client.created",
            Action::ClientUpdated => "oauth.client.updated",
            Action::ClientSecretRotated => "oauth.client.secret_rotated",
            Action::ClientDisabled => "oauth.client.disabled",
            Action::ClientDeleted => "oauth.client.deleted",
            Action::ClientSelfRegistered => "oauth.client.self_registered",
            Action::ClientRegistrationChanged => "oauth.client.registration_changed",
            Action::ClientRegistrationDeleted => "oauth.client.registration_deleted",
            Action::ClientUnusedDeleted => "oauth.client.unused_deleted",
            Action::RegistrationTokenCreated => "oauth.registration_token.created",
            Action::RegistrationTokenRevoked => "oauth.registration_token.revoked",
            Action::ClientHostBlocked => "oauth.client_host.blocked",
            Action::ClientHostUnblocked => "oauth.client_host.unblocked",
            Action::TokenRevoked => "oauth.token.revoked",
            Action::ClientCredentialsIssued => "oauth.client_credentials.issued",
            Action::TokenExchanged => "oauth.token.exchanged",
            Action::SignInSucceeded => "account.sign_in.succeeded",
            Action::SignInFailed => "account.sign_in.failed",
            Action::SignedOut => "account.signed_out",
            Action::PasswordChanged => "account.password_changed",
            Action::SignedUp => "account.signed_up",
            Action::WorkspaceCreated => "workspace.created",
            Action::WorkspaceUpdated => "workspace.updated",
            Action::WorkspaceDeleted => "workspace.deleted",
            Action::MemberInvited => "workspace.member.invited",
            Action::InvitationRevoked => "workspace.invitation.revoked",
            Action::MemberJoined => "workspace.member.joined",
            Action::MemberRoleChanged => "workspace.member.role_changed",
            Action::MemberRemoved => "workspace.member.removed",
            Action::MemberLeft => "workspace.member.left",
        }
    }
}

/// One event to record.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub action: Action,
    pub actor_user_id: Option<String>,
    pub actor_key_id: Option<String>,
    /// The app whose access token the actor used (recorded in `details.actor_client_id`).
    pub actor_client_id: Option<String>,
    /// The front door when it is not the HTTP API (recorded in `details.via`, e.g. `cli`).
    pub via: Option<&'static str>,
    pub subject_user_id: Option<String>,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    /// The workspace the event happened in (workspace admins read their workspace's events).
    pub workspace_id: Option<String>,
    pub details: serde_json::Value,
}

impl NewEvent {
    pub fn new(action: Action) -> NewEvent {
        NewEvent {
            action,
            actor_user_id: None,
            actor_key_id: None,
            actor_client_id: None,
            via: None,
            subject_user_id: None,
            key_id: None,
            ip: None,
            workspace_id: None,
            details: serde_json::Value::Object(Default::default()),
        }
    }
}

/// Who acted, as every event they cause records it: the user, and the key or the app's token
/// they used, and from where.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub via: Option<&'static str>,
}

impl Actor {
    /// The operator at the command line.
    pub fn operator() -> Actor {
        Actor {
            via: Some("cli"),
            ..Actor::default()
        }
    }

    pub fn event(&self, action: Action) -> NewEvent {
        let mut event = NewEvent::new(action);
        event.actor_user_id = self.user_id.clone();
        event.actor_key_id = self.key_id.clone();
        event.actor_client_id = self.client_id.clone();
        event.ip = self.ip.clone();
        event.via = self.via;
        event
    }
}

pub fn record(conn: &mut DbConn, event: &NewEvent, now: NaiveDateTime) -> Result<(), DbError> {
    let id = new_id(IdKind::AuditEvent);
    let mut details = event.details.clone();
    if let Some(map) = details.as_object_mut() {
        if let Some(client) = &event.actor_client_id {
            map.insert("actor_client_id".into(), serde_json::json!(client));
        }
        if let Some(via) = event.via {
            map.insert("via".into(), serde_json::json!(via));
        }
    }
    diesel::insert_into(audit_events::table)
        .values((
            audit_events::id.eq(&id),
            audit_events::occurred_at.eq(now),
            audit_events::action.eq(event.action.as_str()),
            audit_events::actor_user_id.eq(&event.actor_user_id),
            audit_events::actor_key_id.eq(&event.actor_key_id),
            audit_events::subject_user_id.eq(&event.subject_user_id),
            audit_events::key_id.eq(&event.key_id),
            audit_events::ip.eq(&event.ip),
            audit_events::workspace_id.eq(&event.workspace_id),
            audit_events::details.eq(details.to_string()),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: String,
    pub occurred_at: NaiveDateTime,
    pub action: String,
    pub actor_user_id: Option<String>,
    pub actor_key_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    pub details: String,
    pub workspace_id: Option<String>,
}

/// An audit event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    pub id: String,
    #[schema(format = DateTime)]
    pub occurred_at: String,
    #[schema(example = "api_key.created")]
    pub action: String,
    pub actor_user_id: Option<String>,
    pub actor_key_id: Option<String>,
    pub subject_user_id: Option<String>,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    /// The workspace it happened in, when it happened in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// What else the event records (never a secret); its members depend on `action`.
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn view(&self) -> AuditEventView {
        AuditEventView {
            id: self.id.clone(),
            occurred_at: crate::clock::utc(self.occurred_at),
            action: self.action.clone(),
            actor_user_id: self.actor_user_id.clone(),
            actor_key_id: self.actor_key_id.clone(),
            subject_user_id: self.subject_user_id.clone(),
            key_id: self.key_id.clone(),
            ip: self.ip.clone(),
            workspace_id: self.workspace_id.clone(),
            details: serde_json::from_str(&self.details).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub actor_user_id: Option<String>,
    pub key_id: Option<String>,
    pub action: Option<String>,
    /// Only events in this workspace.
    pub workspace_id: Option<String>,
    /// Only events strictly older than this (occurred_at, id): the page cursor.
    pub before: Option<(NaiveDateTime, String)>,
    pub limit: i64,
}

/// Newest first.
pub fn list(conn: &mut DbConn, filter: &EventFilter) -> Result<Vec<AuditEvent>, DbError> {
    let mut query = audit_events::table
        .select(AuditEvent::as_select())
        .into_boxed();
    if let Some(actor) = &filter.actor_user_id {
        query = query.filter(audit_events::actor_user_id.eq(actor.clone()));
    }
    if let Some(key) = &filter.key_id {
        query = query.filter(audit_events::key_id.eq(key.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(workspace) = &filter.workspace_id {
        query = query.filter(audit_events::workspace_id.eq(workspace.clone()));
    }
    if let Some((at, id)) = &filter.before {
        query = query.filter(
            audit_events::occurred_at
                .lt(*at)
                .or(audit_events::occurred_at
                    .eq(*at)
                    .and(audit_events::id.lt(id.clone()))),
        );
    }
    let ordered = query.order((audit_events::occurred_at.desc(), audit_events::id.desc()));
    let mut events: Vec<AuditEvent> =
        crate::db::prepared::FixedLimit::new(ordered, filter.limit).load(conn)?;
    events.truncate(usize::try_from(filter.limit).unwrap_or(0));
    Ok(events)
}

/// Audit events that occurred before `cutoff` (the janitor deletes them in batches).
pub fn audit_events_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(audit_events::table
        .filter(audit_events::occurred_at.lt(cutoff))
        .select(audit_events::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `audit_events`.
pub fn delete_audit_events(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(audit_events::table.filter(audit_events::id.eq_any(ids))).execute(conn)
}
