//! What a user's approval becomes: the remembered consent, the single-use code that carries it
//! to the token endpoint, and the refresh tokens of the family it starts. The only place that
//! queries `consents`, `auth_codes`, `refresh_families` and `refresh_tokens`.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::{auth_codes, consents, refresh_families, refresh_tokens};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret};

pub const CODE_PREFIX: &str = "ac_";
pub const REFRESH_PREFIX: &str = "rt_";
pub const CODE_LIFETIME: Duration = Duration::seconds(60);

/// The scopes `user_id` already approved for `client_id`.
pub fn consented_scopes(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> Result<ScopeSet, DbError> {
    let stored: Option<String> = consents::table
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .select(consents::scopes)
        .first(conn)
        .optional()?;
    Ok(stored
        .and_then(|s| ScopeSet::parse(&s).ok())
        .unwrap_or_default())
}

/// Remember an approval: the union of what was approved before and now.
pub fn remember_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    scopes: &ScopeSet,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let before = consented_scopes(conn, user_id, client_id)?;
        let union: ScopeSet = before.iter().chain(scopes.iter()).cloned().collect();
        let updated = diesel::update(
            consents::table
                .filter(consents::user_id.eq(user_id))
                .filter(consents::client_id.eq(client_id)),
        )
        .set((
            consents::scopes.eq(union.to_storage()),
            consents::updated_at.eq(now),
        ))
        .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(consents::table)
                .values((
                    consents::id.eq(new_id(IdKind::Consent)),
                    consents::user_id.eq(user_id),
                    consents::client_id.eq(client_id),
                    consents::scopes.eq(union.to_storage()),
                    consents::created_at.eq(now),
                    consents::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = auth_codes)]
pub struct AuthCode {
    pub id: String,
    pub code_digest: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    /// The resource (RFC 8707) the authorization request named.
    pub resource: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    /// The S256 PKCE challenge, when the client sent one.
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub resource: Option<String>,
}

pub fn issue_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewCode,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let code = PlainSecret::generate(CODE_PREFIX);
    crate::db::serialized_write(conn, |conn| {
        diesel::insert_into(auth_codes::table)
            .values((
                auth_codes::id.eq(new_id(IdKind::AuthCode)),
                auth_codes::code_digest.eq(pepper.digest_secret(&code)),
                auth_codes::client_id.eq(&new.client_id),
                auth_codes::user_id.eq(&new.user_id),
                auth_codes::redirect_uri.eq(&new.redirect_uri),
                auth_codes::scopes.eq(new.scopes.to_storage()),
                auth_codes::code_challenge.eq(&new.code_challenge),
                auth_codes::auth_time.eq(new.auth_time),
                auth_codes::created_at.eq(now),
                auth_codes::expires_at.eq(now + CODE_LIFETIME),
                auth_codes::resource.eq(&new.resource),
            ))
            .execute(conn)
    })?;
    Ok(code)
}

pub enum Redemption {
    /// This call consumed the code; nobody else will.
    Redeemed(Box<AuthCode>),
    /// The code was consumed before: a replay. Its families have been revoked.
    Replayed {
        client_id: String,
        user_id: String,
        /// The refresh families (grants) revoked now.
        families: Vec<String>,
    },
    Expired,
    Unknown,
}

/// Consume a code atomically: of concurrent redemptions exactly one sees `Redeemed`. A replay
/// revokes every refresh family the code started.
pub fn redeem_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    now: NaiveDateTime,
) -> Result<Redemption, DbError> {
    let Ok(code) = PlainSecret::parse(CODE_PREFIX, presented) else {
        return Ok(Redemption::Unknown);
    };
    let digest = pepper.digest_secret(&code);
    let claimed = crate::db::serialized_write(conn, |conn| {
        diesel::update(
            auth_codes::table
                .filter(auth_codes::code_digest.eq(&digest))
                .filter(auth_codes::consumed_at.is_null()),
        )
        .set(auth_codes::consumed_at.eq(now))
        .execute(conn)
    })?;
    let found: Option<AuthCode> = auth_codes::table
        .filter(auth_codes::code_digest.eq(&digest))
        .select(AuthCode::as_select())
        .first(conn)
        .optional()?;
    let Some(found) = found else {
        return Ok(Redemption::Unknown);
    };
    if claimed == 0 {
        let families = revoke_families_of_code(conn, &found.id, now, "code_replay")?;
        return Ok(Redemption::Replayed {
            client_id: found.client_id,
            user_id: found.user_id,
            families,
        });
    }
    if found.expires_at <= now {
        return Ok(Redemption::Expired);
    }
    Ok(Redemption::Redeemed(Box::new(found)))
}

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
}

