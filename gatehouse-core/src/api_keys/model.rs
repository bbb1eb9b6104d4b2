//! The `api_keys` table: the only place that queries it.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::workspaces::roles::WorkspaceClaim;
use ipnet::IpNet;
use serde::Serialize;

use super::format::{self, Kind, Mode};
use crate::accounts::model::User;
use crate::clock::utc;
use crate::db::schema::{api_keys, users};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::policy::attenuate::KeyShape;
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret};
use gatehouse_verify::restrictions::Restrictions;

/// Keys expiring within this window are flagged in lists.
pub const EXPIRING_SOON: Duration = Duration::days(30);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub user_id: String,
    pub issued_by: String,
    pub name: String,
    pub description: String,
    pub mode: String,
    pub kind: String,
    pub key_digest: String,
    pub display_prefix: String,
    pub last4: String,
    pub scopes: String,
    pub allowed_ips: String,
    pub rate_limit_per_minute: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_by: Option<String>,
    pub rolled_from: Option<String>,
    pub rolled_to: Option<String>,
    pub allowed_referrers: String,
    pub allowed_endpoints: String,
    /// The workspace the key acts in (see `workspaces`).
    pub workspace_id: String,
    /// When its limits last changed (or its owner's role there was lowered): the version the
    /// tokens exchanged for it name (see [`exchange_grant`]).
    pub limits_changed_at: Option<NaiveDateTime>,
}

/// A key's status from its revocation and expiry.
pub fn status_of(
    revoked_at: Option<NaiveDateTime>,
    expires_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Status {
    if revoked_at.is_some() {
        Status::Revoked
    } else if expires_at.is_some_and(|e| e <= now) {
        Status::Expired
    } else {
        Status::Active
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Expired,
    Revoked,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "active" => Some(Status::Active),
            "expired" => Some(Status::Expired),
            "revoked" => Some(Status::Revoked),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Revoked => "revoked",
        }
    }
}

impl ApiKey {
    pub fn status(&self, now: NaiveDateTime) -> Status {
        status_of(self.revoked_at, self.expires_at, now)
    }

    pub fn mode(&self) -> Mode {
        Mode::parse(&self.mode).unwrap_or(Mode::Test)
    }

    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind).unwrap_or(Kind::Restricted)
    }

    pub fn scope_set(&self) -> ScopeSet {
        ScopeSet::parse(&self.scopes).unwrap_or_default()
    }

    pub fn allowed_nets(&self) -> Vec<IpNet> {
        parse_allowed_ips(&self.allowed_ips).unwrap_or_default()
    }

    pub fn restrictions(&self) -> Restrictions {
        Restrictions::from_storage(&self.allowed_referrers, &self.allowed_endpoints)
    }

    pub fn view(&self, now: NaiveDateTime) -> ApiKeyView {
        let status = self.status(now);
        let restrictions = self.restrictions();
        ApiKeyView {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            workspace_id: self.workspace_id.clone(),
            issued_by: self.issued_by.clone(),
            name: self.name.clone(),
            description: self.description.clone(),
            prefix: self.display_prefix.clone(),
            last4: self.last4.clone(),
            mode: self.mode(),
            kind: self.kind(),
            scopes: self.scope_set().iter().map(|s| s.to_string()).collect(),
            allowed_ips: self
                .allowed_nets()
                .iter()
                .map(ToString::to_string)
                .collect(),
            allowed_referrers: restrictions.referrer_strings(),
            allowed_endpoints: restrictions.endpoint_strings(),
            rate_limit_per_minute: self.rate_limit_per_minute,
            created_at: utc(self.created_at),
            expires_at: self.expires_at.map(utc),
            last_used_at: self.last_used_at.map(utc),
            last_used_ip: self.last_used_ip.clone(),
            revoked_at: self.revoked_at.map(utc),
            rolled_from: self.rolled_from.clone(),
            rolled_to: self.rolled_to.clone(),
            status,
            expiring_soon: status == Status::Active
                && self.expires_at.is_some_and(|e| e <= now + EXPIRING_SOON),
        }
    }
}

