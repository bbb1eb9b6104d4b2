//! Apps (OAuth clients): the `clients` table (redirect URIs, scopes and, for confidential
//! clients, the digest of their `cs_…` secret, shown once at creation) and, in this room, what
//! describes and authenticates them: metadata documents (`documents`), `private_key_jwt`
//! (`assertion`, `jwks`), exact redirect URIs (`redirect`) and the initial access tokens of
//! self-registration (`registration_tokens`).

pub mod assertion;
pub mod cors;
pub mod documents;
pub mod jwks;
pub mod redirect;
pub mod registration_tokens;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::clients::redirect::RedirectUri;
use crate::clock::utc;
use crate::db::schema::clients;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret, constant_time_eq};

/// The `private_key_jwt` client authentication method's name in client metadata.
pub const PRIVATE_KEY_JWT: &str = "private_key_jwt";

pub const CLIENT_SECRET_PREFIX: &str = "cs_";
/// RFC 8693 token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8628 device authorization.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The grants a client may use; `client_credentials` and token exchange only for confidential
/// clients that ask.
pub const GRANT_TYPES: [&str; 5] = [
    "authorization_code",
    "refresh_token",
    "client_credentials",
    TOKEN_EXCHANGE,
    DEVICE_CODE,
];

/// What a client registered without saying gets.
pub fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".into(), "refresh_token".into()]
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ClientType {
    /// Can keep a secret (a server-side app).
    #[default]
    Confidential,
    /// Cannot (a browser or native app): PKCE is mandatory.
    Public,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Confidential => "confidential",
            ClientType::Public => "public",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub id: String,
    pub name: String,
    /// `None` for an app that registered itself or is described by a metadata document.
    pub owner_user_id: Option<String>,
    pub client_type: String,
    pub secret_digest: Option<String>,
    pub previous_secret_digest: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    pub redirect_uris: String,
    pub allowed_scopes: String,
    pub grant_types: String,
    pub first_party: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
    /// Disabled by an administrator: only an administrator enables it again.
    pub admin_locked: bool,
    /// The resource servers (RFC 8707) an administrator let this app ask tokens for,
    /// space-separated; empty: Gatehouse's own API only.
    pub resources: String,
    /// Newline-separated, matched exactly.
    pub post_logout_redirect_uris: String,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// The workspace this app is private to (only its members authorize it; its grants and
    /// its own tokens act there). `None`: offered to every user.
    pub workspace_id: Option<String>,
    /// `registered`, `dcr` (RFC 7591) or `cimd` (a Client ID Metadata Document).
    pub origin: String,
    /// RFC 7592: the digest of the registration access token (`dcr`).
    pub registration_token_digest: Option<String>,
    /// [`SelfDescription`] as JSON.
    pub metadata: String,
    /// The address a `dcr` app registered from.
    pub registered_from: Option<String>,
    /// `cimd`: when the document must be fetched again.
    pub metadata_expires_at: Option<NaiveDateTime>,
    pub first_used_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    /// [`ClientOptions`] as JSON.
    pub options: String,
    /// The workspace that controls the app (its admins change, rotate, disable and delete
    /// it): where it was registered, else its registrant's personal one. `None`: the
    /// install's own app (self-registered, a metadata document): administrators only.
    pub owner_workspace_id: Option<String>,
    /// The user who disabled it (`None`: enabled, disabled by an older release, or by the
    /// install's own housekeeping).
    pub disabled_by: Option<String>,
}

/// Per-app security options (stored as one JSON object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ClientOptions {
    /// RFC 9126: the app's authorization requests must come through `/oauth/par`.
    #[serde(default)]
    pub require_pushed_authorization_requests: bool,
    /// `private_key_jwt` (RFC 7523): the app's public keys, as a JWK Set…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    /// …or the https URL where it publishes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof (its tokens are bound).
    #[serde(default)]
    pub dpop_bound_access_tokens: bool,
    /// A public app's web origins (CORS), as registered; `None`: its redirect URIs' origins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
}

