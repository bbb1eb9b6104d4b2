use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;

async fn error_of(response: reqwest::Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.expect("an envelope");
    assert_eq!(body["success"], false);
    assert_eq!(
        body["meta"]["request_id"],
        request_id.as_str(),
        "meta.request_id matches the header"
    );
    assert!(body["meta"]["timestamp"].as_str().unwrap().ends_with('Z'));
    let code = body["error"]["code"].as_str().unwrap().to_owned();
    assert!(
        body["error"]["doc_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/docs/errors#{code}"))
    );
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
    (status, code, body)
}

both_backends!(unknown_v1_route_is_a_404_envelope, |app| async move {
    let (status, code, body) = error_of(app.get("/v1/does-not-exist").await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::NOT_FOUND, "RESOURCE_001")
    );
    assert!(
        body["error"]["doc_url"]
            .as_str()
            .unwrap()
            .starts_with(&app.address),
        "doc_url names the issuer"
    );
});

both_backends!(
    wrong_method_is_a_405_envelope_with_allow,
    |app| async move {
        let response = app
            .client
            .delete(app.url("/v1/users/me"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers().get("allow").unwrap(), "GET, PATCH");
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "METHOD_001")
        );
    }
);

both_backends!(
    wrong_method_outside_v1_is_a_405_with_allow,
    |app| async move {
        // An OAuth endpoint: an OAuth error body, and Allow names what is served.
        let response = app
            .client
            .get(app.url("/oauth/token"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get("allow").unwrap(), "POST");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        let response = app
            .client
            .delete(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers().get("allow").unwrap(), "GET");
        // A page: an HTML page; a path pattern with ids answers the same.
        for (method, path, allow) in [
            (reqwest::Method::PUT, "/login", "GET, POST"),
            (reqwest::Method::GET, "/logout", "POST"),
            (reqwest::Method::DELETE, "/settings/api-keys/key_x", "GET"),
            (reqwest::Method::GET, "/admin/users/usr_x/disable", "POST"),
        ] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            assert_eq!(response.headers().get("allow").unwrap(), allow, "{path}");
            assert!(
                response
                    .text()
                    .await
                    .unwrap()
                    .contains("Method not allowed")
            );
        }
        // Unknown paths stay 404, and the routes still answer their own methods.
        let response = app
            .client
            .get(app.url("/no-such-page"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = app.client.get(app.url("/login")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
);

both_backends!(
    missing_credentials_are_auth_001_with_www_authenticate,
    |app| async move {
        let response = app.me().await;
        assert!(
            response
                .headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "AUTH_001")
        );
    }
);

both_backends!(
    me_returns_the_signed_in_user_and_patch_renames,
    |app| async move {
        app.login_admin().await;
        let body: Value = app.me().await.json().await.unwrap();
        assert_eq!(body["success"], true);
        assert_eq!(body["data"]["email"], crate::helpers::ADMIN_EMAIL);
        assert_eq!(body["data"]["role"], "admin");
        assert_eq!(body["data"]["authentication"]["type"], "session");
        assert!(body["data"].get("password_hash").is_none());
        let renamed: Value = app
            .client
            .patch(app.url("/v1/users/me"))
            .json(&serde_json::json!({ "display_name": "  Ada Admin " }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(renamed["data"]["display_name"], "Ada Admin");
        let again: Value = app.me().await.json().await.unwrap();
        assert_eq!(
            again["data"]["display_name"], "Ada Admin",
            "the change was stored"
        );
    }
);

both_backends!(malformed_json_is_a_400_envelope, |app| async move {
    app.login_admin().await;
    let response = app
        .client
        .patch(app.url("/v1/users/me"))
        .header("content-type", "application/json")
        .body("{\"display_name\": ")
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "REQUEST_001")
    );

    let wrong_type = app
        .client
        .patch(app.url("/v1/users/me"))
        .json(&serde_json::json!({ "display_name": 42 }))
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(wrong_type).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "VALIDATION_001")
    );

    let empty = app
        .client
        .patch(app.url("/v1/users/me"))
        .json(&serde_json::json!({ "display_name": "  " }))
        .send()
        .await
        .unwrap();
    let (status, code, body) = error_of(empty).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::BAD_REQUEST, "VALIDATION_001")
    );
    assert_eq!(body["error"]["field"], "display_name");

    let not_json = app
        .client
        .patch(app.url("/v1/users/me"))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(not_json).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "REQUEST_003")
    );
});

