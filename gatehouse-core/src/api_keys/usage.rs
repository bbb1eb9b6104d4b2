//! Last-used times of API keys, recorded in memory on the hot path and written in batches by
//! the housekeeping task (and at shutdown): a valid request costs no write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDateTime;

/// Keys recorded before a flush is due early: memory stays bounded when a burst uses many
/// different keys (between periodic flushes the buffer holds one entry per key used).
pub const FLUSH_AT: usize = 10_000;

/// Last-used times by key id, flushed to the database in batches.
#[derive(Default)]
pub struct UsageBuffer {
    pending: Mutex<HashMap<String, (NaiveDateTime, Option<IpAddr>)>>,
    /// An early flush is under way (at most one at a time).
    flushing: AtomicBool,
}

impl UsageBuffer {
    /// Record a use; `true` when the buffer is full and the caller should start an early
    /// flush (`true` goes to one caller until `flushed` is called).
    pub fn record(&self, key_id: &str, at: NaiveDateTime, ip: Option<IpAddr>) -> bool {
        let ip = ip.map(|i| i.to_canonical());
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(key_id) {
            Some(entry) if entry.0 >= at => {}
            Some(entry) => *entry = (at, ip),
            None => {
                pending.insert(key_id.to_owned(), (at, ip));
            }
        }
        let full = pending.len() >= FLUSH_AT;
        drop(pending);
        full && !self.flushing.swap(true, Ordering::AcqRel)
    }

    /// The early flush `record` asked for has finished.
    pub fn flushed(&self) {
        self.flushing.store(false, Ordering::Release);
    }

    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            let _ = self.record(&id, at, ip.parse().ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_buffer_asks_one_caller_for_an_early_flush() {
        let buffer = UsageBuffer::default();
        let at = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        for i in 0..FLUSH_AT - 1 {
            assert!(!buffer.record(&format!("key_{i}"), at, None));
        }
        // The same key again adds nothing.
        assert!(!buffer.record("key_0", at, None));
        assert!(buffer.record("key_last", at, None), "full: flush now");
        assert!(!buffer.record("key_more", at, None), "one flush at a time");
        assert_eq!(buffer.drain().len(), FLUSH_AT + 1);
        buffer.flushed();
        assert!(buffer.is_empty());
    }
}
