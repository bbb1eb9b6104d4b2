//! What grants cost the database: only a new code commits without waiting for the disk, and a
//! remembered approval takes one trip.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{REDIRECT, authorize, authorize_url, exchange, query_of, register};

#[derive(diesel::QueryableByName)]
struct Setting {
    #[diesel(sql_type = diesel::sql_types::Text)]
    synchronous_commit: String,
}

fn synchronous_commit(pg: &mut diesel::PgConnection) -> String {
    use diesel::RunQueryDsl;
    diesel::sql_query("SHOW synchronous_commit")
        .get_result::<Setting>(pg)
        .expect("SHOW")
        .synchronous_commit
}

both_backends!(
    a_new_code_commits_without_waiting_for_the_disk_and_nothing_else_does,
    |app| async move {
        use diesel::prelude::*;
        use gatehouse::db::DbConn;
        use gatehouse::db::schema::{auth_codes, users};
        use gatehouse::grants::{NewCode, issue_code, issue_code_relaxed};
        app.login_admin().await;
        let client = register(app, false, true).await;
        let pepper = app.state.digest_pepper.clone();
        let now = app.state.now();
        let mut conn = app.state.pool.get().expect("a pooled connection");
        let user_id: String = users::table
            .select(users::id)
            .first(&mut *conn)
            .expect("the admin");
        let new = NewCode {
            client_id: client.id.clone(),
            user_id,
            redirect_uri: REDIRECT.into(),
            scopes: gatehouse::scopes::ScopeSet::parse("read:users").unwrap(),
            code_challenge: None,
            auth_time: now,
            resource: None,
            nonce: Some("n-0S6".into()),
            session_id: None,
            workspace_id: None,
        };
        let codes = |conn: &mut DbConn| -> i64 {
            auth_codes::table
                .count()
                .get_result(conn)
                .expect("count codes")
        };
        let before = codes(&mut conn);
        // The cluster's own default may be either (CI's throwaway cluster runs with it off):
        // this connection starts from `on`, as a production server's does.
        if let DbConn::Pg(pg) = &mut *conn {
            diesel::sql_query("SET synchronous_commit = on")
                .execute(pg)
                .expect("SET");
        }
        // Outside a transaction (as the authorization endpoint issues): stored, and the
        // connection's later statements (a spend, a rotation) commit synchronously again.
        issue_code(&mut conn, &pepper, &new, now).expect("issued");
        assert_eq!(codes(&mut conn), before + 1);
        if let DbConn::Pg(pg) = &mut *conn {
            assert_eq!(synchronous_commit(pg), "on");
        }
        // Inside a transaction the code is written as any other row: the enclosing transaction
        // (which may hold other writes) is never relaxed.
        let plain: &mut DbConn = &mut conn;
        plain
            .transaction::<_, diesel::result::Error, _>(|conn| {
                issue_code(conn, &pepper, &new, now).expect("issued in a transaction");
                if let DbConn::Pg(pg) = conn {
                    assert_eq!(synchronous_commit(pg), "on");
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(codes(&mut conn), before + 2);
        // The relaxed statement's setting is in force for its own transaction (the planner
        // does not drop the `set_config`), and only there.
        if let DbConn::Pg(pg) = &mut *conn {
            pg.transaction::<_, diesel::result::Error, _>(|pg| {
                issue_code_relaxed(pg, "digest-of-a-relaxed-code", &new, now).expect("issued");
                assert_eq!(synchronous_commit(pg), "off");
                Ok(())
            })
            .unwrap();
            assert_eq!(synchronous_commit(pg), "on");
            diesel::sql_query("RESET synchronous_commit")
                .execute(pg)
                .expect("RESET");
        }
        assert_eq!(
            codes(&mut conn),
            before
                + if app.backend == crate::helpers::Backend::Postgres {
                    3
                } else {
                    2
                }
        );
    }
);

/// Where an authorization request without a live session goes, and the `Location` it names.
async fn signed_out_answer(app: &TestApp, url: &str, cookie: Option<&str>) -> String {
    let mut request = crate::helpers::new_client().get(app.url(url));
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()["location"].to_str().unwrap().to_owned()
}

// The authorization endpoint's round trips to the database, with the caches' answers held
// for the whole test (so that only the request's own work is counted).
both_backends!(
    a_remembered_approval_takes_one_trip_to_the_database,
    settings = |s: &mut gatehouse::config::Settings| {
        s.keys.cache_ttl = std::time::Duration::from_secs(600);
    },
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        assert!(authorize(app, &url, "approve").await.contains_key("code"));
        // Approved before: the session, the approval and the new code in one trip.
        let before = app.state.db_calls();
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            app.state.db_calls() - before,
            1,
            "a remembered approval is one trip to the database"
        );
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let code = query_of(&location)["code"].clone();
        let redeemed = exchange(
            app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
        assert_eq!(redeemed.status(), StatusCode::OK, "the code works");
        // No session cookie: to the sign-in page, without asking the database anything.
        let before = app.state.db_calls();
        let anonymous = signed_out_answer(app, &url, None).await;
        assert!(anonymous.starts_with("/login?next="), "{anonymous}");
        assert_eq!(app.state.db_calls(), before);
        // A cookie that names no session: read once, then the sign-in page.
        let stale =
            signed_out_answer(app, &url, Some("gatehouse_session=ses_notasessionatall")).await;
        assert!(stale.starts_with("/login?next="), "{stale}");
    }
);
