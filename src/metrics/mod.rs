//! Metrics: the core counts (`gatehouse_core::metrics`); the server adds the request
//! middleware's labels.

pub use gatehouse_core::metrics::*;

pub mod http;
