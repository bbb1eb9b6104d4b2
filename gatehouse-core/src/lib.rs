//! Gatehouse's core: everything an authorization server and API-key service knows without
//! serving HTTP — the database floor and one model per table, secrets, ids, the clock, scopes,
//! the policy room, caches of verified facts, JWT signing, every capability's services and the
//! grants. The `gatehouse` crate serves it (actix-web, pages, the CLI); this crate depends on no
//! web-serving or templating crate (a test in the server crate fails if it does).

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod authorize;
pub mod cache;
pub mod clients;
pub mod clock;
pub mod config;
pub mod db;
pub mod device;
pub mod errors;
pub mod grants;
pub mod ids;
pub mod jwt;
pub mod limits;
pub mod logs;
pub mod memory;
pub mod metrics;
pub mod net;
pub mod oauth;
pub mod oidc;
pub mod policy;
pub mod retention;
pub mod scopes;
pub mod secrets;
pub mod state;
pub mod workspaces;

pub use config::Settings;