impl ClientOptions {
    pub fn parse(raw: &str) -> ClientOptions {
        serde_json::from_str(raw).unwrap_or_default()
    }

    pub fn to_storage(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// The app authenticates with `private_key_jwt` (and with nothing else).
    pub fn private_key_jwt(&self) -> bool {
        self.jwks.is_some() || self.jwks_uri.is_some()
    }
}

/// A name an app gave itself, as shown to users: trimmed, at most 100 characters, without
/// control characters or the invisible ones that reorder or hide text (bidirectional
/// overrides, zero-width characters) — a name cannot pretend to be another on the page.
pub fn shown_name(raw: &str) -> String {
    raw.trim()
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(*c as u32,
                    0x061C | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF)
        })
        .take(100)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// How an app came to be known.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// Registered by a user or an administrator.
    #[default]
    Registered,
    /// Registered itself (RFC 7591 `POST /oauth/register`).
    Dcr,
    /// Described by a Client ID Metadata Document: its `client_id` is the document's URL.
    Cimd,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Registered => "registered",
            Origin::Dcr => "dcr",
            Origin::Cimd => "cimd",
        }
    }
}

/// What a self-registered app says of itself (RFC 7591 §2), shown on the consent page and
/// answered back by the registration endpoints. Nothing here is verified by Gatehouse.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
pub struct SelfDescription {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
}

impl LogoutSettings {
    pub fn stored_uris(&self) -> String {
        let uris: Vec<&str> = self
            .post_logout_redirect_uris
            .iter()
            .map(RedirectUri::as_str)
            .collect();
        uris.join("\n")
    }
}

impl Client {
    pub fn origin(&self) -> Origin {
        match self.origin.as_str() {
            "dcr" => Origin::Dcr,
            "cimd" => Origin::Cimd,
            _ => Origin::Registered,
        }
    }

    /// Registered itself or described by a metadata document: nobody vouches for it.
    pub fn self_registered(&self) -> bool {
        self.origin() != Origin::Registered
    }

    pub fn description(&self) -> SelfDescription {
        serde_json::from_str(&self.metadata).unwrap_or_default()
    }

    /// The host a metadata-document app's `client_id` names (what the consent page shows
    /// first: the only thing about it that Gatehouse checked).
    pub fn document_host(&self) -> Option<String> {
        (self.origin() == Origin::Cimd)
            .then(|| {
                url::Url::parse(&self.id)
                    .ok()?
                    .host_str()
                    .map(str::to_owned)
            })
            .flatten()
    }

    /// Whether `/oauth/logout` may send the browser to `uri`: registered, character for
    /// character.
    pub fn post_logout_redirect_allowed(&self, uri: &str) -> bool {
        !uri.is_empty() && self.post_logout_redirect_uris.lines().any(|u| u == uri)
    }

