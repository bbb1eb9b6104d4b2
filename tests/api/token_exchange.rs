//! RFC 8693 token exchange: an API key traded for a short-lived JWT that is never more than the
//! key (scopes, mode, life, allowlist, revocation), and an app's access token traded for a
//! narrower one, with delegation. Every refusal is tried as an attacker would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::helpers::{TestApp, spawn_app_with};
use crate::oauth::{TestClient, exchange, oauth_error, obtain_tokens_for};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const API_KEY: &str = "urn:gatehouse:params:oauth:token-type:api_key";
const ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";

/// A key holder's own exchange: no client authentication.
async fn exchange_key(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", EXCHANGE),
        ("subject_token", key),
        ("subject_token_type", API_KEY),
    ];
    form.extend_from_slice(extra);
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn exchanged(app: &TestApp, key: &str, extra: &[(&str, &str)]) -> Value {
    let response = exchange_key(app, key, extra).await;
    assert_eq!(response.status(), StatusCode::OK, "the exchange succeeds");
    response.json().await.unwrap()
}

/// Roll a key (as the signed-in caller) with this grace period.
async fn roll_with_grace(app: &TestApp, key_id: &str, grace: &str) {
    let rolled = app
        .client
        .post(app.url(&format!("/v1/api-keys/{key_id}/roll")))
        .json(&json!({ "grace_period": grace }))
        .send()
        .await
        .unwrap();
    assert!(rolled.status().is_success(), "{}", rolled.status());
}

/// The access token a key holder's own exchange (no parameters) gives.
async fn token_for(app: &TestApp, key: &str) -> String {
    exchanged(app, key, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn bad_request(code: &str) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, code.into())
}

/// A confidential app allowed these grants.
pub(crate) async fn client_with_grants(app: &TestApp, grants: &[&str]) -> TestClient {
    client_with_grants_for(app, grants, Vec::new()).await
}

/// The same, bound (by an administrator) to these resource servers.
pub(crate) async fn client_with_grants_for(
    app: &TestApp,
    grants: &[&str],
    resources: Vec<String>,
) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{ClientType, NewClient};
    let me: Value = app.me().await.json().await.unwrap();
    let new = NewClient {
        name: "Gateway".into(),
        owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
        client_type: ClientType::Confidential,
        redirect_uris: vec![RedirectUri::parse(crate::oauth::REDIRECT).unwrap()],
        scopes: gatehouse::scopes::ScopeSet::parse("read:users read:orders write:orders").unwrap(),
        first_party: true,
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        resources,
        ..Default::default()
    };
    crate::oauth::create_client(app, new).await
}

