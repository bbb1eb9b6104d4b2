//! Client ID Metadata Documents served by a test web server: an app described by one signs in
//! without registering; bad documents get a clear error page and no fetch loop; private
//! addresses and unlisted hosts are never fetched; the operator decides which hosts describe
//! apps, and a host no longer allowed gets no tokens.

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::oauth::{REDIRECT, pkce, urlencode};

use super::{authorize_url, document_server, documents_on, sign_in};

both_backends!(
    an_app_described_by_a_metadata_document_signs_in_without_registration,
    settings = documents_on,
    |app| async move {
        let docs = document_server().await;
        let client_id = docs.url("/client.json");
        let server: Value = app
            .get("/.well-known/oauth-authorization-server")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(server["client_id_metadata_document_supported"], true);
        app.login_admin().await;
        let (_, challenge) = pkce();
        let issuer = app.state.settings.issuer.clone();
        let page = app
            .get(&authorize_url(&client_id, &challenge, &issuer))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        // The host first; the name only as the host's claim.
        assert!(
            page.contains("id=\"consent-host\"><strong>127.0.0.1</strong>"),
            "{page}"
        );
        assert!(
            page.contains("“Research Agent” — a name claimed by 127.0.0.1"),
            "{page}"
        );
        assert!(!page.contains("id=\"consent-localhost\""));
        // It returns to app.example.com, not to the host that describes it: the page says so.
        assert!(page.contains("id=\"consent-elsewhere\""), "{page}");
        assert!(
            page.contains("you go back to <strong>app.example.com</strong>"),
            "{page}"
        );
        let tokens = sign_in(app, &client_id).await;
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
        // The warm cache: one fetch for all of that.
        assert_eq!(docs.hits("/client.json"), 1);
        // After its cache lifetime (max-age=3600) it is fetched again.
        app.clock.advance(Duration::minutes(61));
        sign_in(app, &client_id).await;
        assert_eq!(docs.hits("/client.json"), 2);

        // Only loopback redirect URIs: the page warns.
        let local = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(&docs.url("/local.json")),
            urlencode("http://127.0.0.1:40001/callback")
        );
        let page = app.get(&local).await.text().await.unwrap();
        assert!(page.contains("id=\"consent-localhost\""), "{page}");
        docs.stop().await;
    }
);

