//! Remembered approvals (`consents`): what a user granted an app, in which workspace, and
//! what forgetting one takes with it. The only place that queries `consents`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::*;
use crate::db::schema::consents;
use crate::db::{DbConn, DbError};
use crate::ids::{IdKind, new_id};
use crate::scopes::ScopeSet;

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
    // When each app last refreshed for the user: one query for all of them.
    let ids: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    let last_used = last_used_by_client(conn, user_id, &ids)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, client_id, client_name, scopes, first_party, created_at, updated_at, origin) in rows {
        let last_used_at = last_used.get(&client_id).copied();
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
    delete_unspent_codes(conn, user_id, client_id, bound)?;
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
