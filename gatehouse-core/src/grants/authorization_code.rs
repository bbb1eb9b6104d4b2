//! The authorization-code grant (RFC 6749 §4.1.3, PKCE per RFC 7636): redeem the code for the
//! request it was issued for, then start a refresh family and mint its first access token. A
//! replay of a spent code by that same request revokes what the code issued.

use serde_json::json;

use super::issue::{Issued, Subject, bound_audience, mint, record, requested_audience};
use super::{AuthCode, CodeRequest, NewGrant, Redemption};
use crate::accounts::model::User;
use crate::audit::Action;
use crate::clients::{Client, ClientType};
use crate::db::{DbConn, DbError};
use crate::grants::{deny_grants, family_policy};
use crate::ids::{IdKind, new_id};
use crate::oauth::error::OAuthError;
use crate::oidc::id_token as oidc;
use crate::scopes::ScopeSet;
use crate::secrets::PlainSecret;
use crate::state::AppState;
use crate::workspaces::roles::WorkspaceClaim;

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
    let (work_state, work_client) = (state.clone(), client.clone());
    // One trip to a pooled connection: find the code, sign the tokens, spend the code.
    let outcome = state
        .db(move |c| redeem(c, &work_state, &work_client, &grant, requested))
        .await?;
    match outcome {
        Ok(issued) => Ok(*issued),
        Err(Failure::Refused(e)) => Err(e),
        Err(Failure::Replayed {
            client_id,
            user_id,
            families,
        }) => Err(replay_detected(state, client, client_id, user_id, families).await),
    }
}

/// Why a code gave nothing.
enum Failure {
    Refused(OAuthError),
    /// The code was spent before: what it issued is revoked now (to be denied and audited).
    Replayed {
        client_id: String,
        user_id: String,
        families: Vec<String>,
    },
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Failure::Refused(e)
    }
}

impl From<Redemption> for Failure {
    /// Why a code that is not `Usable` gives nothing.
    fn from(r: Redemption) -> Self {
        match r {
            Redemption::Replayed {
                client_id,
                user_id,
                families,
            } => Failure::Replayed {
                client_id,
                user_id,
                families,
            },
            Redemption::Mismatch(why) => OAuthError::grant(why).into(),
            Redemption::Expired => OAuthError::grant("The code has expired").into(),
            Redemption::Unknown | Redemption::Usable(..) => {
                OAuthError::grant("The code is not valid").into()
            }
        }
    }
}

/// The code, if this request is the one it was issued for and it is unspent (with the user's
/// membership of the workspace it was authorized in, read now: a member removed since is
/// refused), then the tokens. PostgreSQL's usual case is one statement (`redeem_code_pg`);
/// otherwise, and whenever that statement spent nothing, the code is read first (which tells
/// why it cannot be used, and detects a replay), the tokens are signed, and the code is spent
/// only then: they leave only if the claim wins. A concurrent redemption that won makes this
/// one the replay.
fn redeem(
    c: &mut DbConn,
    state: &AppState,
    client: &Client,
    grant: &CodeGrant,
    requested: String,
) -> Result<Result<Box<Issued>, Failure>, DbError> {
    let (pepper, now) = (&state.digest_pepper, state.now());
    let request = CodeRequest {
        client_id: &client.id,
        redirect_uri: grant.redirect_uri.as_deref(),
        code_verifier: grant.code_verifier.as_deref(),
    };
    // A public client's refresh tokens are bound to its DPoP key (a confidential client's to
    // its credentials, RFC 9449 §5).
    let bind = grant
        .jkt
        .as_deref()
        .filter(|_| client.client_type() == ClientType::Public);
    let family_id = new_id(IdKind::RefreshFamily);
    // PostgreSQL: spend the code and start its family in one statement when this request is
    // the one it was issued for; the tokens are signed after (a signing failure leaves the code
    // spent and its family without a token handed out, which nothing can use).
    let policy = family_policy(state);
    if let Some(redeemed) = super::redeem_code_pg(
        c,
        pepper,
        &grant.code,
        &request,
        grant.resource.as_deref(),
        &family_id,
        policy,
        bind,
        now,
    )? {
        let super::Redeemed {
            code,
            workspace,
            refresh,
        } = redeemed;
        let issued = tokens(
            c, state, client, grant, &code, workspace, requested, family_id,
        )?;
        return Ok(issued.map(|issued| with_refresh(issued, refresh)));
    }
    let (code, workspace) = match super::find_code(c, pepper, &grant.code, &request, now)? {
        Redemption::Usable(code, claim) => (code, claim),
        other => return Ok(Err(other.into())),
    };
    let issued = match tokens(
        c,
        state,
        client,
        grant,
        &code,
        workspace,
        requested,
        family_id.clone(),
    )? {
        Ok(issued) => issued,
        Err(failure) => return Ok(Err(failure)),
    };
    let grant_of = NewGrant {
        family_id: &family_id,
        scopes: &issued.scopes,
        policy,
    };
    let Some(refresh) = super::claim_code(c, pepper, &code, grant_of, now)? else {
        return Ok(Err(super::code_replayed(c, *code, now)?.into()));
    };
    if let Some(jkt) = bind {
        super::bind_family(c, &family_id, jkt)?;
    }
    Ok(Ok(with_refresh(issued, refresh)))
}

/// A sign-in without `offline_access` still starts a family (the grant its access token
/// belongs to, which a sign-out ends) but its refresh token is not handed out.
fn with_refresh(issued: Issued, refresh: PlainSecret) -> Box<Issued> {
    Box::new(Issued {
        refresh_token: oidc::gets_refresh_token(&issued.scopes)
            .then(|| refresh.expose().to_owned()),
        ..issued
    })
}

/// The access token (and ID token) a usable code gives, for the family it starts, unless its
/// user was deleted or disabled since.
#[allow(clippy::too_many_arguments)]
fn tokens(
    c: &mut DbConn,
    state: &AppState,
    client: &Client,
    grant: &CodeGrant,
    code: &AuthCode,
    workspace: Option<WorkspaceClaim>,
    requested: String,
    family_id: String,
) -> Result<Result<Issued, Failure>, DbError> {
    let Some(user) = state
        .user_on(c, &code.user_id)?
        .filter(|u| !u.is_disabled())
    else {
        return Ok(Err(
            OAuthError::grant("The user can no longer sign in").into()
        ));
    };
    Ok(signed(
        state, client, grant, code, workspace, &user, requested, family_id,
    )
    .map_err(Failure::from))
}

#[allow(clippy::too_many_arguments)]
fn signed(
    state: &AppState,
    client: &Client,
    grant: &CodeGrant,
    code: &AuthCode,
    workspace: Option<WorkspaceClaim>,
    user: &User,
    requested: String,
    family_id: String,
) -> Result<Issued, OAuthError> {
    let scopes = ScopeSet::parse(&code.scopes).unwrap_or_default();
    let aud = bound_audience(
        code.resource.as_deref(),
        grant.resource.as_deref(),
        requested,
    )?;
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
    let id_token = if oidc::wants_id_token(&scopes) {
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
    } else {
        None
    };
    let issued = Issued {
        access_token,
        expires_in,
        refresh_token: None,
        scopes,
        id_token,
        issued_token_type: None,
        dpop_bound: grant.jkt.is_some(),
    };
    Ok(issued)
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
