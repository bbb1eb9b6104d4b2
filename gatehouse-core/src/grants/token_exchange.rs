//! Token exchange (RFC 8693): trade a credential for a narrower, short-lived access token.
//!
//! - **An API key** (`subject_token_type` [`API_KEY_TOKEN_TYPE`]) becomes an `at+jwt` for the
//!   key's user, so that a resource server that accepts only JWTs accepts key holders too. The
//!   key holder exchanges it alone (no client authentication: the key is the credential; the
//!   token's `client_id` is then the key id), or a client registered for the grant does (the
//!   token is then that client's, under its resource bindings). The key is checked as on any
//!   request — revoked, expired, owner disabled, IP allowlist against the exchanging address —
//!   and the token is never more than the key: scopes the key holds (a full-access key names
//!   them), the key's mode, allowlist and rate limit in its `key` claim, a life within the
//!   key's and at most [`EXCHANGED_TOKEN_MAX_LIFETIME`], and revoking the key revokes it. A key
//!   limited to origins or endpoints is refused: a token could not keep those limits.
//! - **An access token** (`urn:ietf:params:oauth:token-type:access_token`) issued to the
//!   requesting confidential client becomes a narrower one (fewer scopes, another audience the
//!   client may ask for, no longer life); with an `actor_token` the result names the actor in
//!   `act` (delegation). Revoking the original revokes what was exchanged for it.

use std::net::IpAddr;

use serde_json::json;

use super::issue::{Issued, Subject, bound_audience, mint, requested_audience};
use crate::api_keys::{self, KeyUse, Refusal, Seen, Verified};
use crate::clients::{Client, ClientType};
use crate::jwt::{AccessClaims, EXCHANGED_TOKEN_MAX_LIFETIME, KeyClaim};
use crate::oauth::error::OAuthError;
use crate::policy::{self, Bound, Role, attenuate};
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// The `subject_token_type` of a Gatehouse API key.
pub const API_KEY_TOKEN_TYPE: &str = "urn:gatehouse:params:oauth:token-type:api_key";
/// RFC 8693 §3: what the exchange issues, and an access token presented.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";
/// How many exchanges may follow one another from one original token.
const MAX_EXCHANGE_DEPTH: usize = 4;

/// A token-exchange request (RFC 8693 §2.1).
pub struct ExchangeRequest {
    pub subject_token: String,
    pub subject_token_type: String,
    pub actor_token: Option<String>,
    pub actor_token_type: Option<String>,
    pub requested_token_type: Option<String>,
    pub scope: Option<ScopeSet>,
    /// `resource` or `audience` (one target at a time; both must agree).
    pub target: Option<String>,
    /// DPoP: the key the request proved.
    pub jkt: Option<String>,
}

/// What the exchanging request shows of itself: the key's restrictions apply to it.
pub struct Origin<'a> {
    pub ip: Option<IpAddr>,
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
}

fn refused(why: &str) -> OAuthError {
    OAuthError::InvalidRequest(why.to_owned())
}

pub async fn exchange(
    state: &AppState,
    client: Option<&Client>,
    request: ExchangeRequest,
    origin: Origin<'_>,
) -> Result<Issued, OAuthError> {
    match request.requested_token_type.as_deref() {
        None | Some(ACCESS_TOKEN_TYPE) | Some(JWT_TOKEN_TYPE) => {}
        Some(_) => {
            return Err(refused(
                "requested_token_type: Gatehouse exchanges for access tokens only",
            ));
        }
    }
    if request.actor_token.is_some() != request.actor_token_type.is_some() {
        return Err(refused(
            "actor_token and actor_token_type go together (RFC 8693 §2.1)",
        ));
    }
    match request.subject_token_type.as_str() {
        API_KEY_TOKEN_TYPE => from_key(state, client, request, origin).await,
        ACCESS_TOKEN_TYPE => match client {
            Some(client) if client.client_type() == ClientType::Confidential => {
                from_access_token(state, client, request).await
            }
            _ => Err(OAuthError::InvalidClient(
                "Exchanging an access token needs the confidential client it was issued to".into(),
            )),
        },
        _ => Err(refused(&format!(
            "subject_token_type must be {API_KEY_TOKEN_TYPE} or {ACCESS_TOKEN_TYPE}"
        ))),
    }
}

