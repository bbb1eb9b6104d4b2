//! Where a key may be used from and what it may call, beyond scopes and the IP allowlist:
//!
//! - **Referrers** (`allowed_referrers`): origins such as `https://app.example.com` (scheme,
//!   host and port exactly) or host patterns such as `*.example.com` (any subdomain, `https`
//!   only unless written `http://*.example.com`). A request must send a matching `Origin`, or
//!   without one a `Referer` whose origin matches. For keys used from browsers: a browser cannot
//!   forge these headers, but any other client can, so this is a speed bump against a key copied
//!   out of a web page, not a secret.
//! - **Endpoints** (`allowed_endpoints`): `METHOD /path` patterns such as `GET /v1/orders/*`.
//!   The method may be `*` (or left out: any method). In the path, a `*` segment matches exactly
//!   one segment, and a final `*` matches one or more. A path that could mean two things (`..`,
//!   `.`, an empty segment, an encoded `/`, `\` or `.`) matches no pattern.
//!
//! Empty lists restrict nothing. Gatehouse applies both to its own `/v1`; introspection reports
//! them so that resource servers apply them to theirs (`gatehouse-verify` does).

use std::fmt;

/// At most this many entries in each list.
pub const MAX_ENTRIES: usize = 50;

/// One allowed referrer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Referrer {
    /// `scheme://host[:port]`, lower-case, default port left out.
    Origin(String),
    /// Any subdomain of `suffix` (written `*.example.com`; `suffix` is `.example.com`) over
    /// `scheme`.
    Subdomains { scheme: String, suffix: String },
}

/// One allowed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `None`: any method.
    pub method: Option<String>,
    /// The path's segments after the leading `/`; `*` as described above.
    pub segments: Vec<String>,
}

/// A key's referrer and endpoint lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrictions {
    pub referrers: Vec<Referrer>,
    pub endpoints: Vec<Endpoint>,
}

impl fmt::Display for Referrer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Referrer::Origin(origin) => f.write_str(origin),
            Referrer::Subdomains { scheme, suffix } if scheme == "https" => write!(f, "*{suffix}"),
            Referrer::Subdomains { scheme, suffix } => write!(f, "{scheme}://*{suffix}"),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} /{}",
            self.method.as_deref().unwrap_or("*"),
            self.segments.join("/")
        )
    }
}

fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// A host (lower-case letters, digits, `-`, `.`; or a bracketed IPv6 address) with an
/// optional port.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, after.strip_prefix(':'))
            }
            None => return false,
        },
        None => match authority.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(authority), None),
        },
    };
    if let Some(host) = host
        && (host.is_empty()
            || !host.chars().all(is_host_char)
            || host.starts_with(['.', '-'])
            || host.ends_with(['.', '-'])
            || host.contains(".."))
    {
        return false;
    }
    port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok_and(|n| n > 0))
}

/// `scheme://authority` normalised (lower case, default port dropped), or `None` when `raw`
/// is not an origin.
pub fn normalize_origin(raw: &str) -> Option<String> {
    let lower = raw.trim().to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://")?;
    if !matches!(scheme, "https" | "http") || !valid_authority(authority) {
        return None;
    }
    let authority = match (scheme, authority.rsplit_once(':')) {
        ("https", Some((host, "443"))) | ("http", Some((host, "80"))) => host.to_owned(),
        _ => authority.to_owned(),
    };
    Some(format!("{scheme}://{authority}"))
}

