//! Back-Channel Logout 1.0: what a session's end does to its sign-ins, and the notices to
//! apps (RP-Initiated Logout, `/oauth/logout`, is in `logout`).
//!
//! When a browser session ends (the user signs out, here or through an app; an administrator
//! disables the user), `session_ended` does, in the caller's transaction:
//! - revoke the sign-ins (`openid` grants) of that session that do not hold `offline_access`,
//!   so their access tokens stop at once (the caller puts the returned grants on the denylist);
//! - queue a logout notice for every app with a `backchannel_logout_uri` that the user signed
//!   in to from that session (`backchannel_logouts`).
//!
//! The notices are delivered by `deliver_due`, in the background: started right after the
//! request that queued them (never inside it: the user's sign-out completes at once whatever
//! the apps do) and on every housekeeping tick, with a 5 s timeout per try and up to four tries
//! (at once, then after 10 s, 1 min and 5 min); a notice that fails four times is audited. Rows
//! are claimed before sending, so two instances never deliver the same notice twice at once.
//!
//! A notice goes only to an `https` endpoint whose host resolves to public addresses (SSRF: any
//! registered app names the URL); `GATEHOUSE_BACKCHANNEL_ALLOW_PRIVATE=1` lifts that for a
//! private network or development.

use std::time::Duration as StdDuration;

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::audit::{self, Action, NewEvent};
use crate::clients::Client;
use crate::db::schema::backchannel_logouts;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::{Builtin, ScopeSet};
use crate::state::AppState;

/// The event a logout token carries (Back-Channel Logout §2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Tries after the first, and the wait before each.
const RETRY_AFTER: [i64; 3] = [10, 60, 300];
const DELIVERY_TIMEOUT: StdDuration = StdDuration::from_secs(5);
/// Notices one pass delivers at most (the rest wait for the next pass).
const BATCH: i64 = 50;

/// Which sessions ended.
#[derive(Debug, Clone, Copy)]
pub enum Ended<'a> {
    /// One browser session.
    Session(&'a str),
    /// Every session of the user (disabled by an administrator).
    Everywhere,
}

/// What a session end changed: the grants revoked (for the denylist) and whether notices were
/// queued (then start `deliver_due`).
#[derive(Debug, Default)]
pub struct SessionEnd {
    pub revoked_grants: Vec<String>,
    pub notices: usize,
}

/// A grant of an ended session: id, client, scopes, session, revoked at.
use crate::grants::GrantOfSession;

/// See the module header. Runs in the caller's connection (and transaction, if any).
pub fn session_ended(
    conn: &mut DbConn,
    user_id: &str,
    ended: Ended<'_>,
    reason: &str,
    now: NaiveDateTime,
) -> Result<SessionEnd, DbError> {
    let session = match ended {
        Ended::Session(id) => Some(id),
        _ => None,
    };
    let grants: Vec<GrantOfSession> = crate::grants::made_in_sessions(conn, user_id, session)?;
    let mut end = SessionEnd::default();
    let mut told: Vec<(String, Option<String>)> = Vec::new();
    for (id, client_id, scopes, session_id, revoked_at) in grants {
        let scopes = ScopeSet::parse(&scopes).unwrap_or_default();
        if !scopes.contains(Builtin::OpenId.as_str()) {
            continue;
        }
        if revoked_at.is_none() && !scopes.contains(Builtin::OfflineAccess.as_str()) {
            end.revoked_grants.push(id);
        }
        let pair = (client_id, session_id);
        if !told.contains(&pair) {
            told.push(pair);
        }
    }
    crate::grants::end_at_logout(conn, &end.revoked_grants, now)?;
    let client_ids: Vec<&String> = told.iter().map(|(c, _)| c).collect();
    let listening = crate::clients::listening_for_logout(conn, &client_ids)?;
    for (client_id, session_id) in told.iter().filter(|(c, _)| listening.contains(c)) {
        diesel::insert_into(backchannel_logouts::table)
            .values((
                backchannel_logouts::id.eq(new_id(IdKind::LogoutNotice)),
                backchannel_logouts::client_id.eq(client_id),
                backchannel_logouts::user_id.eq(user_id),
                backchannel_logouts::session_id.eq(session_id),
                backchannel_logouts::reason.eq(reason),
                backchannel_logouts::created_at.eq(now),
                backchannel_logouts::next_attempt_at.eq(now),
            ))
            .execute(conn)?;
        end.notices += 1;
    }
    Ok(end)
}

