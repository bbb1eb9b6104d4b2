//! What an API key looks like: `sk_live_`, `sk_test_`, `rk_live_` or `rk_test_`, then 32 random
//! base62 characters and a 6-character base62 CRC32 checksum of them — 46 characters in all.
//! A secret scanner finds them with `\b[sr]k_(live|test)_[0-9A-Za-z]{38}\b`. A key whose
//! shape or checksum is wrong is refused here, before any lookup.

use serde::Serialize;

use crate::secrets::{CHECKSUM_LEN, PlainSecret, RANDOM_LEN, SecretFormatError};

pub const PREFIX_LEN: usize = 8;
pub const KEY_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;
/// Characters of the key kept for display (`sk_live_Ab3d`).
pub const DISPLAY_PREFIX_LEN: usize = PREFIX_LEN + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Live,
    Test,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Full access of its owner.
    Secret,
    /// Only the scopes listed on the key.
    Restricted,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "live" => Some(Mode::Live),
            "test" => Some(Mode::Test),
            _ => None,
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Restricted => "restricted",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "secret" => Some(Kind::Secret),
            "restricted" => Some(Kind::Restricted),
            _ => None,
        }
    }
}

pub fn prefix(kind: Kind, mode: Mode) -> &'static str {
    match (kind, mode) {
        (Kind::Secret, Mode::Live) => "sk_live_",
        (Kind::Secret, Mode::Test) => "sk_test_",
        (Kind::Restricted, Mode::Live) => "rk_live_",
        (Kind::Restricted, Mode::Test) => "rk_test_",
    }
}

pub fn generate(kind: Kind, mode: Mode) -> PlainSecret {
    PlainSecret::generate(prefix(kind, mode))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("not a Gatehouse API key")]
    NotAKey,
    #[error("the API key's checksum does not match (a typo, or a truncated key)")]
    BadChecksum,
}

/// A presented key, checked for shape and checksum.
#[derive(Debug, Clone)]
pub struct PresentedKey {
    pub kind: Kind,
    pub mode: Mode,
    pub secret: PlainSecret,
}

pub fn parse(candidate: &str) -> Result<PresentedKey, KeyFormatError> {
    let (kind, mode) = match candidate.get(..PREFIX_LEN) {
        Some("sk_live_") => (Kind::Secret, Mode::Live),
        Some("sk_test_") => (Kind::Secret, Mode::Test),
        Some("rk_live_") => (Kind::Restricted, Mode::Live),
        Some("rk_test_") => (Kind::Restricted, Mode::Test),
        _ => return Err(KeyFormatError::NotAKey),
    };
    match PlainSecret::parse(prefix(kind, mode), candidate) {
        Ok(secret) => Ok(PresentedKey { kind, mode, secret }),
        Err(SecretFormatError::BadChecksum) => Err(KeyFormatError::BadChecksum),
        Err(_) => Err(KeyFormatError::NotAKey),
    }
}

/// `sk_live_Ab3d` and `wXyZ`: what lists show of a key.
pub fn display_parts(key: &PlainSecret) -> (String, String) {
    let s = key.expose();
    (
        s[..DISPLAY_PREFIX_LEN].to_owned(),
        s[s.len() - 4..].to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_fixed_length_and_the_documented_shape() {
        for (kind, mode) in [
            (Kind::Secret, Mode::Live),
            (Kind::Secret, Mode::Test),
            (Kind::Restricted, Mode::Live),
            (Kind::Restricted, Mode::Test),
        ] {
            let key = generate(kind, mode);
            let s = key.expose();
            assert_eq!(s.len(), KEY_LEN);
            assert_eq!(&s[..PREFIX_LEN], prefix(kind, mode));
            assert!(s[PREFIX_LEN..].bytes().all(|b| b.is_ascii_alphanumeric()));
            let parsed = parse(s).unwrap();
            assert_eq!((parsed.kind, parsed.mode), (kind, mode));
        }
    }

    #[test]
    fn a_mistyped_key_fails_its_checksum() {
        let key = generate(Kind::Secret, Mode::Live);
        let mut typo: Vec<u8> = key.expose().bytes().collect();
        typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
        assert_eq!(
            parse(std::str::from_utf8(&typo).unwrap()).unwrap_err(),
            KeyFormatError::BadChecksum
        );
    }

    #[test]
    fn other_strings_are_not_keys() {
        let key = generate(Kind::Secret, Mode::Live);
        for bad in [
            "",
            "sk_live_",
            "pk_live_abc",
            &key.expose()[..40],
            &format!("{}x", key.expose()),
            "eyJhbGciOiJFUzI1NiJ9.e30.sig",
        ] {
            assert_eq!(parse(bad).unwrap_err(), KeyFormatError::NotAKey, "{bad:?}");
        }
    }

    #[test]
    fn display_parts_show_prefix_and_last_four() {
        let key = generate(Kind::Restricted, Mode::Test);
        let (prefix, last4) = display_parts(&key);
        assert!(prefix.starts_with("rk_test_") && prefix.len() == 12);
        assert!(key.expose().ends_with(&last4));
    }
}
