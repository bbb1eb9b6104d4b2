//! Request rate limits per subject (a credential, a client address, a client id), with the
//! seeds' `X-RateLimit-*` headers. Without Redis the counters live in this instance's memory
//! (governor's GCRA): with N instances behind a balancer a client can reach up to N times the
//! limit. With `GATEHOUSE_REDIS_URL` they are shared by every instance (`shared_limits`), and
//! this instance's memory answers only while Redis does not.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::shared_limits::SharedLimits;

type Keyed =
    RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

pub use super::decision::{RateDecision, replenish_interval};

/// One keyed limiter per distinct per-minute quota: the configured ones are built up front
/// (no lock on the common path), per-key overrides on first use.
pub struct RateLimits {
    common: Vec<(u32, Arc<Keyed>)>,
    overrides: Mutex<HashMap<u32, Arc<Keyed>>>,
    clock: DefaultClock,
    /// Counters shared with the other instances, when configured.
    shared: Option<SharedLimits>,
    /// Requests refused (429) since start, whoever counted them.
    refusals: AtomicU64,
    /// Checks counted here because the shared counters could not be reached.
    fallbacks: AtomicU64,
    /// Checks counted here since start (every `TRIM_CHECK_EVERY`th looks at the size).
    checks: AtomicU64,
}

/// Subjects a limiter may track before it is trimmed between housekeeping passes: a burst of
/// many different keys or addresses must not grow memory until the next pass.
const TRIM_ABOVE: usize = 20_000;
const TRIM_CHECK_EVERY: u64 = 1024;

fn keyed(per_minute: u32) -> Arc<Keyed> {
    let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN));
    Arc::new(RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>())
}

impl RateLimits {
    /// Limiters for the configured per-minute allowances, counted in this instance.
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
            shared: None,
            refusals: AtomicU64::new(0),
            fallbacks: AtomicU64::new(0),
            checks: AtomicU64::new(0),
        }
    }

    /// Count through `shared` first, and here only while it cannot answer.
    pub fn sharing(mut self, shared: Option<SharedLimits>) -> RateLimits {
        self.shared = shared;
        self
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

    /// Count one request of `subject` against `per_minute`. Never fails: when the shared
    /// counters are out of reach, this instance's count decides.
    pub async fn check(&self, subject: String, per_minute: u32) -> RateDecision {
        let per_minute = per_minute.max(1);
        let decision = match &self.shared {
            None => self.check_here(&subject, per_minute),
            // Boxed so that the Redis call's state does not weigh on every request's future
            // when Redis is not configured.
            Some(shared) => match Box::pin(shared.check(&subject, per_minute)).await {
                Some(decision) => decision,
                None => {
                    self.fallbacks.fetch_add(1, Ordering::Relaxed);
                    self.check_here(&subject, per_minute)
                }
            },
        };
        if decision.retry_after.is_some() {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }

    fn check_here(&self, subject: &String, per_minute: u32) -> RateDecision {
        let limiter = self.limiter(per_minute);
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(TRIM_CHECK_EVERY)
            && limiter.len() > TRIM_ABOVE
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        match limiter.check_key(subject) {
            Ok(snapshot) => RateDecision::allowed(per_minute, snapshot.remaining_burst_capacity()),
            Err(not_until) => {
                RateDecision::refused(per_minute, not_until.wait_time_from(self.clock.now()))
            }
        }
    }

    /// Whether Redis is configured but out of reach, so that limits are per instance for now.
    pub fn degraded(&self) -> bool {
        self.shared.as_ref().is_some_and(|s| !s.is_up())
    }

    /// Requests refused with 429 since start.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }

    /// Checks counted in this instance because Redis could not answer, since start.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Where the counts are kept, for `/readyz`: `local`, `shared (redis)`, or
    /// `local (redis unreachable: …)`.
    pub fn describe(&self) -> String {
        match &self.shared {
            None => "local".into(),
            Some(shared) => match shared.down_reason() {
                None => "shared (redis)".into(),
                Some(reason) => format!("local (redis unreachable: {reason})"),
            },
        }
    }

    /// Drop the state of subjects that are back to a full allowance (bounded memory). Shared
    /// state needs no trimming: each Redis key expires when its allowance is full again.
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

    fn check(limits: &RateLimits, subject: &str, per_minute: u32) -> RateDecision {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(limits.check(subject.into(), per_minute))
    }

    #[test]
    fn allowance_counts_down_then_refuses_with_retry_after() {
        let limits = RateLimits::new(&[200, 10]);
        let first = check(&limits, "key:a", 3);
        assert_eq!(
            (first.limit, first.remaining, first.retry_after),
            (3, 2, None)
        );
        assert_eq!(check(&limits, "key:a", 3).remaining, 1);
        assert_eq!(check(&limits, "key:a", 3).remaining, 0);
        let refused = check(&limits, "key:a", 3);
        assert!(
            refused.retry_after.is_some_and(|s| (1..=20).contains(&s)),
            "{refused:?}"
        );
        assert_eq!(
            check(&limits, "key:b", 3).remaining,
            2,
            "subjects are counted apart"
        );
    }

    #[test]
    fn a_burst_of_subjects_is_trimmed_without_waiting_for_housekeeping() {
        // A generous allowance: every subject is back to full almost at once, so the trim
        // may drop it (governor keeps a subject until its allowance is full again).
        let limits = RateLimits::new(&[1_000_000_000]);
        for i in 0..3 * TRIM_ABOVE {
            let _ = limits.check_here(&format!("key:{i}"), 1_000_000_000);
        }
        let tracked = limits.limiter(1_000_000_000).len();
        assert!(
            tracked <= TRIM_ABOVE + TRIM_CHECK_EVERY as usize,
            "{tracked} subjects tracked"
        );
    }
}
