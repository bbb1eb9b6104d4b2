//! `Application::build(settings)`: connects and migrates the database, creates the first
//! admin, binds the listener (port 0 in tests) and wires every route in one place.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::dev::Server;
use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use askama::Template;

use crate::accounts::{self, BootstrapAdmin, BootstrapError};
use crate::config::Settings;
use crate::db::{self, DbError};
use crate::http::middleware::{self as mw, HttpConfig, api_resource};
use crate::pages::{self, Nav, error_page, render};
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
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
}

/// Connect, migrate (under the migration lock) and create the first admin if there is none.
pub fn prepare_database(
    settings: &Settings,
) -> Result<(db::DbPool, Vec<String>, Option<BootstrapAdmin>), StartError> {
    let pool = db::connect_pool(&settings.database)?;
    let mut conn = pool.get().map_err(DbError::from)?;
    let mut bootstrap_error = None;
    let (applied, admin) = db::migrate_then(&mut conn, |c| {
        match accounts::bootstrap_admin(c, settings) {
            Ok(admin) => Ok(admin),
            Err(BootstrapError::Db(e)) => Err(e),
            Err(other) => {
                bootstrap_error = Some(other);
                Ok(None)
            }
        }
    })?;
    if let Some(e) = bootstrap_error {
        return Err(e.into());
    }
    Ok((pool, applied, admin))
}

impl Application {
    pub fn build(settings: Settings) -> Result<Application, StartError> {
        let (pool, applied, bootstrap_admin) = prepare_database(&settings)?;
        for version in &applied {
            log::info!("applied migration {version}");
        }
        accounts::password::warm_up();
        let listener = TcpListener::bind(&settings.bind).map_err(|source| StartError::Bind {
            bind: settings.bind.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartError::Bind {
                bind: settings.bind.clone(),
                source,
            })?
            .port();
        let mut settings = settings;
        if settings.issuer == "http://127.0.0.1" {
            // Tests bind port 0: the issuer names the port actually bound.
            settings.issuer = format!("http://127.0.0.1:{port}");
        }
        let workers = settings.workers;
        let state = AppState::new(pool, settings);
        let http_config = HttpConfig {
            issuer: Arc::from(state.settings.issuer.as_str()),
        };
        let data = web::Data::new(state.clone());
        let config = web::Data::new(http_config);
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(config.clone())
                .configure(|cfg| routes(cfg, &data.settings))
                .wrap(Compress::default())
                .wrap(from_fn(mw::plumbing))
        })
        .shutdown_timeout(30)
        .listen(listener)
        .map_err(|source| StartError::Bind {
            bind: state.settings.bind.clone(),
            source,
        })?;
        if let Some(n) = workers {
            server = server.workers(n.max(1));
        }
        Ok(Application {
            port,
            server: server.run(),
            state,
            hooks: ShutdownHooks::default(),
            bootstrap_admin,
        })
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
        let hooks = self.hooks.clone();
        let _ = web::block(move || hooks.run_all()).await;
        result
    }
}

fn routes(cfg: &mut web::ServiceConfig, settings: &Settings) {
    cfg.app_data(mw::json_config(settings.body_limit))
        .app_data(mw::query_config())
        .app_data(form_config(settings.body_limit))
        .route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/docs/errors", web::get().to(error_catalogue))
        .route("/static/app.css", web::get().to(stylesheet))
        .route("/", web::get().to(accounts::pages::home))
        .route("/login", web::get().to(accounts::pages::login_page))
        .route("/login", web::post().to(accounts::pages::login_submit))
        .route("/logout", web::post().to(accounts::pages::logout))
        .route("/signup", web::get().to(accounts::pages::signup_page))
        .route("/signup", web::post().to(accounts::pages::signup_submit))
        .route("/account", web::get().to(accounts::pages::account))
        .route(
            "/account/password",
            web::post().to(accounts::pages::change_password),
        )
        .route("/admin/users", web::get().to(accounts::pages::admin_users))
        .route(
            "/admin/users",
            web::post().to(accounts::pages::admin_create_user),
        )
        .route(
            "/admin/users/{id}/{action}",
            web::post().to(accounts::pages::admin_set_disabled),
        )
        .service(
            web::scope("/v1")
                .service(
                    api_resource("/users/me", "GET, PATCH")
                        .route(web::get().to(accounts::api::get_me))
                        .route(web::patch().to(accounts::api::update_me)),
                )
                .default_service(web::to(mw::api_not_found)),
        )
        .default_service(web::to(pages::not_found));
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

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    match state.db(db::ping).await {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "database": state.settings.database.backend_name() })),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "unavailable", "database": state.settings.database.backend_name() }))
        }
    }
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(include_str!("../static/app.css"))
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
            pulldown_cmark::Options::ENABLE_HEADING_ATTRIBUTES,
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
