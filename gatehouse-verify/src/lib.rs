//! Verify Gatehouse credentials in any Rust service (a resource server).
//!
//! - **Access tokens** (RFC 9068 JWTs) offline, against the issuer's JWKS: fetched once and
//!   cached as its `Cache-Control` says (between 1 minute and 1 day), fetched again when a token
//!   names an unknown `kid` (at most every 10 s), the algorithm pinned per key, `typ` `at+jwt`,
//!   `iss`, `aud`, `exp`/`nbf` with a leeway. A verified token is remembered until it expires,
//!   so repeated requests cost a map lookup.
//! - **API keys** (`sk_live_…`, `rk_test_…`) through Gatehouse's introspection, cached for a
//!   few seconds (answers "active" and "inactive" alike). The key's shape and checksum are
//!   checked first, here: garbage never leaves the process. The key's IP allowlist, referrer
//!   and endpoint lists are applied to your request.
//! - **DPoP-bound tokens** (RFC 9449, `cnf.jkt`): only with `Authorization: DPoP` and a proof
//!   made with the bound key for this method and URL, carrying the token's hash (`ath`), fresh
//!   and never replayed on this process — a stolen bound token is worth nothing as `Bearer`.
//!   The proof is verified by [`dpop`], the module Gatehouse itself verifies proofs with.
//! - **Tokens exchanged for an API key** keep the key's limits: its IP allowlist (the `key`
//!   claim) applies to your request, and its mode (`key.livemode`) says test or live.
//! - With the `actix` feature (on by default): the [`actix::Authenticated`] extractor; with
//!   `tower`, a layer.
//!
//! ```no_run
//! use gatehouse_verify::{Config, Request, Verifier};
//!
//! # async fn run() -> Result<(), gatehouse_verify::Error> {
//! let verifier = Verifier::new(Config {
//!     introspection_key: Some(std::env::var("GATEHOUSE_INTROSPECTION_KEY").unwrap()),
//!     ..Config::new("https://auth.example.com", "https://api.example.com")
//! })?;
//! let presented = "sk_live_…"; // from `Authorization: Bearer …`
//! let request = Request { method: "GET", path: "/orders/7", ..Request::default() };
//! let credential = verifier.verify(presented, &request).await?;
//! if credential.has_scope("read:orders") {
//!     // serve
//! }
//! # Ok(()) }
//! ```

#[cfg(feature = "actix")]
pub mod actix;
pub mod dpop;
pub mod key_format;
pub mod restrictions;
#[cfg(feature = "tower")]
pub mod tower;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipnet::IpNet;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use restrictions::Restrictions;

/// Where to find Gatehouse and what to accept.
#[derive(Debug, Clone)]
pub struct Config {
    /// Gatehouse's issuer URL (`iss` of its tokens).
    pub issuer: String,
    /// This resource server's identifier: tokens must name it in `aud`.
    pub audience: String,
    /// Default: `{issuer}/.well-known/jwks.json`.
    pub jwks_url: String,
    /// Default: `{issuer}/oauth/introspect`.
    pub introspection_url: String,
    /// A Gatehouse API key holding the `introspect` scope; without it API keys are refused.
    pub introspection_key: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub leeway: Duration,
    /// How long an introspection answer is reused (default 5 s): the bound on how late a
    /// revoked key is refused here.
    pub key_cache_ttl: Duration,
    /// How long to wait at least between two JWKS fetches for unknown key ids (default 10 s).
    pub jwks_refetch_interval: Duration,
    /// Timeout of each call to Gatehouse (default 3 s).
    pub timeout: Duration,
    /// Scopes this resource server understands, for its RFC 9728 metadata (empty: left out).
    pub scopes_supported: Vec<String>,
}

impl Config {
    pub fn new(issuer: &str, audience: &str) -> Config {
        let issuer = issuer.trim_end_matches('/').to_owned();
        Config {
            jwks_url: format!("{issuer}/.well-known/jwks.json"),
            introspection_url: format!("{issuer}/oauth/introspect"),
            issuer,
            audience: audience.to_owned(),
            introspection_key: None,
            leeway: Duration::from_secs(30),
            key_cache_ttl: Duration::from_secs(5),
            jwks_refetch_interval: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            scopes_supported: Vec::new(),
        }
    }
}

