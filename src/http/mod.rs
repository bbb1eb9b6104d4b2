//! Web plumbing that knows no capability: the request context, the `/v1` JSON envelope and
//! its error catalogue, the header middleware, the rate limits and the body-parsing limits.

pub mod client_ip;
pub mod context;
pub mod envelope;
pub mod errors;
pub mod middleware;
pub mod open_limits;
pub mod rate_limit;

pub use envelope::{ApiResult, ok, page};
pub use errors::{ApiError, ErrorCode};
