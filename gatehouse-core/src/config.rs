//! Settings from the environment (`GATEHOUSE_*`), overridable by command-line flags.
//! Secrets (the server secret, the bootstrap admin password, database passwords) are
//! redacted wherever `Debug` would show them.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Duration;

use crate::db::DatabaseUrl;
use crate::secrets::random_base62;

/// Flags shared by every subcommand. Each falls back to its `GATEHOUSE_*` variable.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// Database URL: `sqlite://PATH` (default) or `postgres://USER:PASS@HOST/DB`.
    #[arg(
        long,
        env = "GATEHOUSE_DATABASE_URL",
        default_value = "sqlite://gatehouse.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Address to listen on.
    #[arg(
        long,
        env = "GATEHOUSE_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: String,
    /// Public base URL (default `http://<bind>`, `https://<bind>` with TLS); `https://` makes
    /// cookies `Secure` and answers carry HSTS.
    #[arg(long, env = "GATEHOUSE_ISSUER", global = true)]
    pub issuer: Option<String>,
    /// Serve TLS: the certificate chain (PEM), read again on SIGHUP. With `--tls-key`.
    #[arg(long, env = "GATEHOUSE_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1), read again on SIGHUP.
    #[arg(long, env = "GATEHOUSE_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// Server secret (≥ 32 characters): HMAC pepper and key source. Required on PostgreSQL;
    /// on SQLite one is generated into `<database>.secret` when unset.
    #[arg(long, env = "GATEHOUSE_SECRET", global = true, hide_env_values = true)]
    pub secret: Option<String>,
    /// Allow self-service sign-up at `/signup`.
    #[arg(long, env = "GATEHOUSE_SIGNUP", global = true, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub signup: bool,
    /// Minutes of inactivity after which a browser session ends.
    #[arg(
        long,
        env = "GATEHOUSE_SESSION_IDLE_MINUTES",
        default_value_t = 120,
        global = true
    )]
    pub session_idle_minutes: u32,
    /// Hours after login at which a browser session ends regardless of activity.
    #[arg(
        long,
        env = "GATEHOUSE_SESSION_MAX_HOURS",
        default_value_t = 24,
        global = true
    )]
    pub session_max_hours: u32,
    /// Email of the admin created on first start (default admin@gatehouse.local).
    #[arg(long, env = "GATEHOUSE_ADMIN_EMAIL", global = true)]
    pub admin_email: Option<String>,
    /// Password of the admin created on first start (default: generated and printed once).
    #[arg(
        long,
        env = "GATEHOUSE_ADMIN_PASSWORD",
        global = true,
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "GATEHOUSE_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Lifetime of a new API key when the request names none, in days.
    #[arg(
        long,
        env = "GATEHOUSE_KEY_DEFAULT_DAYS",
        default_value_t = 365,
        global = true
    )]
    pub key_default_days: u32,
    /// Longest lifetime an API key may be given, in days.
    #[arg(
        long,
        env = "GATEHOUSE_KEY_MAX_DAYS",
        default_value_t = 730,
        global = true
    )]
    pub key_max_days: u32,
    /// Allow API keys that never expire.
    #[arg(long, env = "GATEHOUSE_KEY_ALLOW_NO_EXPIRY", default_value_t = false, global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub key_allow_no_expiry: bool,
    /// Requests per minute per credential (or per IP without one) on /v1.
    #[arg(
        long,
        env = "GATEHOUSE_RATE_LIMIT",
        default_value_t = 200,
        global = true
    )]
    pub rate_limit: u32,
    /// Requests per minute per credential on sensitive endpoints (create, roll, revoke keys).
    #[arg(
        long,
        env = "GATEHOUSE_SENSITIVE_RATE_LIMIT",
        default_value_t = 10,
        global = true
    )]
    pub sensitive_rate_limit: u32,
    /// Requests per minute per client address on /oauth/token, /oauth/introspect and
    /// /oauth/revoke.
    #[arg(
        long,
        env = "GATEHOUSE_OAUTH_RATE_LIMIT",
        default_value_t = 600,
        global = true
    )]
    pub oauth_rate_limit: u32,
    /// Requests per minute per client_id named on those endpoints (in Basic auth or the body).
    #[arg(
        long,
        env = "GATEHOUSE_OAUTH_CLIENT_RATE_LIMIT",
        default_value_t = 3000,
        global = true
    )]
    pub oauth_client_rate_limit: u32,
    /// Submissions per minute per client address of the sign-in and sign-up forms.
    #[arg(
        long,
        env = "GATEHOUSE_FORM_RATE_LIMIT",
        default_value_t = 30,
        global = true
    )]
    pub form_rate_limit: u32,
    /// Registrations (`POST /oauth/register`) per minute per client address.
    #[arg(
        long,
        env = "GATEHOUSE_REGISTRATION_RATE_LIMIT",
        default_value_t = 10,
        global = true
    )]
    pub registration_rate_limit: u32,
    /// Dynamic client registration (RFC 7591): `off`, `token` (an initial access token minted
    /// by an administrator is needed) or `open` (anyone, rate-limited, non-admin scopes only).
    #[arg(
        long,
        env = "GATEHOUSE_REGISTRATION",
        default_value = "off",
        global = true
    )]
    pub registration: String,
    /// Days after which a self-registered or metadata-document app nobody used is deleted;
    /// 0 keeps them.
    #[arg(
        long,
        env = "GATEHOUSE_REGISTRATION_UNUSED_DAYS",
        default_value_t = 30,
        global = true
    )]
    pub registration_unused_days: u32,
    /// Resource servers (from GATEHOUSE_RESOURCES) that apps which registered themselves may
    /// ask tokens for, besides Gatehouse's own API (space- or comma-separated).
    #[arg(long, env = "GATEHOUSE_REGISTRATION_RESOURCES", global = true)]
    pub registration_resources: Option<String>,
    /// DPoP proofs at the token endpoint must carry a server nonce (RFC 9449 §8): a proof made
    /// ahead of time cannot be used. `false` accepts proofs without one.
    #[arg(long, env = "GATEHOUSE_DPOP_NONCE", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub dpop_nonce: bool,
    /// Every app's authorization requests must be pushed to `/oauth/par` first (RFC 9126);
    /// without it, only apps registered with that requirement.
    #[arg(long, env = "GATEHOUSE_REQUIRE_PAR", global = true, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_par: bool,
    /// Client ID Metadata Documents (an https `client_id` that Gatehouse fetches): `off`,
    /// `all`, or the hosts allowed (space- or comma-separated; `*.example.com` for its
    /// subdomains).
    #[arg(long, env = "GATEHOUSE_CIMD", default_value = "off", global = true)]
    pub cimd: String,
    /// Seconds after a rotation in which the rotated refresh token may be presented once more
    /// (for apps open in several tabs); 0 turns it off.
    #[arg(
        long,
        env = "GATEHOUSE_REFRESH_GRACE_SECONDS",
        default_value_t = 0,
        global = true
    )]
    pub refresh_grace_seconds: u32,
    /// Algorithm of new signing keys: ES256 (default), RS256 or EdDSA. The first key is made
    /// with it; switch an existing server with `gatehouse signing-key rotate`.
    #[arg(
        long,
        env = "GATEHOUSE_SIGNING_ALG",
        default_value = "ES256",
        global = true
    )]
    pub signing_alg: String,
    /// Serve `/metrics` on the main address to scrapers presenting this bearer token (≥ 32
    /// characters). Unset (and no metrics address): metrics are off.
    #[arg(
        long,
        env = "GATEHOUSE_METRICS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub metrics_token: Option<String>,
    /// Serve `/metrics` without a token on this separate address (e.g. 127.0.0.1:9090, or an
    /// address only the monitoring network reaches).
    #[arg(long, env = "GATEHOUSE_METRICS_BIND", global = true)]
    pub metrics_bind: Option<String>,
    /// Log lines as `text` (default) or `json` (one object per line).
    #[arg(
        long,
        env = "GATEHOUSE_LOG_FORMAT",
        global = true,
        default_value = "text"
    )]
    pub log_format: String,
    /// One log line per request (default: on with the JSON format, off with text).
    #[arg(long, env = "GATEHOUSE_ACCESS_LOG", global = true, value_parser = clap::builder::BoolishValueParser::new())]
    pub access_log: Option<bool>,
    /// Days audit events are kept before the janitor deletes them; 0 keeps them all.
    #[arg(
        long,
        env = "GATEHOUSE_AUDIT_RETENTION_DAYS",
        default_value_t = 365,
        global = true
    )]
    pub audit_retention_days: u32,
    /// Deliver back-channel logout notices to private, loopback and link-local addresses and
    /// over plain http (a private network, development); off: public https endpoints only.
    #[arg(long, env = "GATEHOUSE_BACKCHANNEL_ALLOW_PRIVATE", global = true, default_value_t = false, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub backchannel_allow_private: bool,
    /// Reverse proxies (addresses or CIDRs, space- or comma-separated) whose
    /// `X-Forwarded-For` is believed; empty: the TCP peer is the client.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,
    /// Further resource servers (RFC 8707 resource indicators, absolute URIs, space- or
    /// comma-separated) a token request may name in `resource` to get a token for them alone.
    #[arg(long, env = "GATEHOUSE_RESOURCES", global = true)]
    pub resources: Option<String>,
    /// The `aud` of access tokens: the resource servers' identifier (default: the issuer).
    #[arg(long, env = "GATEHOUSE_AUDIENCE", global = true)]
    pub audience: Option<String>,
    /// Lifetime of JWT access tokens, in minutes.
    #[arg(
        long,
        env = "GATEHOUSE_ACCESS_TOKEN_MINUTES",
        default_value_t = 15,
        global = true
    )]
    pub access_token_minutes: u32,
    /// Seconds between flushes of API keys' last-used times to the database.
    #[arg(
        long,
        env = "GATEHOUSE_USAGE_FLUSH_SECONDS",
        default_value_t = 60,
        global = true
    )]
    pub usage_flush_seconds: u32,
    /// Redis that every instance shares its rate-limit counters through:
    /// `redis://[:PASSWORD@]HOST[:PORT][/DB]` or `redis+unix:///PATH`. Unset: each instance
    /// counts on its own.
    #[arg(
        long,
        env = "GATEHOUSE_REDIS_URL",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
}