/// The audience for a key holder's own exchange: any resource server this server issues for
/// (the key is accepted by all of them through introspection already).
fn key_holder_audience(state: &AppState, target: Option<&str>) -> Result<String, OAuthError> {
    let Some(target) = target else {
        return Ok(state.settings.token_audience().to_owned());
    };
    if !crate::config::valid_resource(target) {
        return Err(OAuthError::InvalidTarget(
            "resource must be an absolute URI without a fragment".into(),
        ));
    }
    if !state.settings.audiences().contains(&target) {
        return Err(OAuthError::InvalidTarget(
            "This server issues no tokens for that resource".into(),
        ));
    }
    Ok(target.to_owned())
}

/// The API key presented as `subject_token`, if it may be exchanged here: valid, from an
/// allowed address, and limited to no origins or endpoints (which a token cannot keep).
async fn usable_key(
    state: &AppState,
    subject_token: &str,
    origin: Origin<'_>,
) -> Result<std::sync::Arc<crate::cache::KeyRecord>, OAuthError> {
    let seen = Seen {
        ip: origin.ip,
        origin: origin.origin,
        referer: origin.referer,
        method: "POST",
        path: "/oauth/token",
    };
    let limited = "subject_token: this key is limited to some origins or endpoints, which a token cannot keep";
    let record = match api_keys::verify(state, subject_token, KeyUse::Request(seen)).await? {
        Verified::Valid(record) => record,
        Verified::Refused(_, Refusal::IpNotAllowed) => {
            return Err(refused(
                "subject_token: this key may not be used from this address",
            ));
        }
        Verified::Refused(_, Refusal::ReferrerNotAllowed | Refusal::EndpointNotAllowed) => {
            return Err(refused(limited));
        }
        _ => {
            return Err(refused(
                "subject_token is not a valid API key (unknown, revoked or expired)",
            ));
        }
    };
    if !record.restrictions.referrers.is_empty() || !record.restrictions.endpoints.is_empty() {
        return Err(refused(limited));
    }
    Ok(record)
}

async fn from_key(
    state: &AppState,
    client: Option<&Client>,
    request: ExchangeRequest,
    origin: Origin<'_>,
) -> Result<Issued, OAuthError> {
    if request.actor_token.is_some() {
        return Err(refused("An API key is exchanged without an actor_token"));
    }
    let record = usable_key(state, &request.subject_token, origin).await?;
    // An app private to a workspace acts there only, for its members (as in the code and
    // device flows): a key of another workspace is not one it may exchange.
    if let Some(private) = client.and_then(|c| c.workspace_id.as_deref())
        && (private != record.key.workspace_id || record.workspace.is_none())
    {
        return Err(OAuthError::grant(
            "subject_token acts in another workspace than this app's: a private app exchanges its workspace's keys only",
        ));
    }
    let target = request.target.as_deref();
    let aud = match client {
        Some(client) => requested_audience(state, client, target)?,
        None => key_holder_audience(state, target)?,
    };
    let registry = state.scope_registry().await?;
    let scopes = attenuate::exchanged_scopes(&record.caller(), request.scope.as_ref(), &registry)
        .map_err(|why| OAuthError::InvalidScope(format!("The token would hold {why}")))?;
    if let Some(client) = client
        && let Some(extra) = scopes.difference(&client.scopes()).first()
    {
        return Err(OAuthError::InvalidScope(format!(
            "This client may not ask for {extra}"
        )));
    }
    let key = &record.key;
    let now = state.now();
    let latest = now + EXCHANGED_TOKEN_MAX_LIFETIME;
    let not_after = key.expires_at.map_or(latest, |at| at.min(latest));
    let claim = KeyClaim {
        id: key.id.clone(),
        livemode: key.mode() == api_keys::format::Mode::Live,
        allowed_ips: record.nets.iter().map(ToString::to_string).collect(),
        rate_limit_per_minute: key.rate_limit_per_minute,
    };
    // Revoking the key revokes the token (its `jti` names the key); changing the key's limits
    // revokes the tokens minted under the old ones (the grant names those too).
    let grant = key.exchange_grant.to_string();
    let subject = Subject {
        sub: &record.user.id,
        grant: Some(&grant),
        workspace: record.workspace.clone(),
        key: Some(claim),
        not_after: Some(not_after.and_utc().timestamp()),
        jkt: request.jkt.clone(),
        ..Subject::default()
    };
    let client_id = client.map_or(key.id.as_str(), |c| c.id.as_str());
    let (access_token, expires_in) =
        mint(state, "token_exchange", client_id, subject, &scopes, aud)?;
    let details = json!({
        "subject_token_type": "api_key",
        "key_id": key.id,
        "client_id": client.map(|c| c.id.clone()),
    });
    crate::grants::audit::token_exchanged(state, details, &record.user.id).await;
    Ok(exchanged(
        access_token,
        expires_in,
        scopes,
        request.jkt.is_some(),
    ))
}

