//! DPoP proofs for the benchmarks (`bench/exchange_dpop.sh`): a load generator cannot sign, so
//! the proofs are made ahead, one per request, each with its own `jti` and an `iat` a few
//! seconds ahead (valid for the next minute). Signed with aws-lc (the tests make their proofs
//! with an independent implementation); `ALG=ES256` (default), `RS256` or `EdDSA`.
//!
//!   cargo run --release --example dpop_proofs -- KEYFILE METHOD URL COUNT [ACCESS_TOKEN]
//!
//! prints COUNT proofs, one per line. KEYFILE holds the client's key (made on first use), so
//! that the token bound by one run's proof and the later runs' proofs share it.

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gatehouse::jwt::keys::{self, SigningAlg};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: dpop_proofs KEYFILE METHOD URL COUNT [ACCESS_TOKEN]");
        std::process::exit(2);
    }
    gatehouse::jwt::ensure_crypto_provider();
    let (alg, algorithm) = match std::env::var("ALG").as_deref() {
        Ok("RS256") => (SigningAlg::Rs256, Algorithm::RS256),
        Ok("EdDSA") => (SigningAlg::EdDsa, Algorithm::EdDSA),
        Ok("ES256") | Err(_) => (SigningAlg::Es256, Algorithm::ES256),
        Ok(other) => {
            eprintln!("ALG must be ES256, RS256 or EdDSA, not {other}");
            std::process::exit(2);
        }
    };
    let (der_path, jwk_path) = (format!("{}.der", args[1]), format!("{}.jwk", args[1]));
    if !std::path::Path::new(&der_path).exists() {
        let (der, jwk) = keys::generate(alg, "bench").expect("a key");
        std::fs::write(&der_path, der).unwrap();
        std::fs::write(&jwk_path, jwk.to_string()).unwrap();
    }
    let der = std::fs::read(&der_path).unwrap();
    let key = match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(&der),
        SigningAlg::Rs256 => EncodingKey::from_rsa_der(&der),
        SigningAlg::EdDsa => EncodingKey::from_ed_der(&der),
    };
    let mut jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwk_path).unwrap()).unwrap();
    // The proof's key: the public members only.
    jwk.as_object_mut()
        .unwrap()
        .retain(|k, _| ["kty", "crv", "x", "y", "n", "e"].contains(&k.as_str()));
    let mut header = Header::new(algorithm);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(serde_json::from_value(jwk).unwrap());
    let (method, url) = (&args[2], &args[3]);
    let count: usize = args[4].parse().expect("a count");
    let ath = args
        .get(5)
        .map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())));
    // Each proof's `iat` is its signing time plus a few seconds: with a slow algorithm (RS256
    // signs ~1,000 proofs a second per core) the last proofs are made long after the first.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 8
    };
    let run = now();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads);
    let chunks: Vec<Vec<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (header, key, ath) = (&header, &key, &ath);
                scope.spawn(move || {
                    let first = t * per_thread;
                    (first..count.min(first + per_thread))
                        .map(|n| {
                            let iat = now();
                            let mut claims = serde_json::json!({"jti": format!("bench-{run}-{n}"), "htm": method, "htu": url, "iat": iat});
                            if let Some(ath) = ath {
                                claims["ath"] = serde_json::json!(ath);
                            }
                            jsonwebtoken::encode(header, &claims, key).unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for proof in chunks.iter().flatten() {
        writeln!(out, "{proof}").unwrap();
    }
}