/// API-key policy and limits.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    pub default_lifetime: Duration,
    pub max_lifetime: Duration,
    pub allow_no_expiry: bool,
    pub rate_limit_per_minute: u32,
    pub sensitive_rate_limit_per_minute: u32,
    pub usage_flush_every: std::time::Duration,
    /// How long a verified key may be answered from memory: the bound on how late another
    /// instance sees a revocation.
    pub cache_ttl: std::time::Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        KeyPolicy {
            default_lifetime: Duration::days(365),
            max_lifetime: Duration::days(730),
            allow_no_expiry: false,
            rate_limit_per_minute: 200,
            sensitive_rate_limit_per_minute: 10,
            usage_flush_every: std::time::Duration::from_secs(60),
            cache_ttl: std::time::Duration::from_secs(1),
        }
    }
}

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted<T>(pub T);

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Per-minute allowances of the endpoints anyone may call without a credential.
#[derive(Debug, Clone, Copy)]
pub struct OpenEndpointLimits {
    /// Per client address, on `/oauth/token`, `/oauth/introspect` and `/oauth/revoke`.
    pub oauth_per_address: u32,
    /// Per `client_id` named on those endpoints.
    pub oauth_per_client: u32,
    /// Per client address, on `POST /login` and `POST /signup`.
    pub forms_per_address: u32,
    /// Per client address, on `POST /oauth/register`.
    pub registration_per_address: u32,
}

