//! JWT access tokens (RFC 9068): the key ring built from the signing keys, the JWKS it
//! publishes, and minting and verifying `at+jwt` tokens. Verification accepts only our
//! algorithm and our key ids: `alg: none`, HMAC algorithms and unknown `kid`s are refused.

pub mod denylist;
pub mod dpop;
pub mod keys;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDateTime;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use self::keys::{KeyError, KeyVault, SigningAlg, SigningKeyRow};

/// The longest an access token exchanged for an API key lives (RFC 8693): revoking the key puts
/// its id on the denylist for that long.
pub const EXCHANGED_TOKEN_MAX_LIFETIME: chrono::Duration = chrono::Duration::hours(1);

/// The media type RFC 9068 puts in `typ`.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Make aws-lc-rs jsonwebtoken's crypto backend (idempotent).
pub fn ensure_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub client_id: String,
    pub scope: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The workspace the authorization was made in, with the user's role there when the
    /// token was issued (a user's grants; a private app's own tokens name its workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<crate::workspaces::roles::WorkspaceClaim>,
    /// RFC 8693: a token exchanged for an API key says which, and what bounds it inherits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<KeyClaim>,
    /// RFC 8693 §4.1: the party acting for `sub` (delegation), its own `act` nested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// RFC 9449: the token is bound to the key with this thumbprint (`{"jkt": …}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 `cnf` as DPoP uses it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    pub jkt: String,
}

/// What a token exchanged for an API key carries of the key: its id (revoking the key revokes
/// the token), its mode (`livemode: false` for a test key), and the bounds a JWT can carry —
/// the key's IP allowlist and rate limit, which `/v1` applies to the token as to the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyClaim {
    pub id: String,
    pub livemode: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<i64>,
}

/// A key claim as `/v1` applies it, parsed once per verified token.
#[derive(Debug)]
pub struct TokenKey {
    pub id: String,
    pub test_mode: bool,
    pub nets: Vec<ipnet::IpNet>,
    pub rate_limit_per_minute: Option<i64>,
}

impl TokenKey {
    fn of(claim: &KeyClaim) -> TokenKey {
        let nets = claim
            .allowed_ips
            .iter()
            .filter_map(|raw| {
                raw.parse::<ipnet::IpNet>()
                    .ok()
                    .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
            })
            .collect::<Vec<_>>();
        TokenKey {
            id: claim.id.clone(),
            test_mode: !claim.livemode,
            // An allowlist none of whose entries parses allows nothing (never everything).
            nets: if nets.is_empty() && !claim.allowed_ips.is_empty() {
                vec![ipnet::IpNet::from(std::net::IpAddr::from([0u8, 0, 0, 0])).trunc()]
            } else {
                nets
            },
            rate_limit_per_minute: claim.rate_limit_per_minute,
        }
    }
}

/// A token that passed verification, with its scopes parsed once.
#[derive(Debug)]
pub struct VerifiedToken {
    pub claims: AccessClaims,
    pub scopes: Arc<crate::scopes::ScopeSet>,
    /// The `workspace` claim's id, shared by every request the cached token serves.
    pub workspace_id: Option<Arc<str>>,
    /// The `workspace` claim names the user's personal workspace.
    pub workspace_personal: bool,
    /// The `key` claim, parsed.
    pub key: Option<Arc<TokenKey>>,
    /// DPoP: the thumbprint of the key the token is bound to (`cnf.jkt`).
    pub jkt: Option<Arc<str>>,
}

impl VerifiedToken {
    pub fn new(claims: AccessClaims) -> VerifiedToken {
        let scopes = Arc::new(crate::scopes::ScopeSet::parse(&claims.scope).unwrap_or_default());
        let workspace_id = claims.workspace.as_ref().map(|w| Arc::from(w.id.as_str()));
        let key = claims.key.as_ref().map(|k| Arc::new(TokenKey::of(k)));
        let jkt = claims.cnf.as_ref().map(|c| Arc::from(c.jkt.as_str()));
        let workspace_personal = claims
            .workspace
            .as_ref()
            .is_some_and(crate::workspaces::roles::WorkspaceClaim::is_personal);
        VerifiedToken {
            claims,
            scopes,
            workspace_id,
            workspace_personal,
            key,
            jkt,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("no signing key is active")]
    NoSigningKey,
    #[error("signing failed")]
    Sign,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's type is not at+jwt")]
    WrongType,
    #[error("the token's algorithm is not accepted")]
    WrongAlgorithm,
    #[error("the token was signed by a key this server does not know")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
}

impl JwtError {
    /// The outcome of a refused check, as the metrics label it.
    pub fn outcome(&self) -> &'static str {
        match self {
            JwtError::Malformed | JwtError::WrongType | JwtError::WrongAlgorithm => "malformed",
            JwtError::UnknownKey => "unknown_key",
            JwtError::Invalid(why) if why.contains("Expired") => "expired",
            JwtError::Invalid(_) => "invalid",
            JwtError::NoSigningKey | JwtError::Sign => "error",
        }
    }
}

