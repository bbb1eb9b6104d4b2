//! What the user approves and sees: public clients are asked every time unless first party,
//! first-party grants are listed and can be disconnected, the consent form is bound to its
//! request and ten minutes, a disabled client gets an error page, and `prompt=login` and
//! `prompt=consent` ask again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, hidden_field, new_client};
use crate::oauth::{
    REDIRECT, authorize, authorize_url, oauth_error, obtain_tokens, pkce, query_of, register,
};

use super::{api, field, invalid_grant, me_status, redeem, refresh};

both_backends!(
    public_clients_are_asked_every_time_unless_first_party,
    |app| async move {
        app.login_admin().await;
        let native = register(app, true, false).await;
        let (_, challenge) = pkce();
        let url = authorize_url(&native, "read:users", Some(&challenge), "");
        authorize(app, &url, "approve").await;
        // RFC 8252 §8.6: any local process could start this flow to a loopback port.
        let again = app.get(&url).await;
        assert_eq!(again.status(), StatusCode::OK, "asked again");
        let page = again.text().await.unwrap();
        assert!(page.contains("id=\"consent-title\""));
        assert!(page.contains("id=\"consent-each-time\""));
        let silent = app.get(&format!("{url}&prompt=none")).await;
        assert_eq!(silent.status(), StatusCode::SEE_OTHER);
        let q = query_of(silent.headers()["location"].to_str().unwrap());
        assert_eq!(q.get("error").map(String::as_str), Some("consent_required"));
        assert!(!q.contains_key("code"));

        let first_party = register(app, true, true).await;
        let url = authorize_url(&first_party, "read:users", Some(&challenge), "");
        let trusted = app.get(&url).await;
        assert_eq!(trusted.status(), StatusCode::SEE_OTHER);
        assert!(query_of(trusted.headers()["location"].to_str().unwrap()).contains_key("code"));
    }
);

both_backends!(
    first_party_grants_are_listed_and_can_be_disconnected,
    |app| async move {
        app.login_admin().await;
        let trusted = register(app, false, true).await;
        let tokens = obtain_tokens(app, &trusted).await;
        let (_, listed) = api(app, Method::GET, "/v1/consents", None).await;
        let entry = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["client_id"] == trusted.id.as_str())
            .cloned()
            .expect("the first-party grant is listed");
        assert_eq!(entry["scopes"], json!(["read:users"]));
        assert_eq!(entry["first_party"], true, "marked as first-party");
        let page = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains("Orders app"), "shown on Connected apps");

        let id = entry["id"].as_str().unwrap();
        let (status, _) = api(app, Method::DELETE, &format!("/v1/consents/{id}"), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            oauth_error(refresh(app, &trusted, &field(&tokens, "refresh_token")).await).await,
            invalid_grant()
        );
        assert_eq!(
            me_status(app, &field(&tokens, "access_token")).await,
            StatusCode::UNAUTHORIZED
        );

        // Approved without asking again, and recorded again.
        obtain_tokens(app, &trusted).await;
        let (_, listed) = api(app, Method::GET, "/v1/consents", None).await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        // What the app got as first-party is not the user's approval: demoted, it asks.
        let (status, _) = api(
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", trusted.id),
            Some(json!({ "first_party": false })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let asked = app
            .get(&authorize_url(&trusted, "read:users", None, ""))
            .await;
        assert_eq!(asked.status(), StatusCode::OK, "the consent page");
    }
);

/// The consent form's fields, as the page's form would post them.
fn consent_fields(page: &str) -> Vec<(String, String)> {
    let form = &page[page.find("id=\"consent-form\"").expect("a consent form")..];
    [
        "csrf_token",
        "client_id",
        "redirect_uri",
        "response_type",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
    ]
    .iter()
    .map(|f| (f.to_string(), hidden_field(form, f).unwrap_or_default()))
    .chain([("decision".to_string(), "approve".to_string())])
    .collect()
}

fn with(fields: &[(String, String)], name: &str, value: &str) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(k, v)| {
            let v = if k == name {
                value.to_owned()
            } else {
                v.clone()
            };
            (k.clone(), v)
        })
        .collect()
}

