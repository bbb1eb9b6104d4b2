//! Sign-ins, sign-outs, password changes and sign-ups in the audit log, as an admin reads it
//! through `GET /v1/audit-events`: who, from where, and never what was typed.

use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, hidden_field, new_client};

/// The events of `action`, newest first, read with the app's (admin) session.
async fn events(app: &TestApp, action: &str) -> Vec<Value> {
    let response = app.get(&format!("/v1/audit-events?action={action}")).await;
    assert_eq!(response.status(), StatusCode::OK, "reading the audit log");
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().expect("a list of events").clone()
}

async fn my_id(app: &TestApp) -> String {
    let me: Value = app.me().await.json().await.unwrap();
    me["data"]["id"].as_str().unwrap().to_owned()
}

both_backends!(
    sign_ins_are_audited_without_what_was_typed,
    |app| async move {
        let wrong = app.login(ADMIN_EMAIL, "a wrong guess 1").await;
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let unknown = app.login("nobody@example.com", "a wrong guess 2").await;
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
        app.login_admin().await;
        let admin = my_id(app).await;

        let succeeded = events(app, "account.sign_in.succeeded").await;
        assert_eq!(succeeded.len(), 1);
        assert_eq!(succeeded[0]["actor_user_id"], admin.as_str());
        assert_eq!(succeeded[0]["ip"], "127.0.0.1");

        let failed = events(app, "account.sign_in.failed").await;
        assert_eq!(failed.len(), 2, "{failed:?}");
        // Both at the same instant on the test clock: told apart by their reason.
        let reason = |r: &str| {
            failed
                .iter()
                .find(|e| e["details"]["reason"] == r)
                .unwrap_or_else(|| panic!("no {r} event in {failed:?}"))
        };
        let (unknown, wrong) = (reason("unknown_account"), reason("wrong_password"));
        assert_eq!(wrong["subject_user_id"], admin.as_str());
        assert_eq!(unknown["subject_user_id"], Value::Null);
        let shown = serde_json::to_string(&failed).unwrap();
        for typed in ["a wrong guess", "nobody@example.com"] {
            assert!(!shown.contains(typed), "{typed:?} leaked into {shown}");
        }
    }
);

both_backends!(
    password_changes_and_sign_outs_are_audited,
    |app| async move {
        app.login_admin().await;
        let admin = my_id(app).await;
        let csrf = app.session_csrf().await;
        let new_password = "a brand new password";
        let changed = app
            .post_form(
                "/account/password",
                &[
                    ("csrf_token", csrf.as_str()),
                    ("current_password", ADMIN_PASSWORD),
                    ("new_password", new_password),
                    ("confirm_password", new_password),
                ],
            )
            .await;
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
        let logout = app
            .post_form("/logout", &[("csrf_token", csrf.as_str())])
            .await;
        assert_eq!(logout.status(), StatusCode::SEE_OTHER);
        assert_eq!(app.me().await.status(), StatusCode::UNAUTHORIZED);

        let signed_in = app.login(ADMIN_EMAIL, new_password).await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        for action in ["account.password_changed", "account.signed_out"] {
            let found = events(app, action).await;
            assert_eq!(found.len(), 1, "{action}: {found:?}");
            assert_eq!(found[0]["actor_user_id"], admin.as_str(), "{action}");
            assert_eq!(found[0]["subject_user_id"], admin.as_str(), "{action}");
            let shown = found[0].to_string();
            assert!(!shown.contains(new_password) && !shown.contains(ADMIN_PASSWORD));
        }
    }
);

both_backends!(
    sign_ups_are_audited,
    settings = |s| s.signup_enabled = true,
    |app| async move {
        let newcomer = new_client();
        let page = newcomer
            .get(app.url("/signup"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = hidden_field(&page, "csrf_token").unwrap();
        let created = newcomer
            .post(app.url("/signup"))
            .form(&[
                ("csrf_token", csrf.as_str()),
                ("email", "sam@example.com"),
                ("display_name", "Sam"),
                ("password", "sam password 1"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::SEE_OTHER);
        let me: Value = newcomer
            .get(app.url("/v1/users/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let sam = me["data"]["id"].as_str().unwrap().to_owned();

        app.login_admin().await;
        let signed_up = events(app, "account.signed_up").await;
        assert_eq!(signed_up.len(), 1, "{signed_up:?}");
        assert_eq!(signed_up[0]["subject_user_id"], sam.as_str());
        assert_eq!(signed_up[0]["ip"], "127.0.0.1");
        assert!(!signed_up[0].to_string().contains("sam password"));
    }
);