fn jose_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::ES256 => "ES256",
        Algorithm::RS256 => "RS256",
        Algorithm::EdDSA => "EdDSA",
        _ => "other",
    }
}

/// The keys this instance signs and verifies with, and the JWKS it publishes.
pub struct KeyRing {
    signing: Option<(String, Algorithm, EncodingKey)>,
    verifying: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: Arc<str>,
}

impl KeyRing {
    /// Build from the published keys: the newest key whose activation time has come and that
    /// is not retired signs; every published key verifies.
    pub fn from_rows(
        rows: &[SigningKeyRow],
        vault: &KeyVault,
        now: NaiveDateTime,
    ) -> Result<KeyRing, KeyError> {
        ensure_crypto_provider();
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut signing = None;
        for row in rows {
            let bad = || KeyError::Decrypt(row.id.clone());
            let jwk: serde_json::Value =
                serde_json::from_str(&row.public_jwk).map_err(|_| bad())?;
            let alg = SigningAlg::parse(&row.alg).ok_or_else(bad)?;
            let member = |name: &str| jwk[name].as_str().unwrap_or_default().to_owned();
            let decoding = match alg {
                SigningAlg::Es256 => DecodingKey::from_ec_components(&member("x"), &member("y")),
                SigningAlg::Rs256 => DecodingKey::from_rsa_components(&member("n"), &member("e")),
                SigningAlg::EdDsa => DecodingKey::from_ed_components(&member("x")),
            }
            .map_err(|_| bad())?;
            verifying.insert(row.id.clone(), (alg.jwt_algorithm(), decoding));
            jwks.push(jwk);
            let signs_now = row.activates_at <= now && row.retired_at.is_none_or(|r| r > now);
            if signs_now {
                let der = vault.open(&row.id, &row.private_key_encrypted)?;
                let encoding = match alg {
                    SigningAlg::Es256 => EncodingKey::from_ec_der(&der),
                    SigningAlg::Rs256 => EncodingKey::from_rsa_der(&der),
                    SigningAlg::EdDsa => EncodingKey::from_ed_der(&der),
                };
                signing = Some((row.id.clone(), alg.jwt_algorithm(), encoding));
            }
        }
        let jwks = serde_json::json!({ "keys": jwks }).to_string();
        Ok(KeyRing {
            signing,
            verifying,
            jwks: Arc::from(jwks),
        })
    }

