//! API keys over HTTP: the `/v1/keys` routes and the settings pages. Keys, their formats,
//! limits and services are the core's (`gatehouse_core::api_keys`).

pub use gatehouse_core::api_keys::*;

pub mod api;
pub mod pages;
