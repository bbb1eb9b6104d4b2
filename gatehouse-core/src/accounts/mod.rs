//! Accounts: users, their passwords, browser sessions, login and logout, the first admin,
//! and the pages and `/v1` routes about users.

pub mod email;
pub mod model;
pub mod password;
pub mod sessions;
pub mod throttle;

use chrono::{NaiveDateTime, Utc};

pub use email::Email;
pub use model::{NewAccount, Role, User};
use password::GateError;
pub use password::NewPassword;
use sessions::ClientInfo;
use throttle::Attempt;

use crate::audit::{self, Action, NewEvent};
use crate::config::Settings;
use crate::db::{DbConn, DbError};
use crate::secrets::PlainSecret;
use crate::state::AppState;

/// Hash the password (slow: call from a blocking context) and create the account.
pub fn create_user(
    conn: &mut DbConn,
    account: &model::NewAccount,
    now: NaiveDateTime,
) -> Result<model::User, model::CreateUserError> {
    create_user_hashed(
        conn,
        account,
        &password::hash_password(&account.password),
        now,
    )
}

/// Create the account with `hash`, the argon2 hash of `account.password` made beforehand (so
/// the connection is not held while hashing): the user and their personal workspace exist
/// together or not at all.
pub fn create_user_hashed(
    conn: &mut DbConn,
    account: &model::NewAccount,
    hash: &str,
    now: NaiveDateTime,
) -> Result<model::User, model::CreateUserError> {
    use model::CreateUserError;
    let id = crate::ids::new_id(crate::ids::IdKind::User);
    let inserted = crate::db::write_transaction(conn, |c| {
        model::insert_user(c, &id, account, hash, now)?;
        crate::workspaces::create_personal(c, &id, now)?;
        Ok::<_, DbError>(())
    });
    match inserted {
        Ok(_) => model::find_by_id(conn, &id)
            .map_err(CreateUserError::Db)?
            .ok_or(CreateUserError::Db(DbError::Query(
                diesel::result::Error::NotFound,
            ))),
        Err(e) if e.is_unique_violation() => {
            Err(CreateUserError::DuplicateEmail(account.email.clone()))
        }
        Err(e) => Err(CreateUserError::Db(e)),
    }
}

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
    /// Too many password checks are running in this process: nothing was checked.
    Busy {
        retry_after: u64,
    },
}

/// The throttle counts failures per account under this key (also for unknown emails).
pub fn account_key(email_raw: &str) -> String {
    email_raw.trim().to_lowercase().chars().take(254).collect()
}

/// An audit event about a user's own sign-in, sign-out or password, from `ip`.
pub fn account_event(action: Action, user_id: Option<&str>, ip: Option<&str>) -> NewEvent {
    let mut event = NewEvent::new(action);
    event.actor_user_id = user_id.map(str::to_owned);
    event.subject_user_id = user_id.map(str::to_owned);
    event.ip = ip.map(str::to_owned);
    event
}

/// Check credentials and start a session. Unknown emails and disabled accounts go through the
/// same argon2 work as a wrong password, so neither the answer nor its timing tells them apart.
/// The attempt is reserved against the throttle before the password is checked.
pub async fn log_in(
    state: &AppState,
    email_raw: &str,
    password: String,
    client: ClientInfo,
) -> Result<LoginOutcome, DbError> {
    let outcome = check_login(state, email_raw, password, client).await;
    crate::metrics::login(match &outcome {
        Ok(LoginOutcome::SignedIn { .. }) => "success",
        Ok(LoginOutcome::Refused) => "failure",
        Ok(LoginOutcome::Throttled { .. }) => "throttled",
        Ok(LoginOutcome::Busy { .. }) => "busy",
        Err(_) => "error",
    });
    outcome
}

async fn check_login(
    state: &AppState,
    email_raw: &str,
    password: String,
    client: ClientInfo,
) -> Result<LoginOutcome, DbError> {
    let key = account_key(email_raw);
    let started = state.now();
    let (reservation, user) =
        match reserve_attempt(state, &key, email_raw, &client, started).await? {
            Ok(reserved) => reserved,
            Err(retry_after) => return Ok(LoginOutcome::Throttled { retry_after }),
        };
    let stored = user
        .as_ref()
        .filter(|u| !u.is_disabled())
        .map(|u| u.password_hash.clone());
    let verified = match state.password_gate.verify(stored, password).await {
        Ok(verified) => verified,
        Err(GateError::Busy) => {
            // Nothing was checked: the attempt does not count.
            state
                .db(move |c| throttle::release(c, &reservation))
                .await?;
            return Ok(LoginOutcome::Busy {
                retry_after: password::BUSY_RETRY_AFTER,
            });
        }
        Err(GateError::Cancelled) => return Err(DbError::Cancelled),
    };
    match user {
        Some(user) if verified => {
            let token = start_session(state, key, &user, client, started).await?;
            Ok(LoginOutcome::SignedIn { token })
        }
        user => {
            // The reservation stays: it is the failure.
            let event = failed_sign_in(user.as_ref(), client.ip.as_deref());
            state.db(move |c| audit::record(c, &event, started)).await?;
            Ok(LoginOutcome::Refused)
        }
    }
}

