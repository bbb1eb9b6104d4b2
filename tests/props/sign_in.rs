//! What the sign-up and sign-in forms parse: an email is stored in one canonical form, a new
//! password is accepted exactly by its length policy, and a return path never leaves our origin.

use gatehouse::accounts::{Email, NewPassword};
use gatehouse::pages::ReturnPath;
use proptest::prelude::*;

use crate::hostile_string;

proptest! {
    #[test]
    fn an_accepted_email_is_stored_in_one_canonical_form(s in prop_oneof![
        hostile_string(),
        "[ ]?[a-zA-Z0-9.+_-]{1,20}@[a-zA-Z0-9-]{1,10}(\\.[a-zA-Z0-9-]{1,10}){1,3}[ ]?",
        "\\PC{1,10}@\\PC{1,10}\\.\\PC{1,5}",
    ]) {
        if let Ok(email) = Email::parse(&s) {
            let stored = email.as_str();
            prop_assert!(stored.len() <= 254);
            prop_assert_eq!(stored.matches('@').count(), 1);
            prop_assert!(!stored.chars().any(|c| c.is_whitespace() || c.is_control()));
            prop_assert_eq!(stored, stored.to_lowercase());
            prop_assert_eq!(Email::parse(stored), Ok(email.clone()));
        }
    }

    #[test]
    fn a_new_password_is_accepted_exactly_by_its_length_policy(s in prop_oneof![
        hostile_string(),
        "\\PC{8,12}",
        "[a-z]{1000,1030}",
        "é{500,520}",
    ]) {
        let policy = s.chars().count() >= 10 && s.len() <= 1024;
        match NewPassword::parse(&s) {
            Ok(password) => {
                prop_assert!(policy, "{s:?} accepted");
                prop_assert_eq!(password.expose(), s.as_str());
            }
            Err(e) => {
                prop_assert!(!policy, "{s:?} refused");
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    /// The open-redirect guard: a parsed return path, resolved as a browser resolves a
    /// `Location`, stays on our origin.
    #[test]
    fn a_return_path_never_leaves_our_origin(s in prop_oneof![
        hostile_string(),
        "[/\\\\]{1,3}[a-z.:@%]{0,12}",
        "/[\t\n\r ]?[/\\\\]?[a-z.]{0,12}",
        "(https?:|javascript:|//|/%2[fF]|/%5[cC]|/\\.\\./)[a-z./]{0,12}",
    ]) {
        let Some(path) = ReturnPath::parse(&s) else {
            return Ok(());
        };
        let p = path.as_str();
        prop_assert!(p.starts_with('/'));
        prop_assert!(!p.starts_with("//") && !p.starts_with("/\\"));
        let origin = url::Url::parse("https://gatehouse.example/").unwrap();
        let resolved = origin.join(p).expect("a path resolves against our origin");
        prop_assert_eq!(resolved.origin(), origin.origin(), "{:?} leaves the origin", p);
    }
}
