//! Failed logins, kept in the database so that every instance sees the same counts: after
//! too many failures for one account or from one address within the window, further attempts
//! are refused (429) before any password is checked.
//!
//! An attempt is reserved before its password is checked: its row is inserted (and committed)
//! first, then the rows in the window are counted. Whichever of several concurrent attempts
//! commits last sees every earlier one, so however many arrive at once, at most the limit's
//! worth pass on either backend. An attempt that is refused takes its row back; one that fails
//! keeps it as the failure; a successful login forgets the account's failures.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::config::LoginLimits;
use crate::db::schema::login_failures;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};

/// The outcome of asking for one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The attempt may go ahead; until released, it counts as a failure under this row id.
    Reserved(String),
    /// Seconds to wait before the next attempt may be made.
    Throttled(u64),
}

/// Reserve one attempt for `account_key` from `ip`, or say how long to wait.
pub fn reserve(
    conn: &mut DbConn,
    account_key: &str,
    ip: &str,
    now: NaiveDateTime,
    limits: &LoginLimits,
) -> Result<Attempt, DbError> {
    let id = new_id(IdKind::LoginFailure);
    insert(conn, &id, account_key, ip, now)?;
    let wait = retry_after(conn, &id, account_key, ip, now, limits)?;
    match wait {
        None => Ok(Attempt::Reserved(id)),
        Some(seconds) => {
            release(conn, &id)?;
            Ok(Attempt::Throttled(seconds))
        }
    }
}

fn insert(
    conn: &mut DbConn,
    id: &str,
    account_key: &str,
    ip: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::id.eq(id),
            login_failures::email.eq(account_key),
            login_failures::ip.eq(ip),
            login_failures::created_at.eq(now),
        ))
        .execute(conn)?;
    // Old rows say nothing any more.
    diesel::delete(
        login_failures::table
            .filter(login_failures::created_at.lt(now - chrono::Duration::hours(1))),
    )
    .execute(conn)?;
    Ok(())
}

/// Seconds to wait when the other attempts in the window (all but `own`) reach a limit.
fn retry_after(
    conn: &mut DbConn,
    own: &str,
    account_key: &str,
    ip: &str,
    now: NaiveDateTime,
    limits: &LoginLimits,
) -> Result<Option<u64>, DbError> {
    let since = now - limits.window;
    let by_account: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::email.eq(account_key))
        .filter(login_failures::created_at.gt(since))
        .filter(login_failures::id.ne(own))
        .select(login_failures::created_at)
        .order(login_failures::created_at.desc())
        .limit(i64::from(limits.per_account))
        .load(conn)?;
    let by_ip: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::created_at.gt(since))
        .filter(login_failures::id.ne(own))
        .select(login_failures::created_at)
        .order(login_failures::created_at.desc())
        .limit(i64::from(limits.per_ip))
        .load(conn)?;
    // When the limit is reached, the wait ends when the oldest counted failure leaves the window.
    let wait = |times: &[NaiveDateTime], limit: u32| {
        (times.len() >= limit as usize)
            .then(|| {
                times
                    .last()
                    .map(|oldest| (*oldest + limits.window - now).num_seconds().max(1) as u64)
            })
            .flatten()
    };
    Ok(wait(&by_account, limits.per_account).max(wait(&by_ip, limits.per_ip)))
}

/// Take a reservation back: the attempt was refused or turned out not to be a failure.
pub fn release(conn: &mut DbConn, reservation: &str) -> Result<(), DbError> {
    diesel::delete(login_failures::table.find(reservation)).execute(conn)?;
    Ok(())
}

/// A successful login forgets the account's failures (not the address's).
pub fn clear_account(conn: &mut DbConn, account_key: &str) -> Result<(), DbError> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(account_key)))
        .execute(conn)?;
    Ok(())
}

/// Failed logins recorded before `cutoff` (the janitor deletes them in batches).
pub fn login_failures_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(login_failures::table
        .filter(login_failures::created_at.lt(cutoff))
        .select(login_failures::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `login_failures`.
pub fn delete_login_failures(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(login_failures::table.filter(login_failures::id.eq_any(ids))).execute(conn)
}
