//! `/v1/workspaces` (+ members, invitations, members' keys, audit events) and
//! `/v1/invitations/accept`. Handlers read the caller's standing in the workspace, ask the
//! policy, and act; every change is audited with the workspace's id.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{
    self as ws, InvitationView, KeyIssuance, MemberView, NotAccepted, Standing, Workspace,
    WorkspaceView, WsRole,
};
use crate::accounts::Email;
use crate::api_keys::api::{
    AuditQuery, CreateKeyBody, ListQuery, audit_page, client_ip, key_denied, key_request,
    list_filter, list_keys_with, load_key,
};
use crate::api_keys::model::{ApiKey, ApiKeyView};
use crate::api_keys::service;
use crate::audit::{self, Action as Audited, Actor, AuditEventView, NewEvent};
use crate::db::DbError;
use crate::http::envelope::{Done, Page, Success, with_status};
use crate::http::errors::ErrorEnvelope;
use crate::http::{ApiError, ApiResult, ErrorCode, done, ok, page};
use crate::policy::Action;
use crate::principal::Principal;
use crate::secrets::PlainSecret;
use crate::state::AppState;

/// The caller's standing in the workspace of the path.
pub(crate) async fn standing(
    state: &AppState,
    principal: &Principal,
    id: String,
) -> Result<Standing, ApiError> {
    let user = principal.user.id.clone();
    Ok(state.db(move |c| Standing::load(c, &id, &user)).await?)
}

/// The workspace, once the policy let the caller act on it (an administrator of the install
/// may be allowed on a workspace that does not exist: it is still not found).
fn found(standing: &Standing) -> Result<&Workspace, ApiError> {
    standing
        .workspace
        .as_ref()
        .ok_or_else(|| ApiError::not_found("Workspace"))
}

fn event(actor: &Actor, action: Audited, workspace: &str) -> NewEvent {
    let mut event = actor.event(action);
    event.workspace_id = Some(workspace.to_owned());
    event
}

fn input(e: ws::WsInputError) -> ApiError {
    ApiError::validation(e.field, e.message)
}

/// Your workspaces
///
/// With your role in each, personal first. A credential bound to a workspace (an API key, an
/// app's token) sees that one only.
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces",
    security(("oauth2" = ["read:workspaces"])),
    responses((status = 200, description = "Your workspaces", body = Page<WorkspaceView>)))]
pub async fn list_workspaces(state: web::Data<AppState>, principal: Principal) -> ApiResult {
    principal.authorize(Action::ListWorkspaces)?;
    let (user, bound) = (
        principal.user.id.clone(),
        principal.workspace().bound().map(str::to_owned),
    );
    let all = state.db(move |c| ws::of_user(c, &user)).await?;
    let views = all
        .iter()
        .filter(|(w, _)| bound.as_deref().is_none_or(|b| b == w.id))
        .map(|(w, role)| w.view(Some(*role)))
        .collect();
    page(views, None)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "name": "Acme platform", "slug": "acme-platform", "key_issuance": "admins" }))]
pub struct CreateWorkspaceBody {
    #[schema(min_length = 1, max_length = 100)]
    pub(crate) name: String,
    /// Default: made from the name.
    #[schema(
        min_length = 3,
        max_length = 40,
        pattern = "^[a-z0-9][a-z0-9-]*[a-z0-9]$"
    )]
    pub(crate) slug: Option<String>,
    /// Default: `members` (each member creates their own keys).
    pub(crate) key_issuance: Option<KeyIssuance>,
}

/// Create a workspace
///
/// You become its owner.
#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    request_body = CreateWorkspaceBody,
    responses((status = 201, description = "Created", body = Success<WorkspaceView>),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn create_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<CreateWorkspaceBody>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    let created = create_workspace_for(&state, &principal, &actor, body).await?;
    with_status(StatusCode::CREATED, created.view(Some(WsRole::Owner)))
}

