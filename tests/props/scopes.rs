//! Scope names and sets: what parses has the documented shape, well-formed names are accepted
//! as written, long or foreign names are refused, and sets round-trip through their stored form.

use gatehouse::scopes::{Scope, ScopeSet};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::{Mutation, hostile_string, mutate, valid_scope};

proptest! {
    #[test]
    fn what_parses_as_a_scope_has_the_documented_shape(s in hostile_string()) {
        if let Ok(scope) = Scope::parse(&s) {
            prop_assert_eq!(scope.as_str(), s.as_str());
            prop_assert!(s.len() <= 64);
            prop_assert!(s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b':')));
            prop_assert!(s.matches(':').count() <= 1);
            prop_assert!(!s.starts_with(':') && !s.ends_with(':'));
        }
    }

    #[test]
    fn well_formed_scope_names_are_accepted_as_written(s in valid_scope()) {
        prop_assert_eq!(Scope::parse(&s).map(|x| x.as_str().to_owned()), Ok(s));
    }

    #[test]
    fn scope_names_over_64_characters_are_refused(s in "[a-z0-9_]{30,40}:[a-z0-9_]{34,40}") {
        prop_assert!(Scope::parse(&s).is_err());
    }

    #[test]
    fn a_scope_name_with_a_foreign_character_is_refused(
        s in valid_scope(),
        at in any::<Index>(),
        c in any::<char>().prop_filter("outside [a-z0-9_:]", |c| {
            !matches!(c, 'a'..='z' | '0'..='9' | '_' | ':')
        }),
    ) {
        let (bad, _) = mutate(&s, &Mutation::Insert(at, c));
        prop_assert!(Scope::parse(&bad).is_err(), "{bad:?}");
    }

    #[test]
    fn scope_sets_round_trip_through_their_stored_form(s in hostile_string()) {
        if let Ok(set) = ScopeSet::parse(&s) {
            prop_assert_eq!(ScopeSet::parse(&set.to_storage()), Ok(set));
        }
    }

    #[test]
    fn a_list_of_scopes_parses_to_exactly_its_names(
        names in prop::collection::vec(valid_scope(), 0..8),
        separators in prop::collection::vec(prop_oneof![" ", ",", ", ", "  ,"], 8),
    ) {
        let raw: String = names
            .iter()
            .zip(&separators)
            .map(|(n, sep)| format!("{n}{sep}"))
            .collect();
        let set = ScopeSet::parse(&raw).expect("valid names parse");
        let mut expected = names.clone();
        expected.sort();
        expected.dedup();
        prop_assert_eq!(set.to_storage(), expected.join(" "));
    }
}
