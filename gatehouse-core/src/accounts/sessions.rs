//! Server-side browser sessions. The cookie holds a random `ses_…` secret; the table holds
//! only its HMAC digest. A session ends after an idle period or at its absolute expiry,
//! whichever comes first, and at logout.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::model::User;
use crate::db::schema::{sessions, users};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::secrets::{Pepper, PlainSecret};

pub const SESSION_PREFIX: &str = "ses_";

/// `last_seen_at` is refreshed at most this often, so reading a page is not a write each time.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub token_digest: String,
    pub user_id: String,
    pub created_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Insertable)]
#[diesel(table_name = sessions)]
struct SessionRow<'a> {
    id: &'a str,
    token_digest: &'a str,
    user_id: &'a str,
    created_at: NaiveDateTime,
    last_seen_at: NaiveDateTime,
    expires_at: NaiveDateTime,
    ip: Option<&'a str>,
    user_agent: Option<&'a str>,
}

/// Where a session was started from.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Start a new session for `user_id`; the returned secret goes into the cookie, once.
pub fn create_session(
    conn: &mut DbConn,
    pepper: &Pepper,
    user_id: &str,
    client: &ClientInfo,
    now: NaiveDateTime,
    lifetime: Duration,
) -> Result<(PlainSecret, Session), DbError> {
    let token = PlainSecret::generate(SESSION_PREFIX);
    let digest = pepper.digest_secret(&token);
    let id = new_id(IdKind::Session);
    let user_agent: Option<String> = client
        .user_agent
        .as_deref()
        .map(|ua| ua.chars().take(256).collect());
    let row = SessionRow {
        id: &id,
        token_digest: &digest,
        user_id,
        created_at: now,
        last_seen_at: now,
        expires_at: now + lifetime,
        ip: client.ip.as_deref(),
        user_agent: user_agent.as_deref(),
    };
    crate::db::write_transaction(conn, |conn| {
        // Housekeeping that costs nothing noticeable at login: drop this user's dead sessions.
        diesel::delete(
            sessions::table
                .filter(sessions::user_id.eq(user_id))
                .filter(sessions::expires_at.le(now)),
        )
        .execute(conn)?;
        diesel::insert_into(sessions::table)
            .values(&row)
            .execute(conn)
    })?;
    let session = sessions::table
        .find(&id)
        .select(Session::as_select())
        .first(conn)?;
    Ok((token, session))
}

/// The live session (and its enabled user) for a cookie value, or `None`. A malformed value
/// is refused without a query; an expired session is deleted.
pub fn find_live_session(
    conn: &mut DbConn,
    pepper: &Pepper,
    cookie_value: &str,
    now: NaiveDateTime,
    idle: Duration,
) -> Result<Option<(Session, User)>, DbError> {
    let Ok(token) = PlainSecret::parse(SESSION_PREFIX, cookie_value) else {
        return Ok(None);
    };
    let digest = pepper.digest_secret(&token);
    let found: Option<(Session, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::token_digest.eq(&digest))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    let Some((session, user)) = found else {
        return Ok(None);
    };
    if now >= session.expires_at || now - session.last_seen_at >= idle {
        diesel::delete(sessions::table.find(&session.id)).execute(conn)?;
        return Ok(None);
    }
    if user.is_disabled() {
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY {
        diesel::update(sessions::table.find(&session.id))
            .set(sessions::last_seen_at.eq(now))
            .execute(conn)?;
    }
    Ok(Some((session, user)))
}

pub fn delete_session(conn: &mut DbConn, session_id: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.find(session_id)).execute(conn)?;
    Ok(())
}

/// The ids of a user's sessions other than `keep`.
pub fn other_session_ids(
    conn: &mut DbConn,
    user_id: &str,
    keep: &str,
) -> Result<Vec<String>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::id.ne(keep))
        .select(sessions::id)
        .load(conn)?)
}

/// End every session of a user but `keep` (the one that asked, when changing a password).
pub fn delete_other_sessions(
    conn: &mut DbConn,
    user_id: &str,
    keep: Option<&str>,
) -> Result<usize, DbError> {
    let query = sessions::table.filter(sessions::user_id.eq(user_id));
    Ok(match keep {
        Some(keep) => diesel::delete(query.filter(sessions::id.ne(keep))).execute(conn)?,
        None => diesel::delete(query).execute(conn)?,
    })
}

/// Sessions ended by `now` (past their absolute end) or idle since `idle_cutoff` (the janitor
/// deletes them in batches).
pub fn sessions_past(
    conn: &mut DbConn,
    now: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(sessions::table
        .filter(
            sessions::expires_at
                .le(now)
                .or(sessions::last_seen_at.le(idle_cutoff)),
        )
        .select(sessions::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these sessions.
pub fn delete_sessions(conn: &mut DbConn, ids: &[String]) -> Result<usize, diesel::result::Error> {
    diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)
}

/// End every session of a user (disabled): how many.
pub fn delete_of_user(conn: &mut DbConn, user_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::user_id.eq(user_id))).execute(conn)?)
}
