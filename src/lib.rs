//! Gatehouse: an OAuth 2.0 authorization server and API-key service in one binary.
//!
//! The crate is split into capabilities (`accounts`, later `api_keys`, `oauth`, `jwt`) over
//! shared plumbing (`db`, `http`, `secrets`, `ids`); `app` wires them together.

pub mod accounts;
pub mod api_keys;
pub mod app;
pub mod audit;
pub mod cache;
pub mod clock;
pub mod config;
pub mod db;
pub mod errors;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod pages;
pub mod policy;
pub mod principal;
pub mod retention;
pub mod scopes;
pub mod secrets;
pub mod state;
pub mod workspaces;

pub use app::Application;
pub use config::Settings;
