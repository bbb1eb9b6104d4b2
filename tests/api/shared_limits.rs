//! Rate limits shared through Redis (`GATEHOUSE_REDIS_URL`): two instances on one database and
//! one Redis count a credential's and an address's requests together; a Redis that is gone or
//! hangs leaves each instance counting on its own (and `/readyz` saying so) without failing a
//! request, and a Redis that is back is used again. Each test runs a `redis-server` of its own
//! on a Unix socket in a temporary directory; without `redis-server` they skip loudly (and
//! fail under `GATEHOUSE_REQUIRE_REDIS=1`, as in CI).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gatehouse::Application;
use gatehouse::config::{Redacted, Settings};
use gatehouse::http::shared_limits::SharedLimits;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, KillOnDrop, TestApp, skip_or_fail, spawn_app_with};

/// A `redis-server` of the test's own, on a Unix socket: no port to race for, and it can be
/// stopped and started again at the same address.
struct RedisServer {
    dir: tempfile::TempDir,
    process: Option<KillOnDrop>,
}

impl RedisServer {
    /// A running server, or `None` (announced) when `redis-server` is not installed.
    fn start() -> Option<RedisServer> {
        if Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_err()
        {
            skip_or_fail(
                "shared rate-limit test",
                "install redis-server (Debian: apt-get install redis-server)",
                "GATEHOUSE_REQUIRE_REDIS",
            );
            return None;
        }
        let mut server = RedisServer {
            dir: tempfile::tempdir().expect("temp dir"),
            process: None,
        };
        server.resume_service();
        Some(server)
    }

    /// The address of a server not started yet (`start_service` starts it there).
    fn not_started() -> Option<RedisServer> {
        let mut server = RedisServer::start()?;
        server.stop();
        Some(server)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Start (again) at the same socket, with empty memory, and wait until it answers.
    fn resume_service(&mut self) {
        let _ = std::fs::remove_file(self.socket());
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.process = Some(KillOnDrop(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// Kill it (its counts are lost, as with a restarted Redis without persistence).
    fn stop(&mut self) {
        self.process = None;
    }

    /// Freeze it: connections stay open but nothing is answered (a Redis that hangs).
    fn freeze(&self, frozen: bool) {
        let pid = self.process.as_ref().expect("running").id();
        let signal = if frozen { libc::SIGSTOP } else { libc::SIGCONT };
        // SAFETY: signals our own child process.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    }

    /// Forget every loaded script, as a restarted or failed-over Redis does.
    fn flush_scripts(&self) {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query::<()>(&mut c)
            .unwrap();
    }

    /// Every key's time to live (each must expire, so that Redis never grows for good).
    fn ttls(&self) -> Vec<(String, i64)> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut c = client.get_connection().unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        keys.into_iter()
            .map(|k| {
                let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut c).unwrap();
                (k, ttl)
            })
            .collect()
    }
}

/// A second Gatehouse on the first one's database (and settings: the same issuer, secret and
/// Redis), as behind a load balancer.
struct Instance {
    address: String,
    handle: actix_web::dev::ServerHandle,
    state: gatehouse::state::AppState,
}

impl Instance {
    async fn beside(app: &TestApp) -> Instance {
        let mut settings: Settings = (*app.state.settings).clone();
        settings.bind = "127.0.0.1:0".into();
        let built = Application::build_with_clock(settings, app.clock.clone())
            .expect("second instance starts");
        let instance = Instance {
            address: format!("http://127.0.0.1:{}", built.port()),
            handle: built.handle(),
            state: built.state().clone(),
        };
        actix_web::rt::spawn(built.run_until_stopped());
        instance
    }

    async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// The base address of either instance.
trait Address {
    fn base(&self) -> &str;
}

impl Address for TestApp {
    fn base(&self) -> &str {
        &self.address
    }
}

impl Address for Instance {
    fn base(&self) -> &str {
        &self.address
    }
}

/// `GET /v1/users/me` with the key, on a new connection each time (so that the requests are
/// spread over the instance's workers).
async fn me(on: &impl Address, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}/v1/users/me", on.base()))
        .bearer_auth(key)
        .send()
        .await
        .expect("request")
}

async fn readyz(on: &impl Address) -> Value {
    let response = reqwest::get(format!("{}/readyz", on.base())).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "where rate limits are counted never makes a server unready"
    );
    response.json().await.unwrap()
}

/// What `/readyz` says about rate limits.
async fn counted(on: &impl Address) -> String {
    readyz(on).await["rate_limits"]
        .as_str()
        .expect("readyz names where rate limits are counted")
        .to_owned()
}

/// Wait (boundedly) until the instance counts in Redis again: its supervisor reconnects in
/// the background, on the real clock.
async fn until_shared(on: &impl Address) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = counted(on).await;
        if now == "shared (redis)" {
            return;
        }
        assert!(Instant::now() < deadline, "Redis was not used again: {now}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// Status and `X-RateLimit-Limit`/`-Remaining` of a response.
fn allowance(response: &reqwest::Response) -> (StatusCode, String, String) {
    (
        response.status(),
        header(response, "x-ratelimit-limit"),
        header(response, "x-ratelimit-remaining"),
    )
}

async fn assert_refused_on(on: &impl Address, key: &str, limit: &str) {
    let refused = me(on, key).await;
    assert_eq!(
        allowance(&refused),
        (StatusCode::TOO_MANY_REQUESTS, limit.into(), "0".into())
    );
    let wait: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(
        header(&refused, "x-ratelimit-reset")
            .parse::<u64>()
            .unwrap()
            > 1_700_000_000
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_001", "{body}");
}

/// A server that counts through `redis` with `per_minute` requests per credential, two workers
/// each; its admin is signed in.
async fn counting_through(
    backend: Backend,
    redis: &RedisServer,
    adjust: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let url = redis.url();
    let app = spawn_app_with(backend, move |s| {
        s.redis_url = Some(Redacted(url));
        s.workers = Some(2);
        adjust(s);
    })
    .await?;
    app.login_admin().await;
    Some(app)
}

/// `name::sqlite` and `name::postgres` run `name(backend)`.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use crate::helpers::Backend;

            #[actix_web::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await;
            }

            #[actix_web::test]
            async fn postgres() {
                super::$name(Backend::Postgres).await;
            }
        }
    };
}

