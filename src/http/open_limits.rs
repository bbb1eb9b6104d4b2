//! Rate limits per client address, as middleware, for the endpoints anyone may call without a
//! credential: the OAuth token, introspection and revocation endpoints and the sign-in and
//! sign-up forms. A flood from one address is refused before the handler reads the body or
//! touches the database: 429 with `Retry-After`, as RFC 6749 JSON on `/oauth/*` and as an HTML
//! page on the forms. Wrap a route or resource with `from_fn(oauth_per_address)` or
//! `from_fn(forms_per_address)`; another allowance is one more `Allowance` and a two-line
//! function.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, web};

use super::client_ip::client_ip;
use crate::config::OpenEndpointLimits;
use crate::state::AppState;

/// How a refusal is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `{"error":"slow_down","error_description":…}`: the registered OAuth error for a client
    /// that calls too fast (RFC 8628 §3.5), in the RFC 6749 §5.2 shape.
    OAuthJson,
    /// The HTML error page.
    Page,
}

/// One allowance: the counter's namespace, its per-minute figure and the refusal's form.
#[derive(Clone, Copy)]
pub struct Allowance {
    pub name: &'static str,
    pub per_minute: fn(&OpenEndpointLimits) -> u32,
    pub refusal: Refusal,
}

pub const OAUTH: Allowance = Allowance {
    name: "oauth",
    per_minute: |l| l.oauth_per_address,
    refusal: Refusal::OAuthJson,
};

pub const FORMS: Allowance = Allowance {
    name: "forms",
    per_minute: |l| l.forms_per_address,
    refusal: Refusal::Page,
};

pub const REGISTRATION: Allowance = Allowance {
    name: "registration",
    per_minute: |l| l.registration_per_address,
    refusal: Refusal::OAuthJson,
};

/// `POST /oauth/register` (dynamic client registration).
pub async fn registration_per_address(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    per_address(REGISTRATION, req, next).await
}

/// `/oauth/token`, `/oauth/introspect`, `/oauth/revoke`.
pub async fn oauth_per_address(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    per_address(OAUTH, req, next).await
}

/// `POST /login`, `POST /signup`.
pub async fn forms_per_address(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    per_address(FORMS, req, next).await
}

/// Count the request against `allowance` for its client address; refuse it when spent.
pub async fn per_address<B: MessageBody + 'static>(
    allowance: Allowance,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let subject = crate::http::address::address_subject(allowance.name, client_ip(req.request()));
    let per_minute = (allowance.per_minute)(&state.settings.open_limits);
    let decision = state.rate_limits.check(subject, per_minute).await;
    req.extensions_mut().insert(decision);
    match decision.retry_after {
        None => Ok(next.call(req).await?.map_into_left_body()),
        Some(seconds) => {
            crate::metrics::rate_limited(allowance.name);
            let response = refusal(allowance.refusal, seconds);
            Ok(req.into_response(response).map_into_right_body())
        }
    }
}

/// The 429 answer of `refusal` with `Retry-After: seconds`.
pub fn refusal(refusal: Refusal, seconds: u64) -> HttpResponse {
    let mut response = match refusal {
        Refusal::OAuthJson => HttpResponse::TooManyRequests()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "slow_down",
                "error_description":
                    format!("Too many requests: try again in {seconds} seconds"),
            })),
        Refusal::Page => crate::pages::error_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            &format!("Too many attempts from your address. Try again in {seconds} seconds."),
        ),
    };
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, seconds.into());
    response
}

#[cfg(test)]
mod tests {
    use crate::http::address::address_subject;
    use std::net::IpAddr;

    #[test]
    fn address_subjects_are_the_addresses_as_written() {
        for text in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "192.168.100.9",
            "255.255.255.255",
        ] {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(address_subject("oauth", Some(ip)), format!("oauth:{text}"));
        }
        assert_eq!(address_subject("forms", None), "forms:unknown");
    }

    /// One client on IPv6 holds a /64: every address in it counts as one.
    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let subject = |text: &str| address_subject("forms", Some(text.parse().unwrap()));
        assert_eq!(subject("2001:db8:1:2::7"), "forms:2001:db8:1:2::/64");
        assert_eq!(
            subject("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            subject("2001:db8:1:2::1")
        );
        assert_ne!(subject("2001:db8:1:3::1"), subject("2001:db8:1:2::1"));
        assert_eq!(subject("::1"), "forms:::/64");
        // An IPv4-mapped address is its IPv4 address.
        assert_eq!(subject("::ffff:10.1.2.3"), "forms:10.1.2.3");
        assert_eq!(
            crate::http::address::limited_address_text("2001:db8:1:2:ffff::9"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            crate::http::address::limited_address_text("10.0.0.1"),
            "10.0.0.1"
        );
        assert_eq!(
            crate::http::address::limited_address_text("unknown"),
            "unknown"
        );
    }
}
