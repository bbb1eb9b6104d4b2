//! What a user's approval becomes: the remembered consent (`consents`), the single-use code
//! that carries it to the token endpoint (`codes`), and the refresh tokens of the family it
//! starts (`families`) — the only rooms that query `consents`, `auth_codes`,
//! `refresh_families` and `refresh_tokens`, one table's owner each. The grants of the token
//! endpoint are one file each, free of HTTP; what they share is re-exported here.

pub mod audit;
pub mod authorization_code;
pub mod client_credentials;
mod codes;
mod consents;
pub mod device_code;
mod families;
pub mod issue;
pub mod refresh_token;
pub mod token_exchange;

pub use codes::*;
pub use consents::*;
pub use families::*;

use chrono::Duration;

pub const CODE_PREFIX: &str = "ac_";
pub const REFRESH_PREFIX: &str = "rt_";
pub const CODE_LIFETIME: Duration = Duration::seconds(60);
/// How long a code is kept after it expired: a replay inside this window still revokes what
/// the code issued; after it the code is purged and a replay is just an unknown code.
pub const CODE_KEPT_AFTER_EXPIRY: Duration = Duration::hours(1);

/// Revoke the access tokens issued under these grants: each is denied until the last token it
/// can have issued expires (a failure is logged; the refresh side is already revoked).
pub async fn deny_grants(state: &crate::state::AppState, grants: &[String]) {
    if grants.is_empty() {
        return;
    }
    let until = state.now() + state.settings.access_token_ttl + chrono::Duration::minutes(1);
    let entries = grants.iter().map(|g| (g.clone(), until)).collect();
    if let Err(e) = deny(state, entries).await {
        log::error!("could not record revoked grants: {e}");
    }
}

/// Put `jti`s or grant ids on the denylist until the given times: this instance refuses them
/// at once, whatever the database says; the others when they next read the table.
pub async fn deny(
    state: &crate::state::AppState,
    entries: Vec<(String, chrono::NaiveDateTime)>,
) -> Result<(), crate::db::DbError> {
    state.denylist.remember(entries.clone());
    let now = state.now();
    state
        .db(move |c| crate::jwt::denylist::revoke(c, &entries, now))
        .await
}

/// The refresh families' policy of this server (its reuse grace).
pub fn family_policy(state: &crate::state::AppState) -> FamilyPolicy {
    FamilyPolicy {
        reuse_grace: state.settings.refresh_grace,
        ..FamilyPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a+".repeat(30)));
    }

    #[test]
    fn a_code_is_bound_to_its_client_redirect_uri_and_verifier() {
        let now = chrono::Utc::now().naive_utc();
        let code = AuthCode {
            workspace_id: None,
            id: "acd_x".into(),
            code_digest: String::new(),
            client_id: "cli_a".into(),
            user_id: "usr_x".into(),
            redirect_uri: "https://a.example.com/cb".into(),
            scopes: "read:users".into(),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: now,
            created_at: now,
            expires_at: now,
            consumed_at: None,
            resource: None,
            nonce: None,
            session_id: None,
        };
        let right = CodeRequest {
            client_id: "cli_a",
            redirect_uri: Some("https://a.example.com/cb"),
            code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        };
        assert_eq!(right.mismatch(&code), None);
        for wrong in [
            CodeRequest {
                client_id: "cli_b",
                ..right
            },
            CodeRequest {
                redirect_uri: Some("https://a.example.com/cb2"),
                ..right
            },
            CodeRequest {
                redirect_uri: None,
                ..right
            },
            CodeRequest {
                code_verifier: Some("eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                ..right
            },
            CodeRequest {
                code_verifier: None,
                ..right
            },
        ] {
            assert!(wrong.mismatch(&code).is_some(), "{wrong:?}");
        }
    }
}
