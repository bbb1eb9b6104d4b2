//! A member's role, who issues a workspace's keys, and the `workspace` claim tokens carry:
//! plain values the policy, the tokens and the caches weigh without reaching for the
//! workspaces' storage.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A member's role in a workspace, weakest first (the order is the policy's).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum WsRole {
    Member,
    Admin,
    Owner,
}

impl WsRole {
    pub const ALL: [WsRole; 3] = [WsRole::Member, WsRole::Admin, WsRole::Owner];

    pub const fn as_str(self) -> &'static str {
        match self {
            WsRole::Member => "member",
            WsRole::Admin => "admin",
            WsRole::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<WsRole> {
        WsRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Administers the workspace (members, invitations, members' keys, settings).
    pub fn administers(self) -> bool {
        self >= WsRole::Admin
    }
}

/// Who creates a workspace's API keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyIssuance {
    /// Every member creates their own keys.
    Members,
    /// Only the workspace's admins and owners issue keys, to members.
    Admins,
}

impl KeyIssuance {
    pub const fn as_str(self) -> &'static str {
        match self {
            KeyIssuance::Members => "members",
            KeyIssuance::Admins => "admins",
        }
    }

    pub fn parse(s: &str) -> Option<KeyIssuance> {
        match s {
            "members" => Some(KeyIssuance::Members),
            "admins" => Some(KeyIssuance::Admins),
            _ => None,
        }
    }
}

/// The membership an access token, an ID token and introspection carry: the documented
/// `workspace` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkspaceClaim {
    pub id: String,
    pub slug: String,
    pub role: WsRole,
}

impl WorkspaceClaim {
    /// A personal workspace's (their slugs, `personal-…`, are reserved for them).
    pub fn is_personal(&self) -> bool {
        is_personal_slug(&self.slug)
    }

    /// The claim from a row's workspace id and the slug and role joined to it: `None` without
    /// a workspace, or when the user is no longer a member (no role joined, or an unknown one).
    pub fn from_joined(
        id: Option<&str>,
        slug: Option<String>,
        role: Option<&str>,
    ) -> Option<WorkspaceClaim> {
        match (id, slug, role.and_then(WsRole::parse)) {
            (Some(id), Some(slug), Some(role)) => Some(WorkspaceClaim {
                id: id.to_owned(),
                slug,
                role,
            }),
            _ => None,
        }
    }
}

/// Personal workspaces' slugs start so, and no other workspace's may.
pub fn is_personal_slug(slug: &str) -> bool {
    slug.starts_with("personal-")
}
