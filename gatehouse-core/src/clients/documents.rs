//! Client ID Metadata Documents (`draft-ietf-oauth-client-id-metadata-document`): an app whose
//! `client_id` is an `https` URL is described by the JSON document served there. Gatehouse
//! fetches it (GET, no credentials, no redirects, ≤ 5 KB, ≤ 3 s, public addresses only — an
//! attacker must not make the server reach its own network), validates it, and keeps it as a
//! row of `clients` (`origin = 'cimd'`, no owner) until its HTTP cache lifetime ends (between a
//! floor and a ceiling). Fetch failures are remembered for a minute, so a broken or hostile
//! document costs one fetch a minute however often it is named.
//!
//! The operator decides which hosts may describe apps (`GATEHOUSE_CIMD`); administrators block
//! hosts from the Agents page (their apps are disabled at once and never fetched again).

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Deserialize;
use url::{Host, Url};

use crate::clients::redirect::RedirectUri;
use crate::clients::{self, Client, ClientType, Origin, SelfDescription};
use crate::db::schema::blocked_client_hosts;
use crate::db::{DbConn, DbError};
use crate::scopes::ScopeSet;
use crate::state::AppState;

/// Largest document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest a fetch may take, connection included.
pub const FETCH_TIMEOUT: StdDuration = StdDuration::from_secs(3);
/// A document is kept at least this long, whatever its headers say (bounds the fetch rate).
pub const CACHE_FLOOR: Duration = Duration::minutes(5);
/// And at most this long (a changed document is seen within a day).
pub const CACHE_CEILING: Duration = Duration::hours(24);
/// Without cache headers.
pub const CACHE_DEFAULT: Duration = Duration::hours(1);
/// Fetches per minute in this process, whoever asks (the per-URL and per-host failure memory
/// and the sign-in required first bound them further).
const FETCHES_PER_MINUTE: u32 = 300;

pub use crate::cache::fetches::{
    CONCURRENT_FETCHES, DocumentError, FAILURE_MEMORY, Fetches, HOST_FAILURES, bad,
};

