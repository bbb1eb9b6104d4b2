//! The authorization endpoint's storage: pushed authorization requests (RFC 9126). The
//! approvals it records are the grants' (`grants`).

pub mod pushed;
