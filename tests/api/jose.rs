//! JOSE for the tests, written here on RustCrypto (p256, ed25519-dalek) — not the server's
//! aws-lc — so that a proof or an assertion the server accepts was made by an independent
//! implementation: keys, their public JWKs and RFC 7638 thumbprints, and compact JWS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn random_32() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(gatehouse::secrets::random_base62(32).as_bytes());
    // Hash the text: uniform bytes, and a valid P-256 scalar with overwhelming odds.
    Sha256::digest(bytes).into()
}

/// A signing key of one of the kinds the server accepts.
pub(crate) enum TestKey {
    Es256(p256::ecdsa::SigningKey),
    EdDsa(ed25519_dalek::SigningKey),
}

impl TestKey {
    pub(crate) fn es256() -> TestKey {
        TestKey::Es256(p256::ecdsa::SigningKey::from_slice(&random_32()).expect("a P-256 key"))
    }

    pub(crate) fn eddsa() -> TestKey {
        TestKey::EdDsa(ed25519_dalek::SigningKey::from_bytes(&random_32()))
    }

    pub(crate) fn alg(&self) -> &'static str {
        match self {
            TestKey::Es256(_) => "ES256",
            TestKey::EdDsa(_) => "EdDSA",
        }
    }

    /// The public JWK (the members RFC 7638 hashes, in its order).
    pub(crate) fn public_jwk(&self) -> Value {
        match self {
            TestKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                json!({
                    "crv": "P-256",
                    "kty": "EC",
                    "x": b64(point.x().unwrap()),
                    "y": b64(point.y().unwrap()),
                })
            }
            TestKey::EdDsa(key) => json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": b64(key.verifying_key().as_bytes()),
            }),
        }
    }

    /// RFC 7638 thumbprint (SHA-256, base64url).
    pub(crate) fn thumbprint(&self) -> String {
        // `json!` keeps keys sorted, which is the lexicographic order RFC 7638 asks for.
        let canonical = serde_json::to_string(&self.public_jwk()).unwrap();
        b64(&Sha256::digest(canonical.as_bytes()))
    }

    fn sign(&self, input: &[u8]) -> Vec<u8> {
        match self {
            TestKey::Es256(key) => {
                use p256::ecdsa::signature::Signer;
                let signature: p256::ecdsa::Signature = key.sign(input);
                signature.to_bytes().to_vec()
            }
            TestKey::EdDsa(key) => {
                use ed25519_dalek::Signer;
                key.sign(input).to_bytes().to_vec()
            }
        }
    }

    /// A compact JWS of `claims` under `header` (its `alg` is this key's unless given).
    pub(crate) fn jwt(&self, mut header: Value, claims: &Value) -> String {
        if header.get("alg").is_none() {
            header["alg"] = json!(self.alg());
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }
}