/// Whether a `client_id` names a metadata document (rather than a registered app's `cli_…`).
pub fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// A loopback `http` URL with a port: what the test switch admits.
fn loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && url.port().is_some()
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// The rules of the draft for a client identifier URL, checked on the text as sent: `https`,
/// a path, no fragment, no user or password, no dot segments — and already in the canonical
/// form a URL parser gives it, so that one app has one identifier.
pub fn parse_client_id(raw: &str, loopback_for_tests: bool) -> Result<Url, DocumentError> {
    if raw.len() > 2000 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("The client_id URL is too long or contains spaces"));
    }
    let url = Url::parse(raw).map_err(|_| bad("The client_id is not a URL"))?;
    let scheme_ok = url.scheme() == "https" || (loopback_for_tests && loopback_http(&url));
    if !scheme_ok {
        return Err(bad("A client_id URL must use https"));
    }
    if raw.contains('#') {
        return Err(bad("A client_id URL cannot have a fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() || raw.contains('@') {
        return Err(bad("A client_id URL cannot carry a user name or password"));
    }
    if raw.split(['/', '?']).any(|seg| seg == "." || seg == "..")
        || raw.contains("/%2e")
        || raw.contains("/%2E")
    {
        return Err(bad("A client_id URL cannot contain . or .. segments"));
    }
    if url.scheme() == "https" && url.port().is_some() {
        return Err(bad("A client_id URL must use the default https port (443)"));
    }
    if url.host_str().is_some_and(|h| h.ends_with('.')) {
        return Err(bad("A client_id URL's host cannot end with a dot"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(bad(
            "A client_id URL must have a path (such as /client.json)",
        ));
    }
    if url.as_str() != raw {
        return Err(bad(
            "The client_id URL is not in canonical form (lower-case host, no default port, escaped characters)",
        ));
    }
    Ok(url)
}

/// The document as served; unknown members are ignored.
#[derive(Debug, Deserialize)]
struct Document {
    client_id: Option<String>,
    client_name: Option<String>,
    redirect_uris: Option<Vec<String>>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    policy_uri: Option<String>,
    tos_uri: Option<String>,
    #[serde(default)]
    contacts: Vec<String>,
    software_id: Option<String>,
    software_version: Option<String>,
    client_secret: Option<serde_json::Value>,
    /// `private_key_jwt`: the app's keys, or where it publishes them.
    jwks: Option<serde_json::Value>,
    jwks_uri: Option<String>,
}

/// What a valid document makes of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub name: String,
    pub redirect_uris: Vec<RedirectUri>,
    pub grant_types: Vec<String>,
    pub scopes: ScopeSet,
    pub description: SelfDescription,
    /// Public (`none`), or confidential with `private_key_jwt`.
    pub client_type: ClientType,
    pub options: clients::ClientOptions,
}

/// An https URL shown to users (client_uri, logo_uri, policy_uri, tos_uri): anything else is
/// dropped rather than refused (the draft says to ignore what one does not use).
fn shown_url(raw: Option<String>) -> Option<String> {
    raw.filter(|u| u.len() <= 500 && Url::parse(u).is_ok_and(|p| p.scheme() == "https"))
}

/// Validate a document fetched from `url`. `grantable`: the scopes such an app may ask for.
pub fn validate(url: &Url, body: &[u8], grantable: &ScopeSet) -> Result<Described, DocumentError> {
    let mut doc: Document = serde_json::from_slice(body).map_err(|e| {
        bad(format!(
            "The metadata document is not a JSON object of the expected shape: {e}"
        ))
    })?;
    match doc.client_id.as_deref() {
        Some(id) if id == url.as_str() => {}
        Some(_) => {
            return Err(bad(
                "The metadata document's client_id is not exactly the URL it was fetched from",
            ));
        }
        None => return Err(bad("The metadata document has no client_id")),
    }
    if doc.client_secret.is_some() {
        return Err(bad("A metadata document cannot carry a client_secret"));
    }
    let (client_type, options) = authentication_of(url, &mut doc)?;
    let redirect_uris = redirect_uris_of(doc.redirect_uris.take())?;
    let grant_types = grant_types_of(&mut doc)?;
    let scopes = scopes_of(doc.scope.as_deref(), grantable)?;
    let host = url.host_str().unwrap_or_default();
    let name = doc
        .client_name
        .map(|n| clients::shown_name(&n))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| host.to_owned());
    let method = if client_type == ClientType::Public {
        "none"
    } else {
        clients::PRIVATE_KEY_JWT
    };
    Ok(Described {
        client_type,
        options,
        name,
        redirect_uris,
        grant_types,
        scopes,
        description: SelfDescription {
            token_endpoint_auth_method: Some(method.into()),
            client_uri: shown_url(doc.client_uri),
            logo_uri: shown_url(doc.logo_uri),
            policy_uri: shown_url(doc.policy_uri),
            tos_uri: shown_url(doc.tos_uri),
            contacts: doc.contacts.into_iter().take(5).collect(),
            software_id: doc.software_id.filter(|s| s.len() <= 200),
            software_version: doc.software_version.filter(|s| s.len() <= 100),
        },
    })
}

/// How the app authenticates: public (`none`), or `private_key_jwt` with its keys inline or
/// at an https `jwks_uri` (or the document's own origin, a loopback test bench).
fn authentication_of(
    url: &Url,
    doc: &mut Document,
) -> Result<(ClientType, clients::ClientOptions), DocumentError> {
    match doc.token_endpoint_auth_method.as_deref() {
        None | Some("none") => {
            if doc.jwks.is_some() || doc.jwks_uri.is_some() {
                return Err(bad(
                    "jwks and jwks_uri are for token_endpoint_auth_method private_key_jwt",
                ));
            }
            Ok((ClientType::Public, clients::ClientOptions::default()))
        }
        Some("private_key_jwt") => {
            let (jwks, jwks_uri) = match (doc.jwks.take(), doc.jwks_uri.take()) {
                (Some(set), None) => {
                    crate::clients::jwks::validate_jwks(&set).map_err(bad)?;
                    (Some(set), None)
                }
                (None, Some(uri)) => {
                    let same_origin = Url::parse(&uri)
                        .is_ok_and(|u| u.scheme() == "https" || u.origin() == url.origin());
                    if !same_origin || uri.len() > 500 {
                        return Err(bad("jwks_uri must be an https URL"));
                    }
                    (None, Some(uri))
                }
                _ => {
                    return Err(bad(
                        "private_key_jwt needs the app's keys: jwks or jwks_uri (one of them)",
                    ));
                }
            };
            let options = clients::ClientOptions {
                jwks,
                jwks_uri,
                ..Default::default()
            };
            Ok((ClientType::Confidential, options))
        }
        Some(other) => Err(bad(format!(
            "token_endpoint_auth_method {other} cannot be used with a metadata document: use none or private_key_jwt"
        ))),
    }
}

/// 1 to 10 exact redirect URIs.
fn redirect_uris_of(raw: Option<Vec<String>>) -> Result<Vec<RedirectUri>, DocumentError> {
    let raw_uris = raw
        .filter(|u| !u.is_empty())
        .ok_or_else(|| bad("The metadata document lists no redirect_uris"))?;
    if raw_uris.len() > 10 {
        return Err(bad(
            "The metadata document lists more than 10 redirect_uris",
        ));
    }
    raw_uris
        .iter()
        .map(|u| {
            if u.contains('*') {
                return Err(bad(format!("{u}: a redirect URI cannot have a wildcard")));
            }
            RedirectUri::parse(u).map_err(|e| bad(format!("{u}: {e}")))
        })
        .collect()
}

/// The code flow only: `authorization_code` (and `refresh_token`), response type `code`.
fn grant_types_of(doc: &mut Document) -> Result<Vec<String>, DocumentError> {
    let grant_types = doc
        .grant_types
        .take()
        .unwrap_or_else(clients::default_grant_types);
    if grant_types.is_empty()
        || grant_types
            .iter()
            .any(|g| g != "authorization_code" && g != "refresh_token")
    {
        return Err(bad(
            "grant_types may list only authorization_code and refresh_token",
        ));
    }
    if !grant_types.iter().any(|g| g == "authorization_code") {
        return Err(bad("grant_types must include authorization_code"));
    }
    if let Some(types) = &doc.response_types
        && types.iter().any(|t| t != "code")
    {
        return Err(bad("response_types may list only code"));
    }
    Ok(grant_types)
}

/// The scopes asked (default: every scope an app described by a document may have).
fn scopes_of(scope: Option<&str>, grantable: &ScopeSet) -> Result<ScopeSet, DocumentError> {
    match scope.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(grantable.clone()),
        Some(raw) => {
            let asked = ScopeSet::parse(raw).map_err(|e| bad(format!("scope: {e}")))?;
            if let Some(extra) = asked.difference(grantable).first() {
                return Err(bad(format!(
                    "scope: {extra} cannot be given to an app described by a metadata document"
                )));
            }
            Ok(asked)
        }
    }
}

