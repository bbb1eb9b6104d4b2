//! Refresh families and their tokens (`refresh_families`, `refresh_tokens`): started by a
//! code, a device or an exchange, rotated with reuse detection and a grace window, revoked by
//! client, workspace, session or consent. The only place that queries both tables.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::*;
use crate::db::schema::{refresh_families, refresh_tokens};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret};
use crate::workspaces::roles::WorkspaceClaim;

/// Revoke the families a code started; their ids (every grant the code led to, revoked now or
/// before, so their access tokens can be denied too).
pub fn revoke_families_of_code(
    conn: &mut DbConn,
    code_id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    diesel::update(
        refresh_families::table
            .filter(refresh_families::code_id.eq(code_id))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(refresh_families::table
        .filter(refresh_families::code_id.eq(code_id))
        .select(refresh_families::id)
        .load(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_families)]
pub struct RefreshFamily {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub code_id: Option<String>,
    pub scopes: String,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
    /// The resource every token of the grant is for, when the authorization named one.
    pub resource: Option<String>,
    /// The browser session the grant was approved in (OpenID Connect `sid`; a sign-out of that
    /// session ends the grant unless it holds `offline_access`).
    pub session_id: Option<String>,
    /// The workspace the grant acts in.
    pub workspace_id: Option<String>,
    /// DPoP: the key a public client's refresh tokens are bound to (RFC 7638 thumbprint).
    pub dpop_jkt: Option<String>,
}

/// How long a family lives: in all, and without being used.
#[derive(Debug, Clone, Copy)]
pub struct FamilyPolicy {
    pub absolute: Duration,
    pub idle: Duration,
    /// How long after a rotation the rotated token may be presented once more (0: never).
    pub reuse_grace: Duration,
}

impl FamilyPolicy {
    /// When `family` stops working unless used: its absolute end or its idle limit, whichever
    /// comes first. The token endpoint and introspection both ask this.
    pub fn ends_at(&self, family: &RefreshFamily) -> NaiveDateTime {
        family.expires_at.min(family.last_used_at + self.idle)
    }

    /// Whether a token rotated at `rotated_at` is inside the grace window at `now`, where its
    /// one retry (if unused) is admitted: the one rule for the window.
    pub fn in_grace(&self, rotated_at: NaiveDateTime, now: NaiveDateTime) -> bool {
        !self.reuse_grace.is_zero() && now - rotated_at <= self.reuse_grace
    }
}

impl Default for FamilyPolicy {
    fn default() -> Self {
        FamilyPolicy {
            absolute: Duration::days(30),
            idle: Duration::days(14),
            reuse_grace: Duration::zero(),
        }
    }
}

pub(super) fn insert_token(
    conn: &mut DbConn,
    pepper: &Pepper,
    family_id: &str,
    scopes: &ScopeSet,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let token = PlainSecret::generate(REFRESH_PREFIX);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(new_id(IdKind::RefreshToken)),
            refresh_tokens::token_digest.eq(pepper.digest_secret(&token)),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::scopes.eq(scopes.to_storage()),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Start a family for an authorization and return its first refresh token.
#[allow(clippy::too_many_arguments)]
pub fn start_family(
    conn: &mut DbConn,
    pepper: &Pepper,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    code_id: Option<&str>,
    resource: Option<&str>,
    scopes: &ScopeSet,
    auth_time: NaiveDateTime,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    // No transaction: a family whose first token failed to insert is never reachable (its
    // only way in is that token), and the flow saves a BEGIN and a COMMIT.
    crate::db::serialized_write(conn, |conn| {
        insert_family(
            conn, family_id, client_id, user_id, code_id, resource, None, None, scopes, auth_time,
            policy, now,
        )?;
        insert_token(conn, pepper, family_id, scopes, now)
    })
}

/// DPoP: bind a public client's family (its refresh tokens) to the key `jkt`.
pub fn bind_family(conn: &mut DbConn, family_id: &str, jkt: &str) -> Result<(), DbError> {
    diesel::update(refresh_families::table.find(family_id))
        .set(refresh_families::dpop_jkt.eq(jkt))
        .execute(conn)?;
    Ok(())
}

/// What a device authorization's family starts with.
pub struct DeviceFamily {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub resource: Option<String>,
    pub session_id: Option<String>,
    pub workspace_id: Option<String>,
    pub scopes: ScopeSet,
    pub auth_time: NaiveDateTime,
    /// DPoP: a public client's refresh tokens are bound to this key.
    pub dpop_jkt: Option<String>,
}

/// Spend an approved device authorization (`spend`: `false` when it was spent already) and
/// start its family, in one transaction: its first refresh token, or `None`.
pub fn start_device_family(
    conn: &mut DbConn,
    pepper: &Pepper,
    spend: impl FnOnce(&mut DbConn) -> Result<bool, DbError>,
    start: &DeviceFamily,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    crate::db::write_transaction(conn, |conn| {
        if !spend(conn)? {
            return Ok(None);
        }
        insert_family(
            conn,
            &start.family_id,
            &start.client_id,
            &start.user_id,
            None,
            start.resource.as_deref(),
            start.session_id.as_deref(),
            start.workspace_id.as_deref(),
            &start.scopes,
            start.auth_time,
            policy,
            now,
        )?;
        if let Some(jkt) = &start.dpop_jkt {
            bind_family(conn, &start.family_id, jkt)?;
        }
        insert_token(conn, pepper, &start.family_id, &start.scopes, now).map(Some)
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert_family(
    conn: &mut DbConn,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    code_id: Option<&str>,
    resource: Option<&str>,
    session_id: Option<&str>,
    workspace_id: Option<&str>,
    scopes: &ScopeSet,
    auth_time: NaiveDateTime,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(refresh_families::table)
        .values((
            refresh_families::id.eq(family_id),
            refresh_families::client_id.eq(client_id),
            refresh_families::user_id.eq(user_id),
            refresh_families::code_id.eq(code_id),
            refresh_families::resource.eq(resource),
            refresh_families::session_id.eq(session_id),
            refresh_families::workspace_id.eq(workspace_id),
            refresh_families::scopes.eq(scopes.to_storage()),
            refresh_families::auth_time.eq(auth_time),
            refresh_families::created_at.eq(now),
            refresh_families::last_used_at.eq(now),
            refresh_families::expires_at.eq(now + policy.absolute),
        ))
        .execute(conn)?;
    Ok(())
}

pub enum Refresh {
    Rotated {
        family: Box<RefreshFamily>,
        token: PlainSecret,
        scopes: ScopeSet,
        /// The user's membership of the family's workspace now (`None` without a workspace,
        /// or when they are no longer a member), read with the token.
        workspace: Option<WorkspaceClaim>,
    },
    /// An already-rotated token: the family is revoked now.
    Reused { family_id: String, user_id: String },
    /// Unknown, revoked, expired or another client's.
    Invalid,
    /// Asked for a scope the family was never granted.
    ScopeWidened,
    /// DPoP: the family is bound to a key and the request proved another (or none). Nothing
    /// was rotated.
    WrongKey,
}

/// A presented refresh token as the rotation reads it: one statement with its family and the
/// user's membership of the family's workspace.
pub(super) struct Presented {
    token_id: String,
    rotated_at: Option<NaiveDateTime>,
    token_scopes: String,
    family: RefreshFamily,
    workspace: Option<WorkspaceClaim>,
}

pub(super) fn read_presented(
    conn: &mut DbConn,
    digest: &str,
) -> Result<Option<Presented>, DbError> {
    use crate::db::schema::{workspace_members, workspaces};
    type Row = (
        String,
        Option<NaiveDateTime>,
        String,
        RefreshFamily,
        Option<String>,
        Option<String>,
    );
    let found: Option<Row> = refresh_tokens::table
        .inner_join(refresh_families::table)
        .left_join(
            workspaces::table.on(workspaces::id.nullable().eq(refresh_families::workspace_id)),
        )
        .left_join(
            workspace_members::table.on(workspace_members::workspace_id
                .nullable()
                .eq(refresh_families::workspace_id)
                .and(workspace_members::user_id.eq(refresh_families::user_id))),
        )
        .filter(refresh_tokens::token_digest.eq(digest))
        .select((
            refresh_tokens::id,
            refresh_tokens::rotated_at,
            refresh_tokens::scopes,
            RefreshFamily::as_select(),
            workspaces::slug.nullable(),
            workspace_members::role.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(
        found.map(|(token_id, rotated_at, token_scopes, family, slug, role)| {
            let workspace =
                WorkspaceClaim::from_joined(family.workspace_id.as_deref(), slug, role.as_deref());
            Presented {
                token_id,
                rotated_at,
                token_scopes,
                family,
                workspace,
            }
        }),
    )
}

/// Whether `found` may be rotated by this request, and the scopes of the next token. Nothing
/// is spent when it may not.
pub(super) fn may_rotate(
    found: &Presented,
    asked: Asked,
    now: NaiveDateTime,
) -> Result<ScopeSet, Refresh> {
    let family = &found.family;
    if family.client_id != asked.client_id || family.revoked_at.is_some() {
        return Err(Refresh::Invalid);
    }
    if asked.policy.ends_at(family) <= now {
        return Err(Refresh::Invalid);
    }
    // Checked before the token is spent: a thief without the key burns nothing.
    if family.dpop_jkt.is_some() && family.dpop_jkt.as_deref() != asked.jkt {
        return Err(Refresh::WrongKey);
    }
    rotated_scopes(family, &found.token_scopes, asked.requested)
}

/// PostgreSQL, a token not rotated before: spend it, mark the family used (at minute
/// precision) and insert the next token in one statement — one round trip and one commit,
/// prepared once per connection. `None` when the token was spent or the family revoked
/// meanwhile: the caller then decides in a transaction (reuse, grace or refusal).
pub(super) fn spend_unrotated_pg(
    conn: &mut DbConn,
    pepper: &Pepper,
    found: &Presented,
    scopes: &ScopeSet,
    now: NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    use crate::db::prepared::{Bind, PgStatement};
    let DbConn::Pg(pg) = conn else {
        return Ok(None);
    };
    let token = PlainSecret::generate(REFRESH_PREFIX);
    let (id, digest, stored) = (
        new_id(IdKind::RefreshToken),
        pepper.digest_secret(&token),
        scopes.to_storage(),
    );
    let inserted = PgStatement::new(
        "WITH spent AS ( \
             UPDATE refresh_tokens SET rotated_at = $1 \
             WHERE id = $2 AND rotated_at IS NULL AND EXISTS ( \
                 SELECT 1 FROM refresh_families WHERE id = $3 AND revoked_at IS NULL) \
             RETURNING family_id), \
         touched AS ( \
             UPDATE refresh_families SET last_used_at = $1 \
             WHERE id IN (SELECT family_id FROM spent) AND last_used_at <= $4) \
         INSERT INTO refresh_tokens (id, token_digest, family_id, scopes, created_at, grace_used) \
         SELECT $5, $6, family_id, $7, $1, FALSE FROM spent",
        vec![
            Bind::Timestamp(now),
            Bind::Text(&found.token_id),
            Bind::Text(&found.family.id),
            Bind::Timestamp(now - Duration::minutes(1)),
            Bind::Text(&id),
            Bind::Text(&digest),
            Bind::Text(&stored),
        ],
    )
    .execute(pg)?;
    Ok((inserted == 1).then_some(token))
}

/// Rotate `presented`: exactly one of concurrent callers gets a new token; presenting a
/// rotated token revokes the whole family (reuse detection).
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    client_id: &str,
    requested: Option<&ScopeSet>,
    jkt: Option<&str>,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<Refresh, DbError> {
    let Ok(token) = PlainSecret::parse(REFRESH_PREFIX, presented) else {
        return Ok(Refresh::Invalid);
    };
    let digest = pepper.digest_secret(&token);
    let asked = Asked {
        client_id,
        requested,
        jkt,
        policy,
    };
    if matches!(conn, DbConn::Pg(_))
        && let Some(answer) = rotate_unrotated_pg(conn, pepper, &digest, asked, now)?
    {
        return Ok(answer);
    }
    crate::db::write_transaction(conn, |conn| {
        rotate_in_transaction(conn, pepper, &digest, asked, now)
    })
}

/// What the presenter of a refresh token asks of the rotation.
#[derive(Clone, Copy)]
pub(super) struct Asked<'a> {
    client_id: &'a str,
    requested: Option<&'a ScopeSet>,
    jkt: Option<&'a str>,
    policy: FamilyPolicy,
}

/// PostgreSQL's usual case in two statements (no transaction): the read, then the spend
/// that only a token still unrotated in a live family passes. `None`: not the usual case
/// (rotated before, or spent meanwhile), decided in a transaction.
pub(super) fn rotate_unrotated_pg(
    conn: &mut DbConn,
    pepper: &Pepper,
    digest: &str,
    asked: Asked,
    now: NaiveDateTime,
) -> Result<Option<Refresh>, DbError> {
    let Some(found) = read_presented(conn, digest)? else {
        return Ok(Some(Refresh::Invalid));
    };
    let scopes = match may_rotate(&found, asked, now) {
        Ok(scopes) => scopes,
        Err(refusal) => return Ok(Some(refusal)),
    };
    if found.rotated_at.is_some() {
        return Ok(None);
    }
    Ok(
        spend_unrotated_pg(conn, pepper, &found, &scopes, now)?.map(|token| Refresh::Rotated {
            family: Box::new(found.family),
            token,
            scopes,
            workspace: found.workspace,
        }),
    )
}

/// Rotation inside a transaction: claim the presented token (once; or its one grace use),
/// or revoke the family when it was spent before.
pub(super) fn rotate_in_transaction(
    conn: &mut DbConn,
    pepper: &Pepper,
    digest: &str,
    asked: Asked,
    now: NaiveDateTime,
) -> Result<Refresh, DbError> {
    let Some(found) = read_presented(conn, digest)? else {
        return Ok(Refresh::Invalid);
    };
    let scopes = match may_rotate(&found, asked, now) {
        Ok(scopes) => scopes,
        Err(refusal) => return Ok(refusal),
    };
    let Presented {
        token_id,
        rotated_at,
        family,
        workspace,
        ..
    } = found;
    if claim(conn, &token_id, rotated_at, asked.policy, now)? == 0 {
        diesel::update(refresh_families::table.find(&family.id))
            .set((
                refresh_families::revoked_at.eq(now),
                refresh_families::revoked_reason.eq("refresh_reuse"),
            ))
            .execute(conn)?;
        return Ok(Refresh::Reused {
            family_id: family.id,
            user_id: family.user_id,
        });
    }
    // Minute precision is plenty for a 14-day idle limit and "last used": a family in
    // steady use is not rewritten at every refresh.
    if now - family.last_used_at >= Duration::minutes(1) {
        diesel::update(refresh_families::table.find(&family.id))
            .set(refresh_families::last_used_at.eq(now))
            .execute(conn)?;
    }
    let token = insert_token(conn, pepper, &family.id, &scopes, now)?;
    Ok(Refresh::Rotated {
        family: Box::new(family),
        token,
        scopes,
        workspace,
    })
}

/// Spend the presented token: unrotated, once; rotated within the grace window, once more
/// (the tab that lost the race gets a token too). 0: it was spent before.
pub(super) fn claim(
    conn: &mut DbConn,
    token_id: &str,
    rotated_at: Option<NaiveDateTime>,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    match rotated_at {
        None => diesel::update(
            refresh_tokens::table
                .find(token_id)
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn),
        Some(at) if policy.in_grace(at, now) => diesel::update(
            refresh_tokens::table
                .find(token_id)
                .filter(refresh_tokens::grace_used.eq(false)),
        )
        .set(refresh_tokens::grace_used.eq(true))
        .execute(conn),
        Some(_) => Ok(0),
    }
}

/// The scopes of the next token: what was asked, if the family holds it all, else the
/// presented token's.
pub(super) fn rotated_scopes(
    family: &RefreshFamily,
    token_scopes: &str,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, Refresh> {
    let family_scopes = ScopeSet::parse(&family.scopes).unwrap_or_default();
    match requested {
        Some(asked) if !asked.is_subset(&family_scopes) => Err(Refresh::ScopeWidened),
        Some(asked) => Ok(asked.clone()),
        None => Ok(ScopeSet::parse(token_scopes).unwrap_or_default()),
    }
}

/// A refresh token as introspection and revocation see it.
pub struct RefreshLookup {
    pub created_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
    pub grace_used: bool,
    pub scopes: String,
    pub family: RefreshFamily,
}

impl RefreshLookup {
    /// When it stops working if nobody uses it: the family's end or its idle limit.
    pub fn expires_at(&self, policy: FamilyPolicy) -> NaiveDateTime {
        policy.ends_at(&self.family)
    }

    /// Would a refresh with it succeed now? A rotated token is spent, unless it is inside the
    /// grace window and its one retry is unused.
    pub fn is_active(&self, policy: FamilyPolicy, now: NaiveDateTime) -> bool {
        let usable = match self.rotated_at {
            None => true,
            Some(at) => policy.in_grace(at, now) && !self.grace_used,
        };
        usable && self.family.revoked_at.is_none() && self.expires_at(policy) > now
    }
}

pub fn find_refresh(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
) -> Result<Option<RefreshLookup>, DbError> {
    let Ok(token) = PlainSecret::parse(REFRESH_PREFIX, presented) else {
        return Ok(None);
    };
    let digest = pepper.digest_secret(&token);
    type Found = (
        NaiveDateTime,
        Option<NaiveDateTime>,
        bool,
        String,
        RefreshFamily,
    );
    let found: Option<Found> = refresh_tokens::table
        .inner_join(refresh_families::table)
        .filter(refresh_tokens::token_digest.eq(&digest))
        .select((
            refresh_tokens::created_at,
            refresh_tokens::rotated_at,
            refresh_tokens::grace_used,
            refresh_tokens::scopes,
            RefreshFamily::as_select(),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(
        |(created_at, rotated_at, grace_used, scopes, family)| RefreshLookup {
            created_at,
            rotated_at,
            grace_used,
            scopes,
            family,
        },
    ))
}

/// Revoke these families (those already revoked keep their first reason); how many changed.
pub fn revoke_families(
    conn: &mut DbConn,
    family_ids: &[String],
    now: NaiveDateTime,
    reason: &str,
) -> Result<usize, DbError> {
    if family_ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::id.eq_any(family_ids))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)?)
}

/// The ids of the live families of a user and client.
pub fn live_families(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    live_families_in(conn, user_id, client_id, None, now)
}

/// As [`live_families`], made in `workspace` only (`None`: in any).
pub fn live_families_in(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    workspace: Option<&str>,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    let mut query = refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::client_id.eq(client_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::expires_at.gt(now))
        .select(refresh_families::id)
        .into_boxed();
    if let Some(workspace) = workspace {
        query = query.filter(refresh_families::workspace_id.eq(workspace));
    }
    Ok(query.load(conn)?)
}

/// Refresh families past their absolute end before `cutoff`, or idle since `idle_cutoff`.
pub fn refresh_families_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(refresh_families::table
        .filter(
            refresh_families::expires_at
                .lt(cutoff)
                .or(refresh_families::last_used_at.lt(idle_cutoff)),
        )
        .select(refresh_families::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these families with every token ever rotated in them (the tokens first, in one
/// transaction): (families, tokens) deleted.
pub fn delete_refresh_families(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<(usize, usize), DbError> {
    crate::db::write_transaction(conn, |conn| {
        let rotated =
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_id.eq_any(ids)))
                .execute(conn)?;
        let families =
            diesel::delete(refresh_families::table.filter(refresh_families::id.eq_any(ids)))
                .execute(conn)?;
        Ok::<_, DbError>((families, rotated))
    })
}

/// End every live refresh family of an app (disabled, deleted, its host blocked): their ids,
/// for the denylist.
pub fn revoke_client_families(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    let live: Vec<String> = refresh_families::table
        .filter(refresh_families::client_id.eq(client_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::expires_at.gt(now))
        .select(refresh_families::id)
        .load(conn)?;
    revoke_families(conn, &live, now, reason)?;
    Ok(live)
}

/// End the live refresh families made in a workspace (`user_id`: only that member's): their
/// ids, for the denylist.
pub fn revoke_workspace_families(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: Option<&str>,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    let mut live = refresh_families::table
        .filter(refresh_families::workspace_id.eq(workspace_id))
        .filter(refresh_families::revoked_at.is_null())
        .select(refresh_families::id)
        .into_boxed();
    if let Some(user_id) = user_id {
        live = live.filter(refresh_families::user_id.eq(user_id));
    }
    let ids: Vec<String> = live.load(conn)?;
    revoke_families(conn, &ids, now, reason)?;
    Ok(ids)
}

/// A refresh family made in a browser session: id, app, scopes, session, when revoked.
pub type GrantOfSession = (
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
);

/// The grants a user made from browser sessions (`session`: from that one only).
pub fn made_in_sessions(
    conn: &mut DbConn,
    user_id: &str,
    session: Option<&str>,
) -> Result<Vec<GrantOfSession>, DbError> {
    let mut query = refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::session_id.is_not_null())
        .into_boxed();
    if let Some(id) = session {
        query = query.filter(refresh_families::session_id.eq(id));
    }
    Ok(query
        .select((
            refresh_families::id,
            refresh_families::client_id,
            refresh_families::scopes,
            refresh_families::session_id,
            refresh_families::revoked_at,
        ))
        .load(conn)?)
}

/// End these sign-ins because their session ended (those already ended stay as they were).
pub fn end_at_logout(conn: &mut DbConn, ids: &[String], now: NaiveDateTime) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        refresh_families::table
            .filter(refresh_families::id.eq_any(ids))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq("logout"),
    ))
    .execute(conn)?;
    Ok(())
}

/// When `user_id`'s families of each of these apps were last used (apps without one absent).
pub fn last_used_by_client(
    conn: &mut DbConn,
    user_id: &str,
    client_ids: &[&str],
) -> Result<std::collections::HashMap<String, NaiveDateTime>, DbError> {
    if client_ids.is_empty() {
        return Ok(Default::default());
    }
    let rows: Vec<(String, Option<NaiveDateTime>)> = refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::client_id.eq_any(client_ids))
        .group_by(refresh_families::client_id)
        .select((
            refresh_families::client_id,
            diesel::dsl::max(refresh_families::last_used_at),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(client, at)| at.map(|at| (client, at)))
        .collect())
}