/// The same, for the API and the pages.
pub(crate) async fn create_workspace_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    body: web::Json<CreateWorkspaceBody>,
) -> Result<Workspace, ApiError> {
    let allowed = principal.authorize(Action::CreateWorkspace)?;
    let body = body.into_inner();
    let name = ws::validate_name(&body.name).map_err(input)?;
    let slug = match &body.slug {
        Some(s) => ws::validate_slug(s),
        None => ws::validate_slug(&ws::slug_from_name(&name)),
    }
    .map_err(input)?;
    let (owner, now) = (principal.user.id.clone(), state.now());
    let mut event = event(actor, Audited::WorkspaceCreated, "");
    let issuance = body.key_issuance;
    let created = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let Some(mut created) = ws::create_shared(c, allowed, &name, &slug, &owner, now)? else {
                    return Ok(None);
                };
                if let Some(issuance) = issuance.filter(|i| *i != created.issuance()) {
                    created = ws::update(c, allowed, &created.id, None, None, Some(issuance), now)?
                        .unwrap_or(created);
                }
                event.workspace_id = Some(created.id.clone());
                event.details = json!({ "name": created.name, "slug": created.slug, "key_issuance": created.key_issuance });
                audit::record(c, &event, now)?;
                Ok::<_, DbError>(Some(created))
            })
        })
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "This slug is taken"))?;
    Ok(created)
}

/// A workspace
#[utoipa::path(get, path = "/v1/workspaces/{id}", tag = "workspaces",
    security(("oauth2" = ["read:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    responses((status = 200, description = "The workspace", body = Success<WorkspaceView>)))]
pub async fn get_workspace(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let standing = standing(&state, &principal, path.into_inner()).await?;
    principal.authorize(Action::ReadWorkspace(standing.policy()))?;
    ok(found(&standing)?.view(standing.role))
}

/// A PATCH: absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "key_issuance": "admins" }))]
pub struct UpdateWorkspaceBody {
    #[schema(min_length = 1, max_length = 100)]
    pub(crate) name: Option<String>,
    #[schema(
        min_length = 3,
        max_length = 40,
        pattern = "^[a-z0-9][a-z0-9-]*[a-z0-9]$"
    )]
    pub(crate) slug: Option<String>,
    pub(crate) key_issuance: Option<KeyIssuance>,
}

/// Change a workspace
///
/// Its name, slug, and who issues its keys (workspace admins and owners).
#[utoipa::path(patch, path = "/v1/workspaces/{id}", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    request_body = UpdateWorkspaceBody,
    responses((status = 200, description = "The workspace, changed", body = Success<WorkspaceView>),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn update_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<UpdateWorkspaceBody>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    update_workspace_for(&state, &principal, &actor, path, body).await
}

/// The same, for the API and the pages.
pub(crate) async fn update_workspace_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<String>,
    body: web::Json<UpdateWorkspaceBody>,
) -> ApiResult {
    let standing = standing(state, principal, path.into_inner()).await?;
    let allowed = principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    let workspace = found(&standing)?;
    let body = body.into_inner();
    let name = body
        .name
        .as_deref()
        .map(ws::validate_name)
        .transpose()
        .map_err(input)?;
    let slug = body
        .slug
        .as_deref()
        .map(ws::validate_slug)
        .transpose()
        .map_err(input)?;
    if workspace.is_personal() && slug.is_some() {
        return Err(ApiError::of(ErrorCode::PersonalWorkspace));
    }
    let mut event = event(actor, Audited::WorkspaceUpdated, &workspace.id);
    event.details = json!({ "name": name, "slug": slug, "key_issuance": body.key_issuance });
    let (id, now, issuance) = (workspace.id.clone(), state.now(), body.key_issuance);
    let updated = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let updated = ws::update(
                    c,
                    allowed,
                    &id,
                    name.as_deref(),
                    slug.as_deref(),
                    issuance,
                    now,
                )?;
                if updated.is_some() {
                    audit::record(c, &event, now)?;
                }
                Ok::<_, DbError>(updated)
            })
        })
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Conflict, "This slug is taken"))?;
    ok(updated.view(standing.role))
}

