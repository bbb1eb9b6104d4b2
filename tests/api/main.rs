//! Gatehouse's integration tests: one binary. Every test that touches the database runs on
//! SQLite and, when `GATEHOUSE_TEST_POSTGRES_URL` is set, on PostgreSQL (see `helpers`).

mod helpers;
mod jose;

mod account_audit;
mod agents;
mod agents_browser;
mod api_envelope;
mod api_key_pages;
mod api_keys;
mod backup;
mod browser;
mod cli;
mod cli_repeat;
mod device;
mod device_browser;
mod dpop;
mod fuzz_findings;
mod health;
mod integrity;
mod key_restrictions;
mod login;
mod login_throttle;
mod metrics;
mod oauth;
mod oauth_apps;
mod oauth_complete;
mod oauth_integrity;
mod oidc;
mod oidc_browser;
mod oidc_logout;
mod open_limits;
mod openapi;
mod pages;
mod par;
mod permissions;
mod private_key_jwt;
mod retention;
mod sessions;
mod shared_limits;
mod signing_keys;
mod token_exchange;
mod upgrade;
mod verify_crate;
mod workspace_browser;
mod workspaces;
