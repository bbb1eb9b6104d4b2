//! Every secret string the server generates, and how it is stored.
//!
//! A generated secret is `prefix` + 32 random base62 characters (~190 bits) + a 6-character
//! base62 CRC32 checksum of the random part. The checksum lets a mistyped or truncated secret be
//! refused without a database lookup and lets secret scanners recognise leaked ones. Secrets are
//! stored only as HMAC-SHA256(pepper, secret). This module does no I/O.

use std::fmt;

use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters after the prefix.
pub const RANDOM_LEN: usize = 32;
/// Base62 characters of the CRC32 checksum (62^6 > 2^32).
pub const CHECKSUM_LEN: usize = 6;

/// `n` characters drawn uniformly from the base62 alphabet with a CSPRNG.
pub fn random_base62(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| BASE62[rng.random_range(0..BASE62.len())] as char)
        .collect()
}

/// `n` characters drawn uniformly from `alphabet` with a CSPRNG (codes people type, such as
/// the device flow's user codes).
pub fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// The CRC32 of `random`, written as exactly six base62 characters.
pub fn checksum(random: &str) -> String {
    String::from_utf8_lossy(&checksum_bytes(random)).into_owned()
}

/// The checksum without an allocation (checked on every presented key).
fn checksum_bytes(random: &str) -> [u8; CHECKSUM_LEN] {
    gatehouse_verify::key_format::checksum(random.as_bytes())
}

/// A secret in clear text: shown once to its owner, never logged (`Debug` redacts it).
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret(String);

impl PlainSecret {
    /// Generate a fresh secret with the given type prefix (e.g. `ses_`, `sk_live_`).
    pub fn generate(prefix: &str) -> Self {
        let random = random_base62(RANDOM_LEN);
        let sum = checksum(&random);
        PlainSecret(format!("{prefix}{random}{sum}"))
    }

    /// Wrap a secret received from a caller, after checking its prefix, length, alphabet and
    /// checksum. Nothing here touches storage.
    pub fn parse(prefix: &str, candidate: &str) -> Result<Self, SecretFormatError> {
        let body = candidate
            .strip_prefix(prefix)
            .ok_or(SecretFormatError::WrongPrefix)?;
        if body.len() != RANDOM_LEN + CHECKSUM_LEN {
            return Err(SecretFormatError::WrongLength);
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(SecretFormatError::BadCharacter);
        }
        let (random, sum) = body.split_at(RANDOM_LEN);
        if !constant_time_eq(&checksum_bytes(random), sum.as_bytes()) {
            return Err(SecretFormatError::BadChecksum);
        }
        Ok(PlainSecret(candidate.to_owned()))
    }

    /// The clear text, for the one place that shows or sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

/// Why a presented secret was refused before any lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretFormatError {
    #[error("the secret does not start with the expected prefix")]
    WrongPrefix,
    #[error("the secret has the wrong length")]
    WrongLength,
    #[error("the secret contains a character outside [A-Za-z0-9]")]
    BadCharacter,
    #[error("the secret's checksum does not match")]
    BadChecksum,
}

type HmacSha256 = Hmac<Sha256>;

/// The server-wide key for HMAC digests of secrets and for CSRF tokens, derived from the
/// configured server secret. `Debug` never shows it.
#[derive(Clone)]
pub struct Pepper {
    /// HMAC keyed once: cloning the keyed state saves re-hashing the key pads per digest.
    keyed: HmacSha256,
}

/// A 256-bit key for `purpose`, derived from the server secret (HMAC-SHA256 as a KDF), so that
/// digests, CSRF tokens and the encryption of signing keys never share key material.
pub fn derive_key(server_secret: &[u8], purpose: &str) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(server_secret).expect("HMAC accepts any key length");
    mac.update(b"gatehouse/v1/");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

/// A raw digest: the key of in-memory lookups (no hex encoding on the hot path).
pub type Digest = [u8; 32];

