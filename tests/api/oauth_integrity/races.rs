//! One code or refresh token presented many times at once: over HTTP and released together on
//! pooled connections, it is spent or rotated exactly once (and a race ends the family).

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{
    REDIRECT, TestClient, code_for, exchange, oauth_error, obtain_tokens, register,
};

/// Six requests at once presenting the same credential to the token endpoint: exactly one
/// answers 200, the others `invalid_grant`. The winner's answer.
async fn one_of_six_wins(app: &TestApp, client: &TestClient, form: &[(&str, &str)]) -> Value {
    let one = || async {
        let answer = exchange(app, client, form).await;
        let status = answer.status();
        (status, answer.json::<Value>().await.unwrap())
    };
    let (a, b, c, d, e, f) = tokio::join!(one(), one(), one(), one(), one(), one());
    let answers = [a, b, c, d, e, f];
    let (won, lost): (Vec<_>, Vec<_>) = answers.iter().partition(|(s, _)| *s == StatusCode::OK);
    assert_eq!(won.len(), 1, "exactly one wins: {answers:?}");
    for (status, body) in lost {
        assert_eq!(
            (*status, body["error"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"))
        );
    }
    won[0].1.clone()
}

/// The refresh token no longer works.
async fn assert_refresh_refused(app: &TestApp, client: &TestClient, refresh: &str) {
    let answer = exchange(
        app,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        oauth_error(answer).await,
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

both_backends!(
    racing_redemptions_of_one_code_give_tokens_once_and_revoke_them,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = code_for(app, &client, "read:users").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ];
        let won = one_of_six_wins(app, &client, &form).await;
        // The others were replays of a spent code: what the winner got is revoked.
        assert_refresh_refused(app, &client, won["refresh_token"].as_str().unwrap()).await;
        let access = won["access_token"].as_str().unwrap();
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

both_backends!(
    racing_refreshes_of_one_token_rotate_it_once_and_end_the_family,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ];
        let won = one_of_six_wins(app, &client, &form).await;
        // Without a grace window every other presentation is a reuse: the family ends, the
        // winner's new refresh token with it.
        assert_refresh_refused(app, &client, won["refresh_token"].as_str().unwrap()).await;
    }
);

/// Eight threads, each on its own pooled connection, released at once by a barrier: what each
/// got from `work`. The database functions themselves, so that every read happens before any
/// write has committed (HTTP requests arrive too spread out to be sure of that).
fn eight_threads_at_once<T: Send>(
    app: &TestApp,
    work: impl Fn(&mut gatehouse::db::DbConn) -> T + Sync,
) -> Vec<T> {
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let (barrier, work, pool) = (&barrier, &work, &app.state.pool);
                scope.spawn(move || {
                    let mut conn = pool.get().expect("a pooled connection");
                    barrier.wait();
                    work(&mut conn)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    })
}

fn policy() -> gatehouse::grants::FamilyPolicy {
    gatehouse::grants::FamilyPolicy {
        absolute: chrono::Duration::days(30),
        idle: chrono::Duration::days(14),
        reuse_grace: chrono::Duration::zero(),
    }
}

both_backends!(
    eight_rotations_of_one_token_released_together_give_one_new_token,
    |app| async move {
        use gatehouse::grants::{Refresh, rotate};
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        let (pepper, now) = (app.state.digest_pepper.clone(), app.state.now());
        let outcomes = eight_threads_at_once(app, |conn| {
            match rotate(
                conn,
                &pepper,
                &refresh,
                &client.id,
                None,
                None,
                policy(),
                now,
            ) {
                Ok(Refresh::Rotated { .. }) => "rotated",
                Ok(Refresh::Reused { .. }) => "reused",
                Ok(_) => "refused",
                Err(e) => panic!("rotation failed: {e}"),
            }
        });
        let rotated = outcomes.iter().filter(|o| **o == "rotated").count();
        assert_eq!(rotated, 1, "one rotation: {outcomes:?}");
        // The others are reuses, or find the family a reuse revoked already.
        assert!(outcomes.contains(&"reused"), "{outcomes:?}");
    }
);

both_backends!(
    eight_redemptions_of_one_code_released_together_spend_it_once,
    |app| async move {
        use gatehouse::grants::{
            CodeRequest, NewGrant, Redemption, claim_code, find_code, redeem_code_pg,
        };
        app.login_admin().await;
        let client = register(app, false, true).await;
        let code = code_for(app, &client, "read:users").await;
        let pepper = app.state.digest_pepper.clone();
        let now = app.state.now();
        let request = CodeRequest {
            client_id: &client.id,
            redirect_uri: Some(REDIRECT),
            code_verifier: None,
        };
        // As the token endpoint redeems: PostgreSQL's one statement, else (SQLite, or when it
        // spent nothing) the read and then the claim — with every thread's read done before
        // any claim, the interleaving the claim's own condition must settle.
        let read_done = std::sync::Barrier::new(8);
        let outcomes = eight_threads_at_once(app, |conn| {
            let family = gatehouse::ids::new_id(gatehouse::ids::IdKind::RefreshFamily);
            let one = redeem_code_pg(
                conn,
                &pepper,
                &code,
                &request,
                None,
                &family,
                policy(),
                None,
                now,
            )
            .expect("the statement runs");
            let found = match one {
                Some(_) => None,
                None => {
                    Some(find_code(conn, &pepper, &code, &request, now).expect("the read runs"))
                }
            };
            read_done.wait();
            let Some(Redemption::Usable(found, _)) = found else {
                return if one.is_some() {
                    "spent in one statement"
                } else {
                    "refused"
                };
            };
            let scopes = gatehouse::scopes::ScopeSet::parse(&found.scopes).unwrap();
            let grant = NewGrant {
                family_id: &family,
                scopes: &scopes,
                policy: policy(),
            };
            match claim_code(conn, &pepper, &found, grant, now).expect("the claim runs") {
                Some(_) => "spent by the claim",
                None => "lost the claim",
            }
        });
        let spent: Vec<_> = outcomes.iter().filter(|o| o.starts_with("spent")).collect();
        assert_eq!(spent.len(), 1, "one redemption: {outcomes:?}");
        if app.backend == crate::helpers::Backend::Postgres {
            assert_eq!(*spent[0], "spent in one statement", "{outcomes:?}");
        }
    }
);