/// Delete a workspace
///
/// Owners only; personal workspaces stay. Every key in it is revoked at once and deleted, every
/// app's grant made in it ends, its private apps go.
#[utoipa::path(delete, path = "/v1/workspaces/{id}", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    responses((status = 200, description = "Deleted", body = Done),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn delete_workspace(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    delete_workspace_for(&state, &principal, &actor, path).await
}

/// The same, for the API and the pages.
pub(crate) async fn delete_workspace_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<String>,
) -> ApiResult {
    let standing = standing(state, principal, path.into_inner()).await?;
    let allowed = principal.authorize(Action::DeleteWorkspace(standing.policy()))?;
    let workspace = found(&standing)?;
    if workspace.is_personal() {
        return Err(ApiError::of(ErrorCode::PersonalWorkspace));
    }
    let mut event = event(actor, Audited::WorkspaceDeleted, &workspace.id);
    let (id, by, now) = (workspace.id.clone(), principal.user.id.clone(), state.now());
    event.details = json!({ "name": workspace.name, "slug": workspace.slug });
    let departure = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let departure = ws::delete(c, allowed, &id, &by, now)?;
                event.details["keys_revoked"] = json!(departure.keys_revoked.len());
                event.details["grants_revoked"] = json!(departure.families_revoked.len());
                audit::record(c, &event, now)?;
                Ok::<_, DbError>(departure)
            })
        })
        .await?;
    after_departure(state, &departure).await;
    done("Workspace deleted")
}

/// Revoked keys and grants take effect now: keys are forgotten by the cache, the grants'
/// access tokens are deny-listed.
async fn after_departure(state: &AppState, departure: &ws::Departure) {
    crate::grants::deny_grants(state, &departure.families_revoked).await;
    // The ended keys' exchanged tokens: refused here at once (the rows are in the table for
    // the other instances).
    let until = crate::api_keys::model::exchanged_tokens_dead_at(state.now());
    state
        .denylist
        .remember(departure.keys_revoked.iter().map(|id| (id.clone(), until)));
    state
        .denylist
        .remember(departure.exchanges_ended.iter().cloned());
    state.key_cache.invalidate_all();
    state.forget_web_origins();
}

/// A workspace's members
///
/// Owners first. Every member sees them.
#[utoipa::path(get, path = "/v1/workspaces/{id}/members", tag = "workspaces",
    security(("oauth2" = ["read:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    responses((status = 200, description = "The members", body = Page<MemberView>)))]
pub async fn list_members(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let standing = standing(&state, &principal, path.into_inner()).await?;
    principal.authorize(Action::ReadWorkspace(standing.policy()))?;
    let id = found(&standing)?.id.clone();
    page(state.db(move |c| ws::members(c, &id)).await?, None)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "role": "admin" }))]
pub struct MemberRoleBody {
    pub(crate) role: WsRole,
}

/// Change a member's role
///
/// Admins change members and admins; only owners make or unmake owners. A workspace keeps at
/// least one owner (`WORKSPACE_001`).
#[utoipa::path(patch, path = "/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"),
           ("user_id" = String, Path, description = "The member's user id")),
    request_body = MemberRoleBody,
    responses((status = 200, description = "The member", body = Success<MemberView>),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn change_member_role(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: web::Json<MemberRoleBody>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    change_member_role_for(&state, &principal, &actor, path, body).await
}

/// The same, for the API and the pages.
pub(crate) async fn change_member_role_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<(String, String)>,
    body: web::Json<MemberRoleBody>,
) -> ApiResult {
    let (id, member) = path.into_inner();
    let standing = standing(state, principal, id).await?;
    // Members (and the workspace) stay hidden from whoever may not manage it.
    principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    let workspace = found(&standing)?.clone();
    let (ws_id, user) = (workspace.id.clone(), member.clone());
    let from = state
        .db(move |c| ws::role_of(c, &ws_id, &user))
        .await?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    let to = body.role;
    let allowed = principal.authorize(Action::ChangeMemberRole {
        workspace: standing.policy(),
        from,
        to,
    })?;
    let mut event = event(actor, Audited::MemberRoleChanged, &workspace.id);
    event.subject_user_id = Some(member.clone());
    event.details = json!({ "from": from, "to": to });
    let (ws_id, now) = (workspace.id.clone(), state.now());
    let changed = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let narrowed =
                    match ws::change_member_role(c, allowed, &ws_id, &member, Some(from), to, now)?
                    {
                        Ok((_, narrowed)) => narrowed,
                        Err(refused) => return Ok(Err(member_refusal(refused))),
                    };
                if from != to {
                    event.details["grants_revoked"] = json!(narrowed.families_revoked.len());
                    audit::record(c, &event, now)?;
                }
                Ok::<_, DbError>(
                    ws::members(c, &ws_id)?
                        .into_iter()
                        .find(|m| m.user_id == member)
                        .map(|m| (m, narrowed))
                        .ok_or_else(|| ApiError::not_found("Member")),
                )
            })
        })
        .await??;
    let (changed, narrowed) = changed;
    after_departure(state, &narrowed).await;
    ok(changed)
}

