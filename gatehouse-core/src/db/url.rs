//! The database URL, parsed once: the scheme alone decides the backend, and `Debug`/`Display`
//! never show a password.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (relative to the working directory) or `sqlite:///ABSOLUTE/PATH`.
    Sqlite { path: PathBuf },
    /// `postgres://…` or `postgresql://…`, handed to libpq as it is.
    Postgres { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("unknown database URL scheme {0:?}: use sqlite://PATH or postgres://USER:PASS@HOST/DB")]
    UnknownScheme(String),
    #[error("the database URL has no scheme: use sqlite://PATH or postgres://USER:PASS@HOST/DB")]
    MissingScheme,
    #[error("sqlite:// needs a file path, e.g. sqlite://gatehouse.db")]
    EmptyPath,
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (scheme, rest) = s.split_once("://").ok_or(DatabaseUrlError::MissingScheme)?;
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" if rest.is_empty() => Err(DatabaseUrlError::EmptyPath),
            "sqlite" => Ok(DatabaseUrl::Sqlite {
                path: PathBuf::from(rest),
            }),
            "postgres" | "postgresql" => Ok(DatabaseUrl::Postgres { url: s.to_owned() }),
            other => Err(DatabaseUrlError::UnknownScheme(
                other.chars().take(32).collect(),
            )),
        }
    }
}

impl DatabaseUrl {
    /// Host and database name of a PostgreSQL URL, for error messages (never the password).
    pub fn describe(&self) -> String {
        match self {
            DatabaseUrl::Sqlite { path } => format!("SQLite file {}", path.display()),
            DatabaseUrl::Postgres { url } => {
                let (host, database) = postgres_host_and_database(url);
                format!("PostgreSQL database \"{database}\" on host {host}")
            }
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            DatabaseUrl::Sqlite { .. } => "sqlite",
            DatabaseUrl::Postgres { .. } => "postgres",
        }
    }
}

fn postgres_host_and_database(url: &str) -> (String, String) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query.split_once('/').unwrap_or((before_query, ""));
    let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let host = match (host_part.is_empty(), param("host")) {
        (_, Some(h)) => h,
        (true, None) => "localhost (default socket)".to_owned(),
        (false, None) => host_part.to_owned(),
    };
    let database = match (path.is_empty(), param("dbname")) {
        (_, Some(d)) => d,
        (true, None) => "(default)".to_owned(),
        (false, None) => path.to_owned(),
    };
    (host, database)
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_decides_the_backend() {
        assert_eq!(
            "sqlite://gatehouse.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite {
                path: "gatehouse.db".into()
            }
        );
        assert_eq!(
            "sqlite:///var/lib/gh.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite {
                path: "/var/lib/gh.db".into()
            }
        );
        assert!(matches!(
            "postgresql://h/db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Postgres { .. })
        ));
    }

    #[test]
    fn unknown_or_missing_scheme_is_an_error() {
        assert_eq!(
            "mysql://h/db".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::UnknownScheme("mysql".into()))
        );
        assert_eq!(
            "gatehouse.db".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::MissingScheme)
        );
        assert_eq!(
            "sqlite://".parse::<DatabaseUrl>(),
            Err(DatabaseUrlError::EmptyPath)
        );
    }

    #[test]
    fn description_names_host_and_database_but_not_password() {
        let url: DatabaseUrl = "postgres://gh:s3cr3t@db.internal:5433/auth?sslmode=require"
            .parse()
            .unwrap();
        let shown = url.to_string();
        assert!(shown.contains("db.internal:5433"), "{shown}");
        assert!(shown.contains("\"auth\""), "{shown}");
        assert!(!shown.contains("s3cr3t"));
        let socket: DatabaseUrl = "postgres:///gh?host=/var/run/postgresql".parse().unwrap();
        assert!(socket.to_string().contains("/var/run/postgresql"));
    }
}
