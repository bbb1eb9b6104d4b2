//! The device codes of RFC 8628 (the flow is in `device`): a `device_code` (the device's
//! secret, kept as a digest) and a `user_code` (eight consonants, also kept as a digest), their
//! polling, the user's decision and the one spend. The only place that queries `device_codes`.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::device_codes;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret};

pub const DEVICE_CODE_PREFIX: &str = "dc_";
/// How long the user has to enter the code.
pub const LIFETIME: Duration = Duration::minutes(10);
/// Seconds between polls (RFC 8628 §3.2 default); each `slow_down` adds five.
pub const INTERVAL: i32 = 5;
/// Consonants only: no vowels (no words), no look-alikes of digits.
const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;
/// Codes one browser session, and one address, may enter per minute.
pub const ENTRIES_PER_SESSION: u32 = 10;
pub const ENTRIES_PER_ADDRESS: u32 = 30;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = device_codes)]
pub struct DeviceCode {
    pub id: String,
    pub device_code_digest: String,
    pub user_code_digest: String,
    pub client_id: String,
    pub scopes: String,
    pub resource: Option<String>,
    /// `pending`, `approved`, `denied`, `consumed`.
    pub status: String,
    pub user_id: Option<String>,
    pub workspace_id: Option<String>,
    pub session_id: Option<String>,
    pub auth_time: Option<NaiveDateTime>,
    pub interval_seconds: i32,
    pub last_polled_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub decided_at: Option<NaiveDateTime>,
}

impl DeviceCode {
    pub fn scope_set(&self) -> ScopeSet {
        ScopeSet::parse(&self.scopes).unwrap_or_default()
    }
}

/// The code as typed: letters of the alphabet in any case, dashes and spaces ignored.
pub fn normalize_user_code(raw: &str) -> Option<String> {
    let code: String = raw
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{2010}'..='\u{2015}'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// `BDFHJKLM` as shown: `BDFH-JKLM`.
pub fn display_user_code(code: &str) -> String {
    format!("{}-{}", &code[..4], &code[4..])
}

pub fn user_code_digest(pepper: &Pepper, normalized: &str) -> String {
    pepper.digest(&["device-user-code", normalized])
}

/// A new device authorization.
pub struct NewDevice {
    pub client_id: String,
    pub scopes: ScopeSet,
    pub resource: Option<String>,
}

/// Insert a device authorization: its device code and its user code (normalized).
pub fn insert(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewDevice,
    now: NaiveDateTime,
) -> Result<(PlainSecret, String), DbError> {
    let device_code = PlainSecret::generate(DEVICE_CODE_PREFIX);
    // 20^8 codes: a clash with a live one is rare, and answered with another code.
    let mut attempt = 0;
    loop {
        let user_code = crate::secrets::random_from(ALPHABET, USER_CODE_LEN);
        let inserted = crate::db::serialized_write(conn, |conn| {
            diesel::insert_into(device_codes::table)
                .values((
                    device_codes::id.eq(new_id(IdKind::DeviceCode)),
                    device_codes::device_code_digest.eq(pepper.digest_secret(&device_code)),
                    device_codes::user_code_digest.eq(user_code_digest(pepper, &user_code)),
                    device_codes::client_id.eq(&new.client_id),
                    device_codes::scopes.eq(new.scopes.to_storage()),
                    device_codes::resource.eq(&new.resource),
                    device_codes::interval_seconds.eq(INTERVAL),
                    device_codes::created_at.eq(now),
                    device_codes::expires_at.eq(now + LIFETIME),
                ))
                .execute(conn)
        })
        .map_err(DbError::from);
        match inserted {
            Ok(_) => return Ok((device_code, user_code)),
            Err(e) if e.is_unique_violation() && attempt < 3 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// The authorization a device code names (`None` for anything not shaped like one).
pub fn find_by_device_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
) -> Result<Option<DeviceCode>, DbError> {
    let Ok(code) = PlainSecret::parse(DEVICE_CODE_PREFIX, presented) else {
        return Ok(None);
    };
    Ok(device_codes::table
        .filter(device_codes::device_code_digest.eq(pepper.digest_secret(&code)))
        .select(DeviceCode::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_user_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    normalized: &str,
) -> Result<Option<DeviceCode>, DbError> {
    Ok(device_codes::table
        .filter(device_codes::user_code_digest.eq(user_code_digest(pepper, normalized)))
        .select(DeviceCode::as_select())
        .first(conn)
        .optional()?)
}

/// A poll of a pending authorization, decided in one statement each (two polls at once cannot
/// both be in time): `Ok(None)` when it came at least `interval_seconds` after the last one
/// (recorded as the last now), `Ok(Some(next))` when too early — the interval grows by five
/// seconds (RFC 8628 §3.5) and `next` is the new one.
pub fn poll(
    conn: &mut DbConn,
    id: &str,
    interval_seconds: i32,
    now: NaiveDateTime,
) -> Result<Option<i32>, DbError> {
    let latest_in_time = now - chrono::Duration::seconds(i64::from(interval_seconds));
    let in_time = diesel::update(
        device_codes::table.find(id).filter(
            device_codes::last_polled_at
                .is_null()
                .or(device_codes::last_polled_at.le(latest_in_time)),
        ),
    )
    .set(device_codes::last_polled_at.eq(now))
    .execute(conn)?;
    if in_time == 1 {
        return Ok(None);
    }
    diesel::update(device_codes::table.find(id))
        .set((
            device_codes::last_polled_at.eq(now),
            device_codes::interval_seconds.eq(device_codes::interval_seconds + 5),
        ))
        .execute(conn)?;
    let next = device_codes::table
        .find(id)
        .select(device_codes::interval_seconds)
        .first::<i32>(conn)
        .optional()?;
    Ok(Some(next.unwrap_or(interval_seconds + 5)))
}

/// Spend an approved authorization: `false` when it was spent already (a second poll).
pub fn spend(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<bool, DbError> {
    let spent = diesel::update(
        device_codes::table
            .find(id)
            .filter(device_codes::status.eq("approved")),
    )
    .set((
        device_codes::status.eq("consumed"),
        device_codes::last_polled_at.eq(now),
    ))
    .execute(conn)?;
    Ok(spent == 1)
}

/// The user's decision about a pending, unexpired authorization: `false` when it was decided
/// already or has expired.
pub fn decide(
    conn: &mut DbConn,
    id: &str,
    approved: Option<(&str, &str, NaiveDateTime, &str)>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let target = device_codes::table
        .find(id)
        .filter(device_codes::status.eq("pending"))
        .filter(device_codes::expires_at.gt(now));
    let changed = match approved {
        Some((user_id, session_id, auth_time, workspace_id)) => diesel::update(target)
            .set((
                device_codes::status.eq("approved"),
                device_codes::user_id.eq(user_id),
                device_codes::session_id.eq(session_id),
                device_codes::auth_time.eq(auth_time),
                device_codes::workspace_id.eq(workspace_id),
                device_codes::decided_at.eq(now),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                device_codes::status.eq("denied"),
                device_codes::decided_at.eq(now),
            ))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

/// Device codes expired before `cutoff` (the janitor deletes them in batches).
pub fn device_codes_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(device_codes::table
        .filter(device_codes::expires_at.lt(cutoff))
        .select(device_codes::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `device_codes`.
pub fn delete_device_codes(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(device_codes::table.filter(device_codes::id.eq_any(ids))).execute(conn)
}
