//! Accounts over HTTP: the pages (sign-in, sign-out, password) and the `/v1` routes about
//! users. Users, passwords, sessions and login are the core's (`gatehouse_core::accounts`).

pub use gatehouse_core::accounts::*;

pub mod api;
pub mod pages;
