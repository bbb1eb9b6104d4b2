//! Request rate limits per subject (a credential, a client address, a client id), with the
//! seeds' `X-RateLimit-*` headers. The counters live in this instance's memory (governor's
//! GCRA): with N instances behind a balancer a client can reach up to N times the limit.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

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

/// One keyed limiter per distinct per-minute quota: the configured ones are built up front
/// (no lock on the common path), per-key overrides on first use.
pub struct RateLimits {
    common: Vec<(u32, Arc<Keyed>)>,
    overrides: Mutex<HashMap<u32, Arc<Keyed>>>,
    clock: DefaultClock,
}

fn keyed(per_minute: u32) -> Arc<Keyed> {
    let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
    Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl RateLimits {
    /// Limiters for the configured per-minute allowances.
    pub fn new(configured: &[u32]) -> RateLimits {
        let mut common: Vec<(u32, Arc<Keyed>)> = Vec::new();
        for n in configured.iter().map(|n| (*n).max(1)) {
            if !common.iter().any(|(m, _)| *m == n) {
                common.push((n, keyed(n)));
            }
        }
        RateLimits {
            common,
            overrides: Mutex::new(HashMap::new()),
            clock: DefaultClock::default(),
        }
    }

    fn limiter(&self, per_minute: u32) -> Arc<Keyed> {
        if let Some((_, limiter)) = self.common.iter().find(|(n, _)| *n == per_minute) {
            return limiter.clone();
        }
        let mut overrides = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        overrides
            .entry(per_minute)
            .or_insert_with(|| keyed(per_minute))
            .clone()
    }

    /// Count one request of `subject` against `per_minute`.
    pub fn check(&self, subject: String, per_minute: u32) -> RateDecision {
        let per_minute = per_minute.max(1);
        let limiter = self.limiter(per_minute);
        let replenish = Duration::from_secs(60) / per_minute;
        match limiter.check_key(&subject) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let refill = replenish * (per_minute - remaining);
                RateDecision {
                    limit: per_minute,
                    remaining,
                    reset_at: unix_now() + refill.as_secs_f64().ceil() as u64,
                    retry_after: None,
                }
            }
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                let refill = replenish * per_minute;
                RateDecision {
                    limit: per_minute,
                    remaining: 0,
                    reset_at: unix_now() + refill.as_secs_f64().ceil() as u64,
                    retry_after: Some(wait.as_secs_f64().ceil().max(1.0) as u64),
                }
            }
        }
    }

    /// Drop the state of subjects that are back to a full allowance (bounded memory).
    pub fn shrink(&self) {
        let overrides = self.overrides.lock().unwrap_or_else(|p| p.into_inner());
        for limiter in self.common.iter().map(|(_, l)| l).chain(overrides.values()) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_counts_down_then_refuses_with_retry_after() {
        let limits = RateLimits::new(&[200, 10]);
        let first = limits.check("key:a".into(), 3);
        assert_eq!(
            (first.limit, first.remaining, first.retry_after),
            (3, 2, None)
        );
        assert_eq!(limits.check("key:a".into(), 3).remaining, 1);
        assert_eq!(limits.check("key:a".into(), 3).remaining, 0);
        let refused = limits.check("key:a".into(), 3);
        assert!(
            refused.retry_after.is_some_and(|s| (1..=20).contains(&s)),
            "{refused:?}"
        );
        assert_eq!(
            limits.check("key:b".into(), 3).remaining,
            2,
            "subjects are counted apart"
        );
    }
}
