//! `Application::build(settings)`: connects and migrates the database, creates the first
//! admin, binds the listener (port 0 in tests) and wires every route in one place.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use askama::Template;

use crate::accounts::{self, BootstrapAdmin, BootstrapError};
use crate::api_keys::api as keys;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::{self, DbError};
use crate::http::middleware::{self as mw, HttpConfig, api_resource};
use crate::http::open_limits;
use crate::jwt::KeyRing;
use crate::jwt::keys::{self as signing_keys, KeyVault};
use crate::pages::{self, Nav, error_page, render};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Keys(#[from] crate::jwt::keys::KeyError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {bind}: {source}")]
    Bind {
        bind: String,
        source: std::io::Error,
    },
}

/// Work to run once the server has stopped taking requests (e.g. flushing buffered writes).
pub type ShutdownHook = Box<dyn FnOnce() + Send>;

#[derive(Clone, Default)]
pub struct ShutdownHooks(Arc<Mutex<Vec<(String, ShutdownHook)>>>);

impl ShutdownHooks {
    pub fn register(&self, name: &str, hook: impl FnOnce() + Send + 'static) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.to_owned(), Box::new(hook)));
    }

    fn run_all(&self) {
        let hooks = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for (name, hook) in hooks {
            log::info!("shutdown: {name}");
            hook();
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    hooks: ShutdownHooks,
    bootstrap_admin: Option<BootstrapAdmin>,
    /// The periodic loop, unless the settings turned it off.
    housekeeping: Option<actix_web::rt::task::JoinHandle<()>>,
    /// The separate metrics listener (`GATEHOUSE_METRICS_BIND`) and its port.
    metrics: Option<(actix_web::dev::ServerHandle, u16)>,
}

/// Periodic work of this instance: read other instances' token revocations, reload signing
/// keys, write buffered last-used times and client_credentials tallies, trim rate-limit state,
/// and run the janitor (`retention`), which deletes ended rows.
async fn housekeeping(state: AppState) {
    // Revocations made elsewhere are seen within 5 s; signing keys are re-read every 30 s, so a
    // rotation made elsewhere is seen well before a new key starts signing (rotations publish
    // first and sign after a delay).
    const TICK: std::time::Duration = std::time::Duration::from_secs(5);
    const KEY_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
    // The janitor's pace: ended rows are deleted within a minute, in batches.
    const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
    let flush_every = state.settings.keys.usage_flush_every;
    let (mut since_flush, mut since_reload, mut since_sweep) = (
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
        std::time::Duration::ZERO,
    );
    let mut interval = actix_web::rt::time::interval(TICK.min(flush_every));
    interval.tick().await;
    loop {
        interval.tick().await;
        since_flush += interval.period();
        since_reload += interval.period();
        since_sweep += interval.period();
        sync_revocations(&state).await;
        crate::oidc::backchannel::deliver_due(&state).await;
        if since_flush >= flush_every {
            since_flush = std::time::Duration::ZERO;
            flush_and_trim(&state).await;
        }
        if since_reload >= KEY_RELOAD_EVERY {
            since_reload = std::time::Duration::ZERO;
            reload_signing_keys(&state).await;
        }
        if since_sweep >= SWEEP_EVERY {
            since_sweep = std::time::Duration::ZERO;
            sweep(&state).await;
        }
    }
}

/// One pass of every periodic task. Servers built with `background_tasks` off (the tests')
/// run no loop; their tests call this to drive housekeeping at a moment of their choosing.
pub async fn housekeeping_pass(state: &AppState) {
    sync_revocations(state).await;
    crate::oidc::backchannel::deliver_due(state).await;
    flush_and_trim(state).await;
    reload_signing_keys(state).await;
    sweep(state).await;
}

/// Time one background job, count its outcome, log its failure.
async fn job<E: std::fmt::Display>(
    name: &'static str,
    failed: &str,
    work: impl std::future::Future<Output = Result<(), E>>,
) {
    let started = std::time::Instant::now();
    let result = work.await;
    crate::metrics::background_run(name, result.is_ok(), started.elapsed());
    if let Err(e) = result {
        log::warn!("{failed}: {e}");
    }
}

async fn sweep(state: &AppState) {
    job(
        "janitor",
        "janitor: could not delete ended rows (will retry)",
        async { crate::retention::run(state).await.map(|_| ()) },
    )
    .await;
}

async fn sync_revocations(state: &AppState) {
    job(
        "revocation_sync",
        "could not read revoked access tokens (will retry)",
        sync_denylist(state),
    )
    .await;
    crate::metrics::upkeep();
}

async fn flush_and_trim(state: &AppState) {
    job(
        "usage_flush",
        "could not write API keys' last-used times (will retry)",
        async { crate::api_keys::flush_usage(state).await.map(|_| ()) },
    )
    .await;
    state.rate_limits.shrink();
    state.dpop_replay.prune(state.now().and_utc().timestamp());
    job(
        "issuance_audit",
        "could not audit client_credentials issuance (will retry)",
        async {
            crate::grants::audit::flush_issuances(state, false)
                .await
                .map(|_| ())
        },
    )
    .await;
}

async fn reload_signing_keys(state: &AppState) {
    job(
        "signing_key_reload",
        "could not reload signing keys",
        state.reload_keys(),
    )
    .await;
}

async fn sync_denylist(state: &AppState) -> Result<(), DbError> {
    let (list, now) = (state.denylist.clone(), state.now());
    state.db(move |c| list.sync(c, now)).await
}

/// Connect, migrate and seed the scope registry and the first admin, all under the migration
/// lock, so that instances starting together do each once.
pub fn prepare_database(
    settings: &Settings,
) -> Result<(db::DbPool, Vec<String>, Option<BootstrapAdmin>), StartError> {
    prepare_database_at(settings, crate::clock::SystemClock.now())
}

/// As `prepare_database`, with the time the seeded rows are stamped with.
pub fn prepare_database_at(
    settings: &Settings,
    now: chrono::NaiveDateTime,
) -> Result<(db::DbPool, Vec<String>, Option<BootstrapAdmin>), StartError> {
    let pool = db::connect_pool(&settings.database)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    let (applied, admin) = migrate_and_seed(&mut conn, settings, now)?;
    drop(conn);
    Ok((pool, applied, admin))
}

/// For one-shot commands: one connection, no pool. A pool fills itself from background
/// threads; a process that exits while one of them is still opening a PostgreSQL connection
/// tears down libcrypto under its feet (SIGSEGV in `OPENSSL_cleanup`).
pub fn prepare_connection(
    settings: &Settings,
) -> Result<(db::DbConn, Vec<String>, Option<BootstrapAdmin>), StartError> {
    let mut conn = db::connect_one(&settings.database)?;
    let (applied, admin) = migrate_and_seed(&mut conn, settings, crate::clock::SystemClock.now())?;
    Ok((conn, applied, admin))
}

/// Pending migrations, the default scopes, the first admin and a signing key, under the
/// migration lock.
fn migrate_and_seed(
    conn: &mut db::DbConn,
    settings: &Settings,
    now: chrono::NaiveDateTime,
) -> Result<(Vec<String>, Option<BootstrapAdmin>), StartError> {
    let vault = KeyVault::new(&settings.secret.0);
    let (applied, (admin, signing)) = db::migrate_then(conn, |c| {
        crate::scopes::registry::ensure_defaults(c, now)?;
        // Configuration and key errors are reported after the lock is released.
        Ok((
            accounts::bootstrap_admin(c, settings),
            signing_keys::ensure_one(c, &vault, settings.signing_alg, now),
        ))
    })?;
    signing?;
    Ok((applied, admin?))
}

/// Gatehouse's own TLS, when configured (its certificate read again on SIGHUP by a server
/// that runs background tasks, i.e. not in tests).
fn tls_config(state: &AppState) -> Result<Option<rustls::ServerConfig>, StartError> {
    let Some(files) = &state.settings.tls else {
        return Ok(None);
    };
    let certificates = Arc::new(crate::tls::Certificates::load(files)?);
    if state.settings.background_tasks {
        crate::tls::reload_on_sighup(certificates.clone());
    }
    Ok(Some(crate::tls::server_config(certificates)?))
}

impl Application {
    pub fn build(settings: Settings) -> Result<Application, StartError> {
        Self::build_with_clock(settings, Arc::new(crate::clock::SystemClock))
    }

    /// As `build`, with another clock (tests move time forward without sleeping).
    pub fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<Application, StartError> {
        crate::logs::set_access_log(settings.access_log, settings.log_format);
        if settings.metrics.enabled() {
            crate::metrics::install();
        }
        let (pool, applied, bootstrap_admin) = prepare_database_at(&settings, clock.now())?;
        for version in &applied {
            log::info!("applied migration {version}");
        }
        accounts::password::warm_up();
        let (listener, port) = bind(&settings.bind)?;
        let mut settings = settings;
        if settings.issuer == "http://127.0.0.1" {
            // Tests bind port 0: the issuer names the port actually bound.
            settings.issuer = format!("http://127.0.0.1:{port}");
        }
        let workers = settings.workers;
        let ring = key_ring(&pool, &settings, clock.now())?;
        let state = AppState::new(pool, settings, clock, ring);
        {
            let mut conn = state.pool.get().map_err(DbError::from)?;
            state.denylist.sync(&mut conn, state.now())?;
        }
        let http_config = HttpConfig {
            issuer: Arc::from(state.settings.issuer.as_str()),
            issuer_origin: Arc::from(crate::http::cors::origin_of(&state.settings.issuer)),
        };
        let data = web::Data::new(state.clone());
        let metrics_data = data.clone();
        let config = web::Data::new(http_config);
        let openapi = web::Data::new(crate::openapi::OpenApiDocument::build(
            &state.settings.issuer,
        ));
        crate::memory::spawn_trimmer();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(config.clone())
                .app_data(openapi.clone())
                .configure(|cfg| routes(cfg, &data.settings))
                .wrap(from_fn(printable_paths))
                .wrap(Compress::default())
                .wrap(from_fn(mw::plumbing))
        })
        .shutdown_timeout(30);
        let server = match tls_config(&state)? {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        };
        let mut server = server.map_err(|source| StartError::Bind {
            bind: state.settings.bind.clone(),
            source,
        })?;
        if let Some(n) = workers {
            server = server.workers(n.max(1));
        }
        server = server.worker_max_blocking_threads(blocking_threads(&state, workers));
        let housekeeping = state
            .settings
            .background_tasks
            .then(|| actix_web::rt::spawn(housekeeping(state.clone())));
        let metrics = metrics_listener(&metrics_data)?;
        Ok(Application {
            port,
            server: server.run(),
            state,
            hooks: ShutdownHooks::default(),
            bootstrap_admin,
            housekeeping,
            metrics,
        })
    }