/// Remove a member, or leave
///
/// Your own user id: you leave (any member; not the last owner, not your personal workspace).
/// Another member: admins remove members and admins, owners anyone. Their keys in the workspace
/// are revoked and their apps' grants made in it end, at once.
#[utoipa::path(delete, path = "/v1/workspaces/{id}/members/{user_id}", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"),
           ("user_id" = String, Path, description = "The member's user id")),
    responses((status = 200, description = "Removed", body = Done),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn remove_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    remove_member_for(&state, &principal, &actor, path).await
}

/// The same, for the API and the pages.
pub(crate) async fn remove_member_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (id, member) = path.into_inner();
    let standing = standing(state, principal, id).await?;
    principal.authorize(Action::ReadWorkspace(standing.policy()))?;
    let workspace = found(&standing)?.clone();
    let (ws_id, user) = (workspace.id.clone(), member.clone());
    let member_role = state
        .db(move |c| ws::role_of(c, &ws_id, &user))
        .await?
        .ok_or_else(|| ApiError::not_found("Member"))?;
    let allowed = principal.authorize(Action::RemoveMember {
        workspace: standing.policy(),
        member: &member,
        member_role,
    })?;
    if workspace.is_personal() {
        return Err(ApiError::of(ErrorCode::PersonalWorkspace));
    }
    let leaving = member == principal.user.id;
    let action = if leaving {
        Audited::MemberLeft
    } else {
        Audited::MemberRemoved
    };
    let mut event = event(actor, action, &workspace.id);
    event.subject_user_id = Some(member.clone());
    let (ws_id, by, now) = (workspace.id.clone(), principal.user.id.clone(), state.now());
    let departure = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let departure = match ws::remove_member_guarded(
                    c,
                    allowed,
                    &ws_id,
                    &member,
                    member_role,
                    &by,
                    now,
                )? {
                    Ok(departure) => departure,
                    Err(refused) => return Ok(Err(member_refusal(refused))),
                };
                event.details = json!({
                    "role": member_role,
                    "keys_revoked": departure.keys_revoked.len(),
                    "grants_revoked": departure.families_revoked.len(),
                });
                audit::record(c, &event, now)?;
                Ok::<_, DbError>(Ok(departure))
            })
        })
        .await??;
    after_departure(state, &departure).await;
    done(if leaving {
        "You left the workspace"
    } else {
        "Member removed"
    })
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "email": "dev@example.com", "role": "member" }))]
pub struct InviteBody {
    #[schema(format = Email, max_length = 254)]
    pub(crate) email: String,
    /// Default: `member`.
    pub(crate) role: Option<WsRole>,
}

/// A new invitation, with its link: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewInvitation {
    #[serde(flatten)]
    pub invitation: InvitationView,
    /// The one-time token. Gatehouse sends no mail: deliver it (or `accept_url`) to the invitee,
    /// who accepts while signed in with the invited address.
    pub token: String,
    pub accept_url: String,
}

/// Invite someone
///
/// By email, with a role no higher than yours. The invitation lasts 7 days.
#[utoipa::path(post, path = "/v1/workspaces/{id}/invitations", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    request_body = InviteBody,
    responses((status = 201, description = "Invited", body = Success<NewInvitation>),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope)))]
