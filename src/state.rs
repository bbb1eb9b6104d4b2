//! What every handler shares: the pool, the settings, the keys derived from the server
//! secret, the clock, and the per-instance memory of the hot path (key cache, last-used
//! buffer, rate-limit counters). Nothing here is needed by another instance to be correct.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::web;
use chrono::NaiveDateTime;

use crate::api_keys::cache::{KeyCache, UsageBuffer};
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::db::{DbConn, DbError, DbPool};
use crate::http::rate_limit::RateLimits;
use crate::secrets::Pepper;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    /// Key of the HMAC digests under which secrets are stored.
    pub digest_pepper: Pepper,
    /// Key of the CSRF tokens.
    pub csrf_pepper: Pepper,
    pub clock: Arc<dyn Clock>,
    pub key_cache: Arc<KeyCache>,
    pub usage: Arc<UsageBuffer>,
    pub rate_limits: Arc<RateLimits>,
    db_calls: Arc<AtomicU64>,
}

impl AppState {
    pub fn new(pool: DbPool, settings: Settings, clock: Arc<dyn Clock>) -> Self {
        let digest_pepper = Pepper::derive(&settings.secret.0, "secret-digest");
        let csrf_pepper = Pepper::derive(&settings.secret.0, "csrf");
        let key_cache = Arc::new(KeyCache::new(settings.keys.cache_ttl));
        let rate_limits = Arc::new(RateLimits::new(
            settings.keys.rate_limit_per_minute,
            settings.keys.sensitive_rate_limit_per_minute,
        ));
        AppState {
            pool,
            settings: Arc::new(settings),
            digest_pepper,
            csrf_pepper,
            clock,
            key_cache,
            usage: Arc::new(UsageBuffer::default()),
            rate_limits,
            db_calls: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn with_system_clock(pool: DbPool, settings: Settings) -> Self {
        Self::new(pool, settings, Arc::new(SystemClock))
    }

    pub fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    /// How many units of database work this instance has run (observable in tests: the hot
    /// path's rejections must not add to it).
    pub fn db_calls(&self) -> u64 {
        self.db_calls.load(Ordering::Relaxed)
    }

    /// Run `work` with a pooled connection on the blocking thread pool, never on a worker.
    pub async fn db<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.db_calls.fetch_add(1, Ordering::Relaxed);
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }
}
