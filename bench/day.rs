//! Traffic over simulated days on an accelerated clock, with the janitor running as in
//! production, printing the database's size and rows per table once a simulated day: ended
//! rows go, so the size levels off instead of growing for ever.
//!
//!     cargo run --release --example day -- [days]      (default 45; audit retention 7 days)
//!
//! Every four simulated hours: 5 sign-ins and 5 failed ones, 20 authorization-code flows,
//! 40 refreshes of live grants, 5 revoked access tokens; then the clock moves 4 hours and one
//! housekeeping pass runs.

use std::sync::Arc;

use base64::Engine;
use diesel::RunQueryDsl;
use gatehouse::config::{Redacted, Settings};
use sha2::Digest;

const ADMIN: (&str, &str) = ("admin@example.com", "day benchmark password 1");
const REDIRECT: &str = "https://app.example.com/callback";
const STEP_HOURS: i64 = 4;

struct Grant {
    refresh: String,
    access: String,
}

#[actix_web::main]
async fn main() {
    let days: i64 = std::env::args()
        .nth(1)
        .and_then(|d| d.parse().ok())
        .unwrap_or(45);
    let dir = std::path::Path::new("/tmp/gatehouse-day");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let url: gatehouse::db::DatabaseUrl = format!("sqlite://{}/day.db", dir.display())
        .parse()
        .unwrap();
    let mut settings = Settings::for_tests(url, b"day-benchmark-secret-0123456789abcdef");
    settings.admin_email = Some(ADMIN.0.into());
    settings.admin_password = Some(Redacted(ADMIN.1.into()));
    settings.audit_retention = Some(chrono::Duration::days(7));
    settings.metrics = Default::default();
    let clock = Arc::new(gatehouse::clock::ManualClock::starting_now());
    let app = gatehouse::Application::build_with_clock(settings, clock.clone()).unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    actix_web::rt::spawn(app.run_until_stopped());

    let (client_id, client_secret) = register(&state).await;
    let mut grants: Vec<Grant> = Vec::new();
    let mut longest = std::time::Duration::ZERO;
    let http = reqwest::Client::new();
    println!(
        "day  db_MB  used_MB  sessions  auth_codes  families  refresh_tokens  revoked  failures  audit  janitor_ms"
    );
    for step in 0..days * 24 / STEP_HOURS {
        for _ in 0..5 {
            let browser = sign_in(&base, ADMIN.1).await;
            sign_in(&base, "not the password").await;
            for _ in 0..4 {
                grants.push(flow(&browser, &base, &client_id, &client_secret).await);
            }
        }
        for n in 0..40.min(grants.len()) {
            let pick = (step as usize * 7 + n * 13) % grants.len();
            let refreshed = http
                .post(format!("{base}/oauth/token"))
                .basic_auth(&client_id, Some(&client_secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &grants[pick].refresh),
                ])
                .send()
                .await
                .unwrap();
            if refreshed.status().is_success() {
                let body: serde_json::Value = refreshed.json().await.unwrap();
                grants[pick].refresh = body["refresh_token"].as_str().unwrap().to_owned();
                grants[pick].access = body["access_token"].as_str().unwrap().to_owned();
            } else {
                // Ended (idle or absolute): the app would sign the user in again.
                grants.swap_remove(pick);
            }
        }
        for grant in grants.iter().rev().take(5) {
            http.post(format!("{base}/oauth/revoke"))
                .basic_auth(&client_id, Some(&client_secret))
                .form(&[("token", grant.access.as_str())])
                .send()
                .await
                .unwrap();
        }
        clock.advance(chrono::Duration::hours(STEP_HOURS));
        // The janitor first, to read how long its longest write held the database; the rest
        // of housekeeping after it (its own sweep then finds nothing).
        let swept = gatehouse::retention::run(&state).await.unwrap().unwrap();
        longest = longest.max(swept.longest_write);
        gatehouse::app::housekeeping_pass(&state).await;
        if (step + 1) % (24 / STEP_HOURS) == 0 {
            report(&state, (step + 1) * STEP_HOURS / 24, dir, longest).await;
            longest = std::time::Duration::ZERO;
        }
    }
}

async fn register(state: &gatehouse::state::AppState) -> (String, String) {
    use gatehouse::clients::{self, ClientType, NewClient};
    let pepper = state.digest_pepper.clone();
    let now = state.now();
    let (client, secret) = state
        .db(move |c| {
            let owner = gatehouse::accounts::model::find_by_email(
                c,
                &gatehouse::accounts::Email::parse(ADMIN.0).unwrap(),
            )?
            .unwrap();
            let new = NewClient {
                name: "Day app".into(),
                owner_user_id: Some(owner.id),
                client_type: ClientType::Confidential,
                redirect_uris: vec![
                    gatehouse::clients::redirect::RedirectUri::parse(REDIRECT).unwrap(),
                ],
                scopes: gatehouse::scopes::ScopeSet::parse("read:users").unwrap(),
                first_party: true,
                grant_types: clients::default_grant_types(),
                resources: Vec::new(),
                ..NewClient::default()
            };
            clients::create(c, &pepper, &new, now)
        })
        .await
        .unwrap();
    (client.id, secret.unwrap().expose().to_owned())
}

/// A browser (cookie jar) after a sign-in attempt with `password`.
async fn sign_in(base: &str, password: &str) -> reqwest::Client {
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = browser
        .get(format!("{base}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf_token");
    browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("email", ADMIN.0),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    browser
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page.find(&marker).expect("hidden field") + marker.len();
    page[start..start + page[start..].find('"').unwrap()].to_owned()
}

async fn flow(browser: &reqwest::Client, base: &str, id: &str, secret: &str) -> Grant {
    let verifier = gatehouse::secrets::random_base62(64);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let authorize = format!(
        "{base}/oauth/authorize?response_type=code&client_id={id}&redirect_uri={}&scope=read%3Ausers&state=s&code_challenge={challenge}&code_challenge_method=S256",
        "https%3A%2F%2Fapp.example.com%2Fcallback"
    );
    let answer = browser.get(authorize).send().await.unwrap();
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .expect("a code")
        .1
        .into_owned();
    let tokens: serde_json::Value = reqwest::Client::new()
        .post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Grant {
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        access: tokens["access_token"].as_str().unwrap().to_owned(),
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

async fn report(
    state: &gatehouse::state::AppState,
    day: i64,
    dir: &std::path::Path,
    longest: std::time::Duration,
) {
    let tables = [
        "sessions",
        "auth_codes",
        "refresh_families",
        "refresh_tokens",
        "revoked_access_tokens",
        "login_failures",
        "audit_events",
    ];
    let counts: Vec<i64> = state
        .db(move |c| {
            let mut counts = Vec::new();
            for table in tables {
                let row: Count = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}")).get_result(c)?;
                counts.push(row.n);
            }
            let pages: Count = diesel::sql_query("SELECT page_count - freelist_count AS n FROM pragma_page_count(), pragma_freelist_count()").get_result(c)?;
            counts.push(pages.n * 4096);
            Ok(counts)
        })
        .await
        .unwrap();
    let file: u64 = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let mb = |b: f64| b / 1_048_576.0;
    println!(
        "{day:>3}  {:>5.1}  {:>7.1}  {:>8}  {:>10}  {:>8}  {:>14}  {:>7}  {:>8}  {:>5}  {:>6.2}",
        mb(file as f64),
        mb(counts[7] as f64),
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        counts[5],
        counts[6],
        longest.as_secs_f64() * 1000.0
    );
}