both_backends!(
    an_api_key_becomes_a_jwt_for_its_user_within_the_key_scopes,
    |app| async move {
        app.login_admin().await;
        let me: Value = app.me().await.json().await.unwrap();
        let user_id = me["data"]["id"].as_str().unwrap().to_owned();
        let (key_id, key) = app
            .create_key(json!({"name": "ci", "scopes": ["read:users", "read:api_keys"]}))
            .await;
        let answer = exchanged(app, &key, &[]).await;
        assert_eq!(answer["token_type"], "Bearer");
        assert_eq!(answer["issued_token_type"], ACCESS_TOKEN);
        assert!(answer.get("refresh_token").is_none(), "no refresh token");
        let expires_in = answer["expires_in"].as_i64().unwrap();
        assert!((1..=900).contains(&expires_in), "{expires_in}");
        let token = answer["access_token"].as_str().unwrap();
        let claims = jwt_claims(token);
        assert_eq!(claims["sub"], user_id.as_str());
        assert_eq!(
            claims["client_id"],
            key_id.as_str(),
            "the key holder's own exchange"
        );
        assert_eq!(claims["key"]["id"], key_id.as_str());
        assert_eq!(claims["key"]["livemode"], true);
        assert_eq!(claims["aud"], app.state.settings.token_audience());
        let scopes: Vec<&str> = claims["scope"].as_str().unwrap().split(' ').collect();
        assert_eq!(
            scopes.len(),
            2,
            "the key's scopes when none is asked: {scopes:?}"
        );
        // The JWT calls the API as the key would.
        let me = app.get_with_key("/v1/users/me", token).await;
        assert_eq!(me.status(), StatusCode::OK);
        // Narrower on request; never wider.
        let narrow = exchanged(app, &key, &[("scope", "read:users")]).await;
        assert_eq!(narrow["scope"], "read:users");
        let wider = exchange_key(app, &key, &[("scope", "read:users write:api_keys")]).await;
        assert_eq!(oauth_error(wider).await, bad_request("invalid_scope"));
        let unknown = exchange_key(app, &key, &[("scope", "read:nothing")]).await;
        assert_eq!(oauth_error(unknown).await, bad_request("invalid_scope"));
        // The token holds read:users only: it cannot list keys.
        let keys = app
            .get_with_key("/v1/api-keys", narrow["access_token"].as_str().unwrap())
            .await;
        assert_eq!(keys.status(), StatusCode::FORBIDDEN);
        // Introspection reports the key behind it.
        let (_, admin_key) = app.create_key(json!({"name": "rs"})).await;
        let introspected: Value = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .bearer_auth(&admin_key)
            .form(&[("token", token)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(introspected["active"], true, "{introspected}");
        assert_eq!(introspected["key_id"], key_id.as_str());
        assert_eq!(introspected["livemode"], true);
    }
);

both_backends!(
    a_full_access_key_names_its_scopes_and_admin_scopes_stay_with_admins,
    |app| async move {
        app.create_user("member@example.com", "member-password-long", false)
            .await;
        assert_eq!(
            app.login("member@example.com", "member-password-long")
                .await
                .status(),
            StatusCode::SEE_OTHER
        );
        let (_, key) = app.create_key(json!({"name": "full"})).await;
        assert!(key.starts_with("sk_live_"));
        let unnamed = exchange_key(app, &key, &[]).await;
        assert_eq!(oauth_error(unnamed).await, bad_request("invalid_scope"));
        let named = exchanged(app, &key, &[("scope", "read:users write:api_keys")]).await;
        assert_eq!(named["scope"], "read:users write:api_keys");
        let admin_only = exchange_key(app, &key, &[("scope", "read:users introspect")]).await;
        assert_eq!(oauth_error(admin_only).await, bad_request("invalid_scope"));
    }
);

both_backends!(
    dead_or_foreign_keys_are_refused_and_revoking_a_key_kills_its_tokens,
    |app| async move {
        app.login_admin().await;
        for junk in [
            "sk_live_notakey",
            "nonsense",
            "rk_live_0000000000000000000000000000000000",
        ] {
            let refused = exchange_key(app, junk, &[]).await;
            assert_eq!(
                oauth_error(refused).await,
                bad_request("invalid_request"),
                "{junk}"
            );
        }
        let (key_id, key) = app
            .create_key(json!({"name": "short", "scopes": ["read:users"], "expires_in": 3600}))
            .await;
        let token = token_for(app, &key).await;
        assert_eq!(
            app.get_with_key("/v1/users/me", &token).await.status(),
            StatusCode::OK
        );
        // Revoked: the exchange is refused and the token already issued dies with the key.
        let revoked = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{key_id}")))
            .send()
            .await
            .unwrap();
        assert!(revoked.status().is_success(), "{}", revoked.status());
        assert_eq!(
            app.get_with_key("/v1/users/me", &token).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let again = exchange_key(app, &key, &[]).await;
        assert_eq!(oauth_error(again).await, bad_request("invalid_request"));
        // A token lives no longer than its key.
        let (_, soon) = app
            .create_key(json!({"name": "soon", "scopes": ["read:users"], "expires_in": 120}))
            .await;
        let answer = exchanged(app, &soon, &[]).await;
        assert!(answer["expires_in"].as_i64().unwrap() <= 120, "{answer}");
        app.clock.advance(chrono::Duration::seconds(121));
        let expired = exchange_key(app, &soon, &[]).await;
        assert_eq!(oauth_error(expired).await, bad_request("invalid_request"));
        // A key limited to endpoints cannot be exchanged: the token could not keep the limit.
        let (_, limited) = app
            .create_key(json!({"name": "limited", "scopes": ["read:users"],
                "allowed_endpoints": ["GET /v1/users/me"]}))
            .await;
        let refused = exchange_key(app, &limited, &[]).await;
        assert_eq!(oauth_error(refused).await, bad_request("invalid_request"));
    }
);

both_backends!(
    a_test_key_yields_a_test_token_that_cannot_mint_live_keys,
    |app| async move {
        app.login_admin().await;
        let (_, key) = app
            .create_key(json!({"name": "sandbox", "mode": "test",
                "scopes": ["read:users", "write:api_keys"]}))
            .await;
        let answer = exchanged(app, &key, &[]).await;
        let token = answer["access_token"].as_str().unwrap();
        assert_eq!(jwt_claims(token)["key"]["livemode"], false);
        let mint = |mode: &'static str| {
            reqwest::Client::new()
                .post(app.url("/v1/api-keys"))
                .bearer_auth(token)
                .json(&json!({"name": "child", "mode": mode, "scopes": ["read:users"]}))
                .send()
        };
        let live = mint("live").await.unwrap();
        assert_eq!(
            live.status(),
            StatusCode::FORBIDDEN,
            "a test token mints no live key"
        );
        let test = mint("test").await.unwrap();
        assert_eq!(test.status(), StatusCode::CREATED);
    }
);

both_backends!(
    audiences_follow_the_configured_resources,
    settings = |s: &mut gatehouse::config::Settings| {
        s.resources = vec!["https://orders.example.com".into()];
    },
    |app| async move {
        app.login_admin().await;
        let (_, key) = app
            .create_key(json!({"name": "rs", "scopes": ["read:orders"]}))
            .await;
        let answer = exchanged(app, &key, &[("resource", "https://orders.example.com")]).await;
        let claims = jwt_claims(answer["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], "https://orders.example.com");
        let by_audience = exchanged(app, &key, &[("audience", "https://orders.example.com")]).await;
        assert_eq!(
            jwt_claims(by_audience["access_token"].as_str().unwrap())["aud"],
            "https://orders.example.com"
        );
        let unknown =
            exchange_key(app, &key, &[("resource", "https://elsewhere.example.com")]).await;
        assert_eq!(oauth_error(unknown).await, bad_request("invalid_target"));
        let disagree = exchange_key(
            app,
            &key,
            &[
                ("resource", "https://orders.example.com"),
                ("audience", app.state.settings.token_audience()),
            ],
        )
        .await;
        assert_eq!(oauth_error(disagree).await, bad_request("invalid_target"));
        // A token for another resource server does not pass `/v1`.
        let other = app
            .get_with_key("/v1/users/me", answer["access_token"].as_str().unwrap())
            .await;
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    }
);

#[actix_web::test]
async fn the_key_allowlist_applies_to_the_exchange_and_to_the_token() {
    let Some(app) = spawn_app_with(crate::helpers::Backend::Sqlite, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await
    else {
        return;
    };
    app.login_admin().await;
    let (_, key) = app
        .create_key(json!({"name": "office", "scopes": ["read:users"],
            "allowed_ips": ["203.0.113.0/24"]}))
        .await;
    let from = |ip: &'static str, form: Vec<(&'static str, String)>| {
        reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .header("X-Forwarded-For", ip)
            .form(&form)
            .send()
    };
    let form = vec![
        ("grant_type", EXCHANGE.to_owned()),
        ("subject_token", key.clone()),
        ("subject_token_type", API_KEY.to_owned()),
    ];
    let outside = from("198.51.100.9", form.clone()).await.unwrap();
    assert_eq!(oauth_error(outside).await, bad_request("invalid_request"));
    let inside = from("203.0.113.7", form).await.unwrap();
    assert_eq!(inside.status(), StatusCode::OK);
    let token = inside.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        jwt_claims(&token)["key"]["allowed_ips"],
        json!(["203.0.113.0/24"])
    );
    let me_from = |ip: &'static str| {
        reqwest::Client::new()
            .get(app.url("/v1/users/me"))
            .bearer_auth(&token)
            .header("X-Forwarded-For", ip)
            .send()
    };
    assert_eq!(
        me_from("203.0.113.8").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        me_from("198.51.100.9").await.unwrap().status(),
        StatusCode::FORBIDDEN,
        "the token is usable where the key is, nowhere else"
    );
    app.stop().await;
}

both_backends!(
    clients_exchange_keys_only_when_allowed_and_within_their_scopes,
    |app| async move {
        app.login_admin().await;
        let (_, key) = app
            .create_key(json!({"name": "k", "scopes": ["read:users", "read:api_keys"]}))
            .await;
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", key.as_str()),
            ("subject_token_type", API_KEY),
            ("scope", "read:users"),
        ];
        let plain = crate::oauth::register(app, false, false).await;
        let not_allowed = exchange(app, &plain, &form).await;
        assert_eq!(
            oauth_error(not_allowed).await,
            bad_request("unauthorized_client")
        );
        let gateway = client_with_grants(app, &["client_credentials", EXCHANGE]).await;
        let answer: Value = exchange(app, &gateway, &form).await.json().await.unwrap();
        let claims = jwt_claims(answer["access_token"].as_str().unwrap());
        assert_eq!(claims["client_id"], gateway.id.as_str());
        // The client's own scopes bound the token too.
        let beyond = exchange(
            app,
            &gateway,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", key.as_str()),
                ("subject_token_type", API_KEY),
                ("scope", "read:api_keys"),
            ],
        )
        .await;
        assert_eq!(oauth_error(beyond).await, bad_request("invalid_scope"));
        // A wrong secret is a wrong client, not a key holder's exchange.
        let wrong = TestClient {
            id: gateway.id.clone(),
            secret: Some("cs_wrong".into()),
        };
        let refused = exchange(app, &wrong, &form).await;
        assert_eq!(oauth_error(refused).await.0, StatusCode::UNAUTHORIZED);
    }
);

