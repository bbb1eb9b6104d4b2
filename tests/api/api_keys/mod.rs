//! API keys through `/v1`: formats, header styles, refusals, rolling, restrictions, IP
//! allowlists, rate limits, last-used bookkeeping, audit and visibility. Time moves through the
//! server's manual clock, never by sleeping.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

mod lifecycle;
mod limits;
mod presenting;

/// Status and error code of an envelope error.
pub(crate) async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("an envelope");
    assert_eq!(body["success"], false, "{body}");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn me_with_key(app: &TestApp, key: &str) -> reqwest::Response {
    app.get_with_key("/v1/users/me", key).await
}

/// The key as `GET /v1/api-keys/{id}` shows it (a refused read fails here, rather than
/// reading as a key whose fields are all null).
async fn key_status(app: &TestApp, id: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/v1/api-keys/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "reading key {id}");
    response.json::<Value>().await.unwrap()["data"].clone()
}
