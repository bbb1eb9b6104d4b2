//! What a user's approval becomes: the remembered consent, the single-use code that carries it
//! to the token endpoint, and the refresh tokens of the family it starts. The only place that
//! queries `consents`, `auth_codes`, `refresh_families` and `refresh_tokens`. Its submodules are
//! the grants of the token endpoint, one file each, free of HTTP.

pub mod audit;
pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod issue;
pub mod refresh_token;
pub mod token_exchange;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::workspaces::roles::WorkspaceClaim;
use sha2::{Digest, Sha256};

use crate::db::schema::{auth_codes, consents, refresh_families, refresh_tokens};
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret, constant_time_eq};

pub const CODE_PREFIX: &str = "ac_";
pub const REFRESH_PREFIX: &str = "rt_";
pub const CODE_LIFETIME: Duration = Duration::seconds(60);
/// How long a code is kept after it expired: a replay inside this window still revokes what
/// the code issued; after it the code is purged and a replay is just an unknown code.
pub const CODE_KEPT_AFTER_EXPIRY: Duration = Duration::hours(1);

/// A user's remembered approval of a client.
#[derive(Debug, Clone, Default)]
pub struct StoredConsent {
    pub scopes: ScopeSet,
    /// Granted without asking, because the app was first-party then. Such a grant is listed
    /// and can be disconnected, but it is not the user's approval: if the app stops being
    /// first-party, the user is asked.
    pub first_party: bool,
    /// The workspace the user last authorized the app in, if they are still a member.
    pub workspace_id: Option<String>,
}

impl StoredConsent {
    /// The scopes the user approved on the consent page (none for a first-party grant).
    pub fn approved_by_user(&self) -> ScopeSet {
        if self.first_party {
            ScopeSet::default()
        } else {
            self.scopes.clone()
        }
    }
}

/// How an approval was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// On the consent page.
    ByUser,
    /// Without asking: the app is first-party.
    FirstParty,
}

/// What `user_id` granted `client_id` so far.
pub fn find_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> Result<Option<StoredConsent>, DbError> {
    use crate::db::schema::workspace_members;
    // The remembered workspace counts only while the user is still a member of it (one
    // statement: the remembered flow's cost does not grow).
    let stored: Option<(String, bool, Option<String>)> = consents::table
        .left_join(
            workspace_members::table.on(workspace_members::workspace_id
                .nullable()
                .eq(consents::workspace_id)
                .and(workspace_members::user_id.eq(consents::user_id))),
        )
        .filter(consents::user_id.eq(user_id))
        .filter(consents::client_id.eq(client_id))
        .select((
            consents::scopes,
            consents::first_party,
            workspace_members::workspace_id.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(
        stored.map(|(scopes, first_party, workspace_id)| StoredConsent {
            scopes: ScopeSet::parse(&scopes).unwrap_or_default(),
            first_party,
            workspace_id,
        }),
    )
}

/// The scopes `user_id` approved for `client_id` on the consent page.
pub fn consented_scopes(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
) -> Result<ScopeSet, DbError> {
    Ok(find_consent(conn, user_id, client_id)?
        .map(|c| c.approved_by_user())
        .unwrap_or_default())
}

/// Forget the users' own approvals of an app (first-party grants stay: nobody was asked):
/// each user is asked again at their next authorization. For an app whose redirect URIs
/// changed — an approval was given for where the codes went then.
pub fn forget_approvals_of(conn: &mut DbConn, client_id: &str) -> Result<usize, DbError> {
    Ok(diesel::delete(
        consents::table
            .filter(consents::client_id.eq(client_id))
            .filter(consents::first_party.eq(false)),
    )
    .execute(conn)?)
}

/// Remember an approval. The user's approvals add up; a first-party grant adds to whatever is
/// stored and marks the row first-party; the user's approval of a row granted first-party
/// replaces it (what the app got without asking does not become the user's approval).
pub fn remember_consent(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    scopes: &ScopeSet,
    approval: Approval,
    workspace_id: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    crate::db::write_transaction(conn, |conn| {
        let before = find_consent(conn, user_id, client_id)?;
        let kept = match (&before, approval) {
            (Some(b), Approval::ByUser) if b.first_party => ScopeSet::default(),
            (Some(b), _) => b.scopes.clone(),
            (None, _) => ScopeSet::default(),
        };
        let union: ScopeSet = kept.iter().chain(scopes.iter()).cloned().collect();
        let first_party = approval == Approval::FirstParty;
        if before.is_some() {
            diesel::update(
                consents::table
                    .filter(consents::user_id.eq(user_id))
                    .filter(consents::client_id.eq(client_id)),
            )
            .set((
                consents::scopes.eq(union.to_storage()),
                consents::first_party.eq(first_party),
                consents::workspace_id.eq(workspace_id),
                consents::updated_at.eq(now),
            ))
            .execute(conn)?;
        } else {
            diesel::insert_into(consents::table)
                .values((
                    consents::id.eq(new_id(IdKind::Consent)),
                    consents::user_id.eq(user_id),
                    consents::client_id.eq(client_id),
                    consents::scopes.eq(union.to_storage()),
                    consents::first_party.eq(first_party),
                    consents::workspace_id.eq(workspace_id),
                    consents::created_at.eq(now),
                    consents::updated_at.eq(now),
                ))
                .execute(conn)?;
        }
        Ok(())
    })
}

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = auth_codes)]
pub struct AuthCode {
    pub id: String,
    pub code_digest: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: String,
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub consumed_at: Option<NaiveDateTime>,
    /// The resource (RFC 8707) the authorization request named.
    pub resource: Option<String>,
    pub nonce: Option<String>,
    pub session_id: Option<String>,
    /// The workspace the user authorized the app in.
    pub workspace_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewCode {
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    /// The S256 PKCE challenge, when the client sent one.
    pub code_challenge: Option<String>,
    pub auth_time: NaiveDateTime,
    pub resource: Option<String>,
    /// OpenID Connect: the request's `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// The browser session that approved (the ID token's `sid`).
    pub session_id: Option<String>,
    /// The workspace the user chose (or the app's, for a private app).
    pub workspace_id: Option<String>,
}

/// Store a new authorization code. On PostgreSQL, outside a transaction, its commit does not
/// wait for the log to reach the disk (see `issue_code_relaxed`).
pub fn issue_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    new: &NewCode,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let code = PlainSecret::generate(CODE_PREFIX);
    if let DbConn::Pg(pg) = conn
        && crate::db::outside_transaction(pg)?
    {
        issue_code_relaxed(pg, &pepper.digest_secret(&code), new, now)?;
        return Ok(code);
    }
    crate::db::serialized_write(conn, |conn| {
        diesel::insert_into(auth_codes::table)
            .values((
                auth_codes::id.eq(new_id(IdKind::AuthCode)),
                auth_codes::code_digest.eq(pepper.digest_secret(&code)),
                auth_codes::client_id.eq(&new.client_id),
                auth_codes::user_id.eq(&new.user_id),
                auth_codes::redirect_uri.eq(&new.redirect_uri),
                auth_codes::scopes.eq(new.scopes.to_storage()),
                auth_codes::code_challenge.eq(&new.code_challenge),
                auth_codes::auth_time.eq(new.auth_time),
                auth_codes::created_at.eq(now),
                auth_codes::expires_at.eq(now + CODE_LIFETIME),
                auth_codes::resource.eq(&new.resource),
                auth_codes::nonce.eq(&new.nonce),
                auth_codes::session_id.eq(&new.session_id),
                auth_codes::workspace_id.eq(&new.workspace_id),
            ))
            .execute(conn)
    })?;
    Ok(code)
}

