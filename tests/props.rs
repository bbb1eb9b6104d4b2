//! Property tests of the parsers an attacker reaches first: API keys and other secrets, scope
//! names, redirect URIs, durations, IP allowlists, emails, passwords and return paths, and over
//! HTTP the `Authorization` header, key-creation bodies and the token endpoint's forms. Each
//! property states what the parser promises: it never panics, it refuses with a clear error,
//! and what it accepts round-trips where the format has a stored form.
//!
//! Each parser's properties are in a file of their own under `props/`; the strategies more than
//! one of them draws on are here.

use gatehouse::api_keys::format::{self, Kind, Mode};
use gatehouse::secrets;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};

#[path = "props/allowlists.rs"]
mod allowlists;
#[path = "props/durations.rs"]
mod durations;
#[path = "props/http.rs"]
mod http;
#[path = "props/keys.rs"]
mod keys;
#[path = "props/redirects.rs"]
mod redirects;
#[path = "props/scopes.rs"]
mod scopes;
#[path = "props/sign_in.rs"]
mod sign_in;

// ---------------------------------------------------------------------------------------------
// Shared strategies

/// Any string, weighted towards the characters parsers split on or trip over.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "\\PC{0,80}",
        "[ -~]{0,80}",
        "[/\\\\:@#?%. \t\r\n\u{0}a-z0-9_-]{0,40}",
    ]
}

/// A single-character change: replace, insert or delete at some position.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, char),
    Insert(Index, char),
    Delete(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let ch = prop_oneof![
        proptest::char::ranges(vec!['0'..='9', 'A'..='Z', 'a'..='z'].into()),
        any::<char>(),
    ];
    prop_oneof![
        (any::<Index>(), ch.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<Index>(), ch).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<Index>().prop_map(Mutation::Delete),
    ]
}

/// `s` with the mutation applied, and the character position it touched.
fn mutate(s: &str, m: &Mutation) -> (String, usize) {
    let mut chars: Vec<char> = s.chars().collect();
    let at = match m {
        Mutation::Replace(i, c) => {
            let at = i.index(chars.len());
            chars[at] = *c;
            at
        }
        Mutation::Insert(i, c) => {
            let at = i.index(chars.len() + 1);
            chars.insert(at, *c);
            at
        }
        Mutation::Delete(i) => {
            let at = i.index(chars.len());
            chars.remove(at);
            at
        }
    };
    (chars.into_iter().collect(), at)
}

// ---------------------------------------------------------------------------------------------
// API keys and other prefixed secrets

fn kind_and_mode() -> impl Strategy<Value = (Kind, Mode)> {
    (any::<bool>(), any::<bool>()).prop_map(|(restricted, test)| {
        (
            if restricted {
                Kind::Restricted
            } else {
                Kind::Secret
            },
            if test { Mode::Test } else { Mode::Live },
        )
    })
}

/// A key built the way the generator builds one, from random characters proptest chose (so a
/// failure can be replayed): prefix, 32 base62 characters, their checksum.
fn well_formed_key() -> impl Strategy<Value = (Kind, Mode, String)> {
    (kind_and_mode(), "[0-9A-Za-z]{32}").prop_map(|((kind, mode), random)| {
        let key = format!(
            "{}{random}{}",
            format::prefix(kind, mode),
            secrets::checksum(&random)
        );
        (kind, mode, key)
    })
}

// ---------------------------------------------------------------------------------------------
// Scopes

fn valid_scope() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,30}(:[a-z0-9_]{1,30})?"
}

// ---------------------------------------------------------------------------------------------
// Durations and grace periods

fn duration_text() -> impl Strategy<Value = String> {
    prop_oneof![
        hostile_string(),
        "[+-]?[0-9]{1,25}[smhdwy]?",
        "[ \t]*[0-9]{1,9}[smhdwyMHD]?[ \t]*",
        "[0-9\u{660}-\u{669}\u{ff10}-\u{ff19}]{1,6}[smhdwy]?",
    ]
}

// ---------------------------------------------------------------------------------------------
// IP allowlists

fn ip_net_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<std::net::Ipv4Addr>(), prop::option::of(0u8..=32))
            .prop_map(|(ip, len)| len.map_or(ip.to_string(), |l| format!("{ip}/{l}"))),
        (any::<std::net::Ipv6Addr>(), prop::option::of(0u8..=128))
            .prop_map(|(ip, len)| len.map_or(ip.to_string(), |l| format!("{ip}/{l}"))),
    ]
}

// ---------------------------------------------------------------------------------------------
// JSON values for bodies

const KEY_FIELDS: [&str; 10] = [
    "name",
    "description",
    "expires_in",
    "expires_at",
    "never_expires",
    "mode",
    "scopes",
    "allowed_ips",
    "rate_limit_per_minute",
    "grace_period",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(i64::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(1e300)),
        hostile_string().prop_map(Value::from),
        duration_text().prop_map(Value::from),
        prop_oneof![
            "[0-9]{4,6}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})",
            Just("9999-12-31T23:59:59-23:59".to_owned()),
            Just("0000-01-01T00:00:00+23:59".to_owned()),
        ]
        .prop_map(Value::from),
        prop_oneof![Just("live"), Just("test"), Just("secret"), Just("")].prop_map(Value::from),
        prop::collection::vec(
            prop_oneof![valid_scope(), ip_net_text(), hostile_string()],
            0..5
        )
        .prop_map(|v| json!(v)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(KEY_FIELDS.to_vec()).prop_map(str::to_owned),
                    "\\PC{0,12}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}
