//! The refresh-token grant (RFC 6749 §6): rotate the token within its family (reuse of a
//! rotated token revokes the family, RFC 9700 §4.14.2), narrow the scope if asked, and mint an
//! access token for the family's audience. A token presented by another client is refused and
//! changes nothing (see `grants::rotate`).

use serde_json::json;

use super::issue::{Issued, Subject, bound_audience, mint, record, requested_audience};
use super::{Refresh, RefreshFamily};
use crate::accounts::model::User;
use crate::audit::Action;
use crate::clients::Client;
use crate::grants::{deny_grants, family_policy};
use crate::oauth::error::OAuthError;
use crate::oidc::id_token as oidc;
use crate::scopes::ScopeSet;
use crate::state::AppState;
use crate::workspaces::roles::WorkspaceClaim;

/// A token request for the refresh-token grant.
pub struct RefreshGrant {
    pub refresh_token: String,
    /// A narrower scope than the grant's, if asked.
    pub scope: Option<ScopeSet>,
    pub resource: Option<String>,
    /// DPoP: the key the request proved.
    pub jkt: Option<String>,
}

/// Why a refresh did not rotate, as the token endpoint answers it (a reused token ends its
/// family first).
async fn refused(state: &AppState, client: &Client, outcome: Refresh) -> OAuthError {
    match outcome {
        Refresh::Reused { family_id, user_id } => {
            reuse_detected(state, client, family_id, &user_id).await
        }
        Refresh::WrongKey => {
            OAuthError::grant("The refresh token is bound to a DPoP key: send a proof made with it")
        }
        Refresh::ScopeWidened => {
            OAuthError::InvalidScope("A refresh may narrow the scope, never widen it".into())
        }
        Refresh::Invalid | Refresh::Rotated { .. } => {
            OAuthError::grant("The refresh token is not valid")
        }
    }
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    grant: RefreshGrant,
) -> Result<Issued, OAuthError> {
    let requested = requested_audience(state, client, grant.resource.as_deref())?;
    let (outcome, user) = rotate(state, client, &grant).await?;
    let Refresh::Rotated {
        family,
        token,
        scopes,
        workspace,
    } = outcome
    else {
        return Err(refused(state, client, outcome).await);
    };
    if user.as_ref().is_none_or(|u| u.is_disabled()) {
        return Err(OAuthError::grant("The user can no longer sign in"));
    }
    let workspace = match (&family.workspace_id, workspace) {
        (Some(_), None) => {
            return Err(OAuthError::grant(
                "The user is no longer a member of the workspace this grant was made in",
            ));
        }
        (_, claim) => claim,
    };
    let scopes = still_allowed(client, &scopes)?;
    let aud = bound_audience(
        family.resource.as_deref(),
        grant.resource.as_deref(),
        requested,
    )?;
    let (access_token, expires_in) = mint(
        state,
        "refresh_token",
        &client.id,
        subject(&family, workspace.clone(), grant.jkt.clone()),
        &scopes,
        aud,
    )?;
    let id_token = match user.as_deref() {
        Some(user) if oidc::wants_id_token(&scopes) => {
            let sign_in = oidc::SignIn {
                auth_time: family.auth_time,
                nonce: None,
                session_id: family.session_id.as_deref(),
                workspace: workspace.as_ref(),
            };
            let id_token = oidc::id_token(state, client, user, sign_in, &scopes, &access_token);
            Some(id_token?)
        }
        _ => None,
    };
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: Some(token.expose().to_owned()),
        scopes,
        id_token,
        issued_token_type: None,
        dpop_bound: grant.jkt.is_some(),
    })
}

fn subject(
    family: &RefreshFamily,
    workspace: Option<WorkspaceClaim>,
    jkt: Option<String>,
) -> Subject<'_> {
    Subject {
        sub: &family.user_id,
        auth_time: Some(family.auth_time),
        grant: Some(&family.id),
        workspace,
        jkt,
        ..Subject::default()
    }
}

/// The rotation (with the user's membership of the grant's workspace now) and the user it is
/// for unless cached: one trip to the database.
async fn rotate(
    state: &AppState,
    client: &Client,
    grant: &RefreshGrant,
) -> Result<(Refresh, Option<std::sync::Arc<User>>), OAuthError> {
    let (pepper, now, client_id, policy) = (
        state.digest_pepper.clone(),
        state.now(),
        client.id.clone(),
        family_policy(state),
    );
    let (presented, asked) = (grant.refresh_token.clone(), grant.scope.clone());
    let jkt = grant.jkt.clone();
    let work_state = state.clone();
    Ok(state
        .db(move |c| {
            let outcome = super::rotate(
                c,
                &pepper,
                &presented,
                &client_id,
                asked.as_ref(),
                jkt.as_deref(),
                policy,
                now,
            )?;
            let user = match &outcome {
                Refresh::Rotated { family, .. } => work_state.user_on(c, &family.user_id)?,
                _ => None,
            };
            Ok((outcome, user))
        })
        .await?)
}

/// An app whose allowed scopes were narrowed since the approval gets only what it may still
/// have.
fn still_allowed(client: &Client, scopes: &ScopeSet) -> Result<ScopeSet, OAuthError> {
    let allowed = client.scopes();
    let kept: ScopeSet = scopes
        .iter()
        .filter(|s| allowed.contains(s.as_str()))
        .cloned()
        .collect();
    if kept.is_empty() {
        return Err(OAuthError::InvalidScope(
            "The app may no longer ask for any of the scopes this grant holds".into(),
        ));
    }
    Ok(kept)
}

/// A rotated token came back: the family is revoked (refresh side already); deny its access
/// tokens and audit.
async fn reuse_detected(
    state: &AppState,
    client: &Client,
    family_id: String,
    user_id: &str,
) -> OAuthError {
    log::warn!(
        "refresh token reuse detected for client {}: the family is revoked",
        client.id
    );
    deny_grants(state, std::slice::from_ref(&family_id)).await;
    let details = json!({ "client_id": client.id, "family_id": family_id });
    record(state, Action::RefreshReuseDetected, user_id, details).await;
    OAuthError::grant(
        "The refresh token was already used; every token of this authorization is revoked",
    )
}