/// The code's row in one statement whose own transaction commits asynchronously
/// (`synchronous_commit = off`, set for that transaction only): a code lives a minute and is
/// worth nothing if lost, so a crash in the next ~0.6 s costs the app one more pass through
/// the authorization endpoint — while waiting for the disk here cost every code flow ~10 %
/// (BENCHMARKS.md, eighth session). Everything that spends a code
/// (or a refresh token) still commits synchronously, and PostgreSQL's log is flushed in order,
/// so a spend that survives a crash always finds its code. Called inside a transaction this
/// would relax the whole transaction, hence `issue_code` only calls it outside one.
#[doc(hidden)]
pub fn issue_code_relaxed(
    pg: &mut diesel::PgConnection,
    digest: &str,
    new: &NewCode,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    use crate::db::prepared::{Bind, PgStatement};
    let (id, scopes) = (new_id(IdKind::AuthCode), new.scopes.to_storage());
    let inserted = PgStatement::new(
        "WITH relaxed AS MATERIALIZED ( \
             SELECT set_config('synchronous_commit', 'off', true) AS commit) \
         INSERT INTO auth_codes (id, code_digest, client_id, user_id, redirect_uri, scopes, \
             code_challenge, auth_time, created_at, expires_at, resource, nonce, session_id, \
             workspace_id) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14 \
         FROM relaxed WHERE relaxed.commit = 'off'",
        vec![
            Bind::Text(&id),
            Bind::Text(digest),
            Bind::Text(&new.client_id),
            Bind::Text(&new.user_id),
            Bind::Text(&new.redirect_uri),
            Bind::Text(&scopes),
            Bind::NullableText(new.code_challenge.as_deref()),
            Bind::Timestamp(new.auth_time),
            Bind::Timestamp(now),
            Bind::Timestamp(now + CODE_LIFETIME),
            Bind::NullableText(new.resource.as_deref()),
            Bind::NullableText(new.nonce.as_deref()),
            Bind::NullableText(new.session_id.as_deref()),
            Bind::NullableText(new.workspace_id.as_deref()),
        ],
    )
    .execute(pg)?;
    if inserted == 1 {
        Ok(())
    } else {
        Err(DbError::Query(diesel::result::Error::NotFound))
    }
}

/// RFC 7636 S256: `BASE64URL(SHA256(verifier))`.
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 43 to 128 unreserved characters (RFC 7636 §4.1).
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// What a token request says about the code it presents. The code is consumed only for the
/// request it was issued for, so that nobody else can spend it, or set off its replay
/// detection and revoke the victim's grant.
#[derive(Debug, Clone, Copy)]
pub struct CodeRequest<'a> {
    /// The authenticated client (for a public client: the one named, which PKCE then binds).
    pub client_id: &'a str,
    pub redirect_uri: Option<&'a str>,
    pub code_verifier: Option<&'a str>,
}

impl CodeRequest<'_> {
    /// Why this request may not redeem `code`, if it may not.
    pub fn mismatch(&self, code: &AuthCode) -> Option<&'static str> {
        if code.client_id != self.client_id {
            return Some("The code was issued to another client");
        }
        if self.redirect_uri != Some(code.redirect_uri.as_str()) {
            return Some("redirect_uri does not match the authorization request");
        }
        match (code.code_challenge.as_deref(), self.code_verifier) {
            (Some(challenge), Some(verifier))
                if valid_verifier(verifier)
                    && constant_time_eq(pkce_s256(verifier).as_bytes(), challenge.as_bytes()) =>
            {
                None
            }
            (Some(_), Some(_)) => Some("The code_verifier does not match the code_challenge"),
            (Some(_), None) => Some("code_verifier is required"),
            (None, Some(_)) => {
                Some("A code_verifier was sent for a code issued without a challenge")
            }
            (None, None) => None,
        }
    }
}

pub enum Redemption {
    /// The code is valid for this request and not consumed yet: `claim_code` consumes it.
    /// With the user's membership of the code's workspace, read in the same statement.
    Usable(
        Box<AuthCode>,
        Option<crate::workspaces::roles::WorkspaceClaim>,
    ),
    /// The code was consumed before, and is presented again by the request it was issued for:
    /// a replay. Its families have been revoked.
    Replayed {
        client_id: String,
        user_id: String,
        /// The refresh families (grants) revoked now.
        families: Vec<String>,
    },
    /// The code exists but was not issued for this request (another client, redirect URI or
    /// PKCE verifier). Nothing changed: the code is not consumed and nothing is revoked.
    Mismatch(&'static str),
    Expired,
    Unknown,
}

/// Find a code and decide whether `request` is the one it was issued for. A replay by that same
/// request (the code was consumed) revokes every refresh family the code started. One read on
/// the way to `Usable`; nothing is consumed until `claim_code`.
pub fn find_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    request: &CodeRequest<'_>,
    now: NaiveDateTime,
) -> Result<Redemption, DbError> {
    let Ok(code) = PlainSecret::parse(CODE_PREFIX, presented) else {
        return Ok(Redemption::Unknown);
    };
    use crate::db::schema::{workspace_members, workspaces};
    let found: Option<(AuthCode, Option<String>, Option<String>)> = auth_codes::table
        .left_join(workspaces::table.on(workspaces::id.nullable().eq(auth_codes::workspace_id)))
        .left_join(
            workspace_members::table.on(workspace_members::workspace_id
                .nullable()
                .eq(auth_codes::workspace_id)
                .and(workspace_members::user_id.eq(auth_codes::user_id))),
        )
        .filter(auth_codes::code_digest.eq(pepper.digest_secret(&code)))
        .select((
            AuthCode::as_select(),
            workspaces::slug.nullable(),
            workspace_members::role.nullable(),
        ))
        .first(conn)
        .optional()?;
    let Some((found, slug, role)) = found else {
        return Ok(Redemption::Unknown);
    };
    if let Some(why) = request.mismatch(&found) {
        return Ok(Redemption::Mismatch(why));
    }
    if found.consumed_at.is_some() {
        return code_replayed(conn, found, now);
    }
    if found.expires_at <= now {
        return Ok(Redemption::Expired);
    }
    let claim = WorkspaceClaim::from_joined(found.workspace_id.as_deref(), slug, role.as_deref());
    if found.workspace_id.is_some() && claim.is_none() {
        return Ok(Redemption::Mismatch(
            "The user is no longer a member of the workspace this code was issued in",
        ));
    }
    Ok(Redemption::Usable(Box::new(found), claim))
}