/// Why a credential was refused. `status()` and `code()` map it to an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No credential was presented.
    Missing,
    /// Not shaped like a Gatehouse credential (a key with a wrong checksum is one).
    Malformed(String),
    /// Not valid: bad signature, wrong issuer, audience or type, expired, revoked, unknown.
    Invalid(String),
    /// A DPoP-bound token without a valid proof of its key for this request (RFC 9449 §7), or
    /// the `DPoP` scheme with a token that is not bound.
    InvalidDpopProof(String),
    /// Valid, but not from this address / origin / for this endpoint.
    IpNotAllowed,
    ReferrerNotAllowed,
    EndpointNotAllowed,
    /// Gatehouse could not be asked (network, configuration).
    Unavailable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Missing => f.write_str("no credential"),
            Error::Malformed(m) => write!(f, "malformed credential: {m}"),
            Error::Invalid(m) => write!(f, "invalid credential: {m}"),
            Error::InvalidDpopProof(m) => write!(f, "invalid DPoP proof: {m}"),
            Error::IpNotAllowed => f.write_str("the key may not be used from this address"),
            Error::ReferrerNotAllowed => f.write_str("the key may not be used from this origin"),
            Error::EndpointNotAllowed => f.write_str("the key may not call this endpoint"),
            Error::Unavailable(m) => write!(f, "Gatehouse unavailable: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Missing
            | Error::Malformed(_)
            | Error::Invalid(_)
            | Error::InvalidDpopProof(_) => 401,
            Error::IpNotAllowed | Error::ReferrerNotAllowed | Error::EndpointNotAllowed => 403,
            Error::Unavailable(_) => 503,
        }
    }

    /// Gatehouse's error code for it (the seeds' envelope).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Missing => "AUTH_001",
            Error::Invalid(_) => "AUTH_002",
            Error::Malformed(_) => "AUTH_003",
            Error::IpNotAllowed => "AUTH_005",
            Error::ReferrerNotAllowed => "AUTH_008",
            Error::EndpointNotAllowed => "AUTH_009",
            Error::InvalidDpopProof(_) => "AUTH_011",
            Error::Unavailable(_) => "SERVER_002",
        }
    }

    /// The refusal's body, in Gatehouse's envelope.
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "success": false,
            "error": { "code": self.code(), "message": self.to_string() },
        })
    }

    /// The RFC 6750 §3 `WWW-Authenticate` challenge for a refusal about the credential (`None`
    /// for the others), naming the RFC 9728 metadata when `resource_metadata` is not empty.
    pub fn challenge(&self, resource_metadata: &str) -> Option<String> {
        if let Error::InvalidDpopProof(_) = self {
            // RFC 9449 §7.1: the DPoP scheme, with the algorithms a proof may use.
            return Some(format!(
                "DPoP error=\"invalid_dpop_proof\", algs=\"{}\"",
                dpop::ALGS.join(" ")
            ));
        }
        let error = match self {
            Error::Missing => None,
            Error::Malformed(_) | Error::Invalid(_) => Some("error=\"invalid_token\""),
            _ => return None,
        };
        let metadata = (!resource_metadata.is_empty())
            .then(|| format!("resource_metadata=\"{resource_metadata}\""));
        let params: Vec<String> = metadata
            .into_iter()
            .chain(error.map(str::to_owned))
            .collect();
        Some(if params.is_empty() {
            "Bearer".to_owned()
        } else {
            format!("Bearer {}", params.join(", "))
        })
    }
}

/// The credential a request presents: `Authorization: Bearer …`, `ApiKey …` or `DPoP …`, else
/// the `X-API-Key` header.
pub fn presented(authorization: Option<&str>, x_api_key: Option<&str>) -> Option<String> {
    presented_with_scheme(authorization, x_api_key).map(|(credential, _)| credential)
}