both_backends!(
    bad_metadata_documents_get_a_clear_error_page_and_no_fetch_loop,
    settings = documents_on,
    |app| async move {
        let docs = document_server().await;
        let (_, challenge) = pkce();
        let issuer = app.state.settings.issuer.clone();
        // Nobody signed in: the sign-in page first, nothing fetched.
        let anonymous = crate::helpers::new_client()
            .get(app.url(&authorize_url(
                &docs.url("/client.json"),
                &challenge,
                &issuer,
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
        assert!(
            anonymous.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );
        assert_eq!(docs.hits("/client.json"), 0);
        app.login_admin().await;
        for (path, says) in [
            ("/redirect.json", "redirects are not followed"),
            ("/missing.json", "answered 404"),
            ("/big.json", "larger than 5 KB"),
            ("/slow.json", "within 3 seconds"),
            ("/wrong-id.json", "not exactly the URL"),
        ] {
            let url = authorize_url(&docs.url(path), &challenge, &issuer);
            let page = app.get(&url).await;
            assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{path}");
            assert!(page.headers().get("location").is_none(), "never redirected");
            let text = page.text().await.unwrap();
            assert!(text.contains(says), "{path}: {text}");
            // Asked again at once: answered from memory, not fetched again.
            let again = app.get(&url).await;
            assert_eq!(again.status(), StatusCode::BAD_REQUEST);
            assert_eq!(docs.hits(path), 1, "{path} fetched once");
        }
        // Five failures on one host in a minute: its other documents (another path, another
        // query) are not fetched either until the minute has passed.
        let page = app
            .get(&authorize_url(
                &docs.url("/secret.json"),
                &challenge,
                &issuer,
            ))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("failed too often lately")
        );
        assert_eq!(docs.hits("/secret.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    documents_on_private_addresses_or_unlisted_hosts_are_never_fetched,
    settings = |s: &mut gatehouse::config::Settings| {
        crate::oidc::own_issuer(s);
        s.cimd = gatehouse::config::CimdPolicy::All;
    },
    |app| async move {
        let docs = document_server().await;
        app.login_admin().await;
        let (_, challenge) = pkce();
        let port = docs.base.rsplit(':').next().unwrap().to_owned();
        for (client_id, says) in [
            // Without the test switch, plain http is refused…
            (docs.url("/client.json"), "must use https"),
            // …and an https name for a loopback or private address is never fetched.
            (
                "https://localhost/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://10.0.0.1/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://169.254.169.254/latest/meta-data.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://[::1]/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://[::ffff:a00:1]/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            (
                "https://no-such-host.invalid/client.json".to_owned(),
                "does not resolve to a public address",
            ),
            // Only the default https port: no other service of a public address is reached.
            (
                format!("https://localhost:{port}/client.json"),
                "default https port",
            ),
        ] {
            let page = app.get(&authorize_url(&client_id, &challenge, "")).await;
            assert_eq!(page.status(), StatusCode::BAD_REQUEST, "{client_id}");
            let text = page.text().await.unwrap();
            assert!(text.contains(says), "{client_id}: {text}");
        }
        assert_eq!(docs.hits("/client.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    the_operator_decides_which_hosts_describe_apps,
    settings = |s: &mut gatehouse::config::Settings| {
        documents_on(s);
        s.cimd = gatehouse::config::CimdPolicy::parse("*.example.org, tools.example.com").unwrap();
    },
    |app| async move {
        let docs = document_server().await;
        app.login_admin().await;
        let (_, challenge) = pkce();
        let page = app
            .get(&authorize_url(&docs.url("/client.json"), &challenge, ""))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("does not accept applications described by a metadata document")
        );
        assert_eq!(docs.hits("/client.json"), 0);
        docs.stop().await;
    }
);

both_backends!(
    a_document_app_whose_host_is_no_longer_allowed_gets_no_tokens,
    settings = |s: &mut gatehouse::config::Settings| {
        s.cimd = gatehouse::config::CimdPolicy::parse("allowed.example.com").unwrap();
    },
    |app| async move {
        // Two document apps as an earlier policy left them (fresh rows, so no fetch).
        for id in [
            "https://allowed.example.com/c.json",
            "https://dropped.example.net/c.json",
        ] {
            let id = id.to_owned();
            let until = app.state.now() + Duration::hours(1);
            app.state
                .db(move |c| {
                    use diesel::prelude::*;
                    use gatehouse::db::schema::clients;
                    diesel::insert_into(clients::table)
                        .values((
                            clients::id.eq(&id),
                            clients::name.eq("Agent"),
                            clients::client_type.eq("public"),
                            clients::redirect_uris.eq(REDIRECT),
                            clients::allowed_scopes.eq("read:users"),
                            clients::grant_types.eq("authorization_code refresh_token"),
                            clients::first_party.eq(false),
                            clients::resources.eq(""),
                            clients::post_logout_redirect_uris.eq(""),
                            clients::backchannel_logout_session_required.eq(false),
                            clients::origin.eq("cimd"),
                            clients::metadata_expires_at.eq(until),
                            clients::created_at.eq(until),
                            clients::updated_at.eq(until),
                        ))
                        .execute(c)?;
                    Ok(())
                })
                .await
                .unwrap();
        }
        let refresh = |id: &'static str| async move {
            reqwest::Client::new()
                .post(app.url("/oauth/token"))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", "rtk_nothing"),
                    ("client_id", id),
                ])
                .send()
                .await
                .unwrap()
                .status()
        };
        assert_eq!(
            refresh("https://allowed.example.com/c.json").await,
            StatusCode::BAD_REQUEST,
            "a bad grant, from a known app"
        );
        assert_eq!(
            refresh("https://dropped.example.net/c.json").await,
            StatusCode::UNAUTHORIZED,
            "the app itself is refused"
        );
    }
);