pub async fn invite_member(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    body: web::Json<InviteBody>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    let invited = invite_member_for(&state, &principal, &actor, path, body).await?;
    with_status(StatusCode::CREATED, invited)
}

/// The same, for the API and the pages.
pub(crate) async fn invite_member_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<String>,
    body: web::Json<InviteBody>,
) -> Result<NewInvitation, ApiError> {
    let standing = standing(state, principal, path.into_inner()).await?;
    let role = body.role.unwrap_or(WsRole::Member);
    let allowed = principal.authorize(Action::Invite {
        workspace: standing.policy(),
        role,
    })?;
    let workspace = found(&standing)?;
    if workspace.is_personal() {
        return Err(ApiError::of(ErrorCode::PersonalWorkspace));
    }
    let email =
        Email::parse(&body.email).map_err(|e| ApiError::validation("email", e.to_string()))?;
    let mut event = event(actor, Audited::MemberInvited, &workspace.id);
    event.details = json!({ "email": email.as_str(), "role": role });
    let (pepper, ws_id, by, now) = (
        state.digest_pepper.clone(),
        workspace.id.clone(),
        principal.user.id.clone(),
        state.now(),
    );
    let (invitation, token) = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let (invitation, token) =
                    ws::invite(c, allowed, &pepper, &ws_id, email.as_str(), role, &by, now)?;
                event.details["invitation_id"] = json!(invitation.id);
                audit::record(c, &event, now)?;
                Ok::<_, DbError>((invitation, token))
            })
        })
        .await?;
    let accept_url = format!(
        "{}/invitations/{}",
        state.settings.issuer.trim_end_matches('/'),
        token.expose()
    );
    Ok(NewInvitation {
        invitation: invitation.view(now),
        token: token.expose().to_owned(),
        accept_url,
    })
}

/// A workspace's invitations
///
/// Newest first, with their status (workspace admins).
#[utoipa::path(get, path = "/v1/workspaces/{id}/invitations", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)")),
    responses((status = 200, description = "The invitations", body = Page<InvitationView>)))]
pub async fn list_invitations(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
) -> ApiResult {
    let standing = standing(&state, &principal, path.into_inner()).await?;
    principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    let (id, now) = (found(&standing)?.id.clone(), state.now());
    let all = state.db(move |c| ws::invitations(c, &id)).await?;
    page(all.iter().map(|i| i.view(now)).collect(), None)
}

/// Revoke an invitation
#[utoipa::path(delete, path = "/v1/workspaces/{id}/invitations/{invitation_id}", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"),
           ("invitation_id" = String, Path, description = "An invitation id (`inv_…`)")),
    responses((status = 200, description = "Revoked", body = Done)))]
pub async fn revoke_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    revoke_invitation_for(&state, &principal, &actor, path).await
}

/// The same, for the API and the pages.
pub(crate) async fn revoke_invitation_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (id, invitation) = path.into_inner();
    let standing = standing(state, principal, id).await?;
    let allowed = principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    let ws_id = found(&standing)?.id.clone();
    let mut event = event(actor, Audited::InvitationRevoked, &ws_id);
    event.details = json!({ "invitation_id": invitation });
    let now = state.now();
    let revoked = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let revoked = ws::revoke_invitation(c, allowed, &ws_id, &invitation, now)?;
                if revoked {
                    audit::record(c, &event, now)?;
                }
                Ok::<_, DbError>(revoked)
            })
        })
        .await?;
    if !revoked {
        return Err(ApiError::not_found("Invitation"));
    }
    done("Invitation revoked")
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({ "token": "wsi_…" }))]
pub struct AcceptBody {
    #[schema(min_length = 1, max_length = 200)]
    token: String,
}