fn exchanged(access_token: String, expires_in: i64, scopes: ScopeSet, dpop_bound: bool) -> Issued {
    Issued {
        access_token,
        expires_in,
        refresh_token: None,
        scopes,
        id_token: None,
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
        dpop_bound,
    }
}

/// One of our access tokens, valid now (signature, issuer, any of our audiences, expiry, the
/// denylist, its user still enabled) and issued to `client`.
async fn our_token(
    state: &AppState,
    client: &Client,
    token: &str,
    which: &str,
) -> Result<AccessClaims, OAuthError> {
    let invalid = || refused(&format!("{which} is not a valid access token"));
    let audiences = state.settings.audiences();
    let claims = state
        .key_ring()
        .verify_for_any(token, &state.settings.issuer, &audiences)
        .map_err(|_| invalid())?;
    if state
        .denylist
        .is_revoked(&claims.jti, state.now().and_utc().timestamp())
    {
        return Err(invalid());
    }
    if claims.client_id != client.id {
        return Err(refused(&format!(
            "{which} was issued to another client: a client exchanges its own tokens"
        )));
    }
    if !claims.sub.starts_with("cli_") {
        match state.user(&claims.sub).await? {
            Some((user, _)) if !user.is_disabled() => {}
            _ => return Err(invalid()),
        }
    }
    Ok(claims)
}

/// A token bound to a DPoP key is exchanged only by a request that proves that key (the
/// result stays bound to it).
fn proves(claims: &AccessClaims, jkt: Option<&str>) -> bool {
    claims
        .cnf
        .as_ref()
        .is_none_or(|c| jkt == Some(c.jkt.as_str()))
}

/// The `act` claim: the actor token's party, with the earlier actors nested (RFC 8693 §4.1);
/// without an actor token, the subject's own.
async fn actor_of(
    state: &AppState,
    client: &Client,
    request: &ExchangeRequest,
    subject: &AccessClaims,
) -> Result<Option<serde_json::Value>, OAuthError> {
    match (&request.actor_token, request.actor_token_type.as_deref()) {
        (Some(actor), Some(ACCESS_TOKEN_TYPE | JWT_TOKEN_TYPE)) => {
            let actor = our_token(state, client, actor, "actor_token").await?;
            if !proves(&actor, request.jkt.as_deref()) {
                return Err(refused(
                    "actor_token is bound to a DPoP key: send a DPoP proof made with it",
                ));
            }
            let mut act = json!({ "sub": actor.sub, "client_id": actor.client_id });
            if let Some(prior) = subject.act.clone() {
                act["act"] = prior;
            }
            Ok(Some(act))
        }
        (Some(_), Some(_)) => Err(refused(&format!(
            "actor_token_type must be {ACCESS_TOKEN_TYPE}"
        ))),
        _ => Ok(subject.act.clone()),
    }
}

