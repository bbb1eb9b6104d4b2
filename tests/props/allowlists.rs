//! IP allowlists: parsed and round-tripped or refused with a message, item by item.

use gatehouse::api_keys::model::{nets_to_storage, parse_allowed_ips};
use proptest::prelude::*;

use crate::{hostile_string, ip_net_text};

proptest! {
    #[test]
    fn any_allowlist_parses_and_round_trips_or_is_refused_with_a_message(s in hostile_string()) {
        match parse_allowed_ips(&s) {
            Ok(nets) => prop_assert_eq!(parse_allowed_ips(&nets_to_storage(&nets)), Ok(nets)),
            Err(message) => prop_assert!(message.contains("is not an IP address or CIDR block")),
        }
    }

    #[test]
    fn a_list_of_addresses_and_blocks_parses_item_by_item(
        items in prop::collection::vec(ip_net_text(), 0..120),
        separator in prop_oneof![",", " ", "\n", ", ", "\r\n", "\t"],
    ) {
        let nets = parse_allowed_ips(&items.join(&separator)).expect("valid items parse");
        prop_assert_eq!(nets.len(), items.len());
        for (net, item) in nets.iter().zip(&items) {
            let addr: std::net::IpAddr = item.split('/').next().unwrap().parse().unwrap();
            prop_assert!(net.contains(&addr), "{net} does not contain {addr}");
        }
        prop_assert_eq!(parse_allowed_ips(&nets_to_storage(&nets)), Ok(nets));
    }

    #[test]
    fn a_valid_list_with_one_garbage_item_is_refused(
        items in prop::collection::vec(ip_net_text(), 0..5),
        garbage in "[a-zA-Z.:/0-9-]{1,20}".prop_filter("not an address", |g| {
            g.parse::<ipnet::IpNet>().is_err() && g.parse::<std::net::IpAddr>().is_err()
        }),
    ) {
        let raw = format!("{} {garbage}", items.join(","));
        let message = parse_allowed_ips(&raw).expect_err("garbage is refused");
        prop_assert!(message.contains(&format!("{garbage:?}")), "{message}");
    }
}
