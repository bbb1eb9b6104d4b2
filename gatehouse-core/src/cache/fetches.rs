//! What the guarded fetch of metadata documents and `jwks_uri`s remembers
//! (`clients::documents`): recent failures by URL and by host, and the bound on fetches in flight.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{Duration, NaiveDateTime};

/// How long a failed fetch is answered from memory.
pub const FAILURE_MEMORY: Duration = Duration::seconds(60);

/// Failed URLs remembered at most (the oldest are forgotten first).
pub const FAILURE_ENTRIES: usize = 10_000;

/// Fetches in flight at once in this process (each holds a resolver thread for up to 3 s).
pub const CONCURRENT_FETCHES: usize = 8;

/// A host whose documents failed this often in the failure window is not asked again until
/// the window passes (random paths or queries cannot make it a fetch loop).
pub const HOST_FAILURES: u32 = 5;

/// Why a metadata document cannot describe an app: shown on the authorization error page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DocumentError(pub String);

/// At most 300 characters: a message may quote what the document's host sent.
pub fn bad(why: impl Into<String>) -> DocumentError {
    let why: String = why.into();
    DocumentError(if why.chars().count() > 300 {
        why.chars().take(300).chain("…".chars()).collect()
    } else {
        why
    })
}

/// Failed fetches by URL (answered from memory for a minute) and by host (a host that failed
/// [`HOST_FAILURES`] times in that minute is not asked again until it passes), and the bound
/// on fetches in flight.
pub struct Fetches {
    urls: Mutex<HashMap<String, (NaiveDateTime, DocumentError)>>,
    hosts: Mutex<HashMap<String, (NaiveDateTime, u32)>>,
    pub in_flight: tokio::sync::Semaphore,
}

impl Default for Fetches {
    fn default() -> Self {
        Fetches {
            urls: Mutex::default(),
            hosts: Mutex::default(),
            in_flight: tokio::sync::Semaphore::new(CONCURRENT_FETCHES),
        }
    }
}

/// Keep a failure map bounded: drop what is past the window, and everything if that is not
/// enough (a flood of distinct failures then costs at most one fetch each per window anyway).
fn bounded<V>(map: &mut HashMap<String, (NaiveDateTime, V)>, now: NaiveDateTime) {
    if map.len() >= FAILURE_ENTRIES {
        map.retain(|_, (at, _)| now - *at < FAILURE_MEMORY);
        if map.len() >= FAILURE_ENTRIES {
            map.clear();
        }
    }
}

impl Fetches {
    /// What is remembered of `url` or its `host` at `now` (the server's clock).
    pub fn recent(&self, url: &str, host: &str, now: NaiveDateTime) -> Option<DocumentError> {
        let urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, e)) = urls.get(url).filter(|(at, _)| now - *at < FAILURE_MEMORY) {
            return Some(e.clone());
        }
        drop(urls);
        let hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        hosts
            .get(host)
            .filter(|(at, n)| now - *at < FAILURE_MEMORY && *n >= HOST_FAILURES)
            .map(|_| {
                bad(format!(
                    "Documents on {host} failed too often lately: try again in a minute"
                ))
            })
    }

    pub fn remember(&self, url: &str, host: &str, error: &DocumentError, now: NaiveDateTime) {
        let mut urls = self.urls.lock().unwrap_or_else(|p| p.into_inner());
        bounded(&mut urls, now);
        urls.insert(url.to_owned(), (now, error.clone()));
        drop(urls);
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        bounded(&mut hosts, now);
        let entry = hosts.entry(host.to_owned()).or_insert((now, 0));
        if now - entry.0 >= FAILURE_MEMORY {
            *entry = (now, 0);
        }
        entry.1 += 1;
    }
}