/// How long a document may be kept: its `Cache-Control` `max-age` (or `s-maxage`), between
/// the floor and the ceiling; `no-store`/`no-cache` mean the floor.
pub fn cache_lifetime(cache_control: Option<&str>) -> Duration {
    let Some(header) = cache_control else {
        return CACHE_DEFAULT;
    };
    let mut max_age = None;
    for directive in header.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        if directive == "no-store" || directive == "no-cache" {
            return CACHE_FLOOR;
        }
        if let Some(v) = directive
            .strip_prefix("s-maxage=")
            .or_else(|| directive.strip_prefix("max-age="))
            && let Ok(seconds) = v.trim_matches('"').parse::<i64>()
        {
            max_age = Some(max_age.map_or(seconds, |m: i64| m.min(seconds)));
        }
    }
    max_age.map_or(CACHE_DEFAULT, |s| {
        Duration::seconds(s.clamp(CACHE_FLOOR.num_seconds(), CACHE_CEILING.num_seconds()))
    })
}

/// GET the document: public addresses only (checked after resolution, and the connection goes
/// to exactly the addresses checked), no redirects, no cookies or credentials, ≤ 3 s, ≤ 5 KB.
/// Returns the body and its `Cache-Control`.
async fn fetch(
    url: &Url,
    loopback_for_tests: bool,
) -> Result<(Vec<u8>, Option<String>), DocumentError> {
    use crate::net::outbound::{self, Unreachable};
    let host = url
        .host_str()
        .ok_or_else(|| bad("The client_id URL has no host"))?
        .to_owned();
    let allowed = |ip: std::net::IpAddr| {
        outbound::is_public(ip) || (loopback_for_tests && loopback_http(url) && ip.is_loopback())
    };
    let pinned = outbound::pin(url, allowed, FETCH_TIMEOUT)
        .await
        .map_err(|why| match why {
            Unreachable::NoHost => bad("The client_id URL has no host"),
            // One answer for both, so that an outsider learns nothing about internal names.
            Unreachable::DoesNotResolve | Unreachable::NotAllowed => not_public(&host),
        })?;
    let http = pinned
        .client(FETCH_TIMEOUT)
        .map_err(|e| bad(format!("cannot fetch: {e}")))?;
    let started = Instant::now();
    let mut response = http
        .get(url.clone())
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                bad("The metadata document did not arrive within 3 seconds")
            } else {
                // Never why (refused, reset, TLS): an outsider would map ports with it.
                bad("The metadata document could not be fetched")
            }
        })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(bad(format!(
            "The metadata document URL answered a redirect ({}): redirects are not followed",
            status.as_u16()
        )));
    }
    if status != reqwest::StatusCode::OK {
        return Err(bad(format!(
            "The metadata document URL answered {} instead of 200",
            status.as_u16()
        )));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(bad("The metadata document is larger than 5 KB"));
    }
    let cache_control = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    loop {
        let remaining = FETCH_TIMEOUT.saturating_sub(started.elapsed());
        let chunk = tokio::time::timeout(remaining, response.chunk())
            .await
            .map_err(|_| bad("The metadata document did not arrive within 3 seconds"))?
            .map_err(|_| bad("The metadata document could not be read"))?;
        let Some(chunk) = chunk else { break };
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(bad("The metadata document is larger than 5 KB"));
        }
    }
    Ok((body, cache_control))
}

