//! The `users` table: the only place that queries it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::email::Email;
use super::password::NewPassword;
use crate::db::schema::users;
use crate::db::{DbConn, DbError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub password_change_required: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

impl User {
    pub fn role(&self) -> Role {
        Role::parse(&self.role).unwrap_or(Role::Member)
    }

    pub fn is_admin(&self) -> bool {
        self.role() == Role::Admin
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }

    pub fn email(&self) -> Email {
        Email::from_stored(self.email.clone())
    }

    /// The public view of a user (`/v1`, `--json`): never the password hash.
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            role: self.role(),
            created_at: utc(self.created_at),
            disabled: self.is_disabled(),
            disabled_at: self.disabled_at.map(utc),
            rendered: std::sync::OnceLock::new(),
        }
    }
}

impl UserView {
    /// `"id":…,"email":…,…` — the object's members as JSON, for embedding in a larger object.
    pub fn json_members(&self) -> &str {
        self.rendered.get_or_init(|| {
            let object = serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned());
            object[1..object.len() - 1].into()
        })
    }
}

pub use crate::clock::utc;

/// A user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Its JSON members (without the braces), rendered once: `/v1/users/me` answers many
    /// times from one cached view.
    #[serde(skip)]
    rendered: std::sync::OnceLock<Box<str>>,
    #[schema(example = "usr_8Hq2LmZ0pX4vR7sT")]
    pub id: String,
    #[schema(example = "mia@example.com")]
    pub email: String,
    pub display_name: String,
    pub role: Role,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
}

/// What it takes to create an account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub display_name: String,
    pub password: NewPassword,
    pub role: Role,
    /// The user must choose a new password at first login (generated or admin-set passwords).
    pub password_change_required: bool,
}

impl NewAccount {
    /// An account an admin creates for someone else: with the password the admin chose, or a
    /// generated one (returned, to show once). Either way the user must choose their own at
    /// first sign-in: a password someone else knows is not theirs.
    pub fn issued_by_admin(
        email: Email,
        display_name: String,
        role: Role,
        password: Option<NewPassword>,
    ) -> (NewAccount, Option<NewPassword>) {
        let (password, generated) = match password {
            Some(chosen) => (chosen, None),
            None => {
                let generated = NewPassword::generate();
                (generated.clone(), Some(generated))
            }
        };
        (
            NewAccount {
                email,
                display_name,
                password,
                role,
                password_change_required: true,
            },
            generated,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("a user with email {0} already exists")]
    DuplicateEmail(Email),
    #[error(transparent)]
    Db(DbError),
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct UserRow<'a> {
    id: &'a str,
    email: &'a str,
    display_name: &'a str,
    password_hash: &'a str,
    role: &'a str,
    password_change_required: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
}

/// Display names are trimmed, at most 100 characters, default: the email's local part.
pub fn normalize_display_name(raw: &str, email: &Email) -> Result<String, &'static str> {
    let name = raw.trim();
    if name.chars().any(char::is_control) {
        return Err("The display name contains control characters");
    }
    if name.chars().count() > 100 {
        return Err("The display name is longer than 100 characters");
    }
    Ok(if name.is_empty() {
        email
            .as_str()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        name.to_owned()
    })
}

/// Insert the user row `id` with `hash` (the argon2 hash of `account.password`); the account
/// service creates its personal workspace in the same transaction (`accounts::create_user`).
pub fn insert_user(
    conn: &mut DbConn,
    id: &str,
    account: &NewAccount,
    hash: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let row = UserRow {
        id,
        email: account.email.as_str(),
        display_name: &account.display_name,
        password_hash: hash,
        role: account.role.as_str(),
        password_change_required: account.password_change_required,
        created_at: now,
        updated_at: now,
    };
    diesel::insert_into(users::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

pub fn find_by_id(conn: &mut DbConn, id: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_email(conn: &mut DbConn, email: &Email) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::email.eq(email.as_str()))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_users(conn: &mut DbConn) -> Result<Vec<User>, DbError> {
    Ok(users::table
        .order((users::created_at.asc(), users::id.asc()))
        .select(User::as_select())
        .load(conn)?)
}

pub fn count_users(conn: &mut DbConn) -> Result<i64, DbError> {
    Ok(users::table.count().get_result(conn)?)
}

/// Mark a user disabled or enabled again (the account service ends their sessions). Returns
/// false if there is no such user.
pub fn set_disabled(
    conn: &mut DbConn,
    id: &str,
    disabled: bool,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(users::table.find(id))
        .set((
            users::disabled_at.eq(disabled.then_some(now)),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(changed == 1)
}

/// Store a new password hash and clear the change-required flag.
pub fn set_password_hash(
    conn: &mut DbConn,
    id: &str,
    hash: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::password_change_required.eq(false),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn set_display_name(
    conn: &mut DbConn,
    id: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(users::table.find(id))
        .set((users::display_name.eq(name), users::updated_at.eq(now)))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pre_rendered_members_are_the_view_serialised() {
        let view = UserView {
            rendered: std::sync::OnceLock::new(),
            id: "usr_1".into(),
            email: "a\"b@example.com".into(),
            display_name: "Ann \\ <Admin>".into(),
            role: Role::Admin,
            created_at: "2026-11-22T00:00:00Z".into(),
            disabled: false,
            disabled_at: None,
        };
        let embedded: serde_json::Value =
            serde_json::from_str(&format!("{{{}}}", view.json_members())).unwrap();
        assert_eq!(embedded, serde_json::to_value(&view).unwrap());
        assert_eq!(embedded["email"], "a\"b@example.com");
    }
}
