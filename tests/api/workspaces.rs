//! Workspaces: invitations, roles, who issues keys, what a workspace admin reaches (their
//! workspace's keys, members and events, nothing of another's), what leaving costs (keys and
//! grants end at once), and the workspace an app's authorization names (consent page choice,
//! the `workspace` claim in tokens and introspection).

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_keys::refusal;
use crate::both_backends;
use crate::helpers::jwt_claims;
use crate::helpers::{TestApp, hidden_field};
use crate::oauth::{REDIRECT, authorize_url, exchange, query_of, register};

/// A signed-in browser of a new member user.
async fn member(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let id = app.create_user(email, "member password 1", false).await;
    let (browser, response) = app.login_in_new_browser(email, "member password 1").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{email} signs in");
    (browser, id)
}

pub(crate) async fn call(
    http: &reqwest::Client,
    app: &TestApp,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = http.request(method.parse().unwrap(), app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `call` expecting `status`; the answer's `data`.
pub(crate) async fn expect(
    http: &reqwest::Client,
    app: &TestApp,
    (method, path): (&str, &str),
    bearer: Option<&str>,
    body: Option<Value>,
    status: StatusCode,
) -> Value {
    let response = call(http, app, method, path, bearer, body).await;
    let got = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(got, status, "{method} {path}: {answer}");
    answer["data"].clone()
}

pub(crate) async fn create_workspace(
    http: &reqwest::Client,
    app: &TestApp,
    body: Value,
) -> (String, String) {
    let ws = expect(
        http,
        app,
        ("POST", "/v1/workspaces"),
        None,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(ws["role"], "owner");
    (
        ws["id"].as_str().unwrap().to_owned(),
        ws["slug"].as_str().unwrap().to_owned(),
    )
}

/// Invite `email` with `role` and accept as `invitee`.
pub(crate) async fn join(
    app: &TestApp,
    inviter: &reqwest::Client,
    invitee: &reqwest::Client,
    workspace: &str,
    email: &str,
    role: &str,
) {
    let invited = expect(
        inviter,
        app,
        ("POST", &format!("/v1/workspaces/{workspace}/invitations")),
        None,
        Some(json!({ "email": email, "role": role })),
        StatusCode::CREATED,
    )
    .await;
    let token = invited["token"].as_str().unwrap();
    let joined = expect(
        invitee,
        app,
        ("POST", "/v1/invitations/accept"),
        None,
        Some(json!({ "token": token })),
        StatusCode::OK,
    )
    .await;
    assert_eq!(joined["role"], role);
}

async fn new_key(
    http: &reqwest::Client,
    app: &TestApp,
    path: &str,
    bearer: Option<&str>,
    body: Value,
) -> (String, String) {
    let created = expect(
        http,
        app,
        ("POST", path),
        bearer,
        Some(body),
        StatusCode::CREATED,
    )
    .await;
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

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

/// Through the consent page, picking `chosen` (a workspace id) if it offers a choice: the
/// redirect's query.
async fn consent_in(
    app: &TestApp,
    url: &str,
    chosen: Option<&str>,
) -> (bool, std::collections::HashMap<String, String>) {
    let response = app.get(url).await;
    if response.status() == StatusCode::SEE_OTHER {
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        return (false, query_of(&location));
    }
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let form = &page[page.find("id=\"consent-form\"").unwrap()..];
    let offered = form.contains("id=\"workspace-choice\"");
    let mut fields: Vec<(String, String)> = [
        "csrf_token",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "nonce",
        "workspace",
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .collect();
    fields.push(("decision".into(), "approve".into()));
    if let Some(chosen) = chosen {
        assert!(
            form.contains(&format!("value=\"{chosen}\"")),
            "{chosen} offered"
        );
        fields.push(("chosen_workspace".into(), chosen.into()));
    }
    let decided = app
        .client
        .post(app.url("/oauth/authorize"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        decided.status(),
        StatusCode::SEE_OTHER,
        "{}",
        decided.text().await.unwrap()
    );
    let location = decided.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT));
    (offered, query_of(&location))
}

async fn token_for_code(app: &TestApp, client: &crate::oauth::TestClient, code: &str) -> Value {
    let tokens: Value = exchange(
        app,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    tokens
}

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
