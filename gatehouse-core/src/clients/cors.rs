//! Web origins (CORS): which browser pages may call the token endpoint, revocation and
//! UserInfo for an app. Only public apps have any (a confidential app's secret never belongs
//! in a browser); an app's origins are the ones it registered (`allowed_origins`), or, when it
//! registered none, the origins of its redirect URIs — an `https` redirect URI's origin
//! exactly, a loopback `http` one's host on any port (as its redirect matches any port,
//! RFC 8252 §7.3). Custom-scheme redirect URIs (native apps) give no origin.

use url::{Host, Url};

use super::{Client, ClientType};

/// Most origins an app may register.
pub const MAX_ORIGINS: usize = 20;

/// Why a string is not a web origin an app may register.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OriginError(pub &'static str);

fn loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// `raw` as a registrable web origin, serialized as browsers send it (`https://app.example.com`,
/// `http://localhost:5173`): `https`, or `http` on a loopback host; no path, query, fragment,
/// credentials or wildcard.
pub fn parse_origin(raw: &str) -> Result<String, OriginError> {
    let raw = raw.trim();
    if raw.len() > 300 || raw.contains('*') {
        return Err(OriginError(
            "An origin is scheme://host[:port], without wildcards",
        ));
    }
    let url = Url::parse(raw).map_err(|_| OriginError("An origin is scheme://host[:port]"))?;
    match url.scheme() {
        "https" if url.host().is_some() => {}
        "http" if loopback_host(&url) => {}
        "http" => {
            return Err(OriginError(
                "An origin is https, or http on localhost/127.0.0.1/[::1]",
            ));
        }
        _ => {
            return Err(OriginError(
                "An origin is https (or http on a loopback host)",
            ));
        }
    }
    // Nothing after the authority but an optional `/` (the parser adds the `/` path).
    let authority = raw.get(url.scheme().len() + 3..).unwrap_or("");
    let bare = url.path() == "/" && !authority.trim_end_matches('/').contains('/');
    if !bare
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(OriginError(
            "An origin has no path, query, fragment or credentials: scheme://host[:port]",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// The web origins an app of `client_type` registers, checked (each an origin, at most
/// [`MAX_ORIGINS`], duplicates dropped): only a public app has any.
pub fn checked_origins(
    client_type: ClientType,
    raw: &[String],
) -> Result<Vec<String>, OriginError> {
    if client_type != ClientType::Public {
        return Err(OriginError(
            "only a public app (a browser or mobile app) has web origins: a confidential app's secret never belongs in a browser",
        ));
    }
    if raw.len() > MAX_ORIGINS {
        return Err(OriginError("at most 20 origins"));
    }
    let mut origins: Vec<String> = Vec::with_capacity(raw.len());
    for one in raw {
        let origin = parse_origin(one)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    Ok(origins)
}

/// The origins a set of apps accept requests from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    /// Exact origins (`https://app.example.com`, `http://localhost:5173`).
    exact: Vec<String>,
    /// Loopback `http` hosts on any port (`127.0.0.1`, `localhost`, `[::1]`), from redirect URIs.
    loopback_any_port: Vec<String>,
}

impl Origins {
    /// Whether a request from `origin` (the `Origin` header as sent) is one of these.
    pub fn allows(&self, origin: &str) -> bool {
        if self.exact.iter().any(|o| o == origin) {
            return true;
        }
        let Some(rest) = origin.strip_prefix("http://") else {
            return false;
        };
        // `host:port`, or `[v6]:port`: the host is everything before the last `:` that
        // follows the bracket, if any.
        let host = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => &rest[..i],
            _ => rest,
        };
        self.loopback_any_port
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host))
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.loopback_any_port.is_empty()
    }

    /// Those of another app too.
    pub fn add(&mut self, other: Origins) {
        for o in other.exact {
            if !self.exact.contains(&o) {
                self.exact.push(o);
            }
        }
        for h in other.loopback_any_port {
            if !self.loopback_any_port.contains(&h) {
                self.loopback_any_port.push(h);
            }
        }
    }

    /// As shown to the app's owner: exact origins, and `http://host:*` for a loopback host on
    /// any port.
    pub fn shown(&self) -> Vec<String> {
        let mut out = self.exact.clone();
        out.extend(
            self.loopback_any_port
                .iter()
                .map(|h| format!("http://{h}:*")),
        );
        out
    }
}

impl Client {
    /// The web origins this app accepts browser requests from (none for confidential apps).
    pub fn web_origins(&self) -> Origins {
        if self.client_type() != ClientType::Public {
            return Origins::default();
        }
        if let Some(listed) = self.options().allowed_origins {
            return Origins {
                exact: listed,
                loopback_any_port: Vec::new(),
            };
        }
        let mut origins = Origins::default();
        for uri in self.redirect_uris() {
            let Ok(url) = Url::parse(uri.as_str()) else {
                continue;
            };
            let derived = match url.scheme() {
                "https" => Origins {
                    exact: vec![url.origin().ascii_serialization()],
                    loopback_any_port: Vec::new(),
                },
                "http" if loopback_host(&url) => Origins {
                    exact: Vec::new(),
                    loopback_any_port: url.host_str().map(str::to_owned).into_iter().collect(),
                },
                _ => continue,
            };
            origins.add(derived);
        }
        origins
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("https://App.Example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("https://app.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin("http://localhost:5173").unwrap(),
            "http://localhost:5173"
        );
        assert_eq!(
            parse_origin("https://app.example.com:443").unwrap(),
            "https://app.example.com"
        );
        for bad in [
            "http://app.example.com",
            "https://app.example.com/spa",
            "https://app.example.com/?x=1",
            "https://*.example.com",
            "https://user:pw@app.example.com",
            "null",
            "file:///tmp/x.html",
            "app.example.com",
            "com.example.app://cb",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_public_app_registers_origins_and_each_once() {
        let two = vec![
            "https://a.example".to_owned(),
            "https://A.example/".to_owned(),
        ];
        assert_eq!(
            checked_origins(ClientType::Public, &two).unwrap(),
            vec!["https://a.example"]
        );
        assert!(checked_origins(ClientType::Confidential, &two).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("https://a{i}.example")).collect();
        assert!(checked_origins(ClientType::Public, &many).is_err());
    }

    #[test]
    fn loopback_hosts_match_on_any_port_and_nothing_else_does() {
        let origins = Origins {
            exact: vec!["https://app.example.com".into()],
            loopback_any_port: vec!["127.0.0.1".into(), "[::1]".into()],
        };
        assert!(origins.allows("https://app.example.com"));
        assert!(origins.allows("http://127.0.0.1:5173"));
        assert!(origins.allows("http://127.0.0.1"));
        assert!(origins.allows("http://[::1]:8080"));
        assert!(!origins.allows("https://app.example.com:8443"));
        assert!(!origins.allows("https://evil.example.com"));
        assert!(!origins.allows("http://app.example.com"));
        assert!(!origins.allows("https://127.0.0.1:5173"));
        assert!(!origins.allows("http://localhost:5173"));
        assert!(!origins.allows("http://127.0.0.1.evil.com:80"));
        assert!(!origins.allows("null"));
    }
}
