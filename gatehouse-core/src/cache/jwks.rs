//! JWK Sets fetched from apps' `jwks_uri`s (`clients::assertion`), verified as key sets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;
use jsonwebtoken::jwk::JwkSet;

/// How long a fetched set is used before it is fetched again.
pub const JWKS_FRESH: chrono::Duration = chrono::Duration::seconds(300);

/// JWK Sets fetched from apps' `jwks_uri`s, by URL, with when (the server's clock).
#[derive(Default)]
pub struct JwksCache {
    sets: Mutex<HashMap<String, (NaiveDateTime, Arc<JwkSet>)>>,
}

impl JwksCache {
    pub fn get(&self, url: &str) -> Option<(NaiveDateTime, Arc<JwkSet>)> {
        let sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        sets.get(url).cloned()
    }

    pub fn put(&self, url: &str, set: Arc<JwkSet>, now: NaiveDateTime) {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if sets.len() > 10_000 {
            sets.retain(|_, (at, _)| now - *at < JWKS_FRESH);
        }
        sets.insert(url.to_owned(), (now, set));
    }
}
