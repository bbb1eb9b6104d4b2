//! The hot path's in-memory caches, in one room. Each holds **verified facts** — a row as it
//! was read, a signature as it was checked — never a decision: every consumer (`/v1`,
//! introspection, revocation, the token endpoint) applies its own checks on every hit. All are
//! per instance; none is needed by another instance to be correct.
//!
//! | cache | holds | key | bound | forgotten when |
//! |---|---|---|---|---|
//! | keys | what verification and introspection read of an API key row (`KeyFacts`), its owner, or "no such key" | HMAC digest of the key | 10,000, `ttl` | `ttl` passes (how late another instance sees a revocation); `invalidate_all` after any key, user or app change made here |
//! | tokens | an access token's claims after signature, `typ`, `iss`, audience ∈ ours, `exp` | the token (full compare) | 10,000 | the token expires; never invalidated: revocation is the denylist's, checked per use |
//! | clients | an OAuth client row | client id | 10,000, `ttl` | `ttl`; `invalidate_all` |
//! | users | a user row behind access tokens and codes, with its `/v1` view | user id | 10,000, `ttl` | `ttl`; `invalidate_all` |
//! | refusals | when a refused key use was last audited | key id + reason | 10,000 | a minute passes |
//!
//! `ttl` is `GATEHOUSE_KEY_CACHE_TTL` (1 s by default; 0 turns the TTL caches off).

pub mod fetches;
mod fresh;
pub mod issuances;
pub mod jwks;
mod keys;
mod refusals;
mod tokens;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::accounts::model::{User, UserView};
use crate::clients::Client;
use crate::jwt::VerifiedToken;
use crate::secrets::Digest;

pub use keys::{DigestHasher, KeyRecord};

use fresh::Fresh;
use keys::Entry;
use refusals::RefusalLog;
use tokens::TokenMap;

/// Most entries of the TTL caches; past this a cache starts over (a flood of unknown keys
/// cannot grow it). 10,000 verified keys (and as many users) keep a server with a million keys
/// within ~64 MB resident (at 50,000, a run over 100,000 different keys left it at 170 MB);
/// a deployment's busy keys are far fewer, and a miss costs one indexed read.
const MAX_ENTRIES: usize = 10_000;

type DigestMap<V> =
    std::collections::HashMap<Digest, V, std::hash::BuildHasherDefault<DigestHasher>>;

/// Every cache of one instance.
pub struct Caches {
    ttl: Duration,
    keys: Mutex<DigestMap<Entry>>,
    /// ECDSA verification costs more than the rest of a request, so a token is verified once.
    tokens: Mutex<TokenMap>,
    clients: Fresh<Arc<Client>>,
    users: Fresh<(Arc<User>, Arc<UserView>)>,
    refusals: RefusalLog,
}

impl Caches {
    pub fn new(ttl: Duration) -> Caches {
        Caches {
            ttl,
            keys: Mutex::new(DigestMap::default()),
            tokens: Mutex::new(TokenMap::default()),
            clients: Fresh::new(ttl, MAX_ENTRIES),
            users: Fresh::new(ttl, MAX_ENTRIES),
            refusals: RefusalLog::default(),
        }
    }

    /// `Some(entry)` when a fresh answer about this key digest is cached.
    pub fn get(&self, digest: &Digest) -> Option<Option<Arc<KeyRecord>>> {
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let found = keys
            .get(digest)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, record)| record.clone());
        drop(keys);
        crate::metrics::cache_lookup("api_keys", found.is_some());
        found
    }

    pub fn put(&self, digest: Digest, record: Option<Arc<KeyRecord>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() >= MAX_ENTRIES {
            keys.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if keys.len() >= MAX_ENTRIES {
                keys.clear();
            }
        }
        keys.insert(digest, (Instant::now(), record));
    }

    /// Whether this refused use should be written to the audit log (the first in a minute).
    pub fn should_audit_refusal(&self, key_id: &str, reason: &'static str) -> bool {
        self.refusals.should_audit(key_id, reason, MAX_ENTRIES)
    }

    /// Claims of a token verified before, if it has not expired (`now` in Unix seconds).
    pub fn get_token(&self, token: &str, now: i64) -> Option<Arc<VerifiedToken>> {
        let found = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token, now);
        crate::metrics::cache_lookup("access_tokens", found.is_some());
        found
    }

    pub fn put_token(&self, token: &str, verified: Arc<VerifiedToken>, now: i64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.put(token, verified, now);
    }

    pub fn get_client(&self, id: &str) -> Option<Arc<Client>> {
        let found = self.clients.get(id);
        crate::metrics::cache_lookup("clients", found.is_some());
        found
    }

    pub fn put_client(&self, client: Client) -> Arc<Client> {
        let client = Arc::new(client);
        self.clients.put(client.id.clone(), client.clone());
        client
    }

    /// A fresh cached user (for access tokens: one read per user per TTL, not per request).
    pub fn get_user(&self, id: &str) -> Option<(Arc<User>, Arc<UserView>)> {
        let found = self.users.get(id);
        crate::metrics::cache_lookup("users", found.is_some());
        found
    }

    pub fn put_user(&self, user: User) -> (Arc<User>, Arc<UserView>) {
        let view = Arc::new(user.view());
        let user = Arc::new(user);
        self.users
            .put(user.id.clone(), (user.clone(), view.clone()));
        (user, view)
    }

    /// Forget every row read from the database: after a revocation, roll, update, an app or a
    /// user changed here. Verified token signatures stay (they do not change).
    pub fn invalidate_all(&self) {
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.users.clear();
        self.clients.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::AccessClaims;
    use std::time::Duration;

    fn verified(sub: &str, exp: i64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken::new(AccessClaims {
            workspace: None,
            iss: "https://auth.test".into(),
            sub: sub.into(),
            aud: "https://auth.test".into(),
            client_id: "cli_1".into(),
            scope: "read:users".into(),
            iat: exp - 900,
            exp,
            jti: format!("jti_{sub}"),
            auth_time: None,
            key: None,
            act: None,
            cnf: None,
        }))
    }

    #[test]
    fn tokens_match_only_in_full_even_when_their_tails_agree() {
        let cache = Caches::new(Duration::from_secs(1));
        let tail = "S".repeat(43);
        let (a, b) = (format!("eyJa.one.{tail}"), format!("eyJb.two.{tail}"));
        cache.put_token(&a, verified("usr_a", 2_000), 1_000);
        assert_eq!(cache.get_token(&a, 1_000).unwrap().claims.sub, "usr_a");
        assert!(
            cache.get_token(&b, 1_000).is_none(),
            "same tail, other token"
        );
        cache.put_token(&b, verified("usr_b", 2_000), 1_000);
        assert_eq!(cache.get_token(&b, 1_000).unwrap().claims.sub, "usr_b");
        assert_eq!(cache.get_token(&a, 1_000).unwrap().claims.sub, "usr_a");
        assert!(cache.get_token(&a, 2_000).is_none(), "expired");
        assert!(cache.get_token(&a[..a.len() - 1], 1_000).is_none());
        cache.put_token(&a, verified("usr_a", 2_000), 1_000);
        let tokens = cache.tokens.lock().unwrap();
        assert_eq!(tokens.len, 2, "a token stored again replaces itself");
    }

    #[test]
    fn the_token_cache_stays_bounded() {
        let cache = Caches::new(Duration::from_secs(1));
        for i in 0..10_010 {
            cache.put_token(&format!("eyJ.x.{i:050}"), verified("usr", 2_000), 1_000);
        }
        assert!(cache.tokens.lock().unwrap().len <= 10_000);
    }
}
