//! The account pages: login, logout, sign-up, home, the account page and the admin's Users
//! page. Every form carries a CSRF token; every redirect target is checked.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::model::{self, CreateUserError, NewAccount, Role, UserView};
use super::password::{BUSY_RETRY_AFTER, GateError, NewPassword};
use super::sessions::{self, ClientInfo};
use super::throttle::{self, Attempt};
use super::{Email, LoginOutcome, account_event, account_key, log_in, session_cookie_name};
use crate::audit::{self, Action};
use crate::config::Settings;
use crate::db::DbError;
use crate::http::client_ip::client_ip as peer_ip;
use crate::pages::{
    self, Nav, ReturnPath, csrf_matches, error_page, login_csrf_token, render, see_other,
};
use crate::policy::Action as Policy;
use crate::principal::SignedIn;
use crate::secrets::PlainSecret;
use crate::state::AppState;

const LOGIN_CSRF_PREFIX: &str = "lcs_";

fn login_csrf_cookie_name(settings: &Settings) -> &'static str {
    if settings.secure_cookies() {
        "__Host-gatehouse_login_csrf"
    } else {
        "gatehouse_login_csrf"
    }
}

/// The pre-session CSRF cookie: reuse a well-formed one, else mint a new one.
fn login_csrf(req: &HttpRequest, settings: &Settings) -> (PlainSecret, bool) {
    req.cookie(login_csrf_cookie_name(settings))
        .and_then(|c| PlainSecret::parse(LOGIN_CSRF_PREFIX, c.value()).ok())
        .map_or_else(
            || (PlainSecret::generate(LOGIN_CSRF_PREFIX), true),
            |s| (s, false),
        )
}

fn login_csrf_cookie(settings: &Settings, value: &PlainSecret) -> Cookie<'static> {
    Cookie::build(login_csrf_cookie_name(settings), value.expose().to_owned())
        .path("/")
        .http_only(true)
        .secure(settings.secure_cookies())
        .same_site(SameSite::Strict)
        .finish()
}

fn login_csrf_valid(req: &HttpRequest, state: &AppState, presented: &str) -> bool {
    req.cookie(login_csrf_cookie_name(&state.settings))
        .and_then(|c| PlainSecret::parse(LOGIN_CSRF_PREFIX, c.value()).ok())
        .is_some_and(|c| csrf_matches(&login_csrf_token(&state.csrf_pepper, c.expose()), presented))
}

/// The request's client address, as the audit log records it.
pub(crate) fn request_ip(req: &HttpRequest) -> Option<String> {
    crate::http::client_ip::client_ip(req).map(|ip| ip.to_string())
}

/// `response`, clearing the session cookie.
/// The session cookie: `HttpOnly`, `SameSite=Lax`, `Secure` (and `__Host-`) when served over TLS.
pub fn session_cookie(
    settings: &crate::config::Settings,
    token: &crate::secrets::PlainSecret,
) -> actix_web::cookie::Cookie<'static> {
    actix_web::cookie::Cookie::build(
        super::session_cookie_name(settings),
        token.expose().to_owned(),
    )
    .path("/")
    .http_only(true)
    .secure(settings.secure_cookies())
    .same_site(actix_web::cookie::SameSite::Lax)
    .max_age(actix_web::cookie::time::Duration::seconds(
        settings.session_absolute.num_seconds(),
    ))
    .finish()
}

pub fn expired_session_cookie(
    settings: &crate::config::Settings,
) -> actix_web::cookie::Cookie<'static> {
    let mut cookie = actix_web::cookie::Cookie::build(super::session_cookie_name(settings), "")
        .path("/")
        .http_only(true)
        .secure(settings.secure_cookies())
        .same_site(actix_web::cookie::SameSite::Lax)
        .finish();
    cookie.make_removal();
    cookie
}

pub(crate) fn without_session_cookie(
    response: HttpResponse,
    settings: &crate::config::Settings,
) -> HttpResponse {
    with_cookie(response, &expired_session_cookie(settings))
}

fn client_info(req: &HttpRequest) -> ClientInfo {
    ClientInfo {
        ip: crate::http::client_ip::client_ip(req).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn with_retry_after(mut response: HttpResponse, seconds: u64) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.into());
    response
}

