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

#[derive(Default)]
pub struct Denylist {
    /// Revoked `jti`s and grant ids → when the last token they name expires (Unix seconds).
    entries: RwLock<HashMap<String, i64>>,
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
        let hit = |id: &str| entries.get(id).is_some_and(|exp| *exp > now);
        // `grant.token[.exchanged…]`: the token, its grant, or any token it was exchanged from.
        hit(jti) || jti.match_indices('.').any(|(at, _)| hit(&jti[..at]))
    }

    /// Remember entries this instance (or a sync) learnt of.
    pub fn remember(&self, entries: impl IntoIterator<Item = (String, NaiveDateTime)>) {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        for (id, expires_at) in entries {
            let exp = expires_at.and_utc().timestamp();
            let slot = map.entry(id).or_insert(exp);
            *slot = (*slot).max(exp);
        }
        self.len.store(map.len(), Ordering::Release);
    }

    fn prune(&self, now: i64) {
        let mut map = self.entries.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, exp| *exp > now);
        self.len.store(map.len(), Ordering::Release);
    }

    /// Read what other instances revoked since the last sync, and forget what has expired.
    pub fn sync(&self, conn: &mut DbConn, now: NaiveDateTime) -> Result<(), DbError> {
        let since = *self.synced_at.read().unwrap_or_else(|e| e.into_inner());
        let mut query = revoked_access_tokens::table
            .filter(revoked_access_tokens::expires_at.gt(now))
            .select((revoked_access_tokens::id, revoked_access_tokens::expires_at))
            .into_boxed();
        if let Some(since) = since {
            query = query.filter(revoked_access_tokens::created_at.ge(since - SYNC_OVERLAP));
        }
        let rows: Vec<(String, NaiveDateTime)> = query.load(conn)?;
        self.remember(rows);
        self.prune(now.and_utc().timestamp());
        *self.synced_at.write().unwrap_or_else(|e| e.into_inner()) = Some(now);
        Ok(())
    }
}

/// Record revocations (ids already revoked are left as they are). Not for use inside a
/// transaction: a duplicate is detected by the unique violation.
pub fn revoke(
    conn: &mut DbConn,
    entries: &[(String, NaiveDateTime)],
    now: NaiveDateTime,
) -> Result<(), DbError> {
    for (id, expires_at) in entries {
        let inserted = diesel::insert_into(revoked_access_tokens::table)
            .values((
                revoked_access_tokens::id.eq(id),
                revoked_access_tokens::expires_at.eq(expires_at),
                revoked_access_tokens::created_at.eq(now),
            ))
            .execute(conn)
            .map_err(DbError::from);
        match inserted {
            Ok(_) => {}
            Err(e) if e.is_unique_violation() => {
                diesel::update(revoked_access_tokens::table.find(id))
                    .filter(revoked_access_tokens::expires_at.lt(expires_at))
                    .set(revoked_access_tokens::expires_at.eq(expires_at))
                    .execute(conn)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
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
}
