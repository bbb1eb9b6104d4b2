//! Redirect URIs: what may be registered, and whether a requested one matches. Matching is
//! exact string comparison (RFC 6749 §3.1.2, Security BCP §4.1.3), except that for loopback
//! `http` redirects of native apps any port matches (RFC 8252 §7.3).

use url::{Host, Url};

/// A redirect URI a client may register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectUri(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedirectUriError(pub &'static str);

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

impl RedirectUri {
    pub fn parse(raw: &str) -> Result<RedirectUri, RedirectUriError> {
        if raw.len() > 2000 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(RedirectUriError(
                "The redirect URI is too long or contains spaces",
            ));
        }
        let url = Url::parse(raw)
            .map_err(|_| RedirectUriError("The redirect URI is not an absolute URL"))?;
        if url.fragment().is_some() || raw.contains('#') {
            return Err(RedirectUriError("A redirect URI cannot have a fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectUriError("A redirect URI cannot carry credentials"));
        }
        match url.scheme() {
            "https" if url.host().is_some() => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(RedirectUriError(
                    "Redirect URIs must use https (http only for 127.0.0.1, [::1] or localhost)",
                ));
            }
            // Private-use schemes of native apps (RFC 8252 §7.1): reverse domain names.
            scheme if scheme.contains('.') => {}
            _ => {
                return Err(RedirectUriError(
                    "Redirect URIs must use https, a loopback http address, or an app's reverse-domain scheme",
                ));
            }
        }
        Ok(RedirectUri(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `requested` may be used where this URI is registered.
    pub fn matches(&self, requested: &str) -> bool {
        if self.0 == requested {
            return true;
        }
        let (Ok(registered), Ok(asked)) = (Url::parse(&self.0), Url::parse(requested)) else {
            return false;
        };
        // Only loopback http relaxes anything, and only the port.
        registered.scheme() == "http"
            && is_loopback(&registered)
            && asked.scheme() == "http"
            && registered.host() == asked.host()
            && asked.username().is_empty()
            && asked.password().is_none()
            && asked.fragment().is_none()
            && registered.path() == asked.path()
            && registered.query() == asked.query()
            && same_raw_path_and_query(&self.0, requested)
    }
}

/// The path and query as written (the parser normalises some spellings, e.g. `%7e`).
fn same_raw_path_and_query(a: &str, b: &str) -> bool {
    fn tail(s: &str) -> &str {
        let after_scheme = s.split_once("://").map_or(s, |(_, rest)| rest);
        after_scheme.find('/').map_or("", |i| &after_scheme[i..])
    }
    tail(a) == tail(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_requires_https_or_loopback_and_no_fragment() {
        for ok in [
            "https://app.example.com/callback",
            "http://127.0.0.1/cb",
            "http://[::1]:8080/cb",
            "http://localhost/cb",
            "com.example.app:/oauth",
        ] {
            assert!(RedirectUri::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://app.example.com/callback",
            "https://app.example.com/cb#frag",
            "https://user:pw@app.example.com/cb",
            "/relative",
            "javascript:alert(1)",
            "https://app.example.com/c b",
            "",
        ] {
            assert!(RedirectUri::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_is_exact_for_everything_but_loopback_ports() {
        let web = RedirectUri::parse("https://app.example.com/callback").unwrap();
        assert!(web.matches("https://app.example.com/callback"));
        for bad in [
            "https://app.example.com/callback/extra",
            "https://app.example.com/callback?x=1",
            "https://app.example.com/callback/",
            "https://app.example.com:8443/callback",
            "https://user@app.example.com/callback",
            "https://app.example.com/callback#f",
            "https://app.example.com/Callback",
            "http://app.example.com/callback",
            "https://app.example.com.evil.test/callback",
        ] {
            assert!(!web.matches(bad), "{bad} must not match");
        }
        let native = RedirectUri::parse("http://127.0.0.1/cb").unwrap();
        assert!(
            native.matches("http://127.0.0.1:53121/cb"),
            "any port on loopback"
        );
        assert!(!native.matches("http://127.0.0.1:53121/cb2"));
        assert!(!native.matches("http://127.0.0.1:53121/cb?x=1"));
        assert!(
            !native.matches("http://localhost:53121/cb"),
            "another loopback name is another URI"
        );
        assert!(!native.matches("https://127.0.0.1:53121/cb"));
        let v6 = RedirectUri::parse("http://[::1]/cb").unwrap();
        assert!(v6.matches("http://[::1]:4000/cb"));
    }
}
