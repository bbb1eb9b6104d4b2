use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, hidden_field};

fn login_error(html: &str) -> Option<String> {
    let start = html.find("id=\"login-error\">")? + "id=\"login-error\">".len();
    let end = html[start..].find('<')?;
    Some(html[start..start + end].to_owned())
}

both_backends!(
    admin_logs_in_with_a_hardened_session_cookie,
    |app| async move {
        let response = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers().get("location").unwrap(), "/");
        let cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("gatehouse_session="))
            .expect("a session cookie");
        assert!(cookie.contains("HttpOnly"), "{cookie}");
        assert!(cookie.contains("SameSite=Lax"), "{cookie}");
        assert!(cookie.contains("Path=/"), "{cookie}");
        assert!(
            !cookie.contains("Secure"),
            "plain-http issuer: no Secure flag ({cookie})"
        );
        let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
        assert!(value.starts_with("ses_"));
        let me = app.me().await;
        assert_eq!(me.status(), StatusCode::OK);
    }
);

both_backends!(
    wrong_password_and_unknown_email_get_the_same_answer,
    |app| async move {
        let wrong = app.login(ADMIN_EMAIL, "not the password").await;
        let wrong_status = wrong.status();
        let wrong_message = login_error(&wrong.text().await.unwrap());
        let unknown = app.login("nobody@example.com", "not the password").await;
        let unknown_status = unknown.status();
        let unknown_message = login_error(&unknown.text().await.unwrap());
        let invalid = app.login("not an email", "whatever").await;
        let invalid_status = invalid.status();
        let invalid_message = login_error(&invalid.text().await.unwrap());
        assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
        assert_eq!(unknown_status, wrong_status);
        assert_eq!(invalid_status, wrong_status);
        assert_eq!(
            wrong_message.as_deref(),
            Some("Incorrect email or password.")
        );
        assert_eq!(unknown_message, wrong_message);
        assert_eq!(invalid_message, wrong_message);
        assert_eq!(
            app.me().await.status(),
            StatusCode::UNAUTHORIZED,
            "no session was created"
        );
    }
);

both_backends!(
    login_without_or_with_a_wrong_csrf_token_is_refused,
    |app| async move {
        // Without the pre-session cookie and token.
        let bare = app
            .post_form(
                "/login",
                &[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)],
            )
            .await;
        assert_eq!(bare.status(), StatusCode::FORBIDDEN);
        // With the cookie but a forged token.
        let _ = app.login_csrf().await;
        let forged = app
            .post_form(
                "/login",
                &[
                    ("csrf_token", "0".repeat(64).as_str()),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(forged.status(), StatusCode::FORBIDDEN);
        // A token from another browser's cookie does not fit this browser's cookie.
        let other = crate::helpers::new_client();
        let page = other
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let foreign_token = hidden_field(&page, "csrf_token").unwrap();
        let crossed = app
            .post_form(
                "/login",
                &[
                    ("csrf_token", foreign_token.as_str()),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                ],
            )
            .await;
        assert_eq!(crossed.status(), StatusCode::FORBIDDEN);
        assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    too_many_failures_for_an_account_answer_429_with_retry_after,
    |app| async move {
        for _ in 0..5 {
            assert_eq!(
                app.login(ADMIN_EMAIL, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let throttled = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(
            throttled.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "even the right password waits"
        );
        let retry: u64 = throttled
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
        assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    too_many_failures_from_one_address_answer_429,
    |app| async move {
        for i in 0..20 {
            let email = format!("guess{i}@example.com");
            assert_eq!(
                app.login(&email, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let throttled = app.login("another@example.com", "wrong password").await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.headers().get("retry-after").is_some());
    }
);

both_backends!(a_disabled_user_cannot_log_in, |app| async move {
    let id = app
        .create_user("dora@example.com", "dora password 1", false)
        .await;
    assert_eq!(
        app.login("dora@example.com", "dora password 1")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let disabled = app
        .state
        .db(move |c| {
            gatehouse::accounts::model::set_disabled(c, &id, true, gatehouse::accounts::now())
        })
        .await
        .unwrap();
    assert!(disabled);
    assert_eq!(
        app.me().await.status(),
        StatusCode::UNAUTHORIZED,
        "the running session ended"
    );
    let again = app.login("dora@example.com", "dora password 1").await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_error(&again.text().await.unwrap()).as_deref(),
        Some("Incorrect email or password.")
    );
});

both_backends!(login_returns_to_a_local_target_only, |app| async move {
    let page = app.get("/login?next=/account").await.text().await.unwrap();
    assert_eq!(hidden_field(&page, "next").as_deref(), Some("/account"));
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let local = app
        .post_form(
            "/login",
            &[
                ("csrf_token", &csrf),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", "/account"),
            ],
        )
        .await;
    assert_eq!(local.headers().get("location").unwrap(), "/account");
    for evil in [
        "//evil.test",
        "https://evil.test",
        "/\\evil.test",
        "/\t/evil.test",
        "javascript:alert(1)",
    ] {
        let client = crate::helpers::new_client();
        let page = client
            .get(app.url("/login"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_field(&page, "csrf_token").unwrap();
        let response = client
            .post(app.url("/login"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", ADMIN_EMAIL),
                ("password", ADMIN_PASSWORD),
                ("next", evil),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers().get("location").unwrap(),
            "/",
            "{evil:?} must be ignored"
        );
    }
});

both_backends!(login_page_cannot_be_framed_or_cached, |app| async move {
    let page = app.get("/login").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers().get("x-frame-options").unwrap(), "DENY");
    assert!(
        page.headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    assert_eq!(page.headers().get("cache-control").unwrap(), "no-store");
    assert!(
        page.headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
});

both_backends!(
    an_oversized_or_malformed_login_form_is_a_clean_4xx,
    |app| async move {
        let big = "x".repeat(100 * 1024);
        // The server answers before reading the body and closes the connection: do not reuse it.
        let response = app
            .client
            .post(app.url("/login"))
            .header("connection", "close")
            .form(&[("email", big.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        let wrong_type = app
            .client
            .post(app.url("/login"))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
);

#[actix_web::test]
async fn https_issuer_makes_cookies_secure_and_host_prefixed() {
    let Some(app) = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.issuer = "https://auth.example.test".into();
    })
    .await
    else {
        return;
    };
    let response = app.get("/login").await;
    let csrf_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csrf_cookie.starts_with("__Host-"), "{csrf_cookie}");
    assert!(csrf_cookie.contains("Secure"), "{csrf_cookie}");
    // The cookie store will not send a Secure cookie over http, so send it by hand.
    let cookie_pair = csrf_cookie.split(';').next().unwrap().to_owned();
    let csrf = hidden_field(&response.text().await.unwrap(), "csrf_token").unwrap();
    let login = crate::helpers::new_client()
        .post(app.url("/login"))
        .header("cookie", cookie_pair)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ADMIN_EMAIL),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.contains("gatehouse_session="))
        .unwrap();
    assert!(
        session.starts_with("__Host-gatehouse_session="),
        "{session}"
    );
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    app.stop().await;
}