impl Pepper {
    /// Derive the pepper for `purpose` from the server secret, so that digests, CSRF tokens and
    /// (later) encryption keys never share key material.
    pub fn derive(server_secret: &[u8], purpose: &str) -> Self {
        let key = derive_key(server_secret, purpose);
        Pepper {
            keyed: HmacSha256::new_from_slice(&key).expect("HMAC accepts any key length"),
        }
    }

    /// The pepper of stored secret digests (keys, sessions, codes, tokens, client secrets).
    /// Every process that reads or writes a digest must use this one.
    pub fn for_digests(server_secret: &[u8]) -> Self {
        Self::derive(server_secret, "secret-digest")
    }

    /// The key of CSRF tokens.
    pub fn for_csrf(server_secret: &[u8]) -> Self {
        Self::derive(server_secret, "csrf")
    }

    /// HMAC-SHA256 of `parts`, each length-prefixed so that ("ab","c") and ("a","bc") never
    /// collide.
    pub fn digest_raw(&self, parts: &[&str]) -> Digest {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }

    /// Lower-case hex of `digest_raw`: the stored form.
    pub fn digest(&self, parts: &[&str]) -> String {
        hex(&self.digest_raw(parts))
    }

    /// The storage digest of a secret.
    pub fn digest_secret(&self, secret: &PlainSecret) -> String {
        self.digest(&[secret.expose()])
    }
}

/// The stored (hex) form of a raw digest.
pub fn digest_hex(digest: &Digest) -> String {
    hex(digest)
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(<redacted>)")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secret_has_prefix_fixed_length_and_valid_checksum() {
        let s = PlainSecret::generate("ses_");
        assert!(s.expose().starts_with("ses_"));
        assert_eq!(s.expose().len(), 4 + RANDOM_LEN + CHECKSUM_LEN);
        assert_eq!(PlainSecret::parse("ses_", s.expose()), Ok(s));
    }

    #[test]
    fn a_single_changed_character_fails_the_checksum() {
        let s = PlainSecret::generate("ses_");
        let mut chars: Vec<char> = s.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert_eq!(
            PlainSecret::parse("ses_", &typo),
            Err(SecretFormatError::BadChecksum)
        );
    }

    #[test]
    fn wrong_prefix_length_or_alphabet_is_refused() {
        let s = PlainSecret::generate("ses_");
        assert_eq!(
            PlainSecret::parse("sk_live_", s.expose()),
            Err(SecretFormatError::WrongPrefix)
        );
        assert_eq!(
            PlainSecret::parse("ses_", &s.expose()[..20]),
            Err(SecretFormatError::WrongLength)
        );
        let bad = format!("ses_{}", "-".repeat(RANDOM_LEN + CHECKSUM_LEN));
        assert_eq!(
            PlainSecret::parse("ses_", &bad),
            Err(SecretFormatError::BadCharacter)
        );
    }

    #[test]
    fn checksum_is_six_base62_characters() {
        for input in ["", "a", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"] {
            let sum = checksum(input);
            assert_eq!(sum.len(), CHECKSUM_LEN);
            assert!(sum.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_eq!(checksum(""), "000000", "crc32 of nothing is 0");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let s = PlainSecret::generate("ses_");
        assert!(!format!("{s:?}").contains(s.expose()));
        let p = Pepper::derive(b"server secret", "digest");
        assert_eq!(format!("{p:?}"), "Pepper(<redacted>)");
    }

    #[test]
    fn digests_depend_on_pepper_and_are_unambiguous() {
        let a = Pepper::derive(b"one", "digest");
        let b = Pepper::derive(b"two", "digest");
        let c = Pepper::derive(b"one", "csrf");
        assert_ne!(a.digest(&["x"]), b.digest(&["x"]));
        assert_ne!(a.digest(&["x"]), c.digest(&["x"]));
        assert_ne!(a.digest(&["ab", "c"]), a.digest(&["a", "bc"]));
        assert_eq!(a.digest(&["x"]).len(), 64);
    }
}
