//! A browser app on another origin, in a real headless Chromium: a single-page app served by
//! the test on its own port signs its user in with the authorization-code flow and PKCE, then
//! calls the token endpoint and UserInfo with `fetch` and DPoP proofs made with WebCrypto
//! (answering the token endpoint's nonce challenge, which it can only read through
//! `Access-Control-Expose-Headers`). It also tries introspection, which no page may read.

use fantoccini::Locator;
use serde_json::Value;

use crate::browser::{Browser, approve_and_land, sign_in_to_consent};
use crate::helpers::{Backend, spawn_app};

/// The app's page: without `code`, it starts the flow; with one, it redeems it and writes what
/// happened into `#result`.
fn spa_page(gatehouse: &str, client_id: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><title>Orders SPA</title>
<pre id="result">working</pre>
<script>
const GH = {gatehouse:?};
const CLIENT = {client_id:?};
const REDIRECT = location.origin + "/spa";
const b64u = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const enc = (o) => b64u(new TextEncoder().encode(JSON.stringify(o)));
const sha256 = async (s) => b64u(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
async function main() {{
  const params = new URLSearchParams(location.search);
  if (!params.get("code")) {{
    const verifier = b64u(crypto.getRandomValues(new Uint8Array(32)));
    sessionStorage.setItem("verifier", verifier);
    const q = new URLSearchParams({{ response_type: "code", client_id: CLIENT, redirect_uri: REDIRECT,
      scope: "openid read:users", state: "spa-state", code_challenge: await sha256(verifier),
      code_challenge_method: "S256" }});
    location.href = GH + "/oauth/authorize?" + q;
    return;
  }}
  const out = {{ state: params.get("state") }};
  const keys = await crypto.subtle.generateKey({{ name: "ECDSA", namedCurve: "P-256" }}, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", keys.publicKey);
  const proof = async (htm, htu, nonce, ath) => {{
    const payload = {{ jti: crypto.randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000) }};
    if (nonce) payload.nonce = nonce;
    if (ath) payload.ath = ath;
    const input = enc({{ typ: "dpop+jwt", alg: "ES256", jwk: {{ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }} }}) + "." + enc(payload);
    const sig = await crypto.subtle.sign({{ name: "ECDSA", hash: "SHA-256" }}, keys.privateKey, new TextEncoder().encode(input));
    return input + "." + b64u(sig);
  }};
  let nonce = null, res;
  for (let i = 0; i < 2; i++) {{
    res = await fetch(GH + "/oauth/token", {{ method: "POST",
      headers: {{ "Content-Type": "application/x-www-form-urlencoded", "DPoP": await proof("POST", GH + "/oauth/token", nonce) }},
      body: new URLSearchParams({{ grant_type: "authorization_code", code: params.get("code"), redirect_uri: REDIRECT,
        client_id: CLIENT, code_verifier: sessionStorage.getItem("verifier") }}) }});
    if (res.status === 400 && res.headers.get("DPoP-Nonce")) {{ nonce = res.headers.get("DPoP-Nonce"); out.nonce_challenge = true; continue; }}
    break;
  }}
  out.token_status = res.status;
  const tokens = await res.json();
  out.token_type = tokens.token_type;
  const ath = await sha256(tokens.access_token);
  const info = await fetch(GH + "/oauth/userinfo", {{
    headers: {{ "Authorization": "DPoP " + tokens.access_token, "DPoP": await proof("GET", GH + "/oauth/userinfo", null, ath) }} }});
  out.userinfo_status = info.status;
  out.sub = (await info.json()).sub;
  try {{
    await fetch(GH + "/oauth/introspect", {{ method: "POST", headers: {{ "Content-Type": "application/x-www-form-urlencoded" }},
      body: "token=" + encodeURIComponent(tokens.access_token) }});
    out.introspection_readable = true;
  }} catch (e) {{ out.introspection_readable = false; }}
  document.getElementById("result").textContent = JSON.stringify(out);
}}
main().catch((e) => {{ document.getElementById("result").textContent = JSON.stringify({{ error: String(e) }}); }});
</script>"#
    )
}

#[actix_web::test]
async fn a_browser_app_on_another_origin_signs_in_with_pkce_and_dpop_in_chromium() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app(Backend::Sqlite)
        .await
        .expect("SQLite is always available");
    let c = &browser.client;
    // A loopback redirect URI: the app's pages, on any port of 127.0.0.1, are its origins.
    let owner = app
        .create_user("dev@example.com", "developer password", false)
        .await;
    let client = crate::oauth::create_client(
        &app,
        gatehouse::clients::NewClient {
            name: "Orders SPA".into(),
            owner_user_id: Some(owner),
            client_type: gatehouse::clients::ClientType::Public,
            redirect_uris: vec![
                gatehouse::clients::redirect::RedirectUri::parse("http://127.0.0.1/spa").unwrap(),
            ],
            scopes: gatehouse::scopes::ScopeSet::parse("openid read:users").unwrap(),
            grant_types: gatehouse::clients::default_grant_types(),
            ..Default::default()
        },
    )
    .await;
    let page = spa_page(&app.address, &client.id);
    let server = actix_web::HttpServer::new(move || {
        let page = page.clone();
        actix_web::App::new().route(
            "/spa",
            actix_web::web::get().to(move || {
                let page = page.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(page)
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let spa = format!("http://127.0.0.1:{}", server.addrs()[0].port());
    let running = server.run();
    let handle = running.handle();
    actix_web::rt::spawn(running);

    // The page sends the browser to Gatehouse; the user signs in and approves there.
    let title = sign_in_to_consent(c, &format!("{spa}/spa")).await;
    assert!(title.contains("Orders SPA"), "{title}");
    approve_and_land(c, "/spa").await;
    let result = c
        .wait()
        .for_element(Locator::Css("#result:not(:empty)"))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let text = loop {
        let text = result.text().await.unwrap();
        if text != "working" {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never finished"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    browser.screenshot("cors-spa").await;
    let out: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{text}"));
    assert!(out.get("error").is_none(), "the page failed: {out}");
    assert_eq!(out["state"], "spa-state");
    assert_eq!(out["token_status"], 200, "{out}");
    assert_eq!(out["token_type"], "DPoP", "{out}");
    if app.state.settings.dpop_nonce {
        assert_eq!(
            out["nonce_challenge"], true,
            "the page read DPoP-Nonce: {out}"
        );
    }
    assert_eq!(out["userinfo_status"], 200, "{out}");
    assert!(
        out["sub"].as_str().is_some_and(|s| s.starts_with("usr_")),
        "{out}"
    );
    assert_eq!(out["introspection_readable"], false, "{out}");

    handle.stop(false).await;
    browser.close().await;
    app.stop().await;
}
