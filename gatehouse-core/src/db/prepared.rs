//! Statements that stay prepared — and planned — once per connection.
//!
//! `diesel::sql_query` marks its text unsafe to cache, so a statement built with it is parsed
//! and planned on every call; the hot PostgreSQL writes that Diesel's builder cannot express
//! (data-modifying CTEs: one statement, one round trip, one commit) go through `PgStatement`
//! instead, which Diesel's per-connection cache keys by its SQL text and bind types and
//! prepares once. Page queries go through `FixedLimit` (both backends), so that PostgreSQL
//! does not plan them again at every page.

use chrono::NaiveDateTime;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Nullable, Text, Timestamp, Untyped};
use diesel::{QueryResult, RunQueryDsl};

/// One value of a `PgStatement`, with its SQL type.
#[derive(Debug, Clone, Copy)]
pub enum Bind<'a> {
    Text(&'a str),
    NullableText(Option<&'a str>),
    Timestamp(NaiveDateTime),
    Bool(bool),
}

/// A fixed SQL text whose `$1`, `$2`, … name the binds (by position, each as often as needed;
/// the text holds no other `$`).
#[derive(Debug, Clone)]
pub struct PgStatement<'a> {
    sql: &'static str,
    binds: Vec<Bind<'a>>,
}

impl<'a> PgStatement<'a> {
    pub fn new(sql: &'static str, binds: Vec<Bind<'a>>) -> Self {
        Self { sql, binds }
    }
}

impl QueryId for PgStatement<'_> {
    type QueryId = ();
    // Not one type per text: the cache keys it by the SQL text and the bind types.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for PgStatement<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for PgStatement<'_> {}

impl QueryFragment<Pg> for PgStatement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = self.sql;
        while let Some(at) = rest.find('$') {
            out.push_sql(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            let position: usize = rest[at + 1..at + 1 + digits].parse().map_err(|_| {
                diesel::result::Error::QueryBuilderError("`$` without a bind number".into())
            })?;
            let bind = self.binds.get(position.wrapping_sub(1)).ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(format!("no bind ${position}").into())
            })?;
            match bind {
                Bind::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Bind::NullableText(v) => out.push_bind_param::<Nullable<Text>, _>(v)?,
                Bind::Timestamp(v) => out.push_bind_param::<Timestamp, _>(v)?,
                Bind::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

/// A page query with its `LIMIT` written into the SQL text, from a few fixed sizes (the caller
/// keeps the rows it asked for). A bound `LIMIT $n` makes PostgreSQL plan the statement again
/// at every execution — its generic plan, costed for a tenth of the table, always loses to
/// the custom one — and that planning grows with the table: 20 µs per page on an empty
/// database, 50 µs with a million audit events, more than the page's own execution. With
/// the size in the text, each prepared statement is planned once per connection.
///
/// Only for queries whose one good plan does not depend on the values bound: the audit log's
/// filters each have an index ending in its order, so the generic plan reads the first rows
/// of that index whatever the value. The key listing is not one: for a user with thousands
/// of keys among a million, the generic plan (costed for the average user) was a third slower.
#[derive(Debug, Clone)]
pub struct FixedLimit<Q> {
    inner: Q,
    limit: i64,
}

/// The sizes a page query fetches (the first at least as large as asked; beyond the last, as
/// asked): few, so that each connection keeps few prepared statements.
const PAGE_SIZES: [i64; 5] = [11, 21, 51, 101, 201];

impl<Q> FixedLimit<Q> {
    /// `inner` (without a `LIMIT` of its own) fetching at least `wanted` rows.
    pub fn new(inner: Q, wanted: i64) -> Self {
        let limit = PAGE_SIZES
            .into_iter()
            .find(|&size| size >= wanted)
            .unwrap_or(wanted.max(0));
        FixedLimit { inner, limit }
    }
}

impl<Q> QueryId for FixedLimit<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for FixedLimit<Q> {
    type SqlType = Q::SqlType;
}

impl<Q, Conn> RunQueryDsl<Conn> for FixedLimit<Q> {}

impl<Q, DB> QueryFragment<DB> for FixedLimit<Q>
where
    DB: diesel::backend::Backend,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.inner.walk_ast(out.reborrow())?;
        out.push_sql(" LIMIT ");
        out.push_sql(&self.limit.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;

    #[test]
    fn binds_are_placed_where_the_text_names_them_and_repeated() {
        let at = chrono::DateTime::from_timestamp(0, 0).unwrap().naive_utc();
        let q = PgStatement::new(
            "UPDATE t SET a = $2, b = $1 WHERE c = $2 AND d IS NOT DISTINCT FROM $3",
            vec![
                Bind::Timestamp(at),
                Bind::Text("x"),
                Bind::NullableText(None),
            ],
        );
        let shown = debug_query::<Pg, _>(&q).to_string();
        assert!(
            shown.starts_with(
                "UPDATE t SET a = $1, b = $2 WHERE c = $3 AND d IS NOT DISTINCT FROM $4"
            ),
            "{shown}"
        );
        assert!(
            shown.contains("\"x\", 1970-01-01T00:00:00, \"x\", None"),
            "{shown}"
        );
    }

    #[test]
    fn a_missing_bind_is_an_error_not_a_panic() {
        let q = PgStatement::new("SELECT $2", vec![Bind::Bool(true)]);
        let mut qb = diesel::pg::PgQueryBuilder::default();
        assert!(QueryFragment::<Pg>::to_sql(&q, &mut qb, &Pg).is_err());
    }
}