    /// The port of the separate metrics listener, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(_, port)| *port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn shutdown_hooks(&self) -> ShutdownHooks {
        self.hooks.clone()
    }

    /// The admin created by this start, if the database was empty.
    pub fn take_bootstrap_admin(&mut self) -> Option<BootstrapAdmin> {
        self.bootstrap_admin.take()
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serve until SIGTERM/SIGINT (or `handle().stop(true)`): in-flight requests finish, then
    /// the shutdown hooks run.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((metrics, _)) = &self.metrics {
            metrics.stop(true).await;
        }
        if let Some(task) = &self.housekeeping {
            task.abort();
        }
        match crate::api_keys::flush_usage(&self.state).await {
            Ok(n) => log::info!("shutdown: wrote last-used times of {n} API key(s)"),
            Err(e) => log::error!("shutdown: could not write last-used times: {e}"),
        }
        if let Err(e) = crate::grants::audit::flush_issuances(&self.state, true).await {
            log::error!("shutdown: could not audit client_credentials issuance: {e}");
        }
        let hooks = self.hooks.clone();
        let _ = web::block(move || hooks.run_all()).await;
        result
    }
}

/// The listening socket and the port it got (tests bind port 0).
fn bind(address: &str) -> Result<(TcpListener, u16), StartError> {
    let failed = |source| StartError::Bind {
        bind: address.to_owned(),
        source,
    };
    let listener = TcpListener::bind(address).map_err(failed)?;
    let port = listener.local_addr().map_err(failed)?.port();
    Ok((listener, port))
}

