//! The device grant (RFC 8628 §3.4): the device polls with its `device_code` until the user
//! decided. Pending: `authorization_pending`, or `slow_down` (and five more seconds between
//! polls) when it polls faster than its interval; denied: `access_denied`; expired:
//! `expired_token`; approved: the tokens, once — the authorization is spent in the same
//! transaction that starts its refresh family, so a second poll gets `invalid_grant`. Another
//! client's device code is `invalid_grant`, whatever its state.

use super::issue::{Issued, Subject, bound_audience, mint, requested_audience};
use crate::clients::Client;
use crate::device::{self as device, DeviceCode};
use crate::grants::family_policy;
use crate::ids::{IdKind, new_id};
use crate::oauth::error::OAuthError;
use crate::oidc::id_token as oidc;
use crate::state::AppState;

pub struct DeviceGrant {
    pub device_code: String,
    pub resource: Option<String>,
    /// DPoP: the key the request proved.
    pub jkt: Option<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    grant: DeviceGrant,
) -> Result<Issued, OAuthError> {
    let requested = requested_audience(state, client, grant.resource.as_deref())?;
    let (pepper, now) = (state.digest_pepper.clone(), state.now());
    let presented = grant.device_code.clone();
    let found = state
        .db(move |c| device::find_by_device_code(c, &pepper, &presented))
        .await?;
    let Some(row) = found.filter(|d| d.client_id == client.id) else {
        return Err(OAuthError::grant("The device code is not valid"));
    };
    if row.status == "consumed" {
        return Err(OAuthError::grant("The device code was already used"));
    }
    if row.expires_at <= now {
        return Err(OAuthError::ExpiredToken(
            "The device code has expired: start again".into(),
        ));
    }
    match row.status.as_str() {
        "denied" => Err(OAuthError::AccessDenied(
            "The user denied the request".into(),
        )),
        "approved" => issue(state, client, row, requested, grant).await,
        _ => Err(pending(state, &row).await),
    }
}

/// A poll of a pending authorization: too early (`slow_down`, five seconds more from now on)
/// or in time (`authorization_pending`), decided by the database (concurrent polls included).
async fn pending(state: &AppState, row: &DeviceCode) -> OAuthError {
    let (now, id, interval) = (state.now(), row.id.clone(), row.interval_seconds);
    match state.db(move |c| device::poll(c, &id, interval, now)).await {
        Ok(Some(next)) => OAuthError::PollingTooFast(format!("Poll at most every {next} seconds")),
        Ok(None) => OAuthError::AuthorizationPending("The user has not decided yet".into()),
        Err(e) => {
            log::warn!("recording a device poll: {e}");
            OAuthError::AuthorizationPending("The user has not decided yet".into())
        }
    }
}

/// The member's claim in the workspace the device was approved in (none: approved in none);
/// a member who left since cannot have the token.
async fn workspace_claim(
    state: &AppState,
    workspace_id: Option<String>,
    user_id: &str,
) -> Result<Option<crate::workspaces::WorkspaceClaim>, OAuthError> {
    let Some(ws) = workspace_id else {
        return Ok(None);
    };
    let uid = user_id.to_owned();
    let claim = state
        .db(move |c| crate::workspaces::claim(c, &ws, &uid))
        .await?;
    match claim {
        Some(claim) => Ok(Some(claim)),
        None => Err(OAuthError::grant(
            "The user is no longer a member of the workspace this device was approved in",
        )),
    }
}

/// Spend the device code and start its refresh family, in one transaction: `None` when the
/// code was spent meanwhile.
async fn start_family(
    state: &AppState,
    id: String,
    start: super::DeviceFamily,
) -> Result<Option<crate::secrets::PlainSecret>, OAuthError> {
    let (pepper, now, policy) = (
        state.digest_pepper.clone(),
        state.now(),
        family_policy(state),
    );
    Ok(state
        .db(move |c| {
            super::start_device_family(
                c,
                &pepper,
                |c| device::spend(c, &id, now),
                &start,
                policy,
                now,
            )
        })
        .await?)
}

async fn issue(
    state: &AppState,
    client: &Client,
    row: DeviceCode,
    requested: String,
    grant: DeviceGrant,
) -> Result<Issued, OAuthError> {
    let (Some(user_id), Some(auth_time)) = (row.user_id.clone(), row.auth_time) else {
        return Err(OAuthError::grant("The device code is not valid"));
    };
    let user = state.user(&user_id).await?.map(|(user, _)| user);
    if user.as_ref().is_none_or(|u| u.is_disabled()) {
        return Err(OAuthError::grant("The user can no longer sign in"));
    }
    let workspace = workspace_claim(state, row.workspace_id.clone(), &user_id).await?;
    let scopes = row.scope_set();
    let aud = bound_audience(
        row.resource.as_deref(),
        grant.resource.as_deref(),
        requested,
    )?;
    let family_id = new_id(IdKind::RefreshFamily);
    let subject = Subject {
        sub: &user_id,
        auth_time: Some(auth_time),
        grant: Some(&family_id),
        workspace: workspace.clone(),
        jkt: grant.jkt.clone(),
        ..Subject::default()
    };
    let (access_token, expires_in) = mint(state, "device_code", &client.id, subject, &scopes, aud)?;
    let id_token = match user.as_deref() {
        Some(user) if oidc::wants_id_token(&scopes) => {
            let sign_in = oidc::SignIn {
                auth_time,
                nonce: None,
                session_id: row.session_id.as_deref(),
                workspace: workspace.as_ref(),
            };
            let id_token = oidc::id_token(state, client, user, sign_in, &scopes, &access_token);
            Some(id_token?)
        }
        _ => None,
    };
    let start = super::DeviceFamily {
        family_id: family_id.clone(),
        client_id: client.id.clone(),
        user_id,
        resource: row.resource.clone(),
        session_id: row.session_id.clone(),
        workspace_id: row.workspace_id.clone(),
        scopes: scopes.clone(),
        auth_time,
        dpop_jkt: grant
            .jkt
            .clone()
            .filter(|_| client.client_type() == crate::clients::ClientType::Public),
    };
    let refresh = start_family(state, row.id.clone(), start).await?;
    let Some(refresh) = refresh else {
        return Err(OAuthError::grant("The device code was already used"));
    };
    let with_refresh = client.allows_grant("refresh_token") && oidc::gets_refresh_token(&scopes);
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: with_refresh.then(|| refresh.expose().to_owned()),
        scopes,
        id_token,
        issued_token_type: None,
        dpop_bound: grant.jkt.is_some(),
    })
}
