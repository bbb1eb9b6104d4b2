//! actix-web: the [`Authenticated`] extractor. Put an `Arc<Verifier>` in the app as
//! `web::Data<Verifier>`; a handler that takes `Authenticated` runs only for a verified
//! credential, and every refusal is answered in Gatehouse's envelope with the RFC 6750
//! `WWW-Authenticate` challenge:
//!
//! ```no_run
//! use actix_web::{App, HttpServer, web};
//! use gatehouse_verify::actix::Authenticated;
//! use gatehouse_verify::{Config, Verifier};
//!
//! async fn orders(who: Authenticated) -> String {
//!     format!("orders of {}", who.0.subject())
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let verifier = web::Data::new(Verifier::new(Config::new("https://auth.example.com", "https://api.example.com")).unwrap());
//! HttpServer::new(move || App::new().app_data(verifier.clone()).route("/orders", web::get().to(orders)))
//!     .bind("127.0.0.1:8080")?
//!     .run()
//!     .await
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, dev::Payload, web};

use crate::{Credential, Error, Request, Verifier};

/// A request's verified credential.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Credential);

/// A refusal as an actix-web error: status, envelope and challenge.
#[derive(Debug)]
pub struct Refused(pub Error);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// `GET` handler of the RFC 9728 metadata; route it at `verifier.resource_metadata_path()`.
pub async fn resource_metadata(verifier: web::Data<Verifier>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(verifier.resource_metadata())
}

/// A refusal with the challenge's `resource_metadata` parameter (RFC 9728 §5.1), which tells
/// a client (an MCP client, an agent) where to find the authorization server.
#[derive(Debug)]
pub struct RefusedAt(pub Error, pub String);

impl std::fmt::Display for RefusedAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for RefusedAt {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        refusal(&self.0, &self.1)
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::UNAUTHORIZED)
    }

    fn error_response(&self) -> HttpResponse {
        refusal(&self.0, "")
    }
}

/// Status, envelope and challenge.
fn refusal(error: &Error, resource_metadata: &str) -> HttpResponse {
    let status = StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let mut response = HttpResponse::build(status).json(error.envelope());
    if let Some(value) = error
        .challenge(resource_metadata)
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The credential of a request: `Authorization: Bearer …`, `ApiKey …` or `DPoP …`, or
/// `X-API-Key`; and whether the scheme was `DPoP`.
fn presented(req: &HttpRequest) -> Option<(String, bool)> {
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    crate::presented_with_scheme(
        header(header::AUTHORIZATION),
        header(header::HeaderName::from_static("x-api-key")),
    )
}

/// The one `DPoP` header of a request (several: an empty proof, which no check passes).
pub(crate) fn dpop_header<'a>(mut values: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let first = values.next()?;
    Some(if values.next().is_some() { "" } else { first })
}

impl FromRequest for Authenticated {
    type Error = RefusedAt;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let verifier = req
                .app_data::<web::Data<Verifier>>()
                .cloned()
                .ok_or_else(|| {
                    RefusedAt(
                        Error::Unavailable("no Verifier in the app's data".into()),
                        String::new(),
                    )
                })?;
            let metadata = verifier.resource_metadata_url();
            let Some((credential, dpop_scheme)) = presented(&req) else {
                return Err(RefusedAt(Error::Missing, metadata));
            };
            let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
            let url = verifier.request_url(req.uri().path());
            let request = Request {
                ip: req.peer_addr().map(|a| a.ip()),
                origin: header(header::ORIGIN),
                referer: header(header::REFERER),
                method: req.method().as_str(),
                path: req.uri().path(),
                dpop_scheme,
                dpop_proof: dpop_header(
                    req.headers()
                        .get_all("dpop")
                        .map(|v| v.to_str().unwrap_or_default()),
                ),
                url: Some(&url),
            };
            verifier
                .verify(&credential, &request)
                .await
                .map(Authenticated)
                .map_err(|e| RefusedAt(e, metadata))
        })
    }
}
