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
});
