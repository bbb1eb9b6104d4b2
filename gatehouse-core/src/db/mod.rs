//! Database plumbing shared by every capability: one connection type over SQLite and
//! PostgreSQL, a pool whose backend is chosen from the URL scheme, per-connection settings,
//! and the embedded migrations. No capability's queries live here.

pub mod prepared;
pub mod schema;
mod url;

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use url::{DatabaseUrl, DatabaseUrlError};

/// One connection to whichever backend the URL named.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Sqlite(diesel::SqliteConnection),
    Pg(diesel::PgConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConn = r2d2::PooledConnection<ConnectionManager>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

/// Arbitrary constant naming Gatehouse's migration lock among PostgreSQL advisory locks.
const MIGRATION_LOCK_KEY: i64 = 0x6761_7465_686f_7573; // "gatehous"

/// SQLite settings applied to every new connection (WAL is set separately: it is a property
/// of the file, changed once). Each pooled connection keeps its own page cache: 1 MiB each
/// (SQLite's default is 2 MB) holds the upper levels of every index, while the operating
/// system's file cache holds the rest once for all connections — eight default caches filled
/// by lookups spread over a large database would cost ~16 MB of resident memory. The log file
/// is cut back to 64 MiB when it restarts after a burst made it larger.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; \
     PRAGMA synchronous = NORMAL; \
     PRAGMA foreign_keys = ON; \
     PRAGMA cache_size = -1024; \
     PRAGMA journal_size_limit = 67108864;";

#[derive(QueryableByName)]
struct JournalMode {
    #[diesel(sql_type = diesel::sql_types::Text)]
    journal_mode: String,
}

/// Switch the file to WAL unless it already is. Two processes creating the same new file may
/// both try; SQLite answers the loser "locked" without waiting, so that one step (and only
/// it) is tried again for up to ~5 s.
fn ensure_wal(conn: &mut diesel::SqliteConnection) -> Result<(), DbError> {
    let mut attempts = 0;
    loop {
        let current: Vec<JournalMode> = diesel::sql_query("PRAGMA journal_mode").load(conn)?;
        if current
            .first()
            .is_some_and(|m| m.journal_mode.eq_ignore_ascii_case("wal"))
        {
            return Ok(());
        }
        match conn.batch_execute("PRAGMA journal_mode = WAL") {
            Ok(()) => return Ok(()),
            Err(diesel::result::Error::DatabaseError(_, info))
                if info.message().contains("locked") && attempts < 50 =>
            {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database query: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migrations failed: {0}")]
    Migration(String),
    #[error("the blocking task was cancelled")]
    Cancelled,
}

impl DbError {
    /// The connection itself failed (the server went away or closed it).
    pub fn is_lost_connection(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection
                    | diesel::result::DatabaseErrorKind::UnableToSendCommand,
                _
            ))
        )
    }

    /// True for a unique-index violation (e.g. a duplicate email).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}

/// Statements this process sent to each database (by URL): how benchmarks and tests count the
/// queries a flow costs. One relaxed atomic add per statement.
static QUERY_COUNTERS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, Arc<std::sync::atomic::AtomicU64>>>,
> = std::sync::LazyLock::new(Default::default);

/// The statement counter of the database at `url` (every connection to it adds to it).
pub fn query_counter(url: &DatabaseUrl) -> Arc<std::sync::atomic::AtomicU64> {
    let mut counters = QUERY_COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    counters.entry(url.describe()).or_default().clone()
}

fn counting(
    counter: Arc<std::sync::atomic::AtomicU64>,
) -> impl diesel::connection::Instrumentation {
    move |event: diesel::connection::InstrumentationEvent<'_>| {
        if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The r2d2 manager: establishes the backend the URL names, never guessing by trial.
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    /// SQLite pools: alive while the pool is; its checkpointer stops when this is dropped.
    /// Connections of such a pool never checkpoint on commit (see `spawn_checkpointer`).
    checkpointer: Option<Arc<()>>,
}

impl ConnectionManager {
    pub fn new(url: DatabaseUrl) -> Self {
        ConnectionManager {
            url,
            checkpointer: None,
        }
    }

    fn establish(&self) -> Result<DbConn, DbError> {
        let _opening = Opening::start()?;
        let connect_error = |e: diesel::ConnectionError| DbError::Connect {
            target: self.url.describe(),
            reason: e.to_string().trim().to_owned(),
        };
        match &self.url {
            DatabaseUrl::Sqlite { path } => {
                create_private(path).map_err(|e| DbError::Connect {
                    target: self.url.describe(),
                    reason: e.to_string(),
                })?;
                let path = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&path).map_err(connect_error)?;
                conn.batch_execute(SQLITE_PRAGMAS)?;
                if self.checkpointer.is_some() {
                    conn.batch_execute("PRAGMA wal_autocheckpoint = 0")?;
                }
                ensure_wal(&mut conn)?;
                conn.set_instrumentation(counting(query_counter(&self.url)));
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres { url } => {
                let mut conn = diesel::PgConnection::establish(url).map_err(connect_error)?;
                conn.set_instrumentation(counting(query_counter(&self.url)));
                Ok(DbConn::Pg(conn))
            }
        }
    }
}

impl ManageConnection for ConnectionManager {
    type Connection = DbConn;
    type Error = DbError;

    fn connect(&self) -> Result<DbConn, DbError> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), DbError> {
        conn.batch_execute("SELECT 1").map_err(DbError::from)
    }

    /// Checked when a connection goes back to the pool (no round trip): one whose server went
    /// away, or left inside a transaction, is dropped and replaced.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        match conn {
            DbConn::Sqlite(inner) => AnsiTransactionManager::is_broken_transaction_manager(inner),
            DbConn::Pg(inner) => AnsiTransactionManager::is_broken_transaction_manager(inner),
        }
    }
}