/// An app's JWK Set from its `jwks_uri` (`private_key_jwt`), fetched through the same guards
/// as metadata documents ([`guarded_fetch`]): a failing URL is not fetched again for a minute
/// however many assertions name it, a failing host not after five failures, a blocked host
/// never, and every fetch counts against the process's budget and slots.
pub async fn fetch_keys(state: &AppState, uri: &str) -> Result<serde_json::Value, DocumentError> {
    let url = parse_client_id(uri, state.settings.cimd_loopback_http)?;
    let (body, _) = match guarded_fetch(state, &url, uri).await {
        Ok(fetched) => fetched,
        Err(ClientError::Document(e)) => return Err(e),
        Err(ClientError::Db(e)) => {
            log::warn!("checking the blocked hosts before fetching {uri}: {e}");
            return Err(bad("Gatehouse cannot check this host right now: try again"));
        }
    };
    serde_json::from_slice(&body).map_err(|e| {
        let error = bad("The JWK Set is not JSON");
        remember_failure(state, &url, uri, &error);
        log::debug!("{uri}: {e}");
        error
    })
}

/// The one way Gatehouse fetches from an address someone else chose (metadata documents and
/// `jwks_uri`s): the failure memory first (by URL for a minute, by host after
/// [`HOST_FAILURES`]), then the administrators' blocked hosts, the budget of
/// [`FETCHES_PER_MINUTE`] and the [`CONCURRENT_FETCHES`] slots, then [`fetch`] (public
/// addresses only, no redirects, ≤ 3 s, ≤ 5 KB). A failed fetch is remembered.
async fn guarded_fetch(
    state: &AppState,
    url: &Url,
    remembered_as: &str,
) -> Result<(Vec<u8>, Option<String>), ClientError> {
    let host = url.host_str().unwrap_or_default().to_owned();
    if let Some(e) = state.cimd_fetches.recent(remembered_as, &host, state.now()) {
        crate::metrics::client_document("remembered");
        return Err(ClientError::Document(e));
    }
    let blocked_host = host.clone();
    let blocked = state
        .db(move |c| is_blocked(c, &blocked_host))
        .await
        .map_err(ClientError::Db)?;
    if blocked {
        return Err(ClientError::Document(blocked_message(&host)));
    }
    let busy = || {
        ClientError::Document(bad(
            "Gatehouse is fetching too many documents right now: try again in a moment",
        ))
    };
    if state
        .rate_limits
        .check("cimd-fetches".into(), FETCHES_PER_MINUTE)
        .await
        .retry_after
        .is_some()
    {
        return Err(busy());
    }
    let Ok(_slot) = state.cimd_fetches.in_flight.try_acquire() else {
        return Err(busy());
    };
    fetch(url, state.settings.cimd_loopback_http)
        .await
        .map_err(|e| {
            remember_failure(state, url, remembered_as, &e);
            ClientError::Document(e)
        })
}

