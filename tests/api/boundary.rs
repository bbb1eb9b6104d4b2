//! The workspace boundary, tried as an attacker would: a credential bound to a workspace reaches
//! that workspace's things only (not the user's account nor their personal apps), an app's
//! control follows its workspace's roles and ends with membership, an install administrator's
//! oversight needs its scope, a private app exchanges its own workspace's keys only, a key's
//! changed limits end the tokens exchanged under the old ones, and a roll is an issuance.
//! Every attack is followed by a look at the effect: the row did not change.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::TestApp;
use crate::helpers::jwt_claims;
use crate::workspaces::{call, expect, join};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const API_KEY: &str = "urn:gatehouse:params:oauth:token-type:api_key";

/// A signed-in browser of a new user (an administrator of the install with `admin`).
async fn user(app: &TestApp, email: &str, admin: bool) -> (reqwest::Client, String) {
    let id = app.create_user(email, "boundary password 1", admin).await;
    let (browser, response) = app.login_in_new_browser(email, "boundary password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    (browser, id)
}

/// A shared workspace `name` owned by `owner`'s browser; its id.
async fn workspace(app: &TestApp, owner: &reqwest::Client, name: &str) -> String {
    crate::workspaces::create_workspace(owner, app, json!({ "name": name }))
        .await
        .0
}

/// Register an app in `owner`'s browser (`body` adds to a confidential code-flow app); its id
/// and secret.
async fn app_of(
    app: &TestApp,
    owner: &reqwest::Client,
    bearer: Option<&str>,
    body: Value,
) -> (String, String) {
    let mut form = json!({
        "name": "Member's app",
        "redirect_uris": ["https://app.example.com/cb"],
        "client_type": "confidential",
        "scopes": ["read:users"],
    });
    for (k, v) in body.as_object().unwrap() {
        form[k] = v.clone();
    }
    let created = expect(
        owner,
        app,
        ("POST", "/v1/clients"),
        bearer,
        Some(form),
        StatusCode::CREATED,
    )
    .await;
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The app as its controller sees it (through `http`'s session).
async fn app_row(app: &TestApp, http: &reqwest::Client, id: &str) -> Value {
    expect(
        http,
        app,
        ("GET", &format!("/v1/clients/{id}")),
        None,
        None,
        StatusCode::OK,
    )
    .await
}

/// Every way of taking over an app, tried with `bearer` through `http`: each answers
/// `status`; the app's redirect URIs and secret are what they were (checked by the caller).
async fn try_takeover(
    app: &TestApp,
    http: &reqwest::Client,
    bearer: Option<&str>,
    id: &str,
    status: StatusCode,
) {
    let one = format!("/v1/clients/{id}");
    for (route, body) in [
        (("GET", one.as_str()), None),
        (
            ("PATCH", one.as_str()),
            Some(json!({ "redirect_uris": ["https://evil.example.net/cb"] })),
        ),
        (("PATCH", one.as_str()), Some(json!({ "disabled": true }))),
        (("POST", &format!("{one}/secret")), Some(json!({}))),
        (("DELETE", one.as_str()), None),
    ] {
        let response = call(http, app, route.0, route.1, bearer, body).await;
        assert_eq!(
            response.status(),
            status,
            "{} {}: {}",
            route.0,
            route.1,
            response.text().await.unwrap()
        );
    }
}

/// The app still answers its secret at the token endpoint (client_credentials): not rotated.
async fn secret_still_works(app: &TestApp, id: &str, secret: &str) -> StatusCode {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .status()
}

both_backends!(
    a_key_issued_in_a_shared_workspace_reaches_nothing_of_the_members_own,
    |app| async move {
        app.login_admin().await;
        let (wanda, _) = user(app, "wanda@example.com", false).await;
        let (max, max_id) = user(app, "max@example.com", false).await;
        let acme = workspace(app, &wanda, "Acme").await;
        join(app, &wanda, &max, &acme, "max@example.com", "member").await;
        // Max's own app, registered from his browser: his personal workspace controls it.
        let (personal_app, secret) = app_of(
            app,
            &max,
            None,
            json!({ "grant_types": ["authorization_code", "client_credentials"] }),
        )
        .await;
        // Wanda issues Max a key in Acme: she saw it; she uses it outside Acme.
        let issued = expect(
            &wanda,
            app,
            (
                "POST",
                &format!("/v1/workspaces/{acme}/members/{max_id}/api-keys"),
            ),
            None,
            Some(json!({ "name": "acme deploys" })),
            StatusCode::CREATED,
        )
        .await;
        let key = issued["key"].as_str().unwrap().to_owned();
        let anon = reqwest::Client::new();
        // His apps do not exist for it: not listed, not readable, not changed.
        let listed = expect(
            &anon,
            app,
            ("GET", "/v1/clients"),
            Some(&key),
            None,
            StatusCode::OK,
        )
        .await;
        assert!(
            !listed.to_string().contains(&personal_app),
            "the personal app is not listed: {listed}"
        );
        try_takeover(app, &anon, Some(&key), &personal_app, StatusCode::NOT_FOUND).await;
        let row = app_row(app, &max, &personal_app).await;
        assert_eq!(
            row["redirect_uris"],
            json!(["https://app.example.com/cb"]),
            "unchanged: {row}"
        );
        assert_eq!(row["disabled"], false);
        assert_eq!(
            secret_still_works(app, &personal_app, &secret).await,
            StatusCode::OK,
            "the secret was not rotated"
        );
        // Nor his profile.
        let before = expect(
            &max,
            app,
            ("GET", "/v1/users/me"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let patched = call(
            &anon,
            app,
            "PATCH",
            "/v1/users/me",
            Some(&key),
            Some(json!({ "display_name": "Owned by Wanda" })),
        )
        .await;
        assert_eq!(refusal(patched).await.0, StatusCode::FORBIDDEN);
        let after = expect(
            &max,
            app,
            ("GET", "/v1/users/me"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(before["display_name"], after["display_name"]);
        // A key of his personal workspace speaks for him (the rule is the workspace, not keys).
        let own = expect(
            &max,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "mine" })),
            StatusCode::CREATED,
        )
        .await;
        let own = own["key"].as_str().unwrap();
        expect(
            &anon,
            app,
            ("GET", &format!("/v1/clients/{personal_app}")),
            Some(own),
            None,
            StatusCode::OK,
        )
        .await;
        expect(
            &anon,
            app,
            ("PATCH", "/v1/users/me"),
            Some(own),
            Some(json!({ "display_name": "Max" })),
            StatusCode::OK,
        )
        .await;
    }
);

both_backends!(
    an_install_admins_credential_without_admin_users_issues_no_key_to_an_owner,
    |app| async move {
        app.login_admin().await;
        let (olga, olga_id) = user(app, "olga@example.com", false).await;
        let (ian, _) = user(app, "ian@example.com", true).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &ian, &acme, "ian@example.com", "admin").await;
        // Ian administers the install, but this key of his holds no admin:users.
        let narrow = expect(
            &ian,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({
                "name": "narrow",
                "scopes": ["read:api_keys", "write:api_keys", "read:workspaces", "write:workspaces"],
                "workspace_id": acme,
            })),
            StatusCode::CREATED,
        )
        .await;
        let narrow = narrow["key"].as_str().unwrap();
        let issue = format!("/v1/workspaces/{acme}/members/{olga_id}/api-keys");
        let refused = call(
            &reqwest::Client::new(),
            app,
            "POST",
            &issue,
            Some(narrow),
            Some(json!({ "name": "olga's, seen by ian", "scopes": ["read:workspaces"] })),
        )
        .await;
        // Refused for the rank (AUTH_004), not for breadth: the key asked is within his.
        assert_eq!(
            refusal(refused).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        // Nothing was issued to Olga.
        let keys = expect(
            &olga,
            app,
            ("GET", "/v1/api-keys"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(keys.as_array().map(Vec::len), Some(0), "{keys}");
        // His session holds admin:users: the install's oversight may.
        expect(
            &ian,
            app,
            ("POST", &issue),
            None,
            Some(json!({ "name": "issued by the install's admin" })),
            StatusCode::CREATED,
        )
        .await;
    }
);

both_backends!(
    leaving_a_workspace_ends_control_of_the_apps_registered_there,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, abe_id) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "admin").await;
        let (private, secret) = app_of(
            app,
            &abe,
            None,
            json!({ "workspace_id": acme, "grant_types": ["authorization_code", "client_credentials"] }),
        )
        .await;
        // The workspace's other admins and owners control it, not only its registrant.
        assert_eq!(app_row(app, &olga, &private).await["workspace_id"], acme);
        // Olga removes him.
        let removed = call(
            &olga,
            app,
            "DELETE",
            &format!("/v1/workspaces/{acme}/members/{abe_id}"),
            None,
            None,
        )
        .await;
        assert!(removed.status().is_success(), "{}", removed.status());
        // Removed, Abe may neither see, re-point, rotate, disable nor delete it.
        try_takeover(app, &abe, None, &private, StatusCode::NOT_FOUND).await;
        let row = app_row(app, &olga, &private).await;
        assert_eq!(row["redirect_uris"], json!(["https://app.example.com/cb"]));
        assert_eq!(
            secret_still_works(app, &private, &secret).await,
            StatusCode::OK
        );
        let listed = expect(
            &abe,
            app,
            ("GET", "/v1/clients"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert!(!listed.to_string().contains(&private), "{listed}");
        // The remaining owner disables it.
        let disabled = expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/clients/{private}")),
            None,
            Some(json!({ "disabled": true })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(disabled["disabled"], true);
    }
);

/// A key holder's key, exchanged by `client` (client_secret_basic).
async fn exchange_by(app: &TestApp, (id, secret): (&str, &str), key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", key),
            ("subject_token_type", API_KEY),
        ])
        .send()
        .await
        .unwrap()
}

both_backends!(
    a_private_app_exchanges_only_its_workspaces_keys,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (ursula, _) = user(app, "ursula@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        let (private, secret) = app_of(
            app,
            &olga,
            None,
            json!({ "workspace_id": acme, "grant_types": [EXCHANGE] }),
        )
        .await;
        let outsider = expect(
            &ursula,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "ursula's", "scopes": ["read:users"] })),
            StatusCode::CREATED,
        )
        .await;
        let refused =
            exchange_by(app, (&private, &secret), outsider["key"].as_str().unwrap()).await;
        assert_eq!(
            crate::oauth::oauth_error(refused).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        // Olga's own key in her personal workspace is not Acme's either; her Acme key is.
        let personal = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "personal", "scopes": ["read:users"] })),
            StatusCode::CREATED,
        )
        .await;
        let refused =
            exchange_by(app, (&private, &secret), personal["key"].as_str().unwrap()).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let in_acme = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "acme", "scopes": ["read:users"], "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let ok = exchange_by(app, (&private, &secret), in_acme["key"].as_str().unwrap()).await;
        assert_eq!(ok.status(), StatusCode::OK, "{}", ok.text().await.unwrap());
    }
);