impl Default for OpenEndpointLimits {
    fn default() -> Self {
        OpenEndpointLimits {
            oauth_per_address: 600,
            oauth_per_client: 3000,
            forms_per_address: 30,
            registration_per_address: 10,
        }
    }
}

/// Failed login attempts tolerated per window before answering 429.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_ip: u32,
    pub window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            per_account: 5,
            per_ip: 20,
            window: Duration::minutes(1),
        }
    }
}

/// How much argon2 work may run at once in this process (each check holds ~19 MiB), and how
/// many requests may wait for a slot before the next is turned away with 503.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChecks {
    pub concurrent: usize,
    pub queue: usize,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        PasswordChecks {
            concurrent: cpus,
            queue: 16 * cpus,
        }
    }
}

/// The metrics token of `Settings::for_tests`.
pub const TEST_METRICS_TOKEN: &str = "test-metrics-token-0123456789abcdef";

/// Where Gatehouse's own TLS certificate chain and key are (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything the server needs to start, resolved and validated.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    pub bind: String,
    /// Gatehouse's own TLS (`None`: plain HTTP, or TLS ends at a proxy).
    pub tls: Option<TlsFiles>,
    /// Public base URL without a trailing slash.
    pub issuer: String,
    pub secret: Redacted<Vec<u8>>,
    pub signup_enabled: bool,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    pub admin_email: Option<String>,
    pub admin_password: Option<Redacted<String>>,
    pub workers: Option<usize>,
    pub login_limits: LoginLimits,
    pub password_checks: PasswordChecks,
    pub open_limits: OpenEndpointLimits,
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    pub keys: KeyPolicy,
    /// Lifetime of JWT access tokens.
    pub access_token_ttl: Duration,
    /// How long a rotated refresh token may be presented once more.
    pub refresh_grace: Duration,
    /// The `aud` of access tokens; `None`: the issuer.
    pub audience: Option<String>,
    /// Algorithm of newly made signing keys.
    pub signing_alg: crate::jwt::keys::SigningAlg,
    /// Resource indicators (RFC 8707) tokens may be issued for, besides the default audience.
    pub resources: Vec<String>,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Run the periodic housekeeping loop (revocation sync, last-used flush, key reload).
    /// Off in tests, which call `app::housekeeping_pass` themselves so that no background
    /// database work races their assertions.
    pub background_tasks: bool,
    /// How long audit events are kept; `None`: for ever.
    pub audit_retention: Option<Duration>,
    /// See `ConfigArgs::backchannel_allow_private`.
    pub backchannel_allow_private: bool,
    pub metrics: MetricsExposure,
    pub log_format: LogFormat,
    pub access_log: bool,
    /// Where the rate limits are shared between instances (see `http::shared_limits`); `None`:
    /// they are counted in this instance's memory only.
    pub redis_url: Option<Redacted<String>>,
    /// Apps that register themselves (RFC 7591).
    pub registration: RegistrationPolicy,
    /// Apps described by Client ID Metadata Documents.
    pub cimd: CimdPolicy,
    /// Test benches only: fetch metadata documents over plain http from 127.0.0.1 (a
    /// `client_id` such as `http://127.0.0.1:PORT/…`). No variable or flag sets it: only a
    /// program that builds `Settings` in code (the test suite) can, so no deployment switches it
    /// on by accident.
    pub cimd_loopback_http: bool,
    /// RFC 9126 `require_pushed_authorization_requests`, for every app.
    pub require_par: bool,
    /// RFC 9449: DPoP proofs at the token endpoint need a server nonce.
    pub dpop_nonce: bool,
}

