//! User-chosen passwords: argon2id hashes, a length policy, and a dummy hash so that an
//! unknown email costs the same time as a wrong password. Hashing is slow by design (~15 ms):
//! callers run it on the blocking pool.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::config::Redacted;
use crate::secrets::random_base62;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer inputs are refused before hashing: argon2 time grows with input size.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that satisfies the policy for new passwords. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct NewPassword(Redacted<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordPolicyError(pub &'static str);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, PasswordPolicyError> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordPolicyError(
                "The password must be at least 10 characters long",
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordPolicyError(
                "The password must be at most 1024 bytes long",
            ));
        }
        Ok(NewPassword(Redacted(raw.to_owned())))
    }

    /// A random 20-character password for accounts created without one.
    pub fn generate() -> NewPassword {
        NewPassword(Redacted(random_base62(20)))
    }

    pub fn expose(&self) -> &str {
        &self.0.0
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string of an argon2id hash of `password` with a fresh salt.
pub fn hash_password(password: &NewPassword) -> String {
    hash_raw(password.expose())
}

fn hash_raw(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password up to the size limit")
        .to_string()
}

/// A hash of nothing anyone knows, verified when the account does not exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_raw(&random_base62(32)));

/// Compute the dummy hash now, so the first login for an unknown email is not faster.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// Check `candidate` against `stored` (or against the dummy hash when there is no account),
/// taking about the same time either way.
pub fn verify_password(stored: Option<&str>, candidate: &str) -> bool {
    let candidate = if candidate.len() > MAX_PASSWORD_BYTES {
        ""
    } else {
        candidate
    };
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        log::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    let matches = hasher()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let pw = NewPassword::parse("correct horse battery").unwrap();
        let hash = hash_password(&pw);
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "correct horse battery "));
        assert!(!verify_password(None, "correct horse battery"));
    }

    #[test]
    fn policy_bounds_length() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(NewPassword::parse("ten chars!").is_ok());
        assert_eq!(NewPassword::generate().expose().len(), 20);
    }

    #[test]
    fn debug_redacts_passwords() {
        let pw = NewPassword::parse("a secret password").unwrap();
        assert!(!format!("{pw:?}").contains("secret"));
    }
}
