//! Pages in a real headless Chromium through WebDriver (Debian's chromium + chromium-driver).
//! Without them the test fails, unless `GATEHOUSE_ALLOW_SKIPS=1` (then it says loudly that it
//! was skipped; `GATEHOUSE_REQUIRE_BROWSER=1`, as in CI, fails it even then).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Backend, KillOnDrop, skip_or_fail, spawn_app};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    pub client: Client,
    /// Killed when the browser is dropped, also when a test panics.
    _driver: KillOnDrop,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            skip_or_fail(
                "browser test",
                "apt-get install chromium chromium-driver to run it",
                "GATEHOUSE_REQUIRE_BROWSER",
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = KillOnDrop(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::native()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!("cannot reach chromedriver: {e}"),
                Err(_) => actix_web::rt::time::sleep(Duration::from_millis(100)).await,
            }
        };
        // Wide enough for the tables, so screenshots show pages as people see them.
        let _ = client.set_window_size(1280, 900).await;
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// With `GATEHOUSE_SCREENSHOTS=DIR`, save what the browser shows as `DIR/NAME.png`
    /// (for a person to look at; the assertions do not depend on it).
    pub async fn screenshot(&self, name: &str) {
        if let Ok(dir) = std::env::var("GATEHOUSE_SCREENSHOTS") {
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
        }
    }

    /// End the WebDriver session; the guard then stops chromedriver.
    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