/// A key holder's own exchange of `key`: the access token.
async fn own_exchange(app: &TestApp, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", key),
            ("subject_token_type", API_KEY),
        ])
        .send()
        .await
        .unwrap()
}

async fn token_of(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

both_backends!(
    changing_a_keys_limits_ends_the_tokens_exchanged_under_the_old_ones,
    |app| async move {
        app.login_admin().await;
        let (key_id, key) = app
            .create_key(json!({ "name": "exchanged", "scopes": ["read:users"] }))
            .await;
        let token = token_of(own_exchange(app, &key).await).await;
        let me = |credential: String| async move {
            app.get_with_key("/v1/users/me", &credential).await.status()
        };
        assert_eq!(me(token.clone()).await, StatusCode::OK);
        // Narrowed to another network: the token exchanged from here ends at once.
        let patch = |ips: Value| {
            app.client
                .patch(app.url(&format!("/v1/api-keys/{key_id}")))
                .json(&json!({ "allowed_ips": ips }))
                .send()
        };
        assert_eq!(
            patch(json!(["10.0.0.0/8"])).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            me(token.clone()).await,
            StatusCode::UNAUTHORIZED,
            "the old token ended"
        );
        assert_eq!(
            own_exchange(app, &key).await.status(),
            StatusCode::BAD_REQUEST,
            "no new one from outside the allowlist"
        );
        // Allowed here again: a new token works, carrying the new allowlist; the old stays dead.
        assert_eq!(
            patch(json!(["127.0.0.1/32", "::1/128"]))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let fresh = token_of(own_exchange(app, &key).await).await;
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        assert_eq!(me(token.clone()).await, StatusCode::UNAUTHORIZED);
        // A rename is no change of limits: the fresh token lives on.
        let renamed = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{key_id}")))
            .json(&json!({ "name": "renamed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), StatusCode::OK);
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        // Back to no allowlist at all, the limits of the first token: that old token stays
        // dead, the one of the allowlist ends, and what is exchanged now works.
        assert_eq!(patch(Value::Null).await.unwrap().status(), StatusCode::OK);
        assert_eq!(me(fresh).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(token.clone()).await, StatusCode::UNAUTHORIZED);
        let again = token_of(own_exchange(app, &key).await).await;
        assert_eq!(me(again).await, StatusCode::OK);
    }
);

both_backends!(
    a_member_does_not_roll_a_key_where_only_admins_issue_them,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (max, max_id) = user(app, "max@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &max, &acme, "max@example.com", "member").await;
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}")),
            None,
            Some(json!({ "key_issuance": "admins" })),
            StatusCode::OK,
        )
        .await;
        let issued = expect(
            &olga,
            app,
            (
                "POST",
                &format!("/v1/workspaces/{acme}/members/{max_id}/api-keys"),
            ),
            None,
            Some(json!({ "name": "issued to max" })),
            StatusCode::CREATED,
        )
        .await;
        let key_id = issued["id"].as_str().unwrap();
        // A roll mints a key: Max may not, through the API or with the key itself.
        let rolled = call(
            &max,
            app,
            "POST",
            &format!("/v1/api-keys/{key_id}/roll"),
            None,
            None,
        )
        .await;
        assert_eq!(
            refusal(rolled).await,
            (StatusCode::FORBIDDEN, "AUTH_010".into())
        );
        let keys = expect(
            &max,
            app,
            ("GET", "/v1/api-keys"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            keys.as_array().map(Vec::len),
            Some(1),
            "nothing minted: {keys}"
        );
        assert!(keys[0]["rolled_to"].is_null(), "{keys}");
        // Olga (an admin there) rolls her own keys as before.
        let hers = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "olga's", "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &olga,
            app,
            (
                "POST",
                &format!("/v1/api-keys/{}/roll", hers["id"].as_str().unwrap()),
            ),
            None,
            None,
            StatusCode::CREATED,
        )
        .await;
    }
);

/// The boundary migration on a database an older release filled: apps get the workspace that
/// controls them (a private app its workspace, a user's app their personal one, a
/// self-registered app none), and approvals, codes and grants that named no workspace get
/// their user's personal one.
fn the_migration_moves_existing_rows<C>(
    conn: &mut C,
    (before, rest): (
        diesel_migrations::EmbeddedMigrations,
        diesel_migrations::EmbeddedMigrations,
    ),
) where
    C: diesel::Connection + diesel_migrations::MigrationHarness<C::Backend>,
    diesel_migrations::EmbeddedMigrations: diesel::migration::MigrationSource<C::Backend>,
{
    const BOUNDARY: &str = "20261207000001";
    // Every migration before this one, as the previous release left the database.
    let pending = conn.pending_migrations(before).unwrap();
    for migration in &pending {
        if migration.name().version().to_string().as_str() >= BOUNDARY {
            break;
        }
        conn.run_migration(&**migration).unwrap();
    }
    conn.batch_execute(
        "INSERT INTO users (id, email, display_name, password_hash, role, password_change_required, created_at, updated_at)
             VALUES ('usr_old', 'old@example.com', 'Old', 'x', 'member', false, '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO workspaces (id, name, slug, personal_user_id, key_issuance, created_at, updated_at)
             VALUES ('ws_personal', 'Personal', 'personal-old', 'usr_old', 'members', '2026-01-01 00:00:00', '2026-01-01 00:00:00'),
                    ('ws_acme', 'Acme', 'acme', NULL, 'members', '2026-01-01 00:00:00', '2026-01-01 00:00:00');
         INSERT INTO clients (id, name, owner_user_id, client_type, redirect_uris, allowed_scopes, grant_types, first_party, created_at, updated_at, workspace_id)
             VALUES ('cli_personal', 'p', 'usr_old', 'public', 'https://a.example/cb', 'read:users', 'authorization_code', false, '2026-01-01 00:00:00', '2026-01-01 00:00:00', NULL),
                    ('cli_private', 'q', 'usr_old', 'public', 'https://a.example/cb', 'read:users', 'authorization_code', false, '2026-01-01 00:00:00', '2026-01-01 00:00:00', 'ws_acme'),
                    ('cli_selfreg', 'r', NULL, 'public', 'https://a.example/cb', 'read:users', 'authorization_code', false, '2026-01-01 00:00:00', '2026-01-01 00:00:00', NULL);
         INSERT INTO consents (id, user_id, client_id, scopes, created_at, updated_at, first_party, workspace_id)
             VALUES ('cns_old', 'usr_old', 'cli_personal', 'read:users', '2026-01-01 00:00:00', '2026-01-01 00:00:00', false, NULL);",
    )
    .unwrap();
    conn.run_pending_migrations(rest).unwrap();
}

fn rows_were_moved(url: &gatehouse::db::DatabaseUrl) {
    use diesel::{QueryDsl, RunQueryDsl};
    use gatehouse::db::schema::{clients, consents};
    let mut conn = gatehouse::db::connect_one(url).unwrap();
    let got: Vec<(String, Option<String>)> = clients::table
        .select((clients::id, clients::owner_workspace_id))
        .order(clients::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        got,
        vec![
            ("cli_personal".into(), Some("ws_personal".into())),
            ("cli_private".into(), Some("ws_acme".into())),
            ("cli_selfreg".into(), None),
        ]
    );
    let placed: Option<String> = consents::table
        .select(consents::workspace_id)
        .first(&mut conn)
        .unwrap();
    assert_eq!(placed.as_deref(), Some("ws_personal"));
}

#[test]
fn the_boundary_migration_moves_existing_rows_on_sqlite() {
    use diesel::Connection;
    let db = crate::helpers::TestDatabase::create(crate::helpers::Backend::Sqlite).unwrap();
    let gatehouse::db::DatabaseUrl::Sqlite { path } = &db.url else {
        unreachable!()
    };
    let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/sqlite");
    the_migration_moves_existing_rows(&mut conn, (MIGRATIONS, MIGRATIONS));
    rows_were_moved(&db.url);
}

#[test]
fn the_boundary_migration_moves_existing_rows_on_postgres() {
    use diesel::Connection;
    let Some(db) = crate::helpers::TestDatabase::create(crate::helpers::Backend::Postgres) else {
        return;
    };
    let mut conn = diesel::PgConnection::establish(&db.raw_url).unwrap();
    const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
        diesel_migrations::embed_migrations!("migrations/postgres");
    the_migration_moves_existing_rows(&mut conn, (MIGRATIONS, MIGRATIONS));
    drop(conn);
    rows_were_moved(&db.url);
}

both_backends!(
    a_demotion_ends_the_tokens_that_carried_the_old_role,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, abe_id) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "admin").await;
        let key = expect(
            &abe,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "abe's", "scopes": ["read:users"], "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let key = key["key"].as_str().unwrap().to_owned();
        let token = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&token)["workspace"]["role"], "admin");
        let me = |credential: String| async move {
            app.get_with_key("/v1/users/me", &credential).await.status()
        };
        assert_eq!(me(token.clone()).await, StatusCode::OK);
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{abe_id}")),
            None,
            Some(json!({ "role": "member" })),
            StatusCode::OK,
        )
        .await;
        // The token that said "admin" ends; the key stays, and what it mints now says "member".
        assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(key.clone()).await, StatusCode::OK);
        let fresh = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&fresh)["workspace"]["role"], "member");
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        // A promotion takes nothing away.
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{abe_id}")),
            None,
            Some(json!({ "role": "admin" })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(me(fresh).await, StatusCode::OK);
        // Promoted back: what is exchanged now (saying "admin" again) works.
        let promoted = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&promoted)["workspace"]["role"], "admin");
        assert_eq!(me(promoted).await, StatusCode::OK);
    }
);