    pub fn logout_settings(&self) -> LogoutSettings {
        LogoutSettings {
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .lines()
                .filter_map(|l| RedirectUri::parse(l).ok())
                .collect(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        }
    }

    /// Whether an administrator bound the resource server `uri` to this app — for an app that
    /// registered itself, only while the operator still opens `uri` to such apps
    /// (`open_to_self_registered`, today's `GATEHOUSE_REGISTRATION_RESOURCES`).
    pub fn may_ask_for(&self, uri: &str, open_to_self_registered: &[String]) -> bool {
        self.resources.split(' ').any(|r| r == uri)
            && (!self.self_registered() || open_to_self_registered.iter().any(|r| r == uri))
    }

    pub fn client_type(&self) -> ClientType {
        if self.client_type == "confidential" {
            ClientType::Confidential
        } else {
            ClientType::Public
        }
    }

    pub fn redirect_uris(&self) -> Vec<RedirectUri> {
        self.redirect_uris
            .lines()
            .filter_map(|l| RedirectUri::parse(l).ok())
            .collect()
    }

    /// The registered URI that `requested` matches, if any.
    pub fn redirect_for(&self, requested: &str) -> Option<RedirectUri> {
        self.redirect_uris()
            .into_iter()
            .find(|r| r.matches(requested))
    }

    pub fn scopes(&self) -> ScopeSet {
        ScopeSet::parse(&self.allowed_scopes).unwrap_or_default()
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.split(' ').any(|g| g == grant)
    }

    /// Whether `presented` is the client's secret (or its previous one, during the grace
    /// period after a rotation). Constant-time on the digests.
    pub fn secret_matches(&self, pepper: &Pepper, presented: &str, now: NaiveDateTime) -> bool {
        let Ok(secret) = PlainSecret::parse(CLIENT_SECRET_PREFIX, presented) else {
            return false;
        };
        let digest = pepper.digest_secret(&secret);
        let current = self
            .secret_digest
            .as_deref()
            .is_some_and(|d| constant_time_eq(d.as_bytes(), digest.as_bytes()));
        let previous = self
            .previous_secret_expires_at
            .is_some_and(|until| now < until)
            && self
                .previous_secret_digest
                .as_deref()
                .is_some_and(|d| constant_time_eq(d.as_bytes(), digest.as_bytes()));
        current || previous
    }

    pub fn options(&self) -> ClientOptions {
        ClientOptions::parse(&self.options)
    }

    pub fn view(&self) -> ClientView {
        let options = self.options();
        ClientView {
            token_endpoint_auth_method: if options.private_key_jwt() {
                PRIVATE_KEY_JWT
            } else if self.client_type() == ClientType::Public {
                "none"
            } else {
                "client_secret_basic"
            },
            require_pushed_authorization_requests: options.require_pushed_authorization_requests,
            dpop_bound_access_tokens: options.dpop_bound_access_tokens,
            allowed_origins: self.web_origins().shown(),
            jwks: options.jwks,
            jwks_uri: options.jwks_uri,
            client_id: self.id.clone(),
            name: self.name.clone(),
            owner_user_id: self.owner_user_id.clone(),
            origin: self.origin(),
            workspace_id: self.workspace_id.clone(),
            client_type: self.client_type(),
            redirect_uris: self.redirect_uris.lines().map(str::to_owned).collect(),
            scopes: self.scopes().iter().map(ToString::to_string).collect(),
            grant_types: self.grant_types.split(' ').map(str::to_owned).collect(),
            first_party: self.first_party,
            created_at: utc(self.created_at),
            disabled: self.disabled_at.is_some(),
            admin_locked: self.admin_locked,
            resources: self
                .resources
                .split(' ')
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            post_logout_redirect_uris: self
                .post_logout_redirect_uris
                .lines()
                .map(str::to_owned)
                .collect(),
            backchannel_logout_uri: self.backchannel_logout_uri.clone(),
            backchannel_logout_session_required: self.backchannel_logout_session_required,
        }
    }
}

/// An OAuth client (an app).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ClientView {
    #[schema(example = "cli_5tGh8Jk2LmN0pQrS")]
    pub client_id: String,
    pub name: String,
    /// `null` for an app that registered itself or is described by a metadata document.
    pub owner_user_id: Option<String>,
    pub origin: Origin,
    /// The workspace the app is private to: only its members authorize it, and its grants
    /// act there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    pub client_type: ClientType,
    pub redirect_uris: Vec<String>,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// Among `authorization_code`, `refresh_token`, `client_credentials`.
    pub grant_types: Vec<String>,
    /// Users are not asked to consent (set by administrators).
    pub first_party: bool,
    /// Disabled by an administrator: only an administrator enables it again.
    pub admin_locked: bool,
    /// Resource servers it may ask tokens for (RFC 8707), bound by an administrator.
    pub resources: Vec<String>,
    /// OpenID Connect RP-Initiated Logout: where `/oauth/logout` may send the browser after
    /// signing out (exact matches).
    pub post_logout_redirect_uris: Vec<String>,
    /// OpenID Connect Back-Channel Logout: where a `logout+jwt` is POSTed when a user of the
    /// app signs out.
    pub backchannel_logout_uri: Option<String>,
    /// The app needs `sid` in logout tokens (Gatehouse always sends it when the sign-in had one).
    pub backchannel_logout_session_required: bool,
    /// RFC 9126: its authorization requests must be pushed to `/oauth/par` first.
    pub require_pushed_authorization_requests: bool,
    /// `client_secret_basic` (or `_post`), `none` (public), or `private_key_jwt`.
    pub token_endpoint_auth_method: &'static str,
    /// `private_key_jwt`: the registered JWK Set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// `private_key_jwt`: where the app publishes its keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// RFC 9449: its token requests must carry a DPoP proof; its tokens are bound to the key.
    pub dpop_bound_access_tokens: bool,
    /// The web origins whose pages may call the token endpoint, revocation and UserInfo for
    /// this app (CORS): a public app's registered origins, else its redirect URIs' origins
    /// (`http://127.0.0.1:*`: a loopback host on any port). Always empty for confidential apps.
    pub allowed_origins: Vec<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    pub disabled: bool,
}

