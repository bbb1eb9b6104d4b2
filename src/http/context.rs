//! Per-request facts that error responses need (request id, issuer) without every handler
//! passing them along: held in a task-local for the duration of the request.

use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct RequestContext {
    pub request_id: Arc<str>,
    pub issuer: Arc<str>,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

/// Run `fut` with `ctx` as the current request context.
pub async fn scope<F: std::future::Future>(ctx: RequestContext, fut: F) -> F::Output {
    CURRENT.scope(ctx, fut).await
}

/// The current request's context, if called while serving a request.
pub fn current() -> Option<RequestContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A request id is echoed when it is 1–128 characters of `[A-Za-z0-9._-]`.
pub fn is_acceptable_request_id(candidate: &str) -> bool {
    (1..=128).contains(&candidate.len())
        && candidate
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_request_ids_are_echoed() {
        assert!(is_acceptable_request_id("req_abc-1.2"));
        assert!(is_acceptable_request_id(&"a".repeat(128)));
        assert!(!is_acceptable_request_id(&"a".repeat(129)));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id("abc\r\nSet-Cookie: x"));
        assert!(!is_acceptable_request_id("<script>"));
    }
}