both_backends!(
    an_invitation_expires_after_seven_days_on_the_servers_clock,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        for email in ["ivy@example.com", "late@example.com"] {
            app.create_user(email, "boundary password 1", false).await;
        }
        let acme = workspace(app, &olga, "Acme").await;
        let mut tokens = Vec::new();
        for email in ["ivy@example.com", "late@example.com"] {
            let invited = expect(
                &olga,
                app,
                ("POST", &format!("/v1/workspaces/{acme}/invitations")),
                None,
                Some(json!({ "email": email })),
                StatusCode::CREATED,
            )
            .await;
            tokens.push(invited["token"].as_str().unwrap().to_owned());
        }
        // Signed in after the clock moved (sessions age on it too), each accepts theirs.
        let accept = |email: &'static str, token: String| async move {
            let (browser, signed) = app.login_in_new_browser(email, "boundary password 1").await;
            assert_eq!(signed.status(), StatusCode::SEE_OTHER);
            call(
                &browser,
                app,
                "POST",
                "/v1/invitations/accept",
                None,
                Some(json!({ "token": token })),
            )
            .await
        };
        // Six days and 23 hours later: still valid.
        app.clock
            .advance(chrono::Duration::days(7) - chrono::Duration::hours(1));
        let on_time = accept("ivy@example.com", tokens[0].clone()).await;
        assert_eq!(on_time.status(), StatusCode::OK);
        // Past seven days: refused as expired, and nobody joined.
        app.clock.advance(chrono::Duration::hours(2));
        assert_eq!(
            refusal(accept("late@example.com", tokens[1].clone()).await).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
        let acme_id = acme.clone();
        let members: Vec<String> = app
            .state
            .db(move |c| {
                Ok::<_, gatehouse::db::DbError>(
                    gatehouse::workspaces::members(c, &acme_id)?
                        .into_iter()
                        .map(|m| m.email)
                        .collect(),
                )
            })
            .await
            .unwrap();
        assert!(
            members.contains(&"ivy@example.com".to_owned()),
            "{members:?}"
        );
        assert!(
            !members.contains(&"late@example.com".to_owned()),
            "{members:?}"
        );
    }
);

