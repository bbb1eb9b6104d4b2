//! What the hot path keeps in memory: verified keys by digest (for at most `ttl`, the bound on
//! how late another instance sees a revocation) and last-used times waiting to be written in
//! a batch. Both are per instance; neither is needed by another instance to be correct.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use ipnet::IpNet;

use super::model::ApiKey;
use crate::accounts::model::{User, UserView};
use crate::jwt::VerifiedToken;
use crate::oauth::clients::Client;
use crate::scopes::ScopeSet;
use crate::secrets::Digest;

/// A key as the hot path needs it, with its owner and parsed scopes and allowlist.
#[derive(Debug)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub user: Arc<User>,
    /// The owner as `/v1` shows them, rendered once per cache fill rather than per request.
    pub user_view: Arc<UserView>,
    pub scopes: Arc<ScopeSet>,
    pub nets: Vec<IpNet>,
}

impl KeyRecord {
    pub fn new(key: ApiKey, user: User) -> KeyRecord {
        let scopes = Arc::new(key.scope_set());
        let nets = key.allowed_nets();
        KeyRecord {
            key,
            user_view: Arc::new(user.view()),
            user: Arc::new(user),
            scopes,
            nets,
        }
    }
}

/// Most entries kept; past this the cache starts over (a flood of unknown keys cannot grow it).
const MAX_ENTRIES: usize = 50_000;

/// When an answer was cached, and the answer (`None`: the digest matches no key).
type Entry = (Instant, Option<Arc<KeyRecord>>);

/// A user as access-token requests need them, and when they were read.
type CachedUser = (Instant, Arc<User>, Arc<UserView>);

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

type DigestMap<V> = HashMap<Digest, V, std::hash::BuildHasherDefault<DigestHasher>>;

/// Most verified access tokens kept (each entry holds its token, ~0.5 kB).
const MAX_TOKENS: usize = 10_000;

/// Verified access tokens, found by the token itself. Buckets are chosen by a keyed SipHash of
/// the token's last 43 characters (part of its signature: unpredictable, and unknown to anyone
/// who has not seen the token), and an entry matches only on the whole token, compared in
/// full. Cheaper than a digest of the whole ~550-byte token, which the request would pay on
/// every call.
#[derive(Default)]
struct TokenMap {
    hasher: std::hash::RandomState,
    buckets: HashMap<u64, Vec<TokenEntry>, std::hash::BuildHasherDefault<DigestHasher>>,
    len: usize,
}

struct TokenEntry {
    token: Box<str>,
    exp: i64,
    verified: Arc<VerifiedToken>,
}

impl TokenMap {
    fn bucket_of(&self, token: &str) -> u64 {
        use std::hash::BuildHasher;
        let tail = &token.as_bytes()[token.len().saturating_sub(43)..];
        self.hasher.hash_one(tail)
    }

    fn get(&self, token: &str, now: i64) -> Option<Arc<VerifiedToken>> {
        self.buckets
            .get(&self.bucket_of(token))?
            .iter()
            .find(|e| *e.token == *token)
            .filter(|e| e.exp > now)
            .map(|e| e.verified.clone())
    }

    fn put(&mut self, token: &str, verified: Arc<VerifiedToken>, now: i64) {
        if self.len >= MAX_TOKENS {
            for bucket in self.buckets.values_mut() {
                bucket.retain(|e| e.exp > now);
            }
            self.buckets.retain(|_, b| !b.is_empty());
            self.len = self.buckets.values().map(Vec::len).sum();
            if self.len >= MAX_TOKENS {
                self.buckets.clear();
                self.len = 0;
            }
        }
        let bucket = self.bucket_of(token);
        let entries = self.buckets.entry(bucket).or_default();
        let before = entries.len();
        entries.retain(|e| *e.token != *token);
        let replaced = before - entries.len();
        entries.push(TokenEntry {
            token: token.into(),
            exp: verified.claims.exp,
            verified,
        });
        self.len = self.len - replaced + 1;
    }
}

/// Verified keys by digest.
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<DigestMap<Entry>>,
    /// Access tokens already verified, until they expire: ECDSA verification costs more than
    /// the rest of a request, so a token is verified once, not per request.
    tokens: Mutex<TokenMap>,
    /// OAuth clients by id, with the same time-to-live as keys (a disabled client or a new
    /// secret is seen by other instances within it).
    clients: Mutex<HashMap<String, (Instant, Arc<Client>)>>,
    /// Users behind access tokens, by id, with the same time-to-live as keys.
    users: Mutex<HashMap<String, CachedUser>>,
    /// When a refused use of a key was last audited, per key and reason.
    refusals_audited: Mutex<HashMap<String, Vec<(&'static str, Instant)>>>,
}

/// A key hammered after its revocation is audited once per this period, not once per request.
const REFUSAL_AUDIT_EVERY: Duration = Duration::from_secs(60);

impl KeyCache {
    pub fn new(ttl: Duration) -> KeyCache {
        KeyCache {
            ttl,
            entries: Mutex::new(DigestMap::default()),
            refusals_audited: Mutex::new(HashMap::new()),
            users: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            tokens: Mutex::new(TokenMap::default()),
        }
    }

