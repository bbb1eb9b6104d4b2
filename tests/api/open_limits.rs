//! Rate limits of the endpoints anyone may call: `/oauth/token`, `/oauth/introspect`,
//! `/oauth/revoke` per client address and per named client, and the sign-in and sign-up forms
//! per address. Clients are told apart by a trusted proxy's `X-Forwarded-For`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, TestApp};

fn behind_proxy(s: &mut gatehouse::config::Settings) {
    s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

async fn post_oauth(
    app: &TestApp,
    path: &str,
    forwarded_for: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("x-forwarded-for", forwarded_for)
        .form(form)
        .send()
        .await
        .expect("request")
}

/// A checksum-free garbage refresh grant: refused for want of client authentication.
const GARBAGE_GRANT: &[(&str, &str)] = &[
    ("grant_type", "refresh_token"),
    ("refresh_token", "rt_garbage"),
];

async fn assert_slow_down(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.expect("an RFC 6749 JSON body");
    assert_eq!(body["error"], "slow_down");
    assert!(body["error_description"].is_string());
}

both_backends!(
    a_flood_of_oauth_requests_from_one_address_is_refused_before_the_database,
    settings = |s| {
        behind_proxy(s);
        s.open_limits.oauth_per_address = 5;
    },
    |app| async move {
        let flooder = "203.0.113.7";
        for _ in 0..5 {
            let response = post_oauth(app, "/oauth/token", flooder, GARBAGE_GRANT).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let calls = app.state.db_calls();
        assert_slow_down(post_oauth(app, "/oauth/token", flooder, GARBAGE_GRANT).await).await;
        let token = [("token", "rt_garbage")];
        assert_slow_down(post_oauth(app, "/oauth/introspect", flooder, &token).await).await;
        assert_slow_down(post_oauth(app, "/oauth/revoke", flooder, &token).await).await;
        assert_eq!(
            app.state.db_calls(),
            calls,
            "refusals cost no database work"
        );

        let neighbour = post_oauth(app, "/oauth/token", "203.0.113.8", GARBAGE_GRANT).await;
        assert_eq!(
            neighbour.status(),
            StatusCode::UNAUTHORIZED,
            "another address behind the same proxy has its own allowance"
        );
    }
);

both_backends!(
    a_flood_naming_one_client_is_refused_whatever_the_address,
    settings = |s| {
        behind_proxy(s);
        s.open_limits.oauth_per_client = 3;
    },
    |app| async move {
        let named = |id: &'static str| {
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", "cs_wrong"),
            ]
        };
        for i in 0..3 {
            let address = format!("198.51.100.{i}");
            let response = post_oauth(app, "/oauth/token", &address, &named("cli_flooded")).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let in_body = post_oauth(app, "/oauth/token", "198.51.100.9", &named("cli_flooded")).await;
        assert_slow_down(in_body).await;
        let in_basic = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .header("x-forwarded-for", "198.51.100.10")
            .basic_auth("cli_flooded", Some("cs_wrong"))
            .form(&[("token", "rt_garbage")])
            .send()
            .await
            .unwrap();
        assert_slow_down(in_basic).await;
        let other = post_oauth(app, "/oauth/token", "198.51.100.11", &named("cli_other")).await;
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    a_flood_of_form_posts_from_one_address_gets_429_pages,
    settings = |s| {
        behind_proxy(s);
        s.open_limits.forms_per_address = 3;
        s.signup_enabled = true;
    },
    |app| async move {
        let post_login = |address: &'static str| async move {
            let csrf = app.login_csrf().await;
            app.client
                .post(app.url("/login"))
                .header("x-forwarded-for", address)
                .form(&[
                    ("csrf_token", csrf.as_str()),
                    ("email", ADMIN_EMAIL),
                    ("password", "wrong password"),
                ])
                .send()
                .await
                .unwrap()
        };
        for _ in 0..3 {
            assert_eq!(
                post_login("203.0.113.7").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        let refused = post_login("203.0.113.7").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key("retry-after"));
        assert!(
            refused.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(refused.text().await.unwrap().contains("Too many requests"));
        let signup = app
            .client
            .post(app.url("/signup"))
            .header("x-forwarded-for", "203.0.113.7")
            .form(&[("email", "sam@example.com"), ("password", "sam password 1")])
            .send()
            .await
            .unwrap();
        assert_eq!(
            signup.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "sign-up shares the forms' allowance"
        );
        let page = app
            .client
            .get(app.url("/login"))
            .header("x-forwarded-for", "203.0.113.7")
            .send()
            .await
            .unwrap();
        assert_eq!(
            page.status(),
            StatusCode::OK,
            "reading the form is not limited"
        );
        assert_eq!(
            post_login("203.0.113.8").await.status(),
            StatusCode::UNAUTHORIZED,
            "another address is not limited"
        );
    }
);
