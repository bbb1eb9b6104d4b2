//! The boundary migration on a database an older release filled: every row gets the workspace
//! that controls it.

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