/// How long a family lives: in all, and without being used.
#[derive(Debug, Clone, Copy)]
pub struct FamilyPolicy {
    pub absolute: Duration,
    pub idle: Duration,
    /// How long after a rotation the rotated token may be presented once more (0: never).
    pub reuse_grace: Duration,
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

fn insert_token(
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
        diesel::insert_into(refresh_families::table)
            .values((
                refresh_families::id.eq(family_id),
                refresh_families::client_id.eq(client_id),
                refresh_families::user_id.eq(user_id),
                refresh_families::code_id.eq(code_id),
                refresh_families::resource.eq(resource),
                refresh_families::scopes.eq(scopes.to_storage()),
                refresh_families::auth_time.eq(auth_time),
                refresh_families::created_at.eq(now),
                refresh_families::last_used_at.eq(now),
                refresh_families::expires_at.eq(now + policy.absolute),
            ))
            .execute(conn)?;
        insert_token(conn, pepper, family_id, scopes, now)
    })
}

pub enum Refresh {
    Rotated {
        family: Box<RefreshFamily>,
        token: PlainSecret,
        scopes: ScopeSet,
    },
    /// An already-rotated token: the family is revoked now.
    Reused { family_id: String, user_id: String },
    /// Unknown, revoked, expired or another client's.
    Invalid,
    /// Asked for a scope the family was never granted.
    ScopeWidened,
}

/// Rotate `presented`: exactly one of concurrent callers gets a new token; presenting a
/// rotated token revokes the whole family (reuse detection).
pub fn rotate(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    client_id: &str,
    requested: Option<&ScopeSet>,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<Refresh, DbError> {
    let Ok(token) = PlainSecret::parse(REFRESH_PREFIX, presented) else {
        return Ok(Refresh::Invalid);
    };
    let digest = pepper.digest_secret(&token);
    crate::db::write_transaction(conn, |conn| {
        let found: Option<(String, Option<NaiveDateTime>, String, RefreshFamily)> =
            refresh_tokens::table
                .inner_join(refresh_families::table)
                .filter(refresh_tokens::token_digest.eq(&digest))
                .select((
                    refresh_tokens::id,
                    refresh_tokens::rotated_at,
                    refresh_tokens::scopes,
                    RefreshFamily::as_select(),
                ))
                .first(conn)
                .optional()?;
        let Some((token_id, rotated_at, token_scopes, family)) = found else {
            return Ok(Refresh::Invalid);
        };
        if family.client_id != client_id || family.revoked_at.is_some() {
            return Ok(Refresh::Invalid);
        }
        if family.expires_at <= now || family.last_used_at + policy.idle <= now {
            return Ok(Refresh::Invalid);
        }
        let family_scopes = ScopeSet::parse(&family.scopes).unwrap_or_default();
        let scopes = match requested {
            Some(asked) if !asked.is_subset(&family_scopes) => return Ok(Refresh::ScopeWidened),
            Some(asked) => asked.clone(),
            None => ScopeSet::parse(&token_scopes).unwrap_or_default(),
        };
        let claimed = match rotated_at {
            None => diesel::update(
                refresh_tokens::table
                    .find(&token_id)
                    .filter(refresh_tokens::rotated_at.is_null()),
            )
            .set(refresh_tokens::rotated_at.eq(now))
            .execute(conn)?,
            // Within the grace window, once: the tab that lost the race gets a token too.
            Some(at) if now - at <= policy.reuse_grace && !policy.reuse_grace.is_zero() => {
                diesel::update(
                    refresh_tokens::table
                        .find(&token_id)
                        .filter(refresh_tokens::grace_used.eq(false)),
                )
                .set(refresh_tokens::grace_used.eq(true))
                .execute(conn)?
            }
            Some(_) => 0,
        };
        if claimed == 0 {
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
        })
    })
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
        self.family
            .expires_at
            .min(self.family.last_used_at + policy.idle)
    }

    /// Would a refresh with it succeed now? A rotated token is spent, unless it is inside the
    /// grace window and its one retry is unused.
    pub fn is_active(&self, policy: FamilyPolicy, now: NaiveDateTime) -> bool {
        let usable = match self.rotated_at {
            None => true,
            Some(at) => {
                !policy.reuse_grace.is_zero() && now - at <= policy.reuse_grace && !self.grace_used
            }
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
    Ok(refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::client_id.eq(client_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::expires_at.gt(now))
        .select(refresh_families::id)
        .load(conn)?)
}
