//! What every grant issues: an access token for one audience (RFC 8707), and, for grants a user
//! made, a refresh token; the audience rules and the signing shared by the three grants.

use chrono::NaiveDateTime;

use crate::clients::Client;
use crate::jwt::{AccessClaims, denylist};
use crate::oauth::error::OAuthError;
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// A grant's outcome, as RFC 6749 §5.1 will answer it.
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    /// None for `client_credentials` (the client can always ask again).
    pub refresh_token: Option<String>,
    pub scopes: ScopeSet,
    /// OpenID Connect: for a user's grant that holds `openid`.
    pub id_token: Option<String>,
    /// RFC 8693: what a token exchange issued.
    pub issued_token_type: Option<&'static str>,
    /// RFC 9449: the access token is bound to a DPoP key (`token_type: DPoP`).
    pub dpop_bound: bool,
}

/// Whom an access token acts for.
#[derive(Default)]
pub struct Subject<'a> {
    /// A user id, or the client id for a client acting for itself.
    pub sub: &'a str,
    pub auth_time: Option<NaiveDateTime>,
    /// The refresh family (grant): it goes into the `jti`, so revoking the grant revokes the
    /// token.
    pub grant: Option<&'a str>,
    /// The workspace the grant acts in, with the user's role there now.
    pub workspace: Option<crate::workspaces::roles::WorkspaceClaim>,
    /// Token exchange: the API key the token stands for.
    pub key: Option<crate::jwt::KeyClaim>,
    /// Token exchange: who acts for `sub` (RFC 8693 `act`).
    pub act: Option<serde_json::Value>,
    /// Token exchange: the token may live no longer than this (Unix seconds).
    pub not_after: Option<i64>,
    /// DPoP: the thumbprint of the key the token is bound to.
    pub jkt: Option<String>,
}

/// RFC 8707: the audience a token request names in `resource` (one of the configured resource
/// servers that an administrator bound to the client), or the default audience.
pub fn requested_audience(
    state: &AppState,
    client: &Client,
    resource: Option<&str>,
) -> Result<String, OAuthError> {
    let Some(resource) = resource else {
        return Ok(state.settings.token_audience().to_owned());
    };
    if !crate::config::valid_resource(resource) {
        return Err(OAuthError::InvalidTarget(
            "resource must be an absolute URI without a fragment".into(),
        ));
    }
    if !state.settings.audiences().contains(&resource) {
        return Err(OAuthError::InvalidTarget(
            "This server issues no tokens for that resource".into(),
        ));
    }
    if resource != state.settings.token_audience()
        && !client.may_ask_for(resource, &state.settings.registration.resources)
    {
        return Err(OAuthError::InvalidTarget(
            "This app may not ask for tokens for that resource: an administrator binds resource servers to apps".into(),
        ));
    }
    Ok(resource.to_owned())
}

/// The audience of a grant bound to a resource at authorization: that resource, which the
/// token request may repeat but not change.
pub fn bound_audience(
    bound: Option<&str>,
    asked: Option<&str>,
    requested: String,
) -> Result<String, OAuthError> {
    match (bound, asked) {
        (None, _) => Ok(requested),
        (Some(bound), Some(asked)) if asked != bound => Err(OAuthError::InvalidTarget(
            "The authorization was for another resource".into(),
        )),
        (Some(bound), _) => Ok(bound.to_owned()),
    }
}

/// Sign an access token for `grant` (the metrics' label); its lifetime in seconds with it.
pub fn mint(
    state: &AppState,
    grant: &'static str,
    client_id: &str,
    subject: Subject<'_>,
    scopes: &ScopeSet,
    aud: String,
) -> Result<(String, i64), OAuthError> {
    let now = state.now().and_utc().timestamp();
    let ttl = match subject.not_after {
        Some(at) => state.settings.access_token_ttl.num_seconds().min(at - now),
        None => state.settings.access_token_ttl.num_seconds(),
    };
    if ttl <= 0 {
        return Err(OAuthError::InvalidRequest(
            "The credential presented expires now".into(),
        ));
    }
    let claims = AccessClaims {
        iss: state.settings.issuer.clone(),
        sub: subject.sub.to_owned(),
        aud,
        client_id: client_id.to_owned(),
        scope: scopes.to_storage(),
        iat: now,
        exp: now + ttl,
        jti: denylist::new_jti(subject.grant),
        auth_time: subject.auth_time.map(|t| t.and_utc().timestamp()),
        workspace: subject.workspace,
        key: subject.key,
        act: subject.act,
        cnf: subject.jkt.map(|jkt| crate::jwt::Confirmation { jkt }),
    };
    let ring = state.key_ring();
    let token = ring.sign(&claims).map_err(|e| {
        log::error!("signing an access token: {e}");
        OAuthError::ServerError("The token could not be signed".into())
    })?;
    crate::metrics::token_issued(grant, ring.signing_alg());
    Ok((token, ttl))
}

/// An OAuth security event for the audit log (a failure to write it is logged, not fatal).
pub async fn record(
    state: &AppState,
    action: crate::audit::Action,
    user_id: &str,
    details: serde_json::Value,
) {
    let mut event = crate::audit::NewEvent::new(action);
    event.subject_user_id = Some(user_id.to_owned());
    event.details = details;
    let now = state.now();
    if let Err(e) = state
        .db(move |c| crate::audit::record(c, &event, now))
        .await
    {
        log::error!("could not audit {}: {e}", action.as_str());
    }
}