/// What `/v1` and the CLI show of a key: never the key or its digest.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    #[schema(example = "key_3kT9wQ1xZr5bN2mP")]
    pub id: String,
    /// The owner.
    pub user_id: String,
    /// The workspace the key acts in: it reaches that workspace's things only.
    #[schema(example = "ws_4x9TQbJ2mR8pLw3nV6yZ1cKe")]
    pub workspace_id: String,
    /// Who issued it (the owner, or an administrator).
    pub issued_by: String,
    pub name: String,
    pub description: String,
    /// The key's first 12 characters, e.g. `sk_live_a1B2`.
    pub prefix: String,
    pub last4: String,
    pub mode: Mode,
    pub kind: Kind,
    /// A restricted key's scopes (empty for a secret key, which holds its owner's).
    pub scopes: Vec<String>,
    /// Addresses and CIDR blocks it may be used from (empty: any).
    pub allowed_ips: Vec<String>,
    /// Origins (`https://app.example.com`) and host patterns (`*.example.com`) whose pages may
    /// use it, matched against `Origin`, then `Referer` (empty: any).
    #[schema(example = json!(["https://app.example.com", "*.example.com"]))]
    pub allowed_referrers: Vec<String>,
    /// `METHOD /path` patterns it may call (`*`: one segment, a final `*`: the rest; empty: any).
    #[schema(example = json!(["GET /v1/users/me"]))]
    pub allowed_endpoints: Vec<String>,
    pub rate_limit_per_minute: Option<i64>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// `null`: never expires.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// The key this one replaced by a roll.
    pub rolled_from: Option<String>,
    /// The key that replaced this one.
    pub rolled_to: Option<String>,
    pub status: Status,
    /// Active and expiring within 30 days.
    pub expiring_soon: bool,
}

pub use crate::net::address::parse_allowed_ips;

pub fn nets_to_storage(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether `ip` may use a key with this allowlist (shared with `gatehouse-verify`).
pub use gatehouse_verify::restrictions::ip_allowed;

/// Everything a new key needs but its secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub user_id: String,
    pub workspace_id: String,
    pub issued_by: String,
    pub name: String,
    pub description: String,
    pub mode: Mode,
    pub kind: Kind,
    pub scopes: ScopeSet,
    pub allowed_ips: Vec<IpNet>,
    pub restrictions: Restrictions,
    pub rate_limit_per_minute: Option<i64>,
    pub expires_at: Option<NaiveDateTime>,
    pub rolled_from: Option<String>,
}

impl NewKey {
    /// The key as attenuation weighs it.
    pub fn shape(&self) -> KeyShape<'_> {
        KeyShape {
            kind: self.kind,
            mode: self.mode,
            scopes: &self.scopes,
            expires_at: self.expires_at,
            nets: &self.allowed_ips,
            rate_limit_per_minute: self.rate_limit_per_minute,
            restrictions: &self.restrictions,
        }
    }
}

/// A stored key's parsed scopes and allowlist, for weighing it (`shape`).
pub struct ParsedRights {
    kind: Kind,
    mode: Mode,
    scopes: ScopeSet,
    nets: Vec<IpNet>,
    restrictions: Restrictions,
    expires_at: Option<NaiveDateTime>,
    rate_limit_per_minute: Option<i64>,
}

impl ParsedRights {
    pub fn of(key: &ApiKey) -> ParsedRights {
        ParsedRights {
            kind: key.kind(),
            mode: key.mode(),
            scopes: key.scope_set(),
            nets: key.allowed_nets(),
            restrictions: key.restrictions(),
            expires_at: key.expires_at,
            rate_limit_per_minute: key.rate_limit_per_minute,
        }
    }

    /// The same rights with another allowlist (a PATCH about to be applied).
    pub fn set_nets(&mut self, nets: Vec<IpNet>) {
        self.nets = nets;
    }

    /// The same rights with other referrer and endpoint lists.
    pub fn set_restrictions(&mut self, restrictions: Restrictions) {
        self.restrictions = restrictions;
    }

    pub fn shape(&self) -> KeyShape<'_> {
        KeyShape {
            kind: self.kind,
            mode: self.mode,
            scopes: &self.scopes,
            expires_at: self.expires_at,
            nets: &self.nets,
            rate_limit_per_minute: self.rate_limit_per_minute,
            restrictions: &self.restrictions,
        }
    }
}

