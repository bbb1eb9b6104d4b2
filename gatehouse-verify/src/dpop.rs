//! DPoP proofs (RFC 9449): a client proves, request by request, that it holds the private key
//! its tokens are bound to (`cnf.jkt`, the key's RFC 7638 thumbprint). A proof is a JWT of
//! type `dpop+jwt` carrying its public key (`jwk`): ES256, RS256 or EdDSA (never `none` or
//! HMAC, never private key material), `htm` and `htu` naming this request, an `iat` within the
//! last minute, a `jti` seen once ([`ReplayCache`]) and `ath` (the hash of the access token) at
//! resource calls. Gatehouse verifies proofs with this very module, at its token endpoint and
//! its API, and so does every resource server using this crate: the two cannot drift apart.
//! (A server `nonce`, when one is required, is the issuer's to check: [`Proof::nonce`].)

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::signature::{self as lc, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, ThumbprintHash};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub const PROOF_TYP: &str = "dpop+jwt";
/// What `dpop_signing_alg_values_supported` says.
pub const ALGS: &[&str] = &["ES256", "RS256", "EdDSA"];
/// How old a proof may be, and how far ahead of our clock.
const IAT_PAST: i64 = 60;
const IAT_AHEAD: i64 = 10;
/// The most proofs remembered for replay detection on one instance.
const REPLAY_CAPACITY: usize = 500_000;

/// A proof that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// The RFC 7638 SHA-256 thumbprint of the proof's key.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    /// The proof's `nonce` claim, for an issuer that requires its own.
    pub nonce: Option<String>,
}

/// Why a proof was refused (`NonceRequired`: the issuer's nonce is missing or stale, and the
/// client retries with the one sent in `DPoP-Nonce`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    Invalid(&'static str),
    NonceRequired,
}

impl ProofError {
    pub fn message(&self) -> &'static str {
        match self {
            ProofError::Invalid(why) => why,
            ProofError::NonceRequired => "Send the DPoP-Nonce this server gave in the proof",
        }
    }
}

/// What the request a proof must match looks like.
pub struct Expected<'a> {
    pub method: &'a str,
    /// The request's absolute URL, without query or fragment.
    pub url: &'a str,
    /// At a resource: the access token presented (`ath` must be its hash).
    pub access_token: Option<&'a str>,
    /// Unix seconds.
    pub now: i64,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<i64>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// Whether `jwk` is a public key for `alg` (its type, its curve, and its `alg` if it names
/// one): the key decides the algorithm.
pub fn jwk_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm};
    let kind = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        // 2048 bits at least: 256 bytes of modulus, base64url without padding.
        (AlgorithmParameters::RSA(p), Algorithm::RS256) => p.n.trim_end_matches('=').len() >= 342,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    let named = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::EdDSA) => alg == Algorithm::EdDSA,
        Some(_) => false,
    };
    kind && named
}

/// The members of a JWK that only a private key has.
pub const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "k"];

/// `htu` as compared: without query and fragment (RFC 9449 §4.3).
fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// `ath`: base64url(SHA-256(access token)).
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// What a proof's header says, checked once per distinct header: a client signs every proof
/// with the same key, so its header (`typ`, `alg`, `jwk`) is the same bytes each time. The key
/// is kept parsed for its algorithm: parsing it anew (an RSA modulus's Montgomery form, an
/// EC point's curve check) would be paid by every request.
struct CheckedHeader {
    key: ParsedPublicKey,
    jkt: String,
}

/// DER of an RSA public key (RFC 8017 `RSAPublicKey`: the SEQUENCE of `n` and `e`).
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn length(len: usize, out: &mut Vec<u8>) {
        match len {
            0..=127 => out.push(len as u8),
            128..=255 => out.extend([0x81, len as u8]),
            _ => out.extend([0x82, (len >> 8) as u8, len as u8]),
        }
    }
    fn integer(value: &[u8], out: &mut Vec<u8>) {
        let start = value.iter().position(|b| *b != 0).unwrap_or(value.len());
        let value = &value[start..];
        // A leading zero keeps a value whose top bit is set positive.
        let pad = value.first().is_none_or(|b| b & 0x80 != 0);
        out.push(0x02);
        length(value.len() + usize::from(pad), out);
        if pad {
            out.push(0);
        }
        out.extend_from_slice(value);
    }
    let mut body = Vec::with_capacity(n.len() + e.len() + 12);
    integer(n, &mut body);
    integer(e, &mut body);
    let mut der = Vec::with_capacity(body.len() + 4);
    der.push(0x30);
    length(body.len(), &mut der);
    der.extend(body);
    der
}

