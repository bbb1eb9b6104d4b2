//! The web plumbing's part of the OpenAPI document: schemas for the loosely typed body fields
//! that handlers parse themselves (a list given as a string or an array, a duration given as
//! text or seconds) and the headers that the middleware adds to responses. The document itself
//! is assembled in `crate::openapi`.

use utoipa::openapi::RefOr;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};

fn typed(t: Type) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(t)
}

/// The shape of a scope name that `Scope::parse` accepts (`read:users`, `introspect`), at most
/// 64 characters.
pub const SCOPE_PATTERN: &str = "^[a-z0-9_]+(:[a-z0-9_]+)?$";

fn scope_name() -> ObjectBuilder {
    typed(Type::String)
        .pattern(Some(SCOPE_PATTERN))
        .max_length(Some(64))
}

/// Scope names as an array.
pub fn scope_names() -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(scope_name())
        .examples([serde_json::json!(["read:users", "write:profile"])])
        .into()
}

/// Scope names as one string (separated by spaces or commas) or as an array; `null` or absent
/// for none.
pub fn scopes_given() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            typed(Type::String)
                .pattern(Some("^[a-z0-9_:, ]*$"))
                .examples([serde_json::json!("read:users write:profile")]),
        )
        .item(ArrayBuilder::new().items(scope_name()))
        .item(typed(Type::Null))
        .into()
}

/// IPv4/IPv6 addresses and CIDR blocks as one string (separated by commas, spaces or
/// newlines) or as an array; `null` or absent for none.
pub fn addresses_given() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(typed(Type::String).examples([serde_json::json!("203.0.113.0/24, 2001:db8::1")]))
        .item(ArrayBuilder::new().items(typed(Type::String)))
        .item(typed(Type::Null))
        .examples([serde_json::json!(["203.0.113.0/24", "2001:db8::1"])])
        .into()
}

/// A lifetime as text (`"90d"`, `"12h"`, `"30m"`, `"3600s"`, `"1y"`) or a positive number of
/// seconds; `null` or absent for the default. The server's maximum applies.
pub fn lifetime() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            typed(Type::String)
                .pattern(Some("^[1-9][0-9]{0,7}[smhdwy]?$"))
                .examples([serde_json::json!("90d")]),
        )
        .item(int64().minimum(Some(1)))
        .item(typed(Type::Null))
        .into()
}

/// An overlap from 0 to 7 days, as text (`"24h"`, `"7d"`, `"0"`) or seconds; `null` or absent
/// for none.
pub fn grace_period() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(
            typed(Type::String)
                .pattern(Some("^(0|[1-9][0-9]{0,6}[smhdw]?)$"))
                .examples([serde_json::json!("24h")]),
        )
        .item(int64().minimum(Some(0)).maximum(Some(7 * 24 * 3600)))
        .item(typed(Type::Null))
        .into()
}

fn int64() -> ObjectBuilder {
    typed(Type::Integer).format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
        utoipa::openapi::KnownFormat::Int64,
    )))
}

fn header(t: Type, description: &str) -> Header {
    HeaderBuilder::new()
        .schema(typed(t))
        .description(Some(description))
        .build()
}

/// Headers on every response.
pub fn every_response_headers() -> Vec<(&'static str, Header)> {
    vec![(
        "X-Request-Id",
        header(
            Type::String,
            "The request's id (a sane inbound `X-Request-Id` is echoed); quote it when you ask for help",
        ),
    )]
}

/// Headers of a response to a rate-limited request (`/v1`, `/oauth/token`, `/oauth/introspect`,
/// `/oauth/revoke`).
pub fn rate_limit_headers() -> Vec<(&'static str, Header)> {
    vec![
        (
            "X-RateLimit-Limit",
            header(Type::Integer, "Requests allowed per minute"),
        ),
        (
            "X-RateLimit-Remaining",
            header(Type::Integer, "Requests left in the current allowance"),
        ),
        (
            "X-RateLimit-Reset",
            header(
                Type::Integer,
                "Unix time (seconds) at which the full allowance is back",
            ),
        ),
    ]
}

/// `Retry-After` of a 429 (and of a 503 when the server is busy).
pub fn retry_after_header() -> (&'static str, Header) {
    (
        "Retry-After",
        header(Type::Integer, "Seconds to wait before trying again"),
    )
}
