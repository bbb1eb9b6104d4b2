//! OpenID Connect without HTTP: the ID token (with the request's `nonce`, `max_age` and
//! `id_token_hint`) and Back-Channel Logout (what a session's end does to its sign-ins, and
//! the notices to apps).

pub mod backchannel;
pub mod id_token;