both_backends!(
    an_access_token_is_narrowed_and_delegated_only_by_its_own_client,
    |app| async move {
        app.login_admin().await;
        let gateway = client_with_grants(
            app,
            &[
                "authorization_code",
                "refresh_token",
                "client_credentials",
                EXCHANGE,
            ],
        )
        .await;
        let tokens = obtain_tokens_for(app, &gateway, "read:users read:orders").await;
        let subject = tokens["access_token"].as_str().unwrap().to_owned();
        let narrow = |scope: &'static str, subject: String| {
            let gateway = &gateway;
            async move {
                exchange(
                    app,
                    gateway,
                    &[
                        ("grant_type", EXCHANGE),
                        ("subject_token", &subject),
                        ("subject_token_type", ACCESS_TOKEN),
                        ("scope", scope),
                    ],
                )
                .await
            }
        };
        let answer: Value = narrow("read:users", subject.clone())
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(answer["scope"], "read:users", "{answer}");
        let narrowed = answer["access_token"].as_str().unwrap().to_owned();
        let original = jwt_claims(&subject);
        let claims = jwt_claims(&narrowed);
        assert_eq!(claims["sub"], original["sub"]);
        assert!(claims["exp"].as_i64() <= original["exp"].as_i64());
        assert_eq!(
            app.get_with_key("/v1/users/me", &narrowed).await.status(),
            StatusCode::OK
        );
        let wider = narrow("read:users write:orders", subject.clone()).await;
        assert_eq!(oauth_error(wider).await, bad_request("invalid_scope"));
        // Another client may not exchange this client's token.
        let other = client_with_grants(app, &["client_credentials", EXCHANGE]).await;
        let stolen = exchange(
            app,
            &other,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
            ],
        )
        .await;
        assert_eq!(oauth_error(stolen).await, bad_request("invalid_request"));
        // Delegation: the client's own token as actor_token puts it in `act`.
        let own: Value = exchange(app, &gateway, &[("grant_type", "client_credentials")])
            .await
            .json()
            .await
            .unwrap();
        let delegated: Value = exchange(
            app,
            &gateway,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("actor_token", own["access_token"].as_str().unwrap()),
                ("actor_token_type", ACCESS_TOKEN),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        let act = &jwt_claims(delegated["access_token"].as_str().unwrap())["act"];
        assert_eq!(act["sub"], gateway.id.as_str(), "{delegated}");
        let half = exchange(
            app,
            &gateway,
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &subject),
                ("subject_token_type", ACCESS_TOKEN),
                ("actor_token", own["access_token"].as_str().unwrap()),
            ],
        )
        .await;
        assert_eq!(oauth_error(half).await, bad_request("invalid_request"));
        // Revoking the original revokes what was exchanged for it.
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .basic_auth(&gateway.id, gateway.secret.as_deref())
            .form(&[("token", subject.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        assert_eq!(
            app.get_with_key("/v1/users/me", &narrowed).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let after = narrow("read:users", subject.clone()).await;
        assert_eq!(oauth_error(after).await, bad_request("invalid_request"));
        // A key holder cannot exchange an access token without being its client.
        let anonymous = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(oauth_error(anonymous).await.0, StatusCode::UNAUTHORIZED);
    }
);

both_backends!(exchanges_are_audited_per_minute, |app| async move {
    app.login_admin().await;
    let (key_id, key) = app
        .create_key(json!({"name": "audited", "scopes": ["read:users"]}))
        .await;
    for _ in 0..3 {
        exchanged(app, &key, &[]).await;
    }
    gatehouse::grants::audit::flush_issuances(&app.state, true)
        .await
        .unwrap();
    let events: Value = app
        .get("/v1/audit-events?action=oauth.token.exchanged")
        .await
        .json()
        .await
        .unwrap();
    let event = &events["data"][0];
    assert_eq!(event["details"]["key_id"], key_id.as_str(), "{events}");
    assert_eq!(event["details"]["count"], 3);
});

both_backends!(
    a_token_granted_for_another_resource_is_exchanged_for_that_resource_only,
    settings = |s: &mut gatehouse::config::Settings| {
        s.resources = vec!["https://orders.example.com".into()];
    },
    |app| async move {
        app.login_admin().await;
        let orders = "https://orders.example.com";
        let client = client_with_grants_for(
            app,
            &["authorization_code", "refresh_token", EXCHANGE],
            vec![orders.into()],
        )
        .await;
        let url = crate::oauth::authorize_url(
            &client,
            "read:users",
            None,
            "&resource=https%3A%2F%2Forders.example.com",
        );
        let code = crate::oauth::authorize(app, &url, "approve").await["code"].clone();
        let tokens: Value = exchange(
            app,
            &client,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", crate::oauth::REDIRECT),
                ("resource", orders),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
        let subject = tokens["access_token"].as_str().unwrap().to_owned();
        assert_eq!(jwt_claims(&subject)["aud"], orders);
        let form = |target: Option<&'static str>| {
            let mut form = vec![
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
                ("subject_token_type", ACCESS_TOKEN),
            ];
            if let Some(t) = target {
                form.push(("resource", t));
            }
            form
        };
        // Without a target it stays for the orders service, never Gatehouse's own API.
        let same: Value = exchange(app, &client, &form(None))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            jwt_claims(same["access_token"].as_str().unwrap())["aud"],
            orders,
            "{same}"
        );
        let escape = exchange(app, &client, &form(Some("http://127.0.0.1"))).await;
        assert_eq!(oauth_error(escape).await, bad_request("invalid_target"));
    }
);

both_backends!(
    tokens_exchanged_for_a_workspace_key_end_with_the_workspace,
    |app| async move {
        app.login_admin().await;
        let created: Value = app
            .client
            .post(app.url("/v1/workspaces"))
            .json(&json!({"name": "Acme"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let workspace = created["data"]["id"].as_str().unwrap().to_owned();
        let (_, key) = app
            .create_key(
                json!({"name": "acme", "scopes": ["read:users"], "workspace_id": workspace}),
            )
            .await;
        let token = token_for(app, &key).await;
        assert_eq!(jwt_claims(&token)["workspace"]["id"], workspace.as_str());
        assert_eq!(
            app.get_with_key("/v1/users/me", &token).await.status(),
            StatusCode::OK
        );
        let deleted = app
            .client
            .delete(app.url(&format!("/v1/workspaces/{workspace}")))
            .send()
            .await
            .unwrap();
        assert!(deleted.status().is_success(), "{}", deleted.status());
        // The workspace's keys ended with it, and so did what was exchanged for them.
        assert_eq!(
            app.get_with_key("/v1/users/me", &token).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
);

both_backends!(
    a_rolled_keys_tokens_end_with_its_grace_and_an_apps_with_the_app,
    |app| async move {
        app.login_admin().await;
        // A key rolled with five minutes of grace: its exchanged token (minted for the key's
        // old, longer life) works through the grace period and not a second longer.
        let (old_id, key) = app
            .create_key(json!({"name": "rolled", "scopes": ["read:users"]}))
            .await;
        let token = token_for(app, &key).await;
        roll_with_grace(app, &old_id, "5m").await;
        let me = |credential: String| async move {
            app.get_with_key("/v1/users/me", &credential).await.status()
        };
        assert_eq!(me(token.clone()).await, StatusCode::OK, "within the grace");
        app.clock.advance(chrono::Duration::seconds(299));
        assert_eq!(me(token.clone()).await, StatusCode::OK, "still within it");
        app.clock.advance(chrono::Duration::seconds(2));
        assert_eq!(
            me(key.clone()).await,
            StatusCode::UNAUTHORIZED,
            "the key ended"
        );
        assert_eq!(
            me(token.clone()).await,
            StatusCode::UNAUTHORIZED,
            "and its exchanged token with it"
        );
        // Rolled, then revoked during its grace: its exchanged token ends at once.
        let (second_id, second) = app
            .create_key(json!({"name": "rolled then revoked", "scopes": ["read:users"]}))
            .await;
        let second_token = token_for(app, &second).await;
        roll_with_grace(app, &second_id, "5m").await;
        let revoked = app
            .client
            .delete(app.url(&format!("/v1/api-keys/{second_id}")))
            .send()
            .await
            .unwrap();
        assert!(revoked.status().is_success(), "{}", revoked.status());
        assert_eq!(me(second_token).await, StatusCode::UNAUTHORIZED);
        // A token an app exchanged for a key ends when the app is disabled; the key and the
        // holder's own exchanges do not.
        let (_, key) = app
            .create_key(json!({"name": "for the gateway", "scopes": ["read:users"]}))
            .await;
        let gateway = client_with_grants(app, &["client_credentials", EXCHANGE]).await;
        let form = [
            ("grant_type", EXCHANGE),
            ("subject_token", key.as_str()),
            ("subject_token_type", API_KEY),
            ("scope", "read:users"),
        ];
        let answer: Value = exchange(app, &gateway, &form).await.json().await.unwrap();
        let via_app = answer["access_token"].as_str().unwrap().to_owned();
        let own = token_for(app, &key).await;
        assert_eq!(me(via_app.clone()).await, StatusCode::OK);
        let disabled = app
            .client
            .patch(app.url(&format!("/v1/clients/{}", gateway.id)))
            .json(&json!({ "disabled": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(disabled.status(), StatusCode::OK);
        assert_eq!(
            me(via_app).await,
            StatusCode::UNAUTHORIZED,
            "the app's token"
        );
        assert_eq!(me(own).await, StatusCode::OK, "the holder's own token");
        assert_eq!(me(key).await, StatusCode::OK, "the key");
    }
);