#[actix_web::test]
async fn log_in_see_the_signed_in_page_and_log_out_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;

    c.goto(&app.url("/account")).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("/login?next=/account")
    );

    // A wrong password first: the page says so and keeps the email.
    submit_login(c, ADMIN_EMAIL, "wrong password").await;
    let error = c
        .wait()
        .for_element(Locator::Id("login-error"))
        .await
        .unwrap();
    browser.screenshot("login-error").await;
    assert_eq!(error.text().await.unwrap(), "Incorrect email or password.");

    fill(c, "password", ADMIN_PASSWORD).await;
    click(c, "sign-in").await;
    c.wait()
        .for_url(&url::Url::parse(&app.url("/account")).unwrap())
        .await
        .unwrap();

    c.goto(&app.url("/")).await.unwrap();
    let welcome = c.wait().for_element(Locator::Id("welcome")).await.unwrap();
    browser.screenshot("home").await;
    assert_eq!(welcome.text().await.unwrap(), "Welcome, Administrator");
    let who = c
        .find(Locator::Id("signed-in-as"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(who, "Administrator");

    click(c, "logout").await;
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();
    assert!(c.current_url().await.unwrap().as_str().ends_with("/login"));
    c.goto(&app.url("/")).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();

    browser.close().await;
    app.stop().await;
}

/// Type into the field with this id.
pub(crate) async fn fill(c: &Client, id: &str, text: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

pub(crate) async fn click(c: &Client, id: &str) {
    c.find(Locator::Id(id))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Submit the login form on the current page.
pub(crate) async fn submit_login(c: &Client, email: &str, password: &str) {
    fill(c, "email", email).await;
    fill(c, "password", password).await;
    click(c, "sign-in").await;
}

/// PKCE pair of the browser tests' authorization requests.
pub(crate) const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub(crate) const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The browser tests' consent flow, one copy: an app of a developer's whose redirect URI is
/// the test server's own `/healthz` (a loopback URI: any port matches), its authorization
/// request with PKCE, the sign-in it leads to, and the approval that lands back.
pub(crate) async fn loopback_app(
    app: &crate::helpers::TestApp,
    name: &str,
    scopes: &str,
    more: gatehouse::clients::NewClient,
) -> crate::oauth::TestClient {
    use gatehouse::clients::redirect::RedirectUri;
    let owner = app
        .create_user("dev@example.com", "developer password", false)
        .await;
    let new = gatehouse::clients::NewClient {
        name: name.into(),
        owner_user_id: Some(owner),
        client_type: gatehouse::clients::ClientType::Public,
        redirect_uris: vec![RedirectUri::parse("http://127.0.0.1/healthz").unwrap()],
        scopes: gatehouse::scopes::ScopeSet::parse(scopes).unwrap(),
        grant_types: gatehouse::clients::default_grant_types(),
        ..more
    };
    crate::oauth::create_client(app, new).await
}

/// The authorization request of a `loopback_app` for `scope`, with `state` and `extra`
/// parameters (`&nonce=…`).
pub(crate) fn authorize_url(
    app: &crate::helpers::TestApp,
    client_id: &str,
    scope: &str,
    state: &str,
    extra: &str,
) -> String {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    app.url(&format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&code_challenge={CHALLENGE}&code_challenge_method=S256{extra}",
        encode(client_id),
        encode(&app.url("/healthz")),
        encode(scope),
        encode(state),
    ))
}

/// Open `url` while signed out, sign in as the administrator on the login page it leads to,
/// and wait for the consent page; its title.
pub(crate) async fn sign_in_to_consent(c: &Client, url: &str) -> String {
    c.goto(url).await.unwrap();
    c.wait()
        .for_element(Locator::Id("login-form"))
        .await
        .unwrap();
    submit_login(c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.wait()
        .for_element(Locator::Id("consent-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Approve on the consent page; the query the browser lands with on `path`.
pub(crate) async fn approve_and_land(
    c: &Client,
    path: &str,
) -> std::collections::HashMap<String, String> {
    click(c, "approve").await;
    landed_on(c, path).await
}

/// Wait until the browser is on `path` of the test server; its query.
pub(crate) async fn landed_on(c: &Client, path: &str) -> std::collections::HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = c.current_url().await.unwrap();
        if current.path() == path {
            return current.query_pairs().into_owned().collect();
        }
        assert!(Instant::now() < deadline, "never reached {path}: {current}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sign_in(c: &Client, app: &crate::helpers::TestApp) {
    c.goto(&app.url("/login")).await.unwrap();
    submit_login(c, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    c.wait().for_element(Locator::Id("welcome")).await.unwrap();
}

#[actix_web::test]
async fn create_a_key_copy_it_revoke_it_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    sign_in(c, &app).await;

    c.find(Locator::LinkText("API keys"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Id("no-keys")).await.unwrap();
    fill(c, "name", "Browser key").await;
    click(c, "create").await;

    let shown = c
        .wait()
        .for_element(Locator::Id("new-key"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.screenshot("key-created").await;
    assert!(
        shown.starts_with("sk_live_") && shown.len() == 46,
        "{shown}"
    );
    let warning = c
        .find(Locator::Id("shown-once"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(warning.contains("will not be shown again"));
    let copy = c.find(Locator::Id("copy-key")).await.unwrap();
    copy.click().await.unwrap();
    // The clipboard API answers asynchronously; where it is refused (headless, no permission)
    // the page selects the key for the user to copy instead. Either must happen.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let after = copy.text().await.unwrap();
        let selected = c
            .execute("return window.getSelection().toString();", vec![])
            .await
            .unwrap();
        if after == "Copied" || selected.as_str() == Some(shown.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "copy did nothing: {after:?} / {selected:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.get_with_key("/v1/users/me", &shown).await.status(),
        reqwest::StatusCode::OK
    );

    click(c, "done").await;
    let table = c
        .wait()
        .for_element(Locator::Id("keys"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.screenshot("keys-list").await;
    assert!(
        table.contains("Browser key") && table.contains("never"),
        "{table}"
    );
    assert!(!table.contains(&shown), "the key is not shown again");
    c.find(Locator::LinkText("Revoke"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Id("confirm-revoke"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = c
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("revoked"));
    assert_eq!(
        app.get_with_key("/v1/users/me", &shown).await.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    browser.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn approve_an_app_on_the_consent_page_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    let client = loopback_app(
        &app,
        "Orders app",
        "read:users read:orders",
        Default::default(),
    )
    .await;
    let url = authorize_url(&app, &client.id, "read:users read:orders", "xyz123", "");
    // Not signed in: the login page first, then straight back to the request.
    let title = sign_in_to_consent(c, &url).await;
    assert!(title.contains("Orders app"), "{title}");
    let scopes = c
        .find(Locator::Id("new-scopes"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scopes.contains("read:orders") && scopes.contains("Read order information"),
        "{scopes}"
    );
    browser.screenshot("consent").await;
    let query = approve_and_land(c, "/healthz").await;
    assert!(query["code"].starts_with("ac_"), "{query:?}");
    assert_eq!(query["state"], "xyz123");
    assert_eq!(query["iss"], app.state.settings.issuer);

    // Connected apps lists it; disconnecting forgets the approval.
    c.goto(&app.url("/settings/connected-apps")).await.unwrap();
    let row = c
        .wait()
        .for_element(Locator::Css("#connected-apps tr[data-consent-id] td"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(row, "Orders app");
    browser.screenshot("connected-apps").await;
    c.find(Locator::Css("button.disconnect"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let notice = c
        .wait()
        .for_element(Locator::Id("notice"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(notice.contains("disconnected"), "{notice}");
    c.find(Locator::Id("no-connected-apps")).await.unwrap();
    // The next authorization asks again.
    c.goto(&url).await.unwrap();
    c.wait()
        .for_element(Locator::Id("consent-title"))
        .await
        .unwrap();

    browser.close().await;
    app.stop().await;
}

#[actix_web::test]
async fn register_an_app_and_see_its_secret_once_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    sign_in(c, &app).await;
    c.goto(&app.url("/settings/apps")).await.unwrap();
    c.wait().for_element(Locator::Id("no-apps")).await.unwrap();
    fill(c, "app-name", "Nightly billing").await;
    fill(c, "redirect-uris", "https://billing.example.com/callback").await;
    click(c, "client-credentials").await;
    c.find(Locator::Css("input[name=scope][value='read:orders']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    click(c, "register").await;
    let secret = c
        .wait()
        .for_element(Locator::Id("client-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    browser.screenshot("app-registered").await;
    assert!(secret.starts_with("cs_"), "{secret}");
    let client_id = c
        .find(Locator::Id("client-id"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The secret works, once copied.
    let token = reqwest::Client::new()
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), reqwest::StatusCode::OK);
    let body: serde_json::Value = token.json().await.unwrap();
    assert_eq!(body["scope"], "read:orders");
    // And it is never shown again.
    click(c, "done").await;
    c.wait().for_element(Locator::Id("apps")).await.unwrap();
    let source = c.source().await.unwrap();
    assert!(source.contains(&client_id));
    assert!(!source.contains(&secret), "the secret is shown once");

    // Rotate it from the list (no overlap chosen): a new secret, shown once; the old one ends.
    c.find(Locator::Css("button.rotate-secret"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let rotated = c
        .wait()
        .for_element(Locator::Id("client-secret"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rotated.starts_with("cs_") && rotated != secret, "{rotated}");
    browser.screenshot("app-secret-rotated").await;
    for (presented, expected) in [
        (&rotated, reqwest::StatusCode::OK),
        (&secret, reqwest::StatusCode::UNAUTHORIZED),
    ] {
        let answer = reqwest::Client::new()
            .post(app.url("/oauth/token"))
            .basic_auth(&client_id, Some(presented))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), expected);
    }

    browser.close().await;
    app.stop().await;
}
