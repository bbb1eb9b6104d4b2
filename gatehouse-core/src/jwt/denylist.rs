//! Access tokens revoked before they expire. A JWT is checked offline, so revoking one means
//! remembering its `jti` (or the grant it belongs to) until its `exp`. The table is the truth;
//! every instance keeps the live entries in memory, adds its own revocations at once and reads
//! the others' every few seconds, so the check on the hot path is a map lookup and no query.
//!
//! Tokens issued under a grant (a refresh family) carry the grant in their `jti`
//! (`fam_….<random>`): revoking the grant revokes every access token it ever issued, without
//! Gatehouse having to store each one.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::schema::revoked_access_tokens;
use crate::db::{DbConn, DbError};

/// Rows created up to this long before the last sync are read again: another instance's
/// transaction may commit a little after the time it wrote.
const SYNC_OVERLAP: Duration = Duration::seconds(15);

/// The grant an access token belongs to, if any: the part of its `jti` before the dot.
pub fn grant_of(jti: &str) -> Option<&str> {
    jti.split_once('.').map(|(grant, _)| grant)
}

/// A `jti` for a token issued under `grant` (or on its own).
pub fn new_jti(grant: Option<&str>) -> String {
    let own = crate::ids::new_id(crate::ids::IdKind::TokenId);
    match grant {
        Some(grant) => format!("{grant}.{own}"),
        None => own,
    }
}

/// When an entry refuses tokens: from `from` (a rolled key's grace end; `i64::MIN` for at once)
/// until `until`, when the last token it names expires (Unix seconds).
#[derive(Debug, Clone, Copy)]
struct Window {
    from: i64,
    until: i64,
}

#[derive(Default)]
pub struct Denylist {
    /// Revoked `jti`s and grant ids (and API key ids, for the tokens exchanged for a key).
    entries: RwLock<HashMap<String, Window>>,
    /// `entries.len()`, read without the lock: nothing revoked is the common case.
    len: AtomicUsize,
    synced_at: RwLock<Option<NaiveDateTime>>,
}

impl Denylist {
    /// Is the token with this `jti` revoked (itself or its grant)?
    pub fn is_revoked(&self, jti: &str, now: i64) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let hit = |id: &str| {
            entries
                .get(id)
                .is_some_and(|w| w.from <= now && now < w.until)
        };
        // `grant.token[.exchanged…]`: the token, its grant, or any token it was exchanged from.
        hit(jti) || jti.match_indices('.').any(|(at, _)| hit(&jti[..at]))
    }

    /// Remember revocations (in effect at once) this instance learnt of.
    pub fn remember(&self, entries: impl IntoIterator<Item = (String, NaiveDateTime)>) {
        self.remember_from(entries.into_iter().map(|(id, until)| (id, None, until)));
    }

    /// Remember revocations that may take effect later (`Some(from)`): a sync's rows, a roll.
    /// Two entries for one id make one that starts at the earlier and ends at the later.
    pub fn remember_from(
        &self,
        entries: impl IntoIterator<Item = (String, Option<NaiveDateTime>, NaiveDateTime)>,
    ) {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for (id, from, until) in entries {
            let window = Window {
                from: from.map_or(i64::MIN, |f| f.and_utc().timestamp()),
                until: until.and_utc().timestamp(),
            };
            let slot = map.entry(id).or_insert(window);
            slot.from = slot.from.min(window.from);
            slot.until = slot.until.max(window.until);
        }
        self.len.store(map.len(), Ordering::Release);
    }

    fn prune(&self, now: i64) {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, w| w.until > now);
        self.len.store(map.len(), Ordering::Release);
    }

    /// Read what other instances revoked since the last sync, and forget what has expired.
    pub fn sync(&self, conn: &mut DbConn, now: NaiveDateTime) -> Result<(), DbError> {
        let since = *self.synced_at.read().unwrap_or_else(|e| e.into_inner());
        let mut query = revoked_access_tokens::table
            .filter(revoked_access_tokens::expires_at.gt(now))
            .select((
                revoked_access_tokens::id,
                revoked_access_tokens::revoked_from,
                revoked_access_tokens::expires_at,
            ))
            .into_boxed();
        if let Some(since) = since {
            query = query.filter(revoked_access_tokens::created_at.ge(since - SYNC_OVERLAP));
        }
        let rows: Vec<(String, Option<NaiveDateTime>, NaiveDateTime)> = query.load(conn)?;
        self.remember_from(rows);
        self.prune(now.and_utc().timestamp());
        *self.synced_at.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(())
    }
}

/// Record revocations in effect at once (an entry already there is made to start now and to
/// end at the later of both ends).
pub fn revoke(
    conn: &mut DbConn,
    entries: &[(String, NaiveDateTime)],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    for (id, expires_at) in entries {
        record(conn, id, None, *expires_at, now)?;
    }
    Ok(())
}

/// Revoke `id` from `from` on (until `until`): the tokens it names keep working until then.
/// An entry already there keeps the earlier start (one revoked at once stays so) and the later
/// end.
pub fn revoke_from(
    conn: &mut DbConn,
    id: &str,
    from: NaiveDateTime,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    record(conn, id, Some(from), until, now)
}