/// The signing keys published now, warning when the configured algorithm is not the current
/// key's (a rotation switches).
fn key_ring(
    pool: &db::DbPool,
    settings: &Settings,
    now: chrono::NaiveDateTime,
) -> Result<KeyRing, StartError> {
    let mut conn = pool.get().map_err(DbError::from)?;
    let rows = signing_keys::published(&mut conn, now)?;
    let wanted = settings.signing_alg.as_str();
    if let Some(key) = rows.iter().rev().find(|k| k.retired_at.is_none())
        && key.alg != wanted
    {
        log::warn!(
            "GATEHOUSE_SIGNING_ALG is {wanted} but the current signing key {} is {}: \
             run `gatehouse signing-key rotate` to switch",
            key.id,
            key.alg
        );
    }
    Ok(KeyRing::from_rows(
        &rows,
        &KeyVault::new(&settings.secret.0),
        now,
    )?)
}

/// A worker's blocking threads run its database calls and the password gate's hashing.
/// Threads beyond the pool's connections (and the gate's slots) would only wait for one, and
/// each thread a burst starts keeps its stack and allocator arena afterwards.
fn blocking_threads(state: &AppState, workers: Option<usize>) -> usize {
    let worker_count = workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .max(1);
    (state.pool.max_size() as usize + state.settings.password_checks.concurrent)
        .div_ceil(worker_count)
        .max(2)
}

