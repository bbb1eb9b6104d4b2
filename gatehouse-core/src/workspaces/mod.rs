//! Workspaces: users grouped with a role (`owner`, `admin`, `member`). Every user has a
//! personal workspace, made with the account and never shared, so a single-user install never
//! sees the concept; shared workspaces are created, joined by invitation and left.
//!
//! A workspace scopes what a credential reaches: an API key belongs to a user *in* a workspace,
//! an authorization (and every token of its refresh family) names the workspace the user chose,
//! and such a credential acts within that workspace only (`policy::Caller::workspace`). The
//! workspace decides whether its members create their own keys or only its admins issue them;
//! its admins see and revoke its members' keys, and nothing of other workspaces.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::model::User;
use crate::clock::utc;
use crate::db::schema::{users, workspace_invitations, workspace_members, workspaces};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::policy::Allowed;
use crate::secrets::{Pepper, PlainSecret};

pub mod roles;
pub use roles::{KeyIssuance, WorkspaceClaim, WsRole, is_personal_slug};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workspaces)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub personal_user_id: Option<String>,
    pub key_issuance: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Workspace {
    pub fn is_personal(&self) -> bool {
        self.personal_user_id.is_some()
    }

    /// The name people see: "Personal" for a personal workspace (its stored name is that too,
    /// but a rename must not make one look shared).
    pub fn display_name(&self) -> &str {
        if self.is_personal() {
            "Personal"
        } else {
            &self.name
        }
    }

    pub fn issuance(&self) -> KeyIssuance {
        // Unknown values fail closed: admins only.
        KeyIssuance::parse(&self.key_issuance).unwrap_or(KeyIssuance::Admins)
    }

    pub fn view(&self, role: Option<WsRole>) -> WorkspaceView {
        WorkspaceView {
            id: self.id.clone(),
            name: self.name.clone(),
            slug: self.slug.clone(),
            personal: self.is_personal(),
            key_issuance: self.issuance(),
            role,
            created_at: utc(self.created_at),
            updated_at: utc(self.updated_at),
        }
    }
}

/// A workspace as `/v1` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkspaceView {
    #[schema(example = "ws_4x9TQbJ2mR8pLw3nV6yZ1cKe")]
    pub id: String,
    pub name: String,
    #[schema(example = "acme-platform")]
    pub slug: String,
    /// A user's own workspace: created with the account, never shared, never deleted.
    pub personal: bool,
    pub key_issuance: KeyIssuance,
    /// The caller's role in it (absent when an administrator of the install looks in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<WsRole>,
    pub created_at: String,
    pub updated_at: String,
}

/// A member as `/v1` lists them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberView {
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub role: WsRole,
    pub joined_at: String,
}

/// Workspace input errors (names, slugs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsInputError {
    pub field: &'static str,
    pub message: &'static str,
}

pub fn validate_name(raw: &str) -> Result<String, WsInputError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(WsInputError {
            field: "name",
            message: "A workspace name has 1 to 100 characters, without control characters",
        });
    }
    Ok(name.to_owned())
}

/// A slug: 3 to 40 lower-case letters, digits and inner hyphens; `personal-…` is reserved.
pub fn validate_slug(raw: &str) -> Result<String, WsInputError> {
    let slug = raw.trim();
    let bad = WsInputError {
        field: "slug",
        message: "A slug has 3 to 40 characters: lower-case letters, digits and hyphens, not at either end",
    };
    let ok_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(3..=40).contains(&slug.len()) || !ok_chars || slug.starts_with('-') || slug.ends_with('-')
    {
        return Err(bad);
    }
    if slug.starts_with("personal-") {
        return Err(WsInputError {
            field: "slug",
            message: "Slugs starting with personal- are reserved for personal workspaces",
        });
    }
    Ok(slug.to_owned())
}

/// A slug made from a name (for forms and the CLI when none is given).
pub fn slug_from_name(name: &str) -> String {
    let mut slug = String::new();
    for c in name.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let mut slug: String = slug.trim_matches('-').chars().take(40).collect();
    slug = slug.trim_end_matches('-').to_owned();
    if slug.starts_with("personal-") {
        slug = format!("ws-{slug}").chars().take(40).collect();
    }
    while slug.len() < 3 {
        slug.push('0');
    }
    slug
}