both_backends!(new_redirect_uris_ask_every_user_again, |app| async move {
    use crate::oauth::{REDIRECT, TestClient, authorize, authorize_url};
    app.login_admin().await;
    let created = expect(
        &app.client,
        app,
        ("POST", "/v1/clients"),
        None,
        Some(json!({
            "name": "Re-pointed",
            "redirect_uris": [REDIRECT],
            "client_type": "confidential",
            "scopes": ["read:users"],
        })),
        StatusCode::CREATED,
    )
    .await;
    let client = TestClient {
        id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    };
    let url = authorize_url(&client, "read:users", None, "");
    assert!(authorize(app, &url, "approve").await.contains_key("code"));
    // Remembered: the next authorization needs no page.
    assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    // A rename changes nothing of that…
    expect(
        &app.client,
        app,
        ("PATCH", &format!("/v1/clients/{}", client.id)),
        None,
        Some(json!({ "name": "Renamed" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    // …new redirect URIs do: the user is asked again, even for the old one.
    expect(
        &app.client,
        app,
        ("PATCH", &format!("/v1/clients/{}", client.id)),
        None,
        Some(json!({ "redirect_uris": [REDIRECT, "https://elsewhere.example.net/cb"] })),
        StatusCode::OK,
    )
    .await;
    let asked = app.get(&url).await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(asked.text().await.unwrap().contains("id=\"consent-title\""));
});

both_backends!(
    a_workspace_disabling_its_app_is_no_administrators_lock,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, _) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "member").await;
        let (private, _) = app_of(app, &olga, None, json!({ "workspace_id": acme })).await;
        // Olga (owner) disables and enables Acme's app: no lock.
        for disabled in [true, false] {
            let row = expect(
                &olga,
                app,
                ("PATCH", &format!("/v1/clients/{private}")),
                None,
                Some(json!({ "disabled": disabled })),
                StatusCode::OK,
            )
            .await;
            assert_eq!(row["disabled"], disabled);
            assert_eq!(row["admin_locked"], false);
        }
        // An administrator of the install disabling it (oversight, not membership) locks it:
        // the workspace's owner cannot enable it again.
        let row = expect(
            &app.client,
            app,
            ("PATCH", &format!("/v1/clients/{private}")),
            None,
            Some(json!({ "disabled": true })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(row["admin_locked"], true);
        let refused = call(
            &olga,
            app,
            "PATCH",
            &format!("/v1/clients/{private}"),
            None,
            Some(json!({ "disabled": false })),
        )
        .await;
        assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN);
        // A mere member of Acme controls nothing of it.
        try_takeover(app, &abe, None, &private, StatusCode::NOT_FOUND).await;
    }
);

both_backends!(
    what_the_install_granted_an_app_is_not_its_workspaces_to_change,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        // The install's administrator creates Acme and makes Olga an admin there.
        let acme = workspace(app, &app.client, "Acme").await;
        join(app, &app.client, &olga, &acme, "olga@example.com", "admin").await;
        // An app of Acme's that may introspect anything (an admin-only scope).
        let (inspector, secret) = app_of(
            app,
            &app.client,
            None,
            json!({
                "workspace_id": acme,
                "scopes": ["introspect"],
                "grant_types": ["client_credentials"],
            }),
        )
        .await;
        // Olga administers Acme: she sees the app, but taking its secret or re-pointing it
        // would hand her the install's grant.
        app_row(app, &olga, &inspector).await;
        for (route, body) in [
            (
                ("POST", format!("/v1/clients/{inspector}/secret")),
                json!({}),
            ),
            (
                ("PATCH", format!("/v1/clients/{inspector}")),
                json!({ "redirect_uris": ["https://olga.example.net/cb"] }),
            ),
            (
                ("PATCH", format!("/v1/clients/{inspector}")),
                json!({ "grant_types": ["authorization_code", "client_credentials"] }),
            ),
        ] {
            let refused = call(&olga, app, route.0, &route.1, None, Some(body)).await;
            assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN, "{route:?}");
        }
        assert_eq!(
            secret_still_works(app, &inspector, &secret).await,
            StatusCode::OK
        );
        // The administrator still may.
        expect(
            &app.client,
            app,
            ("POST", &format!("/v1/clients/{inspector}/secret")),
            None,
            Some(json!({})),
            StatusCode::OK,
        )
        .await;
    }
);

