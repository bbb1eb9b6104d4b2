//! Scopes: the names (`read:users`) that API keys and OAuth grants carry. `Scope` and
//! `ScopeSet` are pure values; `registry` owns the `scopes` table that says which exist.

pub mod builtin;
pub mod registry;

pub use builtin::Builtin;

use std::collections::BTreeSet;
use std::fmt;

/// One scope name: `action:resource`, lower-case letters, digits and `_`, ≤ 64 characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(example = "read:users")]
pub struct Scope(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid scope name (expected e.g. read:users)")]
pub struct ScopeError(pub String);

impl Scope {
    pub fn parse(raw: &str) -> Result<Scope, ScopeError> {
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        // `resource:action` (`read:users`), or one word (`introspect`, `openid`).
        let ok = raw.len() <= 64
            && match raw.split_once(':') {
                Some((a, r)) => valid_part(a) && valid_part(r),
                None => valid_part(raw),
            };
        if ok {
            Ok(Scope(raw.to_owned()))
        } else {
            Err(ScopeError(raw.chars().take(64).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes, stored and sent space-separated (as OAuth does).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// No scope at all.
    pub const EMPTY: ScopeSet = ScopeSet(BTreeSet::new());

    /// Parse names separated by spaces or commas; empty items are ignored.
    pub fn parse(raw: &str) -> Result<ScopeSet, ScopeError> {
        raw.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(Scope::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(ScopeSet)
    }

    pub fn from_list<S: AsRef<str>>(items: &[S]) -> Result<ScopeSet, ScopeError> {
        items
            .iter()
            .map(|s| Scope::parse(s.as_ref()))
            .collect::<Result<BTreeSet<_>, _>>()
            .map(ScopeSet)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    /// Space-separated, sorted: the stored form.
    pub fn to_storage(&self) -> String {
        self.0
            .iter()
            .map(Scope::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The scopes of `self` that `other` lacks.
    pub fn difference(&self, other: &ScopeSet) -> Vec<Scope> {
        self.0.difference(&other.0).cloned().collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        ScopeSet(iter.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_names_have_an_action_and_a_resource() {
        assert!(Scope::parse("read:users").is_ok());
        assert!(Scope::parse("write:api_keys").is_ok());
        assert!(Scope::parse("introspect").is_ok(), "one word");
        for bad in [
            "",
            "Read",
            "read:",
            ":users",
            "Read:users",
            "read:users:all",
            "read users",
            "read:us-ers",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sets_parse_spaces_and_commas_and_store_sorted() {
        let set = ScopeSet::parse("write:orders, read:users  read:orders").unwrap();
        assert_eq!(set.to_storage(), "read:orders read:users write:orders");
        assert!(set.contains("read:users"));
        assert!(!set.contains("write:users"));
        assert!(ScopeSet::parse("read:users").unwrap().is_subset(&set));
        assert_eq!(
            set.difference(&ScopeSet::parse("read:users").unwrap())
                .len(),
            2
        );
        assert!(ScopeSet::parse("read:users Bogus!").is_err());
    }
}