fn remember_failure(state: &AppState, url: &Url, remembered_as: &str, error: &DocumentError) {
    crate::metrics::client_document("refused");
    let host = url.host_str().unwrap_or_default();
    state
        .cimd_fetches
        .remember(remembered_as, host, error, state.now());
    log::info!("fetching {remembered_as}: {error}");
}

/// One answer for a name that does not resolve and one that resolves somewhere private, so
/// that the error page tells an outsider nothing about internal names.
fn not_public(host: &str) -> DocumentError {
    bad(format!(
        "{host} does not resolve to a public address: Gatehouse fetches documents from public addresses only"
    ))
}

/// Whether the operator's policy still lets this metadata-document app act (checked at the
/// token endpoint too, so that switching documents off or dropping a host ends its refreshes).
pub fn still_allowed(state: &AppState, client: &Client) -> bool {
    client.origin() != Origin::Cimd
        || client
            .document_host()
            .is_some_and(|host| state.settings.cimd.allows(&host))
}

/// The app a metadata-document `client_id` names, fetched again when its cache lifetime has
/// ended. `Ok(None)`: such identifiers are not accepted here (off, or the host not allowed).
pub async fn client(state: &AppState, client_id: &str) -> Result<Option<Arc<Client>>, ClientError> {
    let url = parse_client_id(client_id, state.settings.cimd_loopback_http)
        .map_err(ClientError::Document)?;
    let host = url.host_str().unwrap_or_default().to_owned();
    if !state.settings.cimd.allows(&host) {
        return Ok(None);
    }
    let now = state.now();
    let known = state.client(client_id).await.map_err(ClientError::Db)?;
    if let Some(c) = &known
        && (c.origin() != Origin::Cimd || c.metadata_expires_at.is_some_and(|until| now < until))
    {
        return Ok(known);
    }
    let (body, cache_control) = guarded_fetch(state, &url, client_id).await?;
    let all = state.scope_registry().await.map_err(ClientError::Db)?;
    let grantable = crate::policy::grantable::self_registered_may_ask(&all);
    let described = match validate(&url, &body, &grantable) {
        Ok(d) => {
            crate::metrics::client_document("fetched");
            d
        }
        Err(e) => {
            remember_failure(state, &url, client_id, &e);
            return Err(ClientError::Document(e));
        }
    };
    let lifetime = cache_lifetime(cache_control.as_deref());
    let id = client_id.to_owned();
    let resources = state.settings.registration.resources.clone();
    let stored = state
        .db(move |c| store(c, &id, &described, &resources, now, now + lifetime))
        .await
        .map_err(ClientError::Db)?;
    match stored {
        Some(stored) => Ok(Some(state.key_cache.put_client(stored))),
        // Blocked while the document was on its way.
        None => Err(ClientError::Document(blocked_message(&host))),
    }
}

#[derive(Debug)]
pub enum ClientError {
    Document(DocumentError),
    Db(DbError),
}

fn blocked_message(host: &str) -> DocumentError {
    bad(format!(
        "An administrator blocked apps described by documents on {host}"
    ))
}

