//! Failed logins, kept in the database so that every instance sees the same counts: after
//! too many failures for one account or from one address within the window, further attempts
//! are refused (429) before any password is checked.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::config::LoginLimits;
use crate::db::schema::login_failures;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};

/// Seconds to wait before the next attempt may be made, or `None` when one may be made now.
pub fn retry_after(
    conn: &mut DbConn,
    account_key: &str,
    ip: &str,
    now: NaiveDateTime,
    limits: &LoginLimits,
) -> Result<Option<u64>, DbError> {
    let since = now - limits.window;
    let by_account: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::email.eq(account_key))
        .filter(login_failures::created_at.gt(since))
        .select(login_failures::created_at)
        .order(login_failures::created_at.desc())
        .limit(i64::from(limits.per_account))
        .load(conn)?;
    let by_ip: Vec<NaiveDateTime> = login_failures::table
        .filter(login_failures::ip.eq(ip))
        .filter(login_failures::created_at.gt(since))
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

pub fn record_failure(
    conn: &mut DbConn,
    account_key: &str,
    ip: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let id = new_id(IdKind::LoginFailure);
    diesel::insert_into(login_failures::table)
        .values((
            login_failures::id.eq(&id),
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

/// A successful login forgets the account's failures (not the address's).
pub fn clear_account(conn: &mut DbConn, account_key: &str) -> Result<(), DbError> {
    diesel::delete(login_failures::table.filter(login_failures::email.eq(account_key)))
        .execute(conn)?;
    Ok(())
}