    /// `{"keys": [...]}` as served at `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Arc<str> {
        self.jwks.clone()
    }

    pub fn signing_kid(&self) -> Option<&str> {
        self.signing.as_ref().map(|(kid, _, _)| kid.as_str())
    }

    /// The algorithms of every published key, as JOSE names them, the signing key's first.
    pub fn published_algs(&self) -> Vec<&'static str> {
        let mut algs = vec![self.signing_alg()];
        algs.retain(|a| *a != "none");
        for (alg, _) in self.verifying.values() {
            let name = jose_name(*alg);
            if !algs.contains(&name) {
                algs.push(name);
            }
        }
        algs
    }

    /// The algorithm new tokens are signed with, as JOSE names it.
    pub fn signing_alg(&self) -> &'static str {
        self.signing
            .as_ref()
            .map_or("none", |(_, alg, _)| jose_name(*alg))
    }

    pub fn sign(&self, claims: &AccessClaims) -> Result<String, JwtError> {
        self.sign_as(claims, ACCESS_TOKEN_TYP)
    }

    /// Sign any claims with the current key, under the media type `typ` (`JWT` for ID tokens,
    /// `logout+jwt` for logout tokens).
    pub fn sign_as<T: Serialize>(&self, claims: &T, typ: &str) -> Result<String, JwtError> {
        let (kid, alg, key) = self.signing.as_ref().ok_or(JwtError::NoSigningKey)?;
        let mut header = Header::new(*alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, key).map_err(|_| JwtError::Sign)
    }

    /// Verify signature, `typ`, `iss`, `aud`, `exp` and `nbf` (30 s leeway).
    pub fn verify(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<AccessClaims, JwtError> {
        self.verify_with(token, issuer, &[audience], true)
    }

    /// As [`KeyRing::verify`] but an expired token passes (revocation: it is ours, and dead).
    pub fn verify_ignoring_expiry(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[&str],
    ) -> Result<AccessClaims, JwtError> {
        self.verify_with(token, issuer, audiences, false)
    }

    /// Verify for any of `audiences` (introspection answers for every resource server).
    pub fn verify_for_any(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[&str],
    ) -> Result<AccessClaims, JwtError> {
        self.verify_with(token, issuer, audiences, true)
    }

    fn verify_with(
        &self,
        token: &str,
        issuer: &str,
        audiences: &[&str],
        check_expiry: bool,
    ) -> Result<AccessClaims, JwtError> {
        let typ_ok = |typ: Option<&str>| {
            typ.is_some_and(|t| {
                t.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
                    || t.eq_ignore_ascii_case("application/at+jwt")
            })
        };
        self.decode_ours(token, typ_ok, issuer, audiences, check_expiry)
    }

    /// An ID token this server issued to `client_id` (signature, `typ`, `iss`, `aud`), expired
    /// or not: what `id_token_hint` presents.
    pub fn verify_id_token_hint<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        issuer: &str,
        client_id: &str,
    ) -> Result<T, JwtError> {
        let typ_ok = |typ: Option<&str>| typ.is_none_or(|t| t.eq_ignore_ascii_case("JWT"));
        self.decode_ours(token, typ_ok, issuer, &[client_id], false)
    }

    fn decode_ours<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ_ok: impl Fn(Option<&str>) -> bool,
        issuer: &str,
        audiences: &[&str],
        check_expiry: bool,
    ) -> Result<T, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        if !typ_ok(header.typ.as_deref()) {
            return Err(JwtError::WrongType);
        }
        // The key decides the algorithm: a token naming another one (none, HS256 keyed with
        // our public key, RS256 against an EC key…) is refused before any verification.
        let (alg, key) = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(JwtError::UnknownKey)?;
        if header.alg != *alg {
            return Err(JwtError::WrongAlgorithm);
        }
        let mut validation = Validation::new(*alg);
        validation.leeway = 30;
        validation.validate_nbf = true;
        validation.validate_exp = check_expiry;
        validation.set_issuer(&[issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub", "iat"]);
        jsonwebtoken::decode::<T>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| JwtError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn ring() -> (KeyRing, NaiveDateTime) {
        ring_of(SigningAlg::Es256, "sig_test")
    }

    fn ring_of(alg: SigningAlg, kid: &str) -> (KeyRing, NaiveDateTime) {
        let (row, vault, now) = row_of(alg, kid);
        (KeyRing::from_rows(&[row], &vault, now).unwrap(), now)
    }

    fn row_of(alg: SigningAlg, kid: &str) -> (SigningKeyRow, KeyVault, NaiveDateTime) {
        let vault = KeyVault::new(b"a server secret that is long enough...");
        let now = chrono::Utc::now().naive_utc();
        let (der, jwk) = keys::generate(alg, kid).unwrap();
        let row = SigningKeyRow {
            id: kid.into(),
            alg: alg.as_str().into(),
            private_key_encrypted: vault.seal(kid, &der).unwrap(),
            public_jwk: jwk.to_string(),
            created_at: now,
            activates_at: now,
            retired_at: None,
            expires_at: None,
        };
        (row, vault, now)
    }

    #[test]
    fn every_signing_algorithm_round_trips_and_verifies_from_its_jwk_alone() {
        for alg in SigningAlg::ALL {
            let (ring, now) = ring_of(alg, "sig_alg");
            let token = ring.sign(&claims(now)).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg.jwt_algorithm(), "{alg}");
            // What a resource server does: build the key from the published JWK only.
            let jwks: serde_json::Value = serde_json::from_str(&ring.jwks()).unwrap();
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(jwks["keys"][0].clone()).unwrap();
            let key = DecodingKey::from_jwk(&jwk).unwrap();
            let mut validation = Validation::new(alg.jwt_algorithm());
            validation.set_audience(&["https://api.test"]);
            let decoded = jsonwebtoken::decode::<AccessClaims>(&token, &key, &validation);
            assert_eq!(decoded.unwrap().claims, claims(now), "{alg}");
            assert_eq!(
                ring.verify(&token, "https://auth.test", "https://api.test")
                    .unwrap(),
                claims(now)
            );
        }
    }

    #[test]
    fn a_token_naming_another_algorithm_than_its_key_is_refused() {
        // Keys of every kind under one ring; each token re-labelled with another's algorithm.
        let (es, vault, now) = row_of(SigningAlg::Es256, "sig_es");
        let (rs, _, _) = row_of(SigningAlg::Rs256, "sig_rs");
        let (ed, _, _) = row_of(SigningAlg::EdDsa, "sig_ed");
        let (rs, ed) = (
            SigningKeyRow {
                private_key_encrypted: vault.seal("sig_rs", &[]).unwrap(),
                activates_at: now + chrono::Duration::hours(1),
                ..rs
            },
            SigningKeyRow {
                private_key_encrypted: vault.seal("sig_ed", &[]).unwrap(),
                activates_at: now + chrono::Duration::hours(1),
                ..ed
            },
        );
        let ring = KeyRing::from_rows(&[es, rs, ed], &vault, now).unwrap();
        assert_eq!(ring.signing_kid(), Some("sig_es"));
        let token = ring.sign(&claims(now)).unwrap();
        let signature = token.rsplit('.').next().unwrap();
        for (alg, kid) in [
            ("RS256", "sig_es"),
            ("EdDSA", "sig_es"),
            ("ES256", "sig_rs"),
            ("ES256", "sig_ed"),
        ] {
            let forged = forge(
                serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid}),
                &claims(now),
                signature,
            );
            assert_eq!(
                ring.verify(&forged, "https://auth.test", "https://api.test"),
                Err(JwtError::WrongAlgorithm),
                "{alg} with {kid}"
            );
        }
    }

    fn claims(now: NaiveDateTime) -> AccessClaims {
        let t = now.and_utc().timestamp();
        AccessClaims {
            workspace: None,
            iss: "https://auth.test".into(),
            sub: "usr_1".into(),
            aud: "https://api.test".into(),
            client_id: "cli_1".into(),
            scope: "read:users".into(),
            iat: t,
            exp: t + 900,
            jti: "jti_1".into(),
            auth_time: Some(t),
            key: None,
            act: None,
            cnf: None,
        }
    }

    fn forge(header: serde_json::Value, claims: &AccessClaims, signature: &str) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let c = URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).unwrap());
        format!("{h}.{c}.{signature}")
    }

    #[test]
    fn a_minted_token_verifies_with_its_claims() {
        let (ring, now) = ring();
        let token = ring.sign(&claims(now)).unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some("sig_test"));
        assert_eq!(
            ring.verify(&token, "https://auth.test", "https://api.test")
                .unwrap(),
            claims(now)
        );
    }

    #[test]
    fn confused_or_foreign_tokens_are_refused() {
        let (ring, now) = ring();
        let c = claims(now);
        let none = forge(
            serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": "sig_test"}),
            &c,
            "",
        );
        assert!(
            ring.verify(&none, "https://auth.test", "https://api.test")
                .is_err()
        );
        let hs256 = forge(
            serde_json::json!({"alg": "HS256", "typ": "at+jwt", "kid": "sig_test"}),
            &c,
            "c2ln",
        );
        assert_eq!(
            ring.verify(&hs256, "https://auth.test", "https://api.test"),
            Err(JwtError::WrongAlgorithm)
        );
        let token = ring.sign(&c).unwrap();
        assert!(matches!(
            ring.verify(&token, "https://other.test", "https://api.test"),
            Err(JwtError::Invalid(_))
        ));
        assert!(matches!(
            ring.verify(&token, "https://auth.test", "https://other.test"),
            Err(JwtError::Invalid(_))
        ));
        let (other_ring, _) = self::ring();
        assert!(
            matches!(
                other_ring.verify(&token, "https://auth.test", "https://api.test"),
                Err(JwtError::Invalid(_))
            ),
            "same kid, other key"
        );
        let expired = AccessClaims {
            exp: c.iat - 120,
            ..c.clone()
        };
        let token = ring.sign(&expired).unwrap();
        assert!(matches!(
            ring.verify(&token, "https://auth.test", "https://api.test"),
            Err(JwtError::Invalid(_))
        ));
        let mut parts: Vec<String> = ring
            .sign(&c)
            .unwrap()
            .split('.')
            .map(str::to_owned)
            .collect();
        parts[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"JWT","kid":"sig_test"}"#);
        assert_eq!(
            ring.verify(&parts.join("."), "https://auth.test", "https://api.test"),
            Err(JwtError::WrongType)
        );
        parts[0] = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","typ":"at+jwt","kid":"sig_unknown"}"#);
        assert_eq!(
            ring.verify(&parts.join("."), "https://auth.test", "https://api.test"),
            Err(JwtError::UnknownKey)
        );
        assert_eq!(
            ring.verify("garbage", "https://auth.test", "https://api.test"),
            Err(JwtError::Malformed)
        );
    }
}
