//! Control of an app follows its workspace: leaving ends it, new redirect URIs ask every user
//! again, and what the workspace's admin or the install decided about the app is not a member's
//! (or the workspace's) to undo.

use reqwest::StatusCode;
use serde_json::json;

use crate::api_keys::refusal;
use crate::both_backends;
use crate::workspaces::{call, expect, join};

use super::{app_of, app_row, secret_still_works, try_takeover, user, workspace};

both_backends!(
    leaving_a_workspace_ends_control_of_the_apps_registered_there,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, abe_id) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "admin").await;
        let (private, secret) = app_of(
            app,
            &abe,
            None,
            json!({ "workspace_id": acme, "grant_types": ["authorization_code", "client_credentials"] }),
        )
        .await;
        // The workspace's other admins and owners control it, not only its registrant.
        assert_eq!(app_row(app, &olga, &private).await["workspace_id"], acme);
        // Olga removes him.
        let removed = call(
            &olga,
            app,
            "DELETE",
            &format!("/v1/workspaces/{acme}/members/{abe_id}"),
            None,
            None,
        )
        .await;
        assert!(removed.status().is_success(), "{}", removed.status());
        // Removed, Abe may neither see, re-point, rotate, disable nor delete it.
        try_takeover(app, &abe, None, &private, StatusCode::NOT_FOUND).await;
        let row = app_row(app, &olga, &private).await;
        assert_eq!(row["redirect_uris"], json!(["https://app.example.com/cb"]));
        assert_eq!(
            secret_still_works(app, &private, &secret).await,
            StatusCode::OK
        );
        let listed = expect(
            &abe,
            app,
            ("GET", "/v1/clients"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert!(!listed.to_string().contains(&private), "{listed}");
        // The remaining owner disables it.
        let disabled = expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/clients/{private}")),
            None,
            Some(json!({ "disabled": true })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(disabled["disabled"], true);
    }
);

both_backends!(new_redirect_uris_ask_every_user_again, |app| async move {
    use crate::oauth::{REDIRECT, TestClient, authorize, authorize_url};
    app.login_admin().await;
    let created = expect(
        &app.client,
        app,
        ("POST", "/v1/clients"),
        None,
        Some(json!({
            "name": "Re-pointed",
            "redirect_uris": [REDIRECT],
            "client_type": "confidential",
            "scopes": ["read:users"],
        })),
        StatusCode::CREATED,
    )
    .await;
    let client = TestClient {
        id: created["client_id"].as_str().unwrap().to_owned(),
        secret: created["client_secret"].as_str().map(str::to_owned),
    };
    let url = authorize_url(&client, "read:users", None, "");
    assert!(authorize(app, &url, "approve").await.contains_key("code"));
    // Remembered: the next authorization needs no page.
    assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    // A rename changes nothing of that…
    expect(
        &app.client,
        app,
        ("PATCH", &format!("/v1/clients/{}", client.id)),
        None,
        Some(json!({ "name": "Renamed" })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
    // …new redirect URIs do: the user is asked again, even for the old one.
    expect(
        &app.client,
        app,
        ("PATCH", &format!("/v1/clients/{}", client.id)),
        None,
        Some(json!({ "redirect_uris": [REDIRECT, "https://elsewhere.example.net/cb"] })),
        StatusCode::OK,
    )
    .await;
    let asked = app.get(&url).await;
    assert_eq!(asked.status(), StatusCode::OK);
    assert!(asked.text().await.unwrap().contains("id=\"consent-title\""));
});

both_backends!(
    a_workspace_disabling_its_app_is_no_administrators_lock,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, _) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "member").await;
        let (private, _) = app_of(app, &olga, None, json!({ "workspace_id": acme })).await;
        // Olga (owner) disables and enables Acme's app: no lock.
        for disabled in [true, false] {
            let row = expect(
                &olga,
                app,
                ("PATCH", &format!("/v1/clients/{private}")),
                None,
                Some(json!({ "disabled": disabled })),
                StatusCode::OK,
            )
            .await;
            assert_eq!(row["disabled"], disabled);
            assert_eq!(row["admin_locked"], false);
        }
        // An administrator of the install disabling it (oversight, not membership) locks it:
        // the workspace's owner cannot enable it again.
        let row = expect(
            &app.client,
            app,
            ("PATCH", &format!("/v1/clients/{private}")),
            None,
            Some(json!({ "disabled": true })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(row["admin_locked"], true);
        let refused = call(
            &olga,
            app,
            "PATCH",
            &format!("/v1/clients/{private}"),
            None,
            Some(json!({ "disabled": false })),
        )
        .await;
        assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN);
        // A mere member of Acme controls nothing of it.
        try_takeover(app, &abe, None, &private, StatusCode::NOT_FOUND).await;
    }
);

both_backends!(
    what_the_install_granted_an_app_is_not_its_workspaces_to_change,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        // The install's administrator creates Acme and makes Olga an admin there.
        let acme = workspace(app, &app.client, "Acme").await;
        join(app, &app.client, &olga, &acme, "olga@example.com", "admin").await;
        // An app of Acme's that may introspect anything (an admin-only scope).
        let (inspector, secret) = app_of(
            app,
            &app.client,
            None,
            json!({
                "workspace_id": acme,
                "scopes": ["introspect"],
                "grant_types": ["client_credentials"],
            }),
        )
        .await;
        // Olga administers Acme: she sees the app, but taking its secret or re-pointing it
        // would hand her the install's grant.
        app_row(app, &olga, &inspector).await;
        for (route, body) in [
            (
                ("POST", format!("/v1/clients/{inspector}/secret")),
                json!({}),
            ),
            (
                ("PATCH", format!("/v1/clients/{inspector}")),
                json!({ "redirect_uris": ["https://olga.example.net/cb"] }),
            ),
            (
                ("PATCH", format!("/v1/clients/{inspector}")),
                json!({ "grant_types": ["authorization_code", "client_credentials"] }),
            ),
        ] {
            let refused = call(&olga, app, route.0, &route.1, None, Some(body)).await;
            assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN, "{route:?}");
        }
        assert_eq!(
            secret_still_works(app, &inspector, &secret).await,
            StatusCode::OK
        );
        // The administrator still may.
        expect(
            &app.client,
            app,
            ("POST", &format!("/v1/clients/{inspector}/secret")),
            None,
            Some(json!({})),
            StatusCode::OK,
        )
        .await;
    }
);

