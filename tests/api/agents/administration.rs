//! The operator's hold on apps that arrived on their own: the agents page shows where each came
//! from and administers it, and self-registered apps keep only the resources the operator opens
//! to them now.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::oauth::{pkce, urlencode};

use super::{
    agent_metadata, authorize_url, document_server, documents_on, open_registration, register,
    registration, sign_in,
};

both_backends!(
    the_agents_page_shows_where_apps_came_from_and_administers_them,
    settings = |s: &mut gatehouse::config::Settings| {
        documents_on(s);
        s.registration.mode = gatehouse::config::RegistrationMode::Open;
    },
    |app| async move {
        let docs = document_server().await;
        let reg: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let dcr_id = reg["client_id"].as_str().unwrap().to_owned();
        app.login_admin().await;
        let tokens = sign_in(app, &dcr_id).await;
        let document_id = docs.url("/client.json");
        sign_in(app, &document_id).await;

        let page = app.get("/admin/agents").await;
        assert_eq!(page.status(), StatusCode::OK);
        let page = page.text().await.unwrap();
        for expected in [
            format!("data-client-id=\"{dcr_id}\""),
            format!("data-client-id=\"{document_id}\""),
            "registered itself".into(),
            "metadata document".into(),
            "Block 127.0.0.1".into(),
            "id=\"registration-policy\">open".into(),
        ] {
            assert!(page.contains(&expected), "{expected}: {page}");
        }
        let row = &page[page.find(&format!("data-client-id=\"{dcr_id}\"")).unwrap()..];
        assert!(row[..row.find("</tr>").unwrap()].contains("<td class=\"users\">1</td>"));
        // Users see where such apps came from.
        let connected = app
            .get("/settings/connected-apps")
            .await
            .text()
            .await
            .unwrap();
        assert!(
            connected.contains("<strong class=\"app-origin\">127.0.0.1</strong>"),
            "{connected}"
        );
        assert!(connected.contains("registered itself"));

        let csrf = app.session_csrf().await;
        // Disable: its tokens stop working at once.
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &dcr_id),
                    ("action", "disable"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let me = app
            .client
            .get(app.url("/v1/users/me"))
            .bearer_auth(tokens["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &dcr_id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let gone = registration(
            app,
            "GET",
            reg["registration_client_uri"].as_str().unwrap(),
            reg["registration_access_token"].as_str(),
            None,
        )
        .await;
        assert_eq!(gone.status(), StatusCode::UNAUTHORIZED);
        // A registered app is not the Agents page's to touch.
        let own = crate::oauth::register(app, false, false).await;
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &own.id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        // Without the session's CSRF token nothing happens.
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", "forged"),
                    ("client_id", &document_id),
                    ("action", "delete"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let still = document_id.clone();
        assert!(
            app.state
                .db(move |c| gatehouse::clients::find(c, &still))
                .await
                .unwrap()
                .is_some()
        );

        // Block the host: its app is disabled, a new document there is never fetched.
        let r = app
            .post_form(
                "/admin/agents/hosts",
                &[("csrf_token", &csrf), ("host", "127.0.0.1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let (_, challenge) = pkce();
        let refused = app.get(&authorize_url(&document_id, &challenge, "")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
        let other = app
            .get(&authorize_url(&docs.url("/local.json"), &challenge, ""))
            .await;
        assert!(other.text().await.unwrap().contains("blocked"));
        assert_eq!(docs.hits("/local.json"), 0);
        let r = app
            .post_form(
                "/admin/agents/hosts/unblock",
                &[("csrf_token", &csrf), ("host", "127.0.0.1")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let local = format!(
            "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope=read%3Ausers&code_challenge={challenge}&code_challenge_method=S256",
            urlencode(&docs.url("/local.json")),
            urlencode("http://127.0.0.1:40001/callback")
        );
        assert_eq!(
            app.get(&local).await.status(),
            StatusCode::OK,
            "fetched again once unblocked"
        );
        // The blocked app stays disabled until enabled.
        let still_off = app.get(&authorize_url(&document_id, &challenge, "")).await;
        assert_eq!(still_off.status(), StatusCode::BAD_REQUEST);
        assert!(still_off.text().await.unwrap().contains("or was disabled"));

        // Registration tokens: minted once on the page, revoked there.
        let minted = app
            .post_form(
                "/admin/agents/tokens",
                &[
                    ("csrf_token", &csrf),
                    ("label", "sales agents"),
                    ("days", "3"),
                    ("uses", "2"),
                ],
            )
            .await;
        assert_eq!(minted.status(), StatusCode::CREATED);
        let minted = minted.text().await.unwrap();
        let start = minted.find("id=\"minted-token\">").unwrap() + "id=\"minted-token\">".len();
        let token = &minted[start..start + minted[start..].find('<').unwrap()];
        assert!(token.starts_with("iat_"), "{token}");
        let listed = app.get("/admin/agents").await.text().await.unwrap();
        assert!(!listed.contains(token), "shown once only");
        let id = listed[listed.find("data-token-id=\"").unwrap() + 15..]
            .split('"')
            .next()
            .unwrap()
            .to_owned();
        let bad = app
            .post_form(
                "/admin/agents/tokens",
                &[("csrf_token", &csrf), ("days", "9999")],
            )
            .await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let r = app
            .post_form(
                &format!("/admin/agents/tokens/{id}/revoke"),
                &[("csrf_token", &csrf)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let tokens = app
            .state
            .db(gatehouse::clients::registration::list_initial_tokens)
            .await
            .unwrap();
        assert!(tokens.iter().all(|t| !t.usable(app.state.now())));
        docs.stop().await;
    }
);

both_backends!(
    self_registered_apps_keep_only_what_the_operator_opens_to_them_now,
    settings = |s: &mut gatehouse::config::Settings| {
        open_registration(s);
        s.resources = vec![
            "https://mcp.example.com/mcp".into(),
            "https://billing.example.com".into(),
        ];
        s.registration.resources = vec!["https://mcp.example.com/mcp".into()];
    },
    |app| async move {
        let reg: Value = register(app, None, agent_metadata())
            .await
            .json()
            .await
            .unwrap();
        let id = reg["client_id"].as_str().unwrap().to_owned();
        app.login_admin().await;
        let (_, challenge) = pkce();
        // The MCP server the operator opened: asked for, consented to.
        let page = app
            .get(&authorize_url(
                &id,
                &challenge,
                "https://mcp.example.com/mcp",
            ))
            .await;
        assert_eq!(page.status(), StatusCode::OK);
        // Another resource server of the install: not for apps that registered themselves,
        // even if an administrator's binding were copied onto the app.
        let set = id.clone();
        app.state
            .db(move |c| {
                use diesel::prelude::*;
                use gatehouse::db::schema::clients;
                diesel::update(clients::table.find(&set))
                    .set(
                        clients::resources
                            .eq("https://mcp.example.com/mcp https://billing.example.com"),
                    )
                    .execute(c)?;
                Ok(())
            })
            .await
            .unwrap();
        app.state.key_cache.invalidate_all();
        let page = app
            .get(&authorize_url(
                &id,
                &challenge,
                "https://billing.example.com",
            ))
            .await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(
            page.text()
                .await
                .unwrap()
                .contains("may not ask for tokens for that resource")
        );

        // Disabled by an administrator: its registration is frozen (it may still delete it).
        let csrf = app.session_csrf().await;
        let r = app
            .post_form(
                "/admin/agents/apps",
                &[
                    ("csrf_token", &csrf),
                    ("client_id", &id),
                    ("action", "disable"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let mut body = agent_metadata();
        body["client_id"] = json!(id);
        let uri = reg["registration_client_uri"].as_str().unwrap();
        let rat = reg["registration_access_token"].as_str();
        assert_eq!(
            registration(app, "PUT", uri, rat, Some(body))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            registration(app, "DELETE", uri, rat, None).await.status(),
            StatusCode::NO_CONTENT
        );
    }
);
