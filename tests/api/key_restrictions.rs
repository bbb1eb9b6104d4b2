//! Referrer and endpoint restrictions of API keys: refusals with their own codes, audited;
//! what introspection reports; attenuation (a restricted key cannot mint or change a wider
//! one); rolls keep them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::TestApp;
use crate::integrity::send;

async fn me(app: &TestApp, key: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(app.url("/v1/users/me"))
        .bearer_auth(key);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    let body: Value = app
        .get("/v1/audit-events?limit=100")
        .await
        .json()
        .await
        .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(
    a_referrer_restricted_key_needs_a_listed_origin,
    |app| async move {
        app.login_admin().await;
        let (_, key) = app
            .create_key(json!({
                "name": "web widget",
                "allowed_referrers": ["https://app.example.com", "*.shop.test"]
            }))
            .await;
        for (headers, why) in [
            (vec![], "no Origin and no Referer"),
            (vec![("Origin", "https://evil.test")], "another origin"),
            (vec![("Origin", "http://app.example.com")], "another scheme"),
            (
                vec![("Origin", "https://app.example.com.evil.test")],
                "a lookalike host",
            ),
            (
                vec![("Origin", "https://shop.test")],
                "the pattern's own apex",
            ),
            (
                vec![("Referer", "https://evil.test/?https://app.example.com")],
                "a Referer elsewhere",
            ),
        ] {
            assert_eq!(
                refusal(me(app, &key, &headers).await).await,
                (StatusCode::FORBIDDEN, "AUTH_008".into()),
                "{why}"
            );
        }
        for (headers, why) in [
            (
                vec![("Origin", "https://app.example.com")],
                "a listed origin",
            ),
            (
                vec![("Origin", "HTTPS://APP.example.com:443")],
                "the same origin spelled otherwise",
            ),
            (
                vec![("Origin", "https://a.b.shop.test")],
                "a subdomain of a pattern",
            ),
            (
                vec![("Referer", "https://app.example.com/orders?id=1")],
                "a Referer on a listed origin",
            ),
            (
                vec![("Origin", "null"), ("Referer", "https://x.shop.test/")],
                "an opaque Origin, then the Referer",
            ),
        ] {
            assert_eq!(
                me(app, &key, &headers).await.status(),
                StatusCode::OK,
                "{why}"
            );
        }
        // Audited like an IP refusal, off the request's path.
        app.state.background.settled().await;
        assert!(
            audit_actions(app)
                .await
                .contains(&"api_key.refused.referrer_not_allowed".to_owned())
        );
    }
);

both_backends!(
    an_endpoint_restricted_key_calls_only_listed_endpoints,
    |app| async move {
        app.login_admin().await;
        let (id, key) = app
            .create_key(json!({
                "name": "profile reader",
                "allowed_endpoints": ["GET /v1/users/me", "GET /v1/api-keys/*"]
            }))
            .await;
        assert_eq!(me(app, &key, &[]).await.status(), StatusCode::OK);
        assert_eq!(
            send(app, "GET", &format!("/v1/api-keys/{id}"), &key, None)
                .await
                .status(),
            StatusCode::OK
        );
        for (method, path) in [
            ("PATCH", "/v1/users/me"),
            ("GET", "/v1/api-keys"),
            ("GET", "/v1/users"),
            ("DELETE", &format!("/v1/api-keys/{id}") as &str),
            ("GET", "/v1/audit-events"),
        ] {
            let body = (method == "PATCH").then(|| json!({ "display_name": "x" }));
            assert_eq!(
                refusal(send(app, method, path, &key, body).await).await,
                (StatusCode::FORBIDDEN, "AUTH_009".into()),
                "{method} {path}"
            );
        }
        // The refused DELETE changed nothing.
        let shown: Value = app
            .get(&format!("/v1/api-keys/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(shown["data"]["status"], "active");
        assert_eq!(
            shown["data"]["allowed_endpoints"],
            json!(["GET /v1/users/me", "GET /v1/api-keys/*"])
        );
        app.state.background.settled().await;
        assert!(
            audit_actions(app)
                .await
                .contains(&"api_key.refused.endpoint_not_allowed".to_owned())
        );
    }
);

both_backends!(bad_restrictions_are_validation_errors, |app| async move {
    app.login_admin().await;
    for (body, field) in [
        (
            json!({ "name": "x", "allowed_referrers": ["app.example.com"] }),
            "allowed_referrers",
        ),
        (
            json!({ "name": "x", "allowed_referrers": ["*.com"] }),
            "allowed_referrers",
        ),
        (
            json!({ "name": "x", "allowed_endpoints": ["FETCH /v1"] }),
            "allowed_endpoints",
        ),
        (
            json!({ "name": "x", "allowed_endpoints": ["GET /v1/../users"] }),
            "allowed_endpoints",
        ),
        (
            json!({ "name": "x", "allowed_endpoints": ["GET /v1/us*"] }),
            "allowed_endpoints",
        ),
    ] {
        let response = app
            .client
            .post(app.url("/v1/api-keys"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "VALIDATION_001");
        assert_eq!(answer["error"]["field"], field, "{body}");
    }
    let many: Vec<String> = (0..51)
        .map(|i| format!("https://a{i}.example.com"))
        .collect();
    let response = app
        .client
        .post(app.url("/v1/api-keys"))
        .json(&json!({ "name": "x", "allowed_referrers": many }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
});

both_backends!(
    a_restricted_key_mints_and_changes_only_narrower_keys,
    |app| async move {
        app.login_admin().await;
        let (parent_id, parent) = app
            .create_key(json!({
                "name": "parent",
                "allowed_referrers": ["*.example.com"],
                "allowed_endpoints": ["GET /v1/users/me", "POST /v1/api-keys", "PATCH /v1/api-keys/*", "POST /v1/api-keys/*"]
            }))
            .await;
        let browser = [("Origin", "https://app.example.com")];
        let post = |body: Value| {
            let parent = parent.clone();
            async move {
                reqwest::Client::new()
                    .post(app.url("/v1/api-keys"))
                    .bearer_auth(&parent)
                    .header("Origin", "https://app.example.com")
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        // Lists left out are inherited.
        let child = post(json!({ "name": "child" })).await;
        assert_eq!(child.status(), StatusCode::CREATED);
        let child: Value = child.json().await.unwrap();
        assert_eq!(child["data"]["allowed_referrers"], json!(["*.example.com"]));
        assert_eq!(
            child["data"]["allowed_endpoints"].as_array().unwrap().len(),
            4
        );
        // Narrower lists are fine.
        let narrow = post(json!({
            "name": "narrow",
            "allowed_referrers": ["https://app.example.com"],
            "allowed_endpoints": ["GET /v1/users/me"]
        }))
        .await;
        assert_eq!(narrow.status(), StatusCode::CREATED);
        let narrow: Value = narrow.json().await.unwrap();
        let narrow_id = narrow["data"]["id"].as_str().unwrap().to_owned();
        // Wider ones are refused, in each list.
        for body in [
            json!({ "name": "w", "allowed_referrers": ["https://evil.test"] }),
            json!({ "name": "w", "allowed_endpoints": ["GET /v1/*"] }),
            json!({ "name": "w", "allowed_endpoints": ["* /v1/users/me"] }),
        ] {
            assert_eq!(
                refusal(post(body.clone()).await).await,
                (StatusCode::FORBIDDEN, "AUTH_006".into()),
                "{body}"
            );
        }
        // Clearing a list through PATCH widens the key: refused with the restricted key …
        let patch = |id: String, body: Value| {
            let parent = parent.clone();
            async move {
                reqwest::Client::new()
                    .patch(app.url(&format!("/v1/api-keys/{id}")))
                    .bearer_auth(&parent)
                    .header("Origin", "https://app.example.com")
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            refusal(patch(narrow_id.clone(), json!({ "allowed_endpoints": null })).await).await,
            (StatusCode::FORBIDDEN, "AUTH_006".into())
        );
        assert_eq!(
            refusal(patch(parent_id.clone(), json!({ "allowed_referrers": [] })).await).await,
            (StatusCode::FORBIDDEN, "AUTH_006".into()),
            "nor can it widen itself"
        );
        // … narrowing is allowed, and applies at once.
        let narrowed = patch(
            narrow_id.clone(),
            json!({ "allowed_endpoints": ["GET /v1/users/me"], "allowed_referrers": ["https://b.example.com"] }),
        )
        .await;
        assert_eq!(narrowed.status(), StatusCode::OK);
        let narrow_key = narrow["data"]["key"].as_str().unwrap();
        assert_eq!(
            refusal(me(app, narrow_key, &browser).await).await,
            (StatusCode::FORBIDDEN, "AUTH_008".into())
        );
        assert_eq!(
            me(app, narrow_key, &[("Origin", "https://b.example.com")])
                .await
                .status(),
            StatusCode::OK
        );
        // The session (unrestricted) may clear them.
        let cleared = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{narrow_id}")))
            .json(&json!({ "allowed_referrers": null, "allowed_endpoints": [] }))
            .send()
            .await
            .unwrap();
        assert_eq!(cleared.status(), StatusCode::OK);
        let cleared: Value = cleared.json().await.unwrap();
        assert_eq!(cleared["data"]["allowed_referrers"], json!([]));
        assert_eq!(me(app, narrow_key, &[]).await.status(), StatusCode::OK);
    }
);

both_backends!(
    introspection_reports_the_lists_and_a_roll_keeps_them,
    |app| async move {
        app.login_admin().await;
        let (id, key) = app
            .create_key(json!({
                "name": "widget",
                "allowed_referrers": ["https://app.example.com"],
                "allowed_endpoints": ["GET /orders/*"]
            }))
            .await;
        let (_, resource_server) = app
            .create_key(json!({ "name": "rs", "scopes": ["introspect"] }))
            .await;
        let introspect = |token: String| {
            let resource_server = resource_server.clone();
            async move {
                reqwest::Client::new()
                    .post(app.url("/oauth/introspect"))
                    .bearer_auth(&resource_server)
                    .form(&[("token", token.as_str())])
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let answer = introspect(key.clone()).await;
        assert_eq!(
            answer["active"], true,
            "introspection applies no list to the asker"
        );
        assert_eq!(
            answer["allowed_referrers"],
            json!(["https://app.example.com"])
        );
        assert_eq!(answer["allowed_endpoints"], json!(["GET /orders/*"]));
        let plain = introspect(resource_server.clone()).await;
        assert!(plain.get("allowed_referrers").is_none());

        let rolled: Value = app
            .client
            .post(app.url(&format!("/v1/api-keys/{id}/roll")))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            rolled["data"]["allowed_referrers"],
            json!(["https://app.example.com"])
        );
        assert_eq!(
            rolled["data"]["allowed_endpoints"],
            json!(["GET /orders/*"])
        );
        let new_key = rolled["data"]["key"].as_str().unwrap().to_owned();
        let answer = introspect(new_key).await;
        assert_eq!(answer["allowed_endpoints"], json!(["GET /orders/*"]));
    }
);
