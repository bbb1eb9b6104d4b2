//! The audit events of the token endpoint and of revocation. Revoking an access or refresh
//! token is recorded with who revoked it, the client and the kind of token (never the token).
//! `client_credentials` issuance is hot (a machine may ask every few seconds), so it is counted
//! in memory and recorded as at most one event per client per minute, with the count: the
//! window is written when the next issuance finds it a minute old, by housekeeping, or at
//! shutdown.

use serde_json::json;

use crate::audit::{self, Action, NewEvent};
use crate::db::DbError;
use crate::state::AppState;

pub use crate::cache::issuances::{ISSUANCE_WINDOW, IssuanceTally, Issuances};

/// Count a `client_credentials` token; record the client's previous minute if it is over (a
/// failure to write is logged: auditing never refuses a token).
pub async fn client_credentials_issued(state: &AppState, client_id: &str) {
    let details = json!({ "client_id": client_id });
    issued(state, Action::ClientCredentialsIssued, details, None).await;
}

/// Count a token exchange (RFC 8693), per user, credential presented and requesting client.
pub async fn token_exchanged(state: &AppState, details: serde_json::Value, user_id: &str) {
    issued(state, Action::TokenExchanged, details, Some(user_id)).await;
}

async fn issued(
    state: &AppState,
    action: Action,
    details: serde_json::Value,
    user_id: Option<&str>,
) {
    if let Some(closed) = state.issuances.note(action, details, user_id, state.now())
        && let Err(e) = record(state, vec![closed]).await
    {
        log::error!("could not audit {}: {e}", action.as_str());
    }
}

/// Record the windows a minute old (housekeeping), or every window (`everything`, at shutdown).
pub async fn flush_issuances(state: &AppState, everything: bool) -> Result<usize, DbError> {
    let due = state.issuances.take_due(state.now(), everything);
    let n = due.len();
    record(state, due).await?;
    Ok(n)
}

async fn record(state: &AppState, windows: Vec<Issuances>) -> Result<(), DbError> {
    if windows.is_empty() {
        return Ok(());
    }
    let now = state.now();
    state
        .db(move |c| {
            windows
                .iter()
                .try_for_each(|w| audit::record(c, &w.event(), now))
        })
        .await
}

/// Who revoked a token at `/oauth/revoke`.
#[derive(Debug, Clone, Default)]
pub struct Revoker {
    /// A client authenticating as at the token endpoint.
    pub client_id: Option<String>,
    /// A user presenting a Bearer credential of theirs.
    pub user_id: Option<String>,
    pub key_id: Option<String>,
    pub ip: Option<String>,
}

/// The token revoked: its kind, the client it was issued to, the user it acts for, and the
/// grant (refresh family) or `jti` that names it — never the token itself.
#[derive(Debug, Clone)]
pub struct RevokedToken {
    pub token_type: &'static str,
    pub client_id: String,
    pub user_id: String,
    pub reference: String,
}

/// Record a revocation (a failure to write is logged: the token is revoked either way).
pub async fn token_revoked(state: &AppState, by: Revoker, token: RevokedToken) {
    let mut event = NewEvent::new(Action::TokenRevoked);
    event.actor_user_id = by.user_id;
    event.actor_key_id = by.key_id;
    event.ip = by.ip;
    // A client's token for itself (client_credentials) has the client id as `sub`.
    event.subject_user_id = Some(token.user_id).filter(|u| *u != token.client_id);
    event.details = json!({
        "token_type": token.token_type,
        "client_id": token.client_id,
        "revoked_by_client": by.client_id,
        "grant": token.reference,
    });
    let now = state.now();
    if let Err(e) = state.db(move |c| audit::record(c, &event, now)).await {
        log::error!("could not audit a token revocation: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn at(seconds: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0)
            .unwrap()
            .naive_utc()
    }

    fn note(tally: &IssuanceTally, client: &str, at: NaiveDateTime) -> Option<Issuances> {
        let details = json!({ "client_id": client });
        tally.note(Action::ClientCredentialsIssued, details, None, at)
    }

    #[test]
    fn issuances_of_a_client_are_gathered_per_minute() {
        let tally = IssuanceTally::default();
        for s in [0, 10, 59] {
            assert_eq!(note(&tally, "cli_a", at(s)), None);
        }
        assert_eq!(note(&tally, "cli_b", at(30)), None);
        let closed = note(&tally, "cli_a", at(60)).expect("the first minute is over");
        assert_eq!(
            (closed.count, closed.first_at, closed.last_at),
            (3, at(0), at(59))
        );
        let due = tally.take_due(at(95), false);
        assert_eq!(
            due.len(),
            1,
            "cli_b's minute is over, cli_a's new one is not"
        );
        assert_eq!(
            (due[0].details["client_id"].as_str(), due[0].count),
            (Some("cli_b"), 1)
        );
        let rest = tally.take_due(at(95), true);
        assert_eq!((rest.len(), rest[0].count), (1, 1));
        assert!(tally.take_due(at(500), true).is_empty());
    }
}
