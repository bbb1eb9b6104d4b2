//! What every handler shares: the pool, the settings and the keys derived from the server
//! secret. Nothing here is needed by another instance to be correct.

use std::sync::Arc;

use actix_web::web;

use crate::config::Settings;
use crate::db::{DbConn, DbError, DbPool};
use crate::secrets::Pepper;

#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    /// Key of the HMAC digests under which secrets are stored.
    pub digest_pepper: Pepper,
    /// Key of the CSRF tokens.
    pub csrf_pepper: Pepper,
}

impl AppState {
    pub fn new(pool: DbPool, settings: Settings) -> Self {
        let digest_pepper = Pepper::derive(&settings.secret.0, "secret-digest");
        let csrf_pepper = Pepper::derive(&settings.secret.0, "csrf");
        AppState {
            pool,
            settings: Arc::new(settings),
            digest_pepper,
            csrf_pepper,
        }
    }

    /// Run `work` with a pooled connection on the blocking thread pool, never on a worker.
    pub async fn db<T, F>(&self, work: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }
}