/// The origin of a `Referer` URL (`https://a.example.com/page?q` → `https://a.example.com`).
pub fn origin_of_url(url: &str) -> Option<String> {
    let (scheme, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.contains('@') {
        return None;
    }
    normalize_origin(&format!("{scheme}://{authority}"))
}

impl Referrer {
    pub fn parse(raw: &str) -> Result<Referrer, String> {
        let item = raw.trim();
        let invalid = || {
            format!(
                "{item:?} is neither an origin (https://app.example.com) nor a host pattern (*.example.com)"
            )
        };
        let (scheme, rest) = match item.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, item),
        };
        if let Some(host) = rest.strip_prefix("*.") {
            let host = host.to_ascii_lowercase();
            let scheme = scheme.unwrap_or_else(|| "https".into());
            // At least two labels after the star: `*.com` would admit a whole top-level domain.
            if !matches!(scheme.as_str(), "https" | "http")
                || !valid_authority(&host)
                || host.contains(':')
                || !host.contains('.')
            {
                return Err(invalid());
            }
            return Ok(Referrer::Subdomains {
                scheme,
                suffix: format!(".{host}"),
            });
        }
        if scheme.is_none() || rest.contains(['/', '?', '#', '@', '*']) {
            return Err(invalid());
        }
        normalize_origin(item)
            .map(Referrer::Origin)
            .ok_or_else(invalid)
    }

    /// Whether a normalised origin is allowed by this entry.
    pub fn admits(&self, origin: &str) -> bool {
        match self {
            Referrer::Origin(allowed) => allowed == origin,
            Referrer::Subdomains { scheme, suffix } => origin
                .strip_prefix(scheme.as_str())
                .and_then(|o| o.strip_prefix("://"))
                .is_some_and(|authority| {
                    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }),
        }
    }

    /// Whether everything `inner` admits, this entry admits too.
    fn covers(&self, inner: &Referrer) -> bool {
        match (self, inner) {
            (outer, Referrer::Origin(origin)) => outer.admits(origin),
            (
                Referrer::Subdomains { scheme, suffix },
                Referrer::Subdomains {
                    scheme: s2,
                    suffix: x2,
                },
            ) => scheme == s2 && x2.ends_with(suffix.as_str()),
            (Referrer::Origin(_), Referrer::Subdomains { .. }) => false,
        }
    }
}

const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// Whether a request path could be read two ways (see the module documentation).
fn ambiguous_path(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    !path.starts_with('/')
        || path.contains('\\')
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains("%2e")
        || path[1..]
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
}

impl Endpoint {
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let item = raw.trim();
        let (method, path) = match item.split_once(char::is_whitespace) {
            Some((m, p)) => (Some(m.to_ascii_uppercase()), p.trim()),
            None => (None, item),
        };
        let method = match method.as_deref() {
            None | Some("*") => None,
            Some(m) if METHODS.contains(&m) => Some(m.to_owned()),
            Some(m) => return Err(format!("{m:?} is not an HTTP method (GET, POST, … or *)")),
        };
        let trailing_slash = path.len() > 1 && path.ends_with('/');
        if !path.starts_with('/') || path.len() > 300 || trailing_slash || ambiguous_path(path) {
            return Err(format!(
                "{path:?} is not a path pattern such as /v1/orders/* (absolute, no empty, . or .. segments)"
            ));
        }
        let segments: Vec<String> = path[1..].split('/').map(str::to_owned).collect();
        if segments.iter().any(|s| {
            s.contains('*') && s != "*"
                || s.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
        }) {
            return Err(format!(
                "{path:?}: a * stands for a whole segment (/v1/orders/*), and a pattern has no query"
            ));
        }
        Ok(Endpoint { method, segments })
    }

    /// Whether a request (its method and raw path) is allowed by this entry.
    pub fn admits(&self, method: &str, path: &str) -> bool {
        if self.method.as_deref().is_some_and(|m| m != method) {
            return false;
        }
        if ambiguous_path(path) {
            return false;
        }
        let path = decode_unreserved(path.split('?').next().unwrap_or(path));
        let requested: Vec<&str> = path[1..].split('/').collect();
        segments_match(&self.segments, &requested)
    }

    /// Whether everything `inner` admits, this entry admits too.
    fn covers(&self, inner: &Endpoint) -> bool {
        let method_ok = match (&self.method, &inner.method) {
            (None, _) => true,
            (Some(a), Some(b)) => a == b,
            (Some(_), None) => false,
        };
        // Read `inner`'s pattern as a path: a `*` in it is matched only by a `*` here.
        let requested: Vec<&str> = inner.segments.iter().map(String::as_str).collect();
        method_ok && segments_match(&self.segments, &requested)
    }
}

/// The path with percent-encoded letters, digits, `-`, `_` and `~` decoded (`/v1/users/%6De`
/// is `/v1/users/me`, as the router reads it); every other escape stays as sent.
fn decode_unreserved(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains('%') {
        return std::borrow::Cow::Borrowed(path);
    }
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
            && let Ok(byte) = u8::from_str_radix(&path[i + 1..i + 3], 16)
            && (byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~'))
        {
            out.push(byte as char);
            i += 3;
            continue;
        }
        out.push(path[i..].chars().next().unwrap_or('%'));
        i += path[i..].chars().next().map_or(1, char::len_utf8);
    }
    std::borrow::Cow::Owned(out)
}

