//! Who is calling. `Principal` resolves the caller of a `/v1` route (today from the browser
//! session; API keys and JWTs plug in as further `Credential`s); `SignedIn` does the same for
//! pages and sends anyone not signed in to the login page.

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{Method, StatusCode, header};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};

use crate::accounts::model::User;
use crate::accounts::sessions::{Session, find_live_session};
use crate::accounts::{now, session_cookie_name};
use crate::http::{ApiError, ErrorCode};
use crate::pages::{Nav, session_csrf_token};
use crate::state::AppState;

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session { session_id: String },
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub credential: Credential,
}

fn app_state(req: &HttpRequest) -> Option<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>().cloned()
}

/// The live session named by the request's cookie, if any.
async fn session_of(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<(Session, User)>, ApiError> {
    let Some(cookie) = req.cookie(session_cookie_name(&state.settings)) else {
        return Ok(None);
    };
    let value = cookie.value().to_owned();
    let pepper = state.digest_pepper.clone();
    let idle = state.settings.session_idle;
    Ok(state
        .db(move |c| find_live_session(c, &pepper, &value, now(), idle))
        .await?)
}

/// A browser session may change state through `/v1` only from our own pages: a request with
/// a foreign `Origin` is refused even though SameSite=Lax already keeps the cookie off most
/// cross-site requests.
fn same_origin_or_safe(req: &HttpRequest, issuer: &str) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    match req
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    {
        None => true,
        Some(origin) => {
            issuer.starts_with(origin)
                && issuer[origin.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '/')
        }
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req).ok_or_else(|| ApiError::internal("AppState missing"))?;
            let Some((session, user)) = session_of(&state, &req).await? else {
                return Err(ApiError::of(ErrorCode::NotAuthenticated));
            };
            if !same_origin_or_safe(&req, &state.settings.issuer) {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "A browser session cannot be used from another origin",
                ));
            }
            Ok(Principal {
                user,
                credential: Credential::Session {
                    session_id: session.id,
                },
            })
        })
    }
}

/// A signed-in user on a page, with the session's CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: Session,
    pub csrf_token: String,
}

impl SignedIn {
    pub fn nav(&self, current: &'static str) -> Nav {
        Nav {
            display_name: self.user.display_name.clone(),
            is_admin: self.user.is_admin(),
            csrf_token: self.csrf_token.clone(),
            current,
        }
    }
}

/// Why a page could not be shown to the caller as they are.
#[derive(Debug)]
pub enum PageAccess {
    /// Not signed in: go to the login page, then come back here.
    Login {
        next: Option<String>,
    },
    /// Must choose a new password first.
    ChangePassword,
    Failed(ApiError),
}

impl std::fmt::Display for PageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sign-in required")
    }
}

impl ResponseError for PageAccess {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }

    fn error_response(&self) -> HttpResponse {
        let location = match self {
            PageAccess::Login { next: Some(next) } => format!("/login?next={}", urlencode(next)),
            PageAccess::Login { next: None } => "/login".to_owned(),
            PageAccess::ChangePassword => "/account".to_owned(),
            PageAccess::Failed(e) => {
                return crate::pages::error_page(
                    e.code.status(),
                    "Something went wrong",
                    "Gatehouse could not complete this request. Try again in a moment.",
                );
            }
        };
        crate::pages::see_other(&location)
    }
}

/// Percent-encode everything but unreserved characters and `/`.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FromRequest for SignedIn {
    type Error = PageAccess;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = app_state(&req)
                .ok_or_else(|| PageAccess::Failed(ApiError::internal("AppState missing")))?;
            let found = session_of(&state, &req).await.map_err(PageAccess::Failed)?;
            let Some((session, user)) = found else {
                let next = (req.method() == Method::GET).then(|| {
                    let uri = req.uri();
                    uri.path_and_query()
                        .map_or(uri.path(), |pq| pq.as_str())
                        .to_owned()
                });
                return Err(PageAccess::Login {
                    next: next.filter(|n| n != "/"),
                });
            };
            let path = req.path();
            if user.password_change_required && !path.starts_with("/account") && path != "/logout" {
                return Err(PageAccess::ChangePassword);
            }
            let csrf_token = session_csrf_token(&state.csrf_pepper, &session.id);
            Ok(SignedIn {
                user,
                session,
                csrf_token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urlencode_keeps_paths_readable_and_escapes_the_rest() {
        assert_eq!(
            urlencode("/oauth/authorize?a=b c&d"),
            "/oauth/authorize%3Fa%3Db%20c%26d"
        );
    }
}
