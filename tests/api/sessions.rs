use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, new_client};

fn session_cookie_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("gatehouse_session="))
        .map(|c| {
            c.split(';')
                .next()
                .unwrap()
                .split_once('=')
                .unwrap()
                .1
                .to_owned()
        })
}

/// A request that carries exactly this session cookie (no cookie store).
async fn me_with(app: &crate::helpers::TestApp, cookie: &str) -> StatusCode {
    new_client()
        .get(app.url("/v1/users/me"))
        .header("cookie", format!("gatehouse_session={cookie}"))
        .send()
        .await
        .unwrap()
        .status()
}

both_backends!(logout_ends_the_session_for_good, |app| async move {
    let login = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let cookie = session_cookie_of(&login).unwrap();
    assert_eq!(me_with(app, &cookie).await, StatusCode::OK);
    let csrf = app.session_csrf().await;
    let logout = app.post_form("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(logout.headers().get("location").unwrap(), "/login");
    assert_eq!(
        me_with(app, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "a replayed cookie is dead"
    );
    assert_eq!(app.get("/").await.status(), StatusCode::SEE_OTHER);
});

both_backends!(logout_needs_the_session_csrf_token, |app| async move {
    app.login_admin().await;
    let forged = app.post_form("/logout", &[("csrf_token", "forged")]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.me().await.status(), StatusCode::OK, "still signed in");
});

both_backends!(
    forged_or_garbage_cookies_are_treated_as_signed_out,
    |app| async move {
        let forged = gatehouse::secrets::PlainSecret::generate("ses_");
        assert_eq!(
            me_with(app, forged.expose()).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(me_with(app, "garbage").await, StatusCode::UNAUTHORIZED);
        assert_eq!(
            me_with(app, &"ses_".repeat(500)).await,
            StatusCode::UNAUTHORIZED
        );
        let page = new_client()
            .get(app.url("/account"))
            .header("cookie", format!("gatehouse_session={}", forged.expose()))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            page.headers().get("location").unwrap(),
            "/login?next=/account"
        );
    }
);

both_backends!(
    expired_sessions_are_treated_as_signed_out,
    |app| async move {
        use diesel::prelude::*;
        use gatehouse::db::schema::sessions;
        let cookie = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
        assert_eq!(me_with(app, &cookie).await, StatusCode::OK);
        // Past its absolute expiry.
        let past = gatehouse::accounts::now() - chrono::Duration::minutes(1);
        app.state
            .db(move |c| {
                Ok(diesel::update(sessions::table)
                    .set(sessions::expires_at.eq(past))
                    .execute(c)?)
            })
            .await
            .unwrap();
        assert_eq!(me_with(app, &cookie).await, StatusCode::UNAUTHORIZED);
        let left: i64 = app
            .state
            .db(|c| Ok(sessions::table.count().get_result(c)?))
            .await
            .unwrap();
        assert_eq!(left, 0, "the expired session was deleted");

        // Idle for longer than the idle timeout.
        let cookie = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
        let idle_since = gatehouse::accounts::now() - chrono::Duration::hours(3);
        app.state
            .db(move |c| {
                Ok(diesel::update(sessions::table)
                    .set(sessions::last_seen_at.eq(idle_since))
                    .execute(c)?)
            })
            .await
            .unwrap();
        assert_eq!(me_with(app, &cookie).await, StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    each_login_starts_a_new_session_and_ends_the_old_one,
    |app| async move {
        let first = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
        let second = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
        assert_ne!(first, second);
        assert_eq!(
            me_with(app, &first).await,
            StatusCode::UNAUTHORIZED,
            "the session the browser had is gone"
        );
        assert_eq!(me_with(app, &second).await, StatusCode::OK);
    }
);

both_backends!(sessions_are_stored_only_as_digests, |app| async move {
    use diesel::prelude::*;
    use gatehouse::db::schema::sessions;
    let cookie = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
    let digests: Vec<String> = app
        .state
        .db(|c| Ok(sessions::table.select(sessions::token_digest).load(c)?))
        .await
        .unwrap();
    assert_eq!(digests.len(), 1);
    assert_ne!(digests[0], cookie);
    assert!(!digests[0].contains(&cookie[4..]));
    assert_eq!(digests[0].len(), 64);
});

both_backends!(
    changing_the_password_ends_other_sessions_but_not_this_one,
    |app| async move {
        let (_other_browser, other) = app.login_in_new_browser(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let other_cookie = session_cookie_of(&other).unwrap();
        app.login_admin().await;
        let csrf = app.session_csrf().await;

        let wrong_current = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", &csrf),
                    ("current_password", "not it at all"),
                    ("new_password", "brand new password"),
                    ("confirm_password", "brand new password"),
                ],
            )
            .await;
        assert_eq!(wrong_current.status(), StatusCode::BAD_REQUEST);
        let mismatch = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", &csrf),
                    ("current_password", ADMIN_PASSWORD),
                    ("new_password", "brand new password"),
                    ("confirm_password", "another one here"),
                ],
            )
            .await;
        assert_eq!(mismatch.status(), StatusCode::BAD_REQUEST);
        let too_short = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", &csrf),
                    ("current_password", ADMIN_PASSWORD),
                    ("new_password", "short"),
                    ("confirm_password", "short"),
                ],
            )
            .await;
        assert_eq!(too_short.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            me_with(app, &other_cookie).await,
            StatusCode::OK,
            "failed attempts change nothing"
        );

        let changed = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", &csrf),
                    ("current_password", ADMIN_PASSWORD),
                    ("new_password", "brand new password"),
                    ("confirm_password", "brand new password"),
                ],
            )
            .await;
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            me_with(app, &other_cookie).await,
            StatusCode::UNAUTHORIZED,
            "the other browser is signed out"
        );
        assert_eq!(
            app.me().await.status(),
            StatusCode::OK,
            "this browser stays signed in"
        );
        assert_eq!(
            app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            app.login(ADMIN_EMAIL, "brand new password").await.status(),
            StatusCode::SEE_OTHER
        );
    }
);

// Sessions read the server's clock: the idle limit (2 h) and the absolute one (24 h) pass
// without touching the rows.
both_backends!(sessions_end_on_the_servers_clock, |app| async move {
    let cookie = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
    app.clock.advance(chrono::Duration::minutes(110));
    assert_eq!(
        me_with(app, &cookie).await,
        StatusCode::OK,
        "within the idle limit"
    );
    app.clock.advance(chrono::Duration::minutes(110));
    assert_eq!(
        me_with(app, &cookie).await,
        StatusCode::OK,
        "used: idle time starts again"
    );
    app.clock.advance(chrono::Duration::minutes(121));
    assert_eq!(
        me_with(app, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "idle too long"
    );

    // Used every 100 minutes (never idle too long), it lasts until just before 24 h...
    let cookie = session_cookie_of(&app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await).unwrap();
    let last_minute = 24 * 60 - 1;
    let mut elapsed = 0;
    while elapsed < last_minute {
        let step = (last_minute - elapsed).min(100);
        app.clock.advance(chrono::Duration::minutes(step));
        elapsed += step;
        assert_eq!(
            me_with(app, &cookie).await,
            StatusCode::OK,
            "{elapsed} minutes after sign-in"
        );
    }
    // ... and not past it, however used.
    app.clock.advance(chrono::Duration::minutes(2));
    assert_eq!(
        me_with(app, &cookie).await,
        StatusCode::UNAUTHORIZED,
        "24 h at most, however used"
    );
});