/// What the policy weighs about a user in a workspace, read for this request.
#[derive(Debug, Clone)]
pub struct Standing {
    pub id: String,
    /// `None`: no such workspace.
    pub workspace: Option<Workspace>,
    /// `None`: not a member.
    pub role: Option<WsRole>,
}

impl Standing {
    pub fn load(conn: &mut DbConn, workspace_id: &str, user_id: &str) -> Result<Standing, DbError> {
        let workspace = find(conn, workspace_id)?;
        let role = match &workspace {
            Some(_) => role_of(conn, workspace_id, user_id)?,
            None => None,
        };
        Ok(Standing {
            id: workspace_id.to_owned(),
            workspace,
            role,
        })
    }

    /// The workspace `asked` for, else `user_id`'s personal one.
    pub fn load_or_personal(
        conn: &mut DbConn,
        asked: Option<&str>,
        user_id: &str,
    ) -> Result<Standing, DbError> {
        match asked {
            Some(id) => Standing::load(conn, id, user_id),
            None => {
                let personal = personal_of(conn, user_id)?;
                let id = personal.as_ref().map(|w| w.id.clone()).unwrap_or_default();
                let role = personal.as_ref().map(|_| WsRole::Owner);
                Ok(Standing {
                    id,
                    workspace: personal,
                    role,
                })
            }
        }
    }

    /// As the policy weighs it. A workspace that does not exist has no members and lets only
    /// admins issue keys.
    pub fn policy(&self) -> crate::policy::InWorkspace<'_> {
        crate::policy::InWorkspace {
            id: &self.id,
            role: self.role,
            issuance: self
                .workspace
                .as_ref()
                .map_or(KeyIssuance::Admins, Workspace::issuance),
        }
    }
}