/// Mint a key and store its digest; the returned secret is shown once and then forgotten.
pub fn insert(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewKey,
    now: NaiveDateTime,
) -> Result<(ApiKey, PlainSecret), DbError> {
    insert_with_id(conn, &new_id(IdKind::ApiKey), pepper, new, now)
}

fn insert_with_id(
    conn: &mut DbConn,
    id: &str,
    pepper: &Pepper,
    new: &NewKey,
    now: NaiveDateTime,
) -> Result<(ApiKey, PlainSecret), DbError> {
    let secret = format::generate(new.kind, new.mode);
    let (display_prefix, last4) = format::display_parts(&secret);
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(id),
            api_keys::user_id.eq(&new.user_id),
            api_keys::workspace_id.eq(&new.workspace_id),
            api_keys::issued_by.eq(&new.issued_by),
            api_keys::name.eq(&new.name),
            api_keys::description.eq(&new.description),
            api_keys::mode.eq(new.mode.as_str()),
            api_keys::kind.eq(new.kind.as_str()),
            api_keys::key_digest.eq(pepper.digest_secret(&secret)),
            api_keys::display_prefix.eq(display_prefix),
            api_keys::last4.eq(last4),
            api_keys::scopes.eq(new.scopes.to_storage()),
            api_keys::allowed_ips.eq(nets_to_storage(&new.allowed_ips)),
            api_keys::allowed_referrers.eq(new.restrictions.referrers_to_storage()),
            api_keys::allowed_endpoints.eq(new.restrictions.endpoints_to_storage()),
            api_keys::rate_limit_per_minute.eq(new.rate_limit_per_minute),
            api_keys::created_at.eq(now),
            api_keys::updated_at.eq(now),
            api_keys::expires_at.eq(new.expires_at),
            api_keys::rolled_from.eq(&new.rolled_from),
        ))
        .execute(conn)?;
    let key = api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)?;
    Ok((key, secret))
}

/// A key, its owner and the owner's membership of the key's workspace.
pub type FoundKey = (ApiKey, User, Option<WorkspaceClaim>);

