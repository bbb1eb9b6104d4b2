//! `gatehouse backup --to FILE`: a consistent copy of a SQLite database while the server keeps
//! serving (`VACUUM INTO` reads one snapshot; in WAL mode writers go on meanwhile), with the
//! generated secret file beside it. PostgreSQL is backed up with `pg_dump`.

use std::path::{Path, PathBuf};

use diesel::RunQueryDsl;
use gatehouse::config::Settings;
use gatehouse::db::{DatabaseUrl, DbConn};

use super::Failure;

pub fn backup(settings: &Settings, to: &Path) -> Result<(), Failure> {
    let DatabaseUrl::Sqlite { path } = &settings.database else {
        return Err(Failure(
            "PostgreSQL is backed up with pg_dump (e.g. `pg_dump --format=custom --file=gatehouse.dump \"$GATEHOUSE_DATABASE_URL\"`); keep GATEHOUSE_SECRET with the dump: without it no key, token or signing key in it can be used".into(),
            2,
        ));
    };
    if to.exists() {
        return Err(Failure(format!("{} already exists", to.display()), 3));
    }
    let to_text = to
        .to_str()
        .ok_or_else(|| Failure("--to: the path is not valid UTF-8".into(), 2))?;
    let mut conn = gatehouse::db::connect_one(&settings.database)?;
    let DbConn::Sqlite(inner) = &mut conn else {
        return Err(Failure("expected a SQLite connection".into(), 1));
    };
    // The copy holds what the database holds: created private (0600) and empty first, which
    // `VACUUM INTO` fills (it accepts an empty file).
    write_private(to, b"")?;
    let copied =
        diesel::sql_query(format!("VACUUM INTO '{}'", to_text.replace('\'', "''"))).execute(inner);
    if let Err(e) = copied {
        // No empty file left behind to be mistaken for a backup.
        let _ = std::fs::remove_file(to);
        return Err(e.into());
    }
    println!("backed up {} to {}", path.display(), to.display());
    keep_secret_with(path, to)
}

/// The generated secret (`<database>.secret`) goes beside the copy, private; a secret given in
/// GATEHOUSE_SECRET must be kept by the operator.
fn keep_secret_with(database: &Path, copy: &Path) -> Result<(), Failure> {
    let secret = gatehouse::config::secret_path_for(database);
    if !secret.exists() {
        println!(
            "keep GATEHOUSE_SECRET with this backup: without it the copy's keys and tokens are useless"
        );
        return Ok(());
    }
    let target: PathBuf = gatehouse::config::secret_path_for(copy);
    let contents = std::fs::read(&secret)?;
    write_private(&target, &contents)?;
    println!(
        "copied the server secret to {} (keep it as private as the database)",
        target.display()
    );
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}