/// As [`presented`], and whether it came with the `DPoP` scheme (RFC 9449 §7.1).
pub fn presented_with_scheme(
    authorization: Option<&str>,
    x_api_key: Option<&str>,
) -> Option<(String, bool)> {
    if let Some(value) = authorization {
        let (scheme, rest) = value.split_once(' ')?;
        let dpop = scheme.eq_ignore_ascii_case("dpop");
        return (dpop
            || scheme.eq_ignore_ascii_case("bearer")
            || scheme.eq_ignore_ascii_case("apikey"))
        .then(|| (rest.trim().to_owned(), dpop));
    }
    x_api_key.map(|v| (v.trim().to_owned(), false))
}

/// What the service's request shows of itself (for a key's allowlist and lists).
#[derive(Debug, Clone, Copy, Default)]
pub struct Request<'a> {
    pub ip: Option<IpAddr>,
    /// The raw `Origin` and `Referer` headers.
    pub origin: Option<&'a str>,
    pub referer: Option<&'a str>,
    pub method: &'a str,
    /// The raw path (percent-encoded, without the query).
    pub path: &'a str,
    /// The credential came as `Authorization: DPoP …` ([`presented_with_scheme`]).
    pub dpop_scheme: bool,
    /// The `DPoP` header: the proof of a DPoP-bound token's key (one header; `None` if absent).
    pub dpop_proof: Option<&'a str>,
    /// The request's absolute URL as the client addressed it (`https://api.example.com/orders`,
    /// no query): what a DPoP proof's `htu` must name. The actix extractor and the tower layer
    /// build it from [`Config::audience`]'s origin and the path.
    pub url: Option<&'a str>,
}

/// A verified access token's claims.
#[derive(Debug, Clone)]
pub struct Claims {
    /// The user (`usr_…`), or the app itself for client_credentials (`cli_…`).
    pub subject: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub jti: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// Test mode: a token exchanged for a test key (`key.livemode` is `false`).
    pub test: bool,
    /// A token exchanged for an API key: the key's IP allowlist, which applies to every
    /// request the token makes (empty: any address).
    pub key_allowed_ips: Vec<IpNet>,
    /// DPoP (RFC 9449): the thumbprint of the key the token is bound to (`cnf.jkt`).
    pub jkt: Option<String>,
    /// The workspace the authorization acts in, with the user's role there when the token was
    /// issued (the `workspace` claim; absent for an app acting as itself).
    pub workspace: Option<Workspace>,
    /// Every claim as signed.
    pub raw: serde_json::Map<String, serde_json::Value>,
}

/// A workspace membership, as Gatehouse's tokens and introspection describe it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Workspace {
    /// `ws_…`
    pub id: String,
    pub slug: String,
    /// `owner`, `admin` or `member`.
    pub role: String,
}

impl Workspace {
    /// The workspace's admins and owners (who manage members and their keys there).
    pub fn administers(&self) -> bool {
        self.role == "owner" || self.role == "admin"
    }
}

/// An active API key as Gatehouse described it.
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub key_id: String,
    /// The owner (`usr_…`).
    pub subject: String,
    pub username: Option<String>,
    /// A restricted key's scopes; `None` for a full-access key (its owner's rights).
    pub scopes: Option<Vec<String>>,
    pub test: bool,
    pub expires_at: Option<i64>,
    pub allowed_ips: Vec<IpNet>,
    pub restrictions: Restrictions,
    /// The workspace the key acts in, with its owner's role there.
    pub workspace: Option<Workspace>,
}

/// What a request presented, verified.
#[derive(Debug, Clone)]
pub enum Credential {
    AccessToken(Arc<Claims>),
    ApiKey(Arc<KeyInfo>),
}

impl Credential {
    /// The user (or app) it acts for.
    pub fn subject(&self) -> &str {
        match self {
            Credential::AccessToken(c) => &c.subject,
            Credential::ApiKey(k) => &k.subject,
        }
    }

