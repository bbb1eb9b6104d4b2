//! OAuth 2.0 and OpenID Connect without HTTP: clients (registered, self-registered, described
//! by metadata documents) and their keys, the grants and refresh families, ID tokens, device
//! codes, back-channel logout, the token audit and the protocol's error codes. The endpoints
//! that speak them are the server's.

pub mod assertion;
pub mod backchannel;
pub mod cimd;
pub mod clients;
pub mod device_codes;
pub mod error;
pub mod grants;
pub mod id_token;
pub mod jwks;
pub mod pushed;
pub mod redirect;
pub mod registration_tokens;
pub mod token_audit;
