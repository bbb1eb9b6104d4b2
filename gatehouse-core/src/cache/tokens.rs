//! Verified access tokens: a token whose signature, `typ`, issuer, one of this server's
//! audiences and expiry were checked once, with its claims. Never a decision: `/v1` checks the
//! audience is its own, the denylist and the user on every hit; introspection checks who asks.

use std::collections::HashMap;
use std::sync::Arc;

use super::keys::DigestHasher;
use crate::jwt::VerifiedToken;

/// Most verified access tokens kept (each entry holds its token, ~0.5 kB).
const MAX_TOKENS: usize = 10_000;

/// Verified access tokens, found by the token itself. Buckets are chosen by a keyed SipHash of
/// the token's last 43 characters (part of its signature: unpredictable, and unknown to anyone
/// who has not seen the token), and an entry matches only on the whole token, compared in
/// full. Cheaper than a digest of the whole ~550-byte token, which the request would pay on
/// every call.
#[derive(Default)]
pub(super) struct TokenMap {
    hasher: std::hash::RandomState,
    buckets: HashMap<u64, Vec<TokenEntry>, std::hash::BuildHasherDefault<DigestHasher>>,
    pub(super) len: usize,
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

    pub(super) fn get(&self, token: &str, now: i64) -> Option<Arc<VerifiedToken>> {
        self.buckets
            .get(&self.bucket_of(token))?
            .iter()
            .find(|e| *e.token == *token)
            .filter(|e| e.exp > now)
            .map(|e| e.verified.clone())
    }

    pub(super) fn put(&mut self, token: &str, verified: Arc<VerifiedToken>, now: i64) {
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
