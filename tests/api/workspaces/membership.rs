//! Membership: an invitation joins only its address, roles stay within the caller's own, a
//! workspace keeps an owner, and removal ends the member's keys and grants there at once.

use reqwest::StatusCode;
use serde_json::json;

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::oauth::{authorize_url, exchange, register};

use super::{call, consent_in, create_workspace, expect, join, member, new_key, token_for_code};

both_backends!(
    an_invitation_joins_only_its_address_once_and_outsiders_see_nothing,
    |app| async move {
        let (wanda, _) = member(app, "wanda@example.com").await;
        let (mia, _) = member(app, "mia@example.com").await;
        let (olga, _) = member(app, "olga@example.com").await;
        let (acme, slug) = create_workspace(&wanda, app, json!({ "name": "Acme Platform" })).await;
        assert_eq!(slug, "acme-platform");
        // A taken slug is a conflict, a reserved one a validation error.
        let again = call(
            &olga,
            app,
            "POST",
            "/v1/workspaces",
            None,
            Some(json!({ "name": "Acme Platform" })),
        )
        .await;
        assert_eq!(
            refusal(again).await,
            (StatusCode::CONFLICT, "RESOURCE_002".into())
        );
        let reserved = call(
            &olga,
            app,
            "POST",
            "/v1/workspaces",
            None,
            Some(json!({ "name": "x", "slug": "personal-abc" })),
        )
        .await;
        assert_eq!(refusal(reserved).await.0, StatusCode::BAD_REQUEST);

        let invited = expect(
            &wanda,
            app,
            ("POST", &format!("/v1/workspaces/{acme}/invitations")),
            None,
            Some(json!({ "email": "MIA@example.com" })),
            StatusCode::CREATED,
        )
        .await;
        let token = invited["token"].as_str().unwrap().to_owned();
        assert!(invited["accept_url"].as_str().unwrap().ends_with(&token));
        // Someone else holding the link cannot use it.
        let stolen = call(
            &olga,
            app,
            "POST",
            "/v1/invitations/accept",
            None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(
            refusal(stolen).await,
            (StatusCode::FORBIDDEN, "WORKSPACE_004".into())
        );
        // A mistyped token never matches (its checksum fails before any lookup).
        let mut typo = token.clone();
        typo.pop();
        typo.push(if token.ends_with('A') { 'B' } else { 'A' });
        let wrong = call(
            &mia,
            app,
            "POST",
            "/v1/invitations/accept",
            None,
            Some(json!({ "token": typo })),
        )
        .await;
        assert_eq!(
            refusal(wrong).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
        let joined = expect(
            &mia,
            app,
            ("POST", "/v1/invitations/accept"),
            None,
            Some(json!({ "token": token })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            (joined["id"].as_str(), joined["role"].as_str()),
            (Some(acme.as_str()), Some("member"))
        );
        // Once.
        let replay = call(
            &mia,
            app,
            "POST",
            "/v1/invitations/accept",
            None,
            Some(json!({ "token": token })),
        )
        .await;
        assert_eq!(
            refusal(replay).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
        let invitations = expect(
            &wanda,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/invitations")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(invitations[0]["status"], "accepted");

        // Mia's workspaces: personal first.
        let mine = expect(
            &mia,
            app,
            ("GET", "/v1/workspaces"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let names: Vec<(bool, &str)> = mine
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                (
                    w["personal"].as_bool().unwrap(),
                    w["role"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(names, [(true, "owner"), (false, "member")]);
        // A member reads the workspace and its members, manages nothing.
        let members = expect(
            &mia,
            app,
            ("GET", &format!("/v1/workspaces/{acme}/members")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(members.as_array().unwrap().len(), 2);
        assert_eq!(members[0]["role"], "owner");
        let manage = call(
            &mia,
            app,
            "PATCH",
            &format!("/v1/workspaces/{acme}"),
            None,
            Some(json!({ "name": "Mine" })),
        )
        .await;
        assert_eq!(
            refusal(manage).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        // An outsider: the workspace does not exist.
        for path in ["", "/members", "/api-keys", "/audit-events", "/invitations"] {
            let response = call(
                &olga,
                app,
                "GET",
                &format!("/v1/workspaces/{acme}{path}"),
                None,
                None,
            )
            .await;
            assert_eq!(
                refusal(response).await,
                (StatusCode::NOT_FOUND, "RESOURCE_001".into()),
                "{path}"
            );
        }
        // Revoked invitations cannot be accepted either.
        let second = expect(
            &wanda,
            app,
            ("POST", &format!("/v1/workspaces/{acme}/invitations")),
            None,
            Some(json!({ "email": "olga@example.com" })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &wanda,
            app,
            (
                "DELETE",
                &format!(
                    "/v1/workspaces/{acme}/invitations/{}",
                    second["id"].as_str().unwrap()
                ),
            ),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let late = call(
            &olga,
            app,
            "POST",
            "/v1/invitations/accept",
            None,
            Some(json!({ "token": second["token"] })),
        )
        .await;
        assert_eq!(
            refusal(late).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
    }
);

both_backends!(
    roles_stay_within_the_callers_and_a_workspace_keeps_an_owner,
    |app| async move {
        let (wanda, wanda_id) = member(app, "wanda@example.com").await;
        let (mia, mia_id) = member(app, "mia@example.com").await;
        let (max, max_id) = member(app, "max@example.com").await;
        let (acme, _) = create_workspace(&wanda, app, json!({ "name": "Acme" })).await;
        join(app, &wanda, &mia, &acme, "mia@example.com", "admin").await;
        join(app, &mia, &max, &acme, "max@example.com", "member").await;
        let forbidden = |r: (StatusCode, String)| assert_eq!(r.0, StatusCode::FORBIDDEN, "{r:?}");
        // An admin neither invites owners, nor makes or unmakes them.
        forbidden(
            refusal(
                call(
                    &mia,
                    app,
                    "POST",
                    &format!("/v1/workspaces/{acme}/invitations"),
                    None,
                    Some(json!({ "email": "o@example.com", "role": "owner" })),
                )
                .await,
            )
            .await,
        );
        forbidden(
            refusal(
                call(
                    &mia,
                    app,
                    "PATCH",
                    &format!("/v1/workspaces/{acme}/members/{mia_id}"),
                    None,
                    Some(json!({ "role": "owner" })),
                )
                .await,
            )
            .await,
        );
        forbidden(
            refusal(
                call(
                    &mia,
                    app,
                    "PATCH",
                    &format!("/v1/workspaces/{acme}/members/{wanda_id}"),
                    None,
                    Some(json!({ "role": "member" })),
                )
                .await,
            )
            .await,
        );
        forbidden(
            refusal(
                call(
                    &mia,
                    app,
                    "DELETE",
                    &format!("/v1/workspaces/{acme}/members/{wanda_id}"),
                    None,
                    None,
                )
                .await,
            )
            .await,
        );
        forbidden(
            refusal(
                call(
                    &mia,
                    app,
                    "DELETE",
                    &format!("/v1/workspaces/{acme}"),
                    None,
                    None,
                )
                .await,
            )
            .await,
        );
        // A member manages nobody.
        forbidden(
            refusal(
                call(
                    &max,
                    app,
                    "PATCH",
                    &format!("/v1/workspaces/{acme}/members/{max_id}"),
                    None,
                    Some(json!({ "role": "admin" })),
                )
                .await,
            )
            .await,
        );
        // An admin manages members.
        let promoted = expect(
            &mia,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{max_id}")),
            None,
            Some(json!({ "role": "admin" })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(promoted["role"], "admin");
        // The last owner stays.
        let conflict = (StatusCode::CONFLICT, "WORKSPACE_001".to_owned());
        assert_eq!(
            refusal(
                call(
                    &wanda,
                    app,
                    "PATCH",
                    &format!("/v1/workspaces/{acme}/members/{wanda_id}"),
                    None,
                    Some(json!({ "role": "admin" }))
                )
                .await
            )
            .await,
            conflict
        );
        assert_eq!(
            refusal(
                call(
                    &wanda,
                    app,
                    "DELETE",
                    &format!("/v1/workspaces/{acme}/members/{wanda_id}"),
                    None,
                    None
                )
                .await
            )
            .await,
            conflict
        );
        // With a second owner, the first may leave; then Max leaves too.
        expect(
            &wanda,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{mia_id}")),
            None,
            Some(json!({ "role": "owner" })),
            StatusCode::OK,
        )
        .await;
        expect(
            &wanda,
            app,
            (
                "DELETE",
                &format!("/v1/workspaces/{acme}/members/{wanda_id}"),
            ),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        expect(
            &max,
            app,
            ("DELETE", &format!("/v1/workspaces/{acme}/members/{max_id}")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let gone = call(
            &wanda,
            app,
            "GET",
            &format!("/v1/workspaces/{acme}"),
            None,
            None,
        )
        .await;
        assert_eq!(refusal(gone).await.0, StatusCode::NOT_FOUND);
        // A personal workspace is its user's alone.
        let personal = expect(
            &wanda,
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
        let alone = (StatusCode::CONFLICT, "WORKSPACE_002".to_owned());
        assert_eq!(
            refusal(
                call(
                    &wanda,
                    app,
                    "POST",
                    &format!("/v1/workspaces/{personal}/invitations"),
                    None,
                    Some(json!({ "email": "a@example.com" }))
                )
                .await
            )
            .await,
            alone
        );
        assert_eq!(
            refusal(
                call(
                    &wanda,
                    app,
                    "DELETE",
                    &format!("/v1/workspaces/{personal}/members/{wanda_id}"),
                    None,
                    None
                )
                .await
            )
            .await,
            alone
        );
        assert_eq!(
            refusal(
                call(
                    &wanda,
                    app,
                    "DELETE",
                    &format!("/v1/workspaces/{personal}"),
                    None,
                    None
                )
                .await
            )
            .await,
            alone
        );
    }
);

both_backends!(
    removal_ends_the_members_keys_and_grants_in_the_workspace_at_once,
    |app| async move {
        let (wanda, _) = member(app, "wanda@example.com").await;
        let mia_id = app
            .create_user("mia@example.com", "member password 1", false)
            .await;
        let response = app.login("mia@example.com", "member password 1").await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let mia = app.client.clone();
        let (acme, _) = create_workspace(&wanda, app, json!({ "name": "Acme" })).await;
        join(app, &wanda, &mia, &acme, "mia@example.com", "member").await;
        let (_, acme_key) = new_key(
            &mia,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "acme", "workspace_id": acme }),
        )
        .await;
        let (_, personal_key) = new_key(
            &mia,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "personal" }),
        )
        .await;
        // Mia authorizes an app in Acme.
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, &format!("&workspace={acme}"));
        let (_, answer) = consent_in(app, &url, None).await;
        let tokens = token_for_code(app, &client, &answer["code"]).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt_claims(&access)["workspace"]["role"], "member");
        let http = reqwest::Client::new();
        for credential in [&acme_key, &access, &personal_key] {
            expect(
                &http,
                app,
                ("GET", "/v1/users/me"),
                Some(credential),
                None,
                StatusCode::OK,
            )
            .await;
        }

        expect(
            &wanda,
            app,
            ("DELETE", &format!("/v1/workspaces/{acme}/members/{mia_id}")),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        for credential in [&acme_key, &access] {
            let after = call(&http, app, "GET", "/v1/users/me", Some(credential), None).await;
            assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
        }
        let refreshed = exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(refreshed.status(), StatusCode::BAD_REQUEST);
        // Her own workspace is not touched.
        expect(
            &http,
            app,
            ("GET", "/v1/users/me"),
            Some(&personal_key),
            None,
            StatusCode::OK,
        )
        .await;
        let events = expect(
            &wanda,
            app,
            (
                "GET",
                &format!("/v1/workspaces/{acme}/audit-events?action=workspace.member.removed"),
            ),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(events[0]["details"]["keys_revoked"], 1);
        assert_eq!(events[0]["details"]["grants_revoked"], 1);
    }
);

both_backends!(
    issuing_revoking_and_inviting_never_reach_above_the_callers_role,
    |app| async move {
        let (wanda, wanda_id) = member(app, "wanda@example.com").await;
        let (mia, mia_id) = member(app, "mia@example.com").await;
        let (max, max_id) = member(app, "max@example.com").await;
        let (acme, _) = create_workspace(&wanda, app, json!({ "name": "Acme" })).await;
        join(app, &wanda, &mia, &acme, "mia@example.com", "admin").await;
        join(app, &wanda, &max, &acme, "max@example.com", "member").await;
        // An admin issues keys to members only: not to an owner (whose key it would see).
        let issue = |to: &str| format!("/v1/workspaces/{acme}/members/{to}/api-keys");
        let to_owner = call(
            &mia,
            app,
            "POST",
            &issue(&wanda_id),
            None,
            Some(json!({ "name": "x" })),
        )
        .await;
        assert_eq!(refusal(to_owner).await.0, StatusCode::FORBIDDEN);
        let to_admin = call(
            &mia,
            app,
            "POST",
            &issue(&mia_id),
            None,
            Some(json!({ "name": "x" })),
        )
        .await;
        assert_eq!(refusal(to_admin).await.0, StatusCode::FORBIDDEN);
        expect(
            &mia,
            app,
            ("POST", &issue(&max_id)),
            None,
            Some(json!({ "name": "max's" })),
            StatusCode::CREATED,
        )
        .await;
        // Nor revokes an owner's key.
        let (owner_key_id, _) = new_key(
            &wanda,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "wanda's", "workspace_id": acme }),
        )
        .await;
        let revoke = call(
            &mia,
            app,
            "DELETE",
            &format!("/v1/workspaces/{acme}/api-keys/{owner_key_id}"),
            None,
            None,
        )
        .await;
        assert_eq!(refusal(revoke).await.0, StatusCode::FORBIDDEN);
        // A demoted admin's pending invitations above their new role end.
        let pending = expect(
            &mia,
            app,
            ("POST", &format!("/v1/workspaces/{acme}/invitations")),
            None,
            Some(json!({ "email": "eve@example.com", "role": "admin" })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &wanda,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{mia_id}")),
            None,
            Some(json!({ "role": "member" })),
            StatusCode::OK,
        )
        .await;
        let (eve, _) = member(app, "eve@example.com").await;
        let late = call(
            &eve,
            app,
            "POST",
            "/v1/invitations/accept",
            None,
            Some(json!({ "token": pending["token"] })),
        )
        .await;
        assert_eq!(
            refusal(late).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
    }
);
