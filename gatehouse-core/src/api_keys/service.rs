//! The key operations every front door shares (`/v1`, the settings pages): issue, change,
//! roll, revoke. Each takes the policy's `Allowed` for the operation and the caller whose
//! bounds limit what it mints; each writes its audit event and forgets cached keys, so the API
//! and the pages behave the same.

use chrono::{Duration, NaiveDateTime};
use ipnet::IpNet;
use serde_json::json;

use super::model::{self, ApiKey, NewKey, ParsedRights, RollOutcome, Status};
use super::{KeyError, KeyInputError, KeyRequest, build_new_key};
use crate::accounts::model::User;
use crate::audit::{self, Action, Actor};
use crate::db::{DbConn, DbError};
use crate::errors::ErrorCode;
use crate::policy::attenuate::{self, Bounds};
use crate::policy::{Allowed, Caller};
use crate::secrets::{Pepper, PlainSecret};
use crate::state::AppState;
use gatehouse_verify::restrictions::Restrictions;

/// The row to audit a key event against.
fn key_event(actor: &Actor, action: Action, key: &ApiKey) -> audit::NewEvent {
    let mut event = actor.event(action);
    event.subject_user_id = Some(key.user_id.clone());
    event.key_id = Some(key.id.clone());
    event.workspace_id = Some(key.workspace_id.clone());
    event
}

fn issuer_of(caller: &Caller) -> String {
    caller.user_id().unwrap_or("operator").to_owned()
}

/// Validate, insert and audit a new key for `owner`, no broader than the caller.
pub async fn issue(
    state: &AppState,
    _allowed: Allowed,
    caller: &Caller<'_>,
    actor: &Actor,
    owner: User,
    request: KeyRequest,
) -> Result<(ApiKey, PlainSecret), KeyError> {
    let registry = state.scope_registry().await?;
    let now = state.now();
    let new = build_new_key(
        &request,
        &owner,
        &issuer_of(caller),
        &attenuate::bounds(caller),
        &registry,
        &state.settings.keys,
        now,
    )?;
    let (pepper, actor) = (state.digest_pepper.clone(), actor.clone());
    let issued = state
        .db(move |c| insert_audited(c, &pepper, &new, &actor, now))
        .await?;
    Ok(issued)
}

/// Insert a checked key and audit its creation, in one step (the API, the pages and the CLI).
pub fn insert_audited(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewKey,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<(ApiKey, PlainSecret), DbError> {
    let (key, secret) = model::insert(conn, pepper, new, now)?;
    let mut event = key_event(actor, Action::KeyCreated, &key);
    event.details =
        json!({ "name": key.name, "mode": key.mode, "kind": key.kind, "scopes": key.scopes });
    audit::record(conn, &event, now)?;
    Ok((key, secret))
}

/// Revoke a key now and audit it; `false` when it was already revoked (nothing changes).
pub fn revoke_audited(
    conn: &mut DbConn,
    key: &ApiKey,
    actor: &Actor,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let by = (actor.user_id.clone())
        .or_else(|| actor.client_id.clone())
        .unwrap_or_else(|| "operator".into());
    let revoked = model::revoke(conn, &key.id, &by, now)?;
    if revoked {
        let mut event = key_event(actor, Action::KeyRevoked, key);
        event.details = json!({ "name": key.name });
        audit::record(conn, &event, now)?;
    }
    Ok(revoked)
}

/// A change to a key's descriptive fields or allowlist (`None`: unchanged; an empty
/// allowlist: usable from anywhere).
#[derive(Debug, Default)]
pub struct KeyChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub allowed_ips: Option<Vec<IpNet>>,
    /// Both lists, when either changes (the other as it was).
    pub restrictions: Option<RestrictionChanges>,
}

/// A PATCH of the referrer and endpoint lists: `None` keeps a list, `Some(empty)` clears it.
#[derive(Debug, Clone, Default)]
pub struct RestrictionChanges {
    pub referrers: Option<Vec<String>>,
    pub endpoints: Option<Vec<String>>,
}

