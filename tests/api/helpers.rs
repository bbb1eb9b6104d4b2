//! `spawn_app(backend)`: a Gatehouse on a free port with a fresh database (a new SQLite file,
//! or a new PostgreSQL database that is dropped afterwards), and a `TestApp` with one helper per
//! endpoint. Set `TEST_LOG=1` to see the server's logs. A test that cannot run here (no
//! PostgreSQL, no Chromium) fails unless `GATEHOUSE_ALLOW_SKIPS=1`.

use std::io::Write;
use std::sync::Once;

use diesel::Connection;
use diesel::RunQueryDsl;
use gatehouse::Application;
use gatehouse::config::{Redacted, Settings};
use gatehouse::db::DatabaseUrl;
use reqwest::StatusCode;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "admin password 123";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Say loudly, past the test harness's output capture, that something was not tested.
pub fn announce_skip(what: &str, how: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n*** SKIPPED: {what} — {how} ***\n");
}

fn env_is_1(name: &str) -> bool {
    std::env::var(name).as_deref() == Ok("1")
}

/// A test that cannot run here fails, so that a green run means everything ran, unless
/// `GATEHOUSE_ALLOW_SKIPS=1` says skips are expected (then it is announced loudly). `required`
/// (`GATEHOUSE_REQUIRE_POSTGRES`, `GATEHOUSE_REQUIRE_BROWSER`, set by CI) fails it even then.
pub fn skip_or_fail(what: &str, how: &str, required: &str) {
    assert!(
        !env_is_1(required),
        "{required}=1 but the {what} cannot run: {how}"
    );
    assert!(
        env_is_1("GATEHOUSE_ALLOW_SKIPS"),
        "the {what} cannot run here: {how}, or set GATEHOUSE_ALLOW_SKIPS=1 to skip it"
    );
    announce_skip(what, how);
}

/// A child process that is killed when this guard is dropped, also when a test panics, so a
/// failed test never leaves a server or a chromedriver running (or the run hanging on it).
pub struct KillOnDrop(pub std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The PostgreSQL server to create test databases on, or `None` when unset and skips are
/// allowed (see `skip_or_fail`).
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("GATEHOUSE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            skip_or_fail(
                "PostgreSQL test",
                "set GATEHOUSE_TEST_POSTGRES_URL=postgres://… to run it",
                "GATEHOUSE_REQUIRE_POSTGRES",
            );
            None
        }
    }
}

/// `postgres://u:p@h/db?x` with another database name.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("URL has a scheme");
    let (before_query, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    match query {
        Some(q) => format!("{scheme}://{authority}/{database}?{q}"),
        None => format!("{scheme}://{authority}/{database}"),
    }
}

/// A fresh, empty database of the given backend, dropped with the guard.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    pub raw_url: String,
    _dir: Option<tempfile::TempDir>,
    postgres: Option<(String, String)>,
}

/// A short digest of one backend's migration files (names and contents): the name of the
/// migrated template that test databases are copied from, so that a changed migration gets a
/// new template and an old one is never used.
fn migrations_digest(backend: &str) -> String {
    use sha2::{Digest, Sha256};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read the migrations directory") {
            let path = entry.expect("migration entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(
            file.strip_prefix(&dir)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update([0]);
        hash.update(std::fs::read(&file).expect("read a migration"));
        hash.update([0]);
    }
    hash.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Run every migration on an empty database.
fn migrate(url: &str) {
    let url: DatabaseUrl = url.parse().expect("test database URL");
    let mut conn = gatehouse::db::connect_one(&url).expect("connect to the template database");
    gatehouse::db::migrate_then(&mut conn, |_| Ok(())).expect("migrate the template database");
}

/// A migrated SQLite database file to copy for each test: built once per set of migrations
/// (under a temporary name, then renamed, so that a test process never sees half of one).
fn sqlite_template() -> &'static std::path::Path {
    static TEMPLATE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join(format!(
            "sqlite-template-{}.db",
            migrations_digest("sqlite")
        ));
        if !path.exists() {
            let work = tempfile::tempdir_in(dir).expect("temp dir");
            let building = work.path().join("building.db");
            migrate(&format!("sqlite://{}", building.display()));
            // One self-contained file (no write-ahead log beside it), whatever the journal mode.
            let copy = work.path().join("template.db");
            let mut conn = diesel::SqliteConnection::establish(&building.display().to_string())
                .expect("open the template");
            diesel::sql_query(format!("VACUUM INTO '{}'", copy.display()))
                .execute(&mut conn)
                .expect("copy the template");
            std::fs::rename(&copy, &path).expect("move the template into place");
        }
        path
    })
}

/// Serializes template building among test processes sharing one PostgreSQL server.
const TEMPLATE_LOCK_KEY: i64 = 7_318_004_211;

