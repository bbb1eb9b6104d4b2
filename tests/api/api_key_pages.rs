//! Settings → API keys and the admin's per-user key pages, through plain HTTP (the browser
//! test drives the same pages in Chromium).

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{TestApp, hidden_field};

fn element_text(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('<')?;
    Some(html[start..start + end].to_owned())
}

async fn create_through_form(
    app: &TestApp,
    path: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = app.session_csrf().await;
    let mut form: Vec<(&str, &str)> = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(extra);
    app.client
        .post(app.url(path))
        .form(&form)
        .send()
        .await
        .unwrap()
}

both_backends!(create_a_key_see_it_once_then_revoke_it, |app| async move {
    app.login_admin().await;
    let empty = app.get("/settings/api-keys").await.text().await.unwrap();
    assert!(empty.contains("id=\"no-keys\""));
    let created = create_through_form(
        app,
        "/settings/api-keys",
        &[
            ("name", "Deploy bot"),
            ("expires", "90d"),
            ("mode", "live"),
            ("access", "full"),
        ],
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let page = created.text().await.unwrap();
    let key = element_text(&page, "new-key").expect("the key is on the page");
    assert!(key.starts_with("sk_live_"));
    assert!(page.contains("will not be shown again"));
    assert!(page.contains("data-copy=\"new-key\""), "a copy button");
    assert_eq!(
        app.get_with_key("/v1/users/me", &key).await.status(),
        StatusCode::OK
    );

    let list = app.get("/settings/api-keys").await.text().await.unwrap();
    assert!(list.contains(&format!("{}…{}", &key[..12], &key[42..])));
    assert!(!list.contains(&key), "the list never shows the key");
    assert!(list.contains("never"), "last used: never");
    let id_start = list.find("data-key-id=\"").unwrap() + "data-key-id=\"".len();
    let id = &list[id_start..id_start + 28];

    let confirm = app
        .get(&format!("/settings/api-keys/{id}/revoke"))
        .await
        .text()
        .await
        .unwrap();
    assert!(confirm.contains("cannot be undone"));
    let no_csrf = app
        .post_form(&format!("/settings/api-keys/{id}/revoke"), &[])
        .await;
    assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get_with_key("/v1/users/me", &key).await.status(),
        StatusCode::OK
    );
    let csrf = hidden_field(&confirm, "csrf_token").unwrap();
    let revoked = app
        .post_form(
            &format!("/settings/api-keys/{id}/revoke"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        revoked.headers()["location"],
        "/settings/api-keys?revoked=1"
    );
    assert_eq!(
        app.get_with_key("/v1/users/me", &key).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let list = app
        .get("/settings/api-keys?revoked=1")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("status-revoked"));
});

both_backends!(a_restricted_test_key_from_the_form, |app| async move {
    app.login_admin().await;
    let created = create_through_form(
        app,
        "/settings/api-keys",
        &[
            ("name", "reader"),
            ("expires", "30d"),
            ("mode", "test"),
            ("access", "restricted"),
            ("scope", "read:users"),
            ("scope", "read:orders"),
            ("allowed_ips", "127.0.0.1\n10.0.0.0/8"),
        ],
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let page = created.text().await.unwrap();
    let key = element_text(&page, "new-key").unwrap();
    assert!(key.starts_with("rk_test_"));
    assert!(page.contains("read:orders read:users"));
    assert_eq!(
        app.get_with_key("/v1/users", &key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_with_key("/v1/api-keys", &key).await.status(),
        StatusCode::FORBIDDEN
    );

    let no_scopes = create_through_form(
        app,
        "/settings/api-keys",
        &[("name", "empty"), ("access", "restricted")],
    )
    .await;
    assert_eq!(no_scopes.status(), StatusCode::BAD_REQUEST);
    assert!(
        no_scopes
            .text()
            .await
            .unwrap()
            .contains("at least one scope")
    );
    let no_name = create_through_form(app, "/settings/api-keys", &[("name", " ")]).await;
    assert_eq!(no_name.status(), StatusCode::BAD_REQUEST);
    let bad_ip = create_through_form(
        app,
        "/settings/api-keys",
        &[("name", "x"), ("allowed_ips", "here")],
    )
    .await;
    assert_eq!(bad_ip.status(), StatusCode::BAD_REQUEST);
    let never = create_through_form(
        app,
        "/settings/api-keys",
        &[("name", "x"), ("expires", "never")],
    )
    .await;
    assert_eq!(
        never.status(),
        StatusCode::BAD_REQUEST,
        "no-expiry keys are off by default"
    );
});

both_backends!(
    rolling_from_the_page_shows_the_new_key_once,
    |app| async move {
        app.login_admin().await;
        let page = create_through_form(app, "/settings/api-keys", &[("name", "rolling")])
            .await
            .text()
            .await
            .unwrap();
        let old_key = element_text(&page, "new-key").unwrap();
        let list = app.get("/settings/api-keys").await.text().await.unwrap();
        let id_start = list.find("data-key-id=\"").unwrap() + "data-key-id=\"".len();
        let id = list[id_start..id_start + 28].to_owned();
        let detail = app
            .get(&format!("/settings/api-keys/{id}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(detail.contains("id=\"roll\""));
        let csrf = hidden_field(&detail, "csrf_token").unwrap();
        let rolled = app
            .post_form(
                &format!("/settings/api-keys/{id}/roll"),
                &[("csrf_token", &csrf), ("grace", "24h")],
            )
            .await;
        assert_eq!(rolled.status(), StatusCode::CREATED);
        let rolled = rolled.text().await.unwrap();
        let new_key = element_text(&rolled, "new-key").unwrap();
        assert_ne!(new_key, old_key);
        assert!(rolled.contains("keeps working until"));
        assert_eq!(
            app.get_with_key("/v1/users/me", &old_key).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            app.get_with_key("/v1/users/me", &new_key).await.status(),
            StatusCode::OK
        );
        let again = app
            .post_form(
                &format!("/settings/api-keys/{id}/roll"),
                &[("csrf_token", &csrf), ("grace", "24h")],
            )
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        app.clock.advance(chrono::Duration::hours(25));
        assert_eq!(
            app.get_with_key("/v1/users/me", &old_key).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

both_backends!(
    admins_issue_keys_for_users_and_members_see_only_their_own,
    |app| async move {
        let member_id = app
            .create_user("max@example.com", "max password 1", false)
            .await;
        app.login_admin().await;
        let users = app.get("/admin/users").await.text().await.unwrap();
        assert!(users.contains(&format!("/admin/users/{member_id}/api-keys")));
        let issued = create_through_form(
            app,
            &format!("/admin/users/{member_id}/api-keys"),
            &[("name", "for max")],
        )
        .await;
        assert_eq!(issued.status(), StatusCode::CREATED);
        let key = element_text(&issued.text().await.unwrap(), "new-key").unwrap();
        let me: serde_json::Value = app
            .get_with_key("/v1/users/me", &key)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["data"]["email"], "max@example.com");
        let listing = app
            .get(&format!("/admin/users/{member_id}/api-keys"))
            .await
            .text()
            .await
            .unwrap();
        assert!(listing.contains("for max") && listing.contains("max@example.com"));
        let (admin_key_id, _) = app
            .create_key(serde_json::json!({ "name": "admin only" }))
            .await;

        let (max, _) = app
            .login_in_new_browser("max@example.com", "max password 1")
            .await;
        let own = max
            .get(app.url("/settings/api-keys"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(own.contains("for max"));
        assert!(!own.contains("admin only"));
        assert_eq!(
            max.get(app.url(&format!("/settings/api-keys/{admin_key_id}")))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            max.get(app.url(&format!("/admin/users/{member_id}/api-keys")))
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::FORBIDDEN
        );
    }
);

both_backends!(
    referrer_and_endpoint_lists_from_the_form,
    |app| async move {
        app.login_admin().await;
        let created = create_through_form(
            app,
            "/settings/api-keys",
            &[
                ("name", "widget"),
                ("expires", "30d"),
                ("allowed_referrers", "https://app.example.com\n*.shop.test"),
                ("allowed_endpoints", "GET /v1/users/me\nget /v1/api-keys/*"),
            ],
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let page = created.text().await.unwrap();
        let key = element_text(&page, "new-key").unwrap();
        let me = |origin: &'static str| {
            let key = key.clone();
            async move {
                reqwest::Client::new()
                    .get(app.url("/v1/users/me"))
                    .bearer_auth(&key)
                    .header("Origin", origin)
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        };
        assert_eq!(me("https://a.shop.test").await, StatusCode::OK);
        assert_eq!(me("https://evil.test").await, StatusCode::FORBIDDEN);
        let listed: serde_json::Value = app.get("/v1/api-keys").await.json().await.unwrap();
        let id = listed["data"][0]["id"].as_str().unwrap().to_owned();
        let detail = app
            .get(&format!("/settings/api-keys/{id}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            detail.contains("https://app.example.com, *.shop.test"),
            "{detail}"
        );
        assert!(detail.contains("GET /v1/users/me, GET /v1/api-keys/*"));

        let bad = create_through_form(
            app,
            "/settings/api-keys",
            &[("name", "x"), ("allowed_endpoints", "GET /v1/../admin")],
        )
        .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        assert!(bad.text().await.unwrap().contains("not a path pattern"));
    }
);