/// Change `key`; the result must still fit inside the caller (a wider allowlist is refused).
pub async fn update(
    state: &AppState,
    _allowed: Allowed,
    caller: &Caller<'_>,
    actor: &Actor,
    key: ApiKey,
    changes: KeyChanges,
) -> Result<ApiKey, KeyError> {
    let restrictions = restrictions_of(&key, changes.restrictions.as_ref())?;
    if changes.allowed_ips.is_some() || restrictions.is_some() {
        let mut rights = ParsedRights::of(&key);
        if let Some(nets) = &changes.allowed_ips {
            rights.set_nets(nets.clone());
        }
        if let Some(r) = &restrictions {
            rights.set_restrictions(r.clone());
        }
        attenuate::admits(&attenuate::bounds(caller), &rights.shape()).map_err(|why| {
            KeyInputError::new(ErrorCode::Broader, format!("The key would then have {why}"))
        })?;
    }
    let now = state.now();
    let mut event = key_event(actor, Action::KeyUpdated, &key);
    event.details = json!({
        "name": changes.name.is_some(),
        "description": changes.description.is_some(),
        "allowed_ips": changes.allowed_ips.as_ref().map(|n| model::nets_to_storage(n)),
        "allowed_referrers": restrictions.as_ref().map(Restrictions::referrer_strings),
        "allowed_endpoints": restrictions.as_ref().map(Restrictions::endpoint_strings),
    });
    let id = key.id.clone();
    // Tokens exchanged for the key carry its old limits: a change of them ends those tokens
    // (on this instance at once, on the others at their next sync), as a roll does.
    let old_limits = model::exchange_grant(&key);
    let limits_changed = changes.allowed_ips.as_ref().is_some_and(|nets| {
        model::nets_to_storage(nets) != model::nets_to_storage(&key.allowed_nets())
    }) || restrictions.as_ref().is_some_and(|r| {
        let current = key.restrictions();
        r.referrers_to_storage() != current.referrers_to_storage()
            || r.endpoints_to_storage() != current.endpoints_to_storage()
    });
    let ended = (old_limits.clone(), model::exchanged_tokens_dead_at(now));
    let revoked = limits_changed.then(|| vec![ended]);
    let to_remember = revoked.clone();
    let updated = state
        .db(move |c| {
            if let Some(entries) = &revoked {
                crate::jwt::denylist::revoke(c, entries, now)?;
                model::new_limits_version(c, std::slice::from_ref(&id), now)?;
            }
            model::update(
                c,
                &id,
                changes.name.as_deref(),
                changes.description.as_deref(),
                changes.allowed_ips.as_deref(),
                restrictions.as_ref(),
                now,
            )?;
            audit::record(c, &event, now)?;
            model::find(c, &id)
        })
        .await?
        .ok_or_else(|| KeyInputError::new(ErrorCode::NotFound, "API key not found"))?;
    state.key_cache.invalidate_all();
    if let Some(entries) = to_remember {
        state.denylist.remember(entries);
    }
    Ok(updated)
}

/// Revoke `key` now (a no-op for a revoked key) and forget it on this instance at once.
pub async fn revoke(
    state: &AppState,
    _allowed: Allowed,
    actor: &Actor,
    key: ApiKey,
) -> Result<(), KeyError> {
    let (now, actor) = (state.now(), actor.clone());
    let id = key.id.clone();
    state
        .db(move |c| revoke_audited(c, &key, &actor, now))
        .await?;
    state.key_cache.invalidate_all();
    // This instance refuses the key's exchanged tokens at once (the others at their next sync).
    state
        .denylist
        .remember([(id, model::exchanged_tokens_dead_at(now))]);
    Ok(())
}

/// The restrictions a change asks for, each list left as it is when the change omits it.
fn restrictions_of(
    key: &ApiKey,
    patch: Option<&RestrictionChanges>,
) -> Result<Option<Restrictions>, KeyError> {
    let Some(patch) = patch else {
        return Ok(None);
    };
    let current = key.restrictions();
    let referrers = patch
        .referrers
        .clone()
        .unwrap_or_else(|| current.referrer_strings());
    let endpoints = patch
        .endpoints
        .clone()
        .unwrap_or_else(|| current.endpoint_strings());
    Restrictions::parse(&referrers, &endpoints)
        .map(Some)
        .map_err(|(field, message)| KeyInputError::field(field, message).into())
}

