//! Token issuances counted in memory until they are recorded (`grants::audit`): one
//! window per party and minute.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::audit::{Action, NewEvent};

/// How long issuances of one client are gathered into one event.
pub const ISSUANCE_WINDOW: Duration = Duration::minutes(1);

/// Issuances of one kind to one party not yet recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuances {
    pub action: Action,
    /// Who was issued tokens, and how (the event's details, the same for the whole window).
    pub details: serde_json::Value,
    pub user_id: Option<String>,
    pub count: u64,
    pub first_at: NaiveDateTime,
    pub last_at: NaiveDateTime,
}

impl Issuances {
    fn key(&self) -> String {
        format!("{}:{}", self.action.as_str(), self.details)
    }

    /// The audit event that records the window.
    pub fn event(&self) -> NewEvent {
        let mut event = NewEvent::new(self.action);
        let mut details = self.details.clone();
        if let Some(map) = details.as_object_mut() {
            map.insert("count".into(), json!(self.count));
            map.insert("first_at".into(), json!(crate::clock::utc(self.first_at)));
            map.insert("last_at".into(), json!(crate::clock::utc(self.last_at)));
        }
        event.details = details;
        event.subject_user_id = self.user_id.clone();
        event
    }
}

/// The open windows, one per party that was issued a token in the last minute.
#[derive(Debug, Default)]
pub struct IssuanceTally {
    open: Mutex<HashMap<String, Issuances>>,
}

impl IssuanceTally {
    /// Count one issuance; the party's previous window when it is a minute old (to record).
    pub fn note(
        &self,
        action: Action,
        details: serde_json::Value,
        user_id: Option<&str>,
        now: NaiveDateTime,
    ) -> Option<Issuances> {
        let fresh = Issuances {
            action,
            details,
            user_id: user_id.map(str::to_owned),
            count: 1,
            first_at: now,
            last_at: now,
        };
        let key = fresh.key();
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        match open.get_mut(&key) {
            Some(window) if now - window.first_at < ISSUANCE_WINDOW => {
                window.count += 1;
                window.last_at = now;
                None
            }
            Some(window) => Some(std::mem::replace(window, fresh)),
            None => {
                open.insert(key, fresh);
                None
            }
        }
    }

    /// Take the windows a minute old (`everything`: all of them, at shutdown).
    pub fn take_due(&self, now: NaiveDateTime, everything: bool) -> Vec<Issuances> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let due: Vec<String> = open
            .iter()
            .filter(|(_, w)| everything || now - w.first_at >= ISSUANCE_WINDOW)
            .map(|(k, _)| k.clone())
            .collect();
        due.iter().filter_map(|k| open.remove(k)).collect()
    }
}
