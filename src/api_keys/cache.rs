//! What the hot path keeps in memory: verified keys by digest (for at most `ttl`, the bound on
//! how late another instance sees a revocation) and last-used times waiting to be written in
//! a batch. Both are per instance; neither is needed by another instance to be correct.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use ipnet::IpNet;

use super::model::ApiKey;
use crate::accounts::model::User;
use crate::scopes::ScopeSet;

/// A key as the hot path needs it, with its owner and parsed scopes and allowlist.
#[derive(Debug)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub user: User,
    pub scopes: ScopeSet,
    pub nets: Vec<IpNet>,
}

impl KeyRecord {
    pub fn new(key: ApiKey, user: User) -> KeyRecord {
        let scopes = key.scope_set();
        let nets = key.allowed_nets();
        KeyRecord {
            key,
            user,
            scopes,
            nets,
        }
    }
}

/// Most entries kept; past this the cache starts over (a flood of unknown keys cannot grow it).
const MAX_ENTRIES: usize = 50_000;

/// When an answer was cached, and the answer (`None`: the digest matches no key).
type Entry = (Instant, Option<Arc<KeyRecord>>);

/// Verified keys by digest.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(entry)` when a fresh answer is cached.
    pub fn get(&self, digest: &str) -> Option<Option<Arc<KeyRecord>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(digest)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, record)| record.clone())
    }

    pub fn put(&self, digest: String, record: Option<Arc<KeyRecord>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (Instant::now(), record));
    }

    /// Forget everything: after a revocation, roll, update or a user being disabled here.
    pub fn invalidate_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Last-used times by key id, flushed to the database in batches.
#[derive(Default)]
pub struct UsageBuffer {
    pending: Mutex<HashMap<String, (NaiveDateTime, String)>>,
}

impl UsageBuffer {
    pub fn record(&self, key_id: &str, at: NaiveDateTime, ip: Option<IpAddr>) {
        let ip = ip.map(|i| i.to_canonical().to_string()).unwrap_or_default();
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(key_id) {
            Some(entry) if entry.0 >= at => {}
            Some(entry) => *entry = (at, ip),
            None => {
                pending.insert(key_id.to_owned(), (at, ip));
            }
        }
    }

    /// Take everything recorded so far.
    pub fn drain(&self) -> Vec<(String, NaiveDateTime, String)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.drain().map(|(id, (at, ip))| (id, at, ip)).collect()
    }

    /// Put back a batch whose write failed, so it is tried again at the next flush.
    pub fn restore(&self, batch: Vec<(String, NaiveDateTime, String)>) {
        for (id, at, ip) in batch {
            self.record(&id, at, ip.parse().ok());
        }
    }
}