    /// `Some(entry)` when a fresh answer is cached.
    pub fn get(&self, digest: &Digest) -> Option<Option<Arc<KeyRecord>>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(digest)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, record)| record.clone())
    }

    pub fn put(&self, digest: Digest, record: Option<Arc<KeyRecord>>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(digest, (Instant::now(), record));
    }

    /// Whether this refused use should be written to the audit log (the first in a minute).
    pub fn should_audit_refusal(&self, key_id: &str, reason: &'static str) -> bool {
        let mut seen = self
            .refusals_audited
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_ENTRIES {
            seen.retain(|_, reasons| {
                reasons
                    .iter()
                    .any(|(_, at)| at.elapsed() < REFUSAL_AUDIT_EVERY)
            });
        }
        // Looked up by &str: a refused request allocates nothing here.
        if let Some(reasons) = seen.get_mut(key_id) {
            return match reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, at)) if at.elapsed() < REFUSAL_AUDIT_EVERY => false,
                Some((_, at)) => {
                    *at = Instant::now();
                    true
                }
                None => {
                    reasons.push((reason, Instant::now()));
                    true
                }
            };
        }
        seen.insert(key_id.to_owned(), vec![(reason, Instant::now())]);
        true
    }

    /// Claims of a token verified before, if it has not expired (`now` in Unix seconds).
    pub fn get_token(&self, token: &str, now: i64) -> Option<Arc<VerifiedToken>> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.get(token, now)
    }

    pub fn put_token(&self, token: &str, verified: Arc<VerifiedToken>, now: i64) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens.put(token, verified, now);
    }

    pub fn get_client(&self, id: &str) -> Option<Arc<Client>> {
        let clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, c)| c.clone())
    }

    pub fn put_client(&self, client: Client) -> Arc<Client> {
        let client = Arc::new(client);
        if !self.ttl.is_zero() {
            let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
            if clients.len() >= MAX_ENTRIES {
                clients.clear();
            }
            clients.insert(client.id.clone(), (Instant::now(), client.clone()));
        }
        client
    }

    /// A fresh cached user (for access tokens: one read per user per TTL, not per request).
    pub fn get_user(&self, id: &str) -> Option<(Arc<User>, Arc<UserView>)> {
        let users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        users
            .get(id)
            .filter(|(at, _, _)| at.elapsed() < self.ttl)
            .map(|(_, u, v)| (u.clone(), v.clone()))
    }

    pub fn put_user(&self, user: User) -> (Arc<User>, Arc<UserView>) {
        let view = Arc::new(user.view());
        let user = Arc::new(user);
        if !self.ttl.is_zero() {
            let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
            if users.len() >= MAX_ENTRIES {
                users.clear();
            }
            users.insert(
                user.id.clone(),
                (Instant::now(), user.clone(), view.clone()),
            );
        }
        (user, view)
    }

    /// Forget everything: after a revocation, roll, update or a user being disabled here.
    pub fn invalidate_all(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.users.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.clients
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Last-used times by key id, flushed to the database in batches.
#[derive(Default)]
pub struct UsageBuffer {
    pending: Mutex<HashMap<String, (NaiveDateTime, Option<IpAddr>)>>,
}

impl UsageBuffer {
    pub fn record(&self, key_id: &str, at: NaiveDateTime, ip: Option<IpAddr>) {
        let ip = ip.map(|i| i.to_canonical());
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(key_id) {
            Some(entry) if entry.0 >= at => {}
            Some(entry) => *entry = (at, ip),
            None => {
                pending.insert(key_id.to_owned(), (at, ip));
            }
        }
    }

    /// Take everything recorded so far.
    pub fn drain(&self) -> Vec<(String, NaiveDateTime, String)> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .drain()
            .map(|(id, (at, ip))| (id, at, ip.map(|i| i.to_string()).unwrap_or_default()))
            .collect()
    }

    /// Put back a batch whose write failed, so it is tried again at the next flush.
    pub fn restore(&self, batch: Vec<(String, NaiveDateTime, String)>) {
        for (id, at, ip) in batch {
            self.record(&id, at, ip.parse().ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::AccessClaims;

    fn verified(sub: &str, exp: i64) -> Arc<VerifiedToken> {
        Arc::new(VerifiedToken::new(AccessClaims {
            iss: "https://auth.test".into(),
            sub: sub.into(),
            aud: "https://auth.test".into(),
            client_id: "cli_1".into(),
            scope: "read:users".into(),
            iat: exp - 900,
            exp,
            jti: format!("jti_{sub}"),
            auth_time: None,
        }))
    }

    #[test]
    fn tokens_match_only_in_full_even_when_their_tails_agree() {
        let cache = KeyCache::new(Duration::from_secs(1));
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
        let cache = KeyCache::new(Duration::from_secs(1));
        for i in 0..MAX_TOKENS + 10 {
            cache.put_token(&format!("eyJ.x.{i:050}"), verified("usr", 2_000), 1_000);
        }
        assert!(cache.tokens.lock().unwrap().len <= MAX_TOKENS);
    }
}
