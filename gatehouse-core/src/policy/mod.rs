//! Who may do what, decided here and nowhere else. Every `/v1` route, page action, OAuth
//! endpoint and CLI command that reads, creates, changes or revokes something describes its
//! caller (`Caller`) and what it wants (`Action`) and asks `authorize`; the `Allowed` it gets
//! back is what the service function requires, so code without it cannot reach the operation.
//!
//! The rule: role **and** scope apply to every caller. A session or a secret key holds every
//! scope its user's role allows; a restricted key, an app's access token or an app itself
//! holds only its scopes, and an admin's role counts only within them. Admin capabilities
//! (other users, the audit log, every app, first-party apps, introspection of everything)
//! need their own admin-only scope as well as the role.
//!
//! Whatever a caller mints or changes is bounded by `attenuate` (never more than the caller).

pub mod attenuate;
pub mod grantable;

use chrono::NaiveDateTime;
use ipnet::IpNet;

use crate::api_keys::format::{Kind, Mode};
use crate::scopes::{Builtin, ScopeSet};
use crate::workspaces::roles::{KeyIssuance, WsRole};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Member,
    Admin,
}

impl Role {
    /// A user's role as the policy weighs it.
    pub fn of(is_admin: bool) -> Role {
        if is_admin { Role::Admin } else { Role::Member }
    }
}

/// How the caller proved who they are, as far as rights go.
#[derive(Debug, Clone, Copy)]
pub enum Via<'a> {
    /// A signed-in browser: every right of the user's role.
    Session,
    /// The operator at the command line (`gatehouse …`): an administrator with every scope.
    Operator,
    /// An API key: a secret key holds every scope of its owner's role, a restricted key only
    /// its own; both are bounded by their mode, expiry, allowlist and rate limit.
    Key(KeyBounds<'a>),
    /// An app's access token acting for the user, within its scopes and until it expires.
    AppToken {
        client_id: &'a str,
        scopes: &'a ScopeSet,
        expires_at: NaiveDateTime,
    },
    /// A monitoring system that presented the metrics token (or reached the separate metrics
    /// address): it reads metrics and nothing else.
    Scraper,
    /// An OAuth client acting as itself (client authentication, client_credentials).
    App {
        client_id: &'a str,
        scopes: &'a ScopeSet,
    },
}

/// What an API key is, as the policy weighs it.
#[derive(Debug, Clone, Copy)]
pub struct KeyBounds<'a> {
    pub key_id: &'a str,
    pub kind: Kind,
    pub mode: Mode,
    pub scopes: &'a ScopeSet,
    pub expires_at: Option<NaiveDateTime>,
    pub nets: &'a [IpNet],
    pub rate_limit_per_minute: Option<i64>,
    /// Referrer and endpoint lists (empty: none).
    pub restrictions: &'a gatehouse_verify::restrictions::Restrictions,
}

/// Who asks. Made only by the constructors below, each from what a credential proved: the
/// operator's and the scraper's by name, a session's, and a credential bound to one workspace
/// (or none). Nobody outside the policy room writes one field by field, so no handler can
/// make a caller broader than its credential (and with it an `Allowed`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The user acting (`None` for an app acting as itself).
    pub(in crate::policy) user_id: Option<&'a str>,
    pub(in crate::policy) role: Role,
    pub(in crate::policy) via: Via<'a>,
    /// The workspace the credential acts in: an API key's, an authorization's (the token's
    /// `workspace` claim), a private app's. It reaches that workspace's things only.
    pub(in crate::policy) workspace: Reach<'a>,
}

/// A credential bound to one workspace (or none): what `Caller::bound` accepts. Sessions, the
/// operator and the scraper have constructors of their own.
#[derive(Debug, Clone, Copy)]
pub enum Bound<'a> {
    /// An API key (or a token exchanged for one).
    Key(KeyBounds<'a>),
    /// An app's access token acting for the user.
    AppToken {
        client_id: &'a str,
        scopes: &'a ScopeSet,
        expires_at: NaiveDateTime,
    },
    /// An OAuth client acting as itself.
    App {
        client_id: &'a str,
        scopes: &'a ScopeSet,
    },
}

impl Caller<'static> {
    /// The operator at the command line: an administrator with every scope, everywhere. The
    /// command line only (a test holds it there).
    pub fn operator() -> Caller<'static> {
        Caller {
            user_id: None,
            role: Role::Admin,
            via: Via::Operator,
            workspace: Reach::Everywhere,
        }
    }

    /// A monitoring system that proved the metrics token: it reads metrics, nothing else.
    pub const fn scraper() -> Caller<'static> {
        Caller {
            user_id: None,
            role: Role::Member,
            via: Via::Scraper,
            workspace: Reach::Nowhere,
        }
    }
}

impl<'a> Caller<'a> {
    /// A signed-in browser of `user_id`: every right of their role, in every workspace of theirs.
    pub fn session(user_id: &'a str, role: Role) -> Caller<'a> {
        Caller {
            user_id: Some(user_id),
            role,
            via: Via::Session,
            workspace: Reach::Everywhere,
        }
    }

    /// A credential bound to `workspace` (id, personal), or to none: it reaches that
    /// workspace's things only (none: nothing of any workspace, nor the user's account).
    pub fn bound(
        user_id: Option<&'a str>,
        role: Role,
        credential: Bound<'a>,
        workspace: Option<(&'a str, bool)>,
    ) -> Caller<'a> {
        let via = match credential {
            Bound::Key(bounds) => Via::Key(bounds),
            Bound::AppToken {
                client_id,
                scopes,
                expires_at,
            } => Via::AppToken {
                client_id,
                scopes,
                expires_at,
            },
            Bound::App { client_id, scopes } => Via::App { client_id, scopes },
        };
        Caller {
            user_id,
            role,
            via,
            workspace: workspace.map_or(Reach::Nowhere, |(id, personal)| Reach::Workspace {
                id,
                personal,
            }),
        }
    }

    /// The user acting (`None`: an app acting as itself, the operator, the scraper).
    pub fn user_id(&self) -> Option<&'a str> {
        self.user_id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn via(&self) -> Via<'a> {
        self.via
    }

