//! How grants end and are recorded: deleting an app ends its tokens, refresh families stop after
//! 14 idle days and 30 in all, revocations and machine tokens are audited, and long-expired codes
//! are purged.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::oauth::{REDIRECT, code_for, exchange, oauth_error, obtain_tokens, register};

use super::{api, events, field, invalid_grant, me_status, redeem, refresh};

both_backends!(deleting_an_app_ends_its_tokens, |app| async move {
    app.login_admin().await;
    let client = register(app, false, true).await;
    let tokens = obtain_tokens(app, &client).await;
    let (access, refresh_token) = (
        field(&tokens, "access_token"),
        field(&tokens, "refresh_token"),
    );
    assert_eq!(me_status(app, &access).await, StatusCode::OK);
    let (_, rs_key) = app
        .create_key(json!({ "name": "resource server", "scopes": ["introspect"] }))
        .await;
    let (status, _) = api(
        app,
        Method::DELETE,
        &format!("/v1/clients/{}", client.id),
        None,
    )
    .await;
    assert!(status.is_success(), "{status}");
    let refused = refresh(app, &client, &refresh_token).await;
    assert!(refused.status().is_client_error());
    assert_eq!(me_status(app, &access).await, StatusCode::UNAUTHORIZED);
    for token in [&access, &refresh_token] {
        let about: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .bearer_auth(&rs_key)
            .form(&[("token", token.as_str())])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(about, json!({ "active": false }));
    }
});

both_backends!(
    refresh_tokens_stop_after_14_idle_days_and_30_days_in_all,
    |app| async move {
        use chrono::Duration;
        app.login_admin().await;
        let client = register(app, false, true).await;
        let idle = field(&obtain_tokens(app, &client).await, "refresh_token");
        let mut busy = field(&obtain_tokens(app, &client).await, "refresh_token");
        let step = |days: i64, minutes: i64| {
            app.clock
                .advance(Duration::days(days) + Duration::minutes(minutes))
        };
        step(13, 0);
        let rotated: Value = refresh(app, &client, &busy).await.json().await.unwrap();
        busy = field(&rotated, "refresh_token");
        assert!(busy.starts_with("rt_"), "used within 14 days: {rotated}");
        step(1, 1);
        assert_eq!(
            oauth_error(refresh(app, &client, &idle).await).await,
            invalid_grant(),
            "14 days unused"
        );
        step(12, 0);
        let rotated: Value = refresh(app, &client, &busy).await.json().await.unwrap();
        busy = field(&rotated, "refresh_token");
        assert!(
            busy.starts_with("rt_"),
            "day 26, used 13 days ago: {rotated}"
        );
        step(4, 0);
        assert_eq!(
            oauth_error(refresh(app, &client, &busy).await).await,
            invalid_grant(),
            "30 days after the sign-in, however busy"
        );
    }
);

both_backends!(
    revoking_access_and_refresh_tokens_is_audited_without_the_token,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let tokens = obtain_tokens(app, &client).await;
        let refresh_token = field(&tokens, "refresh_token");
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&client.id, client.secret.as_ref())
            .form(&[("token", refresh_token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let recorded = events(app, "oauth.token.revoked").await;
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0]["details"]["token_type"], "refresh_token");
        assert_eq!(recorded[0]["details"]["client_id"], client.id.as_str());
        assert_eq!(
            recorded[0]["details"]["revoked_by_client"],
            client.id.as_str()
        );
        assert!(!recorded[0].to_string().contains(&refresh_token));

        // A user revoking an access token of theirs, with that token as the credential.
        let access = field(&obtain_tokens(app, &client).await, "access_token");
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .bearer_auth(&access)
            .form(&[("token", access.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        let recorded = events(app, "oauth.token.revoked").await;
        let event = recorded
            .iter()
            .find(|e| e["details"]["token_type"] == "access_token")
            .expect("the access token's revocation is audited");
        let (_, me) = api(app, Method::GET, "/v1/users/me", None).await;
        assert_eq!(event["actor_user_id"], me["data"]["id"]);
        assert_eq!(event["details"]["client_id"], client.id.as_str());
        assert!(!event.to_string().contains(&access));
    }
);

both_backends!(
    client_credentials_issuance_is_audited_once_a_minute_with_a_count,
    |app| async move {
        use gatehouse::clients::redirect::RedirectUri;
        use gatehouse::clients::{ClientType, NewClient, default_grant_types};
        app.login_admin().await;
        let (_, me) = api(app, Method::GET, "/v1/users/me", None).await;
        let mut grant_types = default_grant_types();
        grant_types.push("client_credentials".into());
        let new = NewClient {
            name: "Billing worker".into(),
            owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
            client_type: ClientType::Confidential,
            redirect_uris: vec![RedirectUri::parse(REDIRECT).unwrap()],
            scopes: gatehouse::scopes::ScopeSet::parse("read:orders").unwrap(),
            first_party: false,
            grant_types,
            resources: Vec::new(),
            ..Default::default()
        };
        let machine = crate::oauth::create_client(app, new).await;
        let cc = [("grant_type", "client_credentials")];
        for _ in 0..3 {
            assert_eq!(exchange(app, &machine, &cc).await.status(), StatusCode::OK);
        }
        let action = "oauth.client_credentials.issued";
        assert!(
            events(app, action).await.is_empty(),
            "not one event per token"
        );
        app.clock.advance(chrono::Duration::seconds(61));
        assert_eq!(exchange(app, &machine, &cc).await.status(), StatusCode::OK);
        let recorded = events(app, action).await;
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0]["details"]["client_id"], machine.id.as_str());
        assert_eq!(recorded[0]["details"]["count"], 3);
        app.clock.advance(chrono::Duration::seconds(61));
        let flushed = gatehouse::grants::audit::flush_issuances(&app.state, false)
            .await
            .unwrap();
        assert_eq!(flushed, 1, "housekeeping writes the minute that is over");
        let counts: Vec<Value> = events(app, action)
            .await
            .iter()
            .map(|e| e["details"]["count"].clone())
            .collect();
        assert_eq!(counts, vec![json!(1), json!(3)], "newest first");
    }
);

both_backends!(
    codes_long_expired_are_purged_and_recent_ones_kept,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, true).await;
        let old = code_for(app, &client, "read:users").await;
        app.clock.advance(chrono::Duration::hours(2));
        app.login_admin().await;
        let recent = code_for(app, &client, "read:users").await;
        let swept = gatehouse::retention::run(&app.state)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(swept.auth_codes, 1);
        assert_eq!(
            redeem(app, &client, &recent, None).await.status(),
            StatusCode::OK
        );
        assert_eq!(
            oauth_error(redeem(app, &client, &old, None).await).await,
            invalid_grant()
        );
    }
);