both_backends!(
    a_member_does_not_enable_what_the_workspaces_admin_disabled,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, _) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "member").await;
        // Abe registers an app with his Acme key: Acme controls it, Abe as its registrant.
        let key = expect(
            &abe,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "abe in acme", "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let key = key["key"].as_str().unwrap().to_owned();
        let anon = reqwest::Client::new();
        let (his, _) = app_of(app, &anon, Some(&key), json!({})).await;
        let set = |http: reqwest::Client, bearer: Option<String>, disabled: bool| {
            let path = format!("/v1/clients/{his}");
            async move {
                call(
                    &http,
                    app,
                    "PATCH",
                    &path,
                    bearer.as_deref(),
                    Some(json!({ "disabled": disabled })),
                )
                .await
            }
        };
        // His own disable he lifts himself.
        assert_eq!(
            set(anon.clone(), Some(key.clone()), true).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            set(anon.clone(), Some(key.clone()), false).await.status(),
            StatusCode::OK
        );
        // Olga's (Acme's owner) he does not; she does.
        assert_eq!(set(olga.clone(), None, true).await.status(), StatusCode::OK);
        let refused = set(anon.clone(), Some(key.clone()), false).await;
        assert_eq!(refusal(refused).await.0, StatusCode::FORBIDDEN);
        let row = app_row(app, &olga, &his).await;
        assert_eq!(row["disabled"], true, "still disabled");
        assert_eq!(row["admin_locked"], false, "and no administrator's lock");
        assert_eq!(
            set(olga.clone(), None, false).await.status(),
            StatusCode::OK
        );
    }
);
