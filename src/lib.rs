//! Gatehouse: an OAuth 2.0 authorization server and API-key service in one binary.
//!
//! This crate serves HTTP: the plumbing (`http`), the principal extractor, every `/v1`
//! handler, page and OAuth endpoint, OpenAPI and `app`, which wires them. What it serves is
//! `gatehouse-core` (no actix, no askama), re-exported here under the same names.

pub mod accounts;
pub mod api_keys;
pub mod app;
pub mod authorize;
pub mod clients;
pub mod device;
pub mod health;
pub mod http;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod openapi;
pub mod pages;
pub mod principal;
pub mod tls;
pub mod token;
pub mod workspaces;

pub use app::Application;
pub use gatehouse_core::Settings;
pub use gatehouse_core::{
    audit, cache, clock, config, db, errors, grants, ids, jwt, limits, logs, memory, net, policy,
    retention, scopes, secrets, state,
};
