//! Every one-shot command, run many times against PostgreSQL over TCP with a SCRAM password,
//! exits 0 every time. The crash this guards against came at exit, after the work was done:
//! a pool thread still opening a connection (SCRAM runs in libcrypto) while `exit()` tore
//! libcrypto down. It needs a password login to show, so this test makes its own role.

use std::process::{Command, Output};

use diesel::{Connection, RunQueryDsl};

use crate::helpers::postgres_admin_url;

const SECRET: &str = "cli-test-secret-that-is-long-enough-0123";
const RUNS: usize = 50;

/// A database owned by a role that logs in with a password over 127.0.0.1 (scram-sha-256 on
/// Debian's default `pg_hba.conf`); both are dropped with the guard.
struct ScramDatabase {
    admin: String,
    name: String,
    url: String,
}

impl ScramDatabase {
    fn create() -> Option<ScramDatabase> {
        let admin = postgres_admin_url()?;
        let suffix = gatehouse::secrets::random_base62(10).to_lowercase();
        let name = format!("gh_scram_{suffix}");
        let password = gatehouse::secrets::random_base62(24);
        let mut conn = diesel::PgConnection::establish(&admin).expect("connect as admin");
        #[derive(diesel::QueryableByName)]
        struct Port {
            #[diesel(sql_type = diesel::sql_types::Text)]
            port: String,
        }
        let port: Vec<Port> = diesel::sql_query("SHOW port").load(&mut conn).unwrap();
        for statement in [
            format!("CREATE ROLE {name} LOGIN PASSWORD '{password}'"),
            format!("CREATE DATABASE {name} OWNER {name}"),
        ] {
            diesel::sql_query(statement).execute(&mut conn).unwrap();
        }
        let url = format!(
            "postgres://{name}:{password}@127.0.0.1:{}/{name}",
            port[0].port
        );
        Some(ScramDatabase { admin, name, url })
    }
}

impl Drop for ScramDatabase {
    fn drop(&mut self) {
        if let Ok(mut conn) = diesel::PgConnection::establish(&self.admin) {
            let name = &self.name;
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn);
            let _ = diesel::sql_query(format!("DROP ROLE IF EXISTS {name}")).execute(&mut conn);
        }
    }
}

fn gatehouse(db: &ScramDatabase, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn")
        .env("GATEHOUSE_DATABASE_URL", &db.url)
        .env("GATEHOUSE_SECRET", SECRET)
        .args(args)
        .output()
        .expect("gatehouse runs")
}

/// Runs the command and returns its output, or the failure (with the signal, if one killed it).
fn ok(db: &ScramDatabase, args: &[&str]) -> Result<Output, String> {
    let out = gatehouse(db, args);
    if out.status.success() {
        return Ok(out);
    }
    use std::os::unix::process::ExitStatusExt;
    Err(format!(
        "`gatehouse {}` exited with {:?} (signal {:?}): {}",
        args.join(" "),
        out.status.code(),
        out.status.signal(),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// One group of commands, run `RUNS` times in order; returns every failure.
fn repeat(round: impl Fn(usize) -> Result<(), String>) -> Vec<String> {
    (0..RUNS).filter_map(|i| round(i).err()).collect()
}

#[test]
fn every_command_exits_zero_fifty_times_on_postgres_with_scram() {
    let Some(db) = ScramDatabase::create() else {
        return;
    };
    ok(&db, &["migrate"]).unwrap();
    ok(&db, &["user", "create", "--email", "ops@example.com"]).unwrap();

    // Four groups at once, as a deploy script's commands might overlap; each group's commands
    // depend on each other (a key is revoked after it was created).
    let failures: Vec<String> = std::thread::scope(|s| {
        let db = &db;
        let groups = [
            s.spawn(move || {
                repeat(|i| {
                    let email = format!("user{i}@example.com");
                    ok(db, &["user", "create", "--email", &email])?;
                    ok(db, &["user", "list", "--json"])?;
                    ok(db, &["user", "disable", "--email", &email])?;
                    Ok(())
                })
            }),
            s.spawn(move || {
                repeat(|i| {
                    let name = format!("key{i}");
                    let created = ok(
                        db,
                        &[
                            "key",
                            "create",
                            "--user",
                            "ops@example.com",
                            "--name",
                            &name,
                            "--json",
                        ],
                    )?;
                    let id = json(&created)["id"].as_str().unwrap().to_owned();
                    ok(db, &["key", "list", "--user", "ops@example.com", "--json"])?;
                    ok(db, &["key", "revoke", &id])?;
                    Ok(())
                })
            }),
            s.spawn(move || {
                repeat(|i| {
                    let scope = format!("read:thing{i}");
                    ok(db, &["scope", "add", &scope, "--description", "Things"])?;
                    ok(db, &["scope", "list", "--json"])?;
                    ok(db, &["migrate"])?;
                    Ok(())
                })
            }),
            s.spawn(move || {
                repeat(|i| {
                    let name = format!("app{i}");
                    ok(
                        db,
                        &[
                            "client",
                            "create",
                            "--name",
                            &name,
                            "--redirect-uri",
                            "https://app.example/cb",
                        ],
                    )?;
                    ok(db, &["signing-key", "rotate", "--delay", "1m"])?;
                    ok(db, &["signing-key", "list", "--json"])?;
                    Ok(())
                })
            }),
        ];
        groups
            .into_iter()
            .flat_map(|g| g.join().expect("group thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} failed runs:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The work of every run is there.
    let users = json(&ok(&db, &["user", "list", "--json"]).unwrap()).to_string();
    let keys = json(&ok(&db, &["key", "list", "--user", "ops@example.com", "--json"]).unwrap());
    let keys = keys.to_string();
    for i in 0..RUNS {
        assert!(
            users.contains(&format!("\"user{i}@example.com\"")),
            "user{i}: {users}"
        );
        assert!(keys.contains(&format!("\"key{i}\"")), "key{i}: {keys}");
    }
}
