//! The workspace pages: the list with a create form, one workspace (members and their roles,
//! invitations, settings, members' keys with issue and revoke), and the invitation link's
//! page. Every action goes through the same functions (and so the same policy checks) as
//! `/v1/workspaces`.

use crate::http::errors::HttpStatus;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::api::{self, CreateWorkspaceBody, InviteBody, MemberRoleBody, UpdateWorkspaceBody};
use super::{InvitationView, KeyIssuance, MemberView, WorkspaceView, WsRole};
use crate::api_keys::api::client_ip;
use crate::api_keys::model::{self as keys, ApiKeyView, ListFilter};
use crate::api_keys::pages::{CreatedPage, parse_create_form};
use crate::audit::Actor;
use crate::http::ApiError;
use crate::pages::{Nav, csrf_matches, error_page, failure_page, form_expired, render, see_other};
use crate::policy::Action;
use crate::principal::{Principal, SignedIn};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: String,
}

#[derive(Template)]
#[template(path = "workspaces/list.html")]
struct ListPage<'a> {
    nav: Option<Nav>,
    workspaces: Vec<WorkspaceView>,
    csrf_token: &'a str,
    error: Option<String>,
}

async fn list_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    error: Option<String>,
) -> HttpResponse {
    let user = signed_in.user.id.clone();
    match state.db(move |c| super::of_user(c, &user)).await {
        Ok(all) => render(
            status,
            &ListPage {
                nav: Some(signed_in.nav("workspaces")),
                workspaces: all.iter().map(|(w, r)| w.view(Some(*r))).collect(),
                csrf_token: &signed_in.csrf_token,
                error,
            },
        ),
        Err(e) => failure_page(&e.into()),
    }
}

pub async fn list(state: web::Data<AppState>, signed_in: SignedIn) -> HttpResponse {
    if let Err(e) = signed_in.principal().authorize(Action::ListWorkspaces) {
        return failure_page(&e);
    }
    list_page(&state, &signed_in, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct CreateForm {
    csrf_token: String,
    name: String,
    #[serde(default)]
    slug: String,
    admins_issue_keys: Option<String>,
}

pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<CreateForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let form = form.into_inner();
    let body = CreateWorkspaceBody {
        name: form.name,
        slug: Some(form.slug).filter(|s| !s.trim().is_empty()),
        key_issuance: form.admins_issue_keys.map(|_| KeyIssuance::Admins),
    };
    let principal = signed_in.principal();
    let actor = principal.actor(client_ip(&req));
    match api::create_workspace_for(&state, &principal, &actor, web::Json(body)).await {
        Ok(created) => see_other(&format!("/workspaces/{}?done=created", created.id)),
        Err(e) if e.code.status().is_client_error() => {
            list_page(
                &state,
                &signed_in,
                e.code.status(),
                Some(e.message.into_owned()),
            )
            .await
        }
        Err(e) => failure_page(&e),
    }
}

#[derive(Template)]
#[template(path = "workspaces/detail.html")]
struct DetailPage<'a> {
    nav: Option<Nav>,
    title: String,
    workspace: WorkspaceView,
    my_role: &'static str,
    administers: bool,
    self_id: &'a str,
    members: Vec<MemberView>,
    invitations: Vec<InvitationView>,
    /// Members' keys with their owner's email (admins only).
    keys: Vec<(ApiKeyView, String)>,
    csrf_token: &'a str,
    notice: Option<&'static str>,
    error: Option<String>,
    invite_link: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    done: Option<String>,
}

fn notice_for(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "created" => Some("Workspace created: you are its owner."),
        "joined" => Some("You joined the workspace."),
        "saved" => Some("Settings saved."),
        "role" => Some("Role changed."),
        "removed" => {
            Some("Member removed: their keys here are revoked and their apps' access here ended.")
        }
        "revoked" => Some("Revoked."),
        _ => None,
    }
}