both_backends!(
    a_member_does_not_enable_what_the_workspaces_admin_disabled,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, _) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "member").await;
        // Abe registers an app with his Acme key: Acme controls it, Abe as its registrant.
        let key = expect(
            &abe,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "abe in acme", "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let key = key["key"].as_str().unwrap().to_owned();
        let anon = reqwest::Client::new();
        let (his, _) = app_of(app, &anon, Some(&key), json!({})).await;
        let set = |http: reqwest::Client, bearer: Option<String>, disabled: bool| {
            let path = format!("/v1/clients/{his}");
            async move {
                call(
                    &http,
                    app,
                    "PATCH",
                    &path,
                    bearer.as_deref(),
                    Some(json!({ "disabled": disabled })),
                )
                .await
            }
        };
        // His own disable he lifts himself.
        assert_eq!(
            set(anon.clone(), Some(key.clone()), true).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            set(anon.clone(), Some(key.clone()), false).await.status(),
            StatusCode::OK
        );
        // Olga's (Acme's owner) he does not; she does.
        assert_eq!(set(olga.clone(), None, true).await.status(), StatusCode::OK);
        let refused = set(anon.clone(), Some(key.clone()), false).await;
        assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN);
        let row = app_row(app, &olga, &his).await;
        assert_eq!(row["disabled"], true, "still disabled");
        assert_eq!(row["admin_locked"], false, "and no administrator's lock");
        assert_eq!(
            set(olga.clone(), None, false).await.status(),
            StatusCode::OK
        );
    }
);