/// `GATEHOUSE_REGISTRATION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RegistrationMode {
    #[default]
    Off,
    /// An initial access token is needed.
    Token,
    /// Anyone may register.
    Open,
}

#[derive(Debug, Clone, Default)]
pub struct RegistrationPolicy {
    pub mode: RegistrationMode,
    /// Self-registered and metadata-document apps unused this long are deleted; `None`: kept.
    pub unused_after: Option<Duration>,
    /// Resource servers they may ask tokens for besides Gatehouse's own API.
    pub resources: Vec<String>,
}

/// `GATEHOUSE_CIMD`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CimdPolicy {
    #[default]
    Off,
    All,
    /// Exact hosts, or `*.example.com` for the subdomains of `example.com`.
    Hosts(Vec<String>),
}

impl CimdPolicy {
    pub fn parse(raw: &str) -> Result<CimdPolicy, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "off" => Ok(CimdPolicy::Off),
            "all" => Ok(CimdPolicy::All),
            list => {
                let hosts: Vec<String> = list
                    .split([' ', ','])
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned)
                    .collect();
                for h in &hosts {
                    let bare = h.strip_prefix("*.").unwrap_or(h);
                    if bare.is_empty()
                        || !bare
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                    {
                        return Err(ConfigError::Cimd(h.clone()));
                    }
                }
                Ok(CimdPolicy::Hosts(hosts))
            }
        }
    }

    pub fn enabled(&self) -> bool {
        *self != CimdPolicy::Off
    }

    /// Whether documents on `host` may be fetched.
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            CimdPolicy::Off => false,
            CimdPolicy::All => true,
            CimdPolicy::Hosts(hosts) => hosts.iter().any(|h| match h.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
                None => *h == host,
            }),
        }
    }
}

/// Where `/metrics` is served; both `None`: metrics are off (nothing is recorded).
#[derive(Debug, Clone, Default)]
pub struct MetricsExposure {
    /// On the main address, to scrapers presenting this bearer token.
    pub token: Option<Redacted<String>>,
    /// On this separate address, without a token.
    pub bind: Option<String>,
}

impl MetricsExposure {
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.bind.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(raw: &str) -> Result<LogFormat, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(ConfigError::LogFormat(raw.to_owned())),
        }
    }
}

/// RFC 8707 §2: a resource indicator is an absolute URI without a fragment.
pub fn valid_resource(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base())
}

