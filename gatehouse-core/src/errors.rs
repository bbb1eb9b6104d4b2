//! The catalogue of stable error codes every front door answers with (`/v1`, the pages, the
//! CLI): each has an HTTP status and a section in `docs/errors.md`. Plain data: the server
//! renders it (`http::errors`), the services name it.

use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

macro_rules! error_codes {
    ($($variant:ident => ($code:literal, $status:literal, $title:literal)),* $(,)?) => {
        /// A stable, documented error code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }

            /// The HTTP status it is answered with.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status),* }
            }

            /// The default message when a handler gives none.
            pub const fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title),* }
            }
        }
    };
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The catalogue as a string enum: the OpenAPI document lists exactly the codes answered.
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .description(Some(
                "A stable code, safe to branch on; each is explained at `doc_url` (`/docs/errors`).",
            ))
            .into()
    }
}

impl ToSchema for ErrorCode {}

error_codes! {
    NotAuthenticated => ("AUTH_001", 401, "User is not authenticated"),
    InvalidCredential => ("AUTH_002", 401, "Invalid or expired credentials"),
    MalformedCredential => ("AUTH_003", 401, "Malformed credentials"),
    Forbidden => ("AUTH_004", 403, "Insufficient permissions for this operation"),
    IpNotAllowed => ("AUTH_005", 403, "Requests from this IP address are not allowed"),
    Broader => ("AUTH_006", 403, "The result would be broader than the credential you are using"),
    PasswordChangeRequired => ("AUTH_007", 403, "Change your password before using the API"),
    ReferrerNotAllowed => ("AUTH_008", 403, "This API key may not be used from this origin"),
    EndpointNotAllowed => ("AUTH_009", 403, "This API key may not call this endpoint"),
    AdminsIssueKeys => ("AUTH_010", 403, "In this workspace only its administrators issue API keys"),
    InvalidDpopProof => ("AUTH_011", 401, "The DPoP proof is missing or not valid for this request"),
    RateLimited => ("RATE_001", 429, "Too many requests"),
    Validation => ("VALIDATION_001", 400, "A field has an invalid value"),
    MalformedBody => ("REQUEST_001", 400, "The request body could not be parsed"),
    BodyTooLarge => ("REQUEST_002", 413, "The request body is too large"),
    UnsupportedMediaType => ("REQUEST_003", 415, "Unsupported content type"),
    NotFound => ("RESOURCE_001", 404, "Resource not found"),
    Conflict => ("RESOURCE_002", 409, "The resource already exists"),
    MethodNotAllowed => ("METHOD_001", 405, "Method not allowed on this resource"),
    LastOwner => ("WORKSPACE_001", 409, "A workspace keeps at least one owner"),
    PersonalWorkspace => ("WORKSPACE_002", 409, "A personal workspace has only its user and cannot be left or deleted"),
    InvitationInvalid => ("WORKSPACE_003", 404, "The invitation is unknown, expired, revoked or already used"),
    InvitationForOther => ("WORKSPACE_004", 403, "The invitation is for another email address"),
    Internal => ("SERVER_001", 500, "Internal server error"),
    Unavailable => ("SERVER_002", 503, "The service is temporarily unavailable"),
}