    /// Where the credential reaches.
    pub fn reach(&self) -> Reach<'a> {
        self.workspace
    }
}

/// Where a credential reaches. There is no "no workspace" that means everywhere: only a
/// signed-in browser and the operator act in every workspace of the user; every other
/// credential is bound to one, and a user's credential that names none reaches none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach<'a> {
    /// A session or the operator: every workspace the user belongs to.
    Everywhere,
    /// A credential bound to one workspace (`personal`: the user's own personal workspace).
    Workspace { id: &'a str, personal: bool },
    /// A user's credential that names no workspace (a token from before workspaces): it
    /// reaches no workspace's things, nor the user's account.
    Nowhere,
}

impl<'a> Reach<'a> {
    /// The workspace a listing is confined to (`None`: every one the caller may see).
    pub fn bound(self) -> Option<&'a str> {
        match self {
            Reach::Everywhere => None,
            Reach::Workspace { id, .. } => Some(id),
            // Matches no workspace id (ids are never empty).
            Reach::Nowhere => Some(""),
        }
    }

    /// A session, the operator, or a credential of the user's personal workspace: it speaks
    /// for the user's account itself (profile, personal apps, an administrator's oversight).
    pub fn speaks_for_the_account(self) -> bool {
        matches!(
            self,
            Reach::Everywhere | Reach::Workspace { personal: true, .. }
        )
    }
}

/// A workspace as an action on it is weighed: the caller's role in it, read from the database
/// for this request (never from a token, whose copy may be stale).
#[derive(Debug, Clone, Copy)]
pub struct InWorkspace<'a> {
    pub id: &'a str,
    /// The caller's role (`None`: not a member).
    pub role: Option<WsRole>,
    pub issuance: KeyIssuance,
}

/// Who controls an app: its owning workspace (`None`: the install's own app — registered by
/// itself or a metadata document), with the caller's role there, and the user who registered
/// it. Who may *authorize* it is another question (anyone, or a private app's members).
#[derive(Debug, Clone, Copy)]
pub struct AppOwner<'a> {
    pub workspace: Option<InWorkspace<'a>>,
    pub registrant: Option<&'a str>,
    /// The app holds what only the install grants: an admin-only scope, first-party standing
    /// or resource bindings. Changing it (its secret, redirect URIs, grants…) would hand that
    /// on, so it is the install's administrators' (`admin:clients`) whoever else controls it.
    pub privileged: bool,
}

