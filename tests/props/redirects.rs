//! Redirect URIs: registered exactly when the rules allow, and a loopback URI matches a request
//! on any port and nothing that differs beyond the port.

use gatehouse::clients::redirect::RedirectUri;
use proptest::prelude::*;

use crate::hostile_string;

/// A URI assembled from parts whose acceptability is known.
#[derive(Debug, Clone)]
struct UriParts {
    scheme: &'static str,
    userinfo: &'static str,
    /// The host as written, and whether it is a loopback address.
    host: (&'static str, bool),
    port: Option<u16>,
    path: String,
    query: Option<String>,
    fragment: Option<String>,
}

impl UriParts {
    fn render(&self) -> String {
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        let query = self
            .query
            .as_ref()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let fragment = self
            .fragment
            .as_ref()
            .map(|f| format!("#{f}"))
            .unwrap_or_default();
        format!(
            "{}://{}{}{port}{}{query}{fragment}",
            self.scheme, self.userinfo, self.host.0, self.path
        )
    }

    /// The registration rules: no fragment, no credentials, and https, loopback http, or an
    /// app's reverse-domain scheme.
    fn registrable(&self) -> bool {
        let (_, loopback) = self.host;
        self.fragment.is_none()
            && self.userinfo.is_empty()
            && (self.scheme == "https"
                || (self.scheme == "http" && loopback)
                || self.scheme.contains('.'))
    }
}

const HOSTS: [(&str, bool); 9] = [
    ("127.0.0.1", true),
    ("[::1]", true),
    ("localhost", true),
    ("app.example.com", false),
    ("evil.test", false),
    ("localhost.evil.test", false),
    ("127.0.0.1.evil.test", false),
    ("10.0.0.1", false),
    ("[::ffff:7f00:1]", false),
];

fn uri_path() -> impl Strategy<Value = String> {
    "(/[a-zA-Z0-9._~-]{0,8}){0,3}"
}

fn uri_parts() -> impl Strategy<Value = UriParts> {
    (
        prop_oneof![
            Just("https"),
            Just("http"),
            Just("com.example.app"),
            Just("javascript"),
            Just("ftp"),
            Just("ws"),
            Just("file"),
        ],
        prop_oneof![Just(""), Just("user@"), Just("user:pw@"), Just(":pw@")],
        prop::sample::select(HOSTS.to_vec()),
        prop::option::of(1u16..),
        uri_path(),
        prop::option::of("[a-z0-9=&]{0,10}"),
        prop::option::of("[a-z0-9]{0,5}"),
    )
        .prop_map(
            |(scheme, userinfo, host, port, path, query, fragment)| UriParts {
                scheme,
                userinfo,
                host,
                port,
                path,
                query,
                fragment,
            },
        )
}

/// A registered loopback URI, and a request for it on another port.
fn loopback_pair() -> impl Strategy<Value = (UriParts, UriParts)> {
    (
        prop::sample::select(vec![("127.0.0.1", true), ("[::1]", true)]),
        prop::option::of(1u16..),
        prop::option::of(1u16..),
        uri_path(),
        prop::option::of("[a-z0-9=&]{0,10}"),
    )
        .prop_map(|(host, registered_port, asked_port, path, query)| {
            let registered = UriParts {
                scheme: "http",
                userinfo: "",
                host,
                port: registered_port,
                path,
                query,
                fragment: None,
            };
            let asked = UriParts {
                port: asked_port,
                ..registered.clone()
            };
            (registered, asked)
        })
}

/// One thing other than the port changed in a loopback request.
#[derive(Debug, Clone)]
enum LoopbackChange {
    Scheme,
    Userinfo,
    OtherHost,
    PathSuffix(String),
    Query(String),
    Fragment(String),
}

fn loopback_change() -> impl Strategy<Value = LoopbackChange> {
    prop_oneof![
        Just(LoopbackChange::Scheme),
        Just(LoopbackChange::Userinfo),
        Just(LoopbackChange::OtherHost),
        "[a-zA-Z0-9/._~-]{1,6}".prop_map(LoopbackChange::PathSuffix),
        "[a-z0-9=&]{1,10}".prop_map(LoopbackChange::Query),
        "[a-z0-9]{0,5}".prop_map(LoopbackChange::Fragment),
    ]
}

fn apply(change: &LoopbackChange, parts: &UriParts) -> UriParts {
    let mut p = parts.clone();
    match change {
        LoopbackChange::Scheme => p.scheme = "https",
        LoopbackChange::Userinfo => p.userinfo = "evil@",
        LoopbackChange::OtherHost => {
            p.host = if p.host.0 == "127.0.0.1" {
                ("localhost", true)
            } else {
                ("127.0.0.1", true)
            }
        }
        // After an empty path the suffix starts one ("http://127.0.0.1:1" + "0" would be
        // another port, which is the port's change, not the path's).
        LoopbackChange::PathSuffix(s) if p.path.is_empty() => p.path = format!("/{s}"),
        LoopbackChange::PathSuffix(s) => p.path.push_str(s),
        LoopbackChange::Query(q) => {
            p.query = Some(match &p.query {
                Some(old) => format!("{old}&{q}"),
                None => q.clone(),
            })
        }
        LoopbackChange::Fragment(f) => p.fragment = Some(f.clone()),
    }
    p
}

/// The URL without its port, as the url crate normalises it.
fn without_port(raw: &str) -> Option<url::Url> {
    let mut url = url::Url::parse(raw).ok()?;
    url.set_port(None).ok()?;
    Some(url)
}

proptest! {
    #[test]
    fn any_string_is_registered_or_refused_by_the_rules(s in hostile_string()) {
        let Ok(uri) = RedirectUri::parse(&s) else {
            return Ok(());
        };
        prop_assert_eq!(uri.as_str(), s.as_str());
        prop_assert!(!s.contains('#'));
        let url = url::Url::parse(&s).expect("accepted URIs are absolute URLs");
        prop_assert!(url.username().is_empty() && url.password().is_none());
        let loopback = matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
        ) || url.host().is_some_and(|h| match h {
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
            url::Host::Domain(_) => false,
        });
        match url.scheme() {
            "https" => prop_assert!(url.host().is_some()),
            "http" => prop_assert!(loopback, "http on a non-loopback host: {s:?}"),
            other => prop_assert!(other.contains('.'), "scheme {other:?} accepted"),
        }
    }