/// The grant a code starts: its family id and what every token of it carries.
pub struct NewGrant<'a> {
    pub family_id: &'a str,
    pub scopes: &'a ScopeSet,
    pub policy: FamilyPolicy,
}

/// Consume `code` and start its refresh family with the first token, as one write: of
/// concurrent claims exactly one gets the token, the others `None` (they are the replay: see
/// `code_replayed`). PostgreSQL does it in one prepared statement (one commit); SQLite in
/// one transaction.
pub fn claim_code(
    conn: &mut DbConn,
    pepper: &Pepper,
    code: &AuthCode,
    grant: NewGrant<'_>,
    now: NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    if let DbConn::Pg(pg) = conn {
        use crate::db::prepared::{Bind, PgStatement};
        let token = PlainSecret::generate(REFRESH_PREFIX);
        let (token_id, digest, scopes) = (
            new_id(IdKind::RefreshToken),
            pepper.digest_secret(&token),
            grant.scopes.to_storage(),
        );
        let inserted = PgStatement::new(
            "WITH claimed AS ( \
                 UPDATE auth_codes SET consumed_at = $1 \
                 WHERE id = $2 AND consumed_at IS NULL RETURNING id), \
             family AS ( \
                 INSERT INTO refresh_families (id, client_id, user_id, code_id, resource, scopes, \
                     auth_time, created_at, last_used_at, expires_at, session_id, workspace_id) \
                 SELECT $3, $4, $5, id, $6, $7, $8, $1, $1, $9, $12, $13 FROM claimed RETURNING id) \
             INSERT INTO refresh_tokens (id, token_digest, family_id, scopes, created_at, grace_used) \
             SELECT $10, $11, id, $7, $1, FALSE FROM family",
            vec![
                Bind::Timestamp(now),
                Bind::Text(&code.id),
                Bind::Text(grant.family_id),
                Bind::Text(&code.client_id),
                Bind::Text(&code.user_id),
                Bind::NullableText(code.resource.as_deref()),
                Bind::Text(&scopes),
                Bind::Timestamp(code.auth_time),
                Bind::Timestamp(now + grant.policy.absolute),
                Bind::Text(&token_id),
                Bind::Text(&digest),
                Bind::NullableText(code.session_id.as_deref()),
                Bind::NullableText(code.workspace_id.as_deref()),
            ],
        )
        .execute(pg)?;
        return Ok((inserted == 1).then_some(token));
    }
    crate::db::write_transaction(conn, |conn| {
        let claimed = diesel::update(
            auth_codes::table
                .find(&code.id)
                .filter(auth_codes::consumed_at.is_null()),
        )
        .set(auth_codes::consumed_at.eq(now))
        .execute(conn)?;
        if claimed == 0 {
            return Ok(None);
        }
        insert_family(
            conn,
            grant.family_id,
            &code.client_id,
            &code.user_id,
            Some(&code.id),
            code.resource.as_deref(),
            code.session_id.as_deref(),
            code.workspace_id.as_deref(),
            grant.scopes,
            code.auth_time,
            grant.policy,
            now,
        )?;
        insert_token(conn, pepper, grant.family_id, grant.scopes, now).map(Some)
    })
}

/// A code redeemed by `redeem_code_pg`, with the user's membership of its workspace.
pub struct Redeemed {
    pub code: Box<AuthCode>,
    pub workspace: Option<WorkspaceClaim>,
    /// The first refresh token of the family the code started.
    pub refresh: PlainSecret,
}

#[derive(QueryableByName)]
struct RedeemedRow {
    #[diesel(embed)]
    code: AuthCode,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    workspace_slug: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    workspace_role: Option<String>,
}

/// The redemption in one statement: spend the code (unexpired, unspent, this client and
/// redirect URI, the PKCE challenge, the resource, a member of its workspace still), start
/// the refresh family and its first token, and read the code back with the workspace claim.
/// $1 now, $2 code digest, $3 client, $4 redirect URI, $5 challenge, $6 resource, $7 family
/// id, $8 family expiry, $9 DPoP thumbprint, $10 token id, $11 token digest.
const REDEEM_CODE_PG: &str = "WITH claimed AS ( \
         UPDATE auth_codes SET consumed_at = $1 \
         WHERE code_digest = $2 AND consumed_at IS NULL AND expires_at > $1 \
           AND client_id = $3 AND redirect_uri = $4 \
           AND code_challenge IS NOT DISTINCT FROM $5 \
           AND ($6::text IS NULL OR resource IS NULL OR resource = $6) \
           AND (workspace_id IS NULL OR EXISTS ( \
               SELECT 1 FROM workspace_members m \
               WHERE m.workspace_id = auth_codes.workspace_id \
                 AND m.user_id = auth_codes.user_id)) \
         RETURNING *), \
     family AS ( \
         INSERT INTO refresh_families (id, client_id, user_id, code_id, resource, scopes, \
             auth_time, created_at, last_used_at, expires_at, session_id, workspace_id, \
             dpop_jkt) \
         SELECT $7, client_id, user_id, id, resource, scopes, auth_time, $1, $1, $8, \
             session_id, workspace_id, $9 FROM claimed \
         RETURNING id, scopes), \
     token AS ( \
         INSERT INTO refresh_tokens (id, token_digest, family_id, scopes, created_at, \
             grace_used) \
         SELECT $10, $11, id, scopes, $1, FALSE FROM family) \
     SELECT c.id, c.code_digest, c.client_id, c.user_id, c.redirect_uri, c.scopes, \
         c.code_challenge, c.auth_time, c.created_at, c.expires_at, c.consumed_at, \
         c.resource, c.nonce, c.session_id, c.workspace_id, \
         w.slug AS workspace_slug, m.role AS workspace_role \
     FROM claimed c \
     LEFT JOIN workspaces w ON w.id = c.workspace_id \
     LEFT JOIN workspace_members m ON m.workspace_id = c.workspace_id AND m.user_id = c.user_id";

