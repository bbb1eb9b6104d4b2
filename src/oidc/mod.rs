//! OpenID Connect over HTTP: UserInfo and RP-Initiated Logout. ID tokens and back-channel
//! logout are the core's (`gatehouse_core::oidc`).

pub use gatehouse_core::oidc::*;

pub mod logout;
pub mod userinfo;