/// What the workspace page shows.
struct Shown {
    notice: Option<&'static str>,
    error: Option<String>,
    invite_link: Option<String>,
}

type Detail = (
    Vec<super::MemberView>,
    Vec<super::Invitation>,
    Vec<keys::ApiKey>,
);

/// A workspace's members, and for its administrators its pending invitations and its keys.
async fn load_detail(
    state: &AppState,
    ws_id: String,
    administers: bool,
    now: chrono::NaiveDateTime,
) -> Result<Detail, crate::db::DbError> {
    state
        .db(move |c| {
            let members = super::members(c, &ws_id)?;
            if !administers {
                return Ok((members, Vec::new(), Vec::new()));
            }
            let filter = ListFilter {
                limit: 500,
                workspace_id: Some(ws_id.clone()),
                ..Default::default()
            };
            let invitations = super::invitations(c, &ws_id)?;
            let keys = keys::list(c, None, &filter, now)?;
            Ok((members, invitations, keys))
        })
        .await
}

async fn detail_page(
    state: &AppState,
    signed_in: &SignedIn,
    id: String,
    status: StatusCode,
    shown: Shown,
) -> HttpResponse {
    let principal = signed_in.principal();
    let standing = match api::standing(state, &principal, id).await {
        Ok(s) => s,
        Err(e) => return failure_page(&e),
    };
    if let Err(e) = principal.authorize(Action::ReadWorkspace(standing.policy())) {
        return failure_page(&e);
    }
    let Some(workspace) = standing.workspace.clone() else {
        return failure_page(&ApiError::not_found("Workspace"));
    };
    let administers = principal
        .authorize(Action::ManageWorkspace(standing.policy()))
        .is_ok();
    let now = state.now();
    let loaded = load_detail(state, workspace.id.clone(), administers, now).await;
    let (members, invitations, keys) = match loaded {
        Ok(found) => found,
        Err(e) => return failure_page(&e.into()),
    };
    let email_of = |user_id: &str| {
        members
            .iter()
            .find(|m| m.user_id == user_id)
            .map_or_else(|| user_id.to_owned(), |m| m.email.clone())
    };
    let keys = keys
        .iter()
        .map(|k| (k.view(now), email_of(&k.user_id)))
        .collect();
    let title = if workspace.is_personal() {
        "Personal workspace".to_owned()
    } else {
        workspace.display_name().to_owned()
    };
    render(
        status,
        &DetailPage {
            nav: Some(signed_in.nav("workspaces")),
            title,
            workspace: workspace.view(standing.role),
            my_role: standing
                .role
                .map_or("administrator of the install", WsRole::as_str),
            administers,
            self_id: &signed_in.user.id,
            members,
            invitations: invitations.iter().map(|i| i.view(now)).collect(),
            keys,
            csrf_token: &signed_in.csrf_token,
            notice: shown.notice,
            error: shown.error,
            invite_link: shown.invite_link,
        },
    )
}

pub async fn detail(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    query: web::Query<NoticeQuery>,
) -> HttpResponse {
    let shown = Shown {
        notice: notice_for(query.done.as_deref()),
        error: None,
        invite_link: None,
    };
    detail_page(&state, &signed_in, path.into_inner(), StatusCode::OK, shown).await
}

/// After an action: back to the page with a notice, or the page again with the refusal.
async fn after(
    state: &AppState,
    signed_in: &SignedIn,
    id: String,
    outcome: Result<(), ApiError>,
    done: &str,
) -> HttpResponse {
    match outcome {
        Ok(()) => see_other(&format!("/workspaces/{id}?done={done}")),
        Err(e) if e.code.status() == StatusCode::NOT_FOUND => failure_page(&e),
        Err(e) if e.code.status().is_client_error() => {
            let shown = Shown {
                notice: None,
                error: Some(e.message.into_owned()),
                invite_link: None,
            };
            detail_page(state, signed_in, id, e.code.status(), shown).await
        }
        Err(e) => failure_page(&e),
    }
}