/// Reserve an attempt that checks or hashes a password against the sign-in throttle.
async fn reserve(state: &AppState, key: String, client: &ClientInfo) -> Result<Attempt, DbError> {
    let (limits, at) = (state.settings.login_limits, state.now());
    // Counted per IPv4 address or IPv6 /64.
    let ip = client.ip.as_deref().map_or_else(
        || "unknown".into(),
        crate::http::address::limited_address_text,
    );
    state
        .db(move |c| throttle::reserve(c, &key, &ip, at, &limits))
        .await
}

/// Give a reservation back when the attempt it stood for was not made.
async fn release(state: &AppState, reservation: String) {
    if let Err(e) = state.db(move |c| throttle::release(c, &reservation)).await {
        log::warn!("could not release a sign-in reservation: {e}");
    }
}

fn with_cookie(mut response: HttpResponse, cookie: &Cookie<'_>) -> HttpResponse {
    if let Err(e) = response.add_cookie(cookie) {
        log::error!("cannot set cookie: {e}");
    }
    response
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    nav: Option<Nav>,
    csrf_token: String,
    next: &'a str,
    email: &'a str,
    error: Option<&'a str>,
    signup_enabled: bool,
}

/// The login page with a (possibly fresh) CSRF cookie.
fn login_form(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> HttpResponse {
    let signup_enabled = state.settings.signup_enabled;
    pre_session_form(req, state, status, |csrf_token| LoginPage {
        nav: None,
        csrf_token,
        next,
        email,
        error,
        signup_enabled,
    })
}

/// A form shown before sign-in (login, sign-up): its CSRF token is bound to the pre-session
/// cookie, which is set here when the browser has none yet.
fn pre_session_form<T: Template>(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    page: impl FnOnce(String) -> T,
) -> HttpResponse {
    let (cookie_value, fresh) = login_csrf(req, &state.settings);
    let response = render(
        status,
        &page(login_csrf_token(&state.csrf_pepper, cookie_value.expose())),
    );
    if fresh {
        with_cookie(response, &login_csrf_cookie(&state.settings, &cookie_value))
    } else {
        response
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// OpenID Connect `login_hint`: the email the form starts with.
    login_hint: Option<String>,
}

fn safe_next(next: Option<&str>) -> String {
    next.and_then(ReturnPath::parse)
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
}

pub async fn login_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> HttpResponse {
    let next = safe_next(query.next.as_deref());
    let hint: String = query
        .login_hint
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(254)
        .collect();
    login_form(&req, &state, StatusCode::OK, &next, &hint, None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// A successful sign-in: whatever session the browser had ends (no fixation; the new one has a
/// new secret), the session cookie is set and the sign-in form's CSRF cookie removed.
async fn signed_in_now(
    req: &HttpRequest,
    state: &AppState,
    next: &str,
    token: &PlainSecret,
) -> HttpResponse {
    if let Some(old) = req.cookie(session_cookie_name(&state.settings)) {
        let (pepper, value, idle) = (
            state.digest_pepper.clone(),
            old.value().to_owned(),
            state.settings.session_idle,
        );
        let clock = state.clock.clone();
        let ended = state
            .db(move |c| {
                match sessions::find_live_session(c, &pepper, &value, clock.now(), idle)? {
                    Some((s, _)) => sessions::delete_session(c, &s.id),
                    None => Ok(()),
                }
            })
            .await;
        if let Err(e) = ended {
            log::warn!("could not end the previous session at login: {e}");
        }
    }
    let mut response = see_other(next);
    let _ = response.add_cookie(&session_cookie(&state.settings, token));
    let mut csrf = login_csrf_cookie(&state.settings, &PlainSecret::generate(LOGIN_CSRF_PREFIX));
    csrf.make_removal();
    let _ = response.add_cookie(&csrf);
    response
}

pub async fn login_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let LoginForm {
        csrf_token,
        email,
        password,
        next,
    } = form.into_inner();
    let next = safe_next(Some(&next));
    if !login_csrf_valid(&req, &state, &csrf_token) {
        let message = "This sign-in form has expired. Please try again.";
        return login_form(
            &req,
            &state,
            StatusCode::FORBIDDEN,
            &next,
            &email,
            Some(message),
        );
    }
    let email_shown: String = email.chars().take(254).collect();
    match log_in(&state, &email, password, client_info(&req)).await {
        Ok(LoginOutcome::SignedIn { token }) => signed_in_now(&req, &state, &next, &token).await,
        Ok(LoginOutcome::Refused) => login_form(
            &req,
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            &email_shown,
            Some("Incorrect email or password."),
        ),
        Ok(LoginOutcome::Throttled { retry_after }) => {
            let message =
                format!("Too many failed sign-in attempts. Try again in {retry_after} seconds.");
            let response = login_form(
                &req,
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &next,
                &email_shown,
                Some(&message),
            );
            with_retry_after(response, retry_after)
        }
        Ok(LoginOutcome::Busy { retry_after }) => {
            let response = login_form(
                &req,
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                &next,
                &email_shown,
                Some("Gatehouse is busy. Please try again in a moment."),
            );
            with_retry_after(response, retry_after)
        }
        Err(e) => {
            log::error!("login failed: {e}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in unavailable",
                "Gatehouse cannot reach its database. Try again in a moment.",
            )
        }
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return crate::pages::form_expired();
    }
    let id = signed_in.session.id.clone();
    let event = account_event(
        Action::SignedOut,
        Some(&signed_in.user.id),
        client_info(&req).ip.as_deref(),
    );
    let at = state.now();
    let user_id = signed_in.user.id.clone();
    let ended = state
        .db(move |c| {
            sessions::delete_session(c, &id)?;
            audit::record(c, &event, at)?;
            crate::oidc::backchannel::session_ended(
                c,
                &user_id,
                crate::oidc::backchannel::Ended::Session(&id),
                "logout",
                at,
            )
        })
        .await;
    match ended {
        Ok(end) => crate::oidc::backchannel::after_session_end(&state, end).await,
        Err(e) => {
            log::error!("logout could not delete the session: {e}");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-out failed",
                "Try again in a moment.",
            );
        }
    }
    with_cookie(
        see_other("/login"),
        &expired_session_cookie(&state.settings),
    )
}

#[derive(Template, askama_web::WebTemplate)]
#[template(path = "home.html")]
pub struct HomePage {
    nav: Option<Nav>,
    user: UserView,
}

pub async fn home(signed_in: SignedIn) -> HttpResponse {
    render(
        StatusCode::OK,
        &HomePage {
            nav: Some(signed_in.nav("home")),
            user: signed_in.user.view(),
        },
    )
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    nav: Option<Nav>,
    csrf_token: String,
    email: &'a str,
    display_name: &'a str,
    error: Option<&'a str>,
}

fn signup_form(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    email: &str,
    display_name: &str,
    error: Option<&str>,
) -> HttpResponse {
    pre_session_form(req, state, status, |csrf_token| SignupPage {
        nav: None,
        csrf_token,
        email,
        display_name,
        error,
    })
}

pub async fn signup_page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if !state.settings.signup_enabled {
        return pages::not_found().await;
    }
    signup_form(&req, &state, StatusCode::OK, "", "", None)
}

#[derive(Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
}