/// `/metrics` on its own address (`GATEHOUSE_METRICS_BIND`), one worker, started now; it
/// stops with the main server.
fn metrics_listener(
    data: &web::Data<AppState>,
) -> Result<Option<(actix_web::dev::ServerHandle, u16)>, StartError> {
    let Some(bind) = data.settings.metrics.bind.clone() else {
        return Ok(None);
    };
    let bind_error = |source| StartError::Bind {
        bind: bind.clone(),
        source,
    };
    let listener = TcpListener::bind(&bind).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let data = data.clone();
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).route(
            "/metrics",
            web::get().to(crate::metrics::http::scrape_separate),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .map_err(bind_error)?
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(Some((handle, port)))
}

fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    use crate::workspaces::api as wsapi;
    use crate::workspaces::pages as wspages;
    cfg.app_data(mw::json_config(settings.body_limit))
        .app_data(mw::query_config())
        .app_data(form_config(settings.body_limit))
        .app_data(web::PayloadConfig::new(settings.body_limit))
        .service(resource("/healthz", "GET").route(web::get().to(crate::health::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(crate::health::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(crate::metrics::http::scrape)))
        .service(
            resource("/openapi.json", "GET").route(web::get().to(crate::openapi::openapi_json)),
        )
        // The API in one scope: the router tries routes in order and a pattern with {id}
        // segments costs a regex match, so a request outside /v1 (the OAuth endpoints) must
        // not walk through the API's patterns. Paths are written in full (`api_resource`
        // registers them relative to the scope).
        .service(
            web::scope("/v1")
                .service(
                    api_resource("/v1/users/me", "GET, PATCH")
                        .route(web::get().to(accounts::api::get_me))
                        .route(web::patch().to(accounts::api::update_me))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/users", "GET, POST")
                        .route(web::get().to(accounts::api::list_users))
                        .route(web::post().to(accounts::api::create_user))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/users/{id}", "GET")
                        .route(web::get().to(accounts::api::get_user))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/users/{id}/api-keys", "GET, POST")
                        .route(web::get().to(keys::list_for_user))
                        .route(web::post().to(keys::create_for_user))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/api-keys", "GET, POST")
                        .route(web::get().to(keys::list_own))
                        .route(web::post().to(keys::create_own))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/api-keys/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(keys::get_key))
                        .route(web::patch().to(keys::update_key))
                        .route(web::delete().to(keys::revoke_key))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/api-keys/{id}/roll", "POST")
                        .route(web::post().to(keys::roll_key))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/audit-events", "GET")
                        .route(web::get().to(keys::audit_events))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/clients", "GET, POST")
                        .route(web::get().to(crate::clients::api::list_clients))
                        .route(web::post().to(crate::clients::api::create_client))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/clients/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(crate::clients::api::get_client))
                        .route(web::patch().to(crate::clients::api::update_client))
                        .route(web::delete().to(crate::clients::api::delete_client))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/clients/{id}/secret", "POST")
                        .route(web::post().to(crate::clients::api::rotate_secret))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/consents", "GET")
                        .route(web::get().to(crate::clients::api::list_consents))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/consents/{id}", "DELETE")
                        .route(web::delete().to(crate::clients::api::revoke_consent))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces", "GET, POST")
                        .route(web::get().to(wsapi::list_workspaces))
                        .route(web::post().to(wsapi::create_workspace))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}", "GET, PATCH, DELETE")
                        .route(web::get().to(wsapi::get_workspace))
                        .route(web::patch().to(wsapi::update_workspace))
                        .route(web::delete().to(wsapi::delete_workspace))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/members", "GET")
                        .route(web::get().to(wsapi::list_members))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/members/{user_id}", "PATCH, DELETE")
                        .route(web::patch().to(wsapi::change_member_role))
                        .route(web::delete().to(wsapi::remove_member))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/members/{user_id}/api-keys", "POST")
                        .route(web::post().to(wsapi::issue_member_key))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/invitations", "GET, POST")
                        .route(web::get().to(wsapi::list_invitations))
                        .route(web::post().to(wsapi::invite_member))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/invitations/{invitation_id}", "DELETE")
                        .route(web::delete().to(wsapi::revoke_invitation))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/api-keys", "GET")
                        .route(web::get().to(wsapi::list_workspace_keys))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/api-keys/{key_id}", "DELETE")
                        .route(web::delete().to(wsapi::revoke_member_key))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/workspaces/{id}/audit-events", "GET")
                        .route(web::get().to(wsapi::workspace_audit_events))
                        .wrap(from_fn(crate::principal::v1_gate)),
                )
                .service(
                    api_resource("/v1/invitations/accept", "POST")
                        .route(web::post().to(wsapi::accept_invitation))
                        .wrap(from_fn(crate::principal::v1_gate)),
                ),
        )
        .service(
            resource("/.well-known/jwks.json", "GET")
                .route(web::get().to(crate::oauth::metadata::jwks)),
        )
        .service(
            resource("/.well-known/oauth-authorization-server", "GET")
                .route(web::get().to(crate::oauth::metadata::metadata)),
        )
        .service(
            resource("/.well-known/openid-configuration", "GET")
                .route(web::get().to(crate::oauth::metadata::openid_configuration)),
        )
        .service(
            resource("/oauth/logout", "GET, POST")
                .route(web::get().to(crate::oidc::logout::end_session))
                .route(
                    web::post()
                        .to(crate::oidc::logout::confirm)
                        .wrap(from_fn(open_limits::forms_per_address)),
                ),
        )
        .service(
            resource("/oauth/userinfo", "GET, POST")
                .route(
                    web::get()
                        .to(crate::oidc::userinfo::userinfo)
                        .wrap(from_fn(open_limits::oauth_per_address)),
                )
                .route(
                    web::post()
                        .to(crate::oidc::userinfo::userinfo_post)
                        .wrap(from_fn(open_limits::oauth_per_address)),
                ),
        )
        .service(
            resource("/oauth/authorize", "GET, POST")
                .route(web::get().to(crate::authorize::authorize))
                .route(web::post().to(crate::authorize::decide)),
        )
        .service(
            resource("/oauth/token", "POST").route(
                web::post()
                    .to(crate::token::token)
                    .wrap(from_fn(open_limits::oauth_per_address)),
            ),
        )
        .service(
            resource("/oauth/device_authorization", "POST").route(
                web::post()
                    .to(crate::device::authorization)
                    .wrap(from_fn(open_limits::oauth_per_address)),
            ),
        )
        .service(
            resource("/device", "GET, POST")
                .route(web::get().to(crate::device::page))
                .route(web::post().to(crate::device::submit)),
        )
        .service(
            resource("/oauth/par", "POST").route(
                web::post()
                    .to(crate::authorize::par::push)
                    .wrap(from_fn(open_limits::oauth_per_address)),
            ),
        )
        .service(
            resource("/oauth/register", "POST").route(
                web::post()
                    .to(crate::clients::registration::register)
                    .wrap(from_fn(open_limits::registration_per_address)),
            ),
        )
        .service(
            resource("/oauth/register/{client_id}", "GET, PUT, DELETE")
                .route(
                    web::get()
                        .to(crate::clients::registration::read)
                        .wrap(from_fn(open_limits::oauth_per_address)),
                )
                .route(
                    web::put()
                        .to(crate::clients::registration::update)
                        .wrap(from_fn(open_limits::oauth_per_address)),
                )
                .route(
                    web::delete()
                        .to(crate::clients::registration::delete)
                        .wrap(from_fn(open_limits::oauth_per_address)),
                ),
        )
        .service(
            resource("/.well-known/oauth-protected-resource", "GET")
                .route(web::get().to(crate::oauth::metadata::protected_resource)),
        )
        .service(
            resource("/oauth/introspect", "POST").route(
                web::post()
                    .to(crate::token::introspect::introspect)
                    .wrap(from_fn(open_limits::oauth_per_address)),
            ),
        )
        .service(
            resource("/oauth/revoke", "POST").route(
                web::post()
                    .to(crate::token::introspect::revoke)
                    .wrap(from_fn(open_limits::oauth_per_address)),
            ),
        )
        .service(resource("/docs/errors", "GET").route(web::get().to(error_catalogue)))
        .service(resource("/static/app.css", "GET").route(web::get().to(stylesheet)))
        .service(resource("/static/app.js", "GET").route(web::get().to(script)))
        .service(resource("/", "GET").route(web::get().to(accounts::pages::home)))
        .service(
            resource("/login", "GET, POST")
                .route(web::get().to(accounts::pages::login_page))
                .route(
                    web::post()
                        .to(accounts::pages::login_submit)
                        .wrap(from_fn(open_limits::forms_per_address)),
                ),
        )
        .service(resource("/logout", "POST").route(web::post().to(accounts::pages::logout)))
        .service(
            resource("/signup", "GET, POST")
                .route(web::get().to(accounts::pages::signup_page))
                .route(
                    web::post()
                        .to(accounts::pages::signup_submit)
                        .wrap(from_fn(open_limits::forms_per_address)),
                ),
        )
        .service(resource("/account", "GET").route(web::get().to(accounts::pages::account)))
        .service(
            resource("/account/password", "POST")
                .route(web::post().to(accounts::pages::change_password)),
        )
        .service(
            resource("/settings/apps", "GET, POST")
                .route(web::get().to(crate::clients::pages::own_apps))
                .route(web::post().to(crate::clients::pages::register)),
        )
        .service(
            resource("/settings/apps/{id}/secret", "POST")
                .route(web::post().to(crate::clients::pages::rotate_secret)),
        )
        .service(
            resource("/settings/apps/{id}/{action}", "POST")
                .route(web::post().to(crate::clients::pages::act)),
        )
        .service(
            resource("/settings/connected-apps", "GET")
                .route(web::get().to(crate::clients::pages::connected)),
        )
        .service(
            resource("/settings/connected-apps/{id}/revoke", "POST")
                .route(web::post().to(crate::clients::pages::disconnect)),
        )
        .service(
            resource("/admin/apps", "GET").route(web::get().to(crate::clients::pages::all_apps)),
        )
        .service(
            resource("/admin/agents", "GET").route(web::get().to(crate::clients::agents::agents)),
        )
        .service(
            resource("/admin/agents/apps", "POST")
                .route(web::post().to(crate::clients::agents::act)),
        )
        .service(
            resource("/admin/agents/tokens", "POST")
                .route(web::post().to(crate::clients::agents::mint)),
        )
        .service(
            resource("/admin/agents/tokens/{id}/revoke", "POST")
                .route(web::post().to(crate::clients::agents::revoke_token)),
        )
        .service(
            resource("/admin/agents/hosts", "POST")
                .route(web::post().to(crate::clients::agents::block_host)),
        )
        .service(
            resource("/admin/agents/hosts/unblock", "POST")
                .route(web::post().to(crate::clients::agents::unblock_host)),
        )
        .service(
            resource("/admin/users", "GET, POST")
                .route(web::get().to(accounts::pages::admin_users))
                .route(web::post().to(accounts::pages::admin_create_user)),
        )
        .service(
            resource("/admin/users/{id}/api-keys", "GET, POST")
                .route(web::get().to(crate::api_keys::pages::user_keys))
                .route(web::post().to(crate::api_keys::pages::create_for_user)),
        )
        .service(
            resource("/settings/api-keys", "GET, POST")
                .route(web::get().to(crate::api_keys::pages::own_keys))
                .route(web::post().to(crate::api_keys::pages::create_own)),
        )
        .service(
            resource("/settings/api-keys/{id}", "GET")
                .route(web::get().to(crate::api_keys::pages::detail)),
        )
        .service(
            resource("/settings/api-keys/{id}/revoke", "GET, POST")
                .route(web::get().to(crate::api_keys::pages::confirm_revoke))
                .route(web::post().to(crate::api_keys::pages::do_revoke)),
        )
        .service(
            resource("/settings/api-keys/{id}/roll", "POST")
                .route(web::post().to(crate::api_keys::pages::do_roll)),
        )
        .service(
            resource("/admin/users/{id}/{action}", "POST")
                .route(web::post().to(accounts::pages::admin_set_disabled)),
        )
        .service(
            resource("/workspaces", "GET, POST")
                .route(web::get().to(wspages::list))
                .route(web::post().to(wspages::create)),
        )
        .service(resource("/workspaces/{id}", "GET").route(web::get().to(wspages::detail)))
        .service(resource("/workspaces/{id}/{action}", "POST").route(web::post().to(wspages::act)))
        .service(
            resource("/workspaces/{id}/members/{user_id}/{action}", "POST")
                .route(web::post().to(wspages::member_act)),
        )
        .service(
            resource("/workspaces/{id}/invitations/{inv_id}/revoke", "POST")
                .route(web::post().to(wspages::revoke_invitation)),
        )
        .service(
            resource("/workspaces/{id}/api-keys/{key_id}/revoke", "POST")
                .route(web::post().to(wspages::revoke_key)),
        )
        .service(
            resource("/invitations/{token}", "GET, POST")
                .route(web::get().to(wspages::invitation))
                .route(web::post().to(wspages::accept)),
        )
        .default_service(web::to(not_found));
}

