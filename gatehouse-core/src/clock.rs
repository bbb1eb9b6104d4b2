//! The time as Gatehouse sees it: UTC, truncated to microseconds (what PostgreSQL keeps, so
//! a stored time reads back equal on both backends). Tests swap in a `ManualClock` to move
//! time forward without sleeping.

use std::sync::Mutex;

use chrono::{DurationRound, NaiveDateTime, TimeDelta, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> NaiveDateTime;
}

pub fn truncate(t: NaiveDateTime) -> NaiveDateTime {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> NaiveDateTime {
        truncate(Utc::now().naive_utc())
    }
}

/// A clock that stands still until told to move.
#[derive(Debug)]
pub struct ManualClock(Mutex<NaiveDateTime>);

impl ManualClock {
    pub fn starting_now() -> ManualClock {
        ManualClock(Mutex::new(SystemClock.now()))
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> NaiveDateTime {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn utc(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