on_both_backends!(a_keys_allowance_is_shared_by_every_instance);
async fn a_keys_allowance_is_shared_by_every_instance(backend: Backend) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(a) = counting_through(backend, &redis, |s| s.keys.rate_limit_per_minute = 4).await
    else {
        return;
    };
    let b = Instance::beside(&a).await;
    assert_eq!(counted(&a).await, "shared (redis)");
    assert_eq!(counted(&b).await, "shared (redis)");
    let (_, key) = a.create_key(json!({ "name": "busy" })).await;

    // Four in all, whichever instance answers: each counts down the same allowance.
    let mut seen = Vec::new();
    for i in 0..4 {
        let response = if i % 2 == 0 {
            me(&a, &key).await
        } else {
            me(&b, &key).await
        };
        seen.push(allowance(&response));
    }
    let ok = |left: &str| (StatusCode::OK, "4".to_owned(), left.to_owned());
    assert_eq!(seen, [ok("3"), ok("2"), ok("1"), ok("0")]);
    // The fifth is refused by either, with the same headers.
    assert_refused_on(&a, &key, "4").await;
    assert_refused_on(&b, &key, "4").await;
    assert_eq!(a.state.rate_limits.refusals(), 1);
    assert_eq!(b.state.rate_limits.refusals(), 1);
    assert!(!a.state.rate_limits.degraded() && !b.state.rate_limits.degraded());

    // Another credential has an allowance of its own; a Redis that lost the script is sent
    // it again within the same check, still counting in Redis.
    let (_, other) = a.create_key(json!({ "name": "other" })).await;
    redis.flush_scripts();
    assert_eq!(allowance(&me(&b, &other).await), ok("3"));
    assert_eq!(allowance(&me(&a, &other).await), ok("2"));
    assert_eq!(
        b.state.rate_limits.fallbacks() + a.state.rate_limits.fallbacks(),
        0
    );

    // Redis holds nothing for good, and no key string.
    let ttls = redis.ttls();
    assert!(!ttls.is_empty());
    for (name, ttl) in &ttls {
        assert!(name.starts_with("gatehouse:rl:"), "{name}");
        assert!(!name.contains(&key) && !name.contains("sk_"), "{name}");
        assert!((0..=60_000).contains(ttl), "{name} expires in {ttl} ms");
    }
    b.stop().await;
    a.stop().await;
}