/// PostgreSQL's usual redemption in one prepared statement: the code is spent only if this
/// request is the one it was issued for (client, redirect URI, PKCE verifier, the resource if
/// the request names one), it is unspent and unexpired, and the user is still a member of its
/// workspace; in the same statement its family starts (bound to `dpop_jkt` when given) with
/// its first refresh token. `None` when any condition fails, or on SQLite: the caller then
/// takes the path that says why (`find_code`, which also detects a replay).
#[allow(clippy::too_many_arguments)]
pub fn redeem_code_pg(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    request: &CodeRequest<'_>,
    resource_asked: Option<&str>,
    family_id: &str,
    policy: FamilyPolicy,
    dpop_jkt: Option<&str>,
    now: NaiveDateTime,
) -> Result<Option<Redeemed>, DbError> {
    use crate::db::prepared::{Bind, PgStatement};
    let DbConn::Pg(pg) = conn else {
        return Ok(None);
    };
    let Ok(code) = PlainSecret::parse(CODE_PREFIX, presented) else {
        return Ok(None);
    };
    // A verifier of the wrong shape matches no challenge: the careful path says so.
    if request.code_verifier.is_some_and(|v| !valid_verifier(v)) {
        return Ok(None);
    }
    // Compared in the statement: an equal SHA-256 output tells nothing about the verifier.
    let challenge = request.code_verifier.map(pkce_s256);
    let Some(redirect_uri) = request.redirect_uri else {
        return Ok(None);
    };
    let token = PlainSecret::generate(REFRESH_PREFIX);
    let (code_digest, token_id, token_digest) = (
        pepper.digest_secret(&code),
        new_id(IdKind::RefreshToken),
        pepper.digest_secret(&token),
    );
    let rows: Vec<RedeemedRow> = PgStatement::new(
        REDEEM_CODE_PG,
        vec![
            Bind::Timestamp(now),
            Bind::Text(&code_digest),
            Bind::Text(request.client_id),
            Bind::Text(redirect_uri),
            Bind::NullableText(challenge.as_deref()),
            Bind::NullableText(resource_asked),
            Bind::Text(family_id),
            Bind::Timestamp(now + policy.absolute),
            Bind::NullableText(dpop_jkt),
            Bind::Text(&token_id),
            Bind::Text(&token_digest),
        ],
    )
    .load(pg)?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let workspace = WorkspaceClaim::from_joined(
        row.code.workspace_id.as_deref(),
        row.workspace_slug,
        row.workspace_role.as_deref(),
    );
    Ok(Some(Redeemed {
        code: Box::new(row.code),
        workspace,
        refresh: token,
    }))
}

/// `code` was consumed before (or by a concurrent claim that won): revoke what it issued.
pub fn code_replayed(
    conn: &mut DbConn,
    code: AuthCode,
    now: NaiveDateTime,
) -> Result<Redemption, DbError> {
    let families = revoke_families_of_code(conn, &code.id, now, "code_replay")?;
    Ok(Redemption::Replayed {
        client_id: code.client_id,
        user_id: code.user_id,
        families,
    })
}

/// Revoke the families a code started; their ids (every grant the code led to, revoked now or
/// before, so their access tokens can be denied too).
pub fn revoke_families_of_code(
    conn: &mut DbConn,
    code_id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    diesel::update(
        refresh_families::table
            .filter(refresh_families::code_id.eq(code_id))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    Ok(refresh_families::table
        .filter(refresh_families::code_id.eq(code_id))
        .select(refresh_families::id)
        .load(conn)?)
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_families)]
pub struct RefreshFamily {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub code_id: Option<String>,
    pub scopes: String,
    pub auth_time: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub last_used_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub revoked_reason: Option<String>,
    /// The resource every token of the grant is for, when the authorization named one.
    pub resource: Option<String>,
    /// The browser session the grant was approved in (OpenID Connect `sid`; a sign-out of that
    /// session ends the grant unless it holds `offline_access`).
    pub session_id: Option<String>,
    /// The workspace the grant acts in.
    pub workspace_id: Option<String>,
    /// DPoP: the key a public client's refresh tokens are bound to (RFC 7638 thumbprint).
    pub dpop_jkt: Option<String>,
}

/// How long a family lives: in all, and without being used.
#[derive(Debug, Clone, Copy)]
pub struct FamilyPolicy {
    pub absolute: Duration,
    pub idle: Duration,
    /// How long after a rotation the rotated token may be presented once more (0: never).
    pub reuse_grace: Duration,
}

impl FamilyPolicy {
    /// When `family` stops working unless used: its absolute end or its idle limit, whichever
    /// comes first. The token endpoint and introspection both ask this.
    pub fn ends_at(&self, family: &RefreshFamily) -> NaiveDateTime {
        family.expires_at.min(family.last_used_at + self.idle)
    }

    /// Whether a token rotated at `rotated_at` is inside the grace window at `now`, where its
    /// one retry (if unused) is admitted: the one rule for the window.
    pub fn in_grace(&self, rotated_at: NaiveDateTime, now: NaiveDateTime) -> bool {
        !self.reuse_grace.is_zero() && now - rotated_at <= self.reuse_grace
    }
}

impl Default for FamilyPolicy {
    fn default() -> Self {
        FamilyPolicy {
            absolute: Duration::days(30),
            idle: Duration::days(14),
            reuse_grace: Duration::zero(),
        }
    }
}

