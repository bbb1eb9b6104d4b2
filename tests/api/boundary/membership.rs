//! Membership over time: a demotion ends the tokens that carried the old role, and an invitation
//! expires after seven days on the server's clock.

use reqwest::StatusCode;
use serde_json::json;

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::workspaces::{call, expect, join};

use super::{own_exchange, token_of, user, workspace};

both_backends!(
    a_demotion_ends_the_tokens_that_carried_the_old_role,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (abe, abe_id) = user(app, "abe@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &abe, &acme, "abe@example.com", "admin").await;
        let key = expect(
            &abe,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "abe's", "scopes": ["read:users"], "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let key = key["key"].as_str().unwrap().to_owned();
        let token = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&token)["workspace"]["role"], "admin");
        let me = |credential: String| async move {
            app.get_with_key("/v1/users/me", &credential).await.status()
        };
        assert_eq!(me(token.clone()).await, StatusCode::OK);
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{abe_id}")),
            None,
            Some(json!({ "role": "member" })),
            StatusCode::OK,
        )
        .await;
        // The token that said "admin" ends; the key stays, and what it mints now says "member".
        assert_eq!(me(token).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(key.clone()).await, StatusCode::OK);
        let fresh = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&fresh)["workspace"]["role"], "member");
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        // A promotion takes nothing away.
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}/members/{abe_id}")),
            None,
            Some(json!({ "role": "admin" })),
            StatusCode::OK,
        )
        .await;
        assert_eq!(me(fresh).await, StatusCode::OK);
        // Promoted back: what is exchanged now (saying "admin" again) works.
        let promoted = token_of(own_exchange(app, &key).await).await;
        assert_eq!(jwt_claims(&promoted)["workspace"]["role"], "admin");
        assert_eq!(me(promoted).await, StatusCode::OK);
    }
);

both_backends!(
    an_invitation_expires_after_seven_days_on_the_servers_clock,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        for email in ["ivy@example.com", "late@example.com"] {
            app.create_user(email, "boundary password 1", false).await;
        }
        let acme = workspace(app, &olga, "Acme").await;
        let mut tokens = Vec::new();
        for email in ["ivy@example.com", "late@example.com"] {
            let invited = expect(
                &olga,
                app,
                ("POST", &format!("/v1/workspaces/{acme}/invitations")),
                None,
                Some(json!({ "email": email })),
                StatusCode::CREATED,
            )
            .await;
            tokens.push(invited["token"].as_str().unwrap().to_owned());
        }
        // Signed in after the clock moved (sessions age on it too), each accepts theirs.
        let accept = |email: &'static str, token: String| async move {
            let (browser, signed) = app.login_in_new_browser(email, "boundary password 1").await;
            assert_eq!(signed.status(), StatusCode::SEE_OTHER);
            call(
                &browser,
                app,
                "POST",
                "/v1/invitations/accept",
                None,
                Some(json!({ "token": token })),
            )
            .await
        };
        // Six days and 23 hours later: still valid.
        app.clock
            .advance(chrono::Duration::days(7) - chrono::Duration::hours(1));
        let on_time = accept("ivy@example.com", tokens[0].clone()).await;
        assert_eq!(on_time.status(), StatusCode::OK);
        // Past seven days: refused as expired, and nobody joined.
        app.clock.advance(chrono::Duration::hours(2));
        assert_eq!(
            refusal(accept("late@example.com", tokens[1].clone()).await).await,
            (StatusCode::NOT_FOUND, "WORKSPACE_003".into())
        );
        let acme_id = acme.clone();
        let members: Vec<String> = app
            .state
            .db(move |c| {
                Ok::<_, gatehouse::db::DbError>(
                    gatehouse::workspaces::members(c, &acme_id)?
                        .into_iter()
                        .map(|m| m.email)
                        .collect(),
                )
            })
            .await
            .unwrap();
        assert!(
            members.contains(&"ivy@example.com".to_owned()),
            "{members:?}"
        );
        assert!(
            !members.contains(&"late@example.com".to_owned()),
            "{members:?}"
        );
    }
);
