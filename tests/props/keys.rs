//! API keys and other prefixed secrets: any string is parsed or refused without a panic, a key
//! built as the generator builds one always parses, and a one-character change is refused.

use gatehouse::api_keys::format::{self, KEY_LEN, KeyFormatError, PREFIX_LEN};
use gatehouse::clients::CLIENT_SECRET_PREFIX;
use gatehouse::grants::{CODE_PREFIX, REFRESH_PREFIX};
use gatehouse::secrets::{self, CHECKSUM_LEN, PlainSecret, RANDOM_LEN};
use proptest::prelude::*;

use crate::{hostile_string, kind_and_mode, mutate, mutation, well_formed_key};

proptest! {
    #[test]
    fn any_string_is_parsed_or_refused_as_a_key_without_panicking(s in hostile_string()) {
        match format::parse(&s) {
            Ok(key) => {
                prop_assert_eq!(s.len(), KEY_LEN);
                prop_assert!(s.starts_with(format::prefix(key.kind, key.mode)));
                prop_assert_eq!(key.secret.expose(), s.as_str());
            }
            Err(KeyFormatError::NotAKey | KeyFormatError::BadChecksum) => {}
        }
    }

    #[test]
    fn a_key_built_like_the_generator_does_always_parses((kind, mode, key) in well_formed_key()) {
        let parsed = format::parse(&key).expect("a well-formed key parses");
        prop_assert_eq!((parsed.kind, parsed.mode), (kind, mode));
        prop_assert_eq!(parsed.secret.expose(), key.as_str());
    }

    #[test]
    fn generated_keys_always_parse((kind, mode) in kind_and_mode()) {
        let key = format::generate(kind, mode);
        let parsed = format::parse(key.expose()).expect("a generated key parses");
        prop_assert_eq!((parsed.kind, parsed.mode), (kind, mode));
        prop_assert_eq!(parsed.secret, key);
    }

    /// The checksum covers the random part, so any one-character change there is refused
    /// before a lookup. In the prefix, `s`↔`r` turns `sk_live_X` into `rk_live_X`: a well-formed
    /// key of another kind, which is a different credential (lookups digest the whole string),
    /// never the same one.
    #[test]
    fn a_one_character_change_to_a_key_is_refused(
        (kind, mode, key) in well_formed_key(),
        m in mutation(),
    ) {
        let (changed, at) = mutate(&key, &m);
        prop_assume!(changed != key);
        match format::parse(&changed) {
            Err(_) => {}
            Ok(other) => {
                prop_assert!(at < PREFIX_LEN, "{changed:?} parsed after a change at {at}");
                prop_assert_ne!((other.kind, other.mode), (kind, mode));
            }
        }
    }

    #[test]
    fn a_one_character_change_to_any_prefixed_secret_is_refused(
        prefix in prop_oneof![
            Just(CLIENT_SECRET_PREFIX),
            Just(CODE_PREFIX),
            Just(REFRESH_PREFIX),
            Just("ses_"),
        ],
        m in mutation(),
    ) {
        let secret = PlainSecret::generate(prefix);
        prop_assert_eq!(PlainSecret::parse(prefix, secret.expose()), Ok(secret.clone()));
        let (changed, _) = mutate(secret.expose(), &m);
        prop_assume!(changed != secret.expose());
        prop_assert!(PlainSecret::parse(prefix, &changed).is_err(), "{changed:?} was accepted");
    }

    #[test]
    fn any_string_is_parsed_or_refused_as_a_secret_without_panicking(
        prefix in "[a-z_]{0,8}",
        s in hostile_string(),
    ) {
        if let Ok(secret) = PlainSecret::parse(&prefix, &s) {
            let body = &s[prefix.len()..];
            prop_assert_eq!(secret.expose(), s.as_str());
            prop_assert_eq!(body.len(), RANDOM_LEN + CHECKSUM_LEN);
            prop_assert_eq!(secrets::checksum(&body[..RANDOM_LEN]), &body[RANDOM_LEN..]);
        }
    }
}