fn parse_resources(raw: &str) -> Result<Vec<String>, ConfigError> {
    raw.split([' ', ','])
        .filter(|r| !r.is_empty())
        .map(|r| {
            if valid_resource(r) {
                Ok(r.to_owned())
            } else {
                Err(ConfigError::Resource(r.to_owned()))
            }
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("GATEHOUSE_SIGNING_ALG {0:?} is not one of ES256, RS256, EdDSA")]
    SigningAlg(String),
    #[error("GATEHOUSE_RESOURCES: {0:?} is not an absolute URI without a fragment")]
    Resource(String),
    #[error("GATEHOUSE_TRUSTED_PROXIES: {0}")]
    TrustedProxies(String),
    #[error("invalid database URL: {0}")]
    Database(#[from] crate::db::DatabaseUrlError),
    #[error(
        "invalid issuer {0:?}: it must be an http:// or https:// origin with an optional path, without query or fragment"
    )]
    Issuer(String),
    #[error(
        "the issuer would be {0}, an address nobody can reach: set GATEHOUSE_ISSUER to the URL users and apps reach Gatehouse at (e.g. https://id.example.com)"
    )]
    UnreachableIssuer(String),
    #[error(
        "GATEHOUSE_BIND {0:?} is not an address to listen on: HOST[:PORT] or [IPv6]:PORT, e.g. 127.0.0.1:8080, localhost or 0.0.0.0:8080"
    )]
    Bind(String),
    #[error("GATEHOUSE_TLS_CERT and GATEHOUSE_TLS_KEY go together: set both, or neither")]
    TlsPair,
    #[error("GATEHOUSE_SECRET must be at least 32 characters long")]
    SecretTooShort,
    #[error(
        "GATEHOUSE_SECRET is required with PostgreSQL: every instance must share the same secret"
    )]
    SecretRequired,
    #[error("cannot read or create the secret file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("session lifetimes must be positive")]
    SessionLifetime,
    #[error("GATEHOUSE_REGISTRATION {0:?} is not off, token or open")]
    Registration(String),
    #[error("GATEHOUSE_REGISTRATION_RESOURCES: {0:?} is not one of GATEHOUSE_RESOURCES")]
    RegistrationResource(String),
    #[error("GATEHOUSE_CIMD: {0:?} is not off, all or a host name")]
    Cimd(String),
    #[error("GATEHOUSE_LOG_FORMAT {0:?} is not text or json")]
    LogFormat(String),
    #[error("GATEHOUSE_METRICS_TOKEN must be at least 32 characters long")]
    MetricsTokenTooShort,
    #[error(
        "GATEHOUSE_REDIS_URL is not a Redis URL (redis://[:PASSWORD@]HOST[:PORT][/DB] or redis+unix:///PATH)"
    )]
    RedisUrl,
}

impl Settings {
    pub fn from_args(args: &ConfigArgs) -> Result<Settings, ConfigError> {
        let database: DatabaseUrl = args.database_url.parse()?;
        let tls = tls_of(args)?;
        let bind = bind_of(&args.bind)?;
        let issuer = issuer_of(args, &bind, tls.is_some())?;
        let secret = secret_of(args, &database)?;
        if args.session_idle_minutes == 0 || args.session_max_hours == 0 {
            return Err(ConfigError::SessionLifetime);
        }
        let log_format = LogFormat::parse(&args.log_format)?;
        let resources = parse_resources(args.resources.as_deref().unwrap_or(""))?;
        let registration = registration_of(args, &resources)?;
        Ok(Settings {
            database,
            tls,
            bind,
            issuer,
            secret: Redacted(secret),
            signup_enabled: args.signup,
            session_idle: Duration::minutes(i64::from(args.session_idle_minutes)),
            session_absolute: Duration::hours(i64::from(args.session_max_hours)),
            admin_email: args.admin_email.clone(),
            admin_password: args.admin_password.clone().map(Redacted),
            workers: args.workers,
            login_limits: LoginLimits::default(),
            password_checks: PasswordChecks::default(),
            open_limits: OpenEndpointLimits {
                oauth_per_address: args.oauth_rate_limit.max(1),
                oauth_per_client: args.oauth_client_rate_limit.max(1),
                forms_per_address: args.form_rate_limit.max(1),
                registration_per_address: args.registration_rate_limit.max(1),
            },
            body_limit: 64 * 1024,
            keys: key_policy_of(args),
            access_token_ttl: Duration::minutes(i64::from(
                args.access_token_minutes.clamp(1, 24 * 60),
            )),
            refresh_grace: Duration::seconds(i64::from(args.refresh_grace_seconds.min(300))),
            audience: args.audience.clone().filter(|a| !a.trim().is_empty()),
            signing_alg: crate::jwt::keys::SigningAlg::parse(&args.signing_alg)
                .ok_or_else(|| ConfigError::SigningAlg(args.signing_alg.clone()))?,
            resources,
            trusted_proxies: crate::net::address::parse_allowed_ips(
                args.trusted_proxies.as_deref().unwrap_or(""),
            )
            .map_err(ConfigError::TrustedProxies)?,
            background_tasks: true,
            audit_retention: (args.audit_retention_days > 0)
                .then(|| Duration::days(i64::from(args.audit_retention_days))),
            backchannel_allow_private: args.backchannel_allow_private,
            metrics: metrics_of(args)?,
            log_format,
            access_log: args.access_log.unwrap_or(log_format == LogFormat::Json),
            redis_url: parse_redis_url(args.redis_url.as_deref())?,
            registration,
            cimd: CimdPolicy::parse(&args.cimd)?,
            cimd_loopback_http: false,
            require_par: args.require_par,
            dpop_nonce: args.dpop_nonce,
        })
    }