/// When a rolled key expires: as long after the roll as the old key was meant to live (a
/// 1-hour key rolls into a 1-hour key), within the server's maximum and the caller's own
/// expiry. A key without expiry stays without one where the server still allows that.
fn rolled_expiry(
    state: &AppState,
    key: &ApiKey,
    bounds: &Bounds,
    now: NaiveDateTime,
) -> Option<NaiveDateTime> {
    let policy = &state.settings.keys;
    let lifetime = match key.expires_at {
        Some(at) => (at - key.created_at).min(policy.max_lifetime),
        None if policy.allow_no_expiry && bounds.expires_at.is_none() => return None,
        None => policy.default_lifetime.min(policy.max_lifetime),
    };
    let at = now + lifetime.max(Duration::seconds(1));
    Some(bounds.expires_at.map_or(at, |latest| at.min(latest)))
}

/// Roll `key`: a new key with the same owner and rights; the old one works until the grace
/// period ends. The policy has already refused keys broader than the caller.
pub async fn roll(
    state: &AppState,
    _allowed: Allowed,
    caller: &Caller<'_>,
    actor: &Actor,
    key: ApiKey,
    grace: Duration,
) -> Result<(ApiKey, ApiKey, String), KeyError> {
    let now = state.now();
    may_roll(&key, now)?;
    let bounds = attenuate::bounds(caller);
    let template = NewKey {
        user_id: key.user_id.clone(),
        workspace_id: key.workspace_id.clone(),
        issued_by: issuer_of(caller),
        name: key.name.clone(),
        description: key.description.clone(),
        mode: key.mode(),
        kind: key.kind(),
        scopes: key.scope_set(),
        allowed_ips: key.allowed_nets(),
        restrictions: key.restrictions(),
        rate_limit_per_minute: key.rate_limit_per_minute,
        expires_at: rolled_expiry(state, &key, &bounds, now),
        rolled_from: Some(key.id.clone()),
    };
    attenuate::admits(&bounds, &template.shape()).map_err(|why| {
        KeyInputError::new(
            ErrorCode::Broader,
            format!("The rolled key would have {why}"),
        )
    })?;
    let mut event = key_event(actor, Action::KeyRolled, &key);
    let pepper = state.digest_pepper.clone();
    let outcome = state
        .db(move |c| {
            let outcome = model::roll(c, &pepper, &key.id, &template, grace, now)?;
            if let RollOutcome::Rolled { new, .. } = &outcome {
                event.details =
                    json!({ "new_key_id": new.id, "grace_seconds": grace.num_seconds() });
                audit::record(c, &event, now)?;
            }
            Ok(outcome)
        })
        .await?;
    state.key_cache.invalidate_all();
    match outcome {
        RollOutcome::Rolled { old, new, secret } => {
            // The old key's exchanged tokens end with its grace period, on this instance at
            // once (the others read the row at their next sync).
            if let Some(ends) = old.expires_at {
                state.denylist.remember_from([(
                    old.id.clone(),
                    Some(ends),
                    model::exchanged_tokens_dead_at(ends),
                )]);
            }
            Ok((*old, *new, secret.expose().to_owned()))
        }
        RollOutcome::AlreadyRolled { successor } => Err(already_rolled(&successor)),
    }
}

/// Only a live key that was not rolled yet rolls.
fn may_roll(key: &ApiKey, now: NaiveDateTime) -> Result<(), KeyError> {
    let why = match key.status(now) {
        Status::Revoked => "A revoked key cannot be rolled; create a new key",
        Status::Expired => "An expired key cannot be rolled; create a new key",
        Status::Active => match &key.rolled_to {
            Some(successor) => return Err(already_rolled(successor)),
            None => return Ok(()),
        },
    };
    Err(KeyInputError::new(ErrorCode::Conflict, why).into())
}

fn already_rolled(successor: &str) -> KeyError {
    KeyInputError::new(
        ErrorCode::Conflict,
        format!("This key was already rolled to {successor}; roll that key instead"),
    )
    .into()
}
