//! The client_credentials grant, revocation (RFC 7009) and introspection (RFC 7662) of every
//! credential Gatehouse issues: JWT access tokens, refresh tokens and API keys.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::TestApp;
use crate::helpers::jwt_claims;
use crate::oauth::{TestClient, exchange, oauth_error, obtain_tokens, register};

/// A confidential client allowed `scopes` and, when `machine`, the client_credentials grant.
pub(crate) async fn register_confidential(
    app: &TestApp,
    scopes: &str,
    machine: bool,
) -> TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    use gatehouse::clients::{ClientType, NewClient, default_grant_types};
    let me: Value = app.me().await.json().await.unwrap();
    let mut grant_types = default_grant_types();
    if machine {
        grant_types.push("client_credentials".into());
    }
    let new = NewClient {
        name: "Billing worker".into(),
        owner_user_id: Some(me["data"]["id"].as_str().unwrap().to_owned()),
        client_type: ClientType::Confidential,
        redirect_uris: vec![RedirectUri::parse(crate::oauth::REDIRECT).unwrap()],
        scopes: gatehouse::scopes::ScopeSet::parse(scopes).unwrap(),
        first_party: true,
        grant_types,
        resources: Vec::new(),
        ..Default::default()
    };
    crate::oauth::create_client(app, new).await
}

/// POST a form to an OAuth endpoint as `client` (Basic) or with no authentication.
async fn post_as(
    app: &TestApp,
    path: &str,
    client: Option<&TestClient>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(app.url(path));
    if let Some(client) = client {
        request = request.basic_auth(&client.id, client.secret.as_ref());
    }
    request.form(form).send().await.unwrap()
}

async fn introspect(app: &TestApp, client: &TestClient, token: &str) -> Value {
    let response = post_as(app, "/oauth/introspect", Some(client), &[("token", token)]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn introspect_with_key(app: &TestApp, key: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/introspect"))
        .bearer_auth(key)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn revoke_as(app: &TestApp, client: &TestClient, token: &str) -> StatusCode {
    post_as(app, "/oauth/revoke", Some(client), &[("token", token)])
        .await
        .status()
}

both_backends!(
    client_credentials_tokens_and_every_refusal,
    |app| async move {
        app.login_admin().await;
        let machine = register_confidential(app, "read:orders write:orders", true).await;
        let cc = [("grant_type", "client_credentials")];
        let response = exchange(app, &machine, &cc).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        assert_eq!(body["scope"], "read:orders write:orders", "all it may have");
        assert!(body.get("refresh_token").is_none(), "no refresh token");
        let access = body["access_token"].as_str().unwrap();
        let claims = jwt_claims(access);
        assert_eq!(claims["sub"], machine.id.as_str());
        assert_eq!(claims["client_id"], machine.id.as_str());
        assert!(claims.get("auth_time").is_none(), "no user signed in");
        let me = app.get_with_key("/v1/users/me", access).await;
        assert_eq!(me.status(), StatusCode::FORBIDDEN, "no user behind it");

        let narrowed: Value = exchange(app, &machine, &[cc[0], ("scope", "read:orders")])
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(narrowed["scope"], "read:orders");
        assert_eq!(
            oauth_error(exchange(app, &machine, &[cc[0], ("scope", "read:users")]).await).await,
            (StatusCode::BAD_REQUEST, "invalid_scope".into()),
            "a scope the client was not allowed"
        );
        assert_eq!(
            oauth_error(exchange(app, &machine, &[cc[0], ("scope", "no such:scope!")]).await).await,
            (StatusCode::BAD_REQUEST, "invalid_scope".into())
        );
        let wrong_secret = TestClient {
            id: machine.id.clone(),
            secret: Some(
                gatehouse::secrets::PlainSecret::generate("cs_")
                    .expose()
                    .to_owned(),
            ),
        };
        let refused = exchange(app, &wrong_secret, &cc).await;
        assert!(refused.headers().contains_key("www-authenticate"));
        assert_eq!(
            oauth_error(refused).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into())
        );
        let web_app = register_confidential(app, "read:orders", false).await;
        assert_eq!(
            oauth_error(exchange(app, &web_app, &cc).await).await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into()),
            "not registered for the grant"
        );
        let public = register(app, true, false).await;
        assert_eq!(
            oauth_error(exchange(app, &public, &cc).await).await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into()),
            "a public client cannot"
        );
        assert_eq!(
            oauth_error(exchange(app, &machine, &[("grant_type", "password")]).await).await,
            (StatusCode::BAD_REQUEST, "unsupported_grant_type".into())
        );
        let id = machine.id.clone();
        app.state
            .db(move |c| {
                use diesel::prelude::*;
                use gatehouse::db::schema::clients;
                diesel::update(clients::table.find(&id))
                    .set(clients::disabled_at.eq(Some(chrono::Utc::now().naive_utc())))
                    .execute(c)?;
                Ok(())
            })
            .await
            .unwrap();
        app.state.key_cache.invalidate_all();
        assert_eq!(
            oauth_error(exchange(app, &machine, &cc).await).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into()),
            "a disabled client"
        );
    }
);