/// Invite someone to the workspace: the page shows the link once.
async fn invite(
    state: &AppState,
    signed_in: &SignedIn,
    principal: &Principal,
    actor: &Actor,
    id: String,
    form: &[(String, String)],
) -> HttpResponse {
    let field = |name: &str| crate::api_keys::pages::field(form, name).to_owned();
    let body = InviteBody {
        email: field("email"),
        role: WsRole::parse(&field("role")),
    };
    let path = web::Path::from(id.clone());
    match api::invite_member_for(state, principal, actor, path, web::Json(body)).await {
        Ok(invited) => {
            let shown = Shown {
                notice: Some("Invitation created."),
                error: None,
                invite_link: Some(invited.accept_url),
            };
            detail_page(state, signed_in, id, StatusCode::CREATED, shown).await
        }
        Err(e) => after(state, signed_in, id, Err(e), "").await,
    }
}

/// Issue a key to a member: the page shows it once.
async fn issue_key(
    state: &AppState,
    signed_in: &SignedIn,
    principal: &Principal,
    actor: &Actor,
    id: String,
    form: &[(String, String)],
) -> HttpResponse {
    let parsed = parse_create_form(form, state.now());
    let request = match parsed.request {
        Ok(request) => request,
        Err(message) => {
            let e = ApiError::validation("key", message);
            return after(state, signed_in, id, Err(e), "").await;
        }
    };
    let member = crate::api_keys::pages::field(form, "member").to_owned();
    match api::issue_member_key_for(state, principal, actor, &id, &member, request, None).await {
        Ok((key, secret)) => {
            let back = format!("/workspaces/{id}");
            render(
                StatusCode::CREATED,
                &CreatedPage {
                    nav: Some(signed_in.nav("workspaces")),
                    title: "The member's new API key",
                    key: key.view(state.now()),
                    secret: secret.expose(),
                    back: &back,
                    note: Some(
                        "Hand it to the member over a safe channel. It acts in this workspace; you can revoke it here.",
                    ),
                },
            )
        }
        Err(e) => after(state, signed_in, id, Err(e), "").await,
    }
}

/// `POST /workspaces/{id}/{action}`: settings, invite, issue-key.
pub async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (id, action) = path.into_inner();
    let field = |name: &str| crate::api_keys::pages::field(&form, name).to_owned();
    if !csrf_matches(&signed_in.csrf_token, &field("csrf_token")) {
        return form_expired();
    }
    let principal = signed_in.principal();
    let actor = principal.actor(client_ip(&req));
    match action.as_str() {
        "settings" => {
            let body = UpdateWorkspaceBody {
                name: Some(field("name")),
                slug: None,
                key_issuance: KeyIssuance::parse(&field("key_issuance")),
            };
            let outcome = api::update_workspace_for(
                &state,
                &principal,
                &actor,
                web::Path::from(id.clone()),
                web::Json(body),
            )
            .await
            .map(drop);
            after(&state, &signed_in, id, outcome, "saved").await
        }
        "invite" => invite(&state, &signed_in, &principal, &actor, id, &form).await,
        "issue-key" => issue_key(&state, &signed_in, &principal, &actor, id, &form).await,
        _ => error_page(StatusCode::NOT_FOUND, "Not found", "No such page."),
    }
}