    /// The workspace it acts in.
    pub fn workspace(&self) -> Option<&Workspace> {
        match self {
            Credential::AccessToken(c) => c.workspace.as_ref(),
            Credential::ApiKey(k) => k.workspace.as_ref(),
        }
    }

    /// Whether it holds `scope` (a full-access key holds every scope its owner has; ask
    /// Gatehouse's `/v1` for the owner's role when that matters).
    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Credential::AccessToken(c) => c.scopes.iter().any(|s| s == scope),
            Credential::ApiKey(k) => k
                .scopes
                .as_ref()
                .is_none_or(|s| s.iter().any(|x| x == scope)),
        }
    }

    pub fn is_test(&self) -> bool {
        match self {
            Credential::AccessToken(c) => c.test,
            Credential::ApiKey(k) => k.test,
        }
    }
}

/// The JWKS as last fetched: keys by `kid`, each with the one algorithm it may verify.
struct KeySet {
    keys: HashMap<String, (Algorithm, DecodingKey)>,
    fresh_until: Instant,
    fetched_at: Option<Instant>,
}

/// Most entries of each cache; past this a cache starts over.
const MAX_CACHED: usize = 10_000;

type KeyAnswer = (Instant, Result<Arc<KeyInfo>, Error>);

/// Verifies Gatehouse credentials; share one per process (it is `Send + Sync`).
pub struct Verifier {
    config: Config,
    http: reqwest::Client,
    jwks: tokio::sync::Mutex<KeySet>,
    tokens: Mutex<HashMap<String, Arc<Claims>>>,
    keys: Mutex<HashMap<[u8; 32], KeyAnswer>>,
    dpop_headers: dpop::HeaderCache,
    dpop_replay: dpop::ReplayCache,
}

/// The IP allowlist of an exchanged token's `key` claim. Entries that do not parse allow
/// nothing (an allowlist none of whose entries parses allows no address, never every one).
fn key_allowlist(key: Option<&serde_json::Value>) -> Vec<IpNet> {
    let listed: Vec<&str> = key
        .and_then(|k| k.get("allowed_ips"))
        .and_then(|a| a.as_array())
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    let nets: Vec<IpNet> = listed.iter().filter_map(|n| n.parse().ok()).collect();
    if nets.is_empty() && !listed.is_empty() {
        // 0.0.0.0/32: no request comes from it.
        vec![IpNet::from(IpAddr::from([0u8, 0, 0, 0]))]
    } else {
        nets
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The algorithm a JWK may verify: its `alg`, else what its key type implies.
fn pinned_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if let Some(alg) = jwk.common.key_algorithm {
        return match alg {
            KeyAlgorithm::ES256 => Some(Algorithm::ES256),
            KeyAlgorithm::ES384 => Some(Algorithm::ES384),
            KeyAlgorithm::RS256 => Some(Algorithm::RS256),
            KeyAlgorithm::RS384 => Some(Algorithm::RS384),
            KeyAlgorithm::RS512 => Some(Algorithm::RS512),
            KeyAlgorithm::PS256 => Some(Algorithm::PS256),
            KeyAlgorithm::EdDSA => Some(Algorithm::EdDSA),
            _ => None,
        };
    }
    match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
            Some(Algorithm::ES256)
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => {
            Some(Algorithm::ES384)
        }
        AlgorithmParameters::RSA(_) => Some(Algorithm::RS256),
        AlgorithmParameters::OctetKeyPair(_) => Some(Algorithm::EdDSA),
        _ => None,
    }
}

/// `max-age` of a `Cache-Control` header, clamped to [1 minute, 1 day]; 5 minutes without.
fn jwks_lifetime(cache_control: Option<&str>) -> Duration {
    let max_age = cache_control.and_then(|v| {
        v.split(',')
            .filter_map(|d| d.trim().strip_prefix("max-age="))
            .find_map(|n| n.trim().parse::<u64>().ok())
    });
    Duration::from_secs(max_age.unwrap_or(300).clamp(60, 86_400))
}

