//! The administration commands, on both databases: help for every command, and the user, key and
//! scope, client, workspace and registration-token commands.

use std::io::Write;
use std::process::Stdio;

use crate::helpers::{Backend, TestDatabase};

use super::{gatehouse, gatehouse_on, run, text};

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
