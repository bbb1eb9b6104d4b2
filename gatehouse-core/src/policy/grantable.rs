//! Which scopes may be granted, one question each: what a consenting user may give an app,
//! what a key may hold for its owner, what an app that registered itself may ask, and what a
//! caller may let an app it configures ask. The registry lists the scopes; these answers are
//! the policy's (a handler never filters admin-only scopes by hand).

use super::{Caller, Role};
use crate::scopes::registry::RegisteredScope;
use crate::scopes::{Scope, ScopeSet};

fn of(all: &[RegisteredScope], admin_only_too: bool) -> ScopeSet {
    all.iter()
        .filter(|s| admin_only_too || !s.is_admin_only())
        .filter_map(|s| Scope::parse(&s.name).ok())
        .collect()
}

/// What a user may grant an app on the consent page or for a device: the scopes they may hold
/// themselves (admin-only ones only for an administrator of the install).
pub fn consent_may_grant(user_role: Role, all: &[RegisteredScope]) -> ScopeSet {
    of(all, user_role == Role::Admin)
}

/// What a key may hold: its *owner's* scopes, whoever issues it (an administrator issuing a key
/// to a member gives no admin-only scope).
pub fn key_may_hold(owner_role: Role, all: &[RegisteredScope]) -> ScopeSet {
    of(all, owner_role == Role::Admin)
}

/// What an app that registered itself (RFC 7591) or that a metadata document describes may
/// ask: never an admin-only scope (nobody of the install vouched for it).
pub fn self_registered_may_ask(all: &[RegisteredScope]) -> ScopeSet {
    of(all, false)
}

/// What a caller may let an app it registers or changes ask: admin-only scopes only from an
/// administrator of the install acting as one (a session, the operator, a credential of their
/// personal workspace); what the install grants an app is the install's.
pub fn app_may_be_given(caller: &Caller<'_>, all: &[RegisteredScope]) -> ScopeSet {
    of(all, caller.oversees_install())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Reach, Via};

    fn registry() -> Vec<RegisteredScope> {
        let scope = |name: &str, admin_only: bool| RegisteredScope {
            name: name.into(),
            description: String::new(),
            admin_only,
            created_at: chrono::NaiveDateTime::default(),
        };
        vec![
            scope("read:users", false),
            scope("write:orders", false),
            scope("admin:users", true),
            scope("admin:clients", true),
        ]
    }

    fn names(set: &ScopeSet) -> Vec<String> {
        let mut v: Vec<String> = set.iter().map(|s| s.as_str().to_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_member_consents_to_no_admin_only_scope_an_admin_may() {
        let all = registry();
        assert_eq!(
            names(&consent_may_grant(Role::Member, &all)),
            ["read:users", "write:orders"]
        );
        assert!(consent_may_grant(Role::Admin, &all).contains("admin:users"));
    }

    #[test]
    fn a_key_holds_what_its_owner_may_whoever_issues_it() {
        let all = registry();
        assert!(!key_may_hold(Role::Member, &all).contains("admin:users"));
        assert!(key_may_hold(Role::Admin, &all).contains("admin:clients"));
    }

    #[test]
    fn a_self_registered_app_never_asks_an_admin_only_scope() {
        let all = registry();
        let asked = self_registered_may_ask(&all);
        assert!(!asked.contains("admin:users") && !asked.contains("admin:clients"));
        assert!(asked.contains("read:users"));
    }

    #[test]
    fn only_an_administrator_acting_as_one_gives_an_app_admin_only_scopes() {
        let all = registry();
        let caller = |role, workspace| Caller {
            user_id: Some("usr_1"),
            role,
            via: Via::Session,
            workspace,
        };
        assert!(
            app_may_be_given(&caller(Role::Admin, Reach::Everywhere), &all)
                .contains("admin:clients")
        );
        assert!(
            !app_may_be_given(&caller(Role::Member, Reach::Everywhere), &all)
                .contains("admin:clients")
        );
        // An administrator's credential bound to a shared workspace is a member's there.
        let shared = Reach::Workspace {
            id: "ws_shared",
            personal: false,
        };
        assert!(!app_may_be_given(&caller(Role::Admin, shared), &all).contains("admin:clients"));
        assert!(app_may_be_given(&Caller::operator(), &all).contains("admin:users"));
    }
}
