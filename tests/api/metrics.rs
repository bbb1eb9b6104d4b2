//! `/metrics`: only the metrics token (or the separate metrics address) reads it; what a user
//! relies on is counted (requests by route template, credential checks by outcome, tokens by
//! grant, logins, caches, the pool, the janitor); ids and paths never become labels.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::TestApp;
use crate::oauth::{obtain_tokens, register};

const TOKEN: &str = gatehouse::config::TEST_METRICS_TOKEN;

async fn scrape(app: &TestApp) -> String {
    let response = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// Sum of the samples of `name` whose labels include every pair of `labels`.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, v)| Some((parse_series(series)?, v.parse::<f64>().ok()?)))
        .filter(|((n, ls), _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| ls.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| v)
        .sum()
}

fn parse_series(series: &str) -> Option<(String, BTreeMap<String, String>)> {
    let Some((name, rest)) = series.split_once('{') else {
        return Some((series.to_owned(), BTreeMap::new()));
    };
    let mut labels = BTreeMap::new();
    for pair in rest.strip_suffix('}')?.split("\",") {
        let (k, v) = pair.split_once("=\"")?;
        labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
    }
    Some((name.to_owned(), labels))
}

both_backends!(only_the_metrics_token_reads_metrics, |app| async move {
    let anonymous = reqwest::Client::new()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(format!("{TOKEN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    // An administrator's own secret key is not the metrics token.
    app.login_admin().await;
    let (_, admin_key) = app.create_key(json!({"name": "ops"})).await;
    let with_key = reqwest::Client::new()
        .get(app.url("/metrics"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/metrics").await.status(),
        StatusCode::UNAUTHORIZED,
        "admin session"
    );
    assert!(scrape(app).await.contains("gatehouse_http_requests_total"));
});

both_backends!(
    what_users_rely_on_is_counted_under_route_templates,
    |app| async move {
        app.login_admin().await;
        let (id, key) = app.create_key(json!({"name": "counted"})).await;
        let before = scrape(app).await;
        let me = [
            ("route", "/v1/users/me"),
            ("method", "GET"),
            ("status", "200"),
        ];
        let valid = [("kind", "api_key"), ("outcome", "valid")];
        let revoked = [("kind", "api_key"), ("outcome", "revoked")];
        let by_id = [("route", "/v1/api-keys/{id}"), ("method", "GET")];

        for _ in 0..3 {
            assert_eq!(
                app.get_with_key("/v1/users/me", &key).await.status(),
                StatusCode::OK
            );
        }
        let path = format!("/v1/api-keys/{id}");
        assert_eq!(app.get_with_key(&path, &key).await.status(), StatusCode::OK);
        assert_eq!(
            app.get("/no-such-page-zq81").await.status(),
            StatusCode::NOT_FOUND
        );
        let delete = app
            .client
            .delete(app.url(&path))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), StatusCode::OK);
        let refused = app.get_with_key("/v1/users/me", &key).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        let client = register(app, false, true).await;
        obtain_tokens(app, &client).await;
        assert_eq!(
            app.login("admin@example.com", "not the password")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );

        let after = scrape(app).await;
        let grew = |name: &str, labels: &[(&str, &str)]| {
            value(&after, name, labels) - value(&before, name, labels)
        };
        assert!(grew("gatehouse_http_requests_total", &me) >= 3.0);
        assert!(grew("gatehouse_http_request_duration_seconds_count", &me[..2]) >= 3.0);
        assert!(grew("gatehouse_http_requests_total", &by_id) >= 1.0);
        assert!(grew("gatehouse_credential_checks_total", &valid) >= 4.0);
        assert!(grew("gatehouse_credential_checks_total", &revoked) >= 1.0);
        let code_grant = [("grant", "authorization_code"), ("alg", "ES256")];
        assert!(grew("gatehouse_tokens_issued_total", &code_grant) >= 1.0);
        assert!(grew("gatehouse_logins_total", &[("outcome", "failure")]) >= 1.0);
        assert!(grew("gatehouse_cache_lookups_total", &[("cache", "api_keys")]) >= 4.0);
        assert!(grew("gatehouse_db_call_seconds_count", &[]) >= 1.0);
        assert!(value(&after, "gatehouse_db_pool_connections", &[]) >= 1.0);
        assert!(value(&after, "gatehouse_process_resident_memory_bytes", &[]) > 1e6);
        // Ids, keys and unknown paths never become labels.
        assert!(grew("gatehouse_http_requests_total", &[("route", "unmatched")]) >= 1.0);
        for leak in [
            id.as_str(),
            key.as_str(),
            "no-such-page-zq81",
            "admin@example.com",
        ] {
            assert!(!after.contains(leak), "{leak} in the metrics");
        }
    }
);

both_backends!(the_janitor_counts_what_it_deletes, |app| async move {
    app.login_admin().await;
    let client = register(app, false, true).await;
    obtain_tokens(app, &client).await;
    let before = scrape(app).await;
    app.clock.advance(chrono::Duration::days(40));
    gatehouse::app::housekeeping_pass(&app.state).await;
    let after = scrape(app).await;
    let deleted = |text: &str| {
        value(
            text,
            "gatehouse_janitor_deleted_rows_total",
            &[("table", "refresh_families")],
        )
    };
    assert!(deleted(&after) - deleted(&before) >= 1.0);
    let runs = [("job", "janitor"), ("outcome", "ok")];
    assert!(
        value(&after, "gatehouse_background_runs_total", &runs)
            > value(&before, "gatehouse_background_runs_total", &runs)
    );
});

both_backends!(
    metrics_are_off_unless_configured,
    settings = |s: &mut gatehouse::config::Settings| s.metrics = Default::default(),
    |app| async move {
        let response = reqwest::Client::new()
            .get(app.url("/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
);

both_backends!(
    a_separate_metrics_address_serves_without_a_token,
    settings = |s: &mut gatehouse::config::Settings| {
        s.metrics.token = None;
        s.metrics.bind = Some("127.0.0.1:0".into());
    },
    |app| async move {
        let separate = app.metrics_address.clone().expect("a metrics listener");
        let response = reqwest::get(format!("{separate}/metrics")).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("gatehouse_db_pool_connections")
        );
        // Only /metrics is there; and the main address does not serve it without a token.
        let other = reqwest::get(format!("{separate}/v1/users/me"))
            .await
            .unwrap();
        assert_eq!(other.status(), StatusCode::NOT_FOUND);
        let main = reqwest::get(app.url("/metrics")).await.unwrap();
        assert_eq!(main.status(), StatusCode::NOT_FOUND);
    }
);

both_backends!(rate_limit_refusals_are_counted_by_limit, |app| async move {
    app.login_admin().await;
    let (_, key) = app
        .create_key(json!({"name": "slow", "rate_limit_per_minute": 1}))
        .await;
    let before = scrape(app).await;
    assert_eq!(
        app.get_with_key("/v1/users/me", &key).await.status(),
        StatusCode::OK
    );
    let refused = app.get_with_key("/v1/users/me", &key).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let after = scrape(app).await;
    let credential = [("limit", "credential")];
    assert!(
        value(&after, "gatehouse_rate_limited_total", &credential)
            - value(&before, "gatehouse_rate_limited_total", &credential)
            >= 1.0
    );
    assert_eq!(value(&after, "gatehouse_rate_limits_degraded", &[]), 0.0);
});
