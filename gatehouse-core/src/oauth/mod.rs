//! The OAuth protocol's typed errors, shared by every endpoint's core (grants, clients'
//! authentication, registration, the device flow).

pub mod error;
