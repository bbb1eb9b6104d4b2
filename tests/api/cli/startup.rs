//! Starting and stopping the server: bad configuration is a clear error, SQLite generates its
//! own secret, the first start creates one admin (concurrent starts too), SIGTERM finishes and
//! exits zero after the shutdown hooks, and JSON logs are one object per line with no secret.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse::Application;

use crate::helpers::{Backend, KillOnDrop, TestDatabase, test_settings};

use super::{SECRET, gatehouse, gatehouse_on, run, text};

#[test]
fn unknown_database_scheme_is_a_clear_error() {
    let out = run(gatehouse().args(["migrate", "--database-url", "mysql://root@localhost/gh"]));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown database URL scheme \"mysql\""),
        "{err}"
    );
}

#[test]
fn unreachable_postgres_names_host_and_database_but_not_the_password() {
    let out = run(gatehouse()
        .args(["migrate"])
        .env(
            "GATEHOUSE_DATABASE_URL",
            "postgres://gh:hunter2secret@127.0.0.1:1/gatehouse_prod",
        )
        .env("GATEHOUSE_SECRET", SECRET));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("127.0.0.1:1"), "{err}");
    assert!(err.contains("gatehouse_prod"), "{err}");
    assert!(!err.contains("hunter2secret"), "{err}");
}

#[test]
fn postgres_without_a_server_secret_is_refused() {
    let out = run(gatehouse()
        .args(["migrate"])
        .env("GATEHOUSE_DATABASE_URL", "postgres://127.0.0.1:1/gh"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("GATEHOUSE_SECRET is required"));
}

#[test]
fn sqlite_without_secret_generates_a_private_secret_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(gatehouse().current_dir(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secret = dir.path().join("gatehouse.db.secret");
    assert!(secret.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn sigterm_finishes_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        gatehouse()
            .current_dir(dir.path())
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let line = lines.next().expect("server log").unwrap();
        if let Some((_, port)) = line.split_once("listening on: 127.0.0.1:") {
            break port.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "server did not start");
    };
    // Once it answers a request, it is running (and handling signals).
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("Gatehouse stopped")),
        "{rest:?}"
    );
}

#[actix_web::test]
async fn shutdown_hooks_run_after_the_server_stops() {
    let Some(db) = TestDatabase::create(Backend::Sqlite) else {
        return;
    };
    let app = Application::build(test_settings(&db)).unwrap();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = ran.clone();
    app.shutdown_hooks().register("test flush", move || {
        flag.store(true, std::sync::atomic::Ordering::SeqCst)
    });
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());
    handle.stop(true).await;
    server.await.unwrap().unwrap();
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
}

fn first_start_bootstrap(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    let mut generated = test_settings(&db);
    generated.admin_email = None;
    generated.admin_password = None;
    let (_, applied, admin) = gatehouse::app::prepare_database(&generated).unwrap();
    assert!(!applied.is_empty());
    let admin = admin.expect("an admin on an empty database");
    assert_eq!(admin.email.as_str(), "admin@gatehouse.local");
    assert!(admin.generated_password.is_some());
    let (_, applied, admin) = gatehouse::app::prepare_database(&generated).unwrap();
    assert!(applied.is_empty());
    assert!(admin.is_none(), "a second start creates nobody");
}

#[test]
fn first_start_creates_one_admin_sqlite() {
    first_start_bootstrap(Backend::Sqlite);
}

#[test]
fn first_start_creates_one_admin_postgres() {
    first_start_bootstrap(Backend::Postgres);
}

fn concurrent_starts(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    let settings = test_settings(&db);
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let settings = settings.clone();
            std::thread::spawn(move || {
                gatehouse::app::prepare_database(&settings)
                    .map(|(_, applied, admin)| (applied.len(), admin.is_some()))
            })
        })
        .collect();
    let results: Vec<(usize, bool)> = starts
        .into_iter()
        .map(|t| t.join().unwrap().expect("every instance starts"))
        .collect();
    assert_eq!(
        results.iter().filter(|(_, made_admin)| *made_admin).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|(applied, _)| *applied > 0).count(),
        1,
        "migrated once: {results:?}"
    );
    let keys = run(gatehouse_on(&db).args(["signing-key", "list", "--json"]));
    let keys: Vec<serde_json::Value> = serde_json::from_slice(&keys.stdout).unwrap();
    assert_eq!(
        keys.len(),
        1,
        "every instance signs with the same key: {keys:?}"
    );
}

#[test]
fn concurrent_starts_migrate_once_and_create_one_admin_sqlite() {
    concurrent_starts(Backend::Sqlite);
}

#[test]
fn concurrent_starts_migrate_once_and_create_one_admin_postgres() {
    concurrent_starts(Backend::Postgres);
}

/// A raw HTTP/1.1 GET on `port`; the whole answer.
fn http_get(port: &str, path: &str, bearer: Option<&str>) -> String {
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    let auth = bearer
        .map(|b| format!("Authorization: Bearer {b}\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    answer
}

#[test]
fn json_logs_are_one_object_per_line_with_each_request_and_no_secret() {
    let Some(db) = TestDatabase::create(Backend::Sqlite) else {
        return;
    };
    let created = run(gatehouse_on(&db).args(["user", "create", "--email", "ops@example.com"]));
    assert!(created.status.success());
    let key = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "ops@example.com",
        "--name",
        "logs",
        "--json",
    ]));
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
    let (key_id, secret) = (key["id"].as_str().unwrap(), key["key"].as_str().unwrap());

    let mut child = KillOnDrop(
        gatehouse_on(&db)
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .env("GATEHOUSE_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let port = loop {
        let line = lines.next().expect("server log").unwrap();
        seen.push(line.clone());
        if let Some((_, rest)) = line.split_once("listening on: 127.0.0.1:") {
            break rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>();
        }
    };
    let answer = http_get(&port, "/v1/users/me", Some(secret));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let request_id = answer
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("a request id")
        .trim()
        .to_owned();
    assert!(http_get(&port, "/v1/users/me", Some("sk_live_wrong")).starts_with("HTTP/1.1 401"));
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    seen.extend(lines.map_while(Result::ok));
    assert_eq!(child.wait().unwrap().code(), Some(0));

    let objects: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for object in &objects {
        for field in ["ts", "level", "target"] {
            assert!(object[field].is_string(), "{field} missing: {object}");
        }
    }
    let access: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["target"] == "gatehouse::access")
        .collect();
    let mine = access
        .iter()
        .find(|o| o["request_id"] == request_id.as_str())
        .unwrap_or_else(|| panic!("no access line for {request_id}: {access:?}"));
    assert_eq!(mine["route"], "/v1/users/me");
    assert_eq!(mine["method"], "GET");
    assert_eq!(mine["status"], 200);
    assert!(mine["latency_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(mine["credential"], key_id);
    assert!(mine["principal"].as_str().unwrap().starts_with("usr_"));
    assert!(
        access.iter().any(|o| o["status"] == 401),
        "refused requests are logged too"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains(secret) || l.contains("sk_live_wrong"))
    );
}
