//! Keys at the boundary: a key issued in a shared workspace reaches nothing of the member's own,
//! an install administrator's credential without `admin:users` issues no key to an owner, a
//! private app exchanges only its workspace's keys, a key's changed limits end the tokens
//! exchanged under the old ones, and a roll is an issuance.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::TestApp;
use crate::workspaces::{call, expect, join};

use super::{
    API_KEY, EXCHANGE, app_of, app_row, own_exchange, secret_still_works, token_of, try_takeover,
    user, workspace,
};

both_backends!(
    a_key_issued_in_a_shared_workspace_reaches_nothing_of_the_members_own,
    |app| async move {
        app.login_admin().await;
        let (wanda, _) = user(app, "wanda@example.com", false).await;
        let (max, max_id) = user(app, "max@example.com", false).await;
        let acme = workspace(app, &wanda, "Acme").await;
        join(app, &wanda, &max, &acme, "max@example.com", "member").await;
        // Max's own app, registered from his browser: his personal workspace controls it.
        let (personal_app, secret) = app_of(
            app,
            &max,
            None,
            json!({ "grant_types": ["authorization_code", "client_credentials"] }),
        )
        .await;
        // Wanda issues Max a key in Acme: she saw it; she uses it outside Acme.
        let issued = expect(
            &wanda,
            app,
            (
                "POST",
                &format!("/v1/workspaces/{acme}/members/{max_id}/api-keys"),
            ),
            None,
            Some(json!({ "name": "acme deploys" })),
            StatusCode::CREATED,
        )
        .await;
        let key = issued["key"].as_str().unwrap().to_owned();
        let anon = reqwest::Client::new();
        // His apps do not exist for it: not listed, not readable, not changed.
        let listed = expect(
            &anon,
            app,
            ("GET", "/v1/clients"),
            Some(&key),
            None,
            StatusCode::OK,
        )
        .await;
        assert!(
            !listed.to_string().contains(&personal_app),
            "the personal app is not listed: {listed}"
        );
        try_takeover(app, &anon, Some(&key), &personal_app, StatusCode::NOT_FOUND).await;
        let row = app_row(app, &max, &personal_app).await;
        assert_eq!(
            row["redirect_uris"],
            json!(["https://app.example.com/cb"]),
            "unchanged: {row}"
        );
        assert_eq!(row["disabled"], false);
        assert_eq!(
            secret_still_works(app, &personal_app, &secret).await,
            StatusCode::OK,
            "the secret was not rotated"
        );
        // Nor his profile.
        let before = expect(
            &max,
            app,
            ("GET", "/v1/users/me"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        let patched = call(
            &anon,
            app,
            "PATCH",
            "/v1/users/me",
            Some(&key),
            Some(json!({ "display_name": "Owned by Wanda" })),
        )
        .await;
        assert_eq!(refusal(patched).await.0, StatusCode::FORBIDDEN);
        let after = expect(
            &max,
            app,
            ("GET", "/v1/users/me"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(before["display_name"], after["display_name"]);
        // A key of his personal workspace speaks for him (the rule is the workspace, not keys).
        let own = expect(
            &max,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "mine" })),
            StatusCode::CREATED,
        )
        .await;
        let own = own["key"].as_str().unwrap();
        expect(
            &anon,
            app,
            ("GET", &format!("/v1/clients/{personal_app}")),
            Some(own),
            None,
            StatusCode::OK,
        )
        .await;
        expect(
            &anon,
            app,
            ("PATCH", "/v1/users/me"),
            Some(own),
            Some(json!({ "display_name": "Max" })),
            StatusCode::OK,
        )
        .await;
    }
);

both_backends!(
    an_install_admins_credential_without_admin_users_issues_no_key_to_an_owner,
    |app| async move {
        app.login_admin().await;
        let (olga, olga_id) = user(app, "olga@example.com", false).await;
        let (ian, _) = user(app, "ian@example.com", true).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &ian, &acme, "ian@example.com", "admin").await;
        // Ian administers the install, but this key of his holds no admin:users.
        let narrow = expect(
            &ian,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({
                "name": "narrow",
                "scopes": ["read:api_keys", "write:api_keys", "read:workspaces", "write:workspaces"],
                "workspace_id": acme,
            })),
            StatusCode::CREATED,
        )
        .await;
        let narrow = narrow["key"].as_str().unwrap();
        let issue = format!("/v1/workspaces/{acme}/members/{olga_id}/api-keys");
        let refused = call(
            &reqwest::Client::new(),
            app,
            "POST",
            &issue,
            Some(narrow),
            Some(json!({ "name": "olga's, seen by ian", "scopes": ["read:workspaces"] })),
        )
        .await;
        // Refused for the rank (AUTH_004), not for breadth: the key asked is within his.
        assert_eq!(
            refusal(refused).await,
            (StatusCode::FORBIDDEN, "AUTH_004".into())
        );
        // Nothing was issued to Olga.
        let keys = expect(
            &olga,
            app,
            ("GET", "/v1/api-keys"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(keys.as_array().map(Vec::len), Some(0), "{keys}");
        // His session holds admin:users: the install's oversight may.
        expect(
            &ian,
            app,
            ("POST", &issue),
            None,
            Some(json!({ "name": "issued by the install's admin" })),
            StatusCode::CREATED,
        )
        .await;
    }
);

/// A key holder's key, exchanged by `client` (client_secret_basic).
async fn exchange_by(app: &TestApp, (id, secret): (&str, &str), key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", key),
            ("subject_token_type", API_KEY),
        ])
        .send()
        .await
        .unwrap()
}

