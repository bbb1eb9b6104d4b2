//! Last-used times of API keys, recorded in memory on the hot path and written in batches by
//! the housekeeping task (and at shutdown): a valid request costs no write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::NaiveDateTime;

/// Last-used times by key id, flushed to the database in batches.
#[derive(Default)]
pub struct UsageBuffer {
    pending: Mutex<HashMap<String, (NaiveDateTime, Option<IpAddr>)>>,
}

impl UsageBuffer {
    pub fn record(&self, key_id: &str, at: NaiveDateTime, ip: Option<IpAddr>) {
        let ip = ip.map(|i| i.to_canonical());
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
        pending
            .drain()
            .map(|(id, (at, ip))| (id, at, ip.map(|i| i.to_string()).unwrap_or_default()))
            .collect()
    }

    /// Put back a batch whose write failed, so it is tried again at the next flush.
    pub fn restore(&self, batch: Vec<(String, NaiveDateTime, String)>) {
        for (id, at, ip) in batch {
            self.record(&id, at, ip.parse().ok());
        }
    }
}