/// What the caller wants to do, to what.
#[derive(Debug, Clone, Copy)]
pub enum Action<'a> {
    ReadProfile,
    /// Change one's own profile or password: the account, not a workspace's thing.
    UpdateProfile,
    /// List users: everyone for admins holding `admin:users`, otherwise oneself.
    ListUsers,
    ReadUser {
        id: &'a str,
    },
    CreateUser,
    /// Disable, enable or change the role of a user.
    ManageUser {
        id: &'a str,
    },
    /// Read `owner`'s keys: one key (`workspace`: the key's), or a listing (`None`; a
    /// credential bound to a workspace lists that workspace's keys only).
    ReadKeys {
        owner: &'a str,
        workspace: Option<&'a str>,
    },
    /// Mint a key (create or roll) for `owner` in a workspace.
    MintKey {
        owner: &'a str,
        workspace: InWorkspace<'a>,
    },
    /// Change (PATCH) or roll an existing key: it must be no broader than the caller. A roll
    /// issues a key (`roll`: the key's workspace, weighed as for [`Action::MintKey`]).
    ChangeKey {
        owner: &'a str,
        workspace: &'a str,
        key: attenuate::KeyShape<'a>,
        roll: Option<InWorkspace<'a>>,
    },
    RevokeKey {
        owner: &'a str,
        workspace: &'a str,
    },
    /// List the caller's workspaces.
    ListWorkspaces,
    /// Create a workspace (owned by the caller): the account's, like joining one.
    CreateWorkspace,
    /// Accept an invitation (the invitation itself decides which workspace and role).
    JoinWorkspace,
    /// See a workspace and its members.
    ReadWorkspace(InWorkspace<'a>),
    /// Rename it, change who issues keys, invite, see invitations.
    ManageWorkspace(InWorkspace<'a>),
    /// Invite someone with `role`.
    Invite {
        workspace: InWorkspace<'a>,
        role: WsRole,
    },
    /// Change a member's role from `from` to `to`.
    ChangeMemberRole {
        workspace: InWorkspace<'a>,
        from: WsRole,
        to: WsRole,
    },
    /// Remove a member whose role is `member_role` (oneself: leave).
    RemoveMember {
        workspace: InWorkspace<'a>,
        member: &'a str,
        member_role: WsRole,
    },
    DeleteWorkspace(InWorkspace<'a>),
    /// A workspace admin reads every member's keys in the workspace.
    ReadWorkspaceKeys(InWorkspace<'a>),
    /// A workspace admin issues a key to a member (`member_role`: `None` if not a member).
    IssueMemberKey {
        workspace: InWorkspace<'a>,
        member_role: Option<WsRole>,
        /// The member administers the install: their keys may hold admin-only scopes.
        member_is_install_admin: bool,
    },
    /// A workspace admin revokes a member's key in the workspace.
    /// `owner_role`: the key owner's role there (`None`: no longer a member).
    RevokeMemberKey {
        workspace: InWorkspace<'a>,
        owner_role: Option<WsRole>,
    },
    /// A workspace's audit events.
    ReadWorkspaceAudit(InWorkspace<'a>),
    ReadAuditLog,
    /// See one app.
    ReadClients(AppOwner<'a>),
    /// List the apps one controls (the listing is confined to the credential's workspace).
    ListOwnClients,
    ListAllClients,
    RegisterClient,
    ChangeClient(AppOwner<'a>),
    /// First-party marking, lifting an administrator's lock, resource bindings.
    AdministerClients,
    ReadConsents,
    WriteConsents,
    /// Introspect or revoke credentials that are not the caller's own.
    InspectAnyCredential,
    /// RFC 7009: revoke a credential of `user_id`, issued to `client_id` (`None` for API keys).
    /// Its own user may, with any credential of theirs (a leaked key can revoke itself), as
    /// may the app it was issued to, and holders of `introspect`.
    RevokeCredential {
        user_id: &'a str,
        client_id: Option<&'a str>,
    },
    /// Read the Prometheus metrics: the operator's monitoring only, never a user's credential
    /// (they tell about every user's traffic).
    ReadMetrics,
    /// OpenID Connect UserInfo: the claims an app's access token with `openid` may read about
    /// its user. Only an app's access token asks (RFC 6750 bearer), never a key or a session.
    ReadUserInfo,
}

/// Proof that the policy allowed an action; the services that change state take it. Only this
/// room makes one (its field is private): a handler cannot forge it.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// For listings: the caller sees everyone's, not only their own.
    everyone: bool,
}

impl Allowed {
    /// For listings: the caller sees everyone's, not only their own.
    pub fn everyone(self) -> bool {
        self.everyone
    }
}

/// Why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The target is someone else's and the caller may not know it exists.
    NotFound(&'static str),
    /// The caller's credential lacks this scope.
    MissingScope(Builtin),
    /// The action needs an administrator.
    AdminOnly,
    /// The result or the target would be broader than the caller (attenuation).
    Broader(String),
    /// Something this kind of credential never does.
    NotWith(&'static str),
    /// The workspace lets only its admins issue keys.
    AdminsIssueKeys,
    /// The action needs a stronger role in the workspace.
    WorkspaceRole(WsRole),
}

impl Caller<'_> {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// An administrator of the install acting as one: their role counts beyond their own
    /// things only from a session, the operator or a credential of their personal workspace.
    /// A credential bound to a shared workspace is a member's there, whoever holds it (a
    /// workspace admin may have issued it and seen it).
    fn oversees_install(&self) -> bool {
        self.is_admin() && self.workspace.speaks_for_the_account()
    }

    /// An administrator holding `admin:users`: the install's oversight of every user and
    /// workspace.
    fn oversees_users(&self) -> bool {
        self.holds(Builtin::AdminUsers)
    }

    fn is_self(&self, id: &str) -> bool {
        self.user_id == Some(id)
    }

    /// Whether the caller holds a built-in scope: its role allows it and its credential
    /// carries it.
    pub fn holds(&self, scope: Builtin) -> bool {
        self.holds_name(scope.as_str(), scope.admin_only())
    }

    /// Whether the caller holds a registered scope (`admin_only` as the registry says).
    pub fn holds_name(&self, scope: &str, admin_only: bool) -> bool {
        let admin_only = admin_only || Builtin::parse(scope).is_some_and(Builtin::admin_only);
        match self.via {
            // An app's own scopes were bounded by its registrant's rights when set.
            Via::App { scopes, .. } => scopes.contains(scope),
            Via::Scraper => false,
            _ if admin_only && !self.oversees_install() => false,
            Via::Session | Via::Operator => true,
            Via::Key(k) if k.kind == Kind::Secret => true,
            Via::Key(k) => k.scopes.contains(scope),
            Via::AppToken { scopes, .. } => scopes.contains(scope),
        }
    }

    fn need(&self, scope: Builtin) -> Result<(), Denied> {
        if self.holds(scope) {
            Ok(())
        } else if scope.admin_only()
            && !self.oversees_install()
            && !matches!(self.via, Via::App { .. })
        {
            Err(Denied::AdminOnly)
        } else {
            Err(Denied::MissingScope(scope))
        }
    }

    /// Acting on another user's things: an administrator holding `admin_scope`. Members are
    /// told the target does not exist.
    fn on_other(&self, admin_scope: Builtin, what: &'static str) -> Result<(), Denied> {
        if !self.oversees_install() {
            return Err(Denied::NotFound(what));
        }
        self.need(admin_scope)
    }

    /// Acting on `owner`'s things with `scope`; others' need `admin_scope` too.
    fn own_or_admin(
        &self,
        owner: &str,
        scope: Builtin,
        admin_scope: Builtin,
        what: &'static str,
    ) -> Result<(), Denied> {
        self.need(scope)?;
        if !self.is_self(owner) {
            self.on_other(admin_scope, what)?;
        }
        Ok(())
    }

    /// A credential bound to a workspace reaches nothing outside it: another workspace's
    /// things do not exist for it.
    fn within(&self, workspace: &str, what: &'static str) -> Result<(), Denied> {
        match self.workspace {
            Reach::Everywhere => Ok(()),
            Reach::Workspace { id, .. } if id == workspace => Ok(()),
            Reach::Workspace { .. } | Reach::Nowhere => Err(Denied::NotFound(what)),
        }
    }

    /// The user's account itself (profile, password, sessions): a session, the operator or a
    /// credential of the personal workspace — never one bound to a shared workspace.
    fn on_account(&self) -> Result<(), Denied> {
        if self.workspace.speaks_for_the_account() {
            Ok(())
        } else {
            Err(Denied::NotWith(
                "This credential acts in a shared workspace: it cannot change the user's account (use a session or a key of the personal workspace)",
            ))
        }
    }

    /// Control of an app (see, change, rotate, disable, delete): its owning workspace's admins
    /// and owners, and its registrant while still a member there; an app of the install's
    /// (self-registered, a metadata document) or another workspace's: administrators holding
    /// `admin:clients` only. A credential bound to a workspace controls that workspace's apps.
    fn controls_app(&self, app: &AppOwner, scope: Builtin) -> Result<(), Denied> {
        self.need(scope)?;
        if app.workspace.is_none() {
            return self.on_other(Builtin::AdminClients, "Client");
        }
        if controls_through_workspace(self, app) {
            if app.privileged
                && scope == Builtin::WriteClients
                && !self.holds(Builtin::AdminClients)
            {
                return Err(Denied::NotWith(
                    "This app holds what only the install grants (an admin-only scope, first-party standing or resources): only an administrator holding admin:clients changes it",
                ));
            }
            return Ok(());
        }
        // Another workspace's app: the install's oversight, else it does not exist.
        if self.holds(Builtin::AdminClients) {
            Ok(())
        } else {
            Err(Denied::NotFound("Client"))
        }
    }

    /// The caller's role in a workspace, for an action needing `at_least`: members see only
    /// their own workspaces (others do not exist), weaker roles are told what they lack. An
    /// administrator of the install holding `admin:users` acts in any workspace as its owner
    /// (the operator's oversight), unless their credential is bound to another workspace.
    fn in_workspace(&self, ws: &InWorkspace, at_least: WsRole) -> Result<WsRole, Denied> {
        self.within(ws.id, "Workspace")?;
        let role = match ws.role {
            _ if self.oversees_users() => WsRole::Owner,
            Some(role) => role,
            None => return Err(Denied::NotFound("Workspace")),
        };
        if role < at_least {
            return Err(Denied::WorkspaceRole(at_least));
        }
        Ok(role)
    }

    /// One's own key acts in a workspace one is a member of (no oversight role stands in for
    /// membership here), and where only admins issue keys, only they mint (create or roll).
    fn issues_own_key_in(&self, workspace: &InWorkspace) -> Result<(), Denied> {
        self.within(workspace.id, "Workspace")?;
        let role = workspace.role.ok_or(Denied::NotFound("Workspace"))?;
        if workspace.issuance == KeyIssuance::Admins && !role.administers() {
            return Err(Denied::AdminsIssueKeys);
        }
        Ok(())
    }

    /// Users' own resources have a user behind the call; an app acting as itself has none.
    fn need_user(&self) -> Result<(), Denied> {
        match self.via {
            Via::App { .. } => Err(Denied::NotWith(
                "A client_credentials token acts for an app, not a user: the Gatehouse API needs a user's token",
            )),
            _ => Ok(()),
        }
    }

    /// Minting credentials is for the user's own credentials, never for an app acting for
    /// them: a key would outlive the grant it came from.
    fn need_minting_credential(&self) -> Result<(), Denied> {
        match self.via {
            Via::AppToken { .. } => Err(Denied::NotWith(
                "An app's access token cannot create, roll or change API keys: use the user's own key or session",
            )),
            _ => Ok(()),
        }
    }
}

const ONLY_OWN: Allowed = Allowed { everyone: false };

/// The role above `role` (owners have none above: owner).
fn next_above(role: WsRole) -> WsRole {
    match role {
        WsRole::Member => WsRole::Admin,
        WsRole::Admin | WsRole::Owner => WsRole::Owner,
    }
}

/// Whether `caller` controls the app through its workspace (a role there, or as its registrant
/// while a member), not only through the install's oversight: what an administrator's
/// disabling locks (only an administrator enables it again) and a workspace's does not.
pub fn controls_through_workspace(caller: &Caller, app: &AppOwner) -> bool {
    let Some(ws) = app.workspace else {
        return false;
    };
    caller.within(ws.id, "Client").is_ok()
        && match ws.role {
            Some(role) if role.administers() => true,
            Some(_) => app.registrant.is_some_and(|r| caller.is_self(r)),
            None => false,
        }
}

/// Whether `caller` may enable `app` again, which `disabled_by` disabled (not an
/// administrator's lock, which only `admin:clients` lifts): whoever disabled it, its
/// workspace's admins and owners, or the install's oversight — not a registrant who is only a
/// member there, over an admin's decision.
pub fn may_enable(caller: &Caller, app: &AppOwner, disabled_by: Option<&str>) -> bool {
    let administers = app.workspace.is_some_and(|ws| {
        caller.within(ws.id, "Client").is_ok() && ws.role.is_some_and(WsRole::administers)
    });
    administers
        || disabled_by.is_some_and(|by| caller.is_self(by))
        || caller.holds(Builtin::AdminClients)
}

/// May `caller` do `action`? The one place where roles and scopes are compared.
pub fn authorize(caller: &Caller, action: Action) -> Result<Allowed, Denied> {
    use Builtin as S;
    if matches!(action, Action::ReadMetrics) || matches!(caller.via, Via::Scraper) {
        return match (caller.via, action) {
            (Via::Scraper | Via::Operator, Action::ReadMetrics) => Ok(ONLY_OWN),
            (Via::Scraper, _) => Err(Denied::NotWith("The metrics token reads metrics only")),
            _ => Err(Denied::NotWith(
                "Metrics are read with the metrics token (GATEHOUSE_METRICS_TOKEN), not a user's credential",
            )),
        };
    }
    if !matches!(
        action,
        Action::InspectAnyCredential | Action::RevokeCredential { .. }
    ) {
        caller.need_user()?;
    }
    match action {
        Action::ReadProfile => caller.need(S::ReadUsers).map(|()| ONLY_OWN),
        Action::UpdateProfile => {
            caller.need(S::WriteProfile)?;
            caller.on_account().map(|()| ONLY_OWN)
        }
        Action::ListUsers => {
            caller.need(S::ReadUsers)?;
            Ok(Allowed {
                everyone: caller.oversees_users(),
            })
        }
        Action::ReadUser { id } => caller
            .own_or_admin(id, S::ReadUsers, S::AdminUsers, "User")
            .map(|()| ONLY_OWN),
        Action::CreateUser => caller.need(S::WriteUsers).map(|()| ONLY_OWN),
        // Whether an administrator may disable themselves is the page's rule (a clear 400), not
        // a question of rights.
        Action::ManageUser { .. } => caller.need(S::WriteUsers).map(|()| ONLY_OWN),
        Action::ReadKeys { owner, workspace } => {
            caller.own_or_admin(owner, S::ReadApiKeys, S::AdminUsers, "User")?;
            if caller.is_self(owner)
                && let Some(ws) = workspace
            {
                caller.within(ws, "API key")?;
            }
            Ok(ONLY_OWN)
        }
        Action::MintKey { owner, workspace } => {
            caller.own_or_admin(owner, S::WriteApiKeys, S::AdminUsers, "User")?;
            caller.need_minting_credential()?;
            if caller.is_self(owner) {
                caller.issues_own_key_in(&workspace)?;
            }
            Ok(ONLY_OWN)
        }
        Action::ChangeKey {
            owner,
            workspace,
            key,
            roll,
        } => {
            caller.own_or_admin(owner, S::WriteApiKeys, S::AdminUsers, "API key")?;
            if caller.is_self(owner) {
                caller.within(workspace, "API key")?;
                if let Some(ws) = roll {
                    caller.issues_own_key_in(&ws)?;
                }
            }
            caller.need_minting_credential()?;
            attenuate::admits(&attenuate::bounds(caller), &key).map_err(|why| {
                Denied::Broader(format!(
                    "This key is broader than the credential you are using ({why}): use a credential that holds at least as much"
                ))
            })?;
            Ok(ONLY_OWN)
        }
        Action::RevokeKey { owner, workspace } => {
            caller.own_or_admin(owner, S::WriteApiKeys, S::AdminUsers, "API key")?;
            if caller.is_self(owner) {
                caller.within(workspace, "API key")?;
            }
            Ok(ONLY_OWN)
        }
        Action::ListWorkspaces => caller.need(S::ReadWorkspaces).map(|()| ONLY_OWN),
        // Memberships are the account's: a credential of a shared workspace neither creates
        // workspaces for the user nor joins them to others.
        Action::CreateWorkspace | Action::JoinWorkspace => {
            caller.need(S::WriteWorkspaces)?;
            caller.on_account().map(|()| ONLY_OWN)
        }
        Action::ReadWorkspace(ws) => {
            caller.need(S::ReadWorkspaces)?;
            caller.in_workspace(&ws, WsRole::Member).map(|_| ONLY_OWN)
        }
        Action::ManageWorkspace(ws) => {
            caller.need(S::WriteWorkspaces)?;
            caller.in_workspace(&ws, WsRole::Admin).map(|_| ONLY_OWN)
        }
        Action::Invite { workspace, role } => {
            caller.need(S::WriteWorkspaces)?;
            let mine = caller.in_workspace(&workspace, WsRole::Admin)?;
            if role > mine {
                return Err(Denied::WorkspaceRole(role));
            }
            Ok(ONLY_OWN)
        }
        Action::ChangeMemberRole {
            workspace,
            from,
            to,
        } => {
            caller.need(S::WriteWorkspaces)?;
            // Never above one's own role, and never over a stronger member.
            let mine = caller.in_workspace(&workspace, WsRole::Admin)?;
            if from.max(to) > mine {
                return Err(Denied::WorkspaceRole(from.max(to)));
            }
            Ok(ONLY_OWN)
        }
        Action::RemoveMember {
            workspace,
            member,
            member_role,
        } => {
            caller.need(S::WriteWorkspaces)?;
            if caller.is_self(member) {
                // Leaving needs no rank.
                return caller
                    .in_workspace(&workspace, WsRole::Member)
                    .map(|_| ONLY_OWN);
            }
            let mine = caller.in_workspace(&workspace, WsRole::Admin)?;
            if member_role > mine {
                return Err(Denied::WorkspaceRole(member_role));
            }
            Ok(ONLY_OWN)
        }
        Action::DeleteWorkspace(ws) => {
            caller.need(S::WriteWorkspaces)?;
            caller.in_workspace(&ws, WsRole::Owner).map(|_| ONLY_OWN)
        }
        Action::ReadWorkspaceKeys(ws) => {
            caller.need(S::ReadApiKeys)?;
            caller
                .in_workspace(&ws, WsRole::Admin)
                .map(|_| Allowed { everyone: true })
        }
        Action::IssueMemberKey {
            workspace,
            member_role,
            member_is_install_admin,
        } => {
            caller.need(S::WriteApiKeys)?;
            caller.need_minting_credential()?;
            let mine = caller.in_workspace(&workspace, WsRole::Admin)?;
            let Some(theirs) = member_role else {
                return Err(Denied::NotFound("Member"));
            };
            // The issuer sees the key: it is issued only to weaker members (an owner to admins
            // and members, an admin to members), never to an administrator of the install by
            // someone who is not one.
            // The install's oversight stands in for the rank only with `admin:users` held.
            if theirs >= mine && !caller.oversees_users() {
                return Err(Denied::WorkspaceRole(WsRole::Owner.min(next_above(theirs))));
            }
            if member_is_install_admin && !caller.oversees_users() {
                return Err(Denied::AdminOnly);
            }
            Ok(ONLY_OWN)
        }
        Action::RevokeMemberKey {
            workspace,
            owner_role,
        } => {
            caller.need(S::WriteApiKeys)?;
            let mine = caller.in_workspace(&workspace, WsRole::Admin)?;
            // Never over a stronger member (a former member's key: any admin).
            if let Some(theirs) = owner_role
                && theirs > mine
            {
                return Err(Denied::WorkspaceRole(theirs));
            }
            Ok(ONLY_OWN)
        }
        Action::ReadWorkspaceAudit(ws) => {
            caller.need(S::ReadWorkspaces)?;
            caller
                .in_workspace(&ws, WsRole::Admin)
                .map(|_| Allowed { everyone: true })
        }
        Action::ReadAuditLog => caller.need(S::ReadAudit).map(|()| ONLY_OWN),
        Action::ReadClients(app) => caller.controls_app(&app, S::ReadClients).map(|()| ONLY_OWN),
        Action::ListOwnClients => caller.need(S::ReadClients).map(|()| ONLY_OWN),
        Action::ListAllClients => {
            caller.need(S::ReadClients)?;
            caller.need(S::AdminClients)?;
            Ok(Allowed { everyone: true })
        }
        Action::RegisterClient => {
            caller.need(S::WriteClients)?;
            // A user's token that names no workspace has nowhere to register an app.
            if caller.workspace == Reach::Nowhere {
                return Err(Denied::NotWith(
                    "This token acts in no workspace: register apps with a session or a key",
                ));
            }
            Ok(ONLY_OWN)
        }
        Action::ChangeClient(app) => caller
            .controls_app(&app, S::WriteClients)
            .map(|()| ONLY_OWN),
        Action::AdministerClients => caller.need(S::AdminClients).map(|()| ONLY_OWN),
        Action::ReadConsents => caller.need(S::ReadConsents).map(|()| ONLY_OWN),
        Action::ReadUserInfo => match caller.via {
            Via::AppToken { .. } => caller.need(S::OpenId).map(|()| ONLY_OWN),
            _ => Err(Denied::NotWith(
                "UserInfo answers an app's access token, not an API key or a session",
            )),
        },
        Action::WriteConsents => caller.need(S::WriteConsents).map(|()| ONLY_OWN),
        Action::InspectAnyCredential => caller
            .need(S::Introspect)
            .map(|()| Allowed { everyone: true }),
        Action::RevokeCredential { user_id, client_id } => {
            let own = match caller.via {
                Via::App { client_id: c, .. } => client_id == Some(c),
                _ => caller.is_self(user_id),
            };
            if own || caller.holds(S::Introspect) {
                Ok(ONLY_OWN)
            } else {
                Err(Denied::NotWith("The token was not issued to the caller"))
            }
        }
        // Answered above; repeated so that the match needs no panic.
        Action::ReadMetrics => Err(Denied::NotWith("Metrics are read with the metrics token")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn key<'a>(kind: Kind, s: &'a ScopeSet) -> Via<'a> {
        Via::Key(KeyBounds {
            key_id: "key_1",
            kind,
            mode: Mode::Live,
            scopes: s,
            expires_at: None,
            nets: &[],
            rate_limit_per_minute: None,
            restrictions: &NONE,
        })
    }

    static NONE: gatehouse_verify::restrictions::Restrictions =
        gatehouse_verify::restrictions::Restrictions {
            referrers: Vec::new(),
            endpoints: Vec::new(),
        };

    fn ws(id: &str, role: Option<WsRole>, issuance: KeyIssuance) -> InWorkspace<'_> {
        InWorkspace { id, role, issuance }
    }

    fn member<'a>(via: Via<'a>, workspace: Option<&'static str>) -> Caller<'a> {
        Caller {
            user_id: Some("usr_m"),
            role: Role::Member,
            via,
            workspace: workspace.map_or(Reach::Everywhere, |id| Reach::Workspace {
                id,
                personal: false,
            }),
        }
    }

    #[test]
    fn workspace_roles_bound_what_members_and_admins_do() {
        use KeyIssuance::{Admins, Members};
        let s = Via::Session;
        let mine = |role| ws("ws_a", Some(role), Members);
        // Not a member: the workspace does not exist for them.
        let foreign = ws("ws_b", None, Members);
        for action in [
            Action::ReadWorkspace(foreign),
            Action::ManageWorkspace(foreign),
            Action::ReadWorkspaceKeys(foreign),
            Action::RevokeMemberKey {
                workspace: foreign,
                owner_role: Some(WsRole::Member),
            },
            Action::ReadWorkspaceAudit(foreign),
        ] {
            assert_eq!(
                authorize(&member(s, None), action).unwrap_err(),
                Denied::NotFound("Workspace"),
                "{action:?}"
            );
        }
        // A member reads, an admin manages, an owner deletes.
        assert!(
            authorize(
                &member(s, None),
                Action::ReadWorkspace(mine(WsRole::Member))
            )
            .is_ok()
        );
        assert_eq!(
            authorize(
                &member(s, None),
                Action::ManageWorkspace(mine(WsRole::Member))
            )
            .unwrap_err(),
            Denied::WorkspaceRole(WsRole::Admin)
        );
        assert!(
            authorize(
                &member(s, None),
                Action::ManageWorkspace(mine(WsRole::Admin))
            )
            .is_ok()
        );
        assert!(
            authorize(
                &member(s, None),
                Action::DeleteWorkspace(mine(WsRole::Admin))
            )
            .is_err()
        );
        assert!(
            authorize(
                &member(s, None),
                Action::DeleteWorkspace(mine(WsRole::Owner))
            )
            .is_ok()
        );
        // Never above one's own role: an admin neither makes owners nor touches them.
        let change = |from, to| Action::ChangeMemberRole {
            workspace: mine(WsRole::Admin),
            from,
            to,
        };
        assert!(authorize(&member(s, None), change(WsRole::Member, WsRole::Admin)).is_ok());
        assert!(authorize(&member(s, None), change(WsRole::Member, WsRole::Owner)).is_err());
        assert!(authorize(&member(s, None), change(WsRole::Owner, WsRole::Member)).is_err());
        let invite = |role| Action::Invite {
            workspace: mine(WsRole::Admin),
            role,
        };
        assert!(authorize(&member(s, None), invite(WsRole::Admin)).is_ok());
        assert!(authorize(&member(s, None), invite(WsRole::Owner)).is_err());
        let remove = |who, role| Action::RemoveMember {
            workspace: mine(WsRole::Member),
            member: who,
            member_role: role,
        };
        assert!(authorize(&member(s, None), remove("usr_m", WsRole::Member)).is_ok());
        assert!(authorize(&member(s, None), remove("usr_x", WsRole::Member)).is_err());
        // Keys: where only admins issue them, a member's own key is refused.
        let mint = |role, issuance| Action::MintKey {
            owner: "usr_m",
            workspace: ws("ws_a", Some(role), issuance),
        };
        assert!(authorize(&member(s, None), mint(WsRole::Member, Members)).is_ok());
        assert_eq!(
            authorize(&member(s, None), mint(WsRole::Member, Admins)).unwrap_err(),
            Denied::AdminsIssueKeys
        );
        assert!(authorize(&member(s, None), mint(WsRole::Admin, Admins)).is_ok());
        let issue = |role, install_admin| Action::IssueMemberKey {
            workspace: mine(WsRole::Admin),
            member_role: role,
            member_is_install_admin: install_admin,
        };
        assert!(authorize(&member(s, None), issue(Some(WsRole::Member), false)).is_ok());
        assert_eq!(
            authorize(&member(s, None), issue(None, false)).unwrap_err(),
            Denied::NotFound("Member")
        );
        // The issuer sees the key: never one of an equal or stronger member's, nor of an
        // administrator of the install.
        for role in [WsRole::Admin, WsRole::Owner] {
            assert!(authorize(&member(s, None), issue(Some(role), false)).is_err());
        }
        assert_eq!(
            authorize(&member(s, None), issue(Some(WsRole::Member), true)).unwrap_err(),
            Denied::AdminOnly
        );
        let revoke = |owner_role| Action::RevokeMemberKey {
            workspace: mine(WsRole::Admin),
            owner_role,
        };
        assert!(authorize(&member(s, None), revoke(Some(WsRole::Admin))).is_ok());
        assert!(authorize(&member(s, None), revoke(Some(WsRole::Owner))).is_err());
    }

    #[test]
    fn an_install_admin_mints_own_keys_only_where_a_member() {
        let none = ScopeSet::default();
        let mint = |role| Action::MintKey {
            owner: "usr_admin",
            workspace: ws("ws_x", role, KeyIssuance::Members),
        };
        assert_eq!(
            authorize(&admin(Via::Session), mint(None)).unwrap_err(),
            Denied::NotFound("Workspace")
        );
        assert!(authorize(&admin(key(Kind::Secret, &none)), mint(Some(WsRole::Member))).is_ok());
    }

    #[test]
    fn a_credential_bound_to_a_workspace_reaches_nothing_outside_it() {
        let none = ScopeSet::default();
        let bound = member(key(Kind::Secret, &none), Some("ws_a"));
        // Even where the user is an owner, another workspace does not exist for this key.
        let other = ws("ws_b", Some(WsRole::Owner), KeyIssuance::Members);
        assert_eq!(
            authorize(&bound, Action::ManageWorkspace(other)).unwrap_err(),
            Denied::NotFound("Workspace")
        );
        assert_eq!(
            authorize(
                &bound,
                Action::RevokeKey {
                    owner: "usr_m",
                    workspace: "ws_b"
                }
            )
            .unwrap_err(),
            Denied::NotFound("API key")
        );
        assert!(
            authorize(
                &bound,
                Action::RevokeKey {
                    owner: "usr_m",
                    workspace: "ws_a"
                }
            )
            .is_ok()
        );
        assert!(
            authorize(
                &bound,
                Action::MintKey {
                    owner: "usr_m",
                    workspace: other
                }
            )
            .is_err()
        );
        // A restricted key without the workspace scopes reads no workspace at all.
        let narrow = scopes("read:users");
        let restricted = member(key(Kind::Restricted, &narrow), Some("ws_a"));
        let own = ws("ws_a", Some(WsRole::Owner), KeyIssuance::Members);
        assert_eq!(
            authorize(&restricted, Action::ReadWorkspace(own)).unwrap_err(),
            Denied::MissingScope(Builtin::ReadWorkspaces)
        );
    }

    #[test]
    fn a_credential_of_a_shared_workspace_is_not_the_account() {
        let none = ScopeSet::default();
        let shared = |role| Caller {
            user_id: Some("usr_m"),
            role,
            via: key(Kind::Secret, &none),
            workspace: Reach::Workspace {
                id: "ws_team",
                personal: false,
            },
        };
        // Not the profile, not new workspaces, not joining others.
        for action in [
            Action::UpdateProfile,
            Action::CreateWorkspace,
            Action::JoinWorkspace,
        ] {
            assert!(
                matches!(
                    authorize(&shared(Role::Member), action),
                    Err(Denied::NotWith(_))
                ),
                "{action:?}"
            );
        }
        assert!(authorize(&shared(Role::Member), Action::ReadProfile).is_ok());
        // An administrator's key there holds no admin-only scope: it is a member's there.
        assert!(!shared(Role::Admin).holds(Builtin::AdminUsers));
        assert_eq!(
            authorize(&shared(Role::Admin), Action::ReadAuditLog).unwrap_err(),
            Denied::AdminOnly
        );
        assert_eq!(
            authorize(&shared(Role::Admin), Action::ReadUser { id: "usr_x" }).unwrap_err(),
            Denied::NotFound("User")
        );
        // The same key in the personal workspace speaks for the account.
        let personal = Caller {
            workspace: Reach::Workspace {
                id: "ws_mine",
                personal: true,
            },
            ..shared(Role::Admin)
        };
        assert!(authorize(&personal, Action::UpdateProfile).is_ok());
        assert!(personal.holds(Builtin::AdminUsers));
        // A user's token that names no workspace reaches none.
        let nowhere = Caller {
            workspace: Reach::Nowhere,
            ..shared(Role::Member)
        };
        assert!(authorize(&nowhere, Action::UpdateProfile).is_err());
    }

    #[test]
    fn an_apps_control_follows_its_workspaces_roles() {
        let app = |role, registrant| AppOwner {
            workspace: Some(ws("ws_team", role, KeyIssuance::Members)),
            registrant,
            privileged: false,
        };
        let s = Via::Session;
        let change = |app| Action::ChangeClient(app);
        // Admins and owners of its workspace; its registrant while a member; nobody else.
        assert!(authorize(&member(s, None), change(app(Some(WsRole::Admin), None))).is_ok());
        assert!(authorize(&member(s, None), change(app(Some(WsRole::Owner), None))).is_ok());
        assert!(
            authorize(
                &member(s, None),
                change(app(Some(WsRole::Member), Some("usr_m")))
            )
            .is_ok()
        );
        assert_eq!(
            authorize(&member(s, None), change(app(Some(WsRole::Member), None))).unwrap_err(),
            Denied::NotFound("Client")
        );
        // Removed from the workspace, the registrant controls nothing.
        assert_eq!(
            authorize(&member(s, None), change(app(None, Some("usr_m")))).unwrap_err(),
            Denied::NotFound("Client")
        );
        // A credential of another workspace does not see it, whatever the role there.
        let none = ScopeSet::default();
        let elsewhere = member(key(Kind::Secret, &none), Some("ws_other"));
        assert_eq!(
            authorize(&elsewhere, change(app(Some(WsRole::Owner), Some("usr_m")))).unwrap_err(),
            Denied::NotFound("Client")
        );
        // The install's own apps (self-registered, metadata documents): administrators.
        let install = AppOwner {
            workspace: None,
            registrant: None,
            privileged: false,
        };
        // What the install granted an app is the install's to change: not its workspace's.
        let granted = AppOwner {
            privileged: true,
            ..app(Some(WsRole::Owner), Some("usr_m"))
        };
        assert!(matches!(
            authorize(&member(s, None), change(granted)),
            Err(Denied::NotWith(_))
        ));
        assert!(authorize(&member(s, None), Action::ReadClients(granted)).is_ok());
        assert!(authorize(&admin(Via::Session), change(granted)).is_ok());
        assert_eq!(
            authorize(&member(s, None), change(install)).unwrap_err(),
            Denied::NotFound("Client")
        );
        assert!(authorize(&admin(Via::Session), change(install)).is_ok());
    }

    fn admin(via: Via<'_>) -> Caller<'_> {
        Caller {
            user_id: Some("usr_admin"),
            role: Role::Admin,
            via,
            workspace: Reach::Everywhere,
        }
    }

    #[test]
    fn metrics_are_for_the_scraper_and_the_scraper_reads_nothing_else() {
        let scraper = Caller {
            user_id: None,
            role: Role::Member,
            via: Via::Scraper,
            workspace: Reach::Everywhere,
        };
        assert!(authorize(&scraper, Action::ReadMetrics).is_ok());
        for action in [
            Action::ReadProfile,
            Action::ListUsers,
            Action::ReadAuditLog,
            Action::InspectAnyCredential,
            Action::ListAllClients,
        ] {
            assert!(authorize(&scraper, action).is_err(), "{action:?}");
        }
        // Not even an administrator's session or secret key: metrics tell about every user.
        let all = scopes("read:users admin:users read:audit");
        for via in [Via::Session, key(Kind::Secret, &all)] {
            assert!(authorize(&admin(via), Action::ReadMetrics).is_err());
        }
        assert!(authorize(&admin(Via::Operator), Action::ReadMetrics).is_ok());
    }

    #[test]
    fn an_admins_restricted_key_has_the_role_only_within_its_scopes() {
        let s = scopes("read:products");
        let caller = admin(key(Kind::Restricted, &s));
        assert_eq!(
            authorize(&caller, Action::ReadAuditLog).unwrap_err(),
            Denied::MissingScope(Builtin::ReadAudit)
        );
        let s = scopes("read:users");
        let caller = admin(key(Kind::Restricted, &s));
        assert!(!authorize(&caller, Action::ListUsers).unwrap().everyone());
        assert_eq!(
            authorize(&caller, Action::ReadUser { id: "usr_other" }).unwrap_err(),
            Denied::MissingScope(Builtin::AdminUsers)
        );
    }

    #[test]
    fn members_never_hold_admin_scopes_even_when_their_credential_names_them() {
        let s = scopes("read:audit introspect");
        let caller = Caller {
            user_id: Some("usr_m"),
            role: Role::Member,
            workspace: Reach::Everywhere,
            via: key(Kind::Restricted, &s),
        };
        assert_eq!(
            authorize(&caller, Action::ReadAuditLog).unwrap_err(),
            Denied::AdminOnly
        );
        assert_eq!(
            authorize(
                &caller,
                Action::ReadKeys {
                    owner: "usr_x",
                    workspace: None
                }
            )
            .unwrap_err(),
            Denied::MissingScope(Builtin::ReadApiKeys)
        );
    }

    #[test]
    fn an_apps_token_cannot_mint_keys_even_with_the_scope() {
        let s = scopes("write:api_keys");
        let caller = Caller {
            user_id: Some("usr_m"),
            role: Role::Member,
            workspace: Reach::Everywhere,
            via: Via::AppToken {
                client_id: "cli_1",
                scopes: &s,
                expires_at: NaiveDateTime::MAX,
            },
        };
        assert!(matches!(
            authorize(
                &caller,
                Action::MintKey {
                    owner: "usr_m",
                    workspace: ws("ws_m", Some(WsRole::Owner), KeyIssuance::Members)
                }
            ),
            Err(Denied::NotWith(_))
        ));
        assert!(
            authorize(
                &caller,
                Action::RevokeKey {
                    owner: "usr_m",
                    workspace: "ws_m"
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn sessions_and_secret_keys_hold_their_roles_scopes() {
        let none = ScopeSet::default();
        for via in [Via::Session, key(Kind::Secret, &none)] {
            assert!(authorize(&admin(via), Action::ReadAuditLog).is_ok());
            assert!(
                authorize(&admin(via), Action::ListUsers)
                    .unwrap()
                    .everyone()
            );
        }
    }
}