/// `pattern` against `path`: `*` is one segment, a final `*` one or more.
fn segments_match(pattern: &[String], path: &[&str]) -> bool {
    for (i, want) in pattern.iter().enumerate() {
        let last = i + 1 == pattern.len();
        if want == "*" && last {
            return path.len() > i;
        }
        match path.get(i) {
            Some(got) if want == "*" || want == got => {}
            _ => return false,
        }
    }
    path.len() == pattern.len()
}

/// Whether `ip` may use a key with this IP allowlist (empty: any address; no address: none).
/// IPv4-mapped IPv6 addresses count as their IPv4 address.
pub fn ip_allowed(nets: &[ipnet::IpNet], ip: Option<std::net::IpAddr>) -> bool {
    if nets.is_empty() {
        return true;
    }
    let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
        return false;
    };
    nets.iter().any(|n| n.contains(&ip))
}

impl Restrictions {
    /// Both lists from their request form; the error names the field.
    pub fn parse(
        referrers: &[String],
        endpoints: &[String],
    ) -> Result<Restrictions, (&'static str, String)> {
        if referrers.len() > MAX_ENTRIES {
            return Err((
                "allowed_referrers",
                format!("At most {MAX_ENTRIES} referrers"),
            ));
        }
        if endpoints.len() > MAX_ENTRIES {
            return Err((
                "allowed_endpoints",
                format!("At most {MAX_ENTRIES} endpoints"),
            ));
        }
        let mut restrictions = Restrictions::default();
        for r in referrers {
            let r = Referrer::parse(r).map_err(|e| ("allowed_referrers", e))?;
            if !restrictions.referrers.contains(&r) {
                restrictions.referrers.push(r);
            }
        }
        for e in endpoints {
            let e = Endpoint::parse(e).map_err(|e| ("allowed_endpoints", e))?;
            if !restrictions.endpoints.contains(&e) {
                restrictions.endpoints.push(e);
            }
        }
        Ok(restrictions)
    }

    /// From the stored columns (one entry per line). Stored values were validated on the way
    /// in; an entry that no longer parses is dropped from a list that stays non-empty, so it
    /// can only narrow the key.
    pub fn from_storage(referrers: &str, endpoints: &str) -> Restrictions {
        let entries = |raw: &'_ str| -> Vec<String> {
            raw.lines()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let (r, e) = (entries(referrers), entries(endpoints));
        let deny = Restrictions::deny_all();
        let mut parsed = Restrictions {
            referrers: r.iter().filter_map(|x| Referrer::parse(x).ok()).collect(),
            endpoints: e.iter().filter_map(|x| Endpoint::parse(x).ok()).collect(),
        };
        if parsed.referrers.is_empty() && !r.is_empty() {
            parsed.referrers = deny.referrers;
        }
        if parsed.endpoints.is_empty() && !e.is_empty() {
            parsed.endpoints = deny.endpoints;
        }
        parsed
    }

    /// Lists that admit no origin and no endpoint: what a list that cannot be read stands for
    /// (failing closed, never open).
    pub fn deny_all() -> Restrictions {
        Restrictions {
            referrers: vec![Referrer::Origin("invalid://none".into())],
            endpoints: vec![Endpoint {
                method: Some("NONE".into()),
                segments: vec![],
            }],
        }
    }

    pub fn referrers_to_storage(&self) -> String {
        self.referrer_strings().join("\n")
    }

    pub fn endpoints_to_storage(&self) -> String {
        self.endpoint_strings().join("\n")
    }

    pub fn referrer_strings(&self) -> Vec<String> {
        self.referrers.iter().map(ToString::to_string).collect()
    }

    pub fn endpoint_strings(&self) -> Vec<String> {
        self.endpoints.iter().map(ToString::to_string).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.referrers.is_empty() && self.endpoints.is_empty()
    }

    /// The request's origin: `Origin`, else the origin of `Referer`. `None` when neither gives
    /// one (a browser that sends `Origin: null` gives none).
    pub fn request_origin(origin: Option<&str>, referer: Option<&str>) -> Option<String> {
        match origin {
            Some(o) if o.trim() != "null" => normalize_origin(o),
            _ => referer.and_then(origin_of_url),
        }
    }

    /// `true` when the referrer list is empty or admits `origin`.
    pub fn referrer_allowed(&self, origin: Option<&str>) -> bool {
        self.referrers.is_empty()
            || origin.is_some_and(|o| self.referrers.iter().any(|r| r.admits(o)))
    }

