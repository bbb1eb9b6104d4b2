//! Text identifiers generated in Rust: a type prefix, an underscore and 24 base62 characters
//! (~143 bits), so an id tells what it names and never collides in practice.

use crate::secrets::random_base62;

/// The kinds of rows that carry a prefixed id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    User,
    Session,
    LoginFailure,
    Request,
    ApiKey,
    AuditEvent,
    Client,
    Consent,
    AuthCode,
    RefreshFamily,
    RefreshToken,
    TokenId,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::User => "usr",
            IdKind::Session => "ses",
            IdKind::LoginFailure => "lfl",
            IdKind::Request => "req",
            IdKind::ApiKey => "key",
            IdKind::AuditEvent => "evt",
            IdKind::Client => "cli",
            IdKind::Consent => "cns",
            IdKind::AuthCode => "acd",
            IdKind::RefreshFamily => "fam",
            IdKind::RefreshToken => "rtk",
            IdKind::TokenId => "jti",
        }
    }
}

const ID_RANDOM_LEN: usize = 24;

/// A new random id of the given kind, e.g. `usr_4x9TQ…`.
pub fn new_id(kind: IdKind) -> String {
    format!("{}_{}", kind.prefix(), random_base62(ID_RANDOM_LEN))
}

/// True when `s` looks like an id of `kind` (right prefix, right length, base62 body).
pub fn is_id_of(kind: IdKind, s: &str) -> bool {
    s.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| {
            body.len() == ID_RANDOM_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_type_prefix_and_are_unique() {
        let a = new_id(IdKind::User);
        let b = new_id(IdKind::User);
        assert!(a.starts_with("usr_"));
        assert_eq!(a.len(), 4 + ID_RANDOM_LEN);
        assert_ne!(a, b);
        assert!(is_id_of(IdKind::User, &a));
    }

    #[test]
    fn ids_of_another_kind_or_shape_are_refused() {
        let user = new_id(IdKind::User);
        assert!(!is_id_of(IdKind::Session, &user));
        assert!(!is_id_of(IdKind::User, "usr_short"));
        assert!(!is_id_of(IdKind::User, "usr_aaaaaaaaaaaaaaaaaaaaaaa!"));
        assert!(!is_id_of(IdKind::User, ""));
    }
}