/// Insert or widen one entry; its `created_at` becomes `now` either way, so that the other
/// instances' next sync reads the change. Inside a transaction the row is looked for first;
/// two revocations of one id racing outside any transaction meet at the unique key instead.
fn record(
    conn: &mut DbConn,
    id: &str,
    from: Option<NaiveDateTime>,
    until: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let find = |conn: &mut DbConn| {
        revoked_access_tokens::table
            .find(id)
            .select((
                revoked_access_tokens::revoked_from,
                revoked_access_tokens::expires_at,
            ))
            .first::<(Option<NaiveDateTime>, NaiveDateTime)>(conn)
            .optional()
    };
    let mut existing = find(conn)?;
    if existing.is_none() {
        let inserted = diesel::insert_into(revoked_access_tokens::table)
            .values((
                revoked_access_tokens::id.eq(id),
                revoked_access_tokens::expires_at.eq(until),
                revoked_access_tokens::created_at.eq(now),
                revoked_access_tokens::revoked_from.eq(from),
            ))
            .execute(conn)
            .map_err(DbError::from);
        match inserted {
            Ok(_) => return Ok(()),
            Err(e) if e.is_unique_violation() => existing = find(conn)?,
            Err(e) => return Err(e),
        }
    }
    let Some((existing_from, expires_at)) = existing else {
        return Ok(());
    };
    let starts = match (existing_from, from) {
        (Some(a), Some(b)) => Some(a.min(b)),
        _ => None,
    };
    diesel::update(revoked_access_tokens::table.find(id))
        .set((
            revoked_access_tokens::revoked_from.eq(starts),
            revoked_access_tokens::expires_at.eq(expires_at.max(until)),
            revoked_access_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Revocations that ended by `cutoff` (the janitor deletes them in batches).
pub fn revoked_access_tokens_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(revoked_access_tokens::table
        .filter(revoked_access_tokens::expires_at.le(cutoff))
        .select(revoked_access_tokens::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `revoked_access_tokens`.
pub fn delete_revoked_access_tokens(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(revoked_access_tokens::table.filter(revoked_access_tokens::id.eq_any(ids)))
        .execute(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revoked_grant_revokes_every_token_issued_under_it() {
        let list = Denylist::default();
        let now = chrono::Utc::now().naive_utc();
        let t = now.and_utc().timestamp();
        let (a, b, lone) = (
            new_jti(Some("fam_1")),
            new_jti(Some("fam_2")),
            new_jti(None),
        );
        assert_eq!(grant_of(&a), Some("fam_1"));
        assert_eq!(grant_of(&lone), None);
        assert!(!list.is_revoked(&a, t));
        list.remember([
            ("fam_1".to_owned(), now + Duration::minutes(15)),
            (lone.clone(), now + Duration::minutes(1)),
        ]);
        assert!(list.is_revoked(&a, t));
        assert!(!list.is_revoked(&b, t), "another grant");
        assert!(list.is_revoked(&lone, t));
        assert!(!list.is_revoked(&lone, t + 120), "past its expiry");
        list.prune(t + 120);
        assert!(list.is_revoked(&a, t + 120));
        assert_eq!(list.len.load(Ordering::Acquire), 1);
    }

    #[test]
    fn revoking_a_token_revokes_the_tokens_exchanged_from_it_and_not_its_siblings() {
        let list = Denylist::default();
        let now = chrono::Utc::now().naive_utc();
        let t = now.and_utc().timestamp();
        let original = new_jti(Some("fam_1"));
        let sibling = new_jti(Some("fam_1"));
        let exchanged = new_jti(Some(&original));
        let twice = new_jti(Some(&exchanged));
        list.remember([(original.clone(), now + Duration::minutes(15))]);
        assert!(list.is_revoked(&original, t));
        assert!(list.is_revoked(&exchanged, t));
        assert!(list.is_revoked(&twice, t));
        assert!(!list.is_revoked(&sibling, t), "same grant, another token");
        // A prefix that is not a whole segment does not match.
        let lookalike = format!("{original}x.jti_1");
        assert!(!list.is_revoked(&lookalike, t));
    }

    #[test]
    fn a_revocation_from_later_lets_tokens_pass_until_then() {
        let list = Denylist::default();
        let now = chrono::Utc::now().naive_utc();
        let t = now.and_utc().timestamp();
        let token = new_jti(Some("key_1"));
        list.remember_from([(
            "key_1".to_owned(),
            Some(now + Duration::minutes(5)),
            now + Duration::minutes(66),
        )]);
        assert!(!list.is_revoked(&token, t), "within the grace period");
        assert!(!list.is_revoked(&token, t + 299));
        assert!(list.is_revoked(&token, t + 300), "from the grace end on");
        assert!(list.is_revoked(&token, t + 3000));
        // Revoked at once afterwards (the key revoked during its grace): at once it is.
        list.remember([("key_1".to_owned(), now + Duration::minutes(61))]);
        assert!(list.is_revoked(&token, t));
        assert!(list.is_revoked(&token, t + 3000), "the later end is kept");
    }
}
