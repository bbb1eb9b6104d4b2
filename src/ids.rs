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
    /// A back-channel logout notice (and the `jti` of its logout token).
    LogoutNotice,
    RegistrationToken,
    Workspace,
    Invitation,
    PushedRequest,
    DeviceCode,
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
            IdKind::LogoutNotice => "bcl",
            IdKind::RegistrationToken => "rgt",
            IdKind::Workspace => "ws",
            IdKind::Invitation => "inv",
            IdKind::PushedRequest => "par",
            IdKind::DeviceCode => "dvc",
        }
    }
}

const ID_RANDOM_LEN: usize = 24;

/// A new random id of the given kind, e.g. `usr_4x9TQ…`.
pub fn new_id(kind: IdKind) -> String {
    format!("{}_{}", kind.prefix(), random_base62(ID_RANDOM_LEN))
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
        assert!(a[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
