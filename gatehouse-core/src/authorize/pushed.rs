//! Pushed authorization requests (RFC 9126) as stored: one row per push, kept as a digest of
//! its `request_uri`, usable once, by the client that pushed it, within its lifetime. The only
//! place that queries `pushed_requests`; the endpoint is the server's (`authorize::par`).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::pushed_requests;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::secrets::{Pepper, PlainSecret};
use crate::state::AppState;

/// RFC 9126 §2.2: the `request_uri` names its secret after this.
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
pub const SECRET_PREFIX: &str = "par_";
/// How long a pushed request may be used (RFC 9126 suggests a short time; at most a minute).
pub const LIFETIME: Duration = Duration::seconds(60);
/// Once the browser arrived within `LIFETIME`: how long the user has from the push to sign in
/// and decide.
pub const DECISION_WINDOW: Duration = Duration::minutes(10);

/// Store a push; the secret of its `request_uri`.
pub fn store(
    conn: &mut DbConn,
    pepper: &Pepper,
    client_id: &str,
    params: &str,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let secret = PlainSecret::generate(SECRET_PREFIX);
    crate::db::serialized_write(conn, |conn| {
        diesel::insert_into(pushed_requests::table)
            .values((
                pushed_requests::id.eq(new_id(IdKind::PushedRequest)),
                pushed_requests::digest.eq(pepper.digest_secret(&secret)),
                pushed_requests::client_id.eq(client_id),
                pushed_requests::params.eq(params),
                pushed_requests::created_at.eq(now),
                pushed_requests::expires_at.eq(now + LIFETIME),
            ))
            .execute(conn)
    })?;
    Ok(secret)
}

/// Why a `request_uri` cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unusable {
    /// Not ours, unknown, or pushed by another client (one answer for all three).
    Unknown,
    Expired,
    Used,
}

impl Unusable {
    pub fn message(self) -> &'static str {
        match self {
            Unusable::Unknown => {
                "The request_uri is not one this application pushed here: start again from the application"
            }
            Unusable::Expired => {
                "The pushed authorization request has expired: start again from the application"
            }
            Unusable::Used => {
                "The pushed authorization request was already used: start again from the application"
            }
        }
    }
}

/// A pushed request: its row id and the parameters pushed.
pub struct Pushed {
    pub id: String,
    /// The pushed parameters, as JSON (the authorization endpoint reads them).
    pub params: String,
}

/// The request `request_uri` names, if `client_id` pushed it and it is still usable. The
/// browser must arrive within `LIFETIME` of the push; its (first) arrival gives the user until
/// `DECISION_WINDOW` after the push to sign in and decide.
pub async fn find(
    state: &AppState,
    client_id: &str,
    request_uri: &str,
    arriving: bool,
) -> Result<Result<Pushed, Unusable>, DbError> {
    let Some(secret) = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .and_then(|s| PlainSecret::parse(SECRET_PREFIX, s).ok())
    else {
        return Ok(Err(Unusable::Unknown));
    };
    let digest = state.digest_pepper.digest_secret(&secret);
    type Row = (
        String,
        String,
        String,
        NaiveDateTime,
        NaiveDateTime,
        Option<NaiveDateTime>,
    );
    let found: Option<Row> = state
        .db(move |c| {
            Ok(pushed_requests::table
                .filter(pushed_requests::digest.eq(&digest))
                .select((
                    pushed_requests::id,
                    pushed_requests::client_id,
                    pushed_requests::params,
                    pushed_requests::created_at,
                    pushed_requests::expires_at,
                    pushed_requests::consumed_at,
                ))
                .first(c)
                .optional()?)
        })
        .await?;
    let Some((id, owner, params, created_at, expires_at, consumed_at)) = found else {
        return Ok(Err(Unusable::Unknown));
    };
    if owner != client_id {
        return Ok(Err(Unusable::Unknown));
    }
    if consumed_at.is_some() {
        return Ok(Err(Unusable::Used));
    }
    if expires_at <= state.now() {
        return Ok(Err(Unusable::Expired));
    }
    let decide_by = created_at + DECISION_WINDOW;
    if arriving && expires_at < decide_by {
        let row = id.clone();
        state
            .db(move |c| {
                diesel::update(
                    pushed_requests::table
                        .find(&row)
                        .filter(pushed_requests::consumed_at.is_null()),
                )
                .set(pushed_requests::expires_at.eq(decide_by))
                .execute(c)?;
                Ok(())
            })
            .await?;
    }
    Ok(Ok(Pushed { id, params }))
}

/// Spend a pushed request (the user decided): `false` when it was spent already.
pub fn consume(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let spent = diesel::update(
        pushed_requests::table
            .find(id)
            .filter(pushed_requests::consumed_at.is_null()),
    )
    .set(pushed_requests::consumed_at.eq(now))
    .execute(conn)?;
    Ok(spent == 1)
}

/// Pushed requests expired before `cutoff` (the janitor deletes them in batches).
pub fn pushed_requests_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(pushed_requests::table
        .filter(pushed_requests::expires_at.lt(cutoff))
        .select(pushed_requests::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `pushed_requests`.
pub fn delete_pushed_requests(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(pushed_requests::table.filter(pushed_requests::id.eq_any(ids))).execute(conn)
}
