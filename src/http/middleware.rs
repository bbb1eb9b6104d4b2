//! Headers every response carries: `X-Request-Id` (a sane inbound one is echoed),
//! `X-Response-Time`, `X-API-Version` on `/v1`, and the security headers; plus the extractor
//! configurations that turn bad bodies into envelope errors.

use std::sync::Arc;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, web};

use super::context::{self, RequestContext, is_acceptable_request_id};
use super::rate_limit::RateDecision;
use super::{ApiError, ErrorCode};
use crate::ids::{IdKind, new_id};

/// What the plumbing needs to know about the server (registered as app data).
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub issuer: Arc<str>,
    /// `scheme://host[:port]` of the issuer: requests from it are not cross-origin.
    pub issuer_origin: Arc<str>,
}

const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; object-src 'none'";
const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
pub const API_VERSION: &str = "v1";

pub fn is_api_path(path: &str) -> bool {
    path == "/v1" || path.starts_with("/v1/")
}

/// The outermost middleware: sets the request context for the inner services, then stamps
/// the response headers.
pub async fn plumbing(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let config = req.app_data::<web::Data<HttpConfig>>();
    let issuer = config
        .map(|c| c.issuer.clone())
        .unwrap_or_else(|| Arc::from(""));
    let cross_origin = config.and_then(|c| super::cors::CrossOrigin::of(&req, &c.issuer_origin));
    // Served as https (here or behind a proxy that terminates TLS): browsers keep to https.
    let https = issuer.starts_with("https://");
    let request_id: Arc<str> = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_acceptable_request_id(v))
        .map(Arc::from)
        .unwrap_or_else(|| Arc::from(new_id(IdKind::Request)));
    let api = is_api_path(req.path());
    let static_asset = req.path().starts_with("/static/");
    let ctx = RequestContext {
        request_id: request_id.clone(),
        issuer,
    };

    let mut res = context::scope(ctx, next.call(req)).await?;
    let readable = cross_origin.is_some()
        && res
            .request()
            .extensions()
            .contains::<super::cors::Readable>();
    // A request counted by the rate limiter (see `principal`) reports its allowance.
    let rate = res.request().extensions().get::<RateDecision>().copied();

    let headers = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    secure(headers, static_asset);
    if let Some(cross) = &cross_origin {
        cross.finish(headers, readable);
    }
    if https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000"),
        );
    }
    if api {
        headers.insert(
            HeaderName::from_static("x-api-version"),
            HeaderValue::from_static(API_VERSION),
        );
    }
    if let Some(d) = rate {
        allowance(headers, d);
    }
    let elapsed = started.elapsed();
    if let Ok(v) = HeaderValue::from_str(&format!("{:.2}ms", elapsed.as_secs_f64() * 1000.0)) {
        headers.insert(HeaderName::from_static("x-response-time"), v);
    }
    observe(&res, &request_id, elapsed);
    Ok(res)
}

/// The headers every answer carries: no sniffing, no referrer, no framing, the CSP of a page
/// or of an API answer, and `no-store` unless a static asset or the handler said otherwise.
fn secure(headers: &mut HeaderMap, static_asset: bool) {
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if is_html { PAGE_CSP } else { API_CSP }),
    );
    if !static_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The rate limiter's allowance, as `X-RateLimit-*` headers.
fn allowance(headers: &mut HeaderMap, d: RateDecision) {
    headers.insert(
        HeaderName::from_static("x-ratelimit-limit"),
        HeaderValue::from(d.limit),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-remaining"),
        HeaderValue::from(d.remaining),
    );
    headers.insert(
        HeaderName::from_static("x-ratelimit-reset"),
        HeaderValue::from(d.reset_at),
    );
}