async fn post_consent(app: &TestApp, fields: &[(String, String)]) -> reqwest::Response {
    app.client
        .post(app.url("/oauth/authorize"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

async fn consent_form_binding(backend: crate::helpers::Backend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |s| {
        s.resources = vec!["https://orders.example.com".into()];
    })
    .await
    else {
        return;
    };
    let app = &app;
    app.login_admin().await;
    let client = register(app, false, false).await;
    // Bound, so that the CSRF token (not the binding) is what refuses a switched resource.
    crate::integrity::bind_resources(app, &client.id, &["https://orders.example.com"]).await;
    let other = register(app, false, false).await;
    let url = authorize_url(&client, "read:users", None, "");
    let page = app.get(&url).await.text().await.unwrap();
    let fields = consent_fields(&page);
    for (name, value, what) in [
        ("scope", "read:users write:orders", "a wider scope"),
        ("client_id", other.id.as_str(), "another client"),
        (
            "redirect_uri",
            "http://127.0.0.1/cb",
            "another registered redirect URI",
        ),
        ("resource", "https://orders.example.com", "a resource"),
    ] {
        let response = post_consent(app, &with(&fields, name, value)).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(response.headers().get("location").is_none(), "{what}");
    }
    app.clock.advance(chrono::Duration::seconds(601));
    let late = post_consent(app, &fields).await;
    assert_eq!(late.status(), StatusCode::FORBIDDEN, "ten minutes are over");
    let page = app.get(&url).await.text().await.unwrap();
    let fresh = post_consent(app, &consent_fields(&page)).await;
    assert_eq!(fresh.status(), StatusCode::SEE_OTHER, "a fresh form works");
    assert!(query_of(fresh.headers()["location"].to_str().unwrap()).contains_key("code"));
    app.stop().await;
}

#[actix_web::test]
async fn the_consent_form_is_bound_to_its_request_and_ten_minutes_sqlite() {
    consent_form_binding(crate::helpers::Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_consent_form_is_bound_to_its_request_and_ten_minutes_postgres() {
    consent_form_binding(crate::helpers::Backend::Postgres).await;
}

both_backends!(
    a_disabled_client_gets_an_error_page_not_a_redirect,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        let (status, _) = api(
            app,
            Method::PATCH,
            &format!("/v1/clients/{}", client.id),
            Some(json!({ "disabled": true })),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let stranger = new_client();
        for url in [url.clone(), format!("{url}&prompt=none")] {
            for browser in [&app.client, &stranger] {
                let response = browser.get(app.url(&url)).send().await.unwrap();
                assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
                assert!(response.headers().get("location").is_none(), "{url}");
            }
        }
    }
);

both_backends!(
    prompt_login_asks_for_a_fresh_sign_in_despite_a_live_session,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        app.clock.advance(chrono::Duration::minutes(5));
        let plain = app.get(&url).await;
        assert_eq!(plain.status(), StatusCode::SEE_OTHER);
        assert!(
            plain.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with(REDIRECT),
            "the session is live and the consent remembered"
        );
        let forced = app.get(&format!("{url}&prompt=login")).await;
        assert_eq!(forced.status(), StatusCode::SEE_OTHER);
        let location = forced.headers()["location"].to_str().unwrap().to_owned();
        let next = location
            .strip_prefix("/login?next=")
            .map(|n| {
                url::form_urlencoded::parse(format!("n={n}").as_bytes())
                    .next()
                    .unwrap()
                    .1
                    .into_owned()
            })
            .unwrap_or_else(|| panic!("to the sign-in page: {location}"));
        assert!(!next.contains("prompt"), "not asked again after: {next}");
        let csrf = app.login_csrf().await;
        let signed_in = app
            .post_form(
                "/login",
                &[
                    ("csrf_token", &csrf),
                    ("email", ADMIN_EMAIL),
                    ("password", ADMIN_PASSWORD),
                    ("next", &next),
                ],
            )
            .await;
        assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
        assert_eq!(signed_in.headers()["location"].to_str().unwrap(), next);
        let back = app.get(&next).await;
        let code = query_of(back.headers()["location"].to_str().unwrap())["code"].clone();
        let tokens: Value = redeem(app, &client, &code, None)
            .await
            .json()
            .await
            .unwrap();
        let claims = crate::helpers::jwt_claims(&field(&tokens, "access_token"));
        assert_eq!(
            claims["auth_time"].as_i64(),
            Some(app.state.now().and_utc().timestamp()),
            "auth_time is the new sign-in"
        );
    }
);

both_backends!(
    prompt_consent_shows_the_page_even_when_remembered,
    |app| async move {
        app.login_admin().await;
        let client = register(app, false, false).await;
        let url = authorize_url(&client, "read:users", None, "");
        authorize(app, &url, "approve").await;
        assert_eq!(app.get(&url).await.status(), StatusCode::SEE_OTHER);
        let asked = app.get(&format!("{url}&prompt=consent")).await;
        assert_eq!(asked.status(), StatusCode::OK);
        assert!(asked.text().await.unwrap().contains("id=\"consent-title\""));
        let trusted = register(app, false, true).await;
        let asked = app
            .get(&authorize_url(
                &trusted,
                "read:users",
                None,
                "&prompt=consent",
            ))
            .await;
        assert_eq!(
            asked.status(),
            StatusCode::OK,
            "first-party apps too, when they ask"
        );
    }
);