/// The scopes the exchanged token holds: what was asked, within the subject token as the
/// policy weighs it (its user's role, its scopes, its expiry, its workspace).
async fn scopes_for(
    state: &AppState,
    client: &Client,
    subject: &AccessClaims,
    asked: Option<&ScopeSet>,
) -> Result<ScopeSet, OAuthError> {
    let held = ScopeSet::parse(&subject.scope).unwrap_or_default();
    let registry = state.scope_registry().await?;
    // The subject token, as the policy weighs it: its user's role, its scopes, its expiry.
    let role = match state.user(&subject.sub).await? {
        Some((user, _)) if user.is_admin() => Role::Admin,
        _ => Role::Member,
    };
    let expires_at = chrono::DateTime::from_timestamp(subject.exp, 0)
        .map_or(chrono::NaiveDateTime::MIN, |t| t.naive_utc());
    let credential = if subject.sub.starts_with("cli_") {
        Bound::App {
            client_id: &client.id,
            scopes: &held,
        }
    } else {
        Bound::AppToken {
            client_id: &client.id,
            scopes: &held,
            expires_at,
        }
    };
    let workspace = subject
        .workspace
        .as_ref()
        .map(|w| (w.id.as_str(), w.is_personal()));
    let caller = policy::Caller::bound(Some(&subject.sub), role, credential, workspace);
    let scopes = attenuate::exchanged_scopes(&caller, asked, &registry)
        .map_err(|why| OAuthError::InvalidScope(format!("The token would hold {why}")))?;
    Ok(scopes)
}

async fn from_access_token(
    state: &AppState,
    client: &Client,
    request: ExchangeRequest,
) -> Result<Issued, OAuthError> {
    let subject = our_token(state, client, &request.subject_token, "subject_token").await?;
    // A token bound to a DPoP key is exchanged only by a request that proves that key (the
    // result stays bound to it).
    if !proves(&subject, request.jkt.as_deref()) {
        return Err(refused(
            "subject_token is bound to a DPoP key: send a DPoP proof made with it",
        ));
    }
    let act = actor_of(state, client, &request, &subject).await?;
    let scopes = scopes_for(state, client, &subject, request.scope.as_ref()).await?;
    // A token for another resource server than Gatehouse's own API was granted for that one:
    // its exchange stays there (as a refresh of its grant would).
    let requested = requested_audience(state, client, request.target.as_deref())?;
    let bound = (subject.aud != state.settings.token_audience()).then_some(subject.aud.as_str());
    let aud = bound_audience(bound, request.target.as_deref(), requested)?;
    // The exchanged token's `jti` extends the original's: revoking the original, or its grant,
    // revokes it. A chain of exchanges is kept short.
    if subject.jti.matches('.').count() >= MAX_EXCHANGE_DEPTH {
        return Err(refused(
            "subject_token was exchanged too many times already: start from the original grant",
        ));
    }
    let grant = subject.jti.clone();
    let auth_time = subject
        .auth_time
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.naive_utc());
    let minted = Subject {
        sub: &subject.sub,
        auth_time,
        grant: Some(&grant),
        workspace: subject.workspace.clone(),
        key: subject.key.clone(),
        act: act.clone(),
        not_after: Some(subject.exp),
        jkt: request.jkt.clone(),
    };
    let (access_token, expires_in) =
        mint(state, "token_exchange", &client.id, minted, &scopes, aud)?;
    if !subject.sub.starts_with("cli_") {
        let details = json!({
            "subject_token_type": "access_token",
            "client_id": client.id,
            "delegated": act.is_some(),
        });
        crate::grants::audit::token_exchanged(state, details, &subject.sub).await;
    }
    Ok(exchanged(
        access_token,
        expires_in,
        scopes,
        request.jkt.is_some(),
    ))
}
