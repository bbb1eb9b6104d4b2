//! A map by id whose entries count for `ttl` after they were stored: rows read from the
//! database (clients, users), shared by the requests of the next moment.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(super) struct Fresh<V> {
    ttl: Duration,
    bound: usize,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> Fresh<V> {
    pub(super) fn new(ttl: Duration, bound: usize) -> Fresh<V> {
        Fresh {
            ttl,
            bound,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn get(&self, id: &str) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    pub(super) fn put(&self, id: String, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.bound {
            entries.clear();
        }
        entries.insert(id, (Instant::now(), value));
    }

    pub(super) fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