/// The name of a migrated PostgreSQL database to create each test's database from (`CREATE
/// DATABASE … TEMPLATE`): built once per set of migrations, under an advisory lock and a
/// temporary name. Templates of other migrations are dropped when a new one is built.
fn postgres_template(admin: &str) -> &'static str {
    static TEMPLATE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let name = format!("gh_tmpl_{}", migrations_digest("postgres"));
        let mut conn =
            diesel::PgConnection::establish(admin).expect("connect to GATEHOUSE_TEST_POSTGRES_URL");
        diesel::sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"))
            .execute(&mut conn)
            .expect("template lock");
        #[derive(diesel::QueryableByName)]
        struct Named {
            #[diesel(sql_type = diesel::sql_types::Text)]
            datname: String,
        }
        let existing: Vec<Named> = diesel::sql_query(
            "SELECT datname::text AS datname FROM pg_database WHERE datname LIKE 'gh\\_tmpl\\_%'",
        )
        .load(&mut conn)
        .expect("list templates");
        if !existing.iter().any(|t| t.datname == name) {
            for old in existing {
                let _ = diesel::sql_query(format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    old.datname
                ))
                .execute(&mut conn);
            }
            let building = format!("{name}_building");
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut conn)
                .expect("create the template database");
            migrate(&with_database(admin, &building));
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut conn)
                .expect("name the template database");
        }
        diesel::sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"))
            .execute(&mut conn)
            .expect("template unlock");
        name
    })
}

impl TestDatabase {
    /// A fresh database with every migration applied, as `gatehouse migrate` leaves it (but
    /// copied from a template: migrating anew for each test would cost seconds on PostgreSQL).
    pub fn migrated(backend: Backend) -> Option<TestDatabase> {
        let template = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(postgres_template(&postgres_admin_url()?)),
        };
        let db = Self::create_from(backend, template)?;
        if backend == Backend::Sqlite {
            let path = db._dir.as_ref().unwrap().path().join("gatehouse.db");
            std::fs::copy(sqlite_template(), path).expect("copy the SQLite template");
        }
        Some(db)
    }

    /// A fresh, empty database (no migrations).
    pub fn create(backend: Backend) -> Option<TestDatabase> {
        Self::create_from(backend, None)
    }

    fn create_from(backend: Backend, template: Option<&str>) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let raw_url = format!("sqlite://{}", dir.path().join("gatehouse.db").display());
                Some(TestDatabase {
                    url: raw_url.parse().unwrap(),
                    raw_url,
                    _dir: Some(dir),
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let admin = postgres_admin_url()?;
                let name = format!(
                    "gh_test_{}",
                    gatehouse::secrets::random_base62(12).to_lowercase()
                );
                let mut conn = diesel::PgConnection::establish(&admin)
                    .expect("connect to GATEHOUSE_TEST_POSTGRES_URL");
                let from = template.map_or(String::new(), |t| format!(" TEMPLATE {t}"));
                diesel::sql_query(format!("CREATE DATABASE {name}{from}"))
                    .execute(&mut conn)
                    .expect("create test database");
                let raw_url = with_database(&admin, &name);
                Some(TestDatabase {
                    url: raw_url.parse().unwrap(),
                    raw_url,
                    _dir: None,
                    postgres: Some((admin, name)),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres
            && let Ok(mut conn) = diesel::PgConnection::establish(admin)
        {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    /// A client that keeps cookies and does not follow redirects.
    pub client: reqwest::Client,
    pub state: gatehouse::state::AppState,
    /// The server's clock: `clock.advance(…)` moves time without sleeping.
    pub clock: std::sync::Arc<gatehouse::clock::ManualClock>,
    /// The separate metrics listener, when the settings asked for one.
    pub metrics_address: Option<String>,
    handle: actix_web::dev::ServerHandle,
    _db: TestDatabase,
}

/// Every log line the servers in this test binary wrote (tests check that no secret leaks
/// into them); printed too when `TEST_LOG` is set.
static LOG_LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct CapturingLogger {
    echo: bool,
}

impl log::Log for CapturingLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let line = format!("{} {} {}", record.level(), record.target(), record.args());
        if self.echo {
            eprintln!("{line}");
        }
        LOG_LINES
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
    }

    fn flush(&self) {}
}

pub fn captured_logs() -> Vec<String> {
    LOG_LINES.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let echo = std::env::var("TEST_LOG").is_ok();
        if log::set_boxed_logger(Box::new(CapturingLogger { echo })).is_ok() {
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}

pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings =
        Settings::for_tests(db.url.clone(), b"test-server-secret-of-at-least-32-bytes");
    settings.admin_email = Some(ADMIN_EMAIL.into());
    settings.admin_password = Some(Redacted(ADMIN_PASSWORD.into()));
    settings
}

/// Start Gatehouse on a fresh database of `backend`; `None` when that backend is not available
/// here (already announced).
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    adjust: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    init_logging();
    let db = TestDatabase::migrated(backend)?;
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    let bind = settings.bind.clone();
    let clock = std::sync::Arc::new(gatehouse::clock::ManualClock::starting_now());
    let app = Application::build_with_clock(settings, clock.clone()).expect("application starts");
    let host = if bind.starts_with("[::1]") {
        "[::1]"
    } else {
        "127.0.0.1"
    };
    let address = format!("http://{host}:{}", app.port());
    let state = app.state().clone();
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    let handle = app.handle();
    actix_web::rt::spawn(app.run_until_stopped());
    Some(TestApp {
        address,
        backend,
        client: new_client(),
        state,
        clock,
        metrics_address,
        handle,
        _db: db,
    })
}

pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client")
}