    /// `true` when the endpoint list is empty or admits the request.
    pub fn endpoint_allowed(&self, method: &str, path: &str) -> bool {
        self.endpoints.is_empty() || self.endpoints.iter().any(|e| e.admits(method, path))
    }

    /// `Ok` when `inner` is no broader than `self` in both lists (attenuation: an empty list
    /// is the broadest).
    pub fn admits(&self, inner: &Restrictions) -> Result<(), String> {
        if !self.referrers.is_empty() {
            if inner.referrers.is_empty() {
                return Err("no referrer restriction, and the caller has one".into());
            }
            if let Some(extra) = inner
                .referrers
                .iter()
                .find(|r| !self.referrers.iter().any(|o| o.covers(r)))
            {
                return Err(format!(
                    "the referrer {extra}, which the caller's list does not allow"
                ));
            }
        }
        if !self.endpoints.is_empty() {
            if inner.endpoints.is_empty() {
                return Err("no endpoint restriction, and the caller has one".into());
            }
            if let Some(extra) = inner
                .endpoints
                .iter()
                .find(|e| !self.endpoints.iter().any(|o| o.covers(e)))
            {
                return Err(format!(
                    "the endpoint {extra}, which the caller's list does not allow"
                ));
            }
        }
        Ok(())
    }

