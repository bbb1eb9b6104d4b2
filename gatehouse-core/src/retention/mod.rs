//! The janitor: deletes the rows that no longer say anything — spent and expired
//! authorization codes, refresh families past their end (with their tokens), expired
//! access-token revocations, ended sessions, old failed-login records, and audit events past
//! the retention period. Every instance may run it; on PostgreSQL an advisory lock lets one
//! at a time do the work. Deletes go in small batches, each its own short write, so that on
//! SQLite the janitor never holds the writer for more than a few milliseconds.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::accounts::{sessions, throttle};
use crate::authorize::pushed;
use crate::clients::{self, assertion};
use crate::db::{DbConn, DbError};
use crate::device as device_codes;
use crate::grants;
use crate::jwt::denylist;
use crate::oidc::backchannel;

/// Rows per delete: small enough that one batch is a few milliseconds of SQLite's writer.
pub const BATCH: i64 = 500;
/// Refresh families per delete: each takes every token rotated in it along (tens for a busy
/// grant), so fewer at a time.
const FAMILY_BATCH: i64 = 50;
/// Batches per table per pass, so that one pass ends even behind a large backlog (the next
/// pass goes on where it stopped).
const MAX_BATCHES: usize = 200;
/// Names Gatehouse's janitor among PostgreSQL advisory locks ("gh-janit").
const JANITOR_LOCK_KEY: i64 = 0x6768_2d6a_616e_6974;

/// How long an ended row is kept after its end, so that a late request still gets the precise
/// answer (a replayed code is recognised as spent, not unknown).
const KEPT_AFTER_END: Duration = Duration::hours(1);
/// Finished back-channel logout notices (delivered or given up) stay this long: the
/// "Connected apps" page shows the last one of each app.
const NOTICES_KEPT: Duration = Duration::days(30);
/// Failed logins older than this say nothing about the current window.
const FAILURES_KEPT: Duration = Duration::hours(1);

/// What is old enough to delete, for a pass at one moment.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    pub now: NaiveDateTime,
    /// Sessions and refresh families idle for longer than this have ended.
    pub session_idle: Duration,
    pub family_idle: Duration,
    /// Audit events older than this go; `None` keeps them all.
    pub audit_retention: Option<Duration>,
    /// Self-registered and metadata-document apps unused for longer than this go (with their
    /// grants); `None` keeps them.
    pub unused_clients: Option<Duration>,
}

/// Rows deleted by one pass, by table.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub auth_codes: usize,
    pub refresh_families: usize,
    pub refresh_tokens: usize,
    pub revoked_access_tokens: usize,
    pub sessions: usize,
    pub login_failures: usize,
    pub audit_events: usize,
    pub backchannel_logouts: usize,
    /// Apps that registered themselves (or came from a metadata document) and went unused.
    pub unused_clients: usize,
    /// Pushed authorization requests (RFC 9126) past their minute.
    pub pushed_requests: usize,
    /// Device authorizations (RFC 8628) past their expiry.
    pub device_codes: usize,
    /// Spent assertion and DPoP proof ids past their expiry.
    pub used_jtis: usize,
    /// The longest single write of the pass: how long the SQLite writer was held at most.
    #[serde(skip)]
    pub longest_write: std::time::Duration,
}

impl Swept {
    pub fn total(&self) -> usize {
        self.auth_codes
            + self.refresh_families
            + self.refresh_tokens
            + self.revoked_access_tokens
            + self.sessions
            + self.login_failures
            + self.audit_events
            + self.backchannel_logouts
            + self.unused_clients
            + self.pushed_requests
            + self.device_codes
            + self.used_jtis
    }