/// The value of `<input … name="NAME" value="…">` in a page.
pub fn hidden_field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    /// The CSRF token of the login form (fetching it sets the pre-session cookie).
    pub async fn login_csrf(&self) -> String {
        let page = self.get("/login").await.text().await.unwrap();
        hidden_field(&page, "csrf_token").expect("login form has a CSRF token")
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        let csrf = self.login_csrf().await;
        self.post_form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", email),
                ("password", password),
            ],
        )
        .await
    }

    pub async fn login_admin(&self) {
        let response = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "admin login");
    }

    /// Sign in from a second, separate browser (its own cookies); returns it and the answer.
    pub async fn login_in_new_browser(
        &self,
        email: &str,
        password: &str,
    ) -> (reqwest::Client, reqwest::Response) {
        let browser = new_client();
        let page = browser
            .get(self.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_field(&page, "csrf_token").expect("login form has a CSRF token");
        let response = browser
            .post(self.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        (browser, response)
    }

    /// The CSRF token of the signed-in session, read from a page's forms.
    pub async fn session_csrf(&self) -> String {
        let page = self.get("/account").await.text().await.unwrap();
        hidden_field(&page, "csrf_token").expect("signed-in page has a CSRF token")
    }

    pub async fn me(&self) -> reqwest::Response {
        self.get("/v1/users/me").await
    }

    /// Create a user through the CLI's code path (directly in the database).
    pub async fn create_user(&self, email: &str, password: &str, admin: bool) -> String {
        use gatehouse::accounts::{Email, NewAccount, NewPassword, Role, model, now};
        let account = NewAccount {
            email: Email::parse(email).unwrap(),
            display_name: String::new(),
            password: NewPassword::parse(password).unwrap(),
            role: if admin { Role::Admin } else { Role::Member },
            password_change_required: false,
        };
        let mut account = account;
        account.display_name = model::normalize_display_name("", &account.email).unwrap();
        self.state
            .db(move |c| Ok(gatehouse::accounts::create_user(c, &account, now()).map(|u| u.id)))
            .await
            .unwrap()
            .expect("user created")
    }

    /// Create a key through `POST /v1/api-keys` with the signed-in session; returns (id, key).
    pub async fn create_key(&self, body: serde_json::Value) -> (String, String) {
        let response = self
            .client
            .post(self.url("/v1/api-keys"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "creating a key");
        let created: serde_json::Value = response.json().await.unwrap();
        (
            created["data"]["id"].as_str().unwrap().to_owned(),
            created["data"]["key"].as_str().unwrap().to_owned(),
        )
    }

    /// `GET path` with `Authorization: Bearer key` and no cookies.
    pub async fn get_with_key(&self, path: &str, key: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    /// Stop the server (without waiting for idle keep-alive connections).
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// Define a test that runs once per backend: `both_backends!(name, |app| async move { … });`
/// expands to `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::helpers::{Backend, spawn_app};

            async fn run(backend: Backend) {
                let Some(owned) = spawn_app(backend).await else {
                    return;
                };
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }

            #[actix_web::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[actix_web::test]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
    // As above, on a server whose settings `$adjust(&mut Settings)` changed first.
    ($name:ident, settings = $adjust:expr, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            use $crate::helpers::{Backend, spawn_app_with};

            async fn run(backend: Backend) {
                let Some(owned) = spawn_app_with(backend, $adjust).await else {
                    return;
                };
                {
                    let $app = &owned;
                    $body.await;
                }
                owned.stop().await;
            }

            #[actix_web::test]
            async fn sqlite() {
                run(Backend::Sqlite).await;
            }

            #[actix_web::test]
            async fn postgres() {
                run(Backend::Postgres).await;
            }
        }
    };
}

/// The claims of a JWT, unverified (the tests verify with the relying party, the JWKS or the
/// resource-server crate): the one decoder every test uses.
pub(crate) fn jwt_claims(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}
