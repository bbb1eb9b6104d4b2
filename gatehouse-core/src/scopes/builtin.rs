//! The scopes whose meaning Gatehouse itself enforces, as a type: handlers and the policy name
//! them as `Builtin::ReadApiKeys`, never as strings. The product scopes (`read:orders`, …) are
//! registry rows only: Gatehouse stores and issues them, resource servers give them meaning.

/// A scope Gatehouse's own routes check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    ReadUsers,
    WriteProfile,
    WriteUsers,
    AdminUsers,
    ReadApiKeys,
    WriteApiKeys,
    ReadClients,
    WriteClients,
    AdminClients,
    ReadConsents,
    WriteConsents,
    Introspect,
    ReadAudit,
    ReadWorkspaces,
    WriteWorkspaces,
    /// OpenID Connect: an ID token, and UserInfo.
    OpenId,
    Profile,
    Email,
    /// OpenID Connect: a refresh token for a sign-in (see `oidc::id_token`).
    OfflineAccess,
}

impl Builtin {
    pub const ALL: &'static [Builtin] = &[
        Builtin::ReadUsers,
        Builtin::WriteProfile,
        Builtin::WriteUsers,
        Builtin::AdminUsers,
        Builtin::ReadApiKeys,
        Builtin::WriteApiKeys,
        Builtin::ReadClients,
        Builtin::WriteClients,
        Builtin::AdminClients,
        Builtin::ReadConsents,
        Builtin::WriteConsents,
        Builtin::Introspect,
        Builtin::ReadAudit,
        Builtin::ReadWorkspaces,
        Builtin::WriteWorkspaces,
        Builtin::OpenId,
        Builtin::Profile,
        Builtin::Email,
        Builtin::OfflineAccess,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Builtin::ReadUsers => "read:users",
            Builtin::WriteProfile => "write:profile",
            Builtin::WriteUsers => "write:users",
            Builtin::AdminUsers => "admin:users",
            Builtin::ReadApiKeys => "read:api_keys",
            Builtin::WriteApiKeys => "write:api_keys",
            Builtin::ReadClients => "read:clients",
            Builtin::WriteClients => "write:clients",
            Builtin::AdminClients => "admin:clients",
            Builtin::ReadConsents => "read:consents",
            Builtin::WriteConsents => "write:consents",
            Builtin::Introspect => "introspect",
            Builtin::ReadAudit => "read:audit",
            Builtin::ReadWorkspaces => "read:workspaces",
            Builtin::WriteWorkspaces => "write:workspaces",
            Builtin::OpenId => "openid",
            Builtin::Profile => "profile",
            Builtin::Email => "email",
            Builtin::OfflineAccess => "offline_access",
        }
    }

    /// What the scope lets its holder do, as the consent page and `gatehouse scope list` say it.
    pub const fn description(self) -> &'static str {
        match self {
            Builtin::ReadUsers => "Read your profile",
            Builtin::WriteProfile => "Change your display name",
            Builtin::WriteUsers => "Create users, change their role, disable and enable them",
            Builtin::AdminUsers => "See every user, and their API keys, and manage those keys",
            Builtin::ReadApiKeys => "List and inspect API keys",
            Builtin::WriteApiKeys => "Create, roll and revoke API keys",
            Builtin::ReadClients => "List and inspect your OAuth apps",
            Builtin::WriteClients => "Register and change your OAuth apps and rotate their secrets",
            Builtin::AdminClients => {
                "See and change every OAuth app, mark apps first-party, bind resource servers"
            }
            Builtin::ReadConsents => "See which apps you have connected",
            Builtin::WriteConsents => "Disconnect apps you have connected",
            Builtin::Introspect => {
                "Ask /oauth/introspect about any token or API key, and revoke any"
            }
            Builtin::ReadAudit => "Read the audit log",
            Builtin::ReadWorkspaces => "See your workspaces and their members",
            Builtin::WriteWorkspaces => {
                "Create workspaces, invite and manage members, manage members' API keys where you administer"
            }
            Builtin::OpenId => "Know who you are: your Gatehouse account id and when you signed in",
            Builtin::Profile => "See your name and when your profile last changed",
            Builtin::Email => "See your email address",
            Builtin::OfflineAccess => {
                "Stay connected after you sign out of Gatehouse, until you disconnect the app"
            }
        }
    }

    /// Only administrators may hold it, by any credential.
    pub const fn admin_only(self) -> bool {
        matches!(
            self,
            Builtin::WriteUsers
                | Builtin::AdminUsers
                | Builtin::AdminClients
                | Builtin::Introspect
                | Builtin::ReadAudit
        )
    }

    pub fn parse(name: &str) -> Option<Builtin> {
        Builtin::ALL.iter().copied().find(|b| b.as_str() == name)
    }
}

impl std::fmt::Display for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_a_valid_scope_name_and_parses_back() {
        for b in Builtin::ALL {
            assert!(super::super::Scope::parse(b.as_str()).is_ok(), "{b}");
            assert_eq!(Builtin::parse(b.as_str()), Some(*b));
        }
    }
}