/// The sign-up form's email, display name and password, checked.
fn signup_fields(form: &SignupForm) -> Result<(Email, String, NewPassword), String> {
    let email = Email::parse(&form.email).map_err(|e| e.to_string())?;
    let display_name = model::normalize_display_name(&form.display_name, &email)?;
    let password = NewPassword::parse(&form.password).map_err(|e| e.to_string())?;
    Ok((email, display_name, password))
}

pub async fn signup_submit(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignupForm>,
) -> HttpResponse {
    if !state.settings.signup_enabled {
        return pages::not_found().await;
    }
    let form = form.into_inner();
    let refuse = |status, message: &str| {
        signup_form(
            &req,
            &state,
            status,
            &form.email,
            &form.display_name,
            Some(message),
        )
    };
    if !login_csrf_valid(&req, &state, &form.csrf_token) {
        return refuse(
            StatusCode::FORBIDDEN,
            "This form has expired. Please try again.",
        );
    }
    let (email, display_name, password) = match signup_fields(&form) {
        Ok(fields) => fields,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    let client = client_info(&req);
    // A sign-up hashes a password and tells whether an email is taken: it counts against the
    // address's allowance like a failed sign-in until it succeeds.
    let reservation = match reserve(&state, format!("signup:{email}"), &client).await {
        Ok(Attempt::Reserved(id)) => id,
        Ok(Attempt::Throttled(seconds)) => {
            let message = format!("Too many attempts. Try again in {seconds} seconds.");
            return with_retry_after(refuse(StatusCode::TOO_MANY_REQUESTS, &message), seconds);
        }
        Err(e) => {
            log::error!("sign-up: {e}");
            return sign_up_unavailable();
        }
    };
    let hash = match state.password_gate.hash(password.clone()).await {
        Ok(hash) => hash,
        Err(_) => {
            release(&state, reservation).await;
            let message = "Gatehouse is busy. Please try again in a moment.";
            let response = refuse(StatusCode::SERVICE_UNAVAILABLE, message);
            return with_retry_after(response, BUSY_RETRY_AFTER);
        }
    };
    let account = NewAccount {
        email,
        display_name,
        password,
        role: Role::Member,
        password_change_required: false,
    };
    match create_account(&state, account, hash, reservation, client).await {
        Ok(Some(token)) => with_cookie(see_other("/"), &session_cookie(&state.settings, &token)),
        Ok(None) => refuse(
            StatusCode::CONFLICT,
            "An account with this email already exists. Sign in instead.",
        ),
        Err(e) => {
            log::error!("sign-up failed: {e}");
            sign_up_unavailable()
        }
    }
}

fn sign_up_unavailable() -> HttpResponse {
    error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Sign-up unavailable",
        "Try again in a moment.",
    )
}

