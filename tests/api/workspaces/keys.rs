//! Who issues a workspace's keys: admins do and members cannot, a workspace admin reaches their
//! workspace only, the key form offers the user's workspaces, and the install's administrator
//! oversees workspaces without holding their keys.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;

use super::{call, create_workspace, expect, join, member, new_key};

both_backends!(
    where_admins_issue_keys_members_cannot_and_admins_reach_their_workspace_only,
    |app| async move {
        let (wanda, _) = member(app, "wanda@example.com").await;
        let (mia, mia_id) = member(app, "mia@example.com").await;
        let (olga, olga_id) = member(app, "olga@example.com").await;
        let (acme, slug) = create_workspace(
            &wanda,
            app,
            json!({ "name": "Acme", "key_issuance": "admins" }),
        )
        .await;
        join(app, &wanda, &mia, &acme, "mia@example.com", "member").await;
        let (other, _) = create_workspace(&olga, app, json!({ "name": "Other" })).await;
        let (olga_key_id, _) = new_key(
            &olga,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "olga's", "workspace_id": other }),
        )
        .await;

        // Only admins issue keys in Acme: Mia's own is refused, her personal one is not.
        let own = call(
            &mia,
            app,
            "POST",
            "/v1/api-keys",
            None,
            Some(json!({ "name": "mine", "workspace_id": acme })),
        )
        .await;
        assert_eq!(
            refusal(own).await,
            (StatusCode::FORBIDDEN, "AUTH_010".into())
        );
        let (_, personal_key) = new_key(
            &mia,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "personal" }),
        )
        .await;
        // A key cannot be made in a workspace one is not in.
        let foreign = call(
            &mia,
            app,
            "POST",
            "/v1/api-keys",
            None,
            Some(json!({ "name": "x", "workspace_id": other })),
        )
        .await;
        assert_eq!(refusal(foreign).await.0, StatusCode::NOT_FOUND);

        // Wanda issues Mia's key: Mia's, acting in Acme.
        let issued = expect(
            &wanda,
            app,
            ("POST", &format!("/v1/workspaces/{acme}/members/{mia_id}/api-keys")),
            None,
            Some(json!({ "name": "deploys", "scopes": ["read:users", "read:api_keys", "read:workspaces"] })),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(issued["user_id"], mia_id.as_str());
        assert_eq!(issued["workspace_id"], acme.as_str());
        let (mia_key_id, mia_key) = (
            issued["id"].as_str().unwrap().to_owned(),
            issued["key"].as_str().unwrap().to_owned(),
        );
        // Not to someone outside the workspace.
        let outsider = call(
            &wanda,
            app,
            "POST",
            &format!("/v1/workspaces/{acme}/members/{olga_id}/api-keys"),
            None,
            Some(json!({ "name": "x" })),
        )
        .await;
        assert_eq!(refusal(outsider).await.0, StatusCode::NOT_FOUND);

        // The key acts in Acme: it lists Acme's keys of Mia's only, and her personal workspace
        // does not exist for it.
        let http = reqwest::Client::new();
        let listed = expect(
            &http,
            app,
            ("GET", "/v1/api-keys"),
            Some(&mia_key),
            None,
            StatusCode::OK,
        )
        .await;
        let ids: Vec<&str> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [mia_key_id.as_str()]);
        let personal_ws = expect(
            &mia,
            app,
            ("GET", "/v1/workspaces"),
            None,
            None,
            StatusCode::OK,
        )
        .await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let reach = call(
            &http,
            app,
            "GET",
            &format!("/v1/workspaces/{personal_ws}"),
            Some(&mia_key),
            None,
        )
        .await;
        assert_eq!(refusal(reach).await.0, StatusCode::NOT_FOUND);
        let seen = expect(
            &http,
            app,
            ("GET", "/v1/workspaces"),
            Some(&mia_key),
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(seen.as_array().unwrap().len(), 1);
        assert_eq!(seen[0]["id"], acme.as_str());

        // Introspection tells resource servers the membership.
        app.login_admin().await;
        let (_, admin_key) = app.create_key(json!({ "name": "introspector" })).await;
        let about: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .bearer_auth(&admin_key)
            .form(&[("token", mia_key.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            about["workspace"],
            json!({ "id": acme, "slug": slug, "role": "member" })
        );

        // Wanda sees Acme's keys (not Mia's personal one, not Olga's) and its events.
        let keys = expect(
            &wanda,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/api-keys")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let ids: Vec<&str> = keys
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [mia_key_id.as_str()]);
        let events = expect(
            &wanda,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/audit-events")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let actions: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        for action in [
            "workspace.created",
            "workspace.member.invited",
            "workspace.member.joined",
            "api_key.created",
        ] {
            assert!(actions.contains(&action), "{action} in {actions:?}");
        }
        assert!(
            events
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["workspace_id"] == acme.as_str())
        );
        // …and nothing of Olga's workspace, by any path.
        for (method, path) in [
            ("GET", format!("/v1/workspaces/{other}/api-keys")),
            ("GET", format!("/v1/workspaces/{other}/audit-events")),
            ("GET", format!("/v1/workspaces/{other}/members")),
            (
                "DELETE",
                format!("/v1/workspaces/{other}/api-keys/{olga_key_id}"),
            ),
            (
                "DELETE",
                format!("/v1/workspaces/{acme}/api-keys/{olga_key_id}"),
            ),
            (
                "DELETE",
                format!("/v1/workspaces/{other}/members/{olga_id}"),
            ),
        ] {
            let response = call(&wanda, app, method, &path, None, None).await;
            assert_eq!(
                refusal(response).await.0,
                StatusCode::NOT_FOUND,
                "{method} {path}"
            );
        }
        let olga_keys = expect(
            &olga,
            app,
            ("GET", "/v1/api-keys"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(olga_keys[0]["status"], "active", "Olga's key untouched");

        // Revocation is immediate.
        expect(
            &http,
            app,
            ("GET", "/v1/users/me"),
            Some(&mia_key),
            None,
            StatusCode::OK,
        )
        .await;
        expect(
            &wanda,
            app,
            (
                "DELETE",
                &format!("/v1/workspaces/{acme}/api-keys/{mia_key_id}"),
            ),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let after = call(&http, app, "GET", "/v1/users/me", Some(&mia_key), None).await;
        assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        expect(
            &http,
            app,
            ("GET", "/v1/users/me"),
            Some(&personal_key),
            None,
            StatusCode::OK,
        )
        .await;
    }
);

both_backends!(
    the_key_form_offers_the_users_workspaces_and_keeps_the_workspaces_rule,
    |app| async move {
        let (wanda, _) = member(app, "wanda@example.com").await;
        app.create_user("mia@example.com", "member password 1", false)
            .await;
        let response = app.login("mia@example.com", "member password 1").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mia = app.client.clone();
        // One workspace: no choice on the form.
        let page = app.get("/settings/api-keys").await.text().await.unwrap();
        assert!(!page.contains("name=\"workspace_id\""));
        let (acme, _) = create_workspace(
            &wanda,
            app,
            json!({ "name": "Acme", "key_issuance": "admins" }),
        )
        .await;
        join(app, &wanda, &mia, &acme, "mia@example.com", "member").await;
        let page = app.get("/settings/api-keys").await.text().await.unwrap();
        assert!(
            page.contains(&format!("<option value=\"{acme}\">Acme</option>")),
            "{page}"
        );
        let form = |workspace: &str| {
            vec![
                ("name", "from the form".to_owned()),
                ("expires", "90d".to_owned()),
                ("mode", "live".to_owned()),
                ("access", "full".to_owned()),
                ("workspace_id", workspace.to_owned()),
            ]
        };
        let post = |fields: Vec<(&'static str, String)>| async move {
            let csrf = app.session_csrf().await;
            let mut all = vec![("csrf_token", csrf)];
            all.extend(fields);
            app.client
                .post(app.url("/settings/api-keys"))
                .form(&all)
                .send()
                .await
                .unwrap()
        };
        // Only admins issue keys in Acme: the form is refused like the API.
        let refused = post(form(&acme)).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        expect(
            &wanda,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}")),
            None,
            Some(json!({ "key_issuance": "members" })),
            StatusCode::OK,
        )
        .await;
        let created = post(form(&acme)).await;
        assert_eq!(created.status(), StatusCode::CREATED);
        let keys = expect(
            &wanda,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/api-keys")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(keys[0]["name"], "from the form");
    }
);

both_backends!(
    an_administrator_of_the_install_oversees_workspaces_but_keys_need_membership,
    |app| async move {
        let (wanda, _) = member(app, "wanda@example.com").await;
        let (acme, _) = create_workspace(&wanda, app, json!({ "name": "Acme" })).await;
        app.login_admin().await;
        // Oversight: the administrator's session sees the workspace and its members…
        expect(
            &app.client,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/members")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        // …but makes no key of its own there (nor in a workspace that does not exist): a key
        // acts for a member.
        for workspace in [acme.as_str(), "ws_doesnotexist00000000000000"] {
            let response = call(
                &app.client,
                app,
                "POST",
                "/v1/api-keys",
                None,
                Some(json!({ "name": "x", "workspace_id": workspace })),
            )
            .await;
            assert_eq!(
                refusal(response).await.0,
                StatusCode::NOT_FOUND,
                "{workspace}"
            );
        }
        let (_, admin_key) = app.create_key(json!({ "name": "admin's own" })).await;
        // And its key, bound to its personal workspace, reaches no other workspace.
        let response = call(
            &reqwest::Client::new(),
            app,
            "GET",
            &format!("/v1/workspaces/{acme}"),
            Some(&admin_key),
            None,
        )
        .await;
        assert_eq!(refusal(response).await.0, StatusCode::NOT_FOUND);
    }
);
