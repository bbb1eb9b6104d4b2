//! API keys: the format, issuing, verifying (the hot path; its cache is in `cache/`), rolling,
//! revoking, last-used bookkeeping, and the `/v1/api-keys` routes and settings pages.

pub mod format;
pub mod model;
pub use gatehouse_verify::restrictions;
pub mod service;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use ipnet::IpNet;

use self::format::{KeyFormatError, Kind, Mode};
use self::model::{NewKey, Status};
use crate::accounts::model::User;
use crate::audit::{self, Action, NewEvent};
use crate::cache::KeyRecord;
use crate::config::KeyPolicy;
use crate::db::DbError;
use crate::errors::ErrorCode;
use crate::policy::attenuate::{self, Bounds};
use crate::scopes::ScopeSet;
use crate::scopes::registry::RegisteredScope;
use crate::state::AppState;

/// Why an existing key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Revoked,
    Expired,
    UserDisabled,
    IpNotAllowed,
    ReferrerNotAllowed,
    EndpointNotAllowed,
}

impl Refusal {
    fn action(self) -> Action {
        match self {
            Refusal::Revoked => Action::KeyRefusedRevoked,
            Refusal::Expired => Action::KeyRefusedExpired,
            Refusal::UserDisabled => Action::KeyRefusedUserDisabled,
            Refusal::IpNotAllowed => Action::KeyRefusedIp,
            Refusal::ReferrerNotAllowed => Action::KeyRefusedReferrer,
            Refusal::EndpointNotAllowed => Action::KeyRefusedEndpoint,
        }
    }
}

pub enum Verified {
    Valid(Arc<KeyRecord>),
    NotAKey,
    BadChecksum,
    Unknown,
    Refused(Arc<KeyRecord>, Refusal),
}

impl Verified {
    /// The outcome as the metrics label it.
    pub fn outcome(&self) -> &'static str {
        match self {
            Verified::Valid(_) => "valid",
            Verified::NotAKey => "malformed",
            Verified::BadChecksum => "bad_checksum",
            Verified::Unknown => "unknown",
            Verified::Refused(_, Refusal::Revoked) => "revoked",
            Verified::Refused(_, Refusal::Expired) => "expired",
            Verified::Refused(_, Refusal::UserDisabled) => "user_disabled",
            Verified::Refused(_, Refusal::IpNotAllowed) => "ip_not_allowed",
            Verified::Refused(_, Refusal::ReferrerNotAllowed) => "referrer_not_allowed",
            Verified::Refused(_, Refusal::EndpointNotAllowed) => "endpoint_not_allowed",
        }
    }
}

/// Who presents a key: a request (its address, origin and endpoint are checked against the
/// key's lists), or introspection (a resource server asks about a key its own caller sent: the
/// lists are the key's, to be reported, not the asker's request to be checked).
#[derive(Debug, Clone, Copy)]
pub enum KeyUse<'a> {
    Request(Seen<'a>),
    Introspection,
}

/// What a request shows of itself, for the key's restrictions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen<'a> {
    pub ip: Option<IpAddr>,
    /// The raw `Origin` and `Referer` headers.
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub method: &'a str,
    /// The raw (still percent-encoded) path.
    pub path: &'a str,
}

impl Seen<'_> {
    /// The first of the key's restrictions this request breaks.
    fn refusal(&self, record: &KeyRecord) -> Option<Refusal> {
        if !model::ip_allowed(&record.nets, self.ip) {
            return Some(Refusal::IpNotAllowed);
        }
        let r = &record.restrictions;
        if !r.referrers.is_empty() {
            let origin = restrictions::Restrictions::request_origin(self.origin, self.referer);
            if !r.referrer_allowed(origin.as_deref()) {
                return Some(Refusal::ReferrerNotAllowed);
            }
        }
        if !r.endpoint_allowed(self.method, self.path) {
            return Some(Refusal::EndpointNotAllowed);
        }
        None
    }
}

/// The hot path: shape and checksum (no I/O) → HMAC digest → cache or one indexed query →
/// revoked / expired / owner disabled / IP checks. A valid use is recorded in memory only.
pub async fn verify(
    state: &AppState,
    presented: &str,
    used: KeyUse<'_>,
) -> Result<Verified, DbError> {
    let verified = verify_unrecorded(state, presented, used).await?;
    crate::metrics::credential_checked(crate::metrics::Checked::ApiKey, verified.outcome());
    Ok(verified)
}