/// `POST /workspaces/{id}/members/{user}/{action}`: role, remove.
pub async fn member_act(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String, String)>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let (id, member, action) = path.into_inner();
    let field = |name: &str| crate::api_keys::pages::field(&form, name).to_owned();
    if !csrf_matches(&signed_in.csrf_token, &field("csrf_token")) {
        return form_expired();
    }
    let principal = signed_in.principal();
    let actor = principal.actor(client_ip(&req));
    let target = web::Path::from((id.clone(), member.clone()));
    match action.as_str() {
        "role" => {
            let Some(role) = WsRole::parse(&field("role")) else {
                let e = ApiError::validation("role", "Choose owner, admin or member");
                return after(&state, &signed_in, id, Err(e), "").await;
            };
            let outcome = api::change_member_role_for(
                &state,
                &principal,
                &actor,
                target,
                web::Json(MemberRoleBody { role }),
            )
            .await
            .map(drop);
            after(&state, &signed_in, id, outcome, "role").await
        }
        "remove" => {
            let leaving = member == signed_in.user.id;
            let outcome = api::remove_member_for(&state, &principal, &actor, target)
                .await
                .map(drop);
            match outcome {
                Ok(()) if leaving => see_other("/workspaces?done=left"),
                outcome => after(&state, &signed_in, id, outcome, "removed").await,
            }
        }
        _ => error_page(StatusCode::NOT_FOUND, "Not found", "No such page."),
    }
}

/// `POST /workspaces/{id}/invitations/{invitation}/revoke`.
pub async fn revoke_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let (id, invitation) = path.into_inner();
    let principal = signed_in.principal();
    let actor = principal.actor(client_ip(&req));
    let outcome = api::revoke_invitation_for(
        &state,
        &principal,
        &actor,
        web::Path::from((id.clone(), invitation)),
    )
    .await
    .map(drop);
    after(&state, &signed_in, id, outcome, "revoked").await
}

/// `POST /workspaces/{id}/api-keys/{key}/revoke`: a workspace admin revokes a member's key.
pub async fn revoke_key(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let (id, key) = path.into_inner();
    let principal = signed_in.principal();
    let actor = principal.actor(client_ip(&req));
    let outcome = api::revoke_member_key_for(
        &state,
        &principal,
        &actor,
        web::Path::from((id.clone(), key)),
    )
    .await
    .map(drop);
    after(&state, &signed_in, id, outcome, "revoked").await
}

#[derive(Template)]
#[template(path = "workspaces/invitation.html")]
struct InvitationPage<'a> {
    nav: Option<Nav>,
    workspace_name: String,
    role: &'static str,
    email: String,
    user_email: &'a str,
    token: &'a str,
    csrf_token: &'a str,
    error: Option<String>,
}

/// `GET /invitations/{token}`: what the link invites to, and a button to join.
pub async fn invitation(
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
) -> HttpResponse {
    let token = path.into_inner();
    let (pepper, now, looked_up) = (state.digest_pepper.clone(), state.now(), token.clone());
    let found = state
        .db(move |c| {
            let Some(invitation) = super::find_invitation(c, &pepper, &looked_up)? else {
                return Ok(None);
            };
            let workspace = super::find(c, &invitation.workspace_id)?;
            Ok::<_, crate::db::DbError>(workspace.map(|w| (invitation, w)))
        })
        .await;
    let (invitation, workspace) = match found {
        Ok(Some((i, w))) if i.status(now) == "pending" => (i, w),
        Ok(_) => return failure_page(&ApiError::of(crate::http::ErrorCode::InvitationInvalid)),
        Err(e) => return failure_page(&e.into()),
    };
    render(
        StatusCode::OK,
        &InvitationPage {
            nav: Some(signed_in.nav("workspaces")),
            workspace_name: workspace.name,
            role: invitation.role().as_str(),
            email: invitation.email,
            user_email: &signed_in.user.email,
            token: &token,
            csrf_token: &signed_in.csrf_token,
            error: None,
        },
    )
}

/// `POST /invitations/{token}`: join.
pub async fn accept(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return form_expired();
    }
    let principal = signed_in.principal();
    match api::accept_for(&state, &principal, &req, path.into_inner()).await {
        Ok((workspace, _)) => see_other(&format!("/workspaces/{}?done=joined", workspace.id)),
        Err(e) => failure_page(&e),
    }
}