/// Accept an invitation
///
/// Signed in with the invited address (`WORKSPACE_004` otherwise): you join with the
/// invitation's role. A token works once (`WORKSPACE_003` after).
#[utoipa::path(post, path = "/v1/invitations/accept", tag = "workspaces",
    security(("oauth2" = ["write:workspaces"])),
    request_body = AcceptBody,
    responses((status = 200, description = "Joined", body = Success<WorkspaceView>),
        (status = 409, description = "Conflict: WORKSPACE_001, WORKSPACE_002 or RESOURCE_002", body = ErrorEnvelope),
        (status = 404, description = "WORKSPACE_003: unknown, expired, revoked or used", body = ErrorEnvelope)))]
pub async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<AcceptBody>,
) -> ApiResult {
    let (workspace, role) = accept_for(&state, &principal, &req, body.into_inner().token).await?;
    ok(workspace.view(Some(role)))
}

/// Accept `token` for the principal's user, if the policy lets them join (the API and the
/// invitation page).
pub async fn accept_for(
    state: &AppState,
    principal: &Principal,
    req: &HttpRequest,
    token: String,
) -> Result<(Workspace, WsRole), ApiError> {
    let allowed = principal.authorize(Action::JoinWorkspace)?;
    let (pepper, user, now) = (
        state.digest_pepper.clone(),
        (*principal.user).clone(),
        state.now(),
    );
    let mut event = principal.actor(client_ip(req)).event(Audited::MemberJoined);
    event.subject_user_id = Some(user.id.clone());
    let outcome = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                let outcome = ws::accept(c, allowed, &pepper, &token, &user, now)?;
                if let Ok((invitation, workspace)) = &outcome {
                    event.workspace_id = Some(workspace.id.clone());
                    event.details =
                        json!({ "invitation_id": invitation.id, "role": invitation.role() });
                    audit::record(c, &event, now)?;
                }
                Ok::<_, DbError>(outcome)
            })
        })
        .await?;
    match outcome {
        Ok((invitation, workspace)) => Ok((workspace, invitation.role())),
        Err(NotAccepted::Invalid) => Err(ApiError::of(ErrorCode::InvitationInvalid)),
        Err(NotAccepted::OtherEmail) => Err(ApiError::of(ErrorCode::InvitationForOther)),
        Err(NotAccepted::AlreadyMember) => Err(ApiError::new(
            ErrorCode::Conflict,
            "You are already a member of this workspace",
        )),
    }
}

/// Every member's keys in a workspace
///
/// Workspace admins and owners; newest first.
#[utoipa::path(get, path = "/v1/workspaces/{id}/api-keys", tag = "workspaces",
    security(("oauth2" = ["read:api_keys"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"), ListQuery),
    responses((status = 200, description = "A page of keys", body = Page<ApiKeyView>)))]
pub async fn list_workspace_keys(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> ApiResult {
    let standing = standing(&state, &principal, path.into_inner()).await?;
    principal.authorize(Action::ReadWorkspaceKeys(standing.policy()))?;
    let mut filter = list_filter(&query)?;
    filter.workspace_id = Some(found(&standing)?.id.clone());
    list_keys_with(&state, None, filter).await
}

/// Issue a key to a member
///
/// Workspace admins and owners: the key belongs to the member and acts in this workspace; it is
/// never broader than the issuing credential, nor than the member's own rights.
#[utoipa::path(post, path = "/v1/workspaces/{id}/members/{user_id}/api-keys", tag = "workspaces",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"),
           ("user_id" = String, Path, description = "The member's user id")),
    request_body = CreateKeyBody,
    responses((status = 201, description = "Created", body = Success<crate::api_keys::api::NewKey>)))]
pub async fn issue_member_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    body: web::Json<CreateKeyBody>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    let (id, member) = path.into_inner();
    let request = key_request(&body)?;
    let (key, secret) = issue_member_key_for(
        &state,
        &principal,
        &actor,
        &id,
        &member,
        request,
        body.workspace_id(),
    )
    .await?;
    with_status(
        StatusCode::CREATED,
        crate::api_keys::api::NewKey {
            view: key.view(state.now()),
            key: secret.expose().to_owned(),
        },
    )
}