/// The key with this digest, its owner and their membership of its workspace: the one indexed
/// lookup of the hot path (primary keys for the joins).
pub fn find_by_digest(conn: &mut DbConn, digest: &str) -> Result<Option<FoundKey>, DbError> {
    use crate::db::schema::{workspace_members, workspaces};
    let row: Option<(ApiKey, User, Option<String>, Option<String>)> = api_keys::table
        .inner_join(users::table)
        .left_join(workspaces::table.on(workspaces::id.eq(api_keys::workspace_id)))
        .left_join(
            workspace_members::table.on(workspace_members::workspace_id
                .eq(api_keys::workspace_id)
                .and(workspace_members::user_id.eq(api_keys::user_id))),
        )
        .filter(api_keys::key_digest.eq(digest))
        .select((
            ApiKey::as_select(),
            User::as_select(),
            workspaces::slug.nullable(),
            workspace_members::role.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(key, user, slug, role)| {
        let claim = WorkspaceClaim::from_joined(Some(&key.workspace_id), slug, role.as_deref());
        (key, user, claim)
    }))
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<ApiKey>, DbError> {
    Ok(api_keys::table
        .find(id)
        .select(ApiKey::as_select())
        .first(conn)
        .optional()?)
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub expiring_within: Option<Duration>,
    /// Only keys strictly older than this (created_at, id): the page cursor.
    pub before: Option<(NaiveDateTime, String)>,
    pub limit: i64,
    /// Only keys acting in this workspace.
    pub workspace_id: Option<String>,
}

/// A user's keys, newest first.
pub fn list_for_user(
    conn: &mut DbConn,
    user_id: &str,
    filter: &ListFilter,
    now: NaiveDateTime,
) -> Result<Vec<ApiKey>, DbError> {
    list(conn, Some(user_id), filter, now)
}

/// Keys, newest first: one user's (`owner`), or every member's of `filter.workspace_id`.
pub fn list(
    conn: &mut DbConn,
    owner: Option<&str>,
    filter: &ListFilter,
    now: NaiveDateTime,
) -> Result<Vec<ApiKey>, DbError> {
    let mut query = api_keys::table.select(ApiKey::as_select()).into_boxed();
    if let Some(user_id) = owner {
        query = query.filter(api_keys::user_id.eq(user_id.to_owned()));
    }
    if let Some(workspace_id) = &filter.workspace_id {
        query = query.filter(api_keys::workspace_id.eq(workspace_id.clone()));
    }
    let active = api_keys::revoked_at.is_null().and(
        api_keys::expires_at
            .is_null()
            .or(api_keys::expires_at.gt(now)),
    );
    match filter.status {
        Some(Status::Active) => query = query.filter(active),
        Some(Status::Expired) => {
            query = query.filter(
                api_keys::revoked_at
                    .is_null()
                    .and(api_keys::expires_at.le(now)),
            )
        }
        Some(Status::Revoked) => query = query.filter(api_keys::revoked_at.is_not_null()),
        None => {}
    }
    if let Some(within) = filter.expiring_within {
        query = query
            .filter(api_keys::revoked_at.is_null())
            .filter(api_keys::expires_at.gt(now))
            .filter(api_keys::expires_at.le(now + within));
    }
    if let Some((at, id)) = &filter.before {
        query = query.filter(
            api_keys::created_at.lt(*at).or(api_keys::created_at
                .eq(*at)
                .and(api_keys::id.lt(id.clone()))),
        );
    }
    Ok(query
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .limit(filter.limit)
        .load(conn)?)
}

/// Change the descriptive fields and the allowlist.
pub fn update(
    conn: &mut DbConn,
    id: &str,
    name: Option<&str>,
    description: Option<&str>,
    allowed_ips: Option<&[IpNet]>,
    restrictions: Option<&Restrictions>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    crate::db::write_transaction(conn, |conn| {
        if let Some(name) = name {
            diesel::update(api_keys::table.find(id))
                .set(api_keys::name.eq(name))
                .execute(conn)?;
        }
        if let Some(description) = description {
            diesel::update(api_keys::table.find(id))
                .set(api_keys::description.eq(description))
                .execute(conn)?;
        }
        if let Some(nets) = allowed_ips {
            diesel::update(api_keys::table.find(id))
                .set(api_keys::allowed_ips.eq(nets_to_storage(nets)))
                .execute(conn)?;
        }
        if let Some(r) = restrictions {
            diesel::update(api_keys::table.find(id))
                .set((
                    api_keys::allowed_referrers.eq(r.referrers_to_storage()),
                    api_keys::allowed_endpoints.eq(r.endpoints_to_storage()),
                ))
                .execute(conn)?;
        }
        diesel::update(api_keys::table.find(id))
            .set(api_keys::updated_at.eq(now))
            .execute(conn)?;
        Ok(())
    })
}

/// Revoke now. `false` when the key was already revoked (nothing changes).
pub fn revoke(conn: &mut DbConn, id: &str, by: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let changed = diesel::update(
        api_keys::table
            .find(id)
            .filter(api_keys::revoked_at.is_null()),
    )
    .set((
        api_keys::revoked_at.eq(now),
        api_keys::revoked_by.eq(by),
        api_keys::updated_at.eq(now),
    ))
    .execute(conn)?;
    if changed == 1 {
        // The access tokens exchanged for the key (their `jti` names it) die with it.
        crate::jwt::denylist::revoke(conn, &[(id.to_owned(), exchanged_tokens_dead_at(now))], now)?;
    }
    Ok(changed == 1)
}

/// The grant an access token exchanged for a key names in its `jti`: the key, and a version of
/// the limits it was exchanged under (a digest of the allowlist, referrers and endpoints, and
/// when they last changed). Revoking the key (its id) ends every such token; changing its
/// limits — or lowering its owner's role — stores a new version and deny-lists the old one,
/// ending the tokens minted under it, while tokens exchanged afterwards name the new one. The
/// time makes a version unique: limits changed back and forth name a new version each time.
pub fn exchange_grant(key: &ApiKey) -> String {
    exchange_grant_of(
        &key.id,
        &key.allowed_nets(),
        &key.restrictions(),
        key.limits_changed_at,
    )
}

fn exchange_grant_of(
    key_id: &str,
    nets: &[IpNet],
    restrictions: &gatehouse_verify::restrictions::Restrictions,
    changed_at: Option<NaiveDateTime>,
) -> String {
    use sha2::{Digest, Sha256};
    let limits = format!(
        "{}\n{}\n{}\n{}",
        nets_to_storage(nets),
        restrictions.referrers_to_storage(),
        restrictions.endpoints_to_storage(),
        changed_at.map_or(0, |t| t.and_utc().timestamp_micros())
    );
    let digest = Sha256::digest(limits.as_bytes());
    let tag: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{key_id}.lim{tag}")
}

/// `user_id`'s live (unrevoked) keys acting in `workspace_id`.
pub fn live_in_workspace(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: &str,
) -> Result<Vec<ApiKey>, DbError> {
    Ok(api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::user_id.eq(user_id))
        .filter(api_keys::revoked_at.is_null())
        .select(ApiKey::as_select())
        .load(conn)?)
}

