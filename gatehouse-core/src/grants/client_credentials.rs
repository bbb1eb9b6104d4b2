//! The client_credentials grant (RFC 6749 §4.4): a confidential client acting for itself. `sub`
//! is the client id, the scope at most the client's (all of it when none is asked), and there
//! is no refresh token (the client can always ask again). Issuance is audited per minute.

use super::issue::{Issued, Subject, mint, requested_audience};
use crate::clients::{Client, ClientType};
use crate::oauth::error::OAuthError;
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// A token request for the client_credentials grant.
pub struct ClientCredentialsGrant {
    pub scope: Option<ScopeSet>,
    pub resource: Option<String>,
    /// DPoP: the key the request proved.
    pub jkt: Option<String>,
}

pub async fn exchange(
    state: &AppState,
    client: &Client,
    grant: ClientCredentialsGrant,
) -> Result<Issued, OAuthError> {
    if client.client_type() != ClientType::Confidential {
        return Err(OAuthError::UnauthorizedClient(
            "Only confidential clients may use client_credentials".into(),
        ));
    }
    let allowed = client.scopes();
    let scopes = match grant.scope {
        None => allowed,
        Some(asked) => {
            if let Some(extra) = asked.difference(&allowed).first() {
                return Err(OAuthError::InvalidScope(format!(
                    "This client may not ask for {extra}"
                )));
            }
            asked
        }
    };
    let aud = requested_audience(state, client, grant.resource.as_deref())?;
    let subject = Subject {
        sub: &client.id,
        auth_time: None,
        grant: None,
        // An app acting as itself holds no membership (a private app's own tokens are
        // refused by `/v1` like every app's).
        workspace: None,
        jkt: grant.jkt.clone(),
        ..Subject::default()
    };
    let (access_token, expires_in) = mint(
        state,
        "client_credentials",
        &client.id,
        subject,
        &scopes,
        aud,
    )?;
    crate::grants::audit::client_credentials_issued(state, &client.id).await;
    Ok(Issued {
        access_token,
        expires_in,
        refresh_token: None,
        scopes,
        id_token: None,
        issued_token_type: None,
        dpop_bound: grant.jkt.is_some(),
    })
}