/// Insert the account signed up for and start its session (`None`: the email is taken, and
/// the attempt stays counted). The sign-up is audited.
async fn create_account(
    state: &AppState,
    account: NewAccount,
    hash: String,
    reservation: String,
    client: ClientInfo,
) -> Result<Option<PlainSecret>, DbError> {
    let (pepper, lifetime) = (state.digest_pepper.clone(), state.settings.session_absolute);
    let at = state.now();
    state
        .db(move |c| {
            let user = match super::create_user_hashed(c, &account, &hash, at) {
                Ok(user) => user,
                Err(CreateUserError::DuplicateEmail(_)) => return Ok(None),
                Err(CreateUserError::Db(e)) => return Err(e),
            };
            throttle::release(c, &reservation)?;
            let event = account_event(Action::SignedUp, Some(&user.id), client.ip.as_deref());
            audit::record(c, &event, at)?;
            let (token, _) = sessions::create_session(c, &pepper, &user.id, &client, at, lifetime)?;
            Ok(Some(token))
        })
        .await
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    nav: Option<Nav>,
    email: &'a str,
    csrf_token: &'a str,
    must_change: bool,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct AccountQuery {
    changed: Option<String>,
}

fn account_page(
    signed_in: &SignedIn,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    render(
        status,
        &AccountPage {
            nav: Some(signed_in.nav("account")),
            email: &signed_in.user.email,
            csrf_token: &signed_in.csrf_token,
            must_change: signed_in.user.password_change_required,
            notice,
            error,
        },
    )
}

pub async fn account(signed_in: SignedIn, query: web::Query<AccountQuery>) -> HttpResponse {
    let notice = query
        .changed
        .is_some()
        .then_some("Password changed. Your other sessions have been signed out.");
    account_page(&signed_in, StatusCode::OK, notice, None)
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Store the verified new password (the other sessions end), audited.
async fn save_password(
    state: &AppState,
    signed_in: &SignedIn,
    client: &ClientInfo,
    new_hash: String,
    reservation: String,
) -> Result<crate::oidc::backchannel::SessionEnd, crate::db::DbError> {
    let (user_id, session_id) = (signed_in.user.id.clone(), signed_in.session.id.clone());
    let event = account_event(
        Action::PasswordChanged,
        Some(&user_id),
        client.ip.as_deref(),
    );
    let at = state.now();
    state
        .db(move |c| {
            super::store_new_password(
                c,
                &user_id,
                &session_id,
                &new_hash,
                &reservation,
                &event,
                at,
            )
        })
        .await
}

/// The new password, checked: a valid one, typed twice, not the current one.
fn new_password_of(form: &PasswordForm) -> Result<NewPassword, String> {
    let new_password = NewPassword::parse(&form.new_password).map_err(|e| e.to_string())?;
    if form.new_password != form.confirm_password {
        return Err("The two new passwords differ.".into());
    }
    if form.new_password == form.current_password {
        return Err("Choose a password different from the current one.".into());
    }
    Ok(new_password)
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return crate::pages::form_expired();
    }
    let form = form.into_inner();
    let refuse = |status, message: &str| account_page(&signed_in, status, None, Some(message));
    let new_password = match new_password_of(&form) {
        Ok(p) => p,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, &why),
    };
    // Guessing the current password through this form is throttled like the login form.
    let client = client_info(&req);
    let key = account_key(&signed_in.user.email);
    let reservation = match reserve(&state, key, &client).await {
        Ok(Attempt::Reserved(id)) => id,
        Ok(Attempt::Throttled(seconds)) => {
            let message = "Too many wrong passwords. Wait a minute and try again.";
            return with_retry_after(refuse(StatusCode::TOO_MANY_REQUESTS, message), seconds);
        }
        Err(e) => {
            log::error!("password change: {e}");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.");
        }
    };
    let stored = signed_in.user.password_hash.clone();
    let checked = state
        .password_gate
        .verify_then_hash(stored, form.current_password, new_password)
        .await;
    let new_hash = match checked {
        Ok(Some(hash)) => hash,
        // The reservation stays: it is the failure.
        Ok(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "The current password is not correct.",
            );
        }
        Err(e) => {
            if e == GateError::Busy {
                release(&state, reservation).await;
            }
            let response = refuse(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.");
            return with_retry_after(response, BUSY_RETRY_AFTER);
        }
    };
    let saved = save_password(&state, &signed_in, &client, new_hash, reservation).await;
    match saved {
        Ok(ended) => {
            crate::oidc::backchannel::after_session_end(&state, ended).await;
            see_other("/account?changed=1")
        }
        Err(e) => {
            log::error!("password change: {e}");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.")
        }
    }
}