    /// Settings for an embedded test or tool: the given database and secret, a free port.
    pub fn for_tests(database: DatabaseUrl, secret: &[u8]) -> Settings {
        Settings {
            tls: None,
            database,
            bind: "127.0.0.1:0".into(),
            issuer: "http://127.0.0.1".into(),
            secret: Redacted(secret.to_vec()),
            signup_enabled: false,
            session_idle: Duration::minutes(120),
            session_absolute: Duration::hours(24),
            admin_email: None,
            admin_password: None,
            workers: Some(1),
            login_limits: LoginLimits::default(),
            password_checks: PasswordChecks::default(),
            // Tests sign in and call the token endpoint often; the rate-limit tests set their own.
            open_limits: OpenEndpointLimits {
                oauth_per_address: 100_000,
                oauth_per_client: 100_000,
                forms_per_address: 100_000,
                registration_per_address: 100_000,
            },
            body_limit: 64 * 1024,
            // Tests create many keys quickly; the rate-limit tests set their own limits.
            keys: KeyPolicy {
                rate_limit_per_minute: 10_000,
                sensitive_rate_limit_per_minute: 1_000,
                ..KeyPolicy::default()
            },
            access_token_ttl: Duration::minutes(15),
            refresh_grace: Duration::zero(),
            audience: None,
            signing_alg: crate::jwt::keys::SigningAlg::default(),
            resources: Vec::new(),
            trusted_proxies: Vec::new(),
            background_tasks: false,
            audit_retention: Some(Duration::days(365)),
            // The tests' receivers listen on 127.0.0.1.
            backchannel_allow_private: true,
            // Recorded and served in tests, as a scraper would see them.
            metrics: MetricsExposure {
                token: Some(Redacted(TEST_METRICS_TOKEN.to_owned())),
                bind: None,
            },
            log_format: LogFormat::Text,
            access_log: false,
            redis_url: None,
            registration: RegistrationPolicy::default(),
            cimd: CimdPolicy::Off,
            cimd_loopback_http: false,
            require_par: false,
            dpop_nonce: true,
        }
    }

    /// The audience access tokens are issued for and checked against.
    pub fn token_audience(&self) -> &str {
        self.audience.as_deref().unwrap_or(&self.issuer)
    }

    /// Every audience this server issues tokens for: the default one and the resources.
    pub fn audiences(&self) -> Vec<&str> {
        std::iter::once(self.token_audience())
            .chain(self.resources.iter().map(String::as_str))
            .collect()
    }

    /// Cookies carry `Secure` (and the `__Host-` prefix) only when the issuer is https.
    pub fn secure_cookies(&self) -> bool {
        self.issuer.starts_with("https://")
    }
}

/// The server secret: given (at least 32 characters), or on SQLite generated into a file
/// beside the database; PostgreSQL needs one given (every instance must share it).
fn secret_of(args: &ConfigArgs, database: &DatabaseUrl) -> Result<Vec<u8>, ConfigError> {
    Ok(match (&args.secret, database) {
        (Some(s), _) if s.len() < 32 => return Err(ConfigError::SecretTooShort),
        (Some(s), _) => s.as_bytes().to_vec(),
        (None, DatabaseUrl::Sqlite { path }) => load_or_create_secret_file(&secret_path_for(path))?,
        (None, DatabaseUrl::Postgres { .. }) => return Err(ConfigError::SecretRequired),
    })
}

/// Self-registration: off, with a token, or open; the resources self-registered apps get (each
/// one of the server's).
fn registration_of(
    args: &ConfigArgs,
    resources: &[String],
) -> Result<RegistrationPolicy, ConfigError> {
    Ok(RegistrationPolicy {
        mode: match args.registration.trim().to_ascii_lowercase().as_str() {
            "" | "off" => RegistrationMode::Off,
            "token" => RegistrationMode::Token,
            "open" => RegistrationMode::Open,
            _ => return Err(ConfigError::Registration(args.registration.clone())),
        },
        unused_after: (args.registration_unused_days > 0)
            .then(|| Duration::days(i64::from(args.registration_unused_days))),
        resources: {
            let wanted = parse_resources(args.registration_resources.as_deref().unwrap_or(""))?;
            if let Some(unknown) = wanted.iter().find(|r| !resources.contains(r)) {
                return Err(ConfigError::RegistrationResource(unknown.clone()));
            }
            wanted
        },
    })
}

/// The API keys' lifetimes, rate limits and usage flushing.
fn key_policy_of(args: &ConfigArgs) -> KeyPolicy {
    KeyPolicy {
        default_lifetime: Duration::days(i64::from(args.key_default_days.max(1))),
        max_lifetime: Duration::days(i64::from(
            args.key_max_days.max(args.key_default_days).max(1),
        )),
        allow_no_expiry: args.key_allow_no_expiry,
        rate_limit_per_minute: args.rate_limit.max(1),
        sensitive_rate_limit_per_minute: args.sensitive_rate_limit.max(1),
        usage_flush_every: std::time::Duration::from_secs(u64::from(
            args.usage_flush_seconds.max(1),
        )),
        ..KeyPolicy::default()
    }
}

