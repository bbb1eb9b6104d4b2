//! The `gatehouse` command and start-up: bad configuration, the first admin, concurrent
//! starts, user administration, graceful shutdown.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use gatehouse::Application;

use crate::helpers::{Backend, KillOnDrop, TestDatabase, test_settings};

const SECRET: &str = "cli-test-secret-that-is-long-enough-0123";

fn gatehouse() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn");
    cmd
}

fn gatehouse_on(db: &TestDatabase) -> Command {
    let mut cmd = gatehouse();
    cmd.env("GATEHOUSE_DATABASE_URL", &db.raw_url)
        .env("GATEHOUSE_SECRET", SECRET);
    cmd
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("gatehouse runs")
}

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
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "disable", "--help"],
        vec!["key", "create", "--help"],
        vec!["key", "list", "--help"],
        vec!["key", "revoke", "--help"],
        vec!["scope", "add", "--help"],
        vec!["scope", "list", "--help"],
        vec!["client", "create", "--help"],
        vec!["signing-key", "rotate", "--help"],
        vec!["signing-key", "list", "--help"],
        vec!["registration-token", "create", "--help"],
        vec!["registration-token", "list", "--help"],
        vec!["registration-token", "revoke", "--help"],
    ] {
        let out = run(gatehouse().args(&args));
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage"), "{args:?}");
    }
}

