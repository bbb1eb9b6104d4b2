use reqwest::StatusCode;

use crate::both_backends;

both_backends!(healthz_and_readyz_answer, |app| async move {
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    let expected = match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    assert_eq!(body["database"], expected);
});

both_backends!(
    every_response_carries_request_id_timing_and_security_headers,
    |app| async move {
        for path in ["/healthz", "/login", "/v1/users/me", "/nowhere"] {
            let response = app.get(path).await;
            let h = response.headers();
            let id = h
                .get("x-request-id")
                .unwrap_or_else(|| panic!("{path}: no X-Request-Id"));
            assert!(id.to_str().unwrap().starts_with("req_"), "{path}");
            assert!(
                h.get("x-response-time")
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .ends_with("ms"),
                "{path}"
            );
            assert_eq!(
                h.get("x-content-type-options").unwrap(),
                "nosniff",
                "{path}"
            );
            assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
            assert_eq!(h.get("x-frame-options").unwrap(), "DENY", "{path}");
            let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
            assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
            assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}");
        }
        let api = app.get("/v1/users/me").await;
        assert_eq!(api.headers().get("x-api-version").unwrap(), "v1");
        let page = app.get("/login").await;
        assert!(page.headers().get("x-api-version").is_none());
    }
);

both_backends!(
    a_sane_inbound_request_id_is_echoed_and_a_bad_one_replaced,
    |app| async move {
        let echoed = app
            .client
            .get(app.url("/healthz"))
            .header("x-request-id", "trace-42.abc_DEF")
            .send()
            .await
            .unwrap();
        assert_eq!(
            echoed.headers().get("x-request-id").unwrap(),
            "trace-42.abc_DEF"
        );
        for bad in ["has space", "<script>", &"a".repeat(129)] {
            let replaced = app
                .client
                .get(app.url("/healthz"))
                .header("x-request-id", bad)
                .send()
                .await
                .unwrap();
            let id = replaced
                .headers()
                .get("x-request-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            assert!(id.starts_with("req_"), "{bad:?} was echoed as {id}");
        }
    }
);

fn https_issuer(settings: &mut gatehouse::config::Settings) {
    settings.issuer = "https://id.example.test".into();
}

both_backends!(
    an_https_issuer_asks_browsers_to_keep_to_https,
    settings = https_issuer,
    |app| async move {
        for path in ["/healthz", "/login", "/.well-known/openid-configuration"] {
            let response = app.get(path).await;
            assert_eq!(
                response
                    .headers()
                    .get("strict-transport-security")
                    .unwrap_or_else(|| panic!("{path}: no HSTS")),
                "max-age=63072000",
                "{path}"
            );
        }
    }
);

both_backends!(a_plain_http_issuer_sends_no_hsts, |app| async move {
    let response = app.get("/healthz").await;
    assert!(
        response
            .headers()
            .get("strict-transport-security")
            .is_none()
    );
});
