//! Verified API keys by the HMAC digest of the key: the facts of the stored row and its owner
//! as read from the database (or "no such key"), never a decision — `api_keys::verify` applies
//! revocation, expiry, the owner's status and the allowlist on every hit.

use std::sync::Arc;
use std::time::Instant;

use ipnet::IpNet;

use chrono::NaiveDateTime;

use crate::accounts::model::{User, UserView};
use crate::api_keys::format::{Kind, Mode};
use crate::api_keys::model::{ApiKey, Status};
use crate::scopes::ScopeSet;

/// What the hot path and introspection read of a key's row — not its digest, display
/// fields, allowlists as text or usage (a full cache holds 10,000 of these; the whole row
/// would be half of each entry). Whatever changes a key reads the row again.
#[derive(Debug, Clone)]
pub struct KeyFacts {
    pub id: String,
    pub user_id: String,
    pub name: Box<str>,
    kind: Kind,
    mode: Mode,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub rate_limit_per_minute: Option<i64>,
    /// The workspace the key acts in.
    pub workspace_id: String,
    /// The grant its exchanged tokens name (the version of its limits).
    pub exchange_grant: Box<str>,
}

impl KeyFacts {
    fn of(key: ApiKey) -> KeyFacts {
        KeyFacts {
            exchange_grant: crate::api_keys::model::exchange_grant(&key).into_boxed_str(),
            kind: key.kind(),
            mode: key.mode(),
            id: key.id,
            user_id: key.user_id,
            name: key.name.into_boxed_str(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            revoked_at: key.revoked_at,
            rate_limit_per_minute: key.rate_limit_per_minute,
            workspace_id: key.workspace_id,
        }
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// As `ApiKey::status`.
    pub fn status(&self, now: NaiveDateTime) -> Status {
        crate::api_keys::model::status_of(self.revoked_at, self.expires_at, now)
    }
}

/// A key as the hot path needs it, with its owner and parsed scopes and allowlist.
#[derive(Debug)]
pub struct KeyRecord {
    pub key: KeyFacts,
    pub user: Arc<User>,
    /// The owner as `/v1` shows them, rendered once per cache fill rather than per request.
    pub user_view: Arc<UserView>,
    pub scopes: Arc<ScopeSet>,
    pub nets: Vec<IpNet>,
    pub restrictions: gatehouse_verify::restrictions::Restrictions,
    /// The key's workspace with its owner's role there (`None`: no longer a member).
    pub workspace: Option<crate::workspaces::roles::WorkspaceClaim>,
}

impl KeyRecord {
    /// The key's holder as the policy weighs it: the owner's role, bounded by the key.
    pub fn caller(&self) -> crate::policy::Caller<'_> {
        use crate::policy::{Bound, Caller, KeyBounds, Role};
        let bounds = KeyBounds {
            key_id: &self.key.id,
            kind: self.key.kind(),
            mode: self.key.mode(),
            scopes: &self.scopes,
            expires_at: self.key.expires_at,
            nets: &self.nets,
            rate_limit_per_minute: self.key.rate_limit_per_minute,
            restrictions: &self.restrictions,
        };
        let workspace = (self.key.workspace_id.as_str(), self.in_personal_workspace());
        Caller::bound(
            Some(&self.user.id),
            Role::of(self.user.is_admin()),
            Bound::Key(bounds),
            Some(workspace),
        )
    }

    /// The key acts in its owner's personal workspace (it speaks for the account).
    pub fn in_personal_workspace(&self) -> bool {
        self.workspace
            .as_ref()
            .is_some_and(crate::workspaces::roles::WorkspaceClaim::is_personal)
    }

    pub fn new(
        key: ApiKey,
        user: User,
        workspace: Option<crate::workspaces::roles::WorkspaceClaim>,
    ) -> KeyRecord {
        let scopes = Arc::new(key.scope_set());
        let nets = key.allowed_nets();
        let restrictions = key.restrictions();
        KeyRecord {
            restrictions,
            key: KeyFacts::of(key),
            user_view: Arc::new(user.view()),
            user: Arc::new(user),
            scopes,
            nets,
            workspace,
        }
    }
}

/// When an answer was cached, and the answer (`None`: the digest matches no key).
pub(super) type Entry = (Instant, Option<Arc<KeyRecord>>);

/// Hashes a digest by its first eight bytes. Digests are HMAC outputs under a secret key,
/// so nobody can choose colliding ones, and SipHash over 32 bytes would be wasted work.
#[derive(Default)]
pub struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}