    /// (table, rows) pairs, for logs and metrics.
    pub fn by_table(&self) -> [(&'static str, usize); 12] {
        [
            ("auth_codes", self.auth_codes),
            ("refresh_families", self.refresh_families),
            ("refresh_tokens", self.refresh_tokens),
            ("revoked_access_tokens", self.revoked_access_tokens),
            ("sessions", self.sessions),
            ("login_failures", self.login_failures),
            ("audit_events", self.audit_events),
            ("backchannel_logouts", self.backchannel_logouts),
            ("clients", self.unused_clients),
            ("pushed_requests", self.pushed_requests),
            ("device_codes", self.device_codes),
            ("used_jtis", self.used_jtis),
        ]
    }
}

/// One pass over every table, or `None` when another instance is doing it right now.
pub fn sweep(conn: &mut DbConn, cutoffs: &Cutoffs) -> Result<Option<Swept>, DbError> {
    if !try_lock(conn)? {
        return Ok(None);
    }
    let result = sweep_all(conn, cutoffs);
    unlock(conn)?;
    result.map(Some)
}

fn sweep_all(conn: &mut DbConn, c: &Cutoffs) -> Result<Swept, DbError> {
    LONGEST_WRITE.set(std::time::Duration::ZERO);
    let mut swept = Swept {
        auth_codes: batches(conn, |conn| {
            let before = c.now - grants::CODE_KEPT_AFTER_EXPIRY;
            let ids = grants::auth_codes_past(conn, before, BATCH)?;
            delete_ids(conn, ids, grants::delete_auth_codes)
        })?,
        revoked_access_tokens: batches(conn, |conn| {
            let ids = denylist::revoked_access_tokens_past(conn, c.now, BATCH)?;
            delete_ids(conn, ids, denylist::delete_revoked_access_tokens)
        })?,
        sessions: batches(conn, |conn| {
            let ids = sessions::sessions_past(conn, c.now, c.now - c.session_idle, BATCH)?;
            delete_ids(conn, ids, sessions::delete_sessions)
        })?,
        login_failures: batches(conn, |conn| {
            let ids = throttle::login_failures_past(conn, c.now - FAILURES_KEPT, BATCH)?;
            delete_ids(conn, ids, throttle::delete_login_failures)
        })?,
        backchannel_logouts: batches(conn, |conn| {
            let ids = backchannel::backchannel_logouts_past(conn, c.now - NOTICES_KEPT, BATCH)?;
            delete_ids(conn, ids, backchannel::delete_backchannel_logouts)
        })?,
        pushed_requests: batches(conn, |conn| {
            let ids = pushed::pushed_requests_past(conn, c.now - KEPT_AFTER_END, BATCH)?;
            delete_ids(conn, ids, pushed::delete_pushed_requests)
        })?,
        device_codes: batches(conn, |conn| {
            let ids = device_codes::device_codes_past(conn, c.now - KEPT_AFTER_END, BATCH)?;
            delete_ids(conn, ids, device_codes::delete_device_codes)
        })?,
        used_jtis: batches(conn, |conn| {
            let ids = assertion::used_jtis_past(conn, c.now, BATCH)?;
            delete_ids(conn, ids, assertion::delete_used_jtis)
        })?,
        ..Swept::default()
    };
    let mut tokens = 0;
    swept.refresh_families = batches_of(FAMILY_BATCH, conn, |conn| {
        ended_families(conn, c, &mut tokens)
    })?;
    swept.refresh_tokens = tokens;
    if let Some(unused) = c.unused_clients {
        swept.unused_clients = batches_of(CLIENT_BATCH, conn, |conn| {
            unused_clients(conn, c.now, c.now - unused)
        })?;
    }
    if let Some(retention) = c.audit_retention {
        swept.audit_events = batches(conn, |conn| {
            let ids = crate::audit::audit_events_past(conn, c.now - retention, BATCH)?;
            delete_ids(conn, ids, crate::audit::delete_audit_events)
        })?;
    }
    swept.longest_write = LONGEST_WRITE.get();
    Ok(swept)
}

thread_local! {
    /// The longest write of the pass running on this thread.
    static LONGEST_WRITE: std::cell::Cell<std::time::Duration> =
        const { std::cell::Cell::new(std::time::Duration::ZERO) };
}

/// Run one of the pass's writes, keeping its duration if it is the longest so far.
fn timed_write<T>(work: impl FnOnce() -> T) -> T {
    let started = std::time::Instant::now();
    let result = work();
    let took = started.elapsed();
    LONGEST_WRITE.set(LONGEST_WRITE.get().max(took));
    result
}

/// Runs `one` (which deletes up to `BATCH` rows) until a batch comes back short.
fn batches(
    conn: &mut DbConn,
    one: impl FnMut(&mut DbConn) -> Result<usize, DbError>,
) -> Result<usize, DbError> {
    batches_of(BATCH, conn, one)
}

fn batches_of(
    size: i64,
    conn: &mut DbConn,
    mut one: impl FnMut(&mut DbConn) -> Result<usize, DbError>,
) -> Result<usize, DbError> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let deleted = one(conn)?;
        total += deleted;
        if (deleted as i64) < size {
            break;
        }
        // Let the writers queued behind this batch go first.
        std::thread::yield_now();
    }
    Ok(total)
}

