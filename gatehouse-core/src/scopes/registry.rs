//! The `scopes` table: which scopes exist, what they mean to a person, and which only admins
//! may hold. The defaults are inserted at start-up (under the migration lock), never by a
//! migration, so their times come from Rust like every other row's.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::{Builtin, Scope};
use crate::db::schema::scopes;
use crate::db::{DbConn, DbError};

/// Product scopes registered on a new server beside the built-in ones (name, description,
/// admin only): examples a resource server gives meaning to.
pub const PRODUCT_SCOPES: &[(&str, &str, bool)] = &[
    ("read:products", "Read product data", false),
    ("write:products", "Create and update products", false),
    ("read:orders", "Read order information", false),
    ("write:orders", "Create and manage orders", false),
];

/// Every default scope: the built-in ones, then the product examples.
pub fn default_scopes() -> impl Iterator<Item = (&'static str, &'static str, bool)> {
    Builtin::ALL
        .iter()
        .map(|b| (b.as_str(), b.description(), b.admin_only()))
        .chain(PRODUCT_SCOPES.iter().copied())
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = scopes)]
pub struct RegisteredScope {
    pub name: String,
    pub description: String,
    pub admin_only: bool,
    #[serde(skip)]
    pub created_at: NaiveDateTime,
}

impl RegisteredScope {
    /// Whether only administrators may hold it (a built-in admin scope always is).
    pub fn is_admin_only(&self) -> bool {
        self.admin_only || Builtin::parse(&self.name).is_some_and(Builtin::admin_only)
    }
}

/// Insert the default scopes that are missing.
pub fn ensure_defaults(conn: &mut DbConn, now: NaiveDateTime) -> Result<(), DbError> {
    let existing: Vec<String> = scopes::table.select(scopes::name).load(conn)?;
    for (name, description, admin_only) in default_scopes() {
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
    // A built-in scope that only admins may hold stays so whatever the table says.
    let admin_only: Vec<&str> = Builtin::ALL
        .iter()
        .filter(|b| b.admin_only())
        .map(|b| b.as_str())
        .collect();
    diesel::update(scopes::table.filter(scopes::name.eq_any(admin_only)))
        .filter(scopes::admin_only.eq(false))
        .set(scopes::admin_only.eq(true))
        .execute(conn)?;
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