/// Where `/metrics` is served and the token it asks for (at least 32 characters).
fn metrics_of(args: &ConfigArgs) -> Result<MetricsExposure, ConfigError> {
    Ok(MetricsExposure {
        token: match args.metrics_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.len() < 32 => return Err(ConfigError::MetricsTokenTooShort),
            Some(t) => Some(Redacted(t.to_owned())),
        },
        bind: args.metrics_bind.clone().filter(|b| !b.trim().is_empty()),
    })
}

/// The address to listen on, checked before anything is created: `HOST:PORT`, `[IPv6]:PORT`,
/// or a host alone (port 8080).
fn bind_of(raw: &str) -> Result<String, ConfigError> {
    use std::net::ToSocketAddrs;
    let raw = raw.trim();
    let bad = || ConfigError::Bind(raw.to_owned());
    if raw.is_empty() || raw.contains(char::is_whitespace) || raw.contains('/') {
        return Err(bad());
    }
    let has_port = match raw.rsplit_once(':') {
        // `[::1]:8080`, `host:8080`; a bare IPv6 address (`::1`) has colons but no port.
        Some((host, port)) => {
            (host.starts_with('[') || !host.contains(':')) && port.parse::<u16>().is_ok()
        }
        None => false,
    };
    let with_port = if has_port {
        raw.to_owned()
    } else if raw.contains(':') && !raw.starts_with('[') {
        format!("[{raw}]:8080")
    } else {
        format!("{raw}:8080")
    };
    let resolves = with_port
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.next().is_some());
    if resolves { Ok(with_port) } else { Err(bad()) }
}

/// Gatehouse's own TLS files: both, or neither.
fn tls_of(args: &ConfigArgs) -> Result<Option<TlsFiles>, ConfigError> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        })),
        (None, None) => Ok(None),
        _ => Err(ConfigError::TlsPair),
    }
}

/// The issuer: as given, else `<bind>` (https with TLS) — never an unspecified address.
fn issuer_of(args: &ConfigArgs, bind: &str, tls: bool) -> Result<String, ConfigError> {
    let issuer = match &args.issuer {
        Some(issuer) => parse_issuer(issuer)?,
        None if tls => format!("https://{bind}"),
        None => format!("http://{bind}"),
    };
    // Binding every address (`0.0.0.0`, `[::]`) is fine; naming it in every token is not.
    let unspecified = url::Url::parse(&issuer)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
        .is_some_and(|host| match host {
            url::Host::Ipv4(ip) => ip.is_unspecified(),
            url::Host::Ipv6(ip) => ip.is_unspecified(),
            url::Host::Domain(_) => false,
        });
    if unspecified {
        return Err(ConfigError::UnreachableIssuer(issuer));
    }
    Ok(issuer)
}

fn parse_issuer(raw: &str) -> Result<String, ConfigError> {
    let trimmed = raw.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| ConfigError::Issuer(raw.into()))?;
    let host = rest.split('/').next().unwrap_or_default();
    let ok = !host.is_empty()
        && !rest.contains(['?', '#', '@'])
        && rest.chars().all(|c| c.is_ascii_graphic());
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(ConfigError::Issuer(raw.into()))
    }
}

/// An empty value means unset; anything else must parse (the error does not repeat the URL,
/// which may hold a password).
fn parse_redis_url(raw: Option<&str>) -> Result<Option<Redacted<String>>, ConfigError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(url) => redis::Client::open(url)
            .map(|_| Some(Redacted(url.to_owned())))
            .map_err(|_| ConfigError::RedisUrl),
    }
}

/// `gatehouse.db` keeps its generated secret in `gatehouse.db.secret`, beside it.
pub fn secret_path_for(database_path: &Path) -> PathBuf {
    let mut name = database_path.as_os_str().to_owned();
    name.push(".secret");
    PathBuf::from(name)
}