/// Store a new version of `ids`' limits (see [`exchange_grant`]), as of `now`.
pub fn new_limits_version(
    conn: &mut DbConn,
    ids: &[String],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(api_keys::table.filter(api_keys::id.eq_any(ids)))
        .set(api_keys::limits_changed_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// When every access token exchanged for a key revoked `now` has expired.
pub fn exchanged_tokens_dead_at(now: NaiveDateTime) -> NaiveDateTime {
    now + crate::jwt::EXCHANGED_TOKEN_MAX_LIFETIME + chrono::Duration::minutes(1)
}

pub enum RollOutcome {
    Rolled {
        old: Box<ApiKey>,
        new: Box<ApiKey>,
        secret: PlainSecret,
    },
    /// The key was rolled before (to this key): nothing was minted.
    AlreadyRolled { successor: String },
}

/// Replace `old_id` by a new key with the same owner, mode, kind, scopes and allowlist. The old
/// key, and the access tokens exchanged for it, keep working until `now + grace` (or its own
/// expiry, if sooner). Claiming the old key
/// and inserting the new one happen in one transaction, so two concurrent rolls mint one key.
pub fn roll(
    conn: &mut DbConn,
    pepper: &Pepper,
    old_id: &str,
    template: &NewKey,
    grace: Duration,
    now: NaiveDateTime,
) -> Result<RollOutcome, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let new_id_reserved = new_id(IdKind::ApiKey);
        let claimed = diesel::update(
            api_keys::table
                .find(old_id)
                .filter(api_keys::rolled_to.is_null()),
        )
        .set(api_keys::rolled_to.eq(&new_id_reserved))
        .execute(conn)?;
        if claimed == 0 {
            let successor = api_keys::table
                .find(old_id)
                .select(api_keys::rolled_to)
                .first::<Option<String>>(conn)?;
            return Ok(RollOutcome::AlreadyRolled {
                successor: successor.unwrap_or_default(),
            });
        }
        let (new, secret) = insert_with_id(conn, &new_id_reserved, pepper, template, now)?;
        let old: ApiKey = api_keys::table
            .find(old_id)
            .select(ApiKey::as_select())
            .first(conn)?;
        let grace_end = now + grace;
        let old_expiry = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
        diesel::update(api_keys::table.find(old_id))
            .set((
                api_keys::expires_at.eq(old_expiry),
                api_keys::updated_at.eq(now),
            ))
            .execute(conn)?;
        // Access tokens exchanged for the old key may outlive its new expiry (they were minted
        // for its old one): they end with it.
        crate::jwt::denylist::revoke_from(
            conn,
            old_id,
            old_expiry,
            exchanged_tokens_dead_at(old_expiry),
            now,
        )?;
        let old = api_keys::table
            .find(old_id)
            .select(ApiKey::as_select())
            .first(conn)?;
        Ok(RollOutcome::Rolled {
            old: Box::new(old),
            new: Box::new(new),
            secret,
        })
    })
}