#[derive(Deserialize)]
struct Introspected {
    active: bool,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    restricted: Option<bool>,
    #[serde(default)]
    livemode: Option<bool>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
    #[serde(default)]
    allowed_referrers: Option<Vec<String>>,
    #[serde(default)]
    allowed_endpoints: Option<Vec<String>>,
    #[serde(default)]
    workspace: Option<Workspace>,
}

impl Verifier {
    pub fn new(config: Config) -> Result<Verifier, Error> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        Ok(Verifier {
            config,
            http,
            jwks: tokio::sync::Mutex::new(KeySet {
                keys: HashMap::new(),
                fresh_until: Instant::now(),
                fetched_at: None,
            }),
            tokens: Mutex::new(HashMap::new()),
            keys: Mutex::new(HashMap::new()),
            dpop_headers: dpop::HeaderCache::default(),
            dpop_replay: dpop::ReplayCache::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where this resource server's RFC 9728 metadata lives: `/.well-known/oauth-protected-resource`
    /// inserted between the host and the path of its identifier (the audience), §3.1.
    pub fn resource_metadata_url(&self) -> String {
        let resource = self.config.audience.trim_end_matches('/');
        let (origin, path) = match resource.split_once("://") {
            Some((scheme, rest)) => match rest.find('/') {
                Some(at) => (format!("{scheme}://{}", &rest[..at]), &rest[at..]),
                None => (resource.to_owned(), ""),
            },
            None => (resource.to_owned(), ""),
        };
        format!("{origin}/.well-known/oauth-protected-resource{path}")
    }

    /// The path part of [`Verifier::resource_metadata_url`], to route it.
    pub fn resource_metadata_path(&self) -> String {
        let url = self.resource_metadata_url();
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        after_scheme
            .find('/')
            .map_or_else(|| "/".to_owned(), |at| after_scheme[at..].to_owned())
    }

    /// RFC 9728 protected-resource metadata: this resource, Gatehouse as its authorization
    /// server, bearer tokens in the header only.
    pub fn resource_metadata(&self) -> serde_json::Value {
        let mut metadata = serde_json::json!({
            "resource": self.config.audience,
            "authorization_servers": [self.config.issuer],
            "bearer_methods_supported": ["header"],
        });
        if !self.config.scopes_supported.is_empty() {
            metadata["scopes_supported"] = serde_json::json!(self.config.scopes_supported);
        }
        metadata
    }

    /// Verify whatever was presented: a JWT offline, an API key through introspection.
    pub async fn verify(
        &self,
        presented: &str,
        request: &Request<'_>,
    ) -> Result<Credential, Error> {
        let presented = presented.trim();
        if presented.is_empty() {
            return Err(Error::Missing);
        }
        if presented.matches('.').count() == 2 {
            let claims = self.verify_jwt(presented).await?;
            self.bound_checks(presented, &claims, request)?;
            Ok(Credential::AccessToken(claims))
        } else {
            if request.dpop_scheme {
                return Err(Error::InvalidDpopProof(
                    "only an access token is sent with the DPoP scheme".into(),
                ));
            }
            self.verify_api_key(presented, request)
                .await
                .map(Credential::ApiKey)
        }
    }

    /// What a verified token's holder must show on each request, as Gatehouse's API asks it:
    /// the proof of a DPoP-bound token's key (and nothing bound sent as `Bearer`), and the
    /// address allowed by the key an exchanged token came from.
    pub fn bound_checks(
        &self,
        token: &str,
        claims: &Claims,
        request: &Request<'_>,
    ) -> Result<(), Error> {
        match (&claims.jkt, request.dpop_scheme) {
            (None, false) => {}
            (None, true) => {
                return Err(Error::InvalidDpopProof(
                    "this access token is not bound to a DPoP key: send it as Bearer".into(),
                ));
            }
            (Some(_), false) => {
                return Err(Error::InvalidDpopProof(
                    "this access token is bound to a DPoP key: send it as Authorization: DPoP with a proof"
                        .into(),
                ));
            }
            (Some(jkt), true) => self.dpop_proven(token, jkt, request)?,
        }
        if !claims.key_allowed_ips.is_empty()
            && !restrictions::ip_allowed(&claims.key_allowed_ips, request.ip)
        {
            return Err(Error::IpNotAllowed);
        }
        Ok(())
    }

    /// RFC 9449 §7: a proof made with the bound key, for this method and URL, with `ath` the
    /// token's hash, fresh, and not seen before by this verifier.
    fn dpop_proven(&self, token: &str, jkt: &str, request: &Request<'_>) -> Result<(), Error> {
        let refused = |why: &str| Error::InvalidDpopProof(why.to_owned());
        let proof = request
            .dpop_proof
            .ok_or_else(|| refused("a DPoP-bound token needs a DPoP proof header"))?;
        let url = request
            .url
            .ok_or_else(|| refused("the request's URL is not known here: set Request::url"))?;
        let now = now_unix();
        let expected = dpop::Expected {
            method: request.method,
            url,
            access_token: Some(token),
            now,
        };
        let proof =
            dpop::verify(proof, &expected, &self.dpop_headers).map_err(|e| refused(e.message()))?;
        if proof.jkt != jkt {
            return Err(refused(
                "the DPoP proof was made with another key than the token is bound to",
            ));
        }
        if !self.dpop_replay.first_use(&proof, now) {
            return Err(refused(
                "this DPoP proof was used before: make a new one for each request",
            ));
        }
        Ok(())
    }

    /// The absolute URL of a request to this resource server at `path`: the audience's origin
    /// (scheme and host) with the path, as a DPoP proof's `htu` names it.
    pub fn request_url(&self, path: &str) -> String {
        let audience = self.config.audience.trim_end_matches('/');
        let origin = match audience.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.split('/').next().unwrap_or(rest);
                format!("{scheme}://{host}")
            }
            None => audience.to_owned(),
        };
        format!("{origin}{path}")
    }