/// A resource outside `/v1` (pages, OAuth endpoints, discovery): its routes, and for any other
/// method 405 with `Allow` (RFC 9110 §15.5.6) — a page for page paths, an OAuth error body
/// elsewhere. (`/v1` resources answer the envelope: `api_resource`.)
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: actix_web::HttpRequest| async move {
        // A CORS preflight has no handler of its own: the answer is `http::cors`'s.
        if let Some(answer) = crate::http::cors::preflight_for(&req).await {
            return answer;
        }
        method_not_allowed(&req, allow)
    }))
}

fn method_not_allowed(req: &actix_web::HttpRequest, allow: &'static str) -> HttpResponse {
    let path = req.path();
    let machine = path.starts_with("/oauth/")
        || path.starts_with("/.well-known/")
        || matches!(path, "/healthz" | "/readyz" | "/metrics" | "/openapi.json");
    let message = format!("{} is not served here; use {allow}", req.method());
    let mut response = if machine && path != "/oauth/authorize" && path != "/oauth/logout" {
        HttpResponse::MethodNotAllowed().json(serde_json::json!({
            "error": "invalid_request",
            "error_description": message,
        }))
    } else {
        error_page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            &message,
        )
    };
    response.headers_mut().insert(
        actix_web::http::header::ALLOW,
        actix_web::http::header::HeaderValue::from_static(allow),
    );
    response
}

