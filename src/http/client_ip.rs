//! The address a request came from. Behind a reverse proxy the TCP peer is the proxy; when
//! the peer is one of `GATEHOUSE_TRUSTED_PROXIES`, `X-Forwarded-For` is read from the right,
//! skipping the trusted hops, and the first address not trusted is the client. Anything a
//! client wrote further left is never believed, and without trusted proxies the header is
//! ignored altogether.

use std::net::IpAddr;

use actix_web::{HttpRequest, web};
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address for IP allowlists, per-IP limits, audit and last-used records.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.trusted_proxies.as_slice())
        .unwrap_or_default();
    if trusted.is_empty() {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(resolve(peer, &forwarded, trusted))
}

/// `peer` and the `X-Forwarded-For` values in order: the rightmost address not trusted.
pub fn resolve(peer: IpAddr, forwarded: &[&str], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in forwarded.iter().flat_map(|v| v.split(',')).rev() {
        // Garbage from beyond the last trusted hop: that hop is as far as we can see.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_hops_are_skipped() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let proxy = ip("10.0.0.2");
        assert_eq!(
            resolve(proxy, &["203.0.113.7"], &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            resolve(proxy, &["198.51.100.1, 203.0.113.7, 10.0.0.3"], &trusted),
            ip("203.0.113.7"),
            "what the client wrote on the left is not believed"
        );
        assert_eq!(
            resolve(proxy, &["198.51.100.1", "203.0.113.7"], &trusted),
            ip("203.0.113.7"),
            "several header lines read as one list"
        );
        assert_eq!(
            resolve(ip("192.0.2.9"), &["203.0.113.7"], &trusted),
            ip("192.0.2.9"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(resolve(proxy, &[], &trusted), proxy, "no header: the peer");
        assert_eq!(
            resolve(proxy, &["not-an-ip, 10.0.0.5"], &trusted),
            ip("10.0.0.5"),
            "garbage stops the walk at the last trusted hop"
        );
        assert_eq!(
            resolve(ip("::1"), &["::ffff:203.0.113.7"], &trusted),
            ip("203.0.113.7"),
            "IPv4-mapped addresses are canonical"
        );
    }
}