/// After a session end: deny the revoked grants' access tokens here and now, and deliver the
/// notices in the background.
pub async fn after_session_end(state: &AppState, end: SessionEnd) {
    crate::grants::deny_grants(state, &end.revoked_grants).await;
    if end.notices > 0 {
        let (state, background) = (state.clone(), state.background.clone());
        background.spawn(async move {
            deliver_due(&state).await;
        });
    }
}

/// A logout token (Back-Channel Logout §2.4).
#[derive(Debug, Serialize, Deserialize)]
pub struct LogoutClaims {
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub events: serde_json::Value,
}

#[derive(Queryable)]
struct Due {
    id: String,
    client_id: String,
    user_id: String,
    session_id: Option<String>,
    attempts: i64,
    next_attempt_at: NaiveDateTime,
}

/// Deliver the notices that are due; how many were delivered.
pub async fn deliver_due(state: &AppState) -> usize {
    let now = state.now();
    let due = state
        .db(move |c| {
            Ok(backchannel_logouts::table
                .filter(backchannel_logouts::delivered_at.is_null())
                .filter(backchannel_logouts::failed_at.is_null())
                .filter(backchannel_logouts::next_attempt_at.le(now))
                .order(backchannel_logouts::next_attempt_at.asc())
                .limit(BATCH)
                .select((
                    backchannel_logouts::id,
                    backchannel_logouts::client_id,
                    backchannel_logouts::user_id,
                    backchannel_logouts::session_id,
                    backchannel_logouts::attempts,
                    backchannel_logouts::next_attempt_at,
                ))
                .load::<Due>(c)?)
        })
        .await;
    let due = match due {
        Ok(due) => due,
        Err(e) => {
            log::warn!("back-channel logout: reading due notices: {e}");
            return 0;
        }
    };
    let mut delivered = 0;
    for notice in due {
        if deliver_one(state, notice).await {
            delivered += 1;
        }
    }
    delivered
}

/// Claim a due notice for one try: `Ok(1)` when this instance has it.
fn claim(
    conn: &mut DbConn,
    id: &str,
    seen: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        backchannel_logouts::table
            .find(id)
            .filter(backchannel_logouts::next_attempt_at.eq(seen))
            .filter(backchannel_logouts::delivered_at.is_null()),
    )
    .set((
        backchannel_logouts::next_attempt_at.eq(now + Duration::seconds(60)),
        backchannel_logouts::attempts.eq(backchannel_logouts::attempts + 1),
    ))
    .execute(conn)?)
}

/// Record how a try went: delivered, given up (audited), or due again after the next wait.
fn record_try(
    conn: &mut DbConn,
    id: &str,
    error: Option<&str>,
    gave_up: bool,
    attempts: i64,
    event: &NewEvent,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let row = backchannel_logouts::table.find(id);
    match error {
        None => diesel::update(row)
            .set((
                backchannel_logouts::delivered_at.eq(now),
                backchannel_logouts::last_error.eq(None::<String>),
            ))
            .execute(conn)?,
        Some(why) if gave_up => {
            audit::record(conn, event, now)?;
            diesel::update(row)
                .set((
                    backchannel_logouts::failed_at.eq(now),
                    backchannel_logouts::last_error.eq(why),
                ))
                .execute(conn)?
        }
        Some(why) => {
            let wait = RETRY_AFTER[(attempts - 1) as usize];
            diesel::update(row)
                .set((
                    backchannel_logouts::next_attempt_at.eq(now + Duration::seconds(wait)),
                    backchannel_logouts::last_error.eq(why),
                ))
                .execute(conn)?
        }
    };
    Ok(())
}

async fn deliver_one(state: &AppState, notice: Due) -> bool {
    let now = state.now();
    // Claim: push the next try past this one's timeout; a row another instance claimed first
    // no longer has the `next_attempt_at` read above.
    let (id, seen) = (notice.id.clone(), notice.next_attempt_at);
    let claimed = state.db(move |c| claim(c, &id, seen, now)).await;
    if !matches!(claimed, Ok(1)) {
        return false;
    }
    let client_id = notice.client_id.clone();
    let client = state.db(move |c| crate::clients::find(c, &client_id)).await;
    let outcome = match client {
        Ok(Some(client)) => send(state, &client, &notice).await,
        Ok(None) => Err("the app was deleted".to_owned()),
        Err(e) => Err(format!("database: {e}")),
    };
    let attempts = notice.attempts + 1;
    let (id, now) = (notice.id.clone(), state.now());
    let error = outcome.as_ref().err().cloned();
    let gave_up = error.is_some() && attempts > RETRY_AFTER.len() as i64;
    let mut event = NewEvent::new(Action::BackchannelLogoutFailed);
    event.subject_user_id = Some(notice.user_id.clone());
    event.details = serde_json::json!({
        "client_id": notice.client_id,
        "attempts": attempts,
        "error": error,
    });
    let recorded = state
        .db(move |c| record_try(c, &id, error.as_deref(), gave_up, attempts, &event, now))
        .await;
    if let Err(e) = recorded {
        log::warn!("back-channel logout: recording a delivery: {e}");
    }
    crate::metrics::background_run("backchannel_logout", outcome.is_ok(), StdDuration::ZERO);
    outcome.is_ok()
}