    /// A token verified before and not yet expired, without any other work.
    pub fn cached_jwt(&self, token: &str) -> Option<Arc<Claims>> {
        let tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        tokens
            .get(token)
            .filter(|c| c.expires_at + self.config.leeway.as_secs() as i64 > now_unix())
            .cloned()
    }

    /// Verify an access token against the JWKS: the token itself (signature, issuer, audience,
    /// type, time). It does **not** check what its holder must show on each request — the
    /// proof of a DPoP-bound token's key, the address an exchanged token's key allows: to
    /// authenticate a request use [`Verifier::verify`] (or call [`Verifier::bound_checks`]).
    pub async fn verify_jwt(&self, token: &str) -> Result<Arc<Claims>, Error> {
        if let Some(claims) = self.cached_jwt(token) {
            return Ok(claims);
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| Error::Malformed(format!("not a JWT: {e}")))?;
        let typ = header
            .typ
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if typ != "at+jwt" && typ != "application/at+jwt" {
            return Err(Error::Invalid(
                "not an access token (typ is not at+jwt)".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| Error::Invalid("the token names no signing key".into()))?;
        let (alg, key) = self.signing_key(&kid).await?;
        if header.alg != alg {
            return Err(Error::Invalid(format!(
                "the key {kid} verifies {alg:?}, not {:?}",
                header.alg
            )));
        }
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?;
        let raw = data.claims;
        let text = |name: &str| {
            raw.get(name)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        };
        let number = |name: &str| raw.get(name).and_then(|v| v.as_i64()).unwrap_or_default();
        let claims = Arc::new(Claims {
            subject: text("sub"),
            client_id: text("client_id"),
            scopes: text("scope")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            jti: text("jti"),
            issued_at: number("iat"),
            expires_at: number("exp"),
            test: raw
                .get("key")
                .and_then(|k| k.get("livemode"))
                .and_then(|v| v.as_bool())
                == Some(false),
            key_allowed_ips: key_allowlist(raw.get("key")),
            jkt: raw
                .get("cnf")
                .and_then(|c| c.get("jkt"))
                .and_then(|j| j.as_str())
                .map(str::to_owned),
            workspace: raw
                .get("workspace")
                .and_then(|w| serde_json::from_value(w.clone()).ok()),
            raw,
        });
        let mut tokens = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if tokens.len() >= MAX_CACHED {
            let now = now_unix();
            tokens.retain(|_, c| c.expires_at > now);
            if tokens.len() >= MAX_CACHED {
                tokens.clear();
            }
        }
        tokens.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// The key `kid` of the JWKS: from the cache while it is fresh; fetched again when stale,
    /// or when `kid` is unknown and the last fetch is older than `jwks_refetch_interval`.
    async fn signing_key(&self, kid: &str) -> Result<(Algorithm, DecodingKey), Error> {
        let mut set = self.jwks.lock().await;
        let stale = Instant::now() >= set.fresh_until;
        let unknown = !set.keys.contains_key(kid);
        let may_refetch = set
            .fetched_at
            .is_none_or(|at| at.elapsed() >= self.config.jwks_refetch_interval);
        if stale || (unknown && may_refetch) {
            match self.fetch_jwks().await {
                Ok((keys, lifetime)) => {
                    set.keys = keys;
                    set.fresh_until = Instant::now() + lifetime;
                    set.fetched_at = Some(Instant::now());
                }
                // Keep serving the keys we have; a token signed by an unknown key waits.
                Err(e) if set.keys.is_empty() => return Err(e),
                Err(_) => set.fetched_at = Some(Instant::now()),
            }
        }
        set.keys
            .get(kid)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("unknown signing key {kid}")))
    }

    async fn fetch_jwks(
        &self,
    ) -> Result<(HashMap<String, (Algorithm, DecodingKey)>, Duration), Error> {
        let response = self
            .http
            .get(&self.config.jwks_url)
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("JWKS: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Unavailable(format!(
                "JWKS: HTTP {}",
                response.status()
            )));
        }
        let lifetime = jwks_lifetime(
            response
                .headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let set: JwkSet = response
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), pinned_algorithm(jwk)) else {
                continue;
            };
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid, (alg, key));
            }
        }
        Ok((keys, lifetime))
    }

    /// Verify an API key: its checksum here, then Gatehouse's introspection (cached), then
    /// the key's allowlist and lists against `request`.
    pub async fn verify_api_key(
        &self,
        key: &str,
        request: &Request<'_>,
    ) -> Result<Arc<KeyInfo>, Error> {
        key_format::check(key).map_err(|why| Error::Malformed(why.into()))?;
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let cached = {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            keys.get(&digest)
                .filter(|(at, _)| at.elapsed() < self.config.key_cache_ttl)
                .map(|(_, answer)| answer.clone())
        };
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let answer = self.introspect(key).await;
                if !matches!(answer, Err(Error::Unavailable(_))) {
                    let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
                    if keys.len() >= MAX_CACHED {
                        let ttl = self.config.key_cache_ttl;
                        keys.retain(|_, (at, _)| at.elapsed() < ttl);
                        if keys.len() >= MAX_CACHED {
                            keys.clear();
                        }
                    }
                    keys.insert(digest, (Instant::now(), answer.clone()));
                }
                answer
            }
        };
        let info = answer?;
        if info.expires_at.is_some_and(|exp| exp <= now_unix()) {
            return Err(Error::Invalid("the key has expired".into()));
        }
        if !restrictions::ip_allowed(&info.allowed_ips, request.ip) {
            return Err(Error::IpNotAllowed);
        }
        let r = &info.restrictions;
        if !r.referrers.is_empty() {
            let origin = Restrictions::request_origin(request.origin, request.referer);
            if !r.referrer_allowed(origin.as_deref()) {
                return Err(Error::ReferrerNotAllowed);
            }
        }
        if !r.endpoint_allowed(request.method, request.path) {
            return Err(Error::EndpointNotAllowed);
        }
        Ok(info)
    }

    async fn introspect(&self, key: &str) -> Result<Arc<KeyInfo>, Error> {
        let Some(credential) = &self.config.introspection_key else {
            return Err(Error::Unavailable(
                "no introspection_key is configured: API keys cannot be checked".into(),
            ));
        };
        let response = self
            .http
            .post(&self.config.introspection_url)
            .bearer_auth(credential)
            .form(&[("token", key), ("token_type_hint", "api_key")])
            .send()
            .await
            .map_err(|e| Error::Unavailable(format!("introspection: {e}")))?;
        if !response.status().is_success() {
            return Err(Error::Unavailable(format!(
                "introspection: HTTP {} (does the introspection key hold `introspect`?)",
                response.status()
            )));
        }
        let answer: Introspected = response
            .json()
            .await
            .map_err(|e| Error::Unavailable(format!("introspection: {e}")))?;
        if !answer.active || answer.key_id.is_none() {
            return Err(Error::Invalid("unknown, expired or revoked API key".into()));
        }
        let allowed_ips = answer
            .allowed_ips
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .collect();
        let restrictions = Restrictions::parse(
            &answer.allowed_referrers.unwrap_or_default(),
            &answer.allowed_endpoints.unwrap_or_default(),
        )
        .unwrap_or_else(|_| Restrictions::deny_all());
        Ok(Arc::new(KeyInfo {
            key_id: answer.key_id.unwrap_or_default(),
            subject: answer.sub.unwrap_or_default(),
            username: answer.username,
            scopes: answer.restricted.unwrap_or(true).then(|| {
                answer
                    .scope
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect()
            }),
            test: answer.livemode == Some(false),
            expires_at: answer.exp,
            allowed_ips,
            restrictions,
            workspace: answer.workspace,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_lives_between_the_host_and_the_resource_path() {
        let at = |audience: &str| {
            Verifier::new(Config::new("https://auth.example.com", audience))
                .unwrap()
                .resource_metadata_url()
        };
        assert_eq!(
            at("https://api.example.com"),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            at("https://api.example.com/v1/"),
            "https://api.example.com/.well-known/oauth-protected-resource/v1"
        );
        let verifier = Verifier::new(Config {
            scopes_supported: vec!["read:orders".into()],
            ..Config::new("https://auth.example.com/", "https://api.example.com/v1")
        })
        .unwrap();
        assert_eq!(
            verifier.resource_metadata_path(),
            "/.well-known/oauth-protected-resource/v1"
        );
        let metadata = verifier.resource_metadata();
        assert_eq!(metadata["resource"], "https://api.example.com/v1");
        assert_eq!(
            metadata["authorization_servers"][0],
            "https://auth.example.com"
        );
        assert_eq!(metadata["scopes_supported"][0], "read:orders");
    }

    #[test]
    fn the_jwks_lifetime_follows_cache_control_within_bounds() {
        assert_eq!(
            jwks_lifetime(Some("public, max-age=600")),
            Duration::from_secs(600)
        );
        assert_eq!(jwks_lifetime(Some("max-age=1")), Duration::from_secs(60));
        assert_eq!(
            jwks_lifetime(Some("max-age=99999999")),
            Duration::from_secs(86_400)
        );
        assert_eq!(jwks_lifetime(None), Duration::from_secs(300));
        assert_eq!(jwks_lifetime(Some("no-cache")), Duration::from_secs(300));
    }

    #[tokio::test]
    async fn garbage_never_leaves_the_process() {
        // Nothing listens on port 9: a request would be `Unavailable`, not `Malformed`.
        let verifier = Verifier::new(Config {
            introspection_key: Some("sk_live_x".into()),
            ..Config::new("http://127.0.0.1:9", "https://api.example.com")
        })
        .unwrap();
        let request = Request::default();
        for garbage in [
            "sk_live_0000000000000000000000000000000000000000",
            "not a key",
            "sk_live_short",
        ] {
            assert!(
                matches!(
                    verifier.verify(garbage, &request).await,
                    Err(Error::Malformed(_))
                ),
                "{garbage}"
            );
        }
        assert_eq!(
            verifier.verify("  ", &request).await.unwrap_err(),
            Error::Missing
        );
    }
}