async fn post_token(on: &impl Address, forwarded_for: &str, client_id: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/oauth/token", on.base()))
        .header("x-forwarded-for", forwarded_for)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", "cs_wrong"),
        ])
        .send()
        .await
        .expect("request")
}

async fn assert_slow_down(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(&response, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "slow_down", "{body}");
}

on_both_backends!(oauth_allowances_per_address_and_per_client_are_shared_by_every_instance);
async fn oauth_allowances_per_address_and_per_client_are_shared_by_every_instance(
    backend: Backend,
) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(a) = counting_through(backend, &redis, |s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.open_limits.oauth_per_address = 3;
        s.open_limits.oauth_per_client = 3;
    })
    .await
    else {
        return;
    };
    let b = Instance::beside(&a).await;

    // Per address: three in all from 203.0.113.7, whichever instance answers.
    let flooder = "203.0.113.7";
    for (i, left) in ["2", "1", "0"].into_iter().enumerate() {
        let client = format!("cli_address_{i}");
        let response = if i % 2 == 0 {
            post_token(&a, flooder, &client).await
        } else {
            post_token(&b, flooder, &client).await
        };
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(header(&response, "x-ratelimit-remaining"), left);
    }
    assert_slow_down(post_token(&b, flooder, "cli_address_3").await).await;
    assert_slow_down(post_token(&a, flooder, "cli_address_4").await).await;
    let neighbour = post_token(&b, "203.0.113.8", "cli_address_5").await;
    assert_eq!(neighbour.status(), StatusCode::UNAUTHORIZED);

    // Per client: three in all naming cli_flooded, from any address, on either instance.
    for i in 0..3 {
        let on_a = i % 2 == 0;
        let address = format!("198.51.100.{i}");
        let response = if on_a {
            post_token(&a, &address, "cli_flooded").await
        } else {
            post_token(&b, &address, "cli_flooded").await
        };
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_slow_down(post_token(&b, "198.51.100.9", "cli_flooded").await).await;
    assert_slow_down(post_token(&a, "198.51.100.10", "cli_flooded").await).await;
    b.stop().await;
    a.stop().await;
}

on_both_backends!(requests_are_counted_locally_while_redis_is_gone_and_in_redis_once_it_is_back);
async fn requests_are_counted_locally_while_redis_is_gone_and_in_redis_once_it_is_back(
    backend: Backend,
) {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let Some(a) = counting_through(backend, &redis, |s| s.keys.rate_limit_per_minute = 3).await
    else {
        return;
    };
    let b = Instance::beside(&a).await;
    let (_, key) = a.create_key(json!({ "name": "busy" })).await;
    assert_eq!(counted(&a).await, "shared (redis)");

    redis.stop();
    // Every request is still answered, by each instance's own count of the same allowance.
    let ok = |left: &str| (StatusCode::OK, "3".to_owned(), left.to_owned());
    for left in ["2", "1", "0"] {
        assert_eq!(allowance(&me(&a, &key).await), ok(left));
    }
    assert_refused_on(&a, &key, "3").await;
    assert_eq!(
        allowance(&me(&b, &key).await),
        ok("2"),
        "the other instance counts apart while Redis is gone"
    );
    for on in [counted(&a).await, counted(&b).await] {
        assert!(on.starts_with("local (redis unreachable: "), "{on}");
    }
    assert!(a.state.rate_limits.degraded() && b.state.rate_limits.degraded());
    assert!(a.state.rate_limits.fallbacks() >= 4);

    redis.resume_service();
    until_shared(&a).await;
    until_shared(&b).await;
    assert!(!a.state.rate_limits.degraded());
    // Counted together again (the new Redis starts from a full allowance).
    assert_eq!(allowance(&me(&b, &key).await), ok("2"));
    assert_eq!(allowance(&me(&a, &key).await), ok("1"));
    assert_eq!(allowance(&me(&b, &key).await), ok("0"));
    assert_refused_on(&a, &key, "3").await;
    b.stop().await;
    a.stop().await;
}

