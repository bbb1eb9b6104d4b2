//! What one check of a limit answers, local or shared: the allowance, what remains, when it is
//! whole again, and when to retry.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The outcome of one check, for the response headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateDecision {
    pub limit: u32,
    pub remaining: u32,
    /// Unix time at which the full allowance is back.
    pub reset_at: u64,
    /// Set when refused: seconds until the next request may pass.
    pub retry_after: Option<u64>,
}

impl RateDecision {
    /// A request that passed, leaving `remaining` of `per_minute`.
    pub fn allowed(per_minute: u32, remaining: u32) -> RateDecision {
        let refill = replenish_interval(per_minute) * per_minute.saturating_sub(remaining);
        RateDecision {
            limit: per_minute,
            remaining,
            reset_at: unix_now() + refill.as_secs_f64().ceil() as u64,
            retry_after: None,
        }
    }

    /// A request refused: the next may pass after `wait`.
    pub fn refused(per_minute: u32, wait: Duration) -> RateDecision {
        let refill = replenish_interval(per_minute) * per_minute;
        RateDecision {
            limit: per_minute,
            remaining: 0,
            reset_at: unix_now() + refill.as_secs_f64().ceil() as u64,
            retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
        }
    }
}

/// The time in which one request of a per-minute allowance comes back.
pub fn replenish_interval(per_minute: u32) -> Duration {
    Duration::from_secs(60) / per_minute.max(1)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
