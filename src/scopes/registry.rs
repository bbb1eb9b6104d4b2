//! The `scopes` table: which scopes exist, what they mean to a person, and which only admins
//! may hold. The defaults are inserted at start-up (under the migration lock), never by a
//! migration, so their times come from Rust like every other row's.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::{Scope, ScopeSet};
use crate::db::schema::scopes;
use crate::db::{DbConn, DbError};

/// (name, description, admin only)
pub const DEFAULT_SCOPES: &[(&str, &str, bool)] = &[
    ("read:users", "Read user information", false),
    ("write:users", "Create and update users", true),
    ("read:products", "Read product data", false),
    ("write:products", "Create and update products", false),
    ("read:orders", "Read order information", false),
    ("write:orders", "Create and manage orders", false),
    ("read:api_keys", "List and inspect API keys", false),
    ("write:api_keys", "Create, roll and revoke API keys", false),
    ("read:clients", "List and inspect your OAuth apps", false),
    (
        "write:clients",
        "Register and change your OAuth apps and rotate their secrets",
        false,
    ),
    ("read:consents", "See which apps you have connected", false),
    (
        "write:consents",
        "Disconnect apps you have connected",
        false,
    ),
    (
        "introspect",
        "Ask /oauth/introspect about any token or API key",
        true,
    ),
];

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = scopes)]
pub struct RegisteredScope {
    pub name: String,
    pub description: String,
    pub admin_only: bool,
    #[serde(skip)]
    pub created_at: NaiveDateTime,
}

/// Insert the default scopes that are missing.
pub fn ensure_defaults(conn: &mut DbConn, now: NaiveDateTime) -> Result<(), DbError> {
    let existing: Vec<String> = scopes::table.select(scopes::name).load(conn)?;
    for (name, description, admin_only) in DEFAULT_SCOPES {
        if !existing.iter().any(|e| e == name) {
            diesel::insert_into(scopes::table)
                .values((
                    scopes::name.eq(name),
                    scopes::description.eq(description),
                    scopes::admin_only.eq(admin_only),
                    scopes::created_at.eq(now),
                ))
                .execute(conn)?;
        }
    }
    Ok(())
}

pub fn all(conn: &mut DbConn) -> Result<Vec<RegisteredScope>, DbError> {
    Ok(scopes::table
        .order(scopes::name.asc())
        .select(RegisteredScope::as_select())
        .load(conn)?)
}

/// Register a scope; `Ok(false)` when it already exists.
pub fn add(
    conn: &mut DbConn,
    scope: &Scope,
    description: &str,
    admin_only: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let inserted = diesel::insert_into(scopes::table)
        .values((
            scopes::name.eq(scope.as_str()),
            scopes::description.eq(description),
            scopes::admin_only.eq(admin_only),
            scopes::created_at.eq(now),
        ))
        .execute(conn)
        .map_err(DbError::from);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if e.is_unique_violation() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The scopes a user of this role may hold: everything for admins, all but admin-only
/// scopes for members.
pub fn grantable(all: &[RegisteredScope], is_admin: bool) -> ScopeSet {
    all.iter()
        .filter(|s| is_admin || !s.admin_only)
        .filter_map(|s| Scope::parse(&s.name).ok())
        .collect()
}