/// One connection outside any pool (one-shot commands).
/// A SQLite database file is created private (0600) before SQLite opens it: it holds password
/// hashes, key digests and encrypted signing keys. SQLite gives its `-wal` and `-shm` files
/// the database file's permissions. An existing file keeps the permissions it has.
pub fn create_private(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let text = path.to_string_lossy();
    if text == ":memory:" || text.starts_with("file:") || path.exists() {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

pub fn connect_one(url: &DatabaseUrl) -> Result<DbConn, DbError> {
    ConnectionManager::new(url.clone()).establish()
}

/// Connections being opened right now, by any pool's background threads or anyone else.
static OPENING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Set once the process is about to exit: no connection may start opening after it.
static CLOSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One connection being opened; counted until dropped.
struct Opening;

impl Opening {
    fn start() -> Result<Opening, DbError> {
        use std::sync::atomic::Ordering::SeqCst;
        OPENING.fetch_add(1, SeqCst);
        // Counted first, checked second (and the closer does the reverse), so either the closer
        // waits for this opening or this opening sees the closer: never neither.
        if CLOSED.load(SeqCst) {
            OPENING.fetch_sub(1, SeqCst);
            return Err(DbError::Connect {
                target: "database".into(),
                reason: "the process is shutting down".into(),
            });
        }
        Ok(Opening)
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        OPENING.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Before the process exits: refuse new connections and wait (up to `limit`) for those being
/// opened by pool threads. libpq's TLS and SCRAM run in libcrypto, which `exit()` tears down;
/// a pool thread still inside it then crashes the process after its work was done.
pub fn stop_connecting(limit: Duration) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    CLOSED.store(true, SeqCst);
    let deadline = std::time::Instant::now() + limit;
    while OPENING.load(SeqCst) > 0 {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Connect once (so a wrong URL or a database that is down fails fast with a clear message),
/// then build the pool. Checkouts are not tested with `SELECT 1`: that round trip would halve
/// PostgreSQL read throughput; a broken connection surfaces as a query error instead.
pub fn connect_pool(url: &DatabaseUrl) -> Result<DbPool, DbError> {
    let mut manager = ConnectionManager::new(url.clone());
    drop(manager.establish()?);
    if let DatabaseUrl::Sqlite { path } = url {
        let alive = Arc::new(());
        spawn_checkpointer(path.to_string_lossy().into_owned(), Arc::downgrade(&alive))?;
        manager.checkpointer = Some(alive);
    }
    let max_size = match url {
        DatabaseUrl::Sqlite { .. } => 8,
        DatabaseUrl::Postgres { .. } => 16,
    };
    r2d2::Pool::builder()
        .max_size(max_size)
        .min_idle(Some(1))
        .test_on_check_out(false)
        .connection_timeout(Duration::from_secs(5))
        .build(manager)
        .map_err(DbError::Pool)
}

/// What `PRAGMA wal_checkpoint` answers: frames in the log, and how many are now copied.
#[derive(QueryableByName)]
struct WalCheckpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    log: i32,
}

/// How often the checkpointer copies the write-ahead log into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Where the database floor reports its background work (job, whether it succeeded, how long
/// it took). The floor owns the hook and imports no room above it; the metrics room installs
/// its reporter at start. Until one is installed nothing is reported.
static REPORTER: std::sync::OnceLock<fn(&'static str, bool, std::time::Duration)> =
    std::sync::OnceLock::new();

/// Install the reporter of background work (the first one installed stays).
pub fn report_background_runs_to(reporter: fn(&'static str, bool, std::time::Duration)) {
    let _ = REPORTER.set(reporter);
}

fn report(job: &'static str, ok: bool, took: std::time::Duration) {
    if let Some(reporter) = REPORTER.get() {
        reporter(job, ok, took);
    }
}

/// SQLite's write-ahead log is copied into the database file by a checkpoint. Left to SQLite,
/// the commit that crosses 1,000 pages of log runs it, holding the write lock while it writes
/// and syncs the file: 25–50 ms on a large database, charged to whichever request or janitor
/// batch committed (BENCHMARKS.md, "the janitor's longest write"). A pool's connections
/// therefore never checkpoint; this thread runs a passive checkpoint (it waits for no reader
/// or writer, and none waits for it) every 100 ms on its own connection, until the pool is
/// dropped.
fn spawn_checkpointer(path: String, alive: std::sync::Weak<()>) -> Result<(), DbError> {
    let mut conn = diesel::SqliteConnection::establish(&path).map_err(|e| DbError::Connect {
        target: path.clone(),
        reason: e.to_string(),
    })?;
    conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA wal_autocheckpoint = 0")?;
    std::thread::Builder::new()
        .name("gatehouse-checkpoint".into())
        .spawn(move || {
            let mut pause = CHECKPOINT_EVERY;
            while alive.strong_count() > 0 {
                std::thread::sleep(pause);
                let started = std::time::Instant::now();
                let result: Result<Vec<WalCheckpoint>, _> =
                    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").load(&mut conn);
                report("wal_checkpoint", result.is_ok(), started.elapsed());
                // A burst of writes: go again soon, so the log stays near SQLite's own
                // 1,000-page threshold instead of growing for a whole period.
                pause = match result {
                    Ok(rows) if rows.first().is_some_and(|r| r.log >= 1000) => {
                        CHECKPOINT_EVERY / 10
                    }
                    Ok(_) => CHECKPOINT_EVERY,
                    Err(e) => {
                        log::warn!("SQLite checkpoint failed (will retry): {e}");
                        CHECKPOINT_EVERY
                    }
                };
            }
        })
        .map_err(|e| DbError::Connect {
            target: path,
            reason: format!("cannot start the checkpoint thread: {e}"),
        })?;
    Ok(())
}

/// Run pending migrations and then `then`, while holding the migration lock, so that several
/// instances starting together migrate once and bootstrap once. Returns the versions applied.
pub fn migrate_then<T>(
    conn: &mut DbConn,
    then: impl FnOnce(&mut DbConn) -> Result<T, DbError>,
) -> Result<(Vec<String>, T), DbError> {
    let migration_error =
        |e: Box<dyn std::error::Error + Send + Sync>| DbError::Migration(e.to_string());
    match conn {
        DbConn::Sqlite(inner) => {
            // BEGIN IMMEDIATE takes SQLite's write lock up front (waiting on busy_timeout), so a
            // second instance waits here instead of failing with "database is locked"; the
            // migrations and `then` run inside it (as savepoints).
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let result = inner
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(migration_error)
                .and_then(|applied| Ok((applied, then(conn)?)));
            if let DbConn::Sqlite(inner) = conn {
                match &result {
                    Ok(_) => AnsiTransactionManager::commit_transaction(inner)?,
                    Err(_) => AnsiTransactionManager::rollback_transaction(inner)?,
                }
            }
            result
        }
        DbConn::Pg(inner) => {
            diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                .execute(inner)?;
            let result = inner
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|versions| versions.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(migration_error)
                .and_then(|applied| Ok((applied, then(conn)?)));
            if let DbConn::Pg(inner) = conn {
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(inner)?;
            }
            result
        }
    }
}

/// The in-process queue of SQLite write transactions (one writer at a time is all SQLite
/// allows anyway).
static SQLITE_WRITERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A transaction that will write. On SQLite it takes the write lock up front (`BEGIN
/// IMMEDIATE`, waiting on `busy_timeout`): a deferred transaction that reads and then writes
/// fails at once with "database is locked" when another writer got there first, which would
/// turn a lost race (two refreshes of one token) into an error instead of a clean refusal.
pub fn write_transaction<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Sqlite(inner) => {
            // Inside a write transaction already: the write lock is held, a savepoint will do
            // (and taking the queue again would wait on ourselves).
            let depth = AnsiTransactionManager::transaction_manager_status_mut(inner)
                .transaction_depth()?;
            if depth.is_some() {
                return conn.transaction(work);
            }
            // Writers of this process queue here rather than in SQLite's busy handler, whose
            // back-off sleeps (1, 2, 5, 10 … ms) would dominate a short transaction's latency.
            let _queue = SQLITE_WRITERS.lock().unwrap_or_else(|p| p.into_inner());
            AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
            let result = work(conn);
            if let DbConn::Sqlite(inner) = conn {
                match &result {
                    Ok(_) => AnsiTransactionManager::commit_transaction(inner)?,
                    Err(_) => AnsiTransactionManager::rollback_transaction(inner)?,
                }
            }
            result
        }
        DbConn::Pg(_) => conn.transaction(work),
    }
}

/// Writes outside a transaction (each statement commits on its own). On SQLite the writers of
/// this process take turns here instead of colliding in SQLite's busy handler, whose back-off
/// sleeps turn a collision into milliseconds; on PostgreSQL, nothing to do.
pub fn serialized_write<T, E, F>(conn: &mut DbConn, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
{
    match conn {
        DbConn::Sqlite(_) => {
            let _queue = SQLITE_WRITERS.lock().unwrap_or_else(|p| p.into_inner());
            work(conn)
        }
        DbConn::Pg(_) => work(conn),
    }
}

/// Whether a PostgreSQL connection is outside any transaction (each statement commits alone).
pub fn outside_transaction(pg: &mut diesel::PgConnection) -> Result<bool, DbError> {
    Ok(AnsiTransactionManager::transaction_manager_status_mut(pg)
        .transaction_depth()?
        .is_none())
}

/// Mark a connection that lost its server, so the pool replaces it.
pub fn mark_broken(conn: &mut DbConn) {
    match conn {
        DbConn::Sqlite(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).set_in_error()
        }
        DbConn::Pg(inner) => {
            AnsiTransactionManager::transaction_manager_status_mut(inner).set_in_error()
        }
    }
}

/// Whether the database answers a trivial query (for `/readyz`).
pub fn ping(conn: &mut DbConn) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_connections_get_wal_and_foreign_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite {
            path: dir.path().join("t.db"),
        };
        let mut conn = ConnectionManager::new(url).connect().unwrap();
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            journal_mode: String,
        }
        let DbConn::Sqlite(inner) = &mut conn else {
            panic!("expected SQLite")
        };
        let mode: Vec<Row> = diesel::sql_query("PRAGMA journal_mode")
            .load(inner)
            .unwrap();
        assert_eq!(mode[0].journal_mode, "wal");
        #[derive(QueryableByName)]
        struct Fk {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            foreign_keys: i32,
        }
        let fk: Vec<Fk> = diesel::sql_query("PRAGMA foreign_keys")
            .load(inner)
            .unwrap();
        assert_eq!(fk[0].foreign_keys, 1);
    }

    #[test]
    fn a_new_sqlite_database_and_its_log_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.db");
        let url = DatabaseUrl::Sqlite { path: path.clone() };
        let mut conn = ConnectionManager::new(url).connect().unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600, "the database file");
        let wal = dir.path().join("fresh.db-wal");
        assert!(wal.exists(), "WAL mode keeps a log beside it");
        assert_eq!(mode(&wal), 0o600, "the write-ahead log");
        // An existing file keeps what its operator gave it.
        let shared = dir.path().join("shared.db");
        std::fs::write(&shared, b"").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private(&shared).unwrap();
        assert_eq!(mode(&shared), 0o640);
    }

    #[test]
    fn migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite {
            path: dir.path().join("t.db"),
        };
        let mut conn = ConnectionManager::new(url).connect().unwrap();
        let (first, ()) = migrate_then(&mut conn, |_| Ok(())).unwrap();
        assert!(!first.is_empty());
        let (second, ()) = migrate_then(&mut conn, |_| Ok(())).unwrap();
        assert!(second.is_empty());
    }

    #[test]
    fn a_pools_log_is_checkpointed_in_the_background_not_by_commits() {
        #[derive(QueryableByName)]
        struct Checkpoint {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            log: i32,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            checkpointed: i32,
        }
        #[derive(QueryableByName)]
        struct Auto {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            wal_autocheckpoint: i32,
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let pool = connect_pool(&DatabaseUrl::Sqlite { path: path.clone() }).unwrap();
        let mut conn = pool.get().unwrap();
        let DbConn::Sqlite(inner) = &mut *conn else {
            panic!("expected SQLite")
        };
        let auto: Vec<Auto> = diesel::sql_query("PRAGMA wal_autocheckpoint")
            .load(inner)
            .unwrap();
        assert_eq!(auto[0].wal_autocheckpoint, 0, "commits never checkpoint");
        inner
            .batch_execute(
                "CREATE TABLE t (v TEXT); INSERT INTO t VALUES (hex(randomblob(100000)))",
            )
            .unwrap();
        drop(conn);
        let size_before = std::fs::metadata(&path).unwrap().len();
        std::thread::sleep(CHECKPOINT_EVERY * 5);
        assert!(
            std::fs::metadata(&path).unwrap().len() > size_before + 100_000,
            "the checkpointer copied the new pages into the database file"
        );
        // Nothing is left in the log to copy.
        let mut other = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
        let state: Vec<Checkpoint> = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)")
            .load(&mut other)
            .unwrap();
        assert_eq!(state[0].log, state[0].checkpointed);
        drop(pool);
    }
}