    /// What a new key takes from its caller where its request left a list empty.
    pub fn inherit(&self, requested: Restrictions) -> Restrictions {
        Restrictions {
            referrers: if requested.referrers.is_empty() {
                self.referrers.clone()
            } else {
                requested.referrers
            },
            endpoints: if requested.endpoints.is_empty() {
                self.endpoints.clone()
            } else {
                requested.endpoints
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(list: &[&str], e: &[&str]) -> Restrictions {
        let s = |l: &[&str]| l.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Restrictions::parse(&s(list), &s(e)).unwrap()
    }

    #[test]
    fn origins_match_exactly_and_host_patterns_match_subdomains() {
        let list = r(
            &[
                "https://app.example.com",
                "*.shop.test",
                "http://localhost:3000",
            ],
            &[],
        );
        for ok in [
            "https://app.example.com",
            "https://a.shop.test",
            "https://x.y.shop.test:8443",
            "http://localhost:3000",
        ] {
            assert!(list.referrer_allowed(Some(ok)), "{ok}");
        }
        for refused in [
            "http://app.example.com",
            "https://app.example.com.evil.test",
            "https://evilapp.example.com",
            "https://shop.test",
            "https://evilshop.test",
            "http://a.shop.test",
            "http://localhost:3001",
        ] {
            assert!(!list.referrer_allowed(Some(refused)), "{refused}");
        }
        assert!(
            !list.referrer_allowed(None),
            "a restricted key needs an origin"
        );
        assert!(Restrictions::default().referrer_allowed(None));
    }

    #[test]
    fn the_request_origin_comes_from_origin_then_referer() {
        let o = Restrictions::request_origin;
        assert_eq!(
            o(Some("HTTPS://App.Example.com:443"), None).unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            o(None, Some("https://app.example.com/orders?id=1#x")).unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            o(Some("null"), Some("https://app.example.com/")).unwrap(),
            "https://app.example.com"
        );
        assert_eq!(o(None, Some("https://user@app.example.com/")), None);
        assert_eq!(o(Some("garbage"), None), None);
        assert_eq!(o(None, None), None);
    }

    #[test]
    fn bad_referrers_are_refused() {
        for bad in [
            "app.example.com",
            "*.com",
            "*",
            "ftp://x.example.com",
            "https://app.example.com/path",
            "https://*app.example.com",
            "https://a b.example.com",
            "https://user@example.com",
            "https://example.com:99999",
        ] {
            assert!(Referrer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_patterns_match_methods_and_segments() {
        let list = r(
            &[],
            &[
                "GET /v1/orders/*",
                "POST /v1/orders",
                "* /v1/users/*/api-keys",
            ],
        );
        assert!(list.endpoint_allowed("GET", "/v1/orders/1"));
        assert!(list.endpoint_allowed("GET", "/v1/orders/1/items"));
        assert!(list.endpoint_allowed("GET", "/v1/orders/1?x=2"));
        assert!(list.endpoint_allowed("POST", "/v1/orders"));
        assert!(list.endpoint_allowed("DELETE", "/v1/users/usr_1/api-keys"));
        assert!(
            !list.endpoint_allowed("GET", "/v1/orders"),
            "a final * is one or more segments"
        );
        assert!(!list.endpoint_allowed("DELETE", "/v1/orders/1"));
        assert!(!list.endpoint_allowed("POST", "/v1/orders/1"));
        assert!(!list.endpoint_allowed("GET", "/v1/users/usr_1/api-keys/x"));
        for tricky in [
            "/v1/orders/../users/me",
            "/v1/orders/%2e%2e/users",
            "/v1/orders/1%2F..%2Fx",
            "/v1//orders/1",
            "/v1/orders/./1",
            "/v1/orders/1\\x",
        ] {
            assert!(!list.endpoint_allowed("GET", tricky), "{tricky}");
        }
        assert!(Restrictions::default().endpoint_allowed("DELETE", "/anything"));
        // Escaped letters read as the router reads them; other escapes stay as sent.
        assert!(list.endpoint_allowed("POST", "/v1/%6Frders"));
        assert!(!list.endpoint_allowed("POST", "/v1/orders%20"));
        assert!(
            !list.endpoint_allowed("POST", "/v1/orders%é1"),
            "no panic on odd bytes"
        );
    }

    #[test]
    fn bad_endpoints_are_refused() {
        for bad in [
            "GET orders",
            "FETCH /v1",
            "GET /v1/or*ders",
            "GET /v1/../x",
            "GET /v1/",
            "GET /v1//x",
            "GET /v1?x=1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Endpoint::parse("/v1/x").unwrap().to_string(), "* /v1/x");
        assert_eq!(
            Endpoint::parse("get /v1/x").unwrap().to_string(),
            "GET /v1/x"
        );
    }

    #[test]
    fn a_new_key_stays_within_the_callers_lists() {
        let caller = r(
            &["*.example.com", "https://other.test"],
            &["GET /v1/orders/*", "* /v1/users/me"],
        );
        assert!(
            caller
                .admits(&r(&["https://a.example.com"], &["GET /v1/orders/1"]))
                .is_ok()
        );
        assert!(
            caller
                .admits(&r(&["*.b.example.com"], &["GET /v1/orders/*/items"]))
                .is_ok()
        );
        assert!(
            caller
                .admits(&r(&["https://other.test"], &["PATCH /v1/users/me"]))
                .is_ok()
        );
        assert!(
            caller
                .admits(&r(&["https://evil.test"], &["GET /v1/orders/1"]))
                .is_err()
        );
        assert!(
            caller
                .admits(&r(&["*.other.test"], &["GET /v1/orders/1"]))
                .is_err()
        );
        assert!(
            caller
                .admits(&r(&["http://a.example.com"], &["GET /v1/orders/1"]))
                .is_err()
        );
        assert!(
            caller
                .admits(&r(&["https://a.example.com"], &["GET /v1/*"]))
                .is_err()
        );
        assert!(
            caller
                .admits(&r(&["https://a.example.com"], &["* /v1/orders/1"]))
                .is_err()
        );
        assert!(
            caller
                .admits(&r(&["https://a.example.com"], &["DELETE /v1/orders/1"]))
                .is_err()
        );
        assert!(
            caller.admits(&r(&[], &["GET /v1/orders/1"])).is_err(),
            "an empty list is wider"
        );
        assert!(caller.admits(&r(&["https://a.example.com"], &[])).is_err());
        // An unrestricted caller admits anything; a new key inherits what it left open.
        assert!(Restrictions::default().admits(&caller).is_ok());
        let inherited = caller.inherit(r(&[], &["GET /v1/orders/7"]));
        assert_eq!(inherited.referrers, caller.referrers);
        assert_eq!(inherited.endpoint_strings(), ["GET /v1/orders/7"]);
    }

    #[test]
    fn storage_round_trips_and_never_widens() {
        let list = r(
            &["*.example.com", "http://localhost:3000"],
            &["GET /v1/orders/*"],
        );
        let back =
            Restrictions::from_storage(&list.referrers_to_storage(), &list.endpoints_to_storage());
        assert_eq!(back, list);
        let broken = Restrictions::from_storage("not an origin", "nonsense");
        assert!(!broken.referrer_allowed(Some("https://a.example.com")));
        assert!(!broken.endpoint_allowed("GET", "/v1/users/me"));
    }
}
