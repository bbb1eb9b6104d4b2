//! tower (axum, hyper, tonic): [`VerifyLayer`] verifies every request's credential before the
//! inner service sees it. A verified request carries its [`Credential`] in its extensions
//! (axum: `Extension<Credential>`); any other is answered at once in Gatehouse's envelope with
//! the RFC 6750 challenge naming the RFC 9728 metadata.
//!
//! ```ignore
//! use std::sync::Arc;
//! use axum::{Extension, Router, routing::get};
//! use gatehouse_verify::{Config, Credential, Verifier, tower::VerifyLayer};
//!
//! async fn orders(Extension(who): Extension<Credential>) -> String {
//!     format!("orders of {}", who.subject())
//! }
//!
//! let verifier = Arc::new(Verifier::new(Config::new("https://auth.example.com", "https://api.example.com"))?);
//! let app = Router::new()
//!     .route("/orders", get(orders))
//!     .layer(VerifyLayer::new(verifier));
//! ```
//!
//! The client's address, for keys with an IP allowlist, is read from a [`ClientIp`] or a
//! `std::net::SocketAddr` in the request's extensions (put one there from your server's
//! connection info); without one, such keys are refused.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Credential, Error, Verifier};

/// The client's address, when the server knows it (see the module's header).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

/// Verifies each request's credential with a shared [`Verifier`].
#[derive(Clone)]
pub struct VerifyLayer {
    verifier: Arc<Verifier>,
}

impl VerifyLayer {
    pub fn new(verifier: Arc<Verifier>) -> VerifyLayer {
        VerifyLayer { verifier }
    }
}

impl<S> Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;

    fn layer(&self, inner: S) -> VerifyService<S> {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps around yours.
#[derive(Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

/// What the verification needs of a request, copied out of it (the body need not be `Sync`).
struct Seen {
    credential: Option<String>,
    dpop_scheme: bool,
    dpop_proof: Option<String>,
    ip: Option<IpAddr>,
    origin: Option<String>,
    referer: Option<String>,
    method: String,
    path: String,
}

impl Seen {
    fn of<B>(req: &Request<B>) -> Seen {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let extensions = req.extensions();
        let presented = crate::presented_with_scheme(
            header("authorization").as_deref(),
            header("x-api-key").as_deref(),
        );
        let proofs = req.headers().get_all("dpop");
        // Several DPoP headers: an empty proof, which no check passes.
        let dpop_proof = match proofs.iter().count() {
            0 => None,
            1 => header("dpop").or_else(|| Some(String::new())),
            _ => Some(String::new()),
        };
        Seen {
            dpop_scheme: presented.as_ref().is_some_and(|(_, dpop)| *dpop),
            credential: presented.map(|(credential, _)| credential),
            dpop_proof,
            ip: extensions
                .get::<ClientIp>()
                .map(|c| c.0)
                .or_else(|| extensions.get::<SocketAddr>().map(SocketAddr::ip)),
            origin: header("origin"),
            referer: header("referer"),
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
        }
    }

    async fn verify(self, verifier: &Verifier) -> Result<Credential, Error> {
        let credential = self.credential.as_deref().ok_or(Error::Missing)?;
        let url = verifier.request_url(&self.path);
        let request = crate::Request {
            ip: self.ip,
            origin: self.origin.as_deref(),
            referer: self.referer.as_deref(),
            method: &self.method,
            path: &self.path,
            dpop_scheme: self.dpop_scheme,
            dpop_proof: self.dpop_proof.as_deref(),
            url: Some(&url),
        };
        verifier.verify(credential, &request).await
    }
}

/// A refusal: status, envelope, challenge.
pub fn refusal<B: From<String>>(error: &Error, resource_metadata: &str) -> Response<B> {
    let mut response = Response::new(B::from(error.envelope().to_string()));
    *response.status_mut() =
        StatusCode::from_u16(error.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(value) = error
        .challenge(resource_metadata)
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl<S, B, ResBody> Service<Request<B>> for VerifyService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    ResBody: From<String> + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        // The clone waits for the next call; this call uses the service that was ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        let seen = Seen::of(&req);
        Box::pin(async move {
            match seen.verify(&verifier).await {
                Ok(credential) => {
                    req.extensions_mut().insert(credential);
                    inner.call(req).await
                }
                Err(error) => Ok(refusal(&error, &verifier.resource_metadata_url())),
            }
        })
    }
}
