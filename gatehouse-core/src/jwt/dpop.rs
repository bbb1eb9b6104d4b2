//! DPoP proofs (RFC 9449) at Gatehouse: the proof itself is verified by
//! `gatehouse_verify::dpop` — the same code every resource server using that crate runs — and
//! this module adds the server's own `nonce`: stateless, an HMAC of the five-minute window, so
//! every instance accepts every instance's.

pub use gatehouse_verify::dpop::{
    ALGS, HeaderCache, PRIVATE_MEMBERS, PROOF_TYP, Proof, ProofError, ReplayCache,
    access_token_hash, jwk_fits,
};

use crate::secrets::Pepper;

/// Nonces change every five minutes; the previous one is still accepted.
const NONCE_WINDOW: i64 = 300;

/// What the request a proof must match looks like.
pub struct Expected<'a> {
    pub method: &'a str,
    /// The request's absolute URL, without query or fragment.
    pub url: &'a str,
    /// At a resource: the access token presented (`ath` must be its hash).
    pub access_token: Option<&'a str>,
    /// Whether the proof must carry a current server nonce.
    pub nonce_required: bool,
    pub now: i64,
}

/// Verify a proof for the request `expected` describes, then the server's nonce where one is
/// required. Replay is the caller's to check (with the returned `jti`).
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    pepper: &Pepper,
    headers: &HeaderCache,
) -> Result<Proof, ProofError> {
    let passed = gatehouse_verify::dpop::verify(
        proof,
        &gatehouse_verify::dpop::Expected {
            method: expected.method,
            url: expected.url,
            access_token: expected.access_token,
            now: expected.now,
        },
        headers,
    )?;
    if expected.nonce_required
        && !passed
            .nonce
            .as_deref()
            .is_some_and(|n| nonce_valid(pepper, n, expected.now))
    {
        return Err(ProofError::NonceRequired);
    }
    Ok(passed)
}

fn nonce_of(pepper: &Pepper, window: i64) -> String {
    pepper.digest(&["dpop-nonce", &window.to_string()])[..32].to_owned()
}

/// The nonce to hand out now.
pub fn nonce(pepper: &Pepper, now: i64) -> String {
    nonce_of(pepper, now.div_euclid(NONCE_WINDOW))
}

/// A nonce of this window or the previous one.
pub fn nonce_valid(pepper: &Pepper, presented: &str, now: i64) -> bool {
    let window = now.div_euclid(NONCE_WINDOW);
    [window, window - 1].iter().any(|w| {
        crate::secrets::constant_time_eq(nonce_of(pepper, *w).as_bytes(), presented.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::keys::{self, SigningAlg};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::Algorithm;
    use jsonwebtoken::{EncodingKey, Header};

    const URL: &str = "https://gatehouse.example/v1/users/me";

    /// A proof signed with a new key of `alg` (aws-lc signs; the API tests sign theirs with an
    /// independent implementation).
    fn proof(alg: SigningAlg, jti: &str) -> String {
        crate::jwt::ensure_crypto_provider();
        let (der, mut jwk) = keys::generate(alg, "client").unwrap();
        let (key, algorithm) = match alg {
            SigningAlg::Es256 => (EncodingKey::from_ec_der(&der), Algorithm::ES256),
            SigningAlg::Rs256 => (EncodingKey::from_rsa_der(&der), Algorithm::RS256),
            SigningAlg::EdDsa => (EncodingKey::from_ed_der(&der), Algorithm::EdDSA),
        };
        jwk.as_object_mut()
            .unwrap()
            .retain(|k, _| ["kty", "crv", "x", "y", "n", "e"].contains(&k.as_str()));
        let mut header = Header::new(algorithm);
        header.typ = Some(PROOF_TYP.into());
        header.jwk = Some(serde_json::from_value(jwk).unwrap());
        let claims = serde_json::json!({"jti": jti, "htm": "GET", "htu": URL, "iat": 1_000});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    }

    fn expected() -> Expected<'static> {
        Expected {
            method: "GET",
            url: URL,
            access_token: None,
            nonce_required: false,
            now: 1_000,
        }
    }

    #[test]
    fn proofs_of_each_algorithm_verify_and_a_changed_byte_does_not() {
        let pepper = Pepper::derive(b"test secret test secret test secret", "dpop");
        let headers = HeaderCache::default();
        for alg in SigningAlg::ALL {
            let good = proof(alg, "one");
            // Twice: the second time the header (and its parsed key) comes from the cache.
            for _ in 0..2 {
                let passed = verify(&good, &expected(), &pepper, &headers).unwrap();
                assert_eq!(passed.jti, "one");
                assert_eq!(passed.jkt.len(), 43);
            }
            // Another claim under the same header and signature: refused.
            let (head, rest) = good.split_once('.').unwrap();
            let (_, signature) = rest.split_once('.').unwrap();
            let forged_claims = URL_SAFE_NO_PAD
                .encode(br#"{"jti":"two","htm":"GET","htu":"https://gatehouse.example/v1/users/me","iat":1000}"#);
            let forged = format!("{head}.{forged_claims}.{signature}");
            assert_eq!(
                verify(&forged, &expected(), &pepper, &headers),
                Err(ProofError::Invalid(
                    "The DPoP proof's signature does not verify"
                )),
                "{alg:?}"
            );
            // A signature that is not base64url at all: refused, not a panic.
            let garbled = format!("{head}.{forged_claims}.!!");
            assert!(verify(&garbled, &expected(), &pepper, &headers).is_err());
        }
    }
}