/// Create `user_id`'s personal workspace (with the account, in its transaction).
pub fn create_personal(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Workspace, DbError> {
    let id = new_id(IdKind::Workspace);
    let slug = format!("personal-{}", id["ws_".len()..].to_lowercase());
    insert(conn, &id, "Personal", &slug, Some(user_id), user_id, now)
}

/// Create a shared workspace owned by `owner_id`. `Ok(None)`: the slug is taken.
pub fn create_shared(
    conn: &mut DbConn,
    _allowed: Allowed,
    name: &str,
    slug: &str,
    owner_id: &str,
    now: NaiveDateTime,
) -> Result<Option<Workspace>, DbError> {
    let id = new_id(IdKind::Workspace);
    match crate::db::write_transaction(conn, |c| insert(c, &id, name, slug, None, owner_id, now)) {
        Ok(ws) => Ok(Some(ws)),
        Err(e) if e.is_unique_violation() => Ok(None),
        Err(e) => Err(e),
    }
}

fn insert(
    conn: &mut DbConn,
    id: &str,
    name: &str,
    slug: &str,
    personal_user_id: Option<&str>,
    owner_id: &str,
    now: NaiveDateTime,
) -> Result<Workspace, DbError> {
    diesel::insert_into(workspaces::table)
        .values((
            workspaces::id.eq(id),
            workspaces::name.eq(name),
            workspaces::slug.eq(slug),
            workspaces::personal_user_id.eq(personal_user_id),
            workspaces::key_issuance.eq(KeyIssuance::Members.as_str()),
            workspaces::created_at.eq(now),
            workspaces::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::insert_into(workspace_members::table)
        .values((
            workspace_members::workspace_id.eq(id),
            workspace_members::user_id.eq(owner_id),
            workspace_members::role.eq(WsRole::Owner.as_str()),
            workspace_members::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(workspaces::table
        .find(id)
        .select(Workspace::as_select())
        .first(conn)?)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Workspace>, DbError> {
    Ok(workspaces::table
        .find(id)
        .select(Workspace::as_select())
        .first(conn)
        .optional()?)
}

/// A workspace by id or slug (what `/oauth/authorize?workspace=` accepts).
pub fn find_by_id_or_slug(conn: &mut DbConn, name: &str) -> Result<Option<Workspace>, DbError> {
    Ok(workspaces::table
        .filter(workspaces::id.eq(name).or(workspaces::slug.eq(name)))
        .select(Workspace::as_select())
        .first(conn)
        .optional()?)
}

pub fn personal_of(conn: &mut DbConn, user_id: &str) -> Result<Option<Workspace>, DbError> {
    Ok(workspaces::table
        .filter(workspaces::personal_user_id.eq(user_id))
        .select(Workspace::as_select())
        .first(conn)
        .optional()?)
}

/// `user_id`'s role in `workspace_id`, if a member.
pub fn role_of(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<WsRole>, DbError> {
    let role: Option<String> = workspace_members::table
        .find((workspace_id, user_id))
        .select(workspace_members::role)
        .first(conn)
        .optional()?;
    Ok(role.and_then(|r| WsRole::parse(&r)))
}

/// The workspace and `user_id`'s role in it (`None` when either is missing).
pub fn membership(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<(Workspace, WsRole)>, DbError> {
    let row: Option<(Workspace, String)> = workspaces::table
        .inner_join(workspace_members::table)
        .filter(workspaces::id.eq(workspace_id))
        .filter(workspace_members::user_id.eq(user_id))
        .select((Workspace::as_select(), workspace_members::role))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(ws, role)| WsRole::parse(&role).map(|r| (ws, r))))
}

/// The claim for `user_id` in `workspace_id`, or `None` if they are not (or no longer) a member.
pub fn claim(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Option<WorkspaceClaim>, DbError> {
    Ok(
        membership(conn, workspace_id, user_id)?.map(|(ws, role)| WorkspaceClaim {
            id: ws.id,
            slug: ws.slug,
            role,
        }),
    )
}

/// Every workspace of `user_id` with their role, personal first, then by name.
pub fn of_user(conn: &mut DbConn, user_id: &str) -> Result<Vec<(Workspace, WsRole)>, DbError> {
    let rows: Vec<(Workspace, String)> = workspaces::table
        .inner_join(workspace_members::table)
        .filter(workspace_members::user_id.eq(user_id))
        .order((
            workspaces::personal_user_id.is_null(),
            workspaces::name,
            workspaces::id,
        ))
        .select((Workspace::as_select(), workspace_members::role))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(ws, role)| WsRole::parse(&role).map(|r| (ws, r)))
        .collect())
}

/// The members of a workspace, owners first.
pub fn members(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<MemberView>, DbError> {
    let rows: Vec<(User, String, NaiveDateTime)> = workspace_members::table
        .inner_join(users::table)
        .filter(workspace_members::workspace_id.eq(workspace_id))
        .order((users::email, users::id))
        .select((
            User::as_select(),
            workspace_members::role,
            workspace_members::created_at,
        ))
        .load(conn)?;
    let mut members: Vec<MemberView> = rows
        .into_iter()
        .filter_map(|(user, role, joined)| {
            Some(MemberView {
                user_id: user.id.clone(),
                email: user.email.clone(),
                display_name: user.display_name.clone(),
                role: WsRole::parse(&role)?,
                joined_at: utc(joined),
            })
        })
        .collect();
    members.sort_by(|a, b| b.role.cmp(&a.role).then_with(|| a.email.cmp(&b.email)));
    Ok(members)
}

/// Serialize changes to a workspace's members: on PostgreSQL a row lock held to the end of
/// the transaction; SQLite's write transaction (`BEGIN IMMEDIATE`) already is one.
pub fn lock(conn: &mut DbConn, workspace_id: &str) -> Result<(), DbError> {
    if let DbConn::Pg(pg) = conn {
        diesel::sql_query("SELECT id FROM workspaces WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(workspace_id)
            .execute(pg)?;
    }
    Ok(())
}

/// A member's pending invitations no longer within their role (after a demotion) end: an
/// admin demoted to member cannot come back as an admin through an invitation sent before.
pub fn revoke_invitations_above(
    conn: &mut DbConn,
    workspace_id: &str,
    inviter: &str,
    role: WsRole,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let allowed: Vec<&str> = WsRole::ALL
        .iter()
        .filter(|r| **r <= role && role.administers())
        .map(|r| r.as_str())
        .collect();
    Ok(diesel::update(
        workspace_invitations::table
            .filter(workspace_invitations::workspace_id.eq(workspace_id))
            .filter(workspace_invitations::invited_by.eq(inviter))
            .filter(workspace_invitations::accepted_at.is_null())
            .filter(workspace_invitations::revoked_at.is_null())
            .filter(workspace_invitations::role.ne_all(allowed)),
    )
    .set(workspace_invitations::revoked_at.eq(now))
    .execute(conn)?)
}

pub fn count_owners(conn: &mut DbConn, workspace_id: &str) -> Result<i64, DbError> {
    Ok(workspace_members::table
        .filter(workspace_members::workspace_id.eq(workspace_id))
        .filter(workspace_members::role.eq(WsRole::Owner.as_str()))
        .count()
        .get_result(conn)?)
}

/// Change a workspace's name, slug or key issuance. `Ok(None)`: the slug is taken.
pub fn update(
    conn: &mut DbConn,
    _allowed: Allowed,
    id: &str,
    name: Option<&str>,
    slug: Option<&str>,
    issuance: Option<KeyIssuance>,
    now: NaiveDateTime,
) -> Result<Option<Workspace>, DbError> {
    let result = crate::db::write_transaction(conn, |c| {
        if let Some(name) = name {
            diesel::update(workspaces::table.find(id))
                .set(workspaces::name.eq(name))
                .execute(c)?;
        }
        if let Some(slug) = slug {
            diesel::update(workspaces::table.find(id))
                .set(workspaces::slug.eq(slug))
                .execute(c)?;
        }
        if let Some(issuance) = issuance {
            diesel::update(workspaces::table.find(id))
                .set(workspaces::key_issuance.eq(issuance.as_str()))
                .execute(c)?;
        }
        diesel::update(workspaces::table.find(id))
            .set(workspaces::updated_at.eq(now))
            .execute(c)?;
        find(c, id)
    });
    match result {
        Ok(ws) => Ok(ws),
        Err(e) if e.is_unique_violation() => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn set_role(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    role: WsRole,
) -> Result<bool, DbError> {
    Ok(
        diesel::update(workspace_members::table.find((workspace_id, user_id)))
            .set(workspace_members::role.eq(role.as_str()))
            .execute(conn)?
            == 1,
    )
}

pub fn add_member(
    conn: &mut DbConn,
    _allowed: Allowed,
    workspace_id: &str,
    user_id: &str,
    role: WsRole,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(workspace_members::table)
        .values((
            workspace_members::workspace_id.eq(workspace_id),
            workspace_members::user_id.eq(user_id),
            workspace_members::role.eq(role.as_str()),
            workspace_members::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// What a member's departure (or demotion) ended: their keys in the workspace, their grants in
/// it, and the tokens exchanged for their keys under their old role.
#[derive(Debug, Default)]
pub struct Departure {
    pub keys_revoked: Vec<String>,
    pub families_revoked: Vec<String>,
    /// Denylisted grants of exchanged tokens (`key.lim….role`), until the last has expired.
    pub exchanges_ended: Vec<(String, NaiveDateTime)>,
}

/// Change a member's role. A demotion narrows what derived from the old rights at once: the
/// apps' grants made in the workspace end (their tokens carry the old role; the user
/// authorizes again), and so do the tokens exchanged for the member's keys there; the keys
/// themselves stay (Gatehouse reads the role at every request).
fn change_role(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    (from, to): (WsRole, WsRole),
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    set_role(conn, workspace_id, user_id, to)?;
    if to >= from {
        return Ok(Departure::default());
    }
    let families = end_families(conn, workspace_id, Some(user_id), now, "member_demoted")?;
    let keys = crate::api_keys::model::live_in_workspace(conn, workspace_id, user_id)?;
    let until = crate::api_keys::model::exchanged_tokens_dead_at(now);
    // Their exchanged tokens carry the old role: the keys' current versions end with them, and
    // the keys get new ones for what they mint from now on.
    let ended: Vec<(String, NaiveDateTime)> = keys
        .iter()
        .map(|k| (crate::api_keys::model::exchange_grant(k), until))
        .collect();
    crate::jwt::denylist::revoke(conn, &ended, now)?;
    let ids: Vec<String> = keys.into_iter().map(|k| k.id).collect();
    crate::api_keys::model::new_limits_version(conn, &ids, now)?;
    Ok(Departure {
        keys_revoked: Vec::new(),
        families_revoked: families,
        exchanges_ended: ended,
    })
}

/// Remove a member: their keys in the workspace are revoked and the apps' grants made in it
/// end (the caller deny-lists the families' access tokens), now, not at their expiry.
fn remove_member(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    let keys = end_keys(conn, workspace_id, Some(user_id), by, now)?;
    let families = end_families(conn, workspace_id, Some(user_id), now, "member_removed")?;
    // Their pending invitations end with their membership.
    diesel::update(
        workspace_invitations::table
            .filter(workspace_invitations::workspace_id.eq(workspace_id))
            .filter(workspace_invitations::invited_by.eq(user_id))
            .filter(workspace_invitations::accepted_at.is_null())
            .filter(workspace_invitations::revoked_at.is_null()),
    )
    .set(workspace_invitations::revoked_at.eq(now))
    .execute(conn)?;
    diesel::delete(workspace_members::table.find((workspace_id, user_id))).execute(conn)?;
    Ok(Departure {
        keys_revoked: keys,
        families_revoked: families,
        exchanges_ended: Vec::new(),
    })
}

/// Why a member's role did not change or the member was not removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRefusal {
    /// Not a member (of this workspace, now), where no role was expected.
    NotMember,
    /// The member's role is no longer the one the decision was made on.
    Changed,
    /// A workspace keeps at least one owner.
    LastOwner,
}

/// Change a member's role, the one way every front door does it (API, pages, CLI): under the
/// workspace's lock and decided on the role as it is now (`expected`: the role the caller's
/// permission was weighed on), so that two owners demoting each other at once leave one owner,
/// not none. A demotion narrows what derived from the old role (`change_role`). The role it
/// changed from, and what ended.
pub fn change_member_role(
    conn: &mut DbConn,
    _allowed: Allowed,
    workspace_id: &str,
    user_id: &str,
    expected: Option<WsRole>,
    to: WsRole,
    now: NaiveDateTime,
) -> Result<Result<(WsRole, Departure), MemberRefusal>, DbError> {
    lock(conn, workspace_id)?;
    let current = role_of(conn, workspace_id, user_id)?;
    let from = match (current, expected) {
        (Some(from), None) => from,
        (Some(from), Some(e)) if from == e => from,
        (None, None) => return Ok(Err(MemberRefusal::NotMember)),
        // Removed or changed since the decision was made.
        _ => return Ok(Err(MemberRefusal::Changed)),
    };
    if from == WsRole::Owner && to != WsRole::Owner && count_owners(conn, workspace_id)? <= 1 {
        return Ok(Err(MemberRefusal::LastOwner));
    }
    let departure = change_role(conn, workspace_id, user_id, (from, to), now)?;
    if from != to {
        revoke_invitations_above(conn, workspace_id, user_id, to, now)?;
    }
    Ok(Ok((from, departure)))
}

/// Remove a member (or let them leave), under the same lock and rule: never the last owner.
/// Their keys in the workspace are revoked and the grants made in it end.
pub fn remove_member_guarded(
    conn: &mut DbConn,
    _allowed: Allowed,
    workspace_id: &str,
    user_id: &str,
    expected: WsRole,
    by: &str,
    now: NaiveDateTime,
) -> Result<Result<Departure, MemberRefusal>, DbError> {
    lock(conn, workspace_id)?;
    if role_of(conn, workspace_id, user_id)? != Some(expected) {
        // Removed or changed since the decision was made.
        return Ok(Err(MemberRefusal::Changed));
    }
    if expected == WsRole::Owner && count_owners(conn, workspace_id)? <= 1 {
        return Ok(Err(MemberRefusal::LastOwner));
    }
    remove_member(conn, workspace_id, user_id, by, now).map(Ok)
}

/// Delete a shared workspace: every key in it is revoked and then deleted with it, every grant
/// made in it ends, its private apps go.
pub fn delete(
    conn: &mut DbConn,
    _allowed: Allowed,
    workspace_id: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<Departure, DbError> {
    let keys = end_keys(conn, workspace_id, None, by, now)?;
    let families = end_families(conn, workspace_id, None, now, "workspace_deleted")?;
    crate::api_keys::model::delete_in_workspace(conn, workspace_id)?;
    diesel::delete(workspaces::table.find(workspace_id)).execute(conn)?;
    Ok(Departure {
        keys_revoked: keys,
        families_revoked: families,
        exchanges_ended: Vec::new(),
    })
}

fn end_keys(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: Option<&str>,
    by: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    crate::api_keys::model::revoke_in_workspace(conn, workspace_id, user_id, by, now)
}

fn end_families(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: Option<&str>,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    crate::grants::revoke_workspace_families(conn, workspace_id, user_id, now, reason)
}

// ---------------------------------------------------------------------------------------------
// Invitations: a link with a one-time token, for one email address, with a role.

/// How long an invitation can be accepted.
pub const INVITATION_LIFETIME: Duration = Duration::days(7);
const INVITATION_PREFIX: &str = "wsi_";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = workspace_invitations)]
pub struct Invitation {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub role: String,
    pub invited_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub accepted_at: Option<NaiveDateTime>,
    pub accepted_by: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
}

/// An invitation as `/v1` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvitationView {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub role: WsRole,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: &'static str,
    pub invited_by: Option<String>,
    pub created_at: String,
    pub expires_at: String,
}

impl Invitation {
    pub fn role(&self) -> WsRole {
        WsRole::parse(&self.role).unwrap_or(WsRole::Member)
    }

    pub fn status(&self, now: NaiveDateTime) -> &'static str {
        if self.accepted_at.is_some() {
            "accepted"
        } else if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at <= now {
            "expired"
        } else {
            "pending"
        }
    }

    pub fn view(&self, now: NaiveDateTime) -> InvitationView {
        InvitationView {
            id: self.id.clone(),
            workspace_id: self.workspace_id.clone(),
            email: self.email.clone(),
            role: self.role(),
            status: self.status(now),
            invited_by: self.invited_by.clone(),
            created_at: utc(self.created_at),
            expires_at: utc(self.expires_at),
        }
    }
}

/// Store an invitation; the token is returned once (only its digest is kept).
#[allow(clippy::too_many_arguments)]
pub fn invite(
    conn: &mut DbConn,
    _allowed: Allowed,
    pepper: &Pepper,
    workspace_id: &str,
    email: &str,
    role: WsRole,
    invited_by: &str,
    now: NaiveDateTime,
) -> Result<(Invitation, PlainSecret), DbError> {
    let id = new_id(IdKind::Invitation);
    let token = PlainSecret::generate(INVITATION_PREFIX);
    diesel::insert_into(workspace_invitations::table)
        .values((
            workspace_invitations::id.eq(&id),
            workspace_invitations::workspace_id.eq(workspace_id),
            workspace_invitations::email.eq(email),
            workspace_invitations::role.eq(role.as_str()),
            workspace_invitations::token_digest.eq(pepper.digest_secret(&token)),
            workspace_invitations::invited_by.eq(invited_by),
            workspace_invitations::created_at.eq(now),
            workspace_invitations::expires_at.eq(now + INVITATION_LIFETIME),
        ))
        .execute(conn)?;
    let invitation = workspace_invitations::table
        .find(&id)
        .select(Invitation::as_select())
        .first(conn)?;
    Ok((invitation, token))
}

pub fn invitations(conn: &mut DbConn, workspace_id: &str) -> Result<Vec<Invitation>, DbError> {
    Ok(workspace_invitations::table
        .filter(workspace_invitations::workspace_id.eq(workspace_id))
        .order(workspace_invitations::created_at.desc())
        .select(Invitation::as_select())
        .load(conn)?)
}

/// Revoke a pending invitation of the workspace. False: none such (or no longer pending).
pub fn revoke_invitation(
    conn: &mut DbConn,
    _allowed: Allowed,
    workspace_id: &str,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        workspace_invitations::table
            .find(id)
            .filter(workspace_invitations::workspace_id.eq(workspace_id))
            .filter(workspace_invitations::accepted_at.is_null())
            .filter(workspace_invitations::revoked_at.is_null()),
    )
    .set(workspace_invitations::revoked_at.eq(now))
    .execute(conn)?
        == 1)
}

/// The invitation a token names, whatever its state.
pub fn find_invitation(
    conn: &mut DbConn,
    pepper: &Pepper,
    token: &str,
) -> Result<Option<Invitation>, DbError> {
    // The checksum is checked first: a mistyped link never reaches the database.
    let Ok(token) = PlainSecret::parse(INVITATION_PREFIX, token.trim()) else {
        return Ok(None);
    };
    let digest = pepper.digest_secret(&token);
    Ok(workspace_invitations::table
        .filter(workspace_invitations::token_digest.eq(digest))
        .select(Invitation::as_select())
        .first(conn)
        .optional()?)
}

/// Why an invitation cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotAccepted {
    /// Unknown, expired, revoked or already used: all look the same to the presenter.
    Invalid,
    /// The invitation is for another email address.
    OtherEmail,
    AlreadyMember,
}

/// Accept: the signed-in user whose email the invitation names joins with its role. The
/// token is spent in the same transaction (a second acceptance finds it used).
pub fn accept(
    conn: &mut DbConn,
    allowed: Allowed,
    pepper: &Pepper,
    token: &str,
    user: &User,
    now: NaiveDateTime,
) -> Result<Result<(Invitation, Workspace), NotAccepted>, DbError> {
    crate::db::write_transaction(conn, |c| {
        let Some(invitation) = find_invitation(c, pepper, token)? else {
            return Ok(Err(NotAccepted::Invalid));
        };
        if invitation.status(now) != "pending" {
            return Ok(Err(NotAccepted::Invalid));
        }
        if !invitation.email.eq_ignore_ascii_case(&user.email) {
            return Ok(Err(NotAccepted::OtherEmail));
        }
        let Some(ws) = find(c, &invitation.workspace_id)? else {
            return Ok(Err(NotAccepted::Invalid));
        };
        if role_of(c, &ws.id, &user.id)?.is_some() {
            return Ok(Err(NotAccepted::AlreadyMember));
        }
        let spent = diesel::update(
            workspace_invitations::table
                .find(&invitation.id)
                .filter(workspace_invitations::accepted_at.is_null()),
        )
        .set((
            workspace_invitations::accepted_at.eq(now),
            workspace_invitations::accepted_by.eq(&user.id),
        ))
        .execute(c)?;
        if spent != 1 {
            return Ok(Err(NotAccepted::Invalid));
        }
        add_member(c, allowed, &ws.id, &user.id, invitation.role(), now)?;
        Ok(Ok((invitation, ws)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_weakest_first() {
        assert!(WsRole::Member < WsRole::Admin && WsRole::Admin < WsRole::Owner);
        assert!(!WsRole::Member.administers());
        assert!(WsRole::Admin.administers() && WsRole::Owner.administers());
        for r in WsRole::ALL {
            assert_eq!(WsRole::parse(r.as_str()), Some(r));
        }
        assert_eq!(WsRole::parse("Owner"), None);
    }

    #[test]
    fn slugs_are_checked_and_made_from_names() {
        assert_eq!(validate_slug("acme-platform").unwrap(), "acme-platform");
        for bad in [
            "ab",
            "-acme",
            "acme-",
            "Acme",
            "acme platform",
            "personal-x1",
            &"a".repeat(41),
        ] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
        assert_eq!(slug_from_name("Acme Platform (EU)"), "acme-platform-eu");
        assert_eq!(slug_from_name("Ω"), "000");
        assert!(validate_slug(&slug_from_name("Personal stuff")).is_ok());
        assert!(validate_slug(&slug_from_name(&"long name ".repeat(10))).is_ok());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(validate_name("  Acme  ").unwrap(), "Acme");
        assert!(validate_name(" ").is_err());
        assert!(validate_name("a\u{7}b").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}
