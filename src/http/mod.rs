//! Web plumbing that knows no capability: the request context, the `/v1` JSON envelope and
//! its error catalogue, the header middleware, the rate limits (local or shared through Redis) and the body-parsing limits.

pub mod client_ip;
pub mod context;
pub mod cors;
pub mod envelope;
pub mod errors;
pub mod middleware;
pub mod open_limits;
pub mod openapi;

pub use gatehouse_core::limits::{rate_limit, shared_limits};
pub use gatehouse_core::net::{address, outbound};

pub use envelope::{ApiResult, done, ok, page};
pub use errors::{ApiError, ErrorCode};

/// For PATCH bodies: tells an absent field (`None`) from an explicit `null` (`Some(None)`),
/// so that `null` is never silently read as "leave it as it is".
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}
