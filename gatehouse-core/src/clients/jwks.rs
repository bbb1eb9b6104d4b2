//! The JWK Sets apps register for `private_key_jwt` (inline `jwks` or fetched from
//! `jwks_uri`): public keys only, at most ten, each usable with an accepted algorithm.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::jwt::dpop::jwk_fits;

/// What `token_endpoint_auth_signing_alg_values_supported` says.
pub const SIGNING_ALGS: &[&str] = &["ES256", "RS256", "EdDSA"];
const MAX_KEYS: usize = 10;

/// Check a JWK Set an app registers: 1 to 10 public keys of the supported kinds.
pub fn validate_jwks(value: &serde_json::Value) -> Result<JwkSet, String> {
    let keys = value
        .get("keys")
        .and_then(|k| k.as_array())
        .ok_or("jwks must be a JWK Set: an object with a keys array")?;
    if keys.is_empty() || keys.len() > MAX_KEYS {
        return Err(format!("jwks must hold 1 to {MAX_KEYS} keys"));
    }
    for key in keys {
        for private in crate::jwt::dpop::PRIVATE_MEMBERS {
            if key.get(private).is_some() {
                return Err(format!(
                    "jwks holds private key material (\"{private}\"): register public keys only"
                ));
            }
        }
    }
    let set: JwkSet = serde_json::from_value(value.clone())
        .map_err(|e| format!("jwks is not a valid JWK Set: {e}"))?;
    for jwk in &set.keys {
        let usable = SIGNING_ALGS
            .iter()
            .any(|alg| algorithm(alg).is_some_and(|a| jwk_fits(jwk, a)));
        if !usable || DecodingKey::from_jwk(jwk).is_err() {
            return Err(
                "every key in jwks must be an EC P-256, RSA or Ed25519 public key for ES256, RS256 or EdDSA"
                    .into(),
            );
        }
    }
    Ok(set)
}

/// The algorithm a JWS names, among those accepted.
pub fn algorithm(name: &str) -> Option<Algorithm> {
    match name {
        "ES256" => Some(Algorithm::ES256),
        "RS256" => Some(Algorithm::RS256),
        "EdDSA" => Some(Algorithm::EdDSA),
        _ => None,
    }
}
