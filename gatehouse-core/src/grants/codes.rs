//! Authorization codes (`auth_codes`): issued at the authorization endpoint, redeemed once at
//! the token endpoint (PKCE, redirect URI, resource), the redemption that starts the refresh
//! family, and replay detection. The only place that queries `auth_codes`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::*;
use crate::db::schema::auth_codes;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;
use crate::secrets::{Pepper, PlainSecret, constant_time_eq};
use crate::workspaces::roles::WorkspaceClaim;

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
pub(super) struct RedeemedRow {
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
pub(super) const REDEEM_CODE_PG: &str = "WITH claimed AS ( \
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

/// Delete the codes of `user_id` for `client_id` not yet redeemed (`bound`: of that workspace
/// only): an approval being forgotten takes them with it.
pub fn delete_unspent_codes(
    conn: &mut DbConn,
    user_id: &str,
    client_id: &str,
    bound: Option<&str>,
) -> Result<usize, DbError> {
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
    Ok(codes.execute(conn)?)
}
