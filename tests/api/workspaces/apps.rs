//! The workspace an app's authorization names: the user picks it on the consent page, tokens
//! carry it, private apps are for their members, approval is per workspace, and disconnecting
//! with a workspace's key ends only that workspace's grants.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::oauth::{REDIRECT, authorize_url, exchange, register};

use super::{call, consent_in, create_workspace, expect, member, new_key, token_for_code};

both_backends!(
    the_user_picks_the_workspace_on_the_consent_page_and_tokens_carry_it,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let id = client.id.clone();
        app.state
            .db(move |c| {
                use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
                use gatehouse::db::schema::clients;
                diesel::update(clients::table.find(&id))
                    .set(clients::allowed_scopes.eq("read:users openid offline_access"))
                    .execute(c)
                    .map_err(gatehouse::db::DbError::from)
            })
            .await
            .unwrap();
        app.state.key_cache.invalidate_all();
        let personal = expect(
            &app.client,
            app,
            ("GET", "/v1/workspaces"),
            None,
            None,
            StatusCode::OK,
        )
        .await[0]
            .clone();
        // One workspace: nothing to choose; the token names it.
        let url = authorize_url(&client, "read:users openid offline_access", None, "");
        let (offered, answer) = consent_in(app, &url, None).await;
        assert!(!offered);
        let tokens = token_for_code(app, &client, &answer["code"]).await;
        let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(claims["workspace"]["id"], personal["id"]);
        assert_eq!(claims["workspace"]["role"], "owner");
        let id_claims = jwt_claims(tokens["id_token"].as_str().unwrap());
        assert_eq!(id_claims["workspace"], claims["workspace"]);

        // A second workspace: the remembered choice holds, until the app or the user asks
        // otherwise.
        let (acme, acme_slug) = create_workspace(&app.client, app, json!({ "name": "Acme" })).await;
        let (offered, answer) = consent_in(app, &url, None).await;
        assert!(!offered, "the remembered workspace needs no page");
        let claims = jwt_claims(
            token_for_code(app, &client, &answer["code"]).await["access_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(claims["workspace"]["id"], personal["id"]);
        // prompt=consent shows the choice; picking Acme makes the token Acme's.
        let (offered, answer) =
            consent_in(app, &format!("{url}&prompt=consent"), Some(&acme)).await;
        assert!(offered);
        let tokens = token_for_code(app, &client, &answer["code"]).await;
        let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
        assert_eq!(
            claims["workspace"],
            json!({ "id": acme, "slug": acme_slug, "role": "owner" })
        );
        // …and a refresh keeps it.
        let refreshed: Value = exchange(
            app,
            &client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(
            jwt_claims(refreshed["access_token"].as_str().unwrap())["workspace"]["id"],
            acme.as_str()
        );
        // The app may name one by slug; one the user is not in is the user's refusal.
        let (_, answer) = consent_in(
            app,
            &format!("{url}&workspace={}", personal["slug"].as_str().unwrap()),
            None,
        )
        .await;
        let claims = jwt_claims(
            token_for_code(app, &client, &answer["code"]).await["access_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(claims["workspace"]["id"], personal["id"]);
        let (_, refused) =
            consent_in(app, &format!("{url}&workspace=nobodys-workspace"), None).await;
        assert_eq!(refused["error"], "access_denied");
    }
);

both_backends!(
    a_private_app_is_authorized_in_its_workspace_by_its_members_only,
    |app| async move {
        app.login_admin().await;
        let (acme, _) = create_workspace(&app.client, app, json!({ "name": "Acme" })).await;
        // Only the workspace's admins register its private apps.
        let (olga, _) = member(app, "olga@example.com").await;
        let app_body = json!({
            "name": "Acme internal",
            "redirect_uris": [REDIRECT],
            "scopes": ["read:users"],
            "workspace_id": acme,
        });
        let outsider = call(
            &olga,
            app,
            "POST",
            "/v1/clients",
            None,
            Some(app_body.clone()),
        )
        .await;
        assert_eq!(refusal(outsider).await.0, StatusCode::NOT_FOUND);
        let created = expect(
            &app.client,
            app,
            ("POST", "/v1/clients"),
            None,
            Some(app_body),
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(created["workspace_id"], acme.as_str());
        let client = crate::oauth::TestClient {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"].as_str().map(str::to_owned),
        };
        // Set at registration, never moved.
        let moved = call(
            &app.client,
            app,
            "PATCH",
            &format!("/v1/clients/{}", client.id),
            None,
            Some(json!({ "workspace_id": acme })),
        )
        .await;
        assert_eq!(refusal(moved).await.0, StatusCode::BAD_REQUEST);
        let url = authorize_url(&client, "read:users", None, "");
        let (offered, answer) = consent_in(app, &url, None).await;
        assert!(
            !offered,
            "a private app's workspace is not the user's to choose"
        );
        let claims = jwt_claims(
            token_for_code(app, &client, &answer["code"]).await["access_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(claims["workspace"]["id"], acme.as_str());
        // A credential bound to another workspace (the administrator's personal one) does not
        // see the private app nor the approval made in Acme; one bound to Acme sees both.
        let (_, personal_key) = app
            .create_key(json!({ "name": "personal", "scopes": ["read:clients", "read:consents", "write:consents"] }))
            .await;
        let (_, acme_key) = app
            .create_key(json!({ "name": "acme", "workspace_id": acme, "scopes": ["read:clients", "read:consents"] }))
            .await;
        let client_id = client.id.clone();
        let client_id = &client_id;
        let listed = |key: String| async move {
            let clients: Value = call(
                &reqwest::Client::new(),
                app,
                "GET",
                "/v1/clients",
                Some(&key),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
            let consents: Value = call(
                &reqwest::Client::new(),
                app,
                "GET",
                "/v1/consents",
                Some(&key),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
            let has = |list: &Value, field: &str| {
                list["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c[field] == client_id.as_str())
            };
            (
                has(&clients, "client_id"),
                has(&consents, "client_id"),
                consents,
            )
        };
        let (app_seen, consent_seen, _) = listed(personal_key.clone()).await;
        assert!(
            !app_seen && !consent_seen,
            "nothing of Acme through the personal key"
        );
        let (app_seen, consent_seen, consents) = listed(acme_key.clone()).await;
        assert!(
            app_seen && consent_seen,
            "Acme's key sees Acme's app and approval"
        );
        let one = call(
            &reqwest::Client::new(),
            app,
            "GET",
            &format!("/v1/clients/{}", client.id),
            Some(&personal_key),
            None,
        )
        .await;
        assert_eq!(refusal(one).await.0, StatusCode::NOT_FOUND);
        let consent_id = consents["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == client.id.as_str())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let revoked = call(
            &reqwest::Client::new(),
            app,
            "DELETE",
            &format!("/v1/consents/{consent_id}"),
            Some(&personal_key),
            None,
        )
        .await;
        assert_eq!(
            refusal(revoked).await.0,
            StatusCode::NOT_FOUND,
            "another workspace's approval is not there"
        );
        // It cannot ask for another workspace, and an outsider cannot authorize it.
        let other = app.get(&format!("{url}&workspace=personal-x")).await;
        assert_eq!(other.status(), StatusCode::BAD_REQUEST);
        app.login("olga@example.com", "member password 1").await;
        let (_, refused) = consent_in(app, &url, None).await;
        assert_eq!(refused["error"], "access_denied");
    }
);

both_backends!(
    an_app_approved_in_one_workspace_asks_before_acting_in_another,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        let (_, answer) = consent_in(app, &url, None).await;
        assert!(answer.contains_key("code"));
        let (acme, _) = create_workspace(&app.client, app, json!({ "name": "Acme" })).await;
        // Named by the app, another workspace is the user's to approve: never silently, and
        // under prompt=none it is consent_required.
        let elsewhere = format!("{url}&workspace={acme}");
        let (_, silent) = consent_in(app, &format!("{elsewhere}&prompt=none"), None).await;
        assert_eq!(silent["error"], "consent_required");
        let page = app.get(&elsewhere).await;
        assert_eq!(page.status(), StatusCode::OK, "the consent page");
        let (_, approved) = consent_in(app, &elsewhere, None).await;
        let claims = jwt_claims(
            token_for_code(app, &client, &approved["code"]).await["access_token"]
                .as_str()
                .unwrap(),
        );
        assert_eq!(claims["workspace"]["id"], acme.as_str());
        // A key bound to a workspace lists its own workspace's keys by every path.
        let (_, acme_key) = new_key(
            &app.client,
            app,
            "/v1/api-keys",
            None,
            json!({ "name": "acme", "workspace_id": acme }),
        )
        .await;
        let me: Value = app.me().await.json().await.unwrap();
        let own = me["data"]["id"].as_str().unwrap();
        let listed = expect(
            &reqwest::Client::new(),
            app,
            ("GET", &format!("/v1/users/{own}/api-keys")),
            Some(&acme_key),
            None,
            StatusCode::OK,
        )
        .await;
        assert!(
            listed
                .as_array()
                .unwrap()
                .iter()
                .all(|k| k["workspace_id"] == acme.as_str()),
            "{listed}"
        );
    }
);

both_backends!(
    disconnecting_with_a_workspaces_key_ends_that_workspaces_grants_only,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let id = client.id.clone();
        app.state
            .db(move |c| {
                use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
                use gatehouse::db::schema::clients;
                diesel::update(clients::table.find(&id))
                    .set(clients::allowed_scopes.eq("read:users offline_access"))
                    .execute(c)
                    .map_err(gatehouse::db::DbError::from)
            })
            .await
            .unwrap();
        let url = authorize_url(&client, "read:users offline_access", None, "");
        // A grant in the personal workspace, then one in Acme (the approval now names Acme).
        let (_, answer) = consent_in(app, &url, None).await;
        let personal = token_for_code(app, &client, &answer["code"]).await;
        let (acme, _) = create_workspace(&app.client, app, json!({ "name": "Acme" })).await;
        let (_, answer) = consent_in(app, &format!("{url}&prompt=consent"), Some(&acme)).await;
        let in_acme = token_for_code(app, &client, &answer["code"]).await;
        let (_, acme_key) = app
            .create_key(json!({ "name": "acme", "workspace_id": acme, "scopes": ["read:consents", "write:consents"] }))
            .await;
        let consents: Value = call(
            &reqwest::Client::new(),
            app,
            "GET",
            "/v1/consents",
            Some(&acme_key),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
        let consent = consents["data"][0]["id"].as_str().unwrap().to_owned();
        let gone = call(
            &reqwest::Client::new(),
            app,
            "DELETE",
            &format!("/v1/consents/{consent}"),
            Some(&acme_key),
            None,
        )
        .await;
        assert_eq!(gone.status(), StatusCode::OK);
        let refresh = |tokens: &Value| {
            let token = tokens["refresh_token"].as_str().unwrap().to_owned();
            let client = &client;
            async move {
                exchange(
                    app,
                    client,
                    &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                )
                .await
                .status()
            }
        };
        assert_eq!(
            refresh(&in_acme).await,
            StatusCode::BAD_REQUEST,
            "Acme's grant ended"
        );
        assert_eq!(
            refresh(&personal).await,
            StatusCode::OK,
            "the personal grant is not Acme's"
        );
    }
);
