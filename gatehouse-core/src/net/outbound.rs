//! Outbound requests to addresses that someone else chose (metadata documents, `jwks_uri`s,
//! back-channel logout notices): which resolved addresses Gatehouse may connect to, and the one
//! way to connect there ([`pin`]: resolve once, check every address, connect to exactly those,
//! no proxy, no redirects, bounded in time).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a URL cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// No host, or no port.
    NoHost,
    /// The name did not resolve (or not within the time allowed).
    DoesNotResolve,
    /// It resolves to an address the caller does not allow (one is enough).
    NotAllowed,
}

/// A URL's host resolved and checked: requests go to these addresses only.
#[derive(Debug, Clone)]
pub struct Pinned {
    host: String,
    addresses: Vec<SocketAddr>,
}

/// Resolve `url`'s host (an IPv6 literal is looked up without its brackets) within `timeout`;
/// every address must pass `allowed`.
pub async fn pin(
    url: &reqwest::Url,
    allowed: impl Fn(IpAddr) -> bool,
    timeout: Duration,
) -> Result<Pinned, Unreachable> {
    let host = url.host_str().ok_or(Unreachable::NoHost)?.to_owned();
    let port = url.port_or_known_default().ok_or(Unreachable::NoHost)?;
    let lookup = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let addresses: Vec<SocketAddr> =
        tokio::time::timeout(timeout, tokio::net::lookup_host((lookup.as_str(), port)))
            .await
            .map_err(|_| Unreachable::DoesNotResolve)?
            .map_err(|_| Unreachable::DoesNotResolve)?
            .collect();
    if addresses.is_empty() {
        return Err(Unreachable::DoesNotResolve);
    }
    if !addresses.iter().all(|a| allowed(a.ip())) {
        return Err(Unreachable::NotAllowed);
    }
    Ok(Pinned { host, addresses })
}

impl Pinned {
    /// A client that reaches only the checked addresses (no second lookup that could answer
    /// differently, no proxy from the environment), follows no redirect and gives up after
    /// `timeout`.
    pub fn client(&self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve_to_addrs(&self.host, &self.addresses)
            .user_agent(concat!("Gatehouse/", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// Not loopback, private, link-local, unspecified, multicast, shared or documentation space.
pub fn is_public(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || (a == 192 && b == 0 && v4.octets()[2] == 0))
        }
        // Global unicast (2000::/3) only, without its special blocks: documentation
        // (2001:db8::/32), Teredo and other IETF assignments (2001::/23), 6to4 (2002::/16).
        // Everything else — loopback, IPv4-compatible and -mapped forms, NAT64, unique-local,
        // link- and site-local, multicast — is not public.
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            (first & 0xe000) == 0x2000
                && !(first == 0x2001 && second < 0x0200)
                && !(first == 0x2001 && second == 0x0db8)
                && first != 0x2002
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ipv6_literal_resolves_and_every_address_is_checked() {
        let literal: reqwest::Url = "https://[::1]:8443/bc".parse().unwrap();
        let any = |_: IpAddr| true;
        let pinned = pin(&literal, any, Duration::from_secs(3)).await.unwrap();
        assert_eq!(pinned.addresses, vec!["[::1]:8443".parse().unwrap()]);
        assert_eq!(
            pin(&literal, is_public, Duration::from_secs(3))
                .await
                .unwrap_err(),
            Unreachable::NotAllowed
        );
        let private: reqwest::Url = "https://10.0.0.7/bc".parse().unwrap();
        assert_eq!(
            pin(&private, is_public, Duration::from_secs(3))
                .await
                .unwrap_err(),
            Unreachable::NotAllowed
        );
        let v4: reqwest::Url = "http://127.0.0.1:9/x".parse().unwrap();
        assert!(pin(&v4, any, Duration::from_secs(3)).await.is_ok());
    }

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "64:ff9b::a00:1",
            // IPv4-compatible, 6to4, Teredo, site-local, discard-only, documentation.
            "::a00:1",
            "::7f00:1",
            "2002:a00:1::1",
            "2001:0:a00:1::1",
            "fec0::1",
            "100::1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
