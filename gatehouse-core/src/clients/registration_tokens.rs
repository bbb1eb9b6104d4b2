//! Initial access tokens (RFC 7591 §3): what an operator hands out so that an app may register
//! itself where open registration is off. Kept as digests, usable a number of times until they
//! expire or are revoked. The only place that queries `registration_tokens`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::registration_tokens;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::secrets::{Pepper, PlainSecret};

/// Initial access tokens start so (a registration access token, `rat_`, is the app's own).
pub const INITIAL_TOKEN_PREFIX: &str = "iat_";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = registration_tokens)]
pub struct RegistrationToken {
    pub id: String,
    pub digest: String,
    pub label: String,
    pub created_by: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub uses_left: Option<i32>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl RegistrationToken {
    pub fn usable(&self, now: NaiveDateTime) -> bool {
        self.revoked_at.is_none() && now < self.expires_at && self.uses_left.is_none_or(|n| n > 0)
    }
}

/// Mint an initial access token (shown once).
pub fn mint_initial_token(
    conn: &mut DbConn,
    pepper: &Pepper,
    label: &str,
    created_by: Option<&str>,
    expires_at: NaiveDateTime,
    uses: Option<i32>,
    now: NaiveDateTime,
) -> Result<(RegistrationToken, PlainSecret), DbError> {
    let secret = PlainSecret::generate(INITIAL_TOKEN_PREFIX);
    let id = new_id(IdKind::RegistrationToken);
    diesel::insert_into(registration_tokens::table)
        .values((
            registration_tokens::id.eq(&id),
            registration_tokens::digest.eq(pepper.digest_secret(&secret)),
            registration_tokens::label.eq(label),
            registration_tokens::created_by.eq(created_by),
            registration_tokens::created_at.eq(now),
            registration_tokens::expires_at.eq(expires_at),
            registration_tokens::uses_left.eq(uses),
        ))
        .execute(conn)?;
    let token = registration_tokens::table
        .find(&id)
        .select(RegistrationToken::as_select())
        .first(conn)?;
    Ok((token, secret))
}

pub fn list_initial_tokens(conn: &mut DbConn) -> Result<Vec<RegistrationToken>, DbError> {
    Ok(registration_tokens::table
        .select(RegistrationToken::as_select())
        .order(registration_tokens::created_at.desc())
        .limit(200)
        .load(conn)?)
}

/// `true` if a token was revoked.
pub fn revoke_initial_token(
    conn: &mut DbConn,
    id: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        registration_tokens::table
            .find(id)
            .filter(registration_tokens::revoked_at.is_null()),
    )
    .set(registration_tokens::revoked_at.eq(now))
    .execute(conn)?
        == 1)
}

/// Use the token once, if it is usable: one conditional statement, so two registrations
/// racing for a token's last use cannot both have it.
pub fn spend_initial_token(
    conn: &mut DbConn,
    digest: &str,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let spent = diesel::update(
        registration_tokens::table
            .filter(registration_tokens::digest.eq(digest))
            .filter(registration_tokens::revoked_at.is_null())
            .filter(registration_tokens::expires_at.gt(now))
            .filter(
                registration_tokens::uses_left
                    .is_null()
                    .or(registration_tokens::uses_left.gt(0)),
            ),
    )
    .set(registration_tokens::uses_left.eq(registration_tokens::uses_left - 1))
    .execute(conn)?;
    Ok(spent == 1)
}