both_backends!(
    introspection_answers_for_access_tokens_refresh_tokens_and_api_keys,
    |app| async move {
        app.login_admin().await;
        let web_app = register(app, false, true).await;
        crate::integrity::bind_resources(app, &web_app.id, &["https://orders.example.com"]).await;
        let tokens = obtain_tokens(app, &web_app).await;
        let access = tokens["access_token"].as_str().unwrap().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

        // The client that holds the tokens may ask about them.
        let about = introspect(app, &web_app, &access).await;
        assert_eq!(about["active"], true);
        assert_eq!(about["token_type"], "access_token");
        assert_eq!(about["scope"], "read:users");
        assert_eq!(about["client_id"], web_app.id.as_str());
        assert_eq!(about["username"], crate::helpers::ADMIN_EMAIL);
        assert_eq!(about["exp"], jwt_claims(&access)["exp"]);
        let about = introspect(app, &web_app, &refresh).await;
        assert_eq!(about["active"], true);
        assert_eq!(about["token_type"], "refresh_token");
        assert_eq!(about["sub"], jwt_claims(&access)["sub"]);

        // Another client learns nothing about them, nor about API keys.
        let other = register_confidential(app, "read:users", false).await;
        assert_eq!(
            introspect(app, &other, &access).await,
            json!({"active": false})
        );
        assert_eq!(
            introspect(app, &other, &refresh).await,
            json!({"active": false})
        );
        let (key_id, key) = app
            .create_key(json!({"name": "ci", "mode": "test", "expires_in": "1d"}))
            .await;
        assert_eq!(
            introspect(app, &other, &key).await,
            json!({"active": false})
        );

        // A trusted resource server (a client allowed `introspect`) sees every credential.
        let resource_server = register_confidential(app, "introspect", false).await;
        let about = introspect(app, &resource_server, &key).await;
        assert_eq!(about["active"], true);
        assert_eq!(about["token_type"], "api_key");
        assert_eq!(about["key_id"], key_id.as_str());
        assert_eq!(about["livemode"], false);
        assert_eq!(about["username"], crate::helpers::ADMIN_EMAIL);
        assert!(about["exp"].as_i64().unwrap() > about["iat"].as_i64().unwrap());
        assert_eq!(
            introspect(app, &resource_server, &access).await["active"],
            true
        );

        // So does an admin's key restricted to `introspect`.
        let (_, rs_key) = app
            .create_key(json!({"name": "resource server", "scopes": ["introspect"]}))
            .await;
        let about: Value = introspect_with_key(app, &rs_key, &refresh)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(about["active"], true);

        // Inactive: malformed, unknown, a spent refresh token, a revoked key, expiry.
        for junk in ["", "eyJhbGciOi.x.y", "rt_nope", "sk_live_nope", "garbage"] {
            if junk.is_empty() {
                let r = post_as(
                    app,
                    "/oauth/introspect",
                    Some(&resource_server),
                    &[("token", "")],
                )
                .await;
                assert_eq!(r.status(), StatusCode::BAD_REQUEST);
                continue;
            }
            assert_eq!(
                introspect(app, &resource_server, junk).await,
                json!({"active": false}),
                "{junk}"
            );
        }
        let rotated = exchange(
            app,
            &web_app,
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
        assert_eq!(rotated.status(), StatusCode::OK);
        let next: Value = rotated.json().await.unwrap();
        assert_eq!(
            introspect(app, &web_app, &refresh).await["active"],
            false,
            "spent"
        );
        let next = next["refresh_token"].as_str().unwrap();
        assert_eq!(introspect(app, &web_app, next).await["active"], true);

        app.clock.advance(chrono::Duration::days(2));
        app.state.key_cache.invalidate_all();
        assert_eq!(
            introspect(app, &web_app, &access).await,
            json!({"active": false}),
            "an expired JWT"
        );
        assert_eq!(
            introspect(app, &resource_server, &key).await,
            json!({"active": false}),
            "an expired key"
        );
        assert_eq!(introspect(app, &web_app, next).await["active"], true);
        app.clock.advance(chrono::Duration::days(15));
        assert_eq!(
            introspect(app, &web_app, next).await,
            json!({"active": false}),
            "a refresh token past its idle limit"
        );
    }
);

both_backends!(
    introspection_refuses_callers_that_may_not_ask,
    |app| async move {
        app.login_admin().await;
        let web_app = register(app, false, true).await;
        crate::integrity::bind_resources(app, &web_app.id, &["https://orders.example.com"]).await;
        let tokens = obtain_tokens(app, &web_app).await;
        let access = tokens["access_token"].as_str().unwrap();
        let anonymous = post_as(app, "/oauth/introspect", None, &[("token", access)]).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert!(anonymous.headers().contains_key("www-authenticate"));
        let public = register(app, true, false).await;
        let as_public = reqwest::Client::new()
            .post(app.url("/oauth/introspect"))
            .form(&[("token", access), ("client_id", public.id.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(
            oauth_error(as_public).await,
            (StatusCode::UNAUTHORIZED, "invalid_client".into()),
            "public clients cannot introspect"
        );
        // An unrestricted key of a member, and an admin's key without `introspect`.
        app.create_user("member@example.com", "member password 123", false)
            .await;
        let (browser, _) = app
            .login_in_new_browser("member@example.com", "member password 123")
            .await;
        let created: Value = browser
            .post(app.url("/v1/api-keys"))
            .json(&json!({"name": "mine"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let member_key = created["data"]["key"].as_str().unwrap();
        assert_eq!(
            introspect_with_key(app, member_key, access).await.status(),
            StatusCode::FORBIDDEN
        );
        let (_, narrow) = app
            .create_key(json!({"name": "reader", "scopes": ["read:users"]}))
            .await;
        assert_eq!(
            introspect_with_key(app, &narrow, access).await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            introspect_with_key(app, "sk_live_forged", access)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        let restricted_attempt = reqwest::Client::new()
            .post(app.url("/v1/api-keys"))
            .bearer_auth(member_key)
            .json(&json!({"name": "sneaky", "scopes": ["introspect"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            restricted_attempt.status(),
            StatusCode::FORBIDDEN,
            "members cannot give themselves introspect"
        );
        let body: Value = restricted_attempt.json().await.unwrap();
        assert_eq!(body["error"]["code"], "AUTH_004");
    }
);

both_backends!(
    revocation_of_each_kind_is_seen_by_introspection_and_the_api,
    |app| async move {
        app.login_admin().await;
        let web_app = register(app, false, true).await;
        crate::integrity::bind_resources(app, &web_app.id, &["https://orders.example.com"]).await;
        let resource_server = register_confidential(app, "introspect", false).await;

        // A refresh token: its family and the access tokens of the grant end.
        let tokens = obtain_tokens(app, &web_app).await;
        let (access, refresh) = (
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        );
        let other = register_confidential(app, "read:users", false).await;
        assert_eq!(
            oauth_error(post_as(app, "/oauth/revoke", Some(&other), &[("token", refresh)]).await)
                .await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into()),
            "another client's token"
        );
        assert_eq!(
            introspect(app, &resource_server, refresh).await["active"],
            true
        );
        assert_eq!(revoke_as(app, &web_app, refresh).await, StatusCode::OK);
        assert_eq!(
            introspect(app, &resource_server, refresh).await["active"],
            false
        );
        assert_eq!(
            introspect(app, &resource_server, access).await["active"],
            false
        );
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        let refreshed = exchange(
            app,
            &web_app,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_eq!(
            oauth_error(refreshed).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        assert_eq!(
            revoke_as(app, &web_app, refresh).await,
            StatusCode::OK,
            "twice"
        );

        // An access token alone: the refresh token lives on.
        let tokens = obtain_tokens(app, &web_app).await;
        let (access, refresh) = (
            tokens["access_token"].as_str().unwrap(),
            tokens["refresh_token"].as_str().unwrap(),
        );
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::OK
        );
        let hinted = post_as(
            app,
            "/oauth/revoke",
            Some(&web_app),
            &[("token", access), ("token_type_hint", "access_token")],
        )
        .await;
        assert_eq!(hinted.status(), StatusCode::OK);
        assert_eq!(
            app.get_with_key("/v1/users/me", access).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(introspect(app, &web_app, access).await["active"], false);
        assert_eq!(introspect(app, &web_app, refresh).await["active"], true);

        // An API key, by its owner over Bearer credentials.
        let (_, key) = app.create_key(json!({"name": "leaked"})).await;
        assert_eq!(
            app.get_with_key("/v1/users/me", &key).await.status(),
            StatusCode::OK
        );
        let revoked = reqwest::Client::new()
            .post(app.url("/oauth/revoke"))
            .bearer_auth(&key)
            .form(&[("token", key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), StatusCode::OK);
        assert_eq!(
            app.get_with_key("/v1/users/me", &key).await.status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            introspect(app, &resource_server, &key).await["active"],
            false
        );
        // A client without `introspect` may not revoke someone's key.
        let (_, key2) = app.create_key(json!({"name": "kept"})).await;
        assert_eq!(
            oauth_error(post_as(app, "/oauth/revoke", Some(&web_app), &[("token", &key2)]).await)
                .await,
            (StatusCode::BAD_REQUEST, "unauthorized_client".into())
        );
        assert_eq!(
            app.get_with_key("/v1/users/me", &key2).await.status(),
            StatusCode::OK
        );

        // Unknown tokens: 200, as RFC 7009 says. Bad requests: errors.
        assert_eq!(revoke_as(app, &web_app, "rt_unknown").await, StatusCode::OK);
        assert_eq!(revoke_as(app, &web_app, "whatever").await, StatusCode::OK);
        let no_token = post_as(app, "/oauth/revoke", Some(&web_app), &[]).await;
        assert_eq!(
            oauth_error(no_token).await,
            (StatusCode::BAD_REQUEST, "invalid_request".into())
        );
        let bad_hint = post_as(
            app,
            "/oauth/revoke",
            Some(&web_app),
            &[("token", refresh), ("token_type_hint", "id_token")],
        )
        .await;
        assert_eq!(
            oauth_error(bad_hint).await,
            (StatusCode::BAD_REQUEST, "unsupported_token_type".into())
        );
        let anonymous = post_as(app, "/oauth/revoke", None, &[("token", refresh)]).await;
        assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(introspect(app, &web_app, refresh).await["active"], true);
    }
);

// RFC 8707: a token for one named resource server, refused by the others (and by /v1).
#[actix_web::test]
async fn resource_indicators_pick_the_audience_sqlite() {
    resource_indicators(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn resource_indicators_pick_the_audience_postgres() {
    resource_indicators(crate::helpers::Backend::Postgres).await;
}

async fn resource_indicators(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |s| {
        s.resources = vec!["https://orders.example.com".into()];
    })
    .await
    else {
        return;
    };
    let app = &app;
    app.login_admin().await;
    let machine = register_confidential(app, "read:orders introspect", true).await;
    crate::integrity::bind_resources(app, &machine.id, &["https://orders.example.com"]).await;
    let cc = ("grant_type", "client_credentials");
    let response = exchange(
        app,
        &machine,
        &[cc, ("resource", "https://orders.example.com")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(access)["aud"], "https://orders.example.com");
    let about = introspect(app, &machine, access).await;
    assert_eq!(
        (about["active"].as_bool(), about["aud"].as_str()),
        (Some(true), Some("https://orders.example.com"))
    );
    // Without `resource`: the default audience.
    let plain: Value = exchange(app, &machine, &[cc]).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(plain["access_token"].as_str().unwrap())["aud"],
        app.state.settings.issuer.as_str()
    );

    for (resource, why) in [
        (
            "https://billing.example.com",
            "not a resource of this server",
        ),
        ("https://orders.example.com#x", "a fragment"),
        ("orders", "not absolute"),
    ] {
        assert_eq!(
            oauth_error(exchange(app, &machine, &[cc, ("resource", resource)]).await).await,
            (StatusCode::BAD_REQUEST, "invalid_target".into()),
            "{why}"
        );
    }
    let twice = exchange(
        app,
        &machine,
        &[
            cc,
            ("resource", "https://orders.example.com"),
            ("resource", "https://orders.example.com"),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(twice).await,
        (StatusCode::BAD_REQUEST, "invalid_target".into())
    );

    // A user's token for the orders service is not a token for Gatehouse's own API.
    let web_app = register(app, false, true).await;
    crate::integrity::bind_resources(app, &web_app.id, &["https://orders.example.com"]).await;
    let code = {
        let tokens = obtain_tokens(app, &web_app).await;
        tokens["refresh_token"].as_str().unwrap().to_owned()
    };
    let for_orders: Value = exchange(
        app,
        &web_app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &code),
            ("resource", "https://orders.example.com"),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    let access = for_orders["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(access)["aud"], "https://orders.example.com");
    assert_eq!(
        app.get_with_key("/v1/users/me", access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Named at authorization: the code and the grant are bound to it.
    let orders = "https%3A%2F%2Forders.example.com";
    let url =
        crate::oauth::authorize_url(&web_app, "read:users", None, &format!("&resource={orders}"));
    let code = crate::oauth::authorize(app, &url, "approve").await["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", crate::oauth::REDIRECT),
    ];
    let tokens: Value = exchange(app, &web_app, &form).await.json().await.unwrap();
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["aud"],
        "https://orders.example.com",
        "no resource at the token endpoint: the bound one"
    );
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let elsewhere = exchange(
        app,
        &web_app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("resource", app.state.settings.issuer.as_str()),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(elsewhere).await,
        (StatusCode::BAD_REQUEST, "invalid_target".into()),
        "a grant for the orders service cannot mint tokens for another"
    );
    let code = crate::oauth::authorize(app, &url, "approve").await["code"].clone();
    let switched = exchange(
        app,
        &web_app,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", crate::oauth::REDIRECT),
            ("resource", app.state.settings.issuer.as_str()),
        ],
    )
    .await;
    assert_eq!(
        oauth_error(switched).await,
        (StatusCode::BAD_REQUEST, "invalid_target".into())
    );
    // Through the consent page: the form carries the resource, its CSRF token binds it.
    let third_party = register(app, false, false).await;
    crate::integrity::bind_resources(app, &third_party.id, &["https://orders.example.com"]).await;
    let url = crate::oauth::authorize_url(
        &third_party,
        "read:users",
        None,
        &format!("&resource={orders}"),
    );
    let code = crate::oauth::authorize(app, &url, "approve").await["code"].clone();
    let tokens: Value = exchange(
        app,
        &third_party,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", crate::oauth::REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["aud"],
        "https://orders.example.com"
    );
    // An unknown resource at authorization is a bad request: shown, never redirected.
    let unknown = crate::oauth::authorize_url(
        &web_app,
        "read:users",
        None,
        "&resource=https%3A%2F%2Fbilling.example.com",
    );
    let response = app.get(&unknown).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none());
    assert!(response.text().await.unwrap().contains("invalid_target"));
    app.stop().await;
}

both_backends!(oversized_bodies_get_rfc_6749_errors, |app| async move {
    let big = format!(
        "grant_type=client_credentials&pad={}",
        "x".repeat(100 * 1024)
    );
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        let response = reqwest::Client::new()
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{path}: {body}");
    }
});
