//! OAuth 2.0: clients and their redirect URIs (more to come: authorization, tokens, refresh
//! families, revocation, introspection, metadata).

pub mod api;
pub mod authorize;
pub mod clients;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod logout;
pub mod manage;
pub mod metadata;
pub mod oidc;
pub mod pages;
pub mod redirect;
pub mod token;
pub mod token_audit;