#[derive(Template)]
#[template(path = "admin_users.html")]
struct AdminUsersPage<'a> {
    nav: Option<Nav>,
    users: Vec<UserView>,
    self_id: &'a str,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

/// The admin pages: the policy decides (an administrator's session holds every admin scope).
fn admins_only(
    signed_in: &SignedIn,
    action: Policy<'_>,
) -> Result<crate::policy::Allowed, HttpResponse> {
    match signed_in.principal().authorize(action) {
        Ok(allowed) if allowed.everyone() || !matches!(action, Policy::ListUsers) => Ok(allowed),
        _ => Err(error_page(
            StatusCode::FORBIDDEN,
            "Admins only",
            "This page is for administrators.",
        )),
    }
}

async fn users_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    notice: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    match state.db(model::list_users).await {
        Ok(users) => render(
            status,
            &AdminUsersPage {
                nav: Some(signed_in.nav("users")),
                users: users.iter().map(model::User::view).collect(),
                self_id: &signed_in.user.id,
                csrf_token: &signed_in.csrf_token,
                notice,
                error,
            },
        ),
        Err(e) => {
            log::error!("listing users: {e}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Users unavailable",
                "Try again in a moment.",
            )
        }
    }
}

pub async fn admin_users(state: web::Data<AppState>, signed_in: SignedIn) -> HttpResponse {
    if let Err(refused) = admins_only(&signed_in, Policy::ListUsers) {
        return refused;
    }
    users_page(&state, &signed_in, StatusCode::OK, None, None).await
}

#[derive(Deserialize)]
pub struct CreateUserForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

#[derive(Template)]
#[template(path = "admin_user_created.html")]
struct UserCreatedPage<'a> {
    nav: Option<Nav>,
    email: &'a str,
    password: Option<&'a str>,
}

pub async fn admin_create_user(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    form: web::Form<CreateUserForm>,
) -> HttpResponse {
    let allowed = match admins_only(&signed_in, Policy::CreateUser) {
        Ok(allowed) => allowed,
        Err(refused) => return refused,
    };
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return crate::pages::form_expired();
    }
    let form = form.into_inner();
    let (account, generated) = match account_from_form(&form) {
        Ok(a) => a,
        Err(message) => {
            return users_page(
                &state,
                &signed_in,
                StatusCode::BAD_REQUEST,
                None,
                Some(&message),
            )
            .await;
        }
    };
    let email = account.email.to_string();
    let Ok(hash) = state.password_gate.hash(account.password.clone()).await else {
        let response = error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "User not created",
            "Gatehouse is busy. Try again in a moment.",
        );
        return with_retry_after(response, BUSY_RETRY_AFTER);
    };
    let (at, ip) = (state.now(), peer_ip(&req).map(|ip| ip.to_string()));
    let actor = signed_in.principal().actor(ip);
    let created = state
        .db(move |c| {
            Ok(super::create_audited(
                c, allowed, &account, &hash, &actor, at,
            ))
        })
        .await;
    match created {
        Ok(Ok(_)) => render(
            StatusCode::CREATED,
            &UserCreatedPage {
                nav: Some(signed_in.nav("users")),
                email: &email,
                password: generated.as_ref().map(NewPassword::expose),
            },
        ),
        Ok(Err(CreateUserError::DuplicateEmail(_))) => {
            let message = format!("A user with email {email} already exists.");
            users_page(
                &state,
                &signed_in,
                StatusCode::CONFLICT,
                None,
                Some(&message),
            )
            .await
        }
        Ok(Err(CreateUserError::Db(e))) | Err(e) => {
            log::error!("creating a user: {e}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "User not created",
                "Try again in a moment.",
            )
        }
    }
}