fn insert_token(
    conn: &mut DbConn,
    pepper: &Pepper,
    family_id: &str,
    scopes: &ScopeSet,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    let token = PlainSecret::generate(REFRESH_PREFIX);
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::id.eq(new_id(IdKind::RefreshToken)),
            refresh_tokens::token_digest.eq(pepper.digest_secret(&token)),
            refresh_tokens::family_id.eq(family_id),
            refresh_tokens::scopes.eq(scopes.to_storage()),
            refresh_tokens::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// Start a family for an authorization and return its first refresh token.
#[allow(clippy::too_many_arguments)]
pub fn start_family(
    conn: &mut DbConn,
    pepper: &Pepper,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    code_id: Option<&str>,
    resource: Option<&str>,
    scopes: &ScopeSet,
    auth_time: NaiveDateTime,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<PlainSecret, DbError> {
    // No transaction: a family whose first token failed to insert is never reachable (its
    // only way in is that token), and the flow saves a BEGIN and a COMMIT.
    crate::db::serialized_write(conn, |conn| {
        insert_family(
            conn, family_id, client_id, user_id, code_id, resource, None, None, scopes, auth_time,
            policy, now,
        )?;
        insert_token(conn, pepper, family_id, scopes, now)
    })
}

/// DPoP: bind a public client's family (its refresh tokens) to the key `jkt`.
pub fn bind_family(conn: &mut DbConn, family_id: &str, jkt: &str) -> Result<(), DbError> {
    diesel::update(refresh_families::table.find(family_id))
        .set(refresh_families::dpop_jkt.eq(jkt))
        .execute(conn)?;
    Ok(())
}

/// What a device authorization's family starts with.
pub struct DeviceFamily {
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    pub resource: Option<String>,
    pub session_id: Option<String>,
    pub workspace_id: Option<String>,
    pub scopes: ScopeSet,
    pub auth_time: NaiveDateTime,
    /// DPoP: a public client's refresh tokens are bound to this key.
    pub dpop_jkt: Option<String>,
}

/// Spend an approved device authorization (`spend`: `false` when it was spent already) and
/// start its family, in one transaction: its first refresh token, or `None`.
pub fn start_device_family(
    conn: &mut DbConn,
    pepper: &Pepper,
    spend: impl FnOnce(&mut DbConn) -> Result<bool, DbError>,
    start: &DeviceFamily,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    crate::db::write_transaction(conn, |conn| {
        if !spend(conn)? {
            return Ok(None);
        }
        insert_family(
            conn,
            &start.family_id,
            &start.client_id,
            &start.user_id,
            None,
            start.resource.as_deref(),
            start.session_id.as_deref(),
            start.workspace_id.as_deref(),
            &start.scopes,
            start.auth_time,
            policy,
            now,
        )?;
        if let Some(jkt) = &start.dpop_jkt {
            bind_family(conn, &start.family_id, jkt)?;
        }
        insert_token(conn, pepper, &start.family_id, &start.scopes, now).map(Some)
    })
}

#[allow(clippy::too_many_arguments)]
fn insert_family(
    conn: &mut DbConn,
    family_id: &str,
    client_id: &str,
    user_id: &str,
    code_id: Option<&str>,
    resource: Option<&str>,
    session_id: Option<&str>,
    workspace_id: Option<&str>,
    scopes: &ScopeSet,
    auth_time: NaiveDateTime,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(refresh_families::table)
        .values((
            refresh_families::id.eq(family_id),
            refresh_families::client_id.eq(client_id),
            refresh_families::user_id.eq(user_id),
            refresh_families::code_id.eq(code_id),
            refresh_families::resource.eq(resource),
            refresh_families::session_id.eq(session_id),
            refresh_families::workspace_id.eq(workspace_id),
            refresh_families::scopes.eq(scopes.to_storage()),
            refresh_families::auth_time.eq(auth_time),
            refresh_families::created_at.eq(now),
            refresh_families::last_used_at.eq(now),
            refresh_families::expires_at.eq(now + policy.absolute),
        ))
        .execute(conn)?;
    Ok(())
}

pub enum Refresh {
    Rotated {
        family: Box<RefreshFamily>,
        token: PlainSecret,
        scopes: ScopeSet,
        /// The user's membership of the family's workspace now (`None` without a workspace,
        /// or when they are no longer a member), read with the token.
        workspace: Option<WorkspaceClaim>,
    },
    /// An already-rotated token: the family is revoked now.
    Reused { family_id: String, user_id: String },
    /// Unknown, revoked, expired or another client's.
    Invalid,
    /// Asked for a scope the family was never granted.
    ScopeWidened,
    /// DPoP: the family is bound to a key and the request proved another (or none). Nothing
    /// was rotated.
    WrongKey,
}

/// A presented refresh token as the rotation reads it: one statement with its family and the
/// user's membership of the family's workspace.
struct Presented {
    token_id: String,
    rotated_at: Option<NaiveDateTime>,
    token_scopes: String,
    family: RefreshFamily,
    workspace: Option<WorkspaceClaim>,
}

fn read_presented(conn: &mut DbConn, digest: &str) -> Result<Option<Presented>, DbError> {
    use crate::db::schema::{workspace_members, workspaces};
    type Row = (
        String,
        Option<NaiveDateTime>,
        String,
        RefreshFamily,
        Option<String>,
        Option<String>,
    );
    let found: Option<Row> = refresh_tokens::table
        .inner_join(refresh_families::table)
        .left_join(
            workspaces::table.on(workspaces::id.nullable().eq(refresh_families::workspace_id)),
        )
        .left_join(
            workspace_members::table.on(workspace_members::workspace_id
                .nullable()
                .eq(refresh_families::workspace_id)
                .and(workspace_members::user_id.eq(refresh_families::user_id))),
        )
        .filter(refresh_tokens::token_digest.eq(digest))
        .select((
            refresh_tokens::id,
            refresh_tokens::rotated_at,
            refresh_tokens::scopes,
            RefreshFamily::as_select(),
            workspaces::slug.nullable(),
            workspace_members::role.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(
        found.map(|(token_id, rotated_at, token_scopes, family, slug, role)| {
            let workspace =
                WorkspaceClaim::from_joined(family.workspace_id.as_deref(), slug, role.as_deref());
            Presented {
                token_id,
                rotated_at,
                token_scopes,
                family,
                workspace,
            }
        }),
    )
}

/// Whether `found` may be rotated by this request, and the scopes of the next token. Nothing
/// is spent when it may not.
fn may_rotate(found: &Presented, asked: Asked, now: NaiveDateTime) -> Result<ScopeSet, Refresh> {
    let family = &found.family;
    if family.client_id != asked.client_id || family.revoked_at.is_some() {
        return Err(Refresh::Invalid);
    }
    if asked.policy.ends_at(family) <= now {
        return Err(Refresh::Invalid);
    }
    // Checked before the token is spent: a thief without the key burns nothing.
    if family.dpop_jkt.is_some() && family.dpop_jkt.as_deref() != asked.jkt {
        return Err(Refresh::WrongKey);
    }
    rotated_scopes(family, &found.token_scopes, asked.requested)
}

/// PostgreSQL, a token not rotated before: spend it, mark the family used (at minute
/// precision) and insert the next token in one statement — one round trip and one commit,
/// prepared once per connection. `None` when the token was spent or the family revoked
/// meanwhile: the caller then decides in a transaction (reuse, grace or refusal).
fn spend_unrotated_pg(
    conn: &mut DbConn,
    pepper: &Pepper,
    found: &Presented,
    scopes: &ScopeSet,
    now: NaiveDateTime,
) -> Result<Option<PlainSecret>, DbError> {
    use crate::db::prepared::{Bind, PgStatement};
    let DbConn::Pg(pg) = conn else {
        return Ok(None);
    };
    let token = PlainSecret::generate(REFRESH_PREFIX);
    let (id, digest, stored) = (
        new_id(IdKind::RefreshToken),
        pepper.digest_secret(&token),
        scopes.to_storage(),
    );
    let inserted = PgStatement::new(
        "WITH spent AS ( \
             UPDATE refresh_tokens SET rotated_at = $1 \
             WHERE id = $2 AND rotated_at IS NULL AND EXISTS ( \
                 SELECT 1 FROM refresh_families WHERE id = $3 AND revoked_at IS NULL) \
             RETURNING family_id), \
         touched AS ( \
             UPDATE refresh_families SET last_used_at = $1 \
             WHERE id IN (SELECT family_id FROM spent) AND last_used_at <= $4) \
         INSERT INTO refresh_tokens (id, token_digest, family_id, scopes, created_at, grace_used) \
         SELECT $5, $6, family_id, $7, $1, FALSE FROM spent",
        vec![
            Bind::Timestamp(now),
            Bind::Text(&found.token_id),
            Bind::Text(&found.family.id),
            Bind::Timestamp(now - Duration::minutes(1)),
            Bind::Text(&id),
            Bind::Text(&digest),
            Bind::Text(&stored),
        ],
    )
    .execute(pg)?;
    Ok((inserted == 1).then_some(token))
}

/// Rotate `presented`: exactly one of concurrent callers gets a new token; presenting a
/// rotated token revokes the whole family (reuse detection).
#[allow(clippy::too_many_arguments)]
pub fn rotate(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
    client_id: &str,
    requested: Option<&ScopeSet>,
    jkt: Option<&str>,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> Result<Refresh, DbError> {
    let Ok(token) = PlainSecret::parse(REFRESH_PREFIX, presented) else {
        return Ok(Refresh::Invalid);
    };
    let digest = pepper.digest_secret(&token);
    let asked = Asked {
        client_id,
        requested,
        jkt,
        policy,
    };
    if matches!(conn, DbConn::Pg(_))
        && let Some(answer) = rotate_unrotated_pg(conn, pepper, &digest, asked, now)?
    {
        return Ok(answer);
    }
    crate::db::write_transaction(conn, |conn| {
        rotate_in_transaction(conn, pepper, &digest, asked, now)
    })
}

/// What the presenter of a refresh token asks of the rotation.
#[derive(Clone, Copy)]
struct Asked<'a> {
    client_id: &'a str,
    requested: Option<&'a ScopeSet>,
    jkt: Option<&'a str>,
    policy: FamilyPolicy,
}

/// PostgreSQL's usual case in two statements (no transaction): the read, then the spend
/// that only a token still unrotated in a live family passes. `None`: not the usual case
/// (rotated before, or spent meanwhile), decided in a transaction.
fn rotate_unrotated_pg(
    conn: &mut DbConn,
    pepper: &Pepper,
    digest: &str,
    asked: Asked,
    now: NaiveDateTime,
) -> Result<Option<Refresh>, DbError> {
    let Some(found) = read_presented(conn, digest)? else {
        return Ok(Some(Refresh::Invalid));
    };
    let scopes = match may_rotate(&found, asked, now) {
        Ok(scopes) => scopes,
        Err(refusal) => return Ok(Some(refusal)),
    };
    if found.rotated_at.is_some() {
        return Ok(None);
    }
    Ok(
        spend_unrotated_pg(conn, pepper, &found, &scopes, now)?.map(|token| Refresh::Rotated {
            family: Box::new(found.family),
            token,
            scopes,
            workspace: found.workspace,
        }),
    )
}

/// Rotation inside a transaction: claim the presented token (once; or its one grace use),
/// or revoke the family when it was spent before.
fn rotate_in_transaction(
    conn: &mut DbConn,
    pepper: &Pepper,
    digest: &str,
    asked: Asked,
    now: NaiveDateTime,
) -> Result<Refresh, DbError> {
    let Some(found) = read_presented(conn, digest)? else {
        return Ok(Refresh::Invalid);
    };
    let scopes = match may_rotate(&found, asked, now) {
        Ok(scopes) => scopes,
        Err(refusal) => return Ok(refusal),
    };
    let Presented {
        token_id,
        rotated_at,
        family,
        workspace,
        ..
    } = found;
    if claim(conn, &token_id, rotated_at, asked.policy, now)? == 0 {
        diesel::update(refresh_families::table.find(&family.id))
            .set((
                refresh_families::revoked_at.eq(now),
                refresh_families::revoked_reason.eq("refresh_reuse"),
            ))
            .execute(conn)?;
        return Ok(Refresh::Reused {
            family_id: family.id,
            user_id: family.user_id,
        });
    }
    // Minute precision is plenty for a 14-day idle limit and "last used": a family in
    // steady use is not rewritten at every refresh.
    if now - family.last_used_at >= Duration::minutes(1) {
        diesel::update(refresh_families::table.find(&family.id))
            .set(refresh_families::last_used_at.eq(now))
            .execute(conn)?;
    }
    let token = insert_token(conn, pepper, &family.id, &scopes, now)?;
    Ok(Refresh::Rotated {
        family: Box::new(family),
        token,
        scopes,
        workspace,
    })
}

/// Spend the presented token: unrotated, once; rotated within the grace window, once more
/// (the tab that lost the race gets a token too). 0: it was spent before.
fn claim(
    conn: &mut DbConn,
    token_id: &str,
    rotated_at: Option<NaiveDateTime>,
    policy: FamilyPolicy,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    match rotated_at {
        None => diesel::update(
            refresh_tokens::table
                .find(token_id)
                .filter(refresh_tokens::rotated_at.is_null()),
        )
        .set(refresh_tokens::rotated_at.eq(now))
        .execute(conn),
        Some(at) if policy.in_grace(at, now) => diesel::update(
            refresh_tokens::table
                .find(token_id)
                .filter(refresh_tokens::grace_used.eq(false)),
        )
        .set(refresh_tokens::grace_used.eq(true))
        .execute(conn),
        Some(_) => Ok(0),
    }
}

/// The scopes of the next token: what was asked, if the family holds it all, else the
/// presented token's.
fn rotated_scopes(
    family: &RefreshFamily,
    token_scopes: &str,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, Refresh> {
    let family_scopes = ScopeSet::parse(&family.scopes).unwrap_or_default();
    match requested {
        Some(asked) if !asked.is_subset(&family_scopes) => Err(Refresh::ScopeWidened),
        Some(asked) => Ok(asked.clone()),
        None => Ok(ScopeSet::parse(token_scopes).unwrap_or_default()),
    }
}

/// A refresh token as introspection and revocation see it.
pub struct RefreshLookup {
    pub created_at: NaiveDateTime,
    pub rotated_at: Option<NaiveDateTime>,
    pub grace_used: bool,
    pub scopes: String,
    pub family: RefreshFamily,
}

impl RefreshLookup {
    /// When it stops working if nobody uses it: the family's end or its idle limit.
    pub fn expires_at(&self, policy: FamilyPolicy) -> NaiveDateTime {
        policy.ends_at(&self.family)
    }

    /// Would a refresh with it succeed now? A rotated token is spent, unless it is inside the
    /// grace window and its one retry is unused.
    pub fn is_active(&self, policy: FamilyPolicy, now: NaiveDateTime) -> bool {
        let usable = match self.rotated_at {
            None => true,
            Some(at) => policy.in_grace(at, now) && !self.grace_used,
        };
        usable && self.family.revoked_at.is_none() && self.expires_at(policy) > now
    }
}

pub fn find_refresh(
    conn: &mut DbConn,
    pepper: &Pepper,
    presented: &str,
) -> Result<Option<RefreshLookup>, DbError> {
    let Ok(token) = PlainSecret::parse(REFRESH_PREFIX, presented) else {
        return Ok(None);
    };
    let digest = pepper.digest_secret(&token);
    type Found = (
        NaiveDateTime,
        Option<NaiveDateTime>,
        bool,
        String,
        RefreshFamily,
    );
    let found: Option<Found> = refresh_tokens::table
        .inner_join(refresh_families::table)
        .filter(refresh_tokens::token_digest.eq(&digest))
        .select((
            refresh_tokens::created_at,
            refresh_tokens::rotated_at,
            refresh_tokens::grace_used,
            refresh_tokens::scopes,
            RefreshFamily::as_select(),
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(
        |(created_at, rotated_at, grace_used, scopes, family)| RefreshLookup {
            created_at,
            rotated_at,
            grace_used,
            scopes,
            family,
        },
    ))
}

/// Revoke these families (those already revoked keep their first reason); how many changed.
pub fn revoke_families(
    conn: &mut DbConn,
    family_ids: &[String],
    now: NaiveDateTime,
    reason: &str,
) -> Result<usize, DbError> {
    if family_ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        refresh_families::table
            .filter(refresh_families::id.eq_any(family_ids))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq(reason),
    ))
    .execute(conn)?)
}

/// The ids of the live families of a user and client.
pub fn live_families(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    live_families_in(conn, user_id, client_id, None, now)
}

/// As [`live_families`], made in `workspace` only (`None`: in any).
pub fn live_families_in(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    workspace: Option<&str>,
    now: NaiveDateTime,
) -> Result<Vec<String>, DbError> {
    let mut query = refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::client_id.eq(client_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::expires_at.gt(now))
        .select(refresh_families::id)
        .into_boxed();
    if let Some(workspace) = workspace {
        query = query.filter(refresh_families::workspace_id.eq(workspace));
    }
    Ok(query.load(conn)?)
}

/// Revoke the access tokens issued under these grants: each is denied until the last token it
/// can have issued expires (a failure is logged; the refresh side is already revoked).
pub async fn deny_grants(state: &crate::state::AppState, grants: &[String]) {
    if grants.is_empty() {
        return;
    }
    let until = state.now() + state.settings.access_token_ttl + chrono::Duration::minutes(1);
    let entries = grants.iter().map(|g| (g.clone(), until)).collect();
    if let Err(e) = deny(state, entries).await {
        log::error!("could not record revoked grants: {e}");
    }
}

/// Put `jti`s or grant ids on the denylist until the given times: this instance refuses them
/// at once, whatever the database says; the others when they next read the table.
pub async fn deny(
    state: &crate::state::AppState,
    entries: Vec<(String, chrono::NaiveDateTime)>,
) -> Result<(), crate::db::DbError> {
    state.denylist.remember(entries.clone());
    let now = state.now();
    state
        .db(move |c| crate::jwt::denylist::revoke(c, &entries, now))
        .await
}

/// The refresh families' policy of this server (its reuse grace).
pub fn family_policy(state: &crate::state::AppState) -> FamilyPolicy {
    FamilyPolicy {
        reuse_grace: state.settings.refresh_grace,
        ..FamilyPolicy::default()
    }
}

/// Authorization codes expired before `cutoff` (the janitor deletes them in batches).
pub fn auth_codes_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(auth_codes::table
        .filter(auth_codes::expires_at.lt(cutoff))
        .select(auth_codes::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these rows of `auth_codes`.
pub fn delete_auth_codes(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<usize, diesel::result::Error> {
    diesel::delete(auth_codes::table.filter(auth_codes::id.eq_any(ids))).execute(conn)
}

/// Refresh families past their absolute end before `cutoff`, or idle since `idle_cutoff`.
pub fn refresh_families_past(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    idle_cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, DbError> {
    Ok(refresh_families::table
        .filter(
            refresh_families::expires_at
                .lt(cutoff)
                .or(refresh_families::last_used_at.lt(idle_cutoff)),
        )
        .select(refresh_families::id)
        .limit(limit)
        .load(conn)?)
}

/// Delete these families with every token ever rotated in them (the tokens first, in one
/// transaction): (families, tokens) deleted.
pub fn delete_refresh_families(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<(usize, usize), DbError> {
    crate::db::write_transaction(conn, |conn| {
        let rotated =
            diesel::delete(refresh_tokens::table.filter(refresh_tokens::family_id.eq_any(ids)))
                .execute(conn)?;
        let families =
            diesel::delete(refresh_families::table.filter(refresh_families::id.eq_any(ids)))
                .execute(conn)?;
        Ok::<_, DbError>((families, rotated))
    })
}

/// End every live refresh family of an app (disabled, deleted, its host blocked): their ids,
/// for the denylist.
pub fn revoke_client_families(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    let live: Vec<String> = refresh_families::table
        .filter(refresh_families::client_id.eq(client_id))
        .filter(refresh_families::revoked_at.is_null())
        .filter(refresh_families::expires_at.gt(now))
        .select(refresh_families::id)
        .load(conn)?;
    revoke_families(conn, &live, now, reason)?;
    Ok(live)
}

/// An approval as the user's list shows it: the app's name and origin joined, and when a
/// grant made under it was last used.
pub struct ConsentRow {
    pub id: String,
    pub client_id: String,
    pub client_name: String,
    pub scopes: String,
    pub first_party: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub origin: String,
    pub last_used_at: Option<NaiveDateTime>,
}

/// A user's approvals, newest first; `workspace`: only those made in it.
pub fn consents_of(
    conn: &mut DbConn,
    user_id: &str,
    workspace: Option<&str>,
) -> Result<Vec<ConsentRow>, DbError> {
    use crate::db::schema::clients;
    type Row = (
        String,
        String,
        String,
        String,
        bool,
        NaiveDateTime,
        NaiveDateTime,
        String,
    );
    let rows: Vec<Row> = consents::table
        .inner_join(clients::table)
        .filter(consents::user_id.eq(user_id))
        .filter(
            consents::workspace_id
                .eq(workspace.unwrap_or_default())
                .or(workspace.is_none().into_sql::<diesel::sql_types::Bool>()),
        )
        .order((consents::created_at.desc(), consents::id.desc()))
        .select((
            consents::id,
            consents::client_id,
            clients::name,
            consents::scopes,
            consents::first_party,
            consents::created_at,
            consents::updated_at,
            clients::origin,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, client_id, client_name, scopes, first_party, created_at, updated_at, origin) in rows {
        let last_used_at: Option<NaiveDateTime> = refresh_families::table
            .filter(refresh_families::user_id.eq(user_id))
            .filter(refresh_families::client_id.eq(&client_id))
            .select(diesel::dsl::max(refresh_families::last_used_at))
            .first(conn)?;
        out.push(ConsentRow {
            id,
            client_id,
            client_name,
            scopes,
            first_party,
            created_at,
            updated_at,
            origin,
            last_used_at,
        });
    }
    Ok(out)
}

/// The app a user's approval is for (`bound`: only an approval made in that workspace).
pub fn consent_client(
    conn: &mut DbConn,
    consent_id: &str,
    user_id: &str,
    bound: Option<&str>,
) -> Result<Option<String>, DbError> {
    let mut query = consents::table
        .find(consent_id)
        .filter(consents::user_id.eq(user_id))
        .select(consents::client_id)
        .into_boxed();
    if let Some(bound) = bound {
        query = query.filter(consents::workspace_id.eq(bound));
    }
    Ok(query.first(conn).optional()?)
}

/// Forget an approval and the codes issued under it and not yet redeemed (a code issued a
/// moment ago must not outlive the approval); `bound`: the codes of that workspace only.
pub fn forget_consent(
    conn: &mut DbConn,
    _allowed: crate::policy::Allowed,
    consent_id: &str,
    user_id: &str,
    client_id: &str,
    bound: Option<&str>,
) -> Result<(), DbError> {
    let mut codes = diesel::delete(
        auth_codes::table
            .filter(auth_codes::user_id.eq(user_id))
            .filter(auth_codes::client_id.eq(client_id))
            .filter(auth_codes::consumed_at.is_null()),
    )
    .into_boxed();
    if let Some(bound) = bound {
        codes = codes.filter(auth_codes::workspace_id.eq(bound));
    }
    codes.execute(conn)?;
    diesel::delete(consents::table.find(consent_id)).execute(conn)?;
    Ok(())
}

/// How many users approved each of these apps.
pub fn consent_counts(
    conn: &mut DbConn,
    client_ids: &[&str],
) -> Result<Vec<(String, i64)>, DbError> {
    Ok(consents::table
        .filter(consents::client_id.eq_any(client_ids))
        .group_by(consents::client_id)
        .select((consents::client_id, diesel::dsl::count_star()))
        .load(conn)?)
}

/// End the live refresh families made in a workspace (`user_id`: only that member's): their
/// ids, for the denylist.
pub fn revoke_workspace_families(
    conn: &mut DbConn,
    workspace_id: &str,
    user_id: Option<&str>,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Vec<String>, DbError> {
    let mut live = refresh_families::table
        .filter(refresh_families::workspace_id.eq(workspace_id))
        .filter(refresh_families::revoked_at.is_null())
        .select(refresh_families::id)
        .into_boxed();
    if let Some(user_id) = user_id {
        live = live.filter(refresh_families::user_id.eq(user_id));
    }
    let ids: Vec<String> = live.load(conn)?;
    revoke_families(conn, &ids, now, reason)?;
    Ok(ids)
}

/// A refresh family made in a browser session: id, app, scopes, session, when revoked.
pub type GrantOfSession = (
    String,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
);

/// The grants a user made from browser sessions (`session`: from that one only).
pub fn made_in_sessions(
    conn: &mut DbConn,
    user_id: &str,
    session: Option<&str>,
) -> Result<Vec<GrantOfSession>, DbError> {
    let mut query = refresh_families::table
        .filter(refresh_families::user_id.eq(user_id))
        .filter(refresh_families::session_id.is_not_null())
        .into_boxed();
    if let Some(id) = session {
        query = query.filter(refresh_families::session_id.eq(id));
    }
    Ok(query
        .select((
            refresh_families::id,
            refresh_families::client_id,
            refresh_families::scopes,
            refresh_families::session_id,
            refresh_families::revoked_at,
        ))
        .load(conn)?)
}

/// End these sign-ins because their session ended (those already ended stay as they were).
pub fn end_at_logout(conn: &mut DbConn, ids: &[String], now: NaiveDateTime) -> Result<(), DbError> {
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        refresh_families::table
            .filter(refresh_families::id.eq_any(ids))
            .filter(refresh_families::revoked_at.is_null()),
    )
    .set((
        refresh_families::revoked_at.eq(now),
        refresh_families::revoked_reason.eq("logout"),
    ))
    .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
        assert!(!valid_verifier(&"a+".repeat(30)));
    }

    #[test]
    fn a_code_is_bound_to_its_client_redirect_uri_and_verifier() {
        let now = chrono::Utc::now().naive_utc();
        let code = AuthCode {
            workspace_id: None,
            id: "acd_x".into(),
            code_digest: String::new(),
            client_id: "cli_a".into(),
            user_id: "usr_x".into(),
            redirect_uri: "https://a.example.com/cb".into(),
            scopes: "read:users".into(),
            code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
            auth_time: now,
            created_at: now,
            expires_at: now,
            consumed_at: None,
            resource: None,
            nonce: None,
            session_id: None,
        };
        let right = CodeRequest {
            client_id: "cli_a",
            redirect_uri: Some("https://a.example.com/cb"),
            code_verifier: Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        };
        assert_eq!(right.mismatch(&code), None);
        for wrong in [
            CodeRequest {
                client_id: "cli_b",
                ..right
            },
            CodeRequest {
                redirect_uri: Some("https://a.example.com/cb2"),
                ..right
            },
            CodeRequest {
                redirect_uri: None,
                ..right
            },
            CodeRequest {
                code_verifier: Some("eBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
                ..right
            },
            CodeRequest {
                code_verifier: None,
                ..right
            },
        ] {
            assert!(wrong.mismatch(&code).is_some(), "{wrong:?}");
        }
    }
}