async fn verify_unrecorded(
    state: &AppState,
    presented: &str,
    used: KeyUse<'_>,
) -> Result<Verified, DbError> {
    let ip = match used {
        KeyUse::Request(seen) => seen.ip,
        KeyUse::Introspection => None,
    };
    let key = match format::parse(presented) {
        Ok(k) => k,
        Err(KeyFormatError::NotAKey) => return Ok(Verified::NotAKey),
        Err(KeyFormatError::BadChecksum) => return Ok(Verified::BadChecksum),
    };
    let digest = state.digest_pepper.digest_raw(&[key.secret.expose()]);
    let record = match state.key_cache.get(&digest) {
        Some(cached) => cached,
        None => {
            let lookup_digest = crate::secrets::digest_hex(&digest);
            let found = state
                .db(move |c| model::find_by_digest(c, &lookup_digest))
                .await?;
            let record = found.map(|(k, u, w)| Arc::new(KeyRecord::new(k, u, w)));
            state.key_cache.put(digest, record.clone());
            record
        }
    };
    let Some(record) = record else {
        return Ok(Verified::Unknown);
    };
    let now = state.now();
    let refusal = match record.key.status(now) {
        Status::Revoked => Some(Refusal::Revoked),
        Status::Expired => Some(Refusal::Expired),
        Status::Active if record.user.is_disabled() => Some(Refusal::UserDisabled),
        Status::Active => match used {
            KeyUse::Request(seen) => seen.refusal(&record),
            KeyUse::Introspection => None,
        },
    };
    if let Some(refusal) = refusal {
        audit_refusal(state, &record, refusal, ip);
        return Ok(Verified::Refused(record, refusal));
    }
    if state.usage.record(&record.key.id, now, ip) {
        // A burst of many different keys: write now instead of at the next periodic flush.
        let (state, background) = (state.clone(), state.background.clone());
        background.spawn(async move {
            if let Err(e) = flush_usage(&state).await {
                log::warn!("could not write API keys' last-used times (will retry): {e}");
            }
            state.usage.flushed();
        });
    }
    Ok(Verified::Valid(record))
}

/// Refused uses of an existing key go to the audit log, written off the request's path, at
/// most once a minute per key and reason (a revoked key in a retry loop is one event, not a
/// write per request).
fn audit_refusal(state: &AppState, record: &KeyRecord, refusal: Refusal, ip: Option<IpAddr>) {
    if !state
        .key_cache
        .should_audit_refusal(&record.key.id, refusal.action().as_str())
    {
        return;
    }
    log::info!("API key {} refused: {:?}", record.key.id, refusal);
    let mut event = NewEvent::new(refusal.action());
    event.key_id = Some(record.key.id.clone());
    event.subject_user_id = Some(record.user.id.clone());
    event.ip = ip.map(|i| i.to_canonical().to_string());
    let (state, background) = (state.clone(), state.background.clone());
    background.spawn(async move {
        let now = state.now();
        if let Err(e) = state.db(move |c| audit::record(c, &event, now)).await {
            log::warn!("could not record a refused key use: {e}");
        }
    });
}

/// Write the buffered last-used times now.
pub async fn flush_usage(state: &AppState) -> Result<usize, DbError> {
    let batch = state.usage.drain();
    let count = batch.len();
    if count == 0 {
        return Ok(0);
    }
    let retry = batch.clone();
    match state.db(move |c| model::record_usage(c, &batch)).await {
        Ok(()) => Ok(count),
        Err(e) => {
            state.usage.restore(retry);
            Err(e)
        }
    }
}

/// When a new key expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    Default,
    In(Duration),
    At(NaiveDateTime),
    Never,
}

/// The longest duration any request may name. Callers add durations to the current time, and
/// chrono panics past its range (a year near 262000): a bound far below that keeps every sum safe.
pub const MAX_DURATION: Duration = Duration::days(365 * 1000);

/// Parse `90d`, `12h`, `30m`, `45s`, `1y`, or a number of seconds; at most `MAX_DURATION`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = digits.parse().ok().filter(|n| *n > 0 && *n < 100_000_000)?;
    let unit_seconds: i64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "w" => 7 * 24 * 60 * 60,
        "y" => 365 * 24 * 60 * 60,
        _ => return None,
    };
    duration_from_seconds(n.checked_mul(unit_seconds)?)
}

/// A positive number of seconds (a JSON number in a request) as a duration up to
/// `MAX_DURATION`; `None` otherwise.
pub fn duration_from_seconds(seconds: i64) -> Option<Duration> {
    (seconds > 0 && seconds <= MAX_DURATION.num_seconds()).then(|| Duration::seconds(seconds))
}

