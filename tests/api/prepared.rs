//! The hot PostgreSQL writes written by hand (`gatehouse::db::prepared`) are prepared once per
//! connection and reused, not parsed and planned at every call as `sql_query` text is.

use diesel::prelude::*;
use gatehouse::db::prepared::{Bind, PgStatement};

use crate::helpers::{Backend, TestDatabase};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn prepared_like(conn: &mut PgConnection, start: &str) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM pg_prepared_statements WHERE statement LIKE $1 || '%'",
    )
    .bind::<diesel::sql_types::Text, _>(start)
    .get_result::<Count>(conn)
    .expect("read pg_prepared_statements")
    .n
}

#[test]
fn a_hand_written_statement_is_prepared_once_and_reused_with_other_values() {
    let Some(db) = TestDatabase::migrated(Backend::Postgres) else {
        return;
    };
    let mut conn = PgConnection::establish(&db.raw_url).expect("connect");
    diesel::sql_query("CREATE TABLE probe (id TEXT PRIMARY KEY, note TEXT, at TIMESTAMP)")
        .execute(&mut conn)
        .expect("create");
    let at = chrono::Utc::now().naive_utc();
    for (id, note) in [("a", Some("first")), ("b", None), ("c", Some("third"))] {
        let inserted = PgStatement::new(
            "WITH probed AS (SELECT $1::text AS id) \
             INSERT INTO probe (id, note, at) SELECT id, $2, $3 FROM probed",
            vec![
                Bind::Text(id),
                Bind::NullableText(note),
                Bind::Timestamp(at),
            ],
        )
        .execute(&mut conn)
        .expect("insert");
        assert_eq!(inserted, 1);
    }
    assert_eq!(
        prepared_like(&mut conn, "WITH probed AS"),
        1,
        "one prepared statement"
    );
    let rows: Vec<(String, Option<String>)> =
        diesel::sql_query("SELECT id, note FROM probe ORDER BY id")
            .load::<ProbeRow>(&mut conn)
            .expect("read back")
            .into_iter()
            .map(|r| (r.id, r.note))
            .collect();
    assert_eq!(
        rows,
        vec![
            ("a".into(), Some("first".into())),
            ("b".into(), None),
            ("c".into(), Some("third".into())),
        ]
    );
    // What the same text costs through `sql_query`: nothing kept, parsed every time.
    diesel::sql_query("WITH probed2 AS (SELECT 1) SELECT 1")
        .execute(&mut conn)
        .expect("plain");
    assert_eq!(prepared_like(&mut conn, "WITH probed2"), 0);
}

#[derive(QueryableByName)]
struct ProbeRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    note: Option<String>,
}