/// Reserve one attempt against the throttle and, when granted, look the account up (one
/// database call): `Err(seconds)` when the attempt must wait.
async fn reserve_attempt(
    state: &AppState,
    key: &str,
    email_raw: &str,
    client: &ClientInfo,
    at: NaiveDateTime,
) -> Result<Result<(String, Option<User>), u64>, DbError> {
    let (key, limits) = (key.to_owned(), state.settings.login_limits);
    // Counted per IPv4 address or IPv6 /64.
    let ip = client.ip.as_deref().map_or_else(
        || "unknown".into(),
        crate::net::address::limited_address_text,
    );
    let email = Email::parse(email_raw).ok();
    state
        .db(
            move |c| match throttle::reserve(c, &key, &ip, at, &limits)? {
                Attempt::Throttled(seconds) => Ok(Err(seconds)),
                Attempt::Reserved(id) => {
                    let user = match email {
                        Some(email) => model::find_by_email(c, &email)?,
                        None => None,
                    };
                    Ok(Ok((id, user)))
                }
            },
        )
        .await
}

/// A session for `user`, whose failures are forgotten; the sign-in is audited.
async fn start_session(
    state: &AppState,
    key: String,
    user: &User,
    client: ClientInfo,
    at: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let (pepper, lifetime) = (state.digest_pepper.clone(), state.settings.session_absolute);
    let user_id = user.id.clone();
    let event = account_event(
        Action::SignInSucceeded,
        Some(&user_id),
        client.ip.as_deref(),
    );
    state
        .db(move |c| {
            throttle::clear_account(c, &key)?;
            audit::record(c, &event, at)?;
            sessions::create_session(c, &pepper, &user_id, &client, at, lifetime)
        })
        .await
        .map(|(token, _)| token)
}

/// The audit event of a refused sign-in: the account when there is one, never what was typed.
fn failed_sign_in(user: Option<&User>, ip: Option<&str>) -> NewEvent {
    let reason = match user {
        None => "unknown_account",
        Some(u) if u.is_disabled() => "account_disabled",
        Some(_) => "wrong_password",
    };
    let mut event = account_event(Action::SignInFailed, None, ip);
    event.subject_user_id = user.map(|u| u.id.clone());
    event.details = serde_json::json!({ "reason": reason });
    event
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
    match create_user(conn, &account, now()) {
        Ok(_) => Ok(Some(BootstrapAdmin {
            email,
            generated_password: generated.then_some(password),
        })),
        Err(model::CreateUserError::DuplicateEmail(_)) => Ok(None),
        Err(model::CreateUserError::Db(e)) => Err(e.into()),
    }
}

/// Create a user for an administrator (API, page or CLI) and audit it, in one step. `hash` is
/// the argon2 hash of the account's password, made beforehand (through the password gate).
pub fn create_audited(
    conn: &mut DbConn,
    _allowed: crate::policy::Allowed,
    account: &model::NewAccount,
    hash: &str,
    actor: &crate::audit::Actor,
    now: NaiveDateTime,
) -> Result<model::User, model::CreateUserError> {
    let user = create_user_hashed(conn, account, hash, now)?;
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
    _allowed: crate::policy::Allowed,
    user_id: &str,
    disable: bool,
    actor: &crate::audit::Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    crate::db::write_transaction(conn, |conn| {
        let changed = model::set_disabled(conn, user_id, disable, now)?;
        if changed && disable {
            sessions::delete_of_user(conn, user_id)?;
            // Every session ended: the apps the user signed in to are told (the server
            // delivers the notices; from the CLI, at its next housekeeping tick).
            crate::oidc::backchannel::session_ended(
                conn,
                user_id,
                crate::oidc::backchannel::Ended::Everywhere,
                "user_disabled",
                now,
            )?;
        }
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
    })
}

/// Store a new password hash after the current password was verified: the user's other
/// sessions end (the apps signed in from them are told: the caller delivers the returned
/// notices), the reservation the attempt held is released, the change is audited — in one
/// transaction.
pub fn store_new_password(
    conn: &mut DbConn,
    user_id: &str,
    session_id: &str,
    new_hash: &str,
    reservation: &str,
    event: &NewEvent,
    at: NaiveDateTime,
) -> Result<crate::oidc::backchannel::SessionEnd, DbError> {
    use crate::oidc::backchannel::{Ended, SessionEnd, session_ended};
    crate::db::write_transaction(conn, |c| {
        model::set_password_hash(c, user_id, new_hash, at)?;
        let mut ended = SessionEnd::default();
        for other in sessions::other_session_ids(c, user_id, session_id)? {
            let end = session_ended(c, user_id, Ended::Session(&other), "password_changed", at)?;
            ended.revoked_grants.extend(end.revoked_grants);
            ended.notices += end.notices;
        }
        sessions::delete_other_sessions(c, user_id, Some(session_id))?;
        throttle::release(c, reservation)?;
        audit::record(c, event, at)?;
        Ok(ended)
    })
}
