//! The command line's command groups, one file each. Every command acts as the operator: it
//! is bounded by the server's policy and the owner's role only, and writes the same audit
//! events as the API (`"via": "cli"`).

pub mod backup;
pub mod clients;
pub mod keys;
pub mod registration;
pub mod scopes;
pub mod signing_keys;
pub mod users;
pub mod workspaces;

use gatehouse::accounts::Email;
use gatehouse::accounts::model;

/// A failure with the exit code it deserves.
pub struct Failure(pub String, pub u8);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string(), 1)
    }
}

/// What the operator changes passes the policy as well (an administrator with every scope,
/// everywhere): the services that change state take its `Allowed`, as for any caller.
pub fn as_operator(
    action: gatehouse::policy::Action<'_>,
) -> Result<gatehouse::policy::Allowed, Failure> {
    gatehouse::policy::authorize(&gatehouse::policy::Caller::operator(), action)
        .map_err(|_| Failure("the policy refuses this change".into(), 2))
}

/// The user named by an email flag: exit 2 for an invalid email, 3 for nobody.
pub fn find_user(
    conn: &mut gatehouse::db::DbConn,
    flag: &str,
    raw_email: &str,
) -> Result<model::User, Failure> {
    let email = Email::parse(raw_email).map_err(|e| Failure(format!("{flag}: {e}"), 2))?;
    model::find_by_email(conn, &email)?
        .ok_or_else(|| Failure(format!("no user with email {email}"), 3))
}
