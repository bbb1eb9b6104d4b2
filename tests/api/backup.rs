//! `gatehouse backup`: a copy taken while the server serves and writes, on which a server
//! starts and every key, access token and refresh token still works; the secret goes with it.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, spawn_app};
use crate::oauth::{TestClient, obtain_tokens, register};

const SECRET: &str = "test-server-secret-of-at-least-32-bytes";

fn gatehouse(database_url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("RUST_LOG", "warn")
        .env("GATEHOUSE_DATABASE_URL", database_url);
    cmd
}

fn sqlite_path(app: &TestApp) -> std::path::PathBuf {
    match &app.state.settings.database {
        gatehouse::db::DatabaseUrl::Sqlite { path } => path.clone(),
        other => panic!("expected SQLite, got {other}"),
    }
}

/// Start a server on `path` with the test secret and the original's issuer (a restore keeps
/// its public URL); its base URL.
async fn serve_copy(path: &std::path::Path, issuer: &str) -> String {
    let url: gatehouse::db::DatabaseUrl = format!("sqlite://{}", path.display()).parse().unwrap();
    let mut settings = gatehouse::config::Settings::for_tests(url, SECRET.as_bytes());
    settings.issuer = issuer.to_owned();
    let app = gatehouse::Application::build(settings).expect("a server starts on the copy");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_web::rt::spawn(app.run_until_stopped());
    base
}

async fn refresh_at(base: &str, client: &TestClient, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("grant_type", "refresh_token"), ("refresh_token", token)])
        .send()
        .await
        .unwrap()
}

#[actix_web::test]
async fn a_copy_taken_while_serving_starts_and_every_credential_still_works() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    app.login_admin().await;
    let (_, key) = app.create_key(json!({"name": "kept"})).await;
    let client = register(&app, false, true).await;
    let tokens = obtain_tokens(&app, &client).await;
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap().to_owned(),
        tokens["refresh_token"].as_str().unwrap().to_owned(),
    );

    // Writes go on while the copy is taken.
    let writer = {
        let (base, browser) = (app.address.clone(), app.client.clone());
        actix_web::rt::spawn(async move {
            for i in 0..20 {
                let response = browser
                    .post(format!("{base}/v1/api-keys"))
                    .header("origin", &base)
                    .json(&json!({"name": format!("during {i}")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::CREATED);
            }
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let source = format!("sqlite://{}", sqlite_path(&app).display());
    let out = actix_web::web::block({
        let (source, copy) = (source.clone(), copy.clone());
        move || {
            gatehouse(&source)
                .env("GATEHOUSE_SECRET", SECRET)
                .args(["backup", "--to"])
                .arg(&copy)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("keep GATEHOUSE_SECRET"));
    writer.await.unwrap();
    // The copy holds password hashes, key digests and encrypted signing keys: private, as
    // the server creates its database (`db::create_private`, tested beside it).
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the backup is private");

    let base = serve_copy(&copy, &app.state.settings.issuer).await;
    let http = reqwest::Client::new();
    for credential in [&key, &access] {
        let me = http
            .get(format!("{base}/v1/users/me"))
            .bearer_auth(credential)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK, "{}", me.text().await.unwrap());
    }
    let refreshed = refresh_at(&base, &client, &refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let body: Value = refreshed.json().await.unwrap();
    assert!(body["access_token"].is_string());

    // A second backup to the same file is refused, not overwritten.
    let again = gatehouse(&source)
        .env("GATEHOUSE_SECRET", SECRET)
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(3));
    app.stop().await;
}

#[test]
fn the_generated_secret_goes_with_the_copy_and_postgres_is_sent_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("gh.db").display());
    assert!(
        gatehouse(&source)
            .arg("migrate")
            .status()
            .unwrap()
            .success()
    );
    let copy = dir.path().join("copy.db");
    let out = gatehouse(&source)
        .args(["backup", "--to"])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = std::fs::read(dir.path().join("gh.db.secret")).unwrap();
    let copied = dir.path().join("copy.db.secret");
    assert_eq!(std::fs::read(&copied).unwrap(), original);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copied).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the copied secret is private: {mode:o}");
    // The copy opens with its secret beside it: migrate finds nothing to do.
    let reopened = gatehouse(&format!("sqlite://{}", copy.display()))
        .arg("migrate")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&reopened.stdout).contains("0 migration(s) applied"));

    let pg = gatehouse("postgres://gh@127.0.0.1:1/gh")
        .env("GATEHOUSE_SECRET", SECRET)
        .args(["backup", "--to"])
        .arg(dir.path().join("pg.db"))
        .output()
        .unwrap();
    assert_eq!(pg.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
}