/// The request's metrics and access line, when either is on (otherwise two loads).
fn observe<B>(res: &ServiceResponse<B>, request_id: &str, elapsed: std::time::Duration) {
    let (metrics_on, access_on) = (crate::metrics::enabled(), crate::logs::access_enabled());
    if !metrics_on && !access_on {
        return;
    }
    let req = res.request();
    // The template, never the path: ids and typos must not become series or log fields.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = crate::metrics::http::method_label(req.method());
    let status = res.status().as_u16();
    if access_on {
        let extensions = req.extensions();
        let caller = extensions.get::<crate::logs::LoggedCaller>();
        crate::logs::access(&crate::logs::AccessLine {
            request_id,
            method,
            route: &route,
            status,
            latency_ms: (elapsed.as_secs_f64() * 1e5).round() / 100.0,
            principal: caller.map(|c| c.user_id.as_str()),
            credential: caller.and_then(|c| c.credential_id.as_deref()),
        });
    }
    if metrics_on {
        crate::metrics::http_request(route, method, status, elapsed);
    }
}

/// JSON bodies: size limit and envelope errors (413, 415, 400).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(|err, _req| json_error(&err).into())
}

fn json_error(err: &actix_web::error::JsonPayloadError) -> ApiError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("The request body exceeds {limit} bytes"),
        ),
        E::ContentType => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the body as application/json",
        ),
        E::Deserialize(e) if e.is_data() => ApiError::new(
            ErrorCode::Validation,
            clipped(format!("Invalid request body: {e}"), 200),
        ),
        E::Deserialize(_) => ApiError::new(
            ErrorCode::MalformedBody,
            "The request body is not valid JSON",
        ),
        _ => ApiError::of(ErrorCode::MalformedBody),
    }
}

/// An optional JSON body, read from the raw payload: none (empty, blank or `null`) is
/// `T::default()`, but a body that is there and does not parse is refused — it must never
/// silently mean "nothing asked". A payload over the limit is the envelope's 413, not the
/// framework's plain-text one. `field` names the body's field in a validation error.
pub fn optional_json<T: serde::de::DeserializeOwned + Default>(
    body: Result<web::Bytes, Error>,
    field: &'static str,
) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::BodyTooLarge, "The request body is too large")
        } else {
            ApiError::of(ErrorCode::MalformedBody)
        }
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice::<Option<T>>(&body)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            if e.is_data() {
                ApiError::validation(field, clipped(format!("Invalid request body: {e}"), 200))
            } else {
                ApiError::new(
                    ErrorCode::MalformedBody,
                    "The request body is not valid JSON",
                )
            }
        })
}

/// Query strings on `/v1`: a bad parameter is a validation error, not a bare 400.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        let message = clipped(format!("Invalid query parameter: {err}"), 200);
        ApiError::new(ErrorCode::Validation, message).into()
    })
}

/// At most `max` bytes of `message`, cut at a character boundary: the parser's messages quote
/// the caller's input, which may be any UTF-8 (`String::truncate` inside a character panics).
fn clipped(mut message: String, max: usize) -> String {
    if message.len() > max {
        let end = (0..=max)
            .rev()
            .find(|i| message.is_char_boundary(*i))
            .unwrap_or(0);
        message.truncate(end);
    }
    message
}

/// Unknown `/v1` routes.
pub async fn api_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let mut path: String = req.path().chars().take(100).collect();
    path.retain(|c| !c.is_control());
    Err(ApiError::new(
        ErrorCode::NotFound,
        format!("No route for {} {path}", req.method()),
    ))
}

/// A `/v1` resource that answers 405 (with `Allow`) to methods it does not route.
///
/// `path` is the full path (`/v1/…`), as the API's users see it; the resource is registered
/// inside the `/v1` scope, so relative to it.
pub fn api_resource(path: &str, allow: &'static str) -> actix_web::Resource {
    let in_scope = path
        .strip_prefix("/v1")
        .expect("an API route's path starts with /v1");
    web::resource(in_scope).default_service(web::to(move |req: HttpRequest| async move {
        if let Some(answer) = super::cors::preflight_for(&req).await {
            return Ok(answer);
        }
        Err::<HttpResponse, _>(ApiError {
            allow: Some(allow),
            ..ApiError::of(ErrorCode::MethodNotAllowed)
        })
    }))
}
