//! DPoP proofs for the benchmarks (`bench/exchange_dpop.sh`): a load generator cannot sign, so
//! the proofs are made ahead, one per request, each with its own `jti` and an `iat` a few
//! seconds ahead (valid for the next minute). ES256 with aws-lc (as fast as a client's own
//! signing; the tests make their proofs with an independent implementation).
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
    let (der_path, jwk_path) = (format!("{}.der", args[1]), format!("{}.jwk", args[1]));
    if !std::path::Path::new(&der_path).exists() {
        let (der, jwk) = keys::generate(SigningAlg::Es256, "bench").expect("a key");
        std::fs::write(&der_path, der).unwrap();
        std::fs::write(&jwk_path, jwk.to_string()).unwrap();
    }
    let key = EncodingKey::from_ec_der(&std::fs::read(&der_path).unwrap());
    let mut jwk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&jwk_path).unwrap()).unwrap();
    // The proof's key: the public members only.
    jwk.as_object_mut()
        .unwrap()
        .retain(|k, _| ["kty", "crv", "x", "y"].contains(&k.as_str()));
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some("dpop+jwt".into());
    header.jwk = Some(serde_json::from_value(jwk).unwrap());
    let (method, url) = (&args[2], &args[3]);
    let count: usize = args[4].parse().expect("a count");
    let ath = args
        .get(5)
        .map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())));
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 8;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for n in 0..count {
        let mut claims = serde_json::json!({"jti": format!("bench-{iat}-{n}"), "htm": method, "htu": url, "iat": iat});
        if let Some(ath) = &ath {
            claims["ath"] = serde_json::json!(ath);
        }
        writeln!(
            out,
            "{}",
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        )
        .unwrap();
    }
}