fn account_from_form(form: &CreateUserForm) -> Result<(NewAccount, Option<NewPassword>), String> {
    let email = Email::parse(&form.email).map_err(|e| e.to_string())?;
    let display_name = model::normalize_display_name(&form.display_name, &email)?;
    let role = Role::parse(&form.role).ok_or("Choose the role admin or member.")?;
    let password = (!form.password.is_empty())
        .then(|| NewPassword::parse(&form.password).map_err(|e| e.to_string()))
        .transpose()?;
    Ok(NewAccount::issued_by_admin(
        email,
        display_name,
        role,
        password,
    ))
}

/// An administrator signs a user out everywhere: every browser session ends, the apps they
/// signed in to are told (back-channel logout), sign-ins without `offline_access` end.
async fn admin_end_sessions(
    req: &HttpRequest,
    state: &AppState,
    signed_in: &SignedIn,
    user_id: String,
) -> HttpResponse {
    let at = state.now();
    let mut event = signed_in
        .principal()
        .actor(peer_ip(req).map(|ip| ip.to_string()))
        .event(Action::SessionsEnded);
    event.subject_user_id = Some(user_id.clone());
    let ended = state
        .db(move |c| {
            crate::db::write_transaction(c, |c| {
                if model::find_by_id(c, &user_id)?.is_none() {
                    return Ok(None);
                }
                let end = crate::oidc::backchannel::session_ended(
                    c,
                    &user_id,
                    crate::oidc::backchannel::Ended::Everywhere,
                    "sessions_ended",
                    at,
                )?;
                let count = sessions::delete_other_sessions(c, &user_id, None)?;
                event.details = serde_json::json!({ "sessions": count });
                audit::record(c, &event, at)?;
                Ok(Some(end))
            })
        })
        .await;
    match ended {
        Ok(Some(end)) => {
            crate::oidc::backchannel::after_session_end(state, end).await;
            see_other("/admin/users")
        }
        Ok(None) => pages::not_found().await,
        Err(e) => {
            log::error!("ending a user's sessions: {e}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not changed",
                "Try again in a moment.",
            )
        }
    }
}

pub async fn admin_set_disabled(
    req: HttpRequest,
    state: web::Data<AppState>,
    signed_in: SignedIn,
    path: web::Path<(String, String)>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let (user_id, action) = path.into_inner();
    let allowed = match admins_only(&signed_in, Policy::ManageUser { id: &user_id }) {
        Ok(allowed) => allowed,
        Err(refused) => return refused,
    };
    if !csrf_matches(&signed_in.csrf_token, &form.csrf_token) {
        return crate::pages::form_expired();
    }
    let disable = match action.as_str() {
        "disable" => true,
        "enable" => false,
        "end-sessions" => return admin_end_sessions(&req, &state, &signed_in, user_id).await,
        _ => return pages::not_found().await,
    };
    if user_id == signed_in.user.id {
        return users_page(
            &state,
            &signed_in,
            StatusCode::BAD_REQUEST,
            None,
            Some("You cannot disable your own account."),
        )
        .await;
    }
    let at = state.now();
    let actor = signed_in
        .principal()
        .actor(peer_ip(&req).map(|ip| ip.to_string()));
    match state
        .db(move |c| super::set_disabled_audited(c, allowed, &user_id, disable, &actor, at))
        .await
    {
        Ok(true) => {
            // Their keys stop here at once; other instances see it within the cache's TTL.
            state.key_cache.invalidate_all();
            if disable {
                // The apps the user signed in to are told now, not at the next tick.
                let (state, background) = (state.clone(), state.background.clone());
                background.spawn(async move {
                    crate::oidc::backchannel::deliver_due(&state).await;
                });
            }
            see_other("/admin/users")
        }
        Ok(false) => pages::not_found().await,
        Err(e) => {
            log::error!("changing a user's status: {e}");
            error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not changed",
                "Try again in a moment.",
            )
        }
    }
}