both_backends!(a_body_over_the_limit_is_a_413_envelope, |app| async move {
    app.login_admin().await;
    let huge = serde_json::json!({ "display_name": "x".repeat(200 * 1024) });
    let response = app
        .client
        .patch(app.url("/v1/users/me"))
        // The server answers before reading the body and closes the connection: do not reuse it.
        .header("connection", "close")
        .json(&huge)
        .send()
        .await
        .unwrap();
    let (status, code, _) = error_of(response).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_002")
    );
    let body: Value = app.me().await.json().await.unwrap();
    assert_ne!(
        body["data"]["display_name"].as_str().unwrap().len(),
        200 * 1024
    );
});

both_backends!(
    a_session_cannot_change_state_from_another_origin,
    |app| async move {
        app.login_admin().await;
        let response = app
            .client
            .patch(app.url("/v1/users/me"))
            .header("origin", "https://evil.test")
            .json(&serde_json::json!({ "display_name": "pwned" }))
            .send()
            .await
            .unwrap();
        let (status, code, _) = error_of(response).await;
        assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "AUTH_004"));
        let same_origin = app
            .client
            .patch(app.url("/v1/users/me"))
            .header("origin", app.address.as_str())
            .json(&serde_json::json!({ "display_name": "Mine" }))
            .send()
            .await
            .unwrap();
        assert_eq!(same_origin.status(), StatusCode::OK);
    }
);

both_backends!(error_catalogue_documents_every_code, |app| async move {
    let page = app.get("/docs/errors").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for code in gatehouse::http::ErrorCode::ALL {
        assert!(
            html.contains(&format!("id=\"{}\"", code.as_str())),
            "no anchor for {}",
            code.as_str()
        );
    }
    // The OAuth errors are listed too, as a table.
    assert!(html.contains("<table>") && html.contains("<code>invalid_target</code>"));
});

// A failing query answers 500 SERVER_001 in the envelope, with nothing of the SQL or the
// database's message.
both_backends!(
    a_database_failure_is_a_clean_server_error,
    |app| async move {
        use diesel::RunQueryDsl;
        app.login_admin().await;
        assert_eq!(app.get("/v1/audit-events").await.status(), StatusCode::OK);
        app.state
            .db(|c| Ok(diesel::sql_query("DROP TABLE audit_events").execute(c)?))
            .await
            .unwrap();
        let response = app.get("/v1/audit-events").await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"]["code"], "SERVER_001");
        assert!(body["meta"]["request_id"].is_string());
        let text = body.to_string().to_lowercase();
        assert!(
            !text.contains("audit_events") && !text.contains("table"),
            "{text}"
        );
    }
);

// PostgreSQL restarted under a running server: the requests that meet a dead pooled
// connection get 503 SERVER_002, the dead connections are replaced, and service resumes.
#[actix_web::test]
async fn service_resumes_after_postgresql_drops_every_connection() {
    use diesel::{Connection, RunQueryDsl};
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Postgres).await else {
        return;
    };
    app.login_admin().await;
    // Several pooled connections, all alive.
    let busy: Vec<_> = (0..4).map(|_| app.get("/v1/audit-events")).collect();
    for r in crate::oauth::futures_join(busy.into_iter()).await {
        assert_eq!(r.status(), StatusCode::OK);
    }
    let gatehouse::db::DatabaseUrl::Postgres { url } = &app.state.settings.database else {
        unreachable!()
    };
    let name = url
        .split('/')
        .nth(3)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let mut admin =
        diesel::PgConnection::establish(&crate::helpers::postgres_admin_url().unwrap()).unwrap();
    #[derive(diesel::QueryableByName)]
    struct Backend {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let pids: Vec<i32> = diesel::sql_query(format!(
        "SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ))
    .load::<Backend>(&mut admin)
    .unwrap()
    .into_iter()
    .map(|b| b.pid)
    .collect();
    assert!(!pids.is_empty(), "the server holds connections");
    let list = pids
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({list})"
    ))
    .execute(&mut admin)
    .unwrap();
    // Termination is asynchronous: wait until those backends are gone.
    for _ in 0..100 {
        let left = diesel::sql_query(format!(
            "SELECT pid FROM pg_stat_activity WHERE pid IN ({list})"
        ))
        .load::<Backend>(&mut admin)
        .unwrap();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut failures = 0;
    let mut recovered = false;
    for _ in 0..20 {
        let response = app.get("/v1/audit-events").await;
        if response.status() == StatusCode::OK {
            recovered = true;
            break;
        }
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "SERVER_002");
        failures += 1;
    }
    assert!(recovered, "still failing after {failures} requests");
    assert_eq!(app.get("/v1/audit-events").await.status(), StatusCode::OK);
    app.stop().await;
}