/// The proof's public key, parsed for `alg` (which `jwk_fits` matched to it).
fn parsed_key(jwk: &Jwk, alg: Algorithm) -> Option<ParsedPublicKey> {
    let bytes = |member: &str| URL_SAFE_NO_PAD.decode(member.trim_end_matches('=')).ok();
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => {
            let (x, y) = (bytes(&p.x)?, bytes(&p.y)?);
            if x.len() != 32 || y.len() != 32 {
                return None;
            }
            // SEC 1 uncompressed point: 0x04 || X || Y.
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            ParsedPublicKey::new(&lc::ECDSA_P256_SHA256_FIXED, point).ok()
        }
        (AlgorithmParameters::RSA(p), Algorithm::RS256) => {
            let der = rsa_public_key_der(&bytes(&p.n)?, &bytes(&p.e)?);
            ParsedPublicKey::new(&lc::RSA_PKCS1_2048_8192_SHA256, der).ok()
        }
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            let x = bytes(&p.x)?;
            if x.len() != 32 {
                return None;
            }
            ParsedPublicKey::new(&lc::ED25519, x).ok()
        }
        _ => None,
    }
}

#[derive(Deserialize)]
struct RawHeader {
    typ: Option<String>,
    alg: Option<String>,
    jwk: Option<serde_json::Value>,
}

fn check_header(segment: &str) -> Result<CheckedHeader, ProofError> {
    let invalid = ProofError::Invalid;
    let raw: RawHeader = URL_SAFE_NO_PAD
        .decode(segment)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(invalid("The DPoP proof is not a well-formed JWT"))?;
    if !raw
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYP))
    {
        return Err(invalid("The DPoP proof's typ must be dpop+jwt"));
    }
    let alg = match raw.alg.as_deref() {
        Some("ES256") => Algorithm::ES256,
        Some("RS256") => Algorithm::RS256,
        Some("EdDSA") => Algorithm::EdDSA,
        _ => {
            return Err(invalid(
                "The DPoP proof must be signed with ES256, RS256 or EdDSA",
            ));
        }
    };
    let raw_jwk = raw.jwk.ok_or(invalid("The DPoP proof carries no jwk"))?;
    if PRIVATE_MEMBERS.iter().any(|m| raw_jwk.get(m).is_some()) {
        return Err(invalid("The DPoP proof's jwk holds private key material"));
    }
    let jwk: Jwk = serde_json::from_value(raw_jwk)
        .map_err(|_| invalid("The DPoP proof's jwk cannot be used"))?;
    if !jwk_fits(&jwk, alg) {
        return Err(invalid("The DPoP proof's jwk is not a key for its alg"));
    }
    let key = parsed_key(&jwk, alg).ok_or(invalid("The DPoP proof's jwk cannot be used"))?;
    let jkt = jwk
        .thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| invalid("The DPoP proof's jwk cannot be used"))?;
    Ok(CheckedHeader { key, jkt })
}

/// Proof headers already checked, by their exact bytes (bounded: emptied when full).
#[derive(Default)]
pub struct HeaderCache {
    checked: std::sync::RwLock<HashMap<String, std::sync::Arc<CheckedHeader>>>,
}

const HEADER_CACHE_CAPACITY: usize = 10_000;

impl HeaderCache {
    fn get_or_check(&self, segment: &str) -> Result<std::sync::Arc<CheckedHeader>, ProofError> {
        if let Some(found) = self
            .checked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(segment)
        {
            return Ok(found.clone());
        }
        let checked = std::sync::Arc::new(check_header(segment)?);
        let mut map = self.checked.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= HEADER_CACHE_CAPACITY {
            map.clear();
        }
        map.insert(segment.to_owned(), checked.clone());
        Ok(checked)
    }
}

