//! When a refused use of an API key was last audited, per key and reason: a revoked key in a
//! retry loop is one audit event a minute, not a write per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const AUDIT_EVERY: Duration = Duration::from_secs(60);

#[derive(Default)]
pub(super) struct RefusalLog {
    seen: Mutex<HashMap<String, Vec<(&'static str, Instant)>>>,
}

impl RefusalLog {
    pub(super) fn should_audit(&self, key_id: &str, reason: &'static str, bound: usize) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= bound {
            seen.retain(|_, reasons| reasons.iter().any(|(_, at)| at.elapsed() < AUDIT_EVERY));
        }
        // Looked up by &str: a refused request allocates nothing here.
        if let Some(reasons) = seen.get_mut(key_id) {
            return match reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, at)) if at.elapsed() < AUDIT_EVERY => false,
                Some((_, at)) => {
                    *at = Instant::now();
                    true
                }
                None => {
                    reasons.push((reason, Instant::now()));
                    true
                }
            };
        }
        seen.insert(key_id.to_owned(), vec![(reason, Instant::now())]);
        true
    }
}