#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub name: String,
    pub owner_user_id: Option<String>,
    pub client_type: ClientType,
    pub redirect_uris: Vec<RedirectUri>,
    pub scopes: ScopeSet,
    pub first_party: bool,
    /// From [`GRANT_TYPES`]; `client_credentials` needs a confidential client.
    pub grant_types: Vec<String>,
    /// Resource servers an administrator bound to the app.
    pub resources: Vec<String>,
    pub logout: LogoutSettings,
    /// The workspace the app is private to (`None`: offered to every user).
    pub workspace_id: Option<String>,
    /// The workspace that controls it (`None` with an owner: the owner's personal one).
    pub owner_workspace_id: Option<String>,
    pub origin: Origin,
    /// What a self-registered app said of itself.
    pub description: SelfDescription,
    /// RFC 7592: the digest of the registration access token.
    pub registration_token_digest: Option<String>,
    pub registered_from: Option<String>,
    pub options: ClientOptions,
}

/// OpenID Connect sign-out settings of a client (RP-Initiated and Back-Channel Logout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogoutSettings {
    /// Where `/oauth/logout` may send the browser afterwards: exact matches only.
    pub post_logout_redirect_uris: Vec<RedirectUri>,
    /// Where a `logout+jwt` is POSTed when a user of this app signs out.
    pub backchannel_logout_uri: Option<String>,
    /// Whether the app needs `sid` in logout tokens.
    pub backchannel_logout_session_required: bool,
}