/// Write buffered last-used times: one statement per key, in one transaction. A time older
/// than the stored one (another instance saw a later use) is skipped.
pub fn record_usage(
    conn: &mut DbConn,
    batch: &[(String, NaiveDateTime, String)],
) -> Result<(), DbError> {
    // Short transactions: a large batch (a burst of many different keys) must not hold the
    // SQLite writer while flows and refreshes wait behind it.
    for chunk in batch.chunks(USAGE_ROWS_PER_TRANSACTION) {
        crate::db::write_transaction(conn, |conn| {
            for (id, at, ip) in chunk {
                diesel::update(
                    api_keys::table.find(id).filter(
                        api_keys::last_used_at
                            .is_null()
                            .or(api_keys::last_used_at.lt(*at)),
                    ),
                )
                .set((
                    api_keys::last_used_at.eq(*at),
                    api_keys::last_used_ip.eq(ip),
                ))
                .execute(conn)?;
            }
            Ok::<_, DbError>(())
        })?;
    }
    Ok(())
}

/// Last-used rows written per transaction by `record_usage`.
const USAGE_ROWS_PER_TRANSACTION: usize = 200;

/// Revoke the live keys of a workspace (`user_id`: only that member's), and the access tokens
/// exchanged for them (their `jti` names the key): the keys' ids.
pub fn revoke_in_workspace(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: Option<&str>,
    by: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    let mut live = api_keys::table
        .filter(api_keys::workspace_id.eq(workspace_id))
        .filter(api_keys::revoked_at.is_null())
        .select(api_keys::id)
        .into_boxed();
    if let Some(user_id) = user_id {
        live = live.filter(api_keys::user_id.eq(user_id));
    }
    let ids: Vec<String> = live.load(conn)?;
    if !ids.is_empty() {
        diesel::update(api_keys::table.filter(api_keys::id.eq_any(&ids)))
            .set((
                api_keys::revoked_at.eq(now),
                api_keys::revoked_by.eq(by),
                api_keys::updated_at.eq(now),
            ))
            .execute(conn)?;
        let until = exchanged_tokens_dead_at(now);
        let entries: Vec<_> = ids.iter().map(|id| (id.clone(), until)).collect();
        crate::jwt::denylist::revoke(conn, &entries, now)?;
    }
    Ok(ids)
}

/// Delete every key of a workspace (it is being deleted; revoke them first).
pub fn delete_in_workspace(conn: &mut DbConn, workspace_id: &str) -> Result<usize, DbError> {
    Ok(
        diesel::delete(api_keys::table.filter(api_keys::workspace_id.eq(workspace_id)))
            .execute(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlists_take_addresses_and_cidr_blocks_of_both_families() {
        let nets = parse_allowed_ips("10.0.0.0/8, 192.168.1.7\n2001:db8::/32 ::1").unwrap();
        assert_eq!(
            nets_to_storage(&nets),
            "10.0.0.0/8,192.168.1.7/32,2001:db8::/32,::1/128"
        );
        assert!(ip_allowed(&nets, Some("10.1.2.3".parse().unwrap())));
        assert!(ip_allowed(&nets, Some("192.168.1.7".parse().unwrap())));
        assert!(!ip_allowed(&nets, Some("192.168.1.8".parse().unwrap())));
        assert!(ip_allowed(&nets, Some("2001:db8::42".parse().unwrap())));
        assert!(ip_allowed(&nets, Some("::1".parse().unwrap())));
        assert!(!ip_allowed(&nets, Some("2001:db9::1".parse().unwrap())));
        assert!(
            ip_allowed(&nets, Some("::ffff:10.9.9.9".parse().unwrap())),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!ip_allowed(&nets, None));
        assert!(ip_allowed(&[], None), "no allowlist: any address");
    }

    #[test]
    fn host_bits_are_cleared_and_garbage_refused() {
        assert_eq!(
            nets_to_storage(&parse_allowed_ips("10.1.2.3/8").unwrap()),
            "10.0.0.0/8"
        );
        assert!(parse_allowed_ips("10.0.0.0/33").is_err());
        assert!(parse_allowed_ips("example.com").is_err());
        assert!(parse_allowed_ips("").unwrap().is_empty());
    }
}
