//! Seeds a Gatehouse database with the data of a large deployment, for the figures at scale in
//! BENCHMARKS.md: users, API keys (some written out in plain text for the cold-cache benchmark),
//! OAuth clients, refresh families with their rotated tokens, and audit events.
//!
//!     cargo run --release --example seed -- --users 100000 --keys-per-user 10 \
//!         --clients 10000 --families 1000000 --tokens-per-family 10 --audit-events 1000000 \
//!         --keys-out /tmp/keys.txt
//!
//! It reads GATEHOUSE_DATABASE_URL and GATEHOUSE_SECRET like the server (the digests of the
//! keys must be the server's), migrates first, and inserts in multi-row statements inside
//! transactions of 100,000 rows.

use std::io::Write;
use std::time::Instant;

use clap::Parser;
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl};
use gatehouse::api_keys::format::{self, Kind, Mode};
use gatehouse::config::{ConfigArgs, Settings};
use gatehouse::db::DbConn;
use gatehouse::ids::{IdKind, new_id};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long, default_value_t = 1000)]
    users: usize,
    #[arg(long, default_value_t = 10)]
    keys_per_user: usize,
    #[arg(long, default_value_t = 100)]
    clients: usize,
    #[arg(long, default_value_t = 1000)]
    families: usize,
    #[arg(long, default_value_t = 10)]
    tokens_per_family: usize,
    #[arg(long, default_value_t = 1000)]
    audit_events: usize,
    /// Write this many of the keys, in plain text, one per line, to `--keys-out`.
    #[arg(long)]
    keys_out: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 100_000)]
    keys_out_count: usize,
}

const ROWS_PER_STATEMENT: usize = 500;
const ROWS_PER_TRANSACTION: usize = 100_000;
const NOW: &str = "2026-12-01 12:00:00";
const IN_A_YEAR: &str = "2027-12-01 12:00:00";

