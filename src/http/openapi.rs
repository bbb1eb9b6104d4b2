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

/// Names as one string (separated by spaces or commas) or as an array of strings; `null` or
/// absent for none.
pub fn string_or_list() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(typed(Type::String).examples([serde_json::json!("read:users write:profile")]))
        .item(ArrayBuilder::new().items(typed(Type::String)))
        .item(typed(Type::Null))
        .into()
}

/// A duration as text (`"90d"`, `"12h"`, `"30m"`) or a number of seconds; `null` or absent
/// for the default.
pub fn duration() -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(typed(Type::String).examples([serde_json::json!("90d")]))
        .item(
            typed(Type::Integer).format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Int64,
            ))),
        )
        .item(typed(Type::Null))
        .into()
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