both_backends!(
    a_private_app_exchanges_only_its_workspaces_keys,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (ursula, _) = user(app, "ursula@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        let (private, secret) = app_of(
            app,
            &olga,
            None,
            json!({ "workspace_id": acme, "grant_types": [EXCHANGE] }),
        )
        .await;
        let outsider = expect(
            &ursula,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "ursula's", "scopes": ["read:users"] })),
            StatusCode::CREATED,
        )
        .await;
        let refused =
            exchange_by(app, (&private, &secret), outsider["key"].as_str().unwrap()).await;
        assert_eq!(
            crate::oauth::oauth_error(refused).await,
            (StatusCode::BAD_REQUEST, "invalid_grant".into())
        );
        // Olga's own key in her personal workspace is not Acme's either; her Acme key is.
        let personal = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "personal", "scopes": ["read:users"] })),
            StatusCode::CREATED,
        )
        .await;
        let refused =
            exchange_by(app, (&private, &secret), personal["key"].as_str().unwrap()).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let in_acme = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "acme", "scopes": ["read:users"], "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        let ok = exchange_by(app, (&private, &secret), in_acme["key"].as_str().unwrap()).await;
        assert_eq!(ok.status(), StatusCode::OK, "{}", ok.text().await.unwrap());
    }
);

both_backends!(
    changing_a_keys_limits_ends_the_tokens_exchanged_under_the_old_ones,
    |app| async move {
        app.login_admin().await;
        let (key_id, key) = app
            .create_key(json!({ "name": "exchanged", "scopes": ["read:users"] }))
            .await;
        let token = token_of(own_exchange(app, &key).await).await;
        let me = |credential: String| async move {
            app.get_with_key("/v1/users/me", &credential).await.status()
        };
        assert_eq!(me(token.clone()).await, StatusCode::OK);
        // Narrowed to another network: the token exchanged from here ends at once.
        let patch = |ips: Value| {
            app.client
                .patch(app.url(&format!("/v1/api-keys/{key_id}")))
                .json(&json!({ "allowed_ips": ips }))
                .send()
        };
        assert_eq!(
            patch(json!(["10.0.0.0/8"])).await.unwrap().status(),
            StatusCode::OK
        );
        assert_eq!(
            me(token.clone()).await,
            StatusCode::UNAUTHORIZED,
            "the old token ended"
        );
        assert_eq!(
            own_exchange(app, &key).await.status(),
            StatusCode::BAD_REQUEST,
            "no new one from outside the allowlist"
        );
        // Allowed here again: a new token works, carrying the new allowlist; the old stays dead.
        assert_eq!(
            patch(json!(["127.0.0.1/32", "::1/128"]))
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let fresh = token_of(own_exchange(app, &key).await).await;
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        assert_eq!(me(token.clone()).await, StatusCode::UNAUTHORIZED);
        // A rename is no change of limits: the fresh token lives on.
        let renamed = app
            .client
            .patch(app.url(&format!("/v1/api-keys/{key_id}")))
            .json(&json!({ "name": "renamed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(renamed.status(), StatusCode::OK);
        assert_eq!(me(fresh.clone()).await, StatusCode::OK);
        // Back to no allowlist at all, the limits of the first token: that old token stays
        // dead, the one of the allowlist ends, and what is exchanged now works.
        assert_eq!(patch(Value::Null).await.unwrap().status(), StatusCode::OK);
        assert_eq!(me(fresh).await, StatusCode::UNAUTHORIZED);
        assert_eq!(me(token.clone()).await, StatusCode::UNAUTHORIZED);
        let again = token_of(own_exchange(app, &key).await).await;
        assert_eq!(me(again).await, StatusCode::OK);
    }
);

both_backends!(
    a_member_does_not_roll_a_key_where_only_admins_issue_them,
    |app| async move {
        app.login_admin().await;
        let (olga, _) = user(app, "olga@example.com", false).await;
        let (max, max_id) = user(app, "max@example.com", false).await;
        let acme = workspace(app, &olga, "Acme").await;
        join(app, &olga, &max, &acme, "max@example.com", "member").await;
        expect(
            &olga,
            app,
            ("PATCH", &format!("/v1/workspaces/{acme}")),
            None,
            Some(json!({ "key_issuance": "admins" })),
            StatusCode::OK,
        )
        .await;
        let issued = expect(
            &olga,
            app,
            (
                "POST",
                &format!("/v1/workspaces/{acme}/members/{max_id}/api-keys"),
            ),
            None,
            Some(json!({ "name": "issued to max" })),
            StatusCode::CREATED,
        )
        .await;
        let key_id = issued["id"].as_str().unwrap();
        // A roll mints a key: Max may not, through the API or with the key itself.
        let rolled = call(
            &max,
            app,
            "POST",
            &format!("/v1/api-keys/{key_id}/roll"),
            None,
            None,
        )
        .await;
        assert_eq!(
            refusal(rolled).await,
            (StatusCode::FORBIDDEN, "AUTH_010".into())
        );
        let keys = expect(
            &max,
            app,
            ("GET", "/v1/api-keys"),
            None,
            None,
            StatusCode::OK,
        )
        .await;
        assert_eq!(
            keys.as_array().map(Vec::len),
            Some(1),
            "nothing minted: {keys}"
        );
        assert!(keys[0]["rolled_to"].is_null(), "{keys}");
        // Olga (an admin there) rolls her own keys as before.
        let hers = expect(
            &olga,
            app,
            ("POST", "/v1/api-keys"),
            None,
            Some(json!({ "name": "olga's", "workspace_id": acme })),
            StatusCode::CREATED,
        )
        .await;
        expect(
            &olga,
            app,
            (
                "POST",
                &format!("/v1/api-keys/{}/roll", hers["id"].as_str().unwrap()),
            ),
            None,
            None,
            StatusCode::CREATED,
        )
        .await;
    }
);