/// A host and every parent domain of it (`a.b.example.com` → itself, `b.example.com`,
/// `example.com`, `com`): a block on a domain covers its subdomains.
pub fn host_and_parents(host: &str) -> Vec<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
        return vec![host];
    }
    let mut names = vec![host.clone()];
    let mut rest = host.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        names.push(parent.to_owned());
        rest = parent;
    }
    names
}

/// Whether an administrator blocked this host or a domain it is under.
pub fn is_blocked(conn: &mut DbConn, host: &str) -> Result<bool, DbError> {
    Ok(blocked_client_hosts::table
        .filter(blocked_client_hosts::host.eq_any(host_and_parents(host)))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// Insert the app or refresh what its document says (a disabled app stays disabled); `None`
/// when its host was blocked meanwhile.
fn store(
    conn: &mut DbConn,
    id: &str,
    d: &Described,
    resources: &[String],
    now: NaiveDateTime,
    expires: NaiveDateTime,
) -> Result<Option<Client>, DbError> {
    let uris: Vec<&str> = d.redirect_uris.iter().map(RedirectUri::as_str).collect();
    let metadata = serde_json::to_string(&d.description).unwrap_or_else(|_| "{}".into());
    let options = d.options.to_storage();
    crate::db::write_transaction(conn, |c| {
        let host = Url::parse(id)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        if is_blocked(c, &host)? {
            return Ok(None);
        }
        let row = clients::DescribedRow {
            name: &d.name,
            redirect_uris: &uris,
            scopes: &d.scopes,
            grant_types: &d.grant_types,
            metadata: &metadata,
            client_type: d.client_type.as_str(),
            options: &options,
            resources,
            expires,
        };
        match clients::origin_of(c, id)? {
            Some(origin) if origin != Origin::Cimd.as_str() => {}
            Some(_) => clients::refresh_described(c, id, &row, now)?,
            None => {
                // Another instance (or request) may insert the same app at the same moment:
                // the first one's row stands (the insert is its own savepoint, so the
                // transaction goes on after the conflict on PostgreSQL too).
                let inserted = crate::db::write_transaction(c, |c| {
                    clients::insert_described(c, id, &row, now)
                });
                match inserted {
                    Ok(()) => {}
                    Err(diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::UniqueViolation,
                        _,
                    )) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        clients::find(c, id)
    })
}

/// The blocked hosts, by name, with when each was blocked.
pub fn blocked_hosts(conn: &mut DbConn) -> Result<Vec<(String, NaiveDateTime)>, DbError> {
    Ok(blocked_client_hosts::table
        .order(blocked_client_hosts::host)
        .select((blocked_client_hosts::host, blocked_client_hosts::created_at))
        .load(conn)?)
}

/// Block a host (blocking it again changes nothing).
pub fn block_host(
    conn: &mut DbConn,
    host: &str,
    by: &str,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    let exists = blocked_client_hosts::table
        .find(host)
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        diesel::insert_into(blocked_client_hosts::table)
            .values((
                blocked_client_hosts::host.eq(host),
                blocked_client_hosts::blocked_by.eq(by),
                blocked_client_hosts::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Lift a host's block: how many rows went (0: it was not blocked).
pub fn unblock_host(conn: &mut DbConn, host: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(blocked_client_hosts::table.find(host)).execute(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls_follow_the_drafts_rules() {
        assert!(parse_client_id("https://app.example.com/client.json", false).is_ok());
        assert!(parse_client_id("https://app.example.com/c?v=1", false).is_ok());
        for bad_id in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/client.json#x",
            "https://user:pw@app.example.com/client.json",
            "https://user@app.example.com/client.json",
            "https://app.example.com/a/../client.json",
            "https://app.example.com/./client.json",
            "https://APP.example.com/client.json",
            "https://app.example.com:443/client.json",
            "https://app.example.com/client json",
            "ftp://app.example.com/client.json",
            "http://127.0.0.1:8080/client.json",
            "https://app.example.com:8443/client.json",
            "https://app.example.com./client.json",
        ] {
            assert!(parse_client_id(bad_id, false).is_err(), "{bad_id}");
        }
        assert!(parse_client_id("http://127.0.0.1:8080/client.json", true).is_ok());
        assert!(parse_client_id("http://10.0.0.1:8080/client.json", true).is_err());
        assert!(parse_client_id("http://localhost:8080/client.json", true).is_err());
    }

    #[test]
    fn a_block_covers_the_host_and_its_subdomains() {
        assert_eq!(
            host_and_parents("A.b.Example.com."),
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        assert_eq!(host_and_parents("127.0.0.1"), ["127.0.0.1"]);
    }

    #[test]
    fn the_operators_host_list_matches_exactly_or_by_subdomain() {
        let policy = crate::config::CimdPolicy::parse("tools.example.com, *.example.org").unwrap();
        assert!(policy.allows("tools.example.com"));
        assert!(policy.allows("TOOLS.example.com"));
        assert!(!policy.allows("x.tools.example.com"));
        assert!(!policy.allows("eviltools.example.com"));
        assert!(policy.allows("a.example.org"));
        assert!(policy.allows("a.b.example.org"));
        assert!(!policy.allows("example.org"));
        assert!(!policy.allows("evilexample.org"));
        assert!(!policy.allows("example.org.evil.com"));
        assert!(crate::config::CimdPolicy::parse("bad host!").is_err());
        assert!(!crate::config::CimdPolicy::Off.allows("tools.example.com"));
    }

    fn grantable() -> ScopeSet {
        ScopeSet::parse("read:users openid profile").unwrap()
    }

    fn url() -> Url {
        Url::parse("https://app.example.com/client.json").unwrap()
    }

    #[test]
    fn a_valid_document_describes_a_public_app() {
        let doc = br#"{"client_id":"https://app.example.com/client.json","client_name":"Agent",
            "redirect_uris":["http://127.0.0.1:3000/cb","https://app.example.com/cb"],
            "logo_uri":"http://insecure.example.com/logo.png","extra":{"ignored":true}}"#;
        let d = validate(&url(), doc, &grantable()).unwrap();
        assert_eq!(d.name, "Agent");
        assert_eq!(d.redirect_uris.len(), 2);
        assert_eq!(d.scopes, grantable());
        assert_eq!(d.description.logo_uri, None);
        assert_eq!(d.grant_types, clients::default_grant_types());
    }

    #[test]
    fn documents_that_lie_or_ask_too_much_are_refused() {
        let cases: [&[u8]; 9] = [
            br#"{"client_id":"https://app.example.com/client.jsoN","redirect_uris":["https://a.example/cb"]}"#,
            br#"{"redirect_uris":["https://a.example/cb"]}"#,
            br#"{"client_id":"https://app.example.com/client.json"}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://a.example/cb"],"client_secret":"x"}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["http://evil.example/cb"]}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://*.example/cb"]}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://a.example/cb"],"scope":"admin:users"}"#,
            br#"{"client_id":"https://app.example.com/client.json","redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}"#,
        ];
        for doc in cases {
            assert!(
                validate(&url(), doc, &grantable()).is_err(),
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
        assert!(validate(&url(), b"[1,2]", &grantable()).is_err());
    }

    #[test]
    fn cache_lifetimes_are_bounded() {
        assert_eq!(cache_lifetime(None), CACHE_DEFAULT);
        assert_eq!(cache_lifetime(Some("max-age=7200")), Duration::hours(2));
        assert_eq!(cache_lifetime(Some("public, max-age=1")), CACHE_FLOOR);
        assert_eq!(cache_lifetime(Some("max-age=99999999")), CACHE_CEILING);
        assert_eq!(cache_lifetime(Some("no-store")), CACHE_FLOOR);
        assert_eq!(
            cache_lifetime(Some("max-age=7200, s-maxage=3600")),
            Duration::hours(1)
        );
        assert_eq!(cache_lifetime(Some("private")), CACHE_DEFAULT);
        // A number no duration holds is the ceiling, not a panic.
        assert_eq!(
            cache_lifetime(Some("max-age=10000000000000000")),
            CACHE_CEILING
        );
        assert_eq!(cache_lifetime(Some("max-age=-5")), CACHE_FLOOR);
    }
}
