use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::{Backend, hidden_field, spawn_app_with};

fn generated_password(html: &str) -> Option<String> {
    let start = html.find("id=\"generated-password\">")? + "id=\"generated-password\">".len();
    let end = html[start..].find('<')?;
    Some(html[start..start + end].to_owned())
}

both_backends!(
    signed_in_pages_send_strangers_to_login_and_back,
    |app| async move {
        let home = app.get("/").await;
        assert_eq!(home.status(), StatusCode::SEE_OTHER);
        assert_eq!(home.headers().get("location").unwrap(), "/login");
        let users = app.get("/admin/users?x=1").await;
        assert_eq!(
            users.headers().get("location").unwrap(),
            "/login?next=/admin/users%3Fx%3D1"
        );
        app.login_admin().await;
        let home = app.get("/").await;
        assert_eq!(home.status(), StatusCode::OK);
        let html = home.text().await.unwrap();
        assert!(html.contains("Welcome, Administrator"));
        assert!(
            html.contains("href=\"/admin/users\""),
            "admins see the Users entry"
        );
        for entry in ["API keys", "Connected apps", "Your apps"] {
            assert!(html.contains(entry), "navigation lists {entry}");
        }
    }
);

both_backends!(members_see_no_users_page, |app| async move {
    app.create_user("mia@example.com", "mia password 1", false)
        .await;
    assert_eq!(
        app.login("mia@example.com", "mia password 1")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let home = app.get("/").await.text().await.unwrap();
    assert!(!home.contains("href=\"/admin/users\""));
    assert_eq!(
        app.get("/admin/users").await.status(),
        StatusCode::FORBIDDEN
    );
    let csrf = app.session_csrf().await;
    let create = app
        .post_form(
            "/admin/users",
            &[
                ("csrf_token", &csrf),
                ("email", "x@example.com"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
});

both_backends!(
    admin_creates_a_user_who_must_change_the_generated_password,
    |app| async move {
        app.login_admin().await;
        let csrf = app.session_csrf().await;
        let created = app
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &csrf),
                    ("email", "Neo@Example.com"),
                    ("display_name", "Neo"),
                    ("role", "member"),
                    ("password", ""),
                ],
            )
            .await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let password = generated_password(&created.text().await.unwrap())
            .expect("the generated password is shown once");
        assert_eq!(password.len(), 20);

        let list = app.get("/admin/users").await.text().await.unwrap();
        assert!(list.contains("neo@example.com"));
        assert!(
            !list.contains(&password),
            "the password is never shown again"
        );

        let duplicate = app
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &csrf),
                    ("email", "NEO@example.com"),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(duplicate.status(), StatusCode::CONFLICT);
        let invalid = app
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &csrf),
                    ("email", "neo-at-example"),
                    ("role", "member"),
                ],
            )
            .await;
        assert_eq!(invalid.status(), StatusCode::BAD_REQUEST);
        let bad_role = app
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &csrf),
                    ("email", "r@example.com"),
                    ("role", "root"),
                ],
            )
            .await;
        assert_eq!(bad_role.status(), StatusCode::BAD_REQUEST);
        let no_csrf = app
            .post_form(
                "/admin/users",
                &[("email", "c@example.com"), ("role", "member")],
            )
            .await;
        assert_eq!(no_csrf.status(), StatusCode::FORBIDDEN);

        // Neo signs in and is held at the account page until the password is changed.
        let (neo, login) = app.login_in_new_browser("neo@example.com", &password).await;
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let home = neo.get(app.url("/")).send().await.unwrap();
        assert_eq!(home.headers().get("location").unwrap(), "/account");
        let account = neo
            .get(app.url("/account"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(account.contains("id=\"must-change\""));
        let csrf = hidden_field(&account, "csrf_token").unwrap();
        let changed = neo
            .post(app.url("/account/password"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("current_password", password.as_str()),
                ("new_password", "neo's own password"),
                ("confirm_password", "neo's own password"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            neo.get(app.url("/")).send().await.unwrap().status(),
            StatusCode::OK
        );
    }
);

both_backends!(admin_disables_and_enables_a_user, |app| async move {
    let id = app
        .create_user("tom@example.com", "tom password 1", false)
        .await;
    app.login_admin().await;
    let csrf = app.session_csrf().await;
    let disable = app
        .post_form(
            &format!("/admin/users/{id}/disable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(disable.status(), StatusCode::SEE_OTHER);
    let list = app.get("/admin/users").await.text().await.unwrap();
    assert!(list.contains("disabled"));
    let (_, refused) = app
        .login_in_new_browser("tom@example.com", "tom password 1")
        .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let enable = app
        .post_form(
            &format!("/admin/users/{id}/enable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(enable.status(), StatusCode::SEE_OTHER);
    let (_, allowed) = app
        .login_in_new_browser("tom@example.com", "tom password 1")
        .await;
    assert_eq!(allowed.status(), StatusCode::SEE_OTHER);
    let unknown = app
        .post_form("/admin/users/usr_nobody/disable", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
});

both_backends!(an_admin_cannot_disable_themselves, |app| async move {
    app.login_admin().await;
    let me: serde_json::Value = app.me().await.json().await.unwrap();
    let id = me["data"]["id"].as_str().unwrap().to_owned();
    let csrf = app.session_csrf().await;
    let refused = app
        .post_form(
            &format!("/admin/users/{id}/disable"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.me().await.status(), StatusCode::OK);
});

both_backends!(sign_up_is_off_by_default, |app| async move {
    assert_eq!(app.get("/signup").await.status(), StatusCode::NOT_FOUND);
    let csrf = app.login_csrf().await;
    let post = app
        .post_form(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("email", "eve@example.com"),
                ("password", "eve password 1"),
            ],
        )
        .await;
    assert_eq!(post.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.login("eve@example.com", "eve password 1")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
});

async fn sign_up_when_enabled(backend: Backend) {
    let Some(app) = spawn_app_with(backend, |s| s.signup_enabled = true).await else {
        return;
    };
    let page = app.get("/signup").await.text().await.unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let weak = app
        .post_form(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("email", "sam@example.com"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let ok = app
        .post_form(
            "/signup",
            &[
                ("csrf_token", &csrf),
                ("email", "sam@example.com"),
                ("display_name", "Sam"),
                ("password", "sam password 1"),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let me: serde_json::Value = app.me().await.json().await.unwrap();
    assert_eq!(me["data"]["email"], "sam@example.com");
    assert_eq!(me["data"]["role"], "member", "sign-up never makes admins");
    let again = crate::helpers::new_client();
    let page = again
        .get(app.url("/signup"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token").unwrap();
    let duplicate = again
        .post(app.url("/signup"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", "SAM@example.com"),
            ("password", "sam password 2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    app.stop().await;
}

#[actix_web::test]
async fn sign_up_when_enabled_creates_a_member_sqlite() {
    sign_up_when_enabled(Backend::Sqlite).await;
}

#[actix_web::test]
async fn sign_up_when_enabled_creates_a_member_postgres() {
    sign_up_when_enabled(Backend::Postgres).await;
}

both_backends!(unknown_pages_are_404_pages, |app| async move {
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
});

both_backends!(
    a_password_an_admin_chose_must_be_changed_at_first_sign_in,
    |app| async move {
        app.login_admin().await;
        let created = app
        .client
        .post(app.url("/v1/users"))
        .json(&serde_json::json!({ "email": "ida@example.com", "password": "chosen by the admin" }))
        .send()
        .await
        .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let body: serde_json::Value = created.json().await.unwrap();
        assert!(
            body["data"].get("password").is_none(),
            "a chosen password is not echoed"
        );
        let (ida, login) = app
            .login_in_new_browser("ida@example.com", "chosen by the admin")
            .await;
        assert_eq!(login.status(), StatusCode::SEE_OTHER);
        let home = ida.get(app.url("/")).send().await.unwrap();
        assert_eq!(
            home.headers()["location"],
            "/account",
            "held at the account page"
        );
    }
);
