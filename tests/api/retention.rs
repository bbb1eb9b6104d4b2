//! The janitor: every kind of ended row goes, live rows stay and keep working, backlogs are
//! deleted in batches, audit events follow the retention setting, and on PostgreSQL one
//! instance at a time does the work.

use chrono::Duration;
use diesel::prelude::*;
use gatehouse::db::schema::{
    audit_events, auth_codes, backchannel_logouts, login_failures, refresh_families,
    refresh_tokens, revoked_access_tokens, sessions,
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{TestClient, code_for, exchange, obtain_tokens, register};

/// Rows per table, in the order of `gatehouse::retention::Swept::by_table`.
async fn counts(app: &TestApp) -> [i64; 8] {
    app.state
        .db(|c| {
            Ok([
                auth_codes::table.count().get_result(c)?,
                refresh_families::table.count().get_result(c)?,
                refresh_tokens::table.count().get_result(c)?,
                revoked_access_tokens::table.count().get_result(c)?,
                sessions::table.count().get_result(c)?,
                login_failures::table.count().get_result(c)?,
                audit_events::table.count().get_result(c)?,
                backchannel_logouts::table.count().get_result(c)?,
            ])
        })
        .await
        .unwrap()
}

fn field(tokens: &Value, name: &str) -> String {
    tokens[name].as_str().unwrap().to_owned()
}

async fn revoke(app: &TestApp, client: &TestClient, token: &str) {
    let response = reqwest::Client::new()
        .post(app.url("/oauth/revoke"))
        .basic_auth(&client.id, client.secret.as_ref())
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn refresh(app: &TestApp, client: &TestClient, token: &str) -> reqwest::Response {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    exchange(app, client, &form).await
}

/// A month of rows of every kind, then a fresh sign-in: returns the fresh refresh token.
async fn a_month_of_rows_then_a_fresh_grant(app: &TestApp, client: &TestClient) -> String {
    let old = obtain_tokens(app, client).await;
    let rotated: Value = refresh(app, client, &field(&old, "refresh_token"))
        .await
        .json()
        .await
        .unwrap();
    revoke(app, client, &field(&rotated, "access_token")).await;
    let _unspent = code_for(app, client, "read:users").await;
    // A back-channel logout notice, delivered (finished notices stay 30 days).
    let (client_id, now) = (client.id.clone(), app.state.now());
    let me: Value = app.me().await.json().await.unwrap();
    let user_id = me["data"]["id"].as_str().unwrap().to_owned();
    app.state
        .db(move |c| {
            diesel::insert_into(backchannel_logouts::table)
                .values((
                    backchannel_logouts::id.eq("bcl_old"),
                    backchannel_logouts::client_id.eq(&client_id),
                    backchannel_logouts::user_id.eq(&user_id),
                    backchannel_logouts::reason.eq("logout"),
                    backchannel_logouts::created_at.eq(now),
                    backchannel_logouts::next_attempt_at.eq(now),
                    backchannel_logouts::delivered_at.eq(now),
                ))
                .execute(c)?;
            Ok(())
        })
        .await
        .unwrap();
    // A session that nobody ends by signing in again (that would delete it on the spot).
    app.create_user("kim@example.com", "kim's long passphrase 2026", false)
        .await;
    let (_, kim) = app
        .login_in_new_browser("kim@example.com", "kim's long passphrase 2026")
        .await;
    assert_eq!(kim.status(), StatusCode::SEE_OTHER);

    // Past the refresh family's 30 days, the session's 24 hours, the code's hour of grace and
    // the revocation's 15 minutes.
    app.clock.advance(Duration::days(31));
    app.login_admin().await;
    // A failed login, an hour old by the time the janitor runs (every attempt deletes failures
    // older than that, so it comes after the last sign-in).
    let (_, wrong) = app
        .login_in_new_browser("kim@example.com", "not kim's passphrase")
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    app.clock.advance(Duration::minutes(61));
    field(&obtain_tokens(app, client).await, "refresh_token")
}

both_backends!(
    every_kind_of_ended_row_goes_and_live_rows_keep_working,
    settings = |s: &mut gatehouse::config::Settings| s.audit_retention = Some(Duration::days(30)),
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let live = a_month_of_rows_then_a_fresh_grant(app, &client).await;
        let before = counts(app).await;

        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .expect("not locked");
        let after = counts(app).await;
        for ((table, deleted), (was, is)) in swept.by_table().iter().zip(before.iter().zip(after)) {
            assert!(*deleted > 0, "nothing deleted from {table}");
            assert_eq!(
                was - is,
                *deleted as i64,
                "{table}: the count fell by what was reported"
            );
        }
        // What is left is the live grant (one code, one family with its one token), the live
        // session, and this month's audit events.
        assert_eq!(after[..6], [1, 1, 1, 0, 1, 0], "{after:?}");
        assert!(after[6] > 0, "recent audit events are kept");

        // The live grant and session still work; a second pass finds nothing.
        assert_eq!(refresh(app, &client, &live).await.status(), StatusCode::OK);
        assert_eq!(app.me().await.status(), StatusCode::OK);
        let again = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.total(), 0, "{again:?}");
    }
);

both_backends!(
    audit_events_are_kept_for_ever_when_retention_is_zero_days,
    settings = |s: &mut gatehouse::config::Settings| s.audit_retention = None,
    |app| async move {
        app.login_admin().await;
        let before = counts(app).await[6];
        assert!(before > 0);
        app.clock.advance(Duration::days(4000));
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.audit_events, 0);
        assert_eq!(counts(app).await[6], before);
    }
);

both_backends!(
    a_backlog_larger_than_a_batch_goes_in_one_pass,
    |app| async move {
        let total = gatehouse::retention::BATCH as usize * 2 + 37;
        let now = app.state.now();
        app.state
            .db(move |c| {
                c.transaction(|c| {
                    for i in 0..total {
                        diesel::insert_into(revoked_access_tokens::table)
                            .values((
                                revoked_access_tokens::id.eq(format!("jti_{i}")),
                                revoked_access_tokens::expires_at.eq(now),
                                revoked_access_tokens::created_at.eq(now - Duration::minutes(15)),
                            ))
                            .execute(c)?;
                    }
                    Ok::<_, diesel::result::Error>(())
                })?;
                Ok(())
            })
            .await
            .unwrap();
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.revoked_access_tokens, total);
        assert_eq!(counts(app).await[3], 0);
    }
);

/// Another instance holding the janitor's lock: this one skips its pass, then sweeps once the
/// lock is free.
#[actix_web::test]
async fn on_postgres_one_instance_sweeps_at_a_time() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    let url = app.state.settings.database.clone();
    let mut other = gatehouse::db::connect_one(&url).unwrap();
    let gatehouse::db::DbConn::Pg(inner) = &mut other else {
        panic!("a PostgreSQL connection")
    };
    let lock = "SELECT pg_advisory_lock(x'67682d6a616e6974'::bigint)";
    diesel::sql_query(lock).execute(inner).unwrap();
    assert_eq!(gatehouse::retention::run(&app.state).await.unwrap(), None);
    diesel::sql_query(lock.replace("pg_advisory_lock", "pg_advisory_unlock"))
        .execute(inner)
        .unwrap();
    assert!(
        gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .is_some()
    );
    app.stop().await;
}
