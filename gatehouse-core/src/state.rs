//! What every handler shares: the pool, the settings, the keys derived from the server
//! secret, the clock, and the per-instance memory of the hot path (key cache, last-used
//! buffer, rate-limit counters). Nothing here is needed by another instance to be correct.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use chrono::NaiveDateTime;

use crate::accounts::password::PasswordGate;
use crate::api_keys::usage::UsageBuffer;
use crate::cache::Caches;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{DbConn, DbError, DbPool};
use crate::jwt::KeyRing;
use crate::jwt::keys::{self, KeyError, KeyVault};
use crate::limits::rate_limit::RateLimits;
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
    pub key_cache: Arc<Caches>,
    pub usage: Arc<UsageBuffer>,
    pub rate_limits: Arc<RateLimits>,
    /// Bounds the argon2 work running at once.
    pub password_gate: Arc<PasswordGate>,
    /// Protects private signing keys at rest.
    pub key_vault: Arc<KeyVault>,
    /// Access tokens revoked before they expire.
    pub denylist: Arc<crate::jwt::denylist::Denylist>,
    /// `client_credentials` tokens issued and not yet audited (one event per client per minute).
    pub issuances: Arc<crate::cache::issuances::IssuanceTally>,
    /// Metadata-document fetches: the ones in flight, and those that failed lately.
    pub cimd_fetches: Arc<crate::cache::fetches::Fetches>,
    /// DPoP proofs seen at `/v1` lately (replay detection, per instance).
    pub dpop_replay: Arc<crate::jwt::dpop::ReplayCache>,
    /// DPoP proof headers (clients' keys) already checked.
    pub dpop_headers: Arc<crate::jwt::dpop::HeaderCache>,
    /// Apps' JWK Sets fetched from their `jwks_uri` (`private_key_jwt`).
    pub jwks_cache: Arc<crate::cache::jwks::JwksCache>,
    /// Work a request started in the background (back-channel notices): tests await it.
    pub background: Arc<Background>,
    /// The signing keys as last loaded (reloaded by housekeeping and after a rotation).
    key_ring: Arc<RwLock<Arc<KeyRing>>>,
    db_calls: Arc<AtomicU64>,
    /// The scope registry as last read (it changes rarely: re-read after 10 s).
    scope_registry: ScopeRegistryCache,
    /// The public apps' web origins as last read (re-read after 10 s, or after an app changes
    /// here): what CORS preflights are answered for.
    web_origins: WebOriginsCache,
}

/// Tasks a request spawned and did not wait for, counted so that whoever must see their
/// effects (a test, a graceful stop) can wait until none is running: [`Background::settled`].
#[derive(Default)]
pub struct Background {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl Background {
    /// Run `work` on the current runtime, counted until it ends.
    pub fn spawn<F>(self: &Arc<Self>, work: F)
    where
        F: std::future::Future<Output = ()> + 'static,
    {
        use std::sync::atomic::Ordering::SeqCst;
        self.running.fetch_add(1, SeqCst);
        let this = self.clone();
        tokio::task::spawn_local(async move {
            work.await;
            if this.running.fetch_sub(1, SeqCst) == 1 {
                this.idle.notify_waiters();
            }
        });
    }