on_both_backends!(a_redis_that_hangs_is_given_up_on_and_taken_back_when_it_answers);
async fn a_redis_that_hangs_is_given_up_on_and_taken_back_when_it_answers(backend: Backend) {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let Some(app) = counting_through(backend, &redis, |s| s.keys.rate_limit_per_minute = 3).await
    else {
        return;
    };
    let (_, key) = app.create_key(json!({ "name": "busy" })).await;
    assert_eq!(allowance(&me(&app, &key).await).2, "2");

    redis.freeze(true);
    let response = me(&app, &key).await;
    assert_eq!(
        allowance(&response),
        (StatusCode::OK, "3".into(), "2".into()),
        "answered by the local count"
    );
    let now = counted(&app).await;
    assert_eq!(now, "local (redis unreachable: no answer within 50 ms)");
    assert!(app.state.rate_limits.degraded());

    redis.freeze(false);
    until_shared(&app).await;
    let (id, fresh) = app.create_key(json!({ "name": "fresh" })).await;
    assert_eq!(allowance(&me(&app, &fresh).await).2, "2");
    assert!(
        redis
            .ttls()
            .iter()
            .any(|(name, _)| name == &format!("gatehouse:rl:key:{id}")),
        "counted in Redis again"
    );
    app.stop().await;
}

on_both_backends!(a_server_whose_redis_is_not_there_yet_starts_and_counts_locally);
async fn a_server_whose_redis_is_not_there_yet_starts_and_counts_locally(backend: Backend) {
    let Some(mut redis) = RedisServer::not_started() else {
        return;
    };
    let Some(app) = counting_through(backend, &redis, |s| s.keys.rate_limit_per_minute = 3).await
    else {
        return;
    };
    let (_, key) = app.create_key(json!({ "name": "busy" })).await;
    assert_eq!(
        allowance(&me(&app, &key).await),
        (StatusCode::OK, "3".into(), "2".into())
    );
    let now = counted(&app).await;
    assert!(now.starts_with("local (redis unreachable: "), "{now}");

    redis.resume_service();
    until_shared(&app).await;
    assert_eq!(
        allowance(&me(&app, &key).await).2,
        "2",
        "now counted in Redis"
    );
    app.stop().await;
}

crate::both_backends!(
    readyz_says_rate_limits_are_local_without_redis,
    |app| async move {
        assert_eq!(counted(app).await, "local");
        assert!(!app.state.rate_limits.degraded());
    }
);

/// actix runs one Tokio runtime per worker: the connection must not belong to any of them.
#[test]
fn one_redis_link_serves_every_runtime_and_outlives_the_one_that_made_it() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let limits = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { SharedLimits::start(&url).unwrap() })
    })
    .join()
    .unwrap();
    assert!(limits.is_up());
    let limits = std::sync::Arc::new(limits);
    let mut remaining = Vec::new();
    for _ in 0..2 {
        let limits = limits.clone();
        let decision = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(limits.check("test:worker", 3))
        })
        .join()
        .unwrap()
        .expect("answered by Redis");
        remaining.push(decision.remaining);
    }
    assert_eq!(remaining, [2, 1]);
}
