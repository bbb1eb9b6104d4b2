//! Rate limits by key, client and address: local (GCRA) or shared between instances through
//! Redis. The server's middleware asks them; they know no request type.

pub mod decision;
pub mod rate_limit;
pub mod shared_limits;