fn main() {
    let args = Args::parse();
    let settings = Settings::from_args(&args.config).expect("settings");
    let (mut conn, _, _) = gatehouse::app::prepare_connection(&settings).expect("database");
    // Bulk loading only: a page cache that holds the whole file (random digests and ids land
    // all over every index; with SQLite's default 2 MB cache each insert past a few million rows
    // reads pages back from disk), and no waiting on fsync for what a crash would simply redo.
    match &mut conn {
        DbConn::Sqlite(inner) => inner
            .batch_execute("PRAGMA cache_size = -6000000; PRAGMA synchronous = OFF;")
            .unwrap(),
        DbConn::Pg(inner) => inner
            .batch_execute("SET synchronous_commit = off; SET maintenance_work_mem = '1GB';")
            .unwrap(),
    }
    let pepper = gatehouse::secrets::Pepper::for_digests(&settings.secret.0);
    let started = Instant::now();

    let hash = gatehouse::accounts::password::hash_password(
        &gatehouse::accounts::NewPassword::parse("seeded user password 1").unwrap(),
    );
    let users: Vec<String> = (0..args.users).map(|_| new_id(IdKind::User)).collect();
    insert(&mut conn, "users (id, email, display_name, password_hash, role, password_change_required, created_at, updated_at)",
        users.iter().enumerate().map(|(i, id)| {
            format!("('{id}', 'user{i}@seed.example', 'User {i}', '{hash}', 'member', FALSE, '{NOW}', '{NOW}')")
        }));
    report("users", args.users, started);

    let mut out = args
        .keys_out
        .as_ref()
        .map(|p| std::io::BufWriter::new(std::fs::File::create(p).expect("keys-out")));
    let mut written = 0;
    let keys = users
        .iter()
        .flat_map(|u| std::iter::repeat_n(u, args.keys_per_user));
    insert(&mut conn, "api_keys (id, user_id, issued_by, name, description, mode, kind, key_digest, display_prefix, last4, scopes, allowed_ips, created_at, updated_at, expires_at)",
        keys.enumerate().map(|(i, user)| {
            let secret = format::generate(Kind::Secret, Mode::Live);
            let (prefix, last4) = format::display_parts(&secret);
            if let Some(out) = out.as_mut().filter(|_| written < args.keys_out_count) {
                writeln!(out, "{}", secret.expose()).unwrap();
                written += 1;
            }
            format!("('{}', '{user}', '{user}', 'key {i}', '', 'live', 'secret', '{}', '{prefix}', '{last4}', '', '', '{NOW}', '{NOW}', '{IN_A_YEAR}')",
                new_id(IdKind::ApiKey), pepper.digest_secret(&secret))
        }));
    drop(out);
    report("api_keys", args.users * args.keys_per_user, started);

    let clients: Vec<String> = (0..args.clients).map(|_| new_id(IdKind::Client)).collect();
    insert(&mut conn, "clients (id, name, owner_user_id, client_type, secret_digest, redirect_uris, allowed_scopes, grant_types, first_party, created_at, updated_at, admin_locked, resources)",
        clients.iter().enumerate().map(|(i, id)| {
            let owner = &users[i % users.len()];
            let digest = gatehouse::secrets::random_base62(40);
            format!("('{id}', 'App {i}', '{owner}', 'confidential', '{digest}', 'https://app{i}.seed.example/cb', 'read:users', 'authorization_code refresh_token', FALSE, '{NOW}', '{NOW}', FALSE, '')")
        }));
    report("clients", args.clients, started);

    let families: Vec<String> = (0..args.families)
        .map(|_| new_id(IdKind::RefreshFamily))
        .collect();
    insert(&mut conn, "refresh_families (id, client_id, user_id, scopes, auth_time, created_at, last_used_at, expires_at)",
        families.iter().enumerate().map(|(i, id)| {
            let (client, user) = (&clients[i % clients.len()], &users[i % users.len()]);
            format!("('{id}', '{client}', '{user}', 'read:users', '{NOW}', '{NOW}', '{NOW}', '{IN_A_YEAR}')")
        }));
    report("refresh_families", args.families, started);

    let tokens = families
        .iter()
        .flat_map(|f| (0..args.tokens_per_family).map(move |n| (f, n)));
    let last = args.tokens_per_family - 1;
    insert(
        &mut conn,
        "refresh_tokens (id, token_digest, family_id, scopes, created_at, rotated_at, grace_used)",
        tokens.map(|(family, n)| {
            let rotated = if n == last {
                "NULL".to_owned()
            } else {
                format!("'{NOW}'")
            };
            format!(
                "('{}', '{}', '{family}', 'read:users', '{NOW}', {rotated}, FALSE)",
                new_id(IdKind::RefreshToken),
                gatehouse::secrets::random_base62(43)
            )
        }),
    );
    report(
        "refresh_tokens",
        args.families * args.tokens_per_family,
        started,
    );

    insert(&mut conn, "audit_events (id, occurred_at, action, actor_user_id, subject_user_id, ip, details)",
        (0..args.audit_events).map(|i| {
            let user = &users[i % users.len()];
            let minute = i % 1440;
            format!("('{}', '2026-11-30 {:02}:{:02}:00', 'api_key.created', '{user}', '{user}', '10.0.0.1', '{{}}')",
                new_id(IdKind::AuditEvent), minute / 60, minute % 60)
        }));
    report("audit_events", args.audit_events, started);
    if let DbConn::Pg(inner) = &mut conn {
        diesel::sql_query("ANALYZE").execute(inner).unwrap();
    }
}

/// Multi-row INSERTs of `rows` (each a parenthesised tuple), in transactions.
fn insert(conn: &mut DbConn, into: &str, rows: impl Iterator<Item = String>) {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for _ in 0..ROWS_PER_TRANSACTION / ROWS_PER_STATEMENT {
                let chunk: Vec<String> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
                if chunk.is_empty() {
                    break;
                }
                diesel::sql_query(format!("INSERT INTO {into} VALUES {}", chunk.join(",")))
                    .execute(conn)?;
            }
            Ok(())
        })
        .expect("insert");
    }
}

fn report(what: &str, n: usize, started: Instant) {
    eprintln!(
        "seeded {n} {what} ({:.0} s so far)",
        started.elapsed().as_secs_f64()
    );
}
