//! User-chosen passwords: argon2id hashes, a length policy, a dummy hash so that an unknown
//! email costs the same time as a wrong password, and the gate that bounds how much argon2 work
//! (~15 ms and 19 MiB each) runs at once. Callers hash through the gate, on the blocking pool.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

use crate::config::Redacted;
use crate::secrets::random_base62;

pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longer inputs are refused before hashing: argon2 time grows with input size.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that satisfies the policy for new passwords. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct NewPassword(Redacted<String>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PasswordPolicyError(pub &'static str);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, PasswordPolicyError> {
        if raw.chars().count() < MIN_PASSWORD_CHARS {
            return Err(PasswordPolicyError(
                "The password must be at least 10 characters long",
            ));
        }
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordPolicyError(
                "The password must be at most 1024 bytes long",
            ));
        }
        Ok(NewPassword(Redacted(raw.to_owned())))
    }

    /// A random 20-character password for accounts created without one.
    pub fn generate() -> NewPassword {
        NewPassword(Redacted(random_base62(20)))
    }

    pub fn expose(&self) -> &str {
        &self.0.0
    }
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The PHC string of an argon2id hash of `password` with a fresh salt.
pub fn hash_password(password: &NewPassword) -> String {
    hash_raw(password.expose())
}

fn hash_raw(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters accepts any password up to the size limit")
        .to_string()
}

/// A hash of nothing anyone knows, verified when the account does not exist.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| hash_raw(&random_base62(32)));

/// Compute the dummy hash now, so the first login for an unknown email is not faster.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

/// Check `candidate` against `stored` (or against the dummy hash when there is no account),
/// taking about the same time either way.
pub fn verify_password(stored: Option<&str>, candidate: &str) -> bool {
    let candidate = if candidate.len() > MAX_PASSWORD_BYTES {
        ""
    } else {
        candidate
    };
    let (hash, real) = match stored {
        Some(h) => (h, true),
        None => (DUMMY_HASH.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        log::error!("a stored password hash is not a valid PHC string");
        return false;
    };
    let matches = hasher()
        .verify_password(candidate.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

/// Why the gate did not run a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    /// Every slot is taken and the queue is full: answer 503 with `Retry-After` rather than
    /// holding the request (and its memory) in a growing line.
    #[error("too many password checks at once")]
    Busy,
    #[error("the password check was cancelled")]
    Cancelled,
}

/// Seconds a request turned away by a full gate is told to wait.
pub const BUSY_RETRY_AFTER: u64 = 1;

/// Admits at most `concurrent` argon2 computations at once in this process and lets at most
/// `queue` more wait for a slot; it also counts the password verifications it ran.
pub struct PasswordGate {
    slots: Semaphore,
    waiting: AtomicUsize,
    queue: usize,
    verifications: AtomicU64,
}

/// A place in the queue, given back however the wait ends (also when the request is dropped).
struct QueuePlace<'a>(&'a AtomicUsize);

impl Drop for QueuePlace<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordGate {
    pub fn new(concurrent: usize, queue: usize) -> PasswordGate {
        PasswordGate {
            slots: Semaphore::new(concurrent.max(1)),
            waiting: AtomicUsize::new(0),
            queue,
            verifications: AtomicU64::new(0),
        }
    }

    /// How many password verifications (argon2 checks of a candidate) this gate has run.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Take a slot as a password check would, without running one (tests fill the gate).
    pub fn try_occupy(&self) -> Option<SemaphorePermit<'_>> {
        self.slots.try_acquire().ok()
    }

    async fn slot(&self) -> Result<SemaphorePermit<'_>, GateError> {
        if let Ok(permit) = self.slots.try_acquire() {
            return Ok(permit);
        }
        let place = QueuePlace(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue {
            return Err(GateError::Busy);
        }
        let permit = self.slots.acquire().await.map_err(|_| GateError::Busy)?;
        drop(place);
        Ok(permit)
    }

    /// Run `work` in a slot; `verifies`: it checks a candidate password (counted).
    async fn run<T: Send + 'static>(
        &self,
        verifies: bool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateError> {
        let _slot = self.slot().await?;
        if verifies {
            self.verifications.fetch_add(1, Ordering::Relaxed);
        }
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|_| GateError::Cancelled)
    }

    /// `verify_password` through the gate.
    pub async fn verify(
        &self,
        stored: Option<String>,
        candidate: String,
    ) -> Result<bool, GateError> {
        self.run(true, move || verify_password(stored.as_deref(), &candidate))
            .await
    }

    /// `hash_password` through the gate.
    pub async fn hash(&self, password: NewPassword) -> Result<String, GateError> {
        self.run(false, move || hash_password(&password)).await
    }

    /// Check `current` against `stored` and, only when it matches, hash `new`: one slot.
    pub async fn verify_then_hash(
        &self,
        stored: String,
        current: String,
        new: NewPassword,
    ) -> Result<Option<String>, GateError> {
        self.run(true, move || {
            verify_password(Some(&stored), &current).then(|| hash_password(&new))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_right_password() {
        let pw = NewPassword::parse("correct horse battery").unwrap();
        let hash = hash_password(&pw);
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(Some(&hash), "correct horse battery"));
        assert!(!verify_password(Some(&hash), "correct horse battery "));
        assert!(!verify_password(None, "correct horse battery"));
    }

    #[test]
    fn policy_bounds_length() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
        assert!(NewPassword::parse("ten chars!").is_ok());
        assert_eq!(NewPassword::generate().expose().len(), 20);
    }

    #[test]
    fn debug_redacts_passwords() {
        let pw = NewPassword::parse("a secret password").unwrap();
        assert!(!format!("{pw:?}").contains("secret"));
    }

    #[tokio::test]
    async fn a_full_gate_turns_away_beyond_its_queue() {
        let gate = PasswordGate::new(1, 0);
        let held = gate.try_occupy().expect("a free slot");
        assert_eq!(
            gate.verify(None, "x".into()).await,
            Err(GateError::Busy),
            "no slot and no queue"
        );
        drop(held);
        assert_eq!(gate.verify(None, "x".into()).await, Ok(false));
        assert_eq!(
            gate.verifications(),
            1,
            "the turned-away check is not counted"
        );
    }
}