/// A path that spells a control character (`%00`, `%0a`, …) names no resource: it is answered
/// as unknown before a handler puts the decoded id into a query (PostgreSQL text cannot even
/// hold NUL, and the database error would be a 500).
async fn printable_paths(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if spells_control_character(req.path()) {
        let (req, _) = req.into_parts();
        let response = not_found(req.clone()).await;
        return Ok(ServiceResponse::new(req, response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

/// Whether a raw (still percent-encoded) path contains `%00`–`%1F` or `%7F`.
fn spells_control_character(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && ((matches!(w[1], b'0' | b'1') && w[2].is_ascii_hexdigit())
                || (w[1] == b'7' && matches!(w[2], b'f' | b'F')))
    })
}

/// Unmatched paths: the envelope under `/v1`, a page elsewhere.
async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    if mw::is_api_path(req.path()) {
        match mw::api_not_found(req).await {
            Ok(r) => r,
            Err(e) => actix_web::ResponseError::error_response(&e),
        }
    } else {
        pages::not_found().await
    }
}

/// Form bodies (pages): too large → 413 page, unparsable → 400 page.
fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default()
        .limit(limit)
        .error_handler(|err, _req| {
            use actix_web::error::UrlencodedError as E;
            let response = match err {
                E::Overflow { .. } => error_page(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Too much data",
                    "The form sent more data than Gatehouse accepts.",
                ),
                E::ContentType => error_page(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "Unsupported form",
                    "Send the form as application/x-www-form-urlencoded.",
                ),
                _ => error_page(
                    StatusCode::BAD_REQUEST,
                    "Bad form",
                    "The form data could not be read.",
                ),
            };
            actix_web::error::InternalError::from_response("bad form", response).into()
        })
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(include_str!("../static/app.css"))
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(include_str!("../static/app.js"))
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocPage<'a> {
    nav: Option<Nav>,
    title: &'a str,
    body: &'a str,
}

/// `docs/errors.md`, rendered once: the catalogue that every `doc_url` points into.
async fn error_catalogue() -> HttpResponse {
    static HTML: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let markdown = include_str!("../docs/errors.md");
        let parser = pulldown_cmark::Parser::new_ext(
            markdown,
            pulldown_cmark::Options::ENABLE_HEADING_ATTRIBUTES
                | pulldown_cmark::Options::ENABLE_TABLES,
        );
        let mut html = String::new();
        pulldown_cmark::html::push_html(&mut html, parser);
        html
    });
    let mut response = render(
        StatusCode::OK,
        &DocPage {
            nav: None,
            title: "Error codes",
            body: &HTML,
        },
    );
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        "public, max-age=3600".parse().expect("static header"),
    );
    response
}
