//! OAuth 2.0 and OpenID Connect: clients (registered, self-registered, described by metadata
//! documents), authorization, tokens, refresh families, revocation, introspection, metadata.

pub use gatehouse_core::oauth::{
    assertion, backchannel, cimd, clients, device_codes, grants, id_token, pushed, redirect,
    registration_tokens, token_audit,
};

pub mod agents;
pub mod api;
pub mod authorize;
pub mod device;
pub mod error;
pub mod introspect;
pub mod logout;
pub mod manage;
pub mod metadata;
pub mod oidc;
pub mod pages;
pub mod par;
pub mod registration;
pub mod token;