/// Families past their absolute end or idle for longer than the idle limit (both kept an hour
/// more), with every token ever rotated in them.
fn ended_families(conn: &mut DbConn, c: &Cutoffs, tokens: &mut usize) -> Result<usize, DbError> {
    let before = c.now - KEPT_AFTER_END;
    let ids = grants::refresh_families_past(conn, before, before - c.family_idle, FAMILY_BATCH)?;
    if ids.is_empty() {
        return Ok(0);
    }
    let (families, rotated) = timed_write(|| grants::delete_refresh_families(conn, &ids))?;
    *tokens += rotated;
    Ok(families)
}

/// Apps per delete: each takes its consents, codes and refresh families along.
const CLIENT_BATCH: i64 = 50;

/// Self-registered and metadata-document apps not used since `before` (never used: registered
/// before it), deleted with everything of theirs; one audit event names them.
fn unused_clients(
    conn: &mut DbConn,
    now: NaiveDateTime,
    before: NaiveDateTime,
) -> Result<usize, DbError> {
    let ids = clients::unused_since(conn, before, CLIENT_BATCH)?;
    if ids.is_empty() {
        return Ok(0);
    }
    timed_write(|| {
        crate::db::write_transaction(conn, |conn| {
            let deleted = clients::delete_many(conn, &ids)?;
            let mut event = crate::audit::NewEvent::new(crate::audit::Action::ClientUnusedDeleted);
            event.via = Some("janitor");
            event.details = serde_json::json!({ "client_ids": ids });
            crate::audit::record(conn, &event, now)?;
            Ok(deleted)
        })
    })
}

/// One short write deleting the rows whose ids were just read (none: no write at all).
fn delete_ids(
    conn: &mut DbConn,
    ids: Vec<String>,
    delete: impl FnOnce(&mut DbConn, &[String]) -> Result<usize, diesel::result::Error>,
) -> Result<usize, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(crate::db::serialized_write(conn, |conn| {
        delete(conn, &ids)
    })?)
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    locked: bool,
}

/// On PostgreSQL, the janitor's advisory lock without waiting; SQLite's writer is the lock
/// there (and instances sharing one SQLite file are one machine's processes).
fn try_lock(conn: &mut DbConn) -> Result<bool, DbError> {
    match conn {
        DbConn::Sqlite(_) => Ok(true),
        DbConn::Pg(inner) => {
            let row: Locked = diesel::sql_query(format!(
                "SELECT pg_try_advisory_lock({JANITOR_LOCK_KEY}) AS locked"
            ))
            .get_result(inner)?;
            Ok(row.locked)
        }
    }
}

fn unlock(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Pg(inner) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({JANITOR_LOCK_KEY})"))
            .execute(inner)?;
    }
    Ok(())
}

/// One janitor pass for this server, at its clock's now; logs what it deleted.
pub async fn run(state: &crate::state::AppState) -> Result<Option<Swept>, DbError> {
    let cutoffs = Cutoffs {
        now: state.now(),
        session_idle: state.settings.session_idle,
        family_idle: crate::grants::family_policy(state).idle,
        audit_retention: state.settings.audit_retention,
        unused_clients: state.settings.registration.unused_after,
    };
    let swept = state.db(move |conn| sweep(conn, &cutoffs)).await?;
    if swept.is_some_and(|s| s.unused_clients > 0) {
        // Deleted apps must not be served from the cache (their grants went with them).
        state.key_cache.invalidate_all();
    }
    for (table, rows) in swept.iter().flat_map(Swept::by_table) {
        crate::metrics::janitor_deleted(table, rows);
    }
    match &swept {
        Some(swept) if swept.total() > 0 => {
            let parts: Vec<String> = swept
                .by_table()
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(table, n)| format!("{table}: {n}"))
                .collect();
            log::info!(
                "janitor deleted {} (longest write {:.1} ms)",
                parts.join(", "),
                swept.longest_write.as_secs_f64() * 1000.0
            );
        }
        Some(_) => {}
        None => log::debug!("janitor: another instance is sweeping"),
    }
    Ok(swept)
}