/// Verify a proof for the request `expected` describes. Replay is the caller's to check (with
/// the returned `jti`, [`ReplayCache`]), where it keeps them. `headers` remembers the headers
/// (keys) checked.
pub fn verify(
    proof: &str,
    expected: &Expected<'_>,
    headers: &HeaderCache,
) -> Result<Proof, ProofError> {
    let invalid = ProofError::Invalid;
    if proof.len() > 8 * 1024 {
        return Err(invalid("The DPoP proof is too large"));
    }
    let mut parts = proof.split('.');
    let (Some(head), Some(body), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("The DPoP proof is not a well-formed JWT"));
    };
    let header = headers.get_or_check(head)?;
    let message = &proof[..head.len() + 1 + body.len()];
    let signed = URL_SAFE_NO_PAD.decode(signature).is_ok_and(|signature| {
        header
            .key
            .verify_sig(message.as_bytes(), &signature)
            .is_ok()
    });
    if !signed {
        return Err(invalid("The DPoP proof's signature does not verify"));
    }
    let claims: ProofClaims = URL_SAFE_NO_PAD
        .decode(body)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(invalid("The DPoP proof's claims cannot be read"))?;
    let jti = claims
        .jti
        .filter(|j| !j.is_empty() && j.len() <= 200)
        .ok_or(invalid("The DPoP proof has no jti"))?;
    if claims.htm.as_deref() != Some(expected.method) {
        return Err(invalid("The DPoP proof's htm is not this request's method"));
    }
    if claims.htu.as_deref().map(without_query) != Some(without_query(expected.url)) {
        return Err(invalid("The DPoP proof's htu is not this request's URL"));
    }
    let iat = claims.iat.ok_or(invalid("The DPoP proof has no iat"))?;
    if iat < expected.now - IAT_PAST || iat > expected.now + IAT_AHEAD {
        return Err(invalid(
            "The DPoP proof's iat is not within the last minute",
        ));
    }
    match (expected.access_token, claims.ath.as_deref()) {
        (Some(token), Some(ath)) if ath == access_token_hash(token) => {}
        (Some(_), Some(_)) => {
            return Err(invalid(
                "The DPoP proof's ath is not the hash of this access token",
            ));
        }
        (Some(_), None) => return Err(invalid("The DPoP proof has no ath")),
        (None, _) => {}
    }
    Ok(Proof {
        jkt: header.jkt.clone(),
        jti,
        iat,
        nonce: claims.nonce,
    })
}

/// Proofs seen lately by this instance (`jkt` + `jti`), until they could no longer pass the
/// `iat` check: a replay within that minute is refused. Bounded: when full of live entries,
/// new proofs are refused rather than forgotten (a flood cannot make room for a replay).
#[derive(Default)]
pub struct ReplayCache {
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayCache {
    /// Remember a proof; `false` when it was seen before (or there is no room).
    pub fn first_use(&self, proof: &Proof, now: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= REPLAY_CAPACITY {
            seen.retain(|_, until| *until > now);
            if seen.len() >= REPLAY_CAPACITY {
                return false;
            }
        }
        let key = format!("{}.{}", proof.jkt, proof.jti);
        match seen.get(&key) {
            Some(until) if *until > now => false,
            _ => {
                seen.insert(key, proof.iat + IAT_PAST + IAT_AHEAD);
                true
            }
        }
    }

    /// Forget what expired (housekeeping).
    pub fn prune(&self, now: i64) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_public_keys_are_encoded_as_der_integers() {
        // The top bit set: a zero byte keeps the integer positive; leading zeros are dropped.
        assert_eq!(
            rsa_public_key_der(&[0x00, 0x80, 0x01], &[0x01, 0x00, 0x01]),
            vec![
                0x30, 0x0a, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x03, 0x01, 0x00, 0x01
            ]
        );
        // A 2048-bit modulus needs a two-byte length.
        let der = rsa_public_key_der(&[0xc0; 256], &[0x01, 0x00, 0x01]);
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..8], &[0x02, 0x82, 0x01, 0x01]);
    }

    #[test]
    fn a_replayed_proof_is_refused_until_it_could_no_longer_pass() {
        let cache = ReplayCache::default();
        let proof = Proof {
            jkt: "k".into(),
            jti: "j".into(),
            iat: 1_000,
            nonce: None,
        };
        assert!(cache.first_use(&proof, 1_000));
        assert!(!cache.first_use(&proof, 1_030));
        assert!(cache.first_use(&proof, 1_000 + IAT_PAST + IAT_AHEAD + 1));
    }
}