/// POST the logout token; `Err` says why it did not arrive.
async fn send(state: &AppState, client: &Client, notice: &Due) -> Result<(), String> {
    let uri = client
        .backchannel_logout_uri
        .as_deref()
        .ok_or("the app no longer has a back-channel logout URI")?;
    use crate::net::outbound::{self, Unreachable};
    let url = reqwest::Url::parse(uri).map_err(|_| "the URI does not parse".to_owned())?;
    let allow_private = state.settings.backchannel_allow_private;
    if url.scheme() != "https" && !allow_private {
        return Err("only https endpoints are notified".into());
    }
    let host = url.host_str().unwrap_or_default().to_owned();
    let allowed = |ip| allow_private || outbound::is_public(ip);
    let pinned = outbound::pin(&url, allowed, DELIVERY_TIMEOUT)
        .await
        .map_err(|why| match why {
            Unreachable::NoHost => "the URI has no host or port".to_owned(),
            Unreachable::DoesNotResolve => format!("{host} does not resolve"),
            Unreachable::NotAllowed => format!(
                "{host} resolves to a private address (set GATEHOUSE_BACKCHANNEL_ALLOW_PRIVATE=1 to allow)"
            ),
        })?;
    let now = state.now().and_utc().timestamp();
    let claims = LogoutClaims {
        iss: state.settings.issuer.clone(),
        aud: client.id.clone(),
        iat: now,
        exp: now + 120,
        jti: new_id(IdKind::LogoutNotice),
        sub: notice.user_id.clone(),
        sid: notice.session_id.clone(),
        events: serde_json::json!({ LOGOUT_EVENT: {} }),
    };
    let token = state
        .key_ring()
        .sign_as(&claims, "logout+jwt")
        .map_err(|e| format!("signing: {e}"))?;
    // The guarded client: only the addresses checked above, no redirect.
    let http = pinned
        .client(DELIVERY_TIMEOUT)
        .map_err(|e| format!("client: {e}"))?;
    let response = http
        .post(url)
        .header("cache-control", "no-store")
        .form(&[("logout_token", token)])
        .send()
        .await
        .map_err(|e| format!("{e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("the app answered {}", response.status().as_u16()))
    }
}

/// An app's last sign-out notice to a user: client id, queued, delivered, given up.
pub type Notice = (
    String,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
);

/// The last notice of each app for a user (the "Connected apps" page).
pub fn last_notices(conn: &mut DbConn, user_id: &str) -> Result<Vec<Notice>, DbError> {
    let rows: Vec<Notice> = backchannel_logouts::table
        .filter(backchannel_logouts::user_id.eq(user_id))
        .order(backchannel_logouts::created_at.desc())
        .limit(200)
        .select((
            backchannel_logouts::client_id,
            backchannel_logouts::created_at,
            backchannel_logouts::delivered_at,
            backchannel_logouts::failed_at,
        ))
        .load(conn)?;
    let mut last: Vec<Notice> = Vec::new();
    for row in rows {
        if !last.iter().any(|l| l.0 == row.0) {
            last.push(row);
        }
    }
    Ok(last)
}

/// Logout notices delivered or given up on before `cutoff` (pending ones stay, however old).
pub fn backchannel_logouts_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(backchannel_logouts::table
        .filter(backchannel_logouts::created_at.lt(cutoff))
        .filter(
            backchannel_logouts::delivered_at
                .is_not_null()
                .or(backchannel_logouts::failed_at.is_not_null()),
        )
        .select(backchannel_logouts::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these notices.
pub fn delete_backchannel_logouts(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(backchannel_logouts::table.filter(backchannel_logouts::id.eq_any(ids)))
        .execute(conn)
}
