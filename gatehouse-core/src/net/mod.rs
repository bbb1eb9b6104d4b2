//! Calling out: the guarded outbound HTTP client (metadata documents, `jwks_uri`, logout
//! notices) and the address arithmetic the limits and the logs share. Calling out is not
//! serving HTTP: nothing here knows a request of ours.

pub mod address;
pub mod outbound;
