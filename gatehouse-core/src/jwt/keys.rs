//! Signing keys for access tokens: generated here (ES256 on P-256 by default, RS256 with
//! 2048-bit RSA, or EdDSA with Ed25519), private parts encrypted at
//! rest with AES-256-GCM under a key derived from the server secret (the key id is the
//! associated data, so a ciphertext cannot be moved to another row), public parts published as
//! a JWKS. Every instance sharing the database signs with the same keys.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use crate::db::schema::signing_keys;
use crate::db::{DbConn, DbError};
use crate::secrets::{derive_key, random_base62};

pub const ES256: &str = "ES256";

/// The algorithms Gatehouse signs access tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SigningAlg {
    #[default]
    Es256,
    Rs256,
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa];

    /// The JOSE name (`alg` header and JWK member).
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => ES256,
            SigningAlg::Rs256 => "RS256",
            SigningAlg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<SigningAlg> {
        SigningAlg::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    pub fn jwt_algorithm(self) -> jsonwebtoken::Algorithm {
        match self {
            SigningAlg::Es256 => jsonwebtoken::Algorithm::ES256,
            SigningAlg::Rs256 => jsonwebtoken::Algorithm::RS256,
            SigningAlg::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub id: String,
    pub alg: String,
    pub private_key_encrypted: String,
    pub public_jwk: String,
    pub created_at: NaiveDateTime,
    pub activates_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
    pub expires_at: Option<NaiveDateTime>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed")]
    Generate,
    #[error(
        "the signing key {0} cannot be decrypted: is GATEHOUSE_SECRET the one it was created with?"
    )]
    Decrypt(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for KeyError {
    fn from(e: diesel::result::Error) -> Self {
        KeyError::Db(e.into())
    }
}

/// The AES-256-GCM key that protects private signing keys at rest.
pub struct KeyVault(LessSafeKey);

impl KeyVault {
    pub fn new(server_secret: &[u8]) -> KeyVault {
        let key = derive_key(server_secret, "signing-key-encryption");
        KeyVault(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &key).expect("32-byte AES key"),
        ))
    }

    /// base64(nonce || ciphertext || tag), bound to `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Generate)?;
        let mut in_out = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut in_out,
            )
            .map_err(|_| KeyError::Generate)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&in_out);
        Ok(STANDARD.encode(out))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let fail = || KeyError::Decrypt(kid.to_owned());
        let bytes = STANDARD.decode(sealed).map_err(|_| fail())?;
        if bytes.len() <= NONCE_LEN {
            return Err(fail());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut in_out = sealed.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

/// A new key of `alg`: the private key as the signer loads it (PKCS#8 for ES256 and EdDSA,
/// PKCS#1 `RSAPrivateKey` for RS256) and its public JWK.
pub fn generate(alg: SigningAlg, kid: &str) -> Result<(Vec<u8>, serde_json::Value), KeyError> {
    match alg {
        SigningAlg::Es256 => generate_es256(kid),
        SigningAlg::Rs256 => generate_rs256(kid),
        SigningAlg::EdDsa => generate_ed25519(kid),
    }
}

/// A new P-256 key: its PKCS#8 document and its public JWK.
pub fn generate_es256(kid: &str) -> Result<(Vec<u8>, serde_json::Value), KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| KeyError::Generate)?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| KeyError::Generate)?;
    // Uncompressed point: 0x04 || X (32 bytes) || Y (32 bytes).
    let point = pair.public_key().as_ref();
    if point.len() != 65 {
        return Err(KeyError::Generate);
    }
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        "kid": kid,
        "use": "sig",
        "alg": ES256,
    });
    Ok((pkcs8.as_ref().to_vec(), jwk))
}

/// A new 2048-bit RSA key: its PKCS#1 `RSAPrivateKey` and its public JWK (`n`, `e`).
pub fn generate_rs256(kid: &str) -> Result<(Vec<u8>, serde_json::Value), KeyError> {
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generate)?;
    let pkcs8 =
        AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).map_err(|_| KeyError::Generate)?;
    let pkcs1 = der::pkcs8_private_key(pkcs8.as_ref()).ok_or(KeyError::Generate)?;
    let (n, e) = der::rsa_public_numbers(pkcs1).ok_or(KeyError::Generate)?;
    let jwk = json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(n),
        "e": URL_SAFE_NO_PAD.encode(e),
        "kid": kid,
        "use": "sig",
        "alg": "RS256",
    });
    Ok((pkcs1.to_vec(), jwk))
}

/// A new Ed25519 key: its PKCS#8 document and its public JWK (`OKP`, RFC 8037).
pub fn generate_ed25519(kid: &str) -> Result<(Vec<u8>, serde_json::Value), KeyError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| KeyError::Generate)?;
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| KeyError::Generate)?;
    let jwk = json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        "kid": kid,
        "use": "sig",
        "alg": "EdDSA",
    });
    Ok((pkcs8.as_ref().to_vec(), jwk))
}

