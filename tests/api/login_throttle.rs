//! The sign-in throttle under attack: concurrent guesses, the window on the server's clock,
//! per-address limits behind a trusted proxy, and the bound on argon2 work running at once.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp};

fn retry_after(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds")
}

/// A login through a proxy that says the client is `forwarded_for`.
async fn login_via(
    app: &TestApp,
    forwarded_for: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let csrf = app.login_csrf().await;
    app.client
        .post(app.url("/login"))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", email),
            ("password", password),
        ])
        .send()
        .await
        .expect("request")
}

both_backends!(
    concurrent_wrong_passwords_reach_argon2_at_most_the_limit,
    |app| async move {
        let csrf = app.login_csrf().await;
        let before = app.state.password_gate.verifications();
        let guesses: Vec<_> = (0..40)
            .map(|i| {
                let (client, url, csrf) = (app.client.clone(), app.url("/login"), csrf.clone());
                actix_web::rt::spawn(async move {
                    let password = format!("wrong password {i}");
                    client
                        .post(url)
                        .form(&[
                            ("csrf_token", csrf.as_str()),
                            ("email", ADMIN_EMAIL),
                            ("password", password.as_str()),
                        ])
                        .send()
                        .await
                        .expect("request")
                })
            })
            .collect();
        let (mut refused, mut throttled) = (0, 0);
        for guess in guesses {
            let response = guess.await.unwrap();
            match response.status() {
                StatusCode::UNAUTHORIZED => refused += 1,
                StatusCode::TOO_MANY_REQUESTS => {
                    assert!((1..=60).contains(&retry_after(&response)));
                    throttled += 1;
                }
                other => panic!("unexpected answer {other} to a wrong password"),
            }
        }
        // Attempts refused in the race take their reservation back, so fewer than 5 may be
        // checked; never more.
        let checked = app.state.password_gate.verifications() - before;
        assert!(checked <= 5, "{checked} passwords were checked, limit 5");
        assert_eq!(refused, checked, "every check was a refusal");
        assert_eq!(refused + throttled, 40);
        for _ in checked..5 {
            let response = app.login(ADMIN_EMAIL, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        assert_eq!(
            app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "five failures in the window: the right password waits too"
        );
    }
);

both_backends!(
    a_throttled_account_signs_in_again_once_the_window_has_passed,
    |app| async move {
        for _ in 0..5 {
            let response = app.login(ADMIN_EMAIL, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let throttled = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&throttled);
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        app.clock
            .advance(chrono::Duration::seconds(wait as i64 - 1));
        assert_eq!(
            app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "still inside the window"
        );
        app.clock.advance(chrono::Duration::seconds(1));
        assert_eq!(
            app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
            StatusCode::SEE_OTHER,
            "the window has passed"
        );
    }
);

both_backends!(
    failures_from_one_forwarded_address_limit_that_address_only,
    settings = |s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()],
    |app| async move {
        for i in 0..20 {
            let email = format!("guess{i}@example.com");
            let response = login_via(app, "203.0.113.7", &email, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let limited = login_via(app, "203.0.113.7", "one-more@example.com", "wrong").await;
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(retry_after(&limited) >= 1);
        let other = login_via(app, "203.0.113.8", "one-more@example.com", "wrong").await;
        assert_eq!(
            other.status(),
            StatusCode::UNAUTHORIZED,
            "another client behind the same proxy is not limited"
        );
        let admin = login_via(app, "203.0.113.9", ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(admin.status(), StatusCode::SEE_OTHER);
    }
);

both_backends!(
    a_spoofed_forwarded_address_from_an_untrusted_peer_is_not_believed,
    settings = |s| s.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()],
    |app| async move {
        // Each guess claims another address; the peer (127.0.0.1) is not a trusted proxy.
        for i in 0..20 {
            let (email, spoofed) = (format!("guess{i}@example.com"), format!("198.51.100.{i}"));
            let response = login_via(app, &spoofed, &email, "wrong password").await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let limited = login_via(app, "198.51.100.200", "fresh@example.com", "wrong").await;
        assert_eq!(
            limited.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "the peer's address is counted, whatever the header says"
        );
    }
);

both_backends!(
    a_full_password_gate_answers_503_with_retry_after_and_counts_nothing,
    settings = |s| {
        s.password_checks.concurrent = 1;
        s.password_checks.queue = 0;
    },
    |app| async move {
        let held = app
            .state
            .password_gate
            .try_occupy()
            .expect("the gate's only slot");
        let busy = app.login(ADMIN_EMAIL, "wrong password").await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after(&busy), 1);
        assert_eq!(app.state.password_gate.verifications(), 0);
        drop(held);
        // The turned-away attempts did not count against the account.
        for _ in 0..4 {
            assert_eq!(
                app.login(ADMIN_EMAIL, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        assert_eq!(
            app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await.status(),
            StatusCode::SEE_OTHER
        );
    }
);
