//! Text identifiers generated in Rust: a type prefix, an underscore and 24 base62 characters,
//! so an id tells what it names and never collides in practice.
//!
//! Most ids are 24 random characters (~143 bits). The rows written on every sign-in, code
//! exchange and refresh (codes, refresh families and tokens, audit events) get **time-ordered**
//! ids instead: 8 characters of the wall clock's milliseconds, then 16 random ones (~95 bits).
//! A new row's id then sorts after the ids before it, so its primary-key entry (and every index
//! that holds the id, such as a token's family) lands on the last, already cached page of the
//! B-tree instead of a random page of a table with millions of rows. Such ids are never
//! secrets (the secrets these rows stand for are stored as digests) and their time is not a
//! fact anyone reads: the rows carry their own timestamps.

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

    /// Whether ids of this kind begin with their creation time (see the module's note).
    const fn time_ordered(self) -> bool {
        matches!(
            self,
            IdKind::AuthCode | IdKind::RefreshFamily | IdKind::RefreshToken | IdKind::AuditEvent
        )
    }
}

const ID_RANDOM_LEN: usize = 24;
/// Base62 digits of a time-ordered id's milliseconds: 62^8 ms is about 6,900 years.
const ID_TIME_LEN: usize = 8;

/// A new id of the given kind, e.g. `usr_4x9TQ…`.
pub fn new_id(kind: IdKind) -> String {
    let mut id = String::with_capacity(kind.prefix().len() + 1 + ID_RANDOM_LEN);
    id.push_str(kind.prefix());
    id.push('_');
    if kind.time_ordered() {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        push_base62_fixed(&mut id, millis, ID_TIME_LEN);
        id.push_str(&random_base62(ID_RANDOM_LEN - ID_TIME_LEN));
    } else {
        id.push_str(&random_base62(ID_RANDOM_LEN));
    }
    id
}

/// `value` as exactly `width` base62 digits, most significant first (so that byte order is
/// numeric order: the alphabet is in ASCII order).
fn push_base62_fixed(out: &mut String, mut value: u64, width: usize) {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut digits = [b'0'; 16];
    for slot in digits[..width].iter_mut().rev() {
        *slot = DIGITS[(value % 62) as usize];
        value /= 62;
    }
    out.extend(digits[..width].iter().map(|&b| b as char));
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

    #[test]
    fn high_volume_ids_sort_by_creation_time_and_keep_their_length() {
        let earlier = new_id(IdKind::RefreshToken);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = new_id(IdKind::RefreshToken);
        assert_eq!(earlier.len(), 4 + ID_RANDOM_LEN);
        assert_eq!(later.len(), 4 + ID_RANDOM_LEN);
        assert!(earlier < later, "{earlier} then {later}");
        // Made in the same millisecond, two ids still differ in their random part.
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| new_id(IdKind::AuditEvent)).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.starts_with("evt_")));
    }

    #[test]
    fn fixed_width_base62_is_in_numeric_order() {
        let text = |v: u64| {
            let mut s = String::new();
            push_base62_fixed(&mut s, v, ID_TIME_LEN);
            s
        };
        assert_eq!(text(0), "00000000");
        assert_eq!(text(61), "0000000z");
        assert_eq!(text(62), "00000010");
        let values = [
            0,
            9,
            10,
            35,
            36,
            61,
            62,
            3_843,
            1_764_000_000_000,
            62u64.pow(8) - 1,
        ];
        for pair in values.windows(2) {
            assert!(text(pair[0]) < text(pair[1]), "{pair:?}");
        }
        assert_eq!(text(62u64.pow(8) - 1), "zzzzzzzz");
    }
}
