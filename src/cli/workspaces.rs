//! `gatehouse workspace …`: create shared workspaces, list them, add members and set who issues
//! keys, as the operator (audited with `"via": "cli"`).

use chrono::NaiveDateTime;
use clap::Subcommand;
use gatehouse::audit::{self, Action, Actor};
use gatehouse::clock::{Clock, SystemClock};
use gatehouse::config::Settings;
use gatehouse::db::DbConn;
use gatehouse::workspaces::{self as ws, KeyIssuance, WsRole};
use serde_json::json;

use super::{Failure, find_user};
use gatehouse::app::prepare_connection;

#[derive(Subcommand)]
pub enum WorkspaceCommand {
    /// Create a shared workspace with its first owner.
    Create {
        /// The owner's email.
        #[arg(long)]
        owner: String,
        #[arg(long)]
        name: String,
        /// Default: made from the name.
        #[arg(long)]
        slug: Option<String>,
        /// Only the workspace's admins issue API keys (default: every member their own).
        #[arg(long)]
        admins_issue_keys: bool,
        #[arg(long)]
        json: bool,
    },
    /// List a user's workspaces with their role.
    List {
        #[arg(long)]
        user: String,
        #[arg(long)]
        json: bool,
    },
    /// Add a user to a workspace, or change their role there.
    AddMember {
        /// Workspace id or slug.
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        user: String,
        /// owner, admin or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// List a workspace's members.
    Members {
        #[arg(long)]
        workspace: String,
        #[arg(long)]
        json: bool,
    },
}

/// The workspace a key for `owner_id` acts in: the one named (id or slug, where the owner must
/// be a member), else the owner's personal workspace.
pub fn member_workspace(
    conn: &mut DbConn,
    named: Option<&str>,
    owner_id: &str,
) -> Result<String, Failure> {
    let workspace = match named {
        Some(name) => ws::find_by_id_or_slug(conn, name)?
            .ok_or_else(|| Failure(format!("no workspace {name}"), 3))?,
        None => ws::personal_of(conn, owner_id)?
            .ok_or_else(|| Failure("the user has no personal workspace".into(), 1))?,
    };
    if ws::role_of(conn, &workspace.id, owner_id)?.is_none() {
        return Err(Failure(
            format!(
                "--workspace: the user is not a member of {}",
                workspace.slug
            ),
            2,
        ));
    }
    Ok(workspace.id)
}

fn find_workspace(conn: &mut DbConn, name: &str) -> Result<ws::Workspace, Failure> {
    ws::find_by_id_or_slug(conn, name)?.ok_or_else(|| Failure(format!("no workspace {name}"), 3))
}

pub fn workspace_command(settings: &Settings, command: WorkspaceCommand) -> Result<(), Failure> {
    let (mut conn, _, _) = prepare_connection(settings)?;
    let now = SystemClock.now();
    let conn = &mut conn;
    match command {
        WorkspaceCommand::Create {
            owner,
            name,
            slug,
            admins_issue_keys,
            json,
        } => create(conn, now, &owner, &name, slug, admins_issue_keys, json),
        WorkspaceCommand::List { user, json } => list(conn, &user, json),
        WorkspaceCommand::AddMember {
            workspace,
            user,
            role,
        } => add_member(conn, now, &workspace, &user, &role),
        WorkspaceCommand::Members { workspace, json } => members(conn, &workspace, json),
    }
}

/// A shared workspace owned by `--owner`.
fn create(
    conn: &mut DbConn,
    now: NaiveDateTime,
    owner: &str,
    name: &str,
    slug: Option<String>,
    admins_issue_keys: bool,
    json: bool,
) -> Result<(), Failure> {
    let owner = find_user(conn, "--owner", owner)?;
    let name = ws::validate_name(name).map_err(|e| Failure(format!("--name: {}", e.message), 2))?;
    let slug = match slug {
        Some(s) => ws::validate_slug(&s),
        None => ws::validate_slug(&ws::slug_from_name(&name)),
    }
    .map_err(|e| Failure(format!("--slug: {}", e.message), 2))?;
    let allowed = super::as_operator(gatehouse::policy::Action::CreateWorkspace)?;
    let created = gatehouse::db::write_transaction(conn, |c| {
        let Some(mut created) = ws::create_shared(c, allowed, &name, &slug, &owner.id, now)? else {
            return Ok(None);
        };
        if admins_issue_keys {
            created = ws::update(
                c,
                allowed,
                &created.id,
                None,
                None,
                Some(KeyIssuance::Admins),
                now,
            )?
            .unwrap_or(created);
        }
        let mut event = Actor::operator().event(Action::WorkspaceCreated);
        event.subject_user_id = Some(owner.id.clone());
        event.workspace_id = Some(created.id.clone());
        event.details = json!({ "name": created.name, "slug": created.slug });
        audit::record(c, &event, now)?;
        Ok::<_, gatehouse::db::DbError>(Some(created))
    })?
    .ok_or_else(|| Failure(format!("--slug: {slug} is taken"), 2))?;
    if json {
        println!(
            "{}",
            serde_json::to_string(&created.view(Some(WsRole::Owner)))?
        );
    } else {
        println!("{}\t{}\t{}", created.id, created.slug, created.name);
    }
    Ok(())
}

fn list(conn: &mut DbConn, user: &str, json: bool) -> Result<(), Failure> {
    let user = find_user(conn, "--user", user)?;
    let list = ws::of_user(conn, &user.id)?;
    if json {
        let views: Vec<_> = list.iter().map(|(w, r)| w.view(Some(*r))).collect();
        println!("{}", serde_json::to_string(&views)?);
    } else {
        for (w, role) in list {
            println!("{}\t{}\t{}\t{}", w.id, w.slug, role.as_str(), w.name);
        }
    }
    Ok(())
}

/// Add a member, or change their role: under the workspace's lock and the last-owner rule,
/// as the API does.
fn add_member(
    conn: &mut DbConn,
    now: NaiveDateTime,
    workspace: &str,
    user: &str,
    role: &str,
) -> Result<(), Failure> {
    let workspace = find_workspace(conn, workspace)?;
    let user = find_user(conn, "--user", user)?;
    let role =
        WsRole::parse(role).ok_or_else(|| Failure("--role: owner, admin or member".into(), 2))?;
    if workspace.is_personal() {
        return Err(Failure("a personal workspace has only its user".into(), 2));
    }
    gatehouse::db::write_transaction(conn, |c| {
        // The operator may; the policy still says so, and the rule and the lock are
        // the API's (`change_member_role`).
        let allowed = match super::as_operator(gatehouse::policy::Action::ChangeMemberRole {
            workspace: gatehouse::policy::InWorkspace {
                id: &workspace.id,
                role: None,
                issuance: workspace.issuance(),
            },
            from: WsRole::Owner,
            to: role,
        }) {
            Ok(allowed) => allowed,
            Err(refused) => return Ok(Err(refused)),
        };
        let changed = ws::change_member_role(c, allowed, &workspace.id, &user.id, None, role, now)?;
        let (action, before) = match changed {
            Ok((from, _)) => (Action::MemberRoleChanged, Some(from)),
            Err(ws::MemberRefusal::NotMember) => {
                ws::add_member(c, allowed, &workspace.id, &user.id, role, now)?;
                (Action::MemberJoined, None)
            }
            Err(_) => {
                return Ok(Err(Failure(
                    "the workspace would have no owner left".into(),
                    2,
                )));
            }
        };
        let mut event = Actor::operator().event(action);
        event.subject_user_id = Some(user.id.clone());
        event.workspace_id = Some(workspace.id.clone());
        event.details = json!({ "role": role.as_str(), "from": before.map(WsRole::as_str) });
        audit::record(c, &event, now)?;
        Ok::<_, gatehouse::db::DbError>(Ok(()))
    })??;
    println!("{} is {} of {}", user.email, role.as_str(), workspace.slug);
    Ok(())
}

fn members(conn: &mut DbConn, workspace: &str, json: bool) -> Result<(), Failure> {
    let workspace = find_workspace(conn, workspace)?;
    let members = ws::members(conn, &workspace.id)?;
    if json {
        println!("{}", serde_json::to_string(&members)?);
    } else {
        for m in members {
            println!("{}\t{}\t{}", m.user_id, m.role.as_str(), m.email);
        }
    }
    Ok(())
}
