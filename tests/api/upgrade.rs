//! Rolling upgrades: an old and a new instance run side by side on one database while the new
//! one's migrations are applied, so every migration only adds (tables, nullable or defaulted
//! columns, indexes) and never drops, renames or retypes what the old code reads or writes.

use std::collections::BTreeSet;
use std::path::Path;

fn migrations(backend: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut found: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(path.join("up.sql")).unwrap())
        })
        .collect();
    found.sort();
    found
}

/// Why `sql` would break an instance still running the previous release, if it would.
fn breaks_old_code(sql: &str) -> Option<String> {
    let code: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = statement.split_whitespace().collect();
        let has = |phrase: &str| {
            let phrase: Vec<&str> = phrase.split(' ').collect();
            words.windows(phrase.len()).any(|w| w == phrase.as_slice())
        };
        let refused = [
            "DROP TABLE",
            "DROP COLUMN",
            "RENAME TO",
            "RENAME COLUMN",
            "ALTER COLUMN",
            "TRUNCATE",
            "DELETE FROM",
        ]
        .into_iter()
        // Relaxing a constraint leaves every write of the previous release valid. (Rows it
        // cannot read — an app with no owner — exist only once a feature of the new release
        // is switched on: the README says to switch such features on after the rollout.)
        .filter(|p| !(*p == "ALTER COLUMN" && has("DROP NOT NULL")))
        .find(|p| has(p));
        if let Some(phrase) = refused {
            return Some(format!("{phrase}: {statement}"));
        }
        if has("ADD COLUMN") && has("NOT NULL") && !has("DEFAULT") {
            return Some(format!("a NOT NULL column without a default: {statement}"));
        }
    }
    None
}

#[test]
fn every_migration_only_adds_to_the_schema() {
    for backend in ["sqlite", "postgres"] {
        for (name, sql) in migrations(backend) {
            if let Some(why) = breaks_old_code(&sql) {
                panic!(
                    "{backend}/{name} would break the previous release during a rolling upgrade: {why}"
                );
            }
        }
    }
}

#[test]
fn both_backends_have_the_same_migrations() {
    let names = |b| {
        migrations(b)
            .into_iter()
            .map(|(n, _)| n)
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(names("sqlite"), names("postgres"));
}

#[test]
fn the_check_catches_what_breaks_old_code() {
    for sql in [
        "ALTER TABLE users DROP COLUMN role;",
        "ALTER TABLE api_keys RENAME TO keys;",
        "ALTER TABLE users ALTER COLUMN email TYPE TEXT;",
        "ALTER TABLE users ADD COLUMN tenant TEXT NOT NULL;",
        "DROP TABLE sessions;",
    ] {
        assert!(breaks_old_code(sql).is_some(), "{sql}");
    }
    assert_eq!(
        breaks_old_code(
            "-- drop nothing\nALTER TABLE users ADD COLUMN tenant TEXT NOT NULL DEFAULT '';"
        ),
        None
    );
}