fn load_or_create_secret_file(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let wrap = |source| ConfigError::SecretFile {
        path: path.to_owned(),
        source,
    };
    match fs::read_to_string(path) {
        Ok(existing) => {
            let existing = existing.trim();
            if existing.len() < 32 {
                return Err(ConfigError::SecretTooShort);
            }
            return Ok(existing.as_bytes().to_vec());
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(wrap(e)),
    }
    let secret = random_base62(64);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(wrap)?;
    file.write_all(secret.as_bytes()).map_err(wrap)?;
    file.sync_all().map_err(wrap)?;
    log::warn!(
        "GATEHOUSE_SECRET is not set: generated one into {} (mode 0600). Back it up with the \
         database; losing it invalidates every stored key, session and token.",
        path.display()
    );
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issuer_on_every_address_is_refused() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        let settings = |bind: &str, issuer: Option<&str>| {
            let mut argv = vec![
                "x",
                "--database-url",
                "sqlite://:memory:",
                "--secret",
                "a-secret-of-more-than-32-characters-0123",
                "--bind",
                bind,
            ];
            if let Some(issuer) = issuer {
                argv.extend(["--issuer", issuer]);
            }
            Settings::from_args(&Cli::try_parse_from(argv).unwrap().config)
        };
        for (bind, issuer) in [
            ("0.0.0.0:8080", None),
            ("[::]:8080", None),
            ("0.0.0.0:8080", Some("http://0.0.0.0:8080")),
            ("127.0.0.1:8080", Some("http://[::]:8080")),
        ] {
            match settings(bind, issuer) {
                Err(ConfigError::UnreachableIssuer(_)) => {}
                other => panic!("{bind} {issuer:?}: {other:?}"),
            }
        }
        assert!(settings("0.0.0.0:8080", Some("https://id.example.com")).is_ok());
        assert!(settings("127.0.0.1:8080", None).is_ok());
    }

    #[test]
    fn a_bind_address_is_checked_and_takes_port_8080_when_it_names_none() {
        assert_eq!(bind_of("127.0.0.1:9000").unwrap(), "127.0.0.1:9000");
        assert_eq!(bind_of("localhost").unwrap(), "localhost:8080");
        assert_eq!(bind_of("127.0.0.1").unwrap(), "127.0.0.1:8080");
        assert_eq!(bind_of("[::1]:9000").unwrap(), "[::1]:9000");
        assert_eq!(bind_of("::1").unwrap(), "[::1]:8080");
        for bad in [
            "",
            "127.0.0.1:99999",
            "127.0.0.1:http",
            "http://127.0.0.1:8080",
            "a b",
        ] {
            assert!(
                matches!(bind_of(bad), Err(ConfigError::Bind(_))),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn issuer_must_be_an_http_origin() {
        assert_eq!(
            parse_issuer("https://auth.example.com/").unwrap(),
            "https://auth.example.com"
        );
        assert_eq!(
            parse_issuer("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a.test?x=1",
            "https://u@a.test",
            "auth.example.com",
        ] {
            assert!(parse_issuer(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn generated_secret_file_is_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.db.secret");
        let first = load_or_create_secret_file(&path).unwrap();
        let second = load_or_create_secret_file(&path).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn settings_debug_redacts_secrets() {
        let settings = Settings::for_tests(
            "postgres://gh:hunter2hunter2@db.internal/gh"
                .parse()
                .unwrap(),
            b"a-very-secret-server-secret-value-123",
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("a-very-secret"));
    }

    #[test]
    fn redis_url_is_checked_and_its_password_never_shown() {
        assert!(parse_redis_url(None).unwrap().is_none());
        assert!(
            parse_redis_url(Some("  ")).unwrap().is_none(),
            "empty is unset"
        );
        let url = parse_redis_url(Some("redis://:hunter2hunter2@cache.internal:6379/2"))
            .unwrap()
            .expect("a Redis URL");
        assert_eq!(url.0, "redis://:hunter2hunter2@cache.internal:6379/2");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(parse_redis_url(Some("redis+unix:///run/redis.sock")).is_ok());
        for bad in [
            "http://cache.internal",
            "cache.internal:6379",
            "redis://:pw@",
        ] {
            let refused = parse_redis_url(Some(bad));
            assert!(
                matches!(refused, Err(ConfigError::RedisUrl)),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn postgres_without_secret_is_refused() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        let cli = Cli::try_parse_from(["x", "--database-url", "postgres://localhost/gh"]).unwrap();
        let mut args = cli.config;
        args.secret = None;
        assert!(matches!(
            Settings::from_args(&args),
            Err(ConfigError::SecretRequired)
        ));
    }

    /// Every on/off setting takes the values the README documents (`1`, `true`, `on`, `yes`),
    /// given as an option or through its environment variable.
    #[test]
    fn switches_take_the_documented_values() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: ConfigArgs,
        }
        for (option, read) in [
            (
                "--backchannel-allow-private",
                (|a: &ConfigArgs| a.backchannel_allow_private) as fn(&ConfigArgs) -> bool,
            ),
            ("--require-par", |a: &ConfigArgs| a.require_par),
            ("--signup", |a: &ConfigArgs| a.signup),
        ] {
            for (value, expected) in [("1", true), ("true", true), ("on", true), ("0", false)] {
                let cli = Cli::try_parse_from(["x", &format!("{option}={value}")])
                    .unwrap_or_else(|e| panic!("{option} {value}: {e}"));
                assert_eq!(read(&cli.config), expected, "{option} {value}");
            }
            let cli = Cli::try_parse_from(["x"]).unwrap();
            assert!(!read(&cli.config), "{option} is off by default");
            let cli = Cli::try_parse_from(["x", option]).unwrap();
            assert!(read(&cli.config), "{option} alone switches it on");
        }
    }
}
