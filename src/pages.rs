//! Shared plumbing of the HTML pages: rendering with a status, the error page, CSRF tokens,
//! the navigation bar and the return-target check that prevents open redirects.
//! It knows no capability.

use crate::http::errors::HttpStatus;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header;
use askama::Template;

use crate::secrets::{Pepper, constant_time_eq};

/// The signed-in user as the layout shows them.
#[derive(Debug, Clone)]
pub struct Nav {
    pub display_name: String,
    pub is_admin: bool,
    pub csrf_token: String,
    /// Which entry is highlighted.
    pub current: &'static str,
}

/// Render a page with a status code, as HTML, never cached.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(html),
        Err(e) => {
            log::error!("template rendering failed: {e}");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Internal server error")
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub nav: Option<Nav>,
}

/// An error page with the given status and explanation.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(
        status,
        &ErrorPage {
            title,
            message,
            nav: None,
        },
    )
}

pub async fn not_found() -> HttpResponse {
    error_page(
        StatusCode::NOT_FOUND,
        "Page not found",
        "There is nothing at this address.",
    )
}

/// A redirect after a form post (303 See Other: the browser follows it with GET).
/// The page for an operation that failed: the refusal's own message for a 4xx, a generic one
/// (details only in the log) for a 5xx.
pub fn failure_page(e: &crate::http::ApiError) -> HttpResponse {
    let status = e.code.status();
    if status.is_server_error() {
        return error_page(
            status,
            "Something went wrong",
            "Gatehouse could not complete this request. Try again in a moment.",
        );
    }
    error_page(status, "Not possible", &e.message)
}

/// The page for a form whose CSRF token did not match.
pub fn form_expired() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "Form expired",
        "This form has expired or did not come from Gatehouse. Go back, reload the page and try again.",
    )
}

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}

/// The CSRF token of a signed-in session's forms.
pub fn session_csrf_token(pepper: &Pepper, session_id: &str) -> String {
    pepper.digest(&["session-form", session_id])
}

/// The CSRF token of the login (and sign-up) form, bound to the pre-session cookie.
pub fn login_csrf_token(pepper: &Pepper, cookie_value: &str) -> String {
    pepper.digest(&["login-form", cookie_value])
}

pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    constant_time_eq(expected.as_bytes(), presented.as_bytes())
}

/// A path inside our own origin to return to after login. Anything that a browser could
/// read as another origin (`//host`, `/\host`, schemes, control characters) is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath(String);

impl ReturnPath {
    pub fn parse(candidate: &str) -> Option<ReturnPath> {
        let acceptable = candidate.len() <= 2048
            && candidate.starts_with('/')
            && !candidate.starts_with("//")
            && !candidate.contains('\\')
            && !candidate
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
            && !candidate.starts_with("/login")
            && !candidate.starts_with("/logout");
        acceptable.then(|| ReturnPath(candidate.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_path_stays_on_our_origin() {
        assert_eq!(ReturnPath::parse("/account").unwrap().as_str(), "/account");
        assert!(ReturnPath::parse("/oauth/authorize?client_id=x&scope=a%20b").is_some());
        for evil in [
            "//evil.test",
            "https://evil.test",
            "/\\evil.test",
            "\\\\evil.test",
            "/\t/evil.test",
            "/%0a",
            "javascript:alert(1)",
            "",
            "evil.test",
            "/ /evil.test",
        ] {
            let parsed = ReturnPath::parse(evil);
            assert!(
                parsed.is_none() || evil == "/%0a",
                "{evil:?} must be refused"
            );
        }
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_session() {
        let pepper = Pepper::derive(b"k", "csrf");
        let a = session_csrf_token(&pepper, "ses_a");
        assert!(csrf_matches(&a, &session_csrf_token(&pepper, "ses_a")));
        assert!(!csrf_matches(&a, &session_csrf_token(&pepper, "ses_b")));
        assert!(!csrf_matches(&a, &login_csrf_token(&pepper, "ses_a")));
        assert!(!csrf_matches(&a, ""));
    }
}