fn user_commands(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    let migrate = run(gatehouse_on(&db).arg("migrate"));
    assert!(migrate.status.success(), "{}", text(&migrate.stderr));
    assert!(
        text(&migrate.stdout).contains("Created the first admin account: admin@gatehouse.local")
    );
    let again = run(gatehouse_on(&db).arg("migrate"));
    assert!(text(&again.stdout).contains("0 migration(s) applied"));
    assert!(
        !text(&again.stdout).contains("first admin"),
        "the admin is created once"
    );

    let created =
        run(gatehouse_on(&db).args(["user", "create", "--email", "Kim@Example.com", "--json"]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    let json: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(json["id"].as_str().unwrap().starts_with("usr_"));
    assert_eq!(json["email"], "kim@example.com");
    assert_eq!(json["role"], "member");
    assert_eq!(
        json["password"].as_str().unwrap().len(),
        20,
        "a generated password is printed"
    );

    let mut child = gatehouse_on(&db)
        .args([
            "user",
            "create",
            "--email",
            "lee@example.com",
            "--admin",
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"lee's password 1\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).trim().starts_with("usr_"));
    assert!(
        !text(&out.stderr).contains("lee's password"),
        "a given password is not echoed"
    );

    let duplicate = run(gatehouse_on(&db).args(["user", "create", "--email", "KIM@example.com"]));
    assert_eq!(duplicate.status.code(), Some(3));
    assert!(text(&duplicate.stderr).contains("already exists"));
    let invalid = run(gatehouse_on(&db).args(["user", "create", "--email", "not-an-email"]));
    assert_eq!(invalid.status.code(), Some(2));
    assert!(text(&invalid.stderr).contains("--email"));

    let disabled = run(gatehouse_on(&db).args(["user", "disable", "--email", "kim@example.com"]));
    assert!(disabled.status.success());
    let missing = run(gatehouse_on(&db).args(["user", "disable", "--email", "ghost@example.com"]));
    assert_eq!(missing.status.code(), Some(3));

    let list = run(gatehouse_on(&db).args(["user", "list", "--json"]));
    let users: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(users.len(), 3);
    let kim = users
        .iter()
        .find(|u| u["email"] == "kim@example.com")
        .unwrap();
    assert_eq!(kim["disabled"], true);
    let lee = users
        .iter()
        .find(|u| u["email"] == "lee@example.com")
        .unwrap();
    assert_eq!(lee["role"], "admin");
    assert!(users.iter().all(|u| u.get("password_hash").is_none()));
}

#[test]
fn user_commands_sqlite() {
    user_commands(Backend::Sqlite);
}

#[test]
fn user_commands_postgres() {
    user_commands(Backend::Postgres);
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

fn key_and_scope_commands(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    assert!(
        run(gatehouse_on(&db).args(["user", "create", "--email", "ops@example.com"]))
            .status
            .success()
    );

    let added = run(gatehouse_on(&db).args([
        "scope",
        "add",
        "read:invoices",
        "--description",
        "Read invoices",
    ]));
    assert!(added.status.success(), "{}", text(&added.stderr));
    let again = run(gatehouse_on(&db).args([
        "scope",
        "add",
        "read:invoices",
        "--description",
        "Read invoices",
    ]));
    assert_eq!(again.status.code(), Some(3));
    let bad_scope = run(gatehouse_on(&db).args(["scope", "add", "Invoices", "--description", "x"]));
    assert_eq!(bad_scope.status.code(), Some(2));
    let scopes: Vec<serde_json::Value> =
        serde_json::from_slice(&run(gatehouse_on(&db).args(["scope", "list", "--json"])).stdout)
            .unwrap();
    assert!(scopes.iter().any(|s| s["name"] == "read:invoices"));
    assert!(
        scopes.iter().any(|s| s["name"] == "write:api_keys"),
        "the defaults are seeded"
    );

    let created = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "ops@example.com",
        "--name",
        "billing",
        "--expires-in",
        "90d",
        "--test",
        "--scopes",
        "read:invoices,read:orders",
        "--allow-ip",
        "10.0.0.0/8",
        "--allow-ip",
        "2001:db8::/32",
        "--allow-referrer",
        "https://app.example.com",
        "--allow-endpoint",
        "GET /v1/orders/*",
        "--json",
    ]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(key["id"].as_str().unwrap().starts_with("key_"));
    assert!(key["key"].as_str().unwrap().starts_with("rk_test_"));
    assert_eq!(
        key["scopes"],
        serde_json::json!(["read:invoices", "read:orders"])
    );
    assert_eq!(
        key["allowed_ips"],
        serde_json::json!(["10.0.0.0/8", "2001:db8::/32"])
    );
    assert_eq!(
        key["allowed_referrers"],
        serde_json::json!(["https://app.example.com"])
    );
    assert_eq!(
        key["allowed_endpoints"],
        serde_json::json!(["GET /v1/orders/*"])
    );
    let id = key["id"].as_str().unwrap().to_owned();

    let plain = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "ops@example.com",
        "--name",
        "plain",
    ]));
    assert!(
        text(&plain.stdout).trim().starts_with("sk_live_"),
        "without --json the key alone goes to stdout"
    );

    for (args, code) in [
        (
            vec![
                "key",
                "create",
                "--user",
                "nobody@example.com",
                "--name",
                "x",
            ],
            3,
        ),
        (
            vec![
                "key",
                "create",
                "--user",
                "ops@example.com",
                "--name",
                "x",
                "--scopes",
                "read:nothing",
            ],
            2,
        ),
        (
            vec![
                "key",
                "create",
                "--user",
                "ops@example.com",
                "--name",
                "x",
                "--expires-in",
                "5000d",
            ],
            2,
        ),
        (
            vec![
                "key",
                "create",
                "--user",
                "ops@example.com",
                "--name",
                "x",
                "--allow-ip",
                "nowhere",
            ],
            2,
        ),
        (
            vec![
                "key",
                "create",
                "--user",
                "ops@example.com",
                "--name",
                "x",
                "--allow-endpoint",
                "GET /v1/../admin",
            ],
            2,
        ),
        (vec!["key", "revoke", "key_doesnotexist"], 3),
    ] {
        assert_eq!(
            run(gatehouse_on(&db).args(&args)).status.code(),
            Some(code),
            "{args:?}"
        );
    }

    let revoked = run(gatehouse_on(&db).args(["key", "revoke", &id]));
    assert!(revoked.status.success());
    let list: Vec<serde_json::Value> = serde_json::from_slice(
        &run(gatehouse_on(&db).args(["key", "list", "--user", "ops@example.com", "--json"])).stdout,
    )
    .unwrap();
    assert_eq!(list.len(), 2);
    let billing = list.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(billing["status"], "revoked");
    assert!(
        list.iter().all(|k| k.get("key").is_none()),
        "lists never show keys"
    );
    let human =
        text(&run(gatehouse_on(&db).args(["key", "list", "--user", "ops@example.com"])).stdout);
    assert!(human.contains("never"), "{human}");
}

#[test]
fn key_and_scope_commands_sqlite() {
    key_and_scope_commands(Backend::Sqlite);
}

#[test]
fn key_and_scope_commands_postgres() {
    key_and_scope_commands(Backend::Postgres);
}

fn client_commands(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    let created = run(gatehouse_on(&db).args([
        "client",
        "create",
        "--name",
        "Orders app",
        "--redirect-uri",
        "https://orders.example.com/callback",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--scopes",
        "read:users write:orders",
        "--json",
    ]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    let client: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(client["client_id"].as_str().unwrap().starts_with("cli_"));
    assert!(
        client["client_secret"].as_str().unwrap().starts_with("cs_"),
        "a confidential client's secret, once"
    );
    assert_eq!(client["client_type"], "confidential");
    assert_eq!(
        client["scopes"],
        serde_json::json!(["read:users", "write:orders"])
    );
    assert_eq!(
        client["redirect_uris"],
        serde_json::json!(["https://orders.example.com/callback", "http://127.0.0.1/cb"])
    );
    // The operator's registration is audited like the API's.
    {
        use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
        use gatehouse::db::schema::audit_events::dsl as a;
        let pool = gatehouse::db::connect_pool(&db.url).unwrap();
        let mut conn = pool.get().unwrap();
        let details: Vec<String> = a::audit_events
            .filter(a::action.eq("oauth.client.created"))
            .select(a::details)
            .load(&mut conn)
            .unwrap();
        assert_eq!(details.len(), 1, "one client.created event");
        assert!(details[0].contains("\"via\":\"cli\""), "{}", details[0]);
    }

    let public = run(gatehouse_on(&db).args([
        "client",
        "create",
        "--name",
        "CLI tool",
        "--redirect-uri",
        "http://[::1]/done",
        "--public",
        "--json",
    ]));
    let public: serde_json::Value = serde_json::from_slice(&public.stdout).unwrap();
    assert_eq!(public["client_type"], "public");
    assert!(
        public.get("client_secret").is_none(),
        "public clients have no secret"
    );
    assert!(
        public["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s != "write:users"),
        "defaults exclude admin-only scopes"
    );

    for (args, code) in [
        (
            vec![
                "client",
                "create",
                "--name",
                "x",
                "--redirect-uri",
                "http://orders.example.com/cb",
            ],
            2,
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "x",
                "--redirect-uri",
                "https://orders.example.com/cb#f",
            ],
            2,
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "x",
                "--redirect-uri",
                "https://o.example.com/cb",
                "--scopes",
                "read:nothing",
            ],
            2,
        ),
        (
            vec![
                "client",
                "create",
                "--name",
                "x",
                "--redirect-uri",
                "https://o.example.com/cb",
                "--owner",
                "ghost@example.com",
            ],
            3,
        ),
    ] {
        assert_eq!(
            run(gatehouse_on(&db).args(&args)).status.code(),
            Some(code),
            "{args:?}"
        );
    }
}

#[test]
fn client_commands_sqlite() {
    client_commands(Backend::Sqlite);
}

#[test]
fn client_commands_postgres() {
    client_commands(Backend::Postgres);
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

fn workspace_commands(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    for email in [
        "owner@example.com",
        "dev@example.com",
        "stranger@example.com",
    ] {
        assert!(
            run(gatehouse_on(&db).args(["user", "create", "--email", email]))
                .status
                .success()
        );
    }
    let created = run(gatehouse_on(&db).args([
        "workspace",
        "create",
        "--owner",
        "owner@example.com",
        "--name",
        "Acme Platform",
        "--admins-issue-keys",
        "--json",
    ]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    let workspace: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(workspace["slug"], "acme-platform");
    assert_eq!(workspace["key_issuance"], "admins");
    assert_eq!(workspace["role"], "owner");
    let taken = run(gatehouse_on(&db).args([
        "workspace",
        "create",
        "--owner",
        "dev@example.com",
        "--name",
        "Acme Platform",
    ]));
    assert_eq!(taken.status.code(), Some(2), "the slug is taken");

    let added = run(gatehouse_on(&db).args([
        "workspace",
        "add-member",
        "--workspace",
        "acme-platform",
        "--user",
        "dev@example.com",
        "--role",
        "admin",
    ]));
    assert!(added.status.success(), "{}", text(&added.stderr));
    let members: Vec<serde_json::Value> = serde_json::from_slice(
        &run(gatehouse_on(&db).args([
            "workspace",
            "members",
            "--workspace",
            "acme-platform",
            "--json",
        ]))
        .stdout,
    )
    .unwrap();
    let roles: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        [("owner@example.com", "owner"), ("dev@example.com", "admin")]
    );
    // The last owner stays.
    let demoted = run(gatehouse_on(&db).args([
        "workspace",
        "add-member",
        "--workspace",
        "acme-platform",
        "--user",
        "owner@example.com",
        "--role",
        "member",
    ]));
    assert_eq!(demoted.status.code(), Some(2));

    // Keys in a workspace: only for its members.
    let key = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "dev@example.com",
        "--name",
        "acme",
        "--workspace",
        "acme-platform",
        "--json",
    ]));
    assert!(key.status.success(), "{}", text(&key.stderr));
    let key: serde_json::Value = serde_json::from_slice(&key.stdout).unwrap();
    assert_eq!(key["workspace_id"], workspace["id"]);
    let outsider = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "stranger@example.com",
        "--name",
        "x",
        "--workspace",
        "acme-platform",
    ]));
    assert_eq!(outsider.status.code(), Some(2));
    let unknown = run(gatehouse_on(&db).args([
        "key",
        "create",
        "--user",
        "dev@example.com",
        "--name",
        "x",
        "--workspace",
        "nope",
    ]));
    assert_eq!(unknown.status.code(), Some(3));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(
        &run(gatehouse_on(&db).args(["workspace", "list", "--user", "dev@example.com", "--json"]))
            .stdout,
    )
    .unwrap();
    let listed: Vec<(bool, &str)> = listed
        .iter()
        .map(|w| {
            (
                w["personal"].as_bool().unwrap(),
                w["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, [(true, "owner"), (false, "admin")]);
}

#[test]
fn workspace_commands_sqlite() {
    workspace_commands(Backend::Sqlite);
}

#[test]
fn workspace_commands_postgres() {
    workspace_commands(Backend::Postgres);
}

fn registration_token_commands(backend: Backend) {
    let Some(db) = TestDatabase::create(backend) else {
        return;
    };
    let created = run(gatehouse_on(&db).args([
        "registration-token",
        "create",
        "--label",
        "sales agents",
        "--days",
        "2",
        "--uses",
        "3",
        "--json",
    ]));
    assert!(created.status.success(), "{}", text(&created.stderr));
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("iat_"), "{token}");
    assert_eq!(created["uses_left"], 3);
    let id = created["id"].as_str().unwrap().to_owned();
    let listed = run(gatehouse_on(&db).args(["registration-token", "list", "--json"]));
    let listed = text(&listed.stdout);
    assert!(
        !listed.contains(token),
        "the token is printed once, never listed"
    );
    let row: serde_json::Value = serde_json::from_str(listed.lines().next().unwrap()).unwrap();
    assert_eq!(
        (
            row["id"].as_str(),
            row["label"].as_str(),
            row["usable"].as_bool()
        ),
        (Some(id.as_str()), Some("sales agents"), Some(true))
    );
    for (args, code) in [
        (vec!["registration-token", "create", "--days", "0"], 2),
        (vec!["registration-token", "create", "--days", "400"], 2),
        (vec!["registration-token", "create", "--uses", "0"], 2),
        (vec!["registration-token", "revoke", "rgt_nope"], 3),
    ] {
        let out = run(gatehouse_on(&db).args(&args));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(
        run(gatehouse_on(&db).args(["registration-token", "revoke", &id]))
            .status
            .success()
    );
    assert_eq!(
        run(gatehouse_on(&db).args(["registration-token", "revoke", &id]))
            .status
            .code(),
        Some(3),
        "already revoked"
    );
    let listed = run(gatehouse_on(&db).args(["registration-token", "list", "--json"]));
    let row: serde_json::Value =
        serde_json::from_str(text(&listed.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(row["revoked"], true);
    assert_eq!(row["usable"], false);
}

#[test]
fn registration_token_commands_sqlite() {
    registration_token_commands(Backend::Sqlite);
}

#[test]
fn registration_token_commands_postgres() {
    registration_token_commands(Backend::Postgres);
}