/// Just enough DER to take a PKCS#1 key out of its PKCS#8 wrapper and read `n` and `e`.
mod der {
    /// One tag-length-value: (tag, contents, rest).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 3 || rest.len() < count {
                return None;
            }
            let len = rest[..count]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[count..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    const SEQUENCE: u8 = 0x30;
    const INTEGER: u8 = 0x02;
    const OCTET_STRING: u8 = 0x04;

    /// PrivateKeyInfo ::= SEQUENCE { version, algorithm, privateKey OCTET STRING, … }
    pub fn pkcs8_private_key(pkcs8: &[u8]) -> Option<&[u8]> {
        let (SEQUENCE, info, _) = tlv(pkcs8)? else {
            return None;
        };
        let (INTEGER, _, rest) = tlv(info)? else {
            return None;
        };
        let (SEQUENCE, _, rest) = tlv(rest)? else {
            return None;
        };
        let (OCTET_STRING, key, _) = tlv(rest)? else {
            return None;
        };
        Some(key)
    }

    /// RSAPrivateKey ::= SEQUENCE { version, modulus, publicExponent, … }: (n, e) without
    /// leading zero bytes.
    pub fn rsa_public_numbers(pkcs1: &[u8]) -> Option<(&[u8], &[u8])> {
        let (SEQUENCE, key, _) = tlv(pkcs1)? else {
            return None;
        };
        let (INTEGER, _, rest) = tlv(key)? else {
            return None;
        };
        let (INTEGER, n, rest) = tlv(rest)? else {
            return None;
        };
        let (INTEGER, e, _) = tlv(rest)? else {
            return None;
        };
        let trim = |v: &[u8]| -> usize { v.iter().take_while(|b| **b == 0).count() };
        Some((&n[trim(n)..], &e[trim(e)..]))
    }
}

/// Create a key that signs from `activates_at` on.
pub fn create(
    conn: &mut DbConn,
    vault: &KeyVault,
    alg: SigningAlg,
    now: NaiveDateTime,
    activates_at: NaiveDateTime,
) -> Result<SigningKeyRow, KeyError> {
    let kid = format!("sig_{}", random_base62(16));
    let (pkcs8, jwk) = generate(alg, &kid)?;
    let sealed = vault.seal(&kid, &pkcs8)?;
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::id.eq(&kid),
            signing_keys::alg.eq(alg.as_str()),
            signing_keys::private_key_encrypted.eq(&sealed),
            signing_keys::public_jwk.eq(jwk.to_string()),
            signing_keys::created_at.eq(now),
            signing_keys::activates_at.eq(activates_at),
        ))
        .execute(conn)
        .map_err(DbError::from)?;
    Ok(signing_keys::table
        .find(&kid)
        .select(SigningKeyRow::as_select())
        .first(conn)
        .map_err(DbError::from)?)
}

/// On first start (or when every key was retired): a key that signs at once.
pub fn ensure_one(
    conn: &mut DbConn,
    vault: &KeyVault,
    alg: SigningAlg,
    now: NaiveDateTime,
) -> Result<(), KeyError> {
    let live: i64 = signing_keys::table
        .filter(signing_keys::retired_at.is_null())
        .count()
        .get_result(conn)
        .map_err(DbError::from)?;
    if live == 0 {
        create(conn, vault, alg, now, now)?;
    }
    Ok(())
}

/// Rotate: a new key is published now and signs from `now + delay`; the keys it replaces stop
/// signing then and leave the JWKS once every token they signed has expired.
pub fn rotate(
    conn: &mut DbConn,
    vault: &KeyVault,
    alg: SigningAlg,
    now: NaiveDateTime,
    delay: Duration,
    token_lifetime: Duration,
) -> Result<SigningKeyRow, KeyError> {
    crate::db::write_transaction(conn, |conn| {
        let switch_at = now + delay;
        diesel::update(signing_keys::table.filter(signing_keys::retired_at.is_null()))
            .set((
                signing_keys::retired_at.eq(switch_at),
                signing_keys::expires_at.eq(switch_at + token_lifetime + Duration::minutes(1)),
            ))
            .execute(conn)
            .map_err(DbError::from)?;
        create(conn, vault, alg, now, switch_at)
    })
}

/// Keys still published (not past `expires_at`), oldest first.
pub fn published(conn: &mut DbConn, now: NaiveDateTime) -> Result<Vec<SigningKeyRow>, DbError> {
    Ok(signing_keys::table
        .filter(
            signing_keys::expires_at
                .is_null()
                .or(signing_keys::expires_at.gt(now)),
        )
        .order((signing_keys::activates_at.asc(), signing_keys::id.asc()))
        .select(SigningKeyRow::as_select())
        .load(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_secret_and_kid() {
        let vault = KeyVault::new(b"server secret one, long enough.......");
        let sealed = vault.seal("sig_a", b"private key bytes").unwrap();
        assert_eq!(vault.open("sig_a", &sealed).unwrap(), b"private key bytes");
        assert!(vault.open("sig_b", &sealed).is_err(), "bound to its kid");
        let other = KeyVault::new(b"server secret two, long enough.......");
        assert!(matches!(
            other.open("sig_a", &sealed),
            Err(KeyError::Decrypt(_))
        ));
        assert!(vault.open("sig_a", "not base64!").is_err());
    }

    #[test]
    fn generated_keys_have_a_p256_public_jwk() {
        let (pkcs8, jwk) = generate_es256("sig_x").unwrap();
        assert!(!pkcs8.is_empty());
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["kid"], "sig_x");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
        assert!(jwk.get("d").is_none(), "no private part");
    }
}
