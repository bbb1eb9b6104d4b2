//! OAuth 2.0 and OpenID Connect: clients (registered, self-registered, described by metadata
//! documents), authorization, tokens, refresh families, revocation, introspection, metadata.

pub mod agents;
pub mod api;
pub mod assertion;
pub mod authorize;
pub mod backchannel;
pub mod cimd;
pub mod clients;
pub mod device;
pub mod device_codes;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod introspect;
pub mod logout;
pub mod manage;
pub mod metadata;
pub mod oidc;
pub mod pages;
pub mod par;
pub mod redirect;
pub mod registration;
pub mod token;
pub mod token_audit;
