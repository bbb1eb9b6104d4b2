//! How long a warm verification takes (a timed loop; `bench/verify.sh` starts a Gatehouse,
//! mints the credentials and runs this in release).
//!   GATEHOUSE_URL=… TOKEN=<access token> KEY=<API key> INTROSPECTION_KEY=<key with introspect>
//!   cargo run --release -p gatehouse-verify --example timing

use std::hint::black_box;
use std::time::{Duration, Instant};

use gatehouse_verify::{Config, Request, Verifier};

const ROUNDS: u32 = 1_000_000;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("set {name}"));
    let issuer = var("GATEHOUSE_URL");
    let audience = std::env::var("AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let (token, key) = (var("TOKEN"), var("KEY"));
    let verifier = Verifier::new(Config {
        introspection_key: Some(var("INTROSPECTION_KEY")),
        key_cache_ttl: Duration::from_secs(600),
        ..Config::new(&issuer, &audience)
    })
    .expect("a verifier");
    let request = Request {
        method: "GET",
        path: "/orders/7",
        ..Request::default()
    };
    // The first of each fetches the JWKS / asks introspection; the loops measure the rest.
    verifier
        .verify_jwt(&token)
        .await
        .expect("the token verifies");
    verifier
        .verify_api_key(&key, &request)
        .await
        .expect("the key verifies");
    for (name, jwt) in [("cached JWT", true), ("API key, warm cache", false)] {
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            for _ in 0..ROUNDS {
                if jwt {
                    black_box(verifier.verify_jwt(black_box(&token)).await.unwrap());
                } else {
                    black_box(
                        verifier
                            .verify_api_key(black_box(&key), &request)
                            .await
                            .unwrap(),
                    );
                }
            }
            best = best.min(started.elapsed());
        }
        println!(
            "{name}: {:.3} µs per verification (best of 3 loops of {ROUNDS})",
            best.as_secs_f64() * 1e6 / f64::from(ROUNDS)
        );
    }
}
