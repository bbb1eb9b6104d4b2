//! Accounts: users, their passwords, browser sessions, login and logout, the first admin,
//! and the pages and `/v1` routes about users.

pub mod api;
pub mod email;
pub mod model;
pub mod pages;
pub mod password;
pub mod sessions;
pub mod throttle;

use actix_web::cookie::{Cookie, SameSite, time};
use actix_web::web;
use chrono::{NaiveDateTime, Utc};

pub use email::Email;
pub use model::{NewAccount, Role, User};
pub use password::NewPassword;
use sessions::ClientInfo;

use crate::config::Settings;
use crate::db::{DbConn, DbError};
use crate::secrets::PlainSecret;
use crate::state::AppState;

pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

/// The session cookie's name: `__Host-` prefixed when cookies are `Secure`, so no subdomain
/// can set or shadow it.
pub fn session_cookie_name(settings: &Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-gatehouse_session"
    } else {
        "gatehouse_session"
    }
}

pub fn session_cookie(settings: &Settings, token: &PlainSecret) -> Cookie<'static> {
    Cookie::build(session_cookie_name(settings), token.expose().to_owned())
        .path("/")
        .http_only(true)
        .secure(settings.secure_cookies())
        .same_site(SameSite::Lax)
        .max_age(time::Duration::seconds(
            settings.session_absolute.num_seconds(),
        ))
        .finish()
}

pub fn expired_session_cookie(settings: &Settings) -> Cookie<'static> {
    let mut cookie = Cookie::build(session_cookie_name(settings), "")
        .path("/")
        .http_only(true)
        .secure(settings.secure_cookies())
        .same_site(SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}

/// What became of a login attempt.
pub enum LoginOutcome {
    SignedIn {
        token: PlainSecret,
    },
    /// Unknown email, wrong password or disabled account: the caller cannot tell which.
    Refused,
    Throttled {
        retry_after: u64,
    },
}

/// The throttle counts failures per account under this key (also for unknown emails).
fn account_key(email_raw: &str) -> String {
    email_raw.trim().to_lowercase().chars().take(254).collect()
}

/// Check credentials and start a session. Unknown emails and disabled accounts go through the
/// same argon2 work as a wrong password, so neither the answer nor its timing tells them apart.
pub async fn log_in(
    state: &AppState,
    email_raw: &str,
    password: String,
    client: ClientInfo,
) -> Result<LoginOutcome, DbError> {
    let key = account_key(email_raw);
    let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
    let limits = state.settings.login_limits;
    let email = Email::parse(email_raw).ok();
    let started = state.now();
    let (wait, user) = {
        let (key, ip) = (key.clone(), ip.clone());
        state
            .db(move |c| {
                let wait = throttle::retry_after(c, &key, &ip, started, &limits)?;
                let user = match (&wait, email) {
                    (None, Some(email)) => model::find_by_email(c, &email)?,
                    _ => None,
                };
                Ok((wait, user))
            })
            .await?
    };
    if let Some(retry_after) = wait {
        return Ok(LoginOutcome::Throttled { retry_after });
    }
    let stored = user
        .as_ref()
        .filter(|u| !u.is_disabled())
        .map(|u| u.password_hash.clone());
    let verified = web::block(move || password::verify_password(stored.as_deref(), &password))
        .await
        .map_err(|_| DbError::Cancelled)?;
    let pepper = state.digest_pepper.clone();
    let lifetime = state.settings.session_absolute;
    match user {
        Some(user) if verified => {
            let token = state
                .db(move |c| {
                    throttle::clear_account(c, &key)?;
                    sessions::create_session(c, &pepper, &user.id, &client, started, lifetime)
                })
                .await?
                .0;
            Ok(LoginOutcome::SignedIn { token })
        }
        _ => {
            state
                .db(move |c| throttle::record_failure(c, &key, &ip, started))
                .await?;
            Ok(LoginOutcome::Refused)
        }
    }
}

/// The admin created on the first start, to print once.
#[derive(Debug)]
pub struct BootstrapAdmin {
    pub email: Email,
    /// Only when generated; a password given in the environment is not echoed.
    pub generated_password: Option<NewPassword>,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("GATEHOUSE_ADMIN_EMAIL: {0}")]
    Email(#[from] email::EmailError),
    #[error("GATEHOUSE_ADMIN_PASSWORD: {0}")]
    Password(#[from] password::PasswordPolicyError),
    #[error(transparent)]
    Db(#[from] DbError),
}

pub const DEFAULT_ADMIN_EMAIL: &str = "admin@gatehouse.local";

/// On an empty database, create the first admin (from the settings, or with a generated
/// password that must be changed at first login). Runs under the migration lock.
pub fn bootstrap_admin(
    conn: &mut DbConn,
    settings: &Settings,
) -> Result<Option<BootstrapAdmin>, BootstrapError> {
    if model::count_users(conn)? > 0 {
        return Ok(None);
    }
    let email = Email::parse(
        settings
            .admin_email
            .as_deref()
            .unwrap_or(DEFAULT_ADMIN_EMAIL),
    )?;
    let (password, generated) = match &settings.admin_password {
        Some(given) => (NewPassword::parse(&given.0)?, false),
        None => (NewPassword::generate(), true),
    };
    let account = NewAccount {
        display_name: "Administrator".into(),
        email: email.clone(),
        password: password.clone(),
        role: Role::Admin,
        password_change_required: generated,
    };
    match model::create_user(conn, &account, now()) {
        Ok(_) => Ok(Some(BootstrapAdmin {
            email,
            generated_password: generated.then_some(password),
        })),
        Err(model::CreateUserError::DuplicateEmail(_)) => Ok(None),
        Err(model::CreateUserError::Db(e)) => Err(e.into()),
    }
}

/// Create a user for an administrator (API or page) and audit it, in one step. Hashes the
/// password: call from a blocking context.
pub fn create_audited(
    conn: &mut DbConn,
    account: &model::NewAccount,
    actor: &crate::audit::Actor,
    now: NaiveDateTime,
) -> Result<model::User, model::CreateUserError> {
    let user = model::create_user(conn, account, now)?;
    let mut event = actor.event(crate::audit::Action::UserCreated);
    event.subject_user_id = Some(user.id.clone());
    event.details = serde_json::json!({ "role": user.role, "email": user.email });
    crate::audit::record(conn, &event, now).map_err(model::CreateUserError::Db)?;
    Ok(user)
}

/// Disable or enable a user and audit it; `Ok(false)` when there is no such user. Their keys
/// and tokens stop at once on this instance once the caller forgets its caches.
pub fn set_disabled_audited(
    conn: &mut DbConn,
    user_id: &str,
    disable: bool,
    actor: &crate::audit::Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let changed = model::set_disabled(conn, user_id, disable, now)?;
    if changed {
        let mut event = actor.event(if disable {
            crate::audit::Action::UserDisabled
        } else {
            crate::audit::Action::UserEnabled
        });
        event.subject_user_id = Some(user_id.to_owned());
        crate::audit::record(conn, &event, now)?;
    }
    Ok(changed)
}
