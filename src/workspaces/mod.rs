//! Workspaces over HTTP: the `/v1/workspaces` routes and the pages. Workspaces, members,
//! invitations and the last-owner rule are the core's (`gatehouse_core::workspaces`).

pub use gatehouse_core::workspaces::*;

pub mod api;
pub mod pages;
