//! The authorization-code grant (RFC 6749 §4.1.3, PKCE per RFC 7636): redeem the code for the
//! request it was issued for, then start a refresh family and mint its first access token. A
//! replay of a spent code by that same request revokes what the code issued.

use serde_json::json;

use super::issue::{Issued, Subject, bound_audience, mint, record, requested_audience};
use super::{AuthCode, CodeRequest, NewGrant, Redemption};
use crate::audit::Action;
use crate::ids::{IdKind, new_id};
use crate::oauth::clients::Client;
use crate::oauth::error::OAuthError;
use crate::oauth::oidc;
use crate::oauth::token::{deny_grants, family_policy};
use crate::scopes::ScopeSet;
use crate::state::AppState;
use crate::workspaces::WorkspaceClaim;

/// A token request for the authorization-code grant.
pub struct CodeGrant {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub resource: Option<String>,
    /// DPoP: the key the request proved.
    pub jkt: Option<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    grant: CodeGrant,
) -> Result<Issued, OAuthError> {
    // Checked before the code is spent: a bad `resource` costs the client nothing.
    let requested = requested_audience(state, client, grant.resource.as_deref())?;
    let (code, workspace) = find(state, client, &grant).await?;
    let user = state.user(&code.user_id).await?.map(|(user, _)| user);
    if user.as_ref().is_none_or(|u| u.is_disabled()) {
        return Err(OAuthError::grant("The user can no longer sign in"));
    }
    let scopes = ScopeSet::parse(&code.scopes).unwrap_or_default();
    let aud = bound_audience(
        code.resource.as_deref(),
        grant.resource.as_deref(),
        requested,
    )?;
    let family_id = new_id(IdKind::RefreshFamily);
    let subject = Subject {
        sub: &code.user_id,
        auth_time: Some(code.auth_time),
        grant: Some(&family_id),
        workspace: workspace.clone(),
        jkt: grant.jkt.clone(),
        ..Subject::default()
    };
    let (access_token, expires_in) = mint(
        state,
        "authorization_code",
        &client.id,
        subject,
        &scopes,
        aud,
    )?;
    let id_token = match user.as_deref() {
        Some(user) if oidc::wants_id_token(&scopes) => {
            let sign_in = oidc::SignIn {
                auth_time: code.auth_time,
                nonce: code.nonce.as_deref(),
                session_id: code.session_id.as_deref(),
                workspace: workspace.as_ref(),
            };
            Some(oidc::id_token(
                state,
                client,
                user,
                sign_in,
                &scopes,
                &access_token,
            )?)
        }
        _ => None,
    };
    // The tokens are signed before the code is spent; they leave only if the claim wins. A
    // sign-in without `offline_access` still starts a family (the grant its access token
    // belongs to, which a sign-out ends) but its refresh token is not handed out.
    // A public client's refresh tokens are bound to its DPoP key (a confidential client's to
    // its credentials, RFC 9449 §5).
    let bind = grant
        .jkt
        .clone()
        .filter(|_| client.client_type() == crate::oauth::clients::ClientType::Public);
    let refresh = claim(state, client, *code, family_id.clone(), &scopes).await?;
    if let Some(jkt) = bind {
        state
            .db(move |c| super::bind_family(c, &family_id, &jkt))
            .await?;
    }
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: oidc::gets_refresh_token(&scopes).then_some(refresh),
        scopes,
        id_token,
        issued_token_type: None,
        dpop_bound: grant.jkt.is_some(),
    })
}

/// The code, if this request is the one it was issued for and it is unspent, with the user's
/// membership of the workspace it was authorized in (read now: a member removed since is
/// refused).
async fn find(
    state: &AppState,
    client: &Client,
    grant: &CodeGrant,
) -> Result<(Box<AuthCode>, Option<WorkspaceClaim>), OAuthError> {
    let (pepper, now, client_id) = (state.digest_pepper.clone(), state.now(), client.id.clone());
    let (code, redirect_uri, verifier) = (
        grant.code.clone(),
        grant.redirect_uri.clone(),
        grant.code_verifier.clone(),
    );
    let redemption = state
        .db(move |c| {
            let request = CodeRequest {
                client_id: &client_id,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: verifier.as_deref(),
            };
            super::find_code(c, &pepper, &code, &request, now)
        })
        .await?;
    match redemption {
        Redemption::Usable(code, claim) => Ok((code, claim)),
        Redemption::Replayed {
            client_id,
            user_id,
            families,
        } => Err(replay_detected(state, client, client_id, user_id, families).await),
        Redemption::Mismatch(why) => Err(OAuthError::grant(why)),
        Redemption::Expired => Err(OAuthError::grant("The code has expired")),
        Redemption::Unknown => Err(OAuthError::grant("The code is not valid")),
    }
}

async fn replay_detected(
    state: &AppState,
    client: &Client,
    client_id: String,
    user_id: String,
    families: Vec<String>,
) -> OAuthError {
    log::warn!("authorization code replay detected for client {client_id}: its tokens are revoked");
    deny_grants(state, &families).await;
    let details = json!({ "client_id": client_id, "presented_by": client.id, "families_revoked": families.len() });
    record(state, Action::CodeReplayDetected, &user_id, details).await;
    OAuthError::grant("The code was already used; the tokens issued from it are revoked")
}

/// Spend the code and start the family of this authorization with its first refresh token.
/// A concurrent redemption that won makes this one the replay.
async fn claim(
    state: &AppState,
    client: &Client,
    code: AuthCode,
    family_id: String,
    scopes: &ScopeSet,
) -> Result<String, OAuthError> {
    let (pepper, now, policy) = (
        state.digest_pepper.clone(),
        state.now(),
        family_policy(state),
    );
    let scopes = scopes.clone();
    let outcome = state
        .db(move |c| {
            let grant = NewGrant {
                family_id: &family_id,
                scopes: &scopes,
                policy,
            };
            match super::claim_code(c, &pepper, &code, grant, now)? {
                Some(token) => Ok(Ok(token)),
                None => super::code_replayed(c, code, now).map(Err),
            }
        })
        .await?;
    match outcome {
        Ok(token) => Ok(token.expose().to_owned()),
        Err(Redemption::Replayed {
            client_id,
            user_id,
            families,
        }) => Err(replay_detected(state, client, client_id, user_id, families).await),
        Err(_) => Err(OAuthError::grant("The code is not valid")),
    }
}
