//! Apps over HTTP: registration (RFC 7591/7592, initial access tokens), the management of
//! apps (`/v1/clients`, the settings pages, the admins' agents page), approvals
//! (`/v1/consents`). The apps themselves, their metadata documents, keys and redirect URIs are
//! the core's (`gatehouse_core::clients`).

pub use gatehouse_core::clients::*;

pub mod agents;
pub mod api;
pub mod manage;
pub mod pages;
pub mod registration;