    #[test]
    fn assembled_uris_are_registered_exactly_when_the_rules_allow(parts in uri_parts()) {
        let raw = parts.render();
        prop_assert_eq!(RedirectUri::parse(&raw).is_ok(), parts.registrable(), "{}", raw);
    }

    #[test]
    fn a_loopback_uri_matches_a_request_on_any_port((registered, asked) in loopback_pair()) {
        let uri = RedirectUri::parse(&registered.render()).expect("loopback http registers");
        prop_assert!(uri.matches(&asked.render()), "{} vs {}", registered.render(), asked.render());
    }

    #[test]
    fn a_loopback_uri_matches_nothing_that_differs_beyond_the_port(
        (registered, asked) in loopback_pair(),
        change in loopback_change(),
    ) {
        let uri = RedirectUri::parse(&registered.render()).expect("loopback http registers");
        let changed = apply(&change, &asked).render();
        prop_assert!(!uri.matches(&changed), "{} matched {}", registered.render(), changed);
    }

    /// Everything but loopback http is compared as a string; loopback relaxes the port only.
    #[test]
    fn a_match_is_the_registered_uri_up_to_a_loopback_port(
        registered in uri_parts(),
        asked in prop_oneof![uri_parts().prop_map(|p| p.render()), hostile_string()],
    ) {
        let Ok(uri) = RedirectUri::parse(&registered.render()) else {
            return Ok(());
        };
        if !uri.matches(&asked) || asked == uri.as_str() {
            return Ok(());
        }
        prop_assert!(registered.scheme == "http" && registered.host.1, "{} matched {asked:?}", uri.as_str());
        prop_assert_eq!(without_port(&asked), without_port(uri.as_str()));
    }
}