/// Register a client; a confidential one gets a secret, returned here once.
pub fn create(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewClient,
    now: NaiveDateTime,
) -> Result<(Client, Option<PlainSecret>), DbError> {
    let id = new_id(IdKind::Client);
    // An app that proves itself with its keys has no secret to leak.
    let secret = (new.client_type == ClientType::Confidential && !new.options.private_key_jwt())
        .then(|| PlainSecret::generate(CLIENT_SECRET_PREFIX));
    let uris: Vec<&str> = new.redirect_uris.iter().map(RedirectUri::as_str).collect();
    // Who controls it: as the caller says, else the workspace it is private to.
    let controlled_by = new
        .owner_workspace_id
        .clone()
        .or_else(|| new.workspace_id.clone());
    diesel::insert_into(clients::table)
        .values((
            clients::id.eq(&id),
            clients::name.eq(&new.name),
            clients::owner_user_id.eq(&new.owner_user_id),
            clients::client_type.eq(new.client_type.as_str()),
            clients::secret_digest.eq(secret.as_ref().map(|s| pepper.digest_secret(s))),
            clients::redirect_uris.eq(uris.join("\n")),
            clients::allowed_scopes.eq(new.scopes.to_storage()),
            clients::grant_types.eq(new.grant_types.join(" ")),
            clients::first_party.eq(new.first_party),
            clients::resources.eq(new.resources.join(" ")),
            clients::post_logout_redirect_uris.eq(new.logout.stored_uris()),
            clients::backchannel_logout_uri.eq(&new.logout.backchannel_logout_uri),
            clients::backchannel_logout_session_required
                .eq(new.logout.backchannel_logout_session_required),
            clients::workspace_id.eq(&new.workspace_id),
            clients::owner_workspace_id.eq(&controlled_by),
            clients::origin.eq(new.origin.as_str()),
            clients::metadata
                .eq(serde_json::to_string(&new.description).unwrap_or_else(|_| "{}".into())),
            clients::registration_token_digest.eq(&new.registration_token_digest),
            clients::registered_from.eq(&new.registered_from),
            clients::options.eq(new.options.to_storage()),
            clients::created_at.eq(now),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    let client = clients::table
        .find(&id)
        .select(Client::as_select())
        .first(conn)?;
    Ok((client, secret))
}

/// Record that the app was used now (its first use too, if this is it).
pub fn note_use(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(
        clients::table
            .find(id)
            .filter(clients::first_used_at.is_null()),
    )
    .set(clients::first_used_at.eq(now))
    .execute(conn)?;
    diesel::update(clients::table.find(id))
        .set(clients::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// The apps `user_id` controls, newest first (at most `limit`): those of the workspaces they
/// administer (their personal one among them) and those they registered where they are still
/// a member; with `bound`, that workspace's only. An app of theirs stored without a
/// controlling workspace (registered by an older release during a rollout) is their
/// `personal` workspace's.
pub fn controlled_by(
    conn: &mut DbConn,
    user_id: &str,
    bound: Option<&str>,
    personal: Option<&str>,
    limit: i64,
) -> Result<Vec<Client>, DbError> {
    use crate::db::schema::workspace_members as m;
    let administered = m::table
        .filter(m::user_id.eq(user_id))
        .filter(m::role.eq_any(["owner", "admin"]))
        .select(m::workspace_id.nullable());
    let member_of = m::table
        .filter(m::user_id.eq(user_id))
        .select(m::workspace_id.nullable());
    let legacy_personal = clients::owner_workspace_id
        .is_null()
        .and(clients::workspace_id.is_null())
        .and(clients::owner_user_id.eq(user_id));
    // A private app an older release registered: its workspace controls it.
    let legacy_private = clients::owner_workspace_id.is_null().and(
        clients::workspace_id
            .eq_any(
                m::table
                    .filter(m::user_id.eq(user_id))
                    .filter(m::role.eq_any(["owner", "admin"]))
                    .select(m::workspace_id.nullable()),
            )
            .or(clients::owner_user_id.eq(user_id).and(
                clients::workspace_id.eq_any(
                    m::table
                        .filter(m::user_id.eq(user_id))
                        .select(m::workspace_id.nullable()),
                ),
            )),
    );
    let mut query = clients::table
        .filter(
            clients::owner_workspace_id
                .eq_any(administered)
                .or(clients::owner_user_id
                    .eq(user_id)
                    .and(clients::owner_workspace_id.eq_any(member_of)))
                .or(legacy_personal)
                .or(legacy_private),
        )
        .select(Client::as_select())
        .order((clients::created_at.desc(), clients::id.desc()))
        .into_boxed();
    match bound {
        None => {}
        Some(bound) if Some(bound) == personal => {
            query = query.filter(
                clients::owner_workspace_id
                    .eq(bound)
                    .or(clients::owner_workspace_id
                        .is_null()
                        .and(clients::workspace_id.is_null())),
            );
        }
        Some(bound) => {
            query = query.filter(
                clients::owner_workspace_id
                    .eq(bound)
                    .or(clients::owner_workspace_id
                        .is_null()
                        .and(clients::workspace_id.eq(bound))),
            );
        }
    }
    Ok(query.limit(limit).load(conn)?)
}

pub fn find(conn: &mut DbConn, id: &str) -> Result<Option<Client>, DbError> {
    Ok(clients::table
        .find(id)
        .select(Client::as_select())
        .first(conn)
        .optional()?)
}

/// Self-registered and metadata-document apps not used since `cutoff` (never used: registered
/// before it).
pub fn unused_since(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(clients::table
        .filter(clients::origin.eq_any(["dcr", "cimd"]))
        .filter(
            clients::last_used_at.lt(cutoff).or(clients::last_used_at
                .is_null()
                .and(clients::created_at.lt(cutoff))),
        )
        .select(clients::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these apps (their consents, codes and refresh families go with them).
pub fn delete_many(conn: &mut DbConn, ids: &[String]) -> Result<usize, DbError> {
    Ok(diesel::delete(clients::table.filter(clients::id.eq_any(ids))).execute(conn)?)
}

/// What an app's own registration (RFC 7592) may change of it.
pub struct Registered<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a [String],
    pub scopes: &'a crate::scopes::ScopeSet,
    pub grant_types: &'a [String],
    /// The self-description shown to users, as JSON.
    pub metadata: &'a str,
    pub options: &'a str,
}

/// Store an app's own change of its registration.
pub fn update_registered(
    conn: &mut DbConn,
    id: &str,
    r: &Registered<'_>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(clients::table.find(id))
        .set((
            clients::name.eq(r.name),
            clients::redirect_uris.eq(r.redirect_uris.join("\n")),
            clients::allowed_scopes.eq(r.scopes.to_storage()),
            clients::grant_types.eq(r.grant_types.join(" ")),
            clients::metadata.eq(r.metadata),
            clients::options.eq(r.options),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The columns a PATCH changes (`None`: left as it is; `disabled_at: Some(None)`: enabled).
#[derive(AsChangeset)]
#[diesel(table_name = clients)]
pub struct ClientChanges {
    pub name: Option<String>,
    pub redirect_uris: Option<String>,
    pub allowed_scopes: Option<String>,
    pub grant_types: Option<String>,
    pub first_party: Option<bool>,
    pub resources: Option<String>,
    pub post_logout_redirect_uris: Option<String>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub backchannel_logout_session_required: Option<bool>,
    pub options: Option<String>,
    pub disabled_at: Option<Option<NaiveDateTime>>,
    pub admin_locked: Option<bool>,
    pub disabled_by: Option<Option<String>>,
    pub updated_at: NaiveDateTime,
}

/// Store a change of an app's settings.
pub fn apply_changes(conn: &mut DbConn, id: &str, changes: &ClientChanges) -> Result<(), DbError> {
    diesel::update(clients::table.find(id))
        .set(changes)
        .execute(conn)?;
    Ok(())
}

/// A new secret for the app; the old one, if kept, verifies until `previous_until`.
pub fn set_secret(
    conn: &mut DbConn,
    id: &str,
    digest: &str,
    previous: Option<String>,
    previous_until: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<Client, DbError> {
    let target = clients::table.find(id);
    diesel::update(target)
        .set((
            clients::secret_digest.eq(Some(digest)),
            clients::previous_secret_digest.eq(previous),
            clients::previous_secret_expires_at.eq(previous_until),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(target.select(Client::as_select()).first(conn)?)
}

/// Delete one app (its consents, codes and refresh families go with it).
pub fn delete(conn: &mut DbConn, id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(clients::table.find(id)).execute(conn)?)
}

/// The web origins of every enabled public app: the origins a CORS preflight is answered
/// for (the request itself is then checked against its own app).
pub fn public_web_origins(conn: &mut DbConn) -> Result<cors::Origins, DbError> {
    let apps: Vec<Client> = clients::table
        .filter(clients::client_type.eq("public"))
        .filter(clients::disabled_at.is_null())
        .select(Client::as_select())
        .load(conn)?;
    let mut all = cors::Origins::default();
    for app in &apps {
        all.add(app.web_origins());
    }
    Ok(all)
}

/// Every app of the install, newest first.
pub fn list_all(conn: &mut DbConn, limit: i64) -> Result<Vec<Client>, DbError> {
    Ok(clients::table
        .select(Client::as_select())
        .order((clients::created_at.desc(), clients::id.desc()))
        .limit(limit)
        .load(conn)?)
}

/// The apps that registered themselves or are described by metadata documents, newest first.
pub fn self_registered(conn: &mut DbConn, limit: i64) -> Result<Vec<Client>, DbError> {
    Ok(clients::table
        .filter(clients::origin.eq_any([Origin::Dcr.as_str(), Origin::Cimd.as_str()]))
        .order((clients::created_at.desc(), clients::id.desc()))
        .limit(limit)
        .select(Client::as_select())
        .load(conn)?)
}

/// Every app described by a metadata document.
pub fn described_by_documents(conn: &mut DbConn) -> Result<Vec<Client>, DbError> {
    Ok(clients::table
        .filter(clients::origin.eq(Origin::Cimd.as_str()))
        .select(Client::as_select())
        .load(conn)?)
}

/// Disable the app under an administrator's lock (only an administrator enables it again).
pub fn lock_disabled(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(clients::table.find(id))
        .set((
            clients::disabled_at.eq(Some(now)),
            clients::admin_locked.eq(true),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Which of these apps listen for back-channel logout notices.
pub fn listening_for_logout(conn: &mut DbConn, ids: &[&String]) -> Result<Vec<String>, DbError> {
    Ok(clients::table
        .filter(clients::id.eq_any(ids))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select(clients::id)
        .load(conn)?)
}

/// What a metadata document says of an app, as stored.
pub struct DescribedRow<'a> {
    pub name: &'a str,
    pub redirect_uris: &'a [&'a str],
    pub scopes: &'a crate::scopes::ScopeSet,
    pub grant_types: &'a [String],
    pub metadata: &'a str,
    pub client_type: &'a str,
    pub options: &'a str,
    pub resources: &'a [String],
    /// When the document is fetched again.
    pub expires: NaiveDateTime,
}

/// Where an app comes from (`registered`, `dcr`, `cimd`), if it exists.
pub fn origin_of(conn: &mut DbConn, id: &str) -> Result<Option<String>, DbError> {
    Ok(clients::table
        .find(id)
        .select(clients::origin)
        .first::<String>(conn)
        .optional()?)
}

/// Refresh what a document-described app's document says (a disabled app stays disabled).
pub fn refresh_described(
    conn: &mut DbConn,
    id: &str,
    d: &DescribedRow<'_>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::update(clients::table.find(id))
        .set((
            clients::name.eq(d.name),
            clients::redirect_uris.eq(d.redirect_uris.join("\n")),
            clients::allowed_scopes.eq(d.scopes.to_storage()),
            clients::grant_types.eq(d.grant_types.join(" ")),
            clients::metadata.eq(d.metadata),
            clients::client_type.eq(d.client_type),
            clients::options.eq(d.options),
            clients::resources.eq(d.resources.join(" ")),
            clients::metadata_expires_at.eq(d.expires),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Insert an app its metadata document describes (the error is the database's, so that the
/// caller tells a concurrent insert of the same app from a failure).
pub fn insert_described(
    conn: &mut DbConn,
    id: &str,
    d: &DescribedRow<'_>,
    now: NaiveDateTime,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(clients::table)
        .values((
            clients::id.eq(id),
            clients::name.eq(d.name),
            clients::owner_user_id.eq(None::<String>),
            clients::client_type.eq(d.client_type),
            clients::options.eq(d.options),
            clients::redirect_uris.eq(d.redirect_uris.join("\n")),
            clients::allowed_scopes.eq(d.scopes.to_storage()),
            clients::grant_types.eq(d.grant_types.join(" ")),
            clients::first_party.eq(false),
            clients::resources.eq(d.resources.join(" ")),
            clients::post_logout_redirect_uris.eq(""),
            clients::backchannel_logout_session_required.eq(false),
            clients::origin.eq(Origin::Cimd.as_str()),
            clients::metadata.eq(d.metadata),
            clients::metadata_expires_at.eq(d.expires),
            clients::created_at.eq(now),
            clients::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: &PlainSecret, pepper: &Pepper) -> Client {
        let now = chrono::Utc::now().naive_utc();
        Client {
            workspace_id: None,
            owner_workspace_id: None,
            disabled_by: None,
            id: "cli_x".into(),
            name: "x".into(),
            owner_user_id: Some("usr_x".into()),
            origin: "registered".into(),
            registration_token_digest: None,
            metadata: "{}".into(),
            registered_from: None,
            metadata_expires_at: None,
            first_used_at: None,
            last_used_at: None,
            options: "{}".into(),
            client_type: "confidential".into(),
            secret_digest: Some(pepper.digest_secret(secret)),
            previous_secret_digest: None,
            previous_secret_expires_at: None,
            redirect_uris: "https://app.example.com/cb\nhttp://127.0.0.1/cb".into(),
            allowed_scopes: "read:users".into(),
            grant_types: default_grant_types().join(" "),
            first_party: false,
            created_at: now,
            updated_at: now,
            disabled_at: None,
            admin_locked: false,
            resources: String::new(),
            post_logout_redirect_uris: String::new(),
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
        }
    }

    #[test]
    fn secrets_are_checked_against_digests_with_a_grace_for_the_previous_one() {
        let pepper = Pepper::derive(b"k", "secret-digest");
        let secret = PlainSecret::generate(CLIENT_SECRET_PREFIX);
        let now = chrono::Utc::now().naive_utc();
        let mut c = client(&secret, &pepper);
        assert!(c.secret_matches(&pepper, secret.expose(), now));
        assert!(!c.secret_matches(
            &pepper,
            PlainSecret::generate(CLIENT_SECRET_PREFIX).expose(),
            now
        ));
        assert!(!c.secret_matches(&pepper, "cs_short", now));
        let old = PlainSecret::generate(CLIENT_SECRET_PREFIX);
        c.previous_secret_digest = Some(pepper.digest_secret(&old));
        c.previous_secret_expires_at = Some(now + chrono::Duration::minutes(5));
        assert!(c.secret_matches(&pepper, old.expose(), now));
        assert!(!c.secret_matches(&pepper, old.expose(), now + chrono::Duration::minutes(6)));
    }

    #[test]
    fn names_shown_to_users_lose_invisible_and_reordering_characters() {
        assert_eq!(
            shown_name("  Sla\u{202E}kc\u{200B} Helper\u{FEFF} "),
            "Slakc Helper"
        );
        assert_eq!(shown_name("\u{2066}\u{2069}"), "");
        assert_eq!(shown_name(&"é".repeat(150)).chars().count(), 100);
        assert_eq!(shown_name("Café Agent"), "Café Agent");
    }

    #[test]
    fn redirects_are_looked_up_among_the_registered_ones() {
        let pepper = Pepper::derive(b"k", "secret-digest");
        let c = client(&PlainSecret::generate(CLIENT_SECRET_PREFIX), &pepper);
        assert!(c.redirect_for("https://app.example.com/cb").is_some());
        assert!(c.redirect_for("http://127.0.0.1:9999/cb").is_some());
        assert!(c.redirect_for("https://app.example.com/cb/").is_none());
        assert!(c.allows_grant("refresh_token"));
        assert!(!c.allows_grant("client_credentials"));
    }
}
