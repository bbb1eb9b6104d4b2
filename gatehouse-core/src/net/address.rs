//! What a per-address limit counts of an address (sign-in attempts, open endpoints, device
//! entries). Plain functions over `std::net`: every room may use them without a cycle.

/// What a per-address limit counts: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's network: a host picks any of its 2^64 addresses at will, so counting each
/// would let one client multiply its allowance). An IPv4-mapped IPv6 address is its IPv4.
pub fn limited_address(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip.to_canonical() {
        std::net::IpAddr::V6(v6) => {
            let s = v6.segments();
            std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// [`limited_address`] of an address as text (a sign-in attempt's); text that is no address
/// is counted as it is.
pub fn limited_address_text(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(parsed) => match limited_address(parsed) {
            std::net::IpAddr::V6(net) => format!("{net}/64"),
            v4 => v4.to_string(),
        },
        Err(_) => ip.to_owned(),
    }
}

/// The limiter's subject for an address: `name:address` (`name:unknown` without one), an IPv6
/// address counted by its /64 (`name:2001:db8:1:2::/64`). Every request to an open endpoint
/// makes one, so IPv4 addresses are written digit by digit instead of through `Display`
/// (which formats into a padded buffer first).
pub fn address_subject(name: &str, ip: Option<std::net::IpAddr>) -> String {
    use std::fmt::Write;
    let mut subject = String::with_capacity(name.len() + 1 + 39);
    subject.push_str(name);
    subject.push(':');
    match ip.map(limited_address) {
        Some(std::net::IpAddr::V4(v4)) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    subject.push('.');
                }
                if octet >= 100 {
                    subject.push(char::from(b'0' + octet / 100));
                }
                if octet >= 10 {
                    subject.push(char::from(b'0' + octet / 10 % 10));
                }
                subject.push(char::from(b'0' + octet % 10));
            }
        }
        Some(ip) => {
            let _ = write!(subject, "{ip}/64");
        }
        None => subject.push_str("unknown"),
    }
    subject
}

/// IPs and CIDR blocks, separated by commas, spaces or newlines; a bare address is a /32 or /128.
pub fn parse_allowed_ips(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
    raw.split([',', ' ', '\n', '\r', '\t'])
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| item.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    format!(
                        "{:?} is not an IP address or CIDR block",
                        item.chars().take(64).collect::<String>()
                    )
                })
        })
        .collect()
}