    /// Wait until no background task is running.
    pub async fn settled(&self) {
        use std::sync::atomic::Ordering::SeqCst;
        loop {
            let notified = self.idle.notified();
            if self.running.load(SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

type ScopeRegistryCache = Arc<
    RwLock<
        Option<(
            std::time::Instant,
            Arc<Vec<crate::scopes::registry::RegisteredScope>>,
        )>,
    >,
>;

type WebOriginsCache =
    Arc<RwLock<Option<(std::time::Instant, Arc<crate::clients::cors::Origins>)>>>;

/// The Redis link of the rate limits, when configured; without one (or with a Redis that is not
/// there yet) the limits are counted here until it is.
fn shared_limits(settings: &Settings) -> Option<crate::limits::shared_limits::SharedLimits> {
    let url = settings.redis_url.as_ref()?;
    match crate::limits::shared_limits::SharedLimits::start(&url.0) {
        Ok(shared) => Some(shared),
        Err(e) => {
            log::error!("rate limits: GATEHOUSE_REDIS_URL cannot be used ({e}); counting locally");
            None
        }
    }
}

impl AppState {
    pub fn new(pool: DbPool, settings: Settings, clock: Arc<dyn Clock>, key_ring: KeyRing) -> Self {
        let digest_pepper = Pepper::for_digests(&settings.secret.0);
        let key_vault = Arc::new(KeyVault::new(&settings.secret.0));
        let csrf_pepper = Pepper::for_csrf(&settings.secret.0);
        let key_cache = Arc::new(Caches::new(settings.keys.cache_ttl));
        let open = settings.open_limits;
        let rate_limits = Arc::new(
            RateLimits::new(&[
                settings.keys.rate_limit_per_minute,
                settings.keys.sensitive_rate_limit_per_minute,
                open.oauth_per_address,
                open.oauth_per_client,
                open.forms_per_address,
            ])
            .sharing(shared_limits(&settings)),
        );
        let password_gate = Arc::new(PasswordGate::new(
            settings.password_checks.concurrent,
            settings.password_checks.queue,
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
            password_gate,
            key_vault,
            denylist: Arc::default(),
            issuances: Arc::default(),
            cimd_fetches: Arc::default(),
            jwks_cache: Arc::default(),
            background: Arc::default(),
            dpop_replay: Arc::default(),
            dpop_headers: Arc::default(),
            key_ring: Arc::new(RwLock::new(Arc::new(key_ring))),
            db_calls: Arc::new(AtomicU64::new(0)),
            scope_registry: Arc::default(),
            web_origins: Arc::default(),
        }
    }

    /// The signing keys in force.
    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.key_ring
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A user by id, from the key cache (1 s) or read on a connection the caller already holds
    /// (inside `db`): the users behind codes and refresh tokens.
    pub fn user_on(
        &self,
        c: &mut crate::db::DbConn,
        id: &str,
    ) -> Result<Option<Arc<crate::accounts::model::User>>, crate::db::DbError> {
        if let Some((user, _)) = self.key_cache.get_user(id) {
            return Ok(Some(user));
        }
        Ok(crate::accounts::model::find_by_id(c, id)?.map(|u| self.key_cache.put_user(u).0))
    }

    /// A user by id, from the key cache (1 s) or the database: the users behind access tokens,
    /// codes and introspected credentials.
    pub async fn user(
        &self,
        id: &str,
    ) -> Result<
        Option<(
            Arc<crate::accounts::model::User>,
            Arc<crate::accounts::model::UserView>,
        )>,
        crate::db::DbError,
    > {
        if let Some(cached) = self.key_cache.get_user(id) {
            return Ok(Some(cached));
        }
        let lookup = id.to_owned();
        let found = self
            .db(move |c| crate::accounts::model::find_by_id(c, &lookup))
            .await?;
        Ok(found.map(|u| self.key_cache.put_user(u)))
    }

    /// The registered scopes, from memory when read in the last 10 seconds.
    pub async fn scope_registry(
        &self,
    ) -> Result<Arc<Vec<crate::scopes::registry::RegisteredScope>>, crate::db::DbError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(10);
        if let Some((at, all)) = &*self
            .scope_registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < FRESH
        {
            return Ok(all.clone());
        }
        let all = Arc::new(self.db(crate::scopes::registry::all).await?);
        *self
            .scope_registry
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some((std::time::Instant::now(), all.clone()));
        Ok(all)
    }

    /// The web origins of every enabled public app, from memory when read in the last 10
    /// seconds (another instance's new app is seen within that).
    pub async fn web_origins(
        &self,
    ) -> Result<Arc<crate::clients::cors::Origins>, crate::db::DbError> {
        const FRESH: std::time::Duration = std::time::Duration::from_secs(10);
        if let Some((at, all)) = &*self.web_origins.read().unwrap_or_else(|p| p.into_inner())
            && at.elapsed() < FRESH
        {
            return Ok(all.clone());
        }
        let all = Arc::new(self.db(crate::clients::public_web_origins).await?);
        *self.web_origins.write().unwrap_or_else(|p| p.into_inner()) =
            Some((std::time::Instant::now(), all.clone()));
        Ok(all)
    }

    /// An app changed here: read the web origins again at the next preflight.
    pub fn forget_web_origins(&self) {
        *self.web_origins.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Read the signing keys again (after a rotation here or on another instance).
    pub async fn reload_keys(&self) -> Result<(), KeyError> {
        let (vault, now) = (self.key_vault.clone(), self.now());
        let rows = self.db(move |c| keys::published(c, now)).await?;
        let ring = KeyRing::from_rows(&rows, &vault, now)?;
        *self.key_ring.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ring);
        Ok(())
    }

    pub fn now(&self) -> NaiveDateTime {
        self.clock.now()
    }

    /// How many units of database work this instance has run (observable in tests: the hot
    /// path's rejections must not add to it).
    pub fn db_calls(&self) -> u64 {
        self.db_calls.load(Ordering::Relaxed)
    }

    /// What the metrics endpoint reads at scrape time.
    pub fn scrape(&self) -> crate::metrics::Scrape {
        let pool = self.pool.state();
        crate::metrics::Scrape {
            statements: crate::db::query_counter(&self.settings.database)
                .load(std::sync::atomic::Ordering::Relaxed),
            limits_degraded: self.rate_limits.degraded(),
            limits_fallbacks: self.rate_limits.fallbacks(),
            pool_connections: pool.connections,
            pool_idle_connections: pool.idle_connections,
        }
    }

    /// A client from the cache or the database.
    pub async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<crate::clients::Client>>, crate::db::DbError> {
        // Ids are printable; PostgreSQL text cannot hold NUL (the lookup would fail, not miss).
        if client_id.contains('\0') {
            return Ok(None);
        }
        if let Some(cached) = self.key_cache.get_client(client_id) {
            return Ok(Some(cached));
        }
        let lookup = client_id.to_owned();
        let found = self.db(move |c| crate::clients::find(c, &lookup)).await?;
        Ok(found.map(|client| self.key_cache.put_client(client)))
    }

    /// Run `work` with a pooled connection on the blocking thread pool, never on a worker.
    pub async fn db<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.db_calls.fetch_add(1, Ordering::Relaxed);
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let asked = std::time::Instant::now();
            let mut conn = pool.get()?;
            let got = std::time::Instant::now();
            let result = work(&mut conn);
            if crate::metrics::enabled() {
                crate::metrics::db_call(got - asked, got.elapsed());
            }
            if let Err(e) = &result
                && e.is_lost_connection()
            {
                // The pool drops it instead of handing it out again (a restarted PostgreSQL
                // would otherwise leave every pooled connection dead for good).
                crate::db::mark_broken(&mut conn);
            }
            result
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }
}
