//! The OAuth protocol over HTTP: how its typed errors are answered, and the discovery
//! documents (RFC 8414, OpenID Connect Discovery, the JWKS).

pub mod error;
pub mod metadata;