/// A refused key request: which field, which code, what to tell the person.
#[derive(Debug, Clone)]
pub struct KeyInputError {
    pub code: ErrorCode,
    pub field: Option<&'static str>,
    pub message: String,
}

impl KeyInputError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        KeyInputError {
            code,
            field: None,
            message: message.into(),
        }
    }

    pub fn field(field: &'static str, message: impl Into<String>) -> Self {
        KeyInputError {
            code: ErrorCode::Validation,
            field: Some(field),
            message: message.into(),
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        KeyInputError {
            code: ErrorCode::Forbidden,
            field: None,
            message: message.into(),
        }
    }
}

/// Why a key operation did not happen: a refusal the caller can read, or a failure of ours.
#[derive(Debug)]
pub enum KeyError {
    Refused(KeyInputError),
    Db(crate::db::DbError),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Refused(e) => write!(f, "{}: {}", e.code.as_str(), e.message),
            KeyError::Db(e) => write!(f, "{e}"),
        }
    }
}

impl From<KeyInputError> for KeyError {
    fn from(e: KeyInputError) -> Self {
        KeyError::Refused(e)
    }
}

impl From<crate::db::DbError> for KeyError {
    fn from(e: crate::db::DbError) -> Self {
        KeyError::Db(e)
    }
}

/// A request for a new key, before validation.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub name: String,
    pub description: String,
    pub mode: Mode,
    /// `Some` makes a restricted key with exactly these scopes.
    pub scopes: Option<ScopeSet>,
    pub allowed_ips: Vec<IpNet>,
    pub restrictions: restrictions::Restrictions,
    pub expiry: Expiry,
    pub rate_limit_per_minute: Option<i64>,
    /// The workspace the key will act in (resolved and weighed by the policy beforehand).
    pub workspace_id: String,
}

pub fn validate_name(raw: &str) -> Result<String, KeyInputError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(KeyInputError::field("name", "Give the key a name"));
    }
    if name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(KeyInputError::field(
            "name",
            "The name must be at most 100 characters, without control characters",
        ));
    }
    Ok(name.to_owned())
}

pub fn validate_description(raw: &str) -> Result<String, KeyInputError> {
    let d = raw.trim();
    if d.chars().count() > 500 || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(KeyInputError::field(
            "description",
            "The description must be at most 500 characters",
        ));
    }
    Ok(d.to_owned())
}

fn expiry_time(
    expiry: Expiry,
    policy: &KeyPolicy,
    now: NaiveDateTime,
) -> Result<Option<NaiveDateTime>, KeyInputError> {
    let latest = now + policy.max_lifetime;
    match expiry {
        Expiry::Default => Ok(Some(now + policy.default_lifetime.min(policy.max_lifetime))),
        Expiry::In(d) if d <= Duration::zero() => Err(KeyInputError::field(
            "expires_in",
            "The lifetime must be positive",
        )),
        Expiry::In(d) if now + d > latest => Err(KeyInputError::field(
            "expires_in",
            format!(
                "Keys may live at most {} days",
                policy.max_lifetime.num_days()
            ),
        )),
        Expiry::In(d) => Ok(Some(now + d)),
        Expiry::At(t) if t <= now => Err(KeyInputError::field(
            "expires_at",
            "The expiry must be in the future",
        )),
        Expiry::At(t) if t > latest => Err(KeyInputError::field(
            "expires_at",
            format!(
                "Keys may live at most {} days",
                policy.max_lifetime.num_days()
            ),
        )),
        Expiry::At(t) => Ok(Some(t)),
        Expiry::Never if policy.allow_no_expiry => Ok(None),
        Expiry::Never => Err(KeyInputError::field(
            "expires_in",
            "Keys without expiry are not allowed on this server",
        )),
    }
}

/// A key's own rate limit within the server's, and at most 100 allowed addresses or blocks.
fn check_limits(request: &KeyRequest, policy: &KeyPolicy) -> Result<(), KeyInputError> {
    if let Some(limit) = request.rate_limit_per_minute
        && !(1..=i64::from(policy.rate_limit_per_minute)).contains(&limit)
    {
        return Err(KeyInputError::field(
            "rate_limit_per_minute",
            format!(
                "The rate limit is between 1 and this server's {} per minute",
                policy.rate_limit_per_minute
            ),
        ));
    }
    if request.allowed_ips.len() > 100 {
        return Err(KeyInputError::field(
            "allowed_ips",
            "At most 100 addresses or blocks",
        ));
    }
    Ok(())
}