/// Issue `member`'s key in workspace `id` (the API and the workspace page): the workspace
/// admin's rights, the member's membership, and the caller's bounds on what it mints.
pub(crate) async fn issue_member_key_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    id: &str,
    member: &str,
    mut request: crate::api_keys::KeyRequest,
    named_workspace: Option<&str>,
) -> Result<(ApiKey, PlainSecret), ApiError> {
    let standing = standing(state, principal, id.to_owned()).await?;
    principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    let ws_id = found(&standing)?.id.clone();
    let user = member.to_owned();
    let (member_role, owner) = state
        .db(move |c| {
            Ok::<_, DbError>((
                ws::role_of(c, &ws_id, &user)?,
                crate::accounts::model::find_by_id(c, &user)?,
            ))
        })
        .await?;
    let allowed = principal.authorize(Action::IssueMemberKey {
        workspace: standing.policy(),
        member_role,
        member_is_install_admin: owner.as_ref().is_some_and(|o| o.is_admin()),
    })?;
    let owner = owner.ok_or_else(|| ApiError::not_found("Member"))?;
    if named_workspace.is_some_and(|w| w != standing.id) {
        return Err(ApiError::validation(
            "workspace_id",
            "A member's key issued here acts in this workspace",
        ));
    }
    request.workspace_id = standing.id;
    service::issue(state, allowed, &principal.caller(), actor, owner, request)
        .await
        .map_err(ApiError::from)
}

/// Revoke a member's key
///
/// Workspace admins and owners, for any key acting in the workspace; at once.
#[utoipa::path(delete, path = "/v1/workspaces/{id}/api-keys/{key_id}", tag = "workspaces",
    security(("oauth2" = ["write:api_keys"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"),
           ("key_id" = String, Path, description = "A key id (`key_…`)")),
    responses((status = 200, description = "Revoked", body = Done)))]
pub async fn revoke_member_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let actor = principal.actor(client_ip(&req));
    revoke_member_key_for(&state, &principal, &actor, path).await
}

/// The same, for the API and the pages.
pub(crate) async fn revoke_member_key_for(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    path: web::Path<(String, String)>,
) -> ApiResult {
    let (id, key_id) = path.into_inner();
    let standing = standing(state, principal, id).await?;
    principal.authorize(Action::ManageWorkspace(standing.policy()))?;
    found(&standing)?;
    let key = load_key(state, key_id).await?;
    // A key of another workspace is not found here, whoever asks.
    if key.workspace_id != standing.id {
        return Err(key_denied(crate::policy::Denied::NotFound("API key")));
    }
    let (ws_id, owner) = (standing.id.clone(), key.user_id.clone());
    let owner_role = state.db(move |c| ws::role_of(c, &ws_id, &owner)).await?;
    let allowed = principal.authorize(Action::RevokeMemberKey {
        workspace: standing.policy(),
        owner_role,
    })?;
    service::revoke(state, allowed, actor, key).await?;
    done("API key revoked successfully")
}

/// A workspace's audit events
///
/// What happened in it (members, invitations, settings, keys): workspace admins and owners.
#[utoipa::path(get, path = "/v1/workspaces/{id}/audit-events", tag = "workspaces",
    security(("oauth2" = ["read:workspaces"])),
    params(("id" = String, Path, description = "A workspace id (`ws_…`)"), AuditQuery),
    responses((status = 200, description = "A page of events", body = Page<AuditEventView>)))]
pub async fn workspace_audit_events(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<String>,
    query: web::Query<AuditQuery>,
) -> ApiResult {
    let standing = standing(&state, &principal, path.into_inner()).await?;
    principal.authorize(Action::ReadWorkspaceAudit(standing.policy()))?;
    let id = found(&standing)?.id.clone();
    audit_page(&state, query.into_inner(), Some(id)).await
}

/// A member change the workspace refused, as `/v1` answers it.
fn member_refusal(refused: ws::MemberRefusal) -> ApiError {
    match refused {
        ws::MemberRefusal::NotMember => ApiError::not_found("Member"),
        ws::MemberRefusal::Changed => ApiError::new(
            ErrorCode::Conflict,
            "The member's role changed meanwhile: look again",
        ),
        ws::MemberRefusal::LastOwner => ApiError::of(ErrorCode::LastOwner),
    }
}