/// A restricted key's scopes: at least one, every one known, every one its owner may hold.
fn check_restricted_scopes(
    scopes: &ScopeSet,
    owner: &User,
    registry: &[RegisteredScope],
) -> Result<(), KeyInputError> {
    if scopes.is_empty() {
        return Err(KeyInputError::field(
            "scopes",
            "A restricted key needs at least one scope",
        ));
    }
    let known: ScopeSet = registry
        .iter()
        .filter_map(|s| crate::scopes::Scope::parse(&s.name).ok())
        .collect();
    if let Some(unknown) = scopes.difference(&known).first() {
        return Err(KeyInputError::field(
            "scopes",
            format!("Unknown scope {unknown}"),
        ));
    }
    let holdable =
        crate::policy::grantable::key_may_hold(crate::policy::Role::of(owner.is_admin()), registry);
    if let Some(denied) = scopes.difference(&holdable).first() {
        return Err(KeyInputError::forbidden(format!(
            "The key's owner may not hold the scope {denied}"
        )));
    }
    Ok(())
}

/// Check a key request against the registry, the owner's role, the bounds of the caller's own
/// credential and the server's policy, and turn it into a row to insert.
pub fn build_new_key(
    request: &KeyRequest,
    owner: &User,
    issued_by: &str,
    bounds: &Bounds,
    registry: &[RegisteredScope],
    policy: &KeyPolicy,
    now: NaiveDateTime,
) -> Result<NewKey, KeyInputError> {
    let name = validate_name(&request.name)?;
    let description = validate_description(&request.description)?;
    if owner.is_disabled() {
        return Err(KeyInputError::field("user", "This user is disabled"));
    }
    let kind = if request.scopes.is_some() {
        Kind::Restricted
    } else {
        Kind::Secret
    };
    let scopes = request.scopes.clone().unwrap_or_default();
    if kind == Kind::Restricted {
        check_restricted_scopes(&scopes, owner, registry)?;
    }
    check_limits(request, policy)?;
    // Attenuation: what the request leaves open comes from the caller's own credential, and
    // the result must fit inside it.
    let inherited = attenuate::inherit(
        bounds,
        &request.allowed_ips,
        request.restrictions.clone(),
        request.rate_limit_per_minute,
    );
    let expires_at = match (request.expiry, inherited.latest_expiry) {
        // The default lifetime is clipped to the caller's own expiry (documented).
        (Expiry::Default, Some(latest)) => {
            expiry_time(Expiry::Default, policy, now)?.map(|t| t.min(latest))
        }
        (expiry, _) => expiry_time(expiry, policy, now)?,
    };
    let new = NewKey {
        user_id: owner.id.clone(),
        workspace_id: request.workspace_id.clone(),
        issued_by: issued_by.to_owned(),
        name,
        description,
        mode: request.mode,
        kind,
        scopes,
        allowed_ips: inherited.nets,
        restrictions: inherited.restrictions,
        rate_limit_per_minute: inherited.rate_limit_per_minute,
        expires_at,
        rolled_from: None,
    };
    attenuate::admits(bounds, &new.shape()).map_err(|why| KeyInputError {
        code: ErrorCode::Broader,
        field: None,
        message: format!("The new key would have {why}"),
    })?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90d"), Some(Duration::days(90)));
        assert_eq!(parse_duration("12h"), Some(Duration::hours(12)));
        assert_eq!(parse_duration("3600"), Some(Duration::seconds(3600)));
        assert_eq!(parse_duration("1y"), Some(Duration::days(365)));
        for bad in ["", "d", "0d", "-1d", "5x", "1.5d"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn expiry_respects_the_policy() {
        let policy = KeyPolicy::default();
        let now = chrono::Utc::now().naive_utc();
        assert_eq!(
            expiry_time(Expiry::Default, &policy, now).unwrap(),
            Some(now + Duration::days(365))
        );
        assert!(expiry_time(Expiry::In(Duration::days(800)), &policy, now).is_err());
        assert!(expiry_time(Expiry::At(now - Duration::seconds(1)), &policy, now).is_err());
        assert!(expiry_time(Expiry::Never, &policy, now).is_err());
        let lenient = KeyPolicy {
            allow_no_expiry: true,
            ..policy
        };
        assert_eq!(expiry_time(Expiry::Never, &lenient, now).unwrap(), None);
    }
}
