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

#[derive(QueryableByName)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom_plans: i64,
}

#[test]
fn audit_pages_are_planned_once_per_connection_not_at_every_page() {
    use gatehouse::audit::{self, Action, EventFilter, NewEvent};
    use gatehouse::db::DbConn;
    let Some(db) = TestDatabase::migrated(Backend::Postgres) else {
        return;
    };
    let mut conn = DbConn::Pg(PgConnection::establish(&db.raw_url).expect("connect"));
    let now = chrono::Utc::now().naive_utc();
    for i in 0..30 {
        let mut event = NewEvent::new(Action::KeyCreated);
        event.workspace_id = Some(if i % 2 == 0 { "ws_even" } else { "ws_odd" }.into());
        audit::record(&mut conn, &event, now + chrono::Duration::seconds(i)).expect("record");
    }
    for round in 0..8 {
        // A whole page, a page of one workspace, and a short page (fewer rows than fetched).
        let all = audit::list(
            &mut conn,
            &EventFilter {
                limit: 21,
                ..EventFilter::default()
            },
        )
        .expect("list");
        assert_eq!(all.len(), 21, "round {round}");
        let even = EventFilter {
            workspace_id: Some("ws_even".into()),
            limit: 11,
            ..EventFilter::default()
        };
        let page = audit::list(&mut conn, &even).expect("list one workspace");
        assert_eq!(page.len(), 11);
        assert!(
            page.iter()
                .all(|e| e.workspace_id.as_deref() == Some("ws_even"))
        );
        assert!(
            page.windows(2).all(|w| w[0].occurred_at > w[1].occurred_at),
            "newest first"
        );
        let short = audit::list(
            &mut conn,
            &EventFilter {
                limit: 3,
                ..EventFilter::default()
            },
        )
        .expect("list");
        assert_eq!(
            short.len(),
            3,
            "no more than asked, though more are fetched"
        );
        assert_eq!(short[0].id, all[0].id);
    }
    let DbConn::Pg(pg) = &mut conn else {
        unreachable!()
    };
    let plans: Vec<Plans> = diesel::sql_query(
        "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
         WHERE statement LIKE '%FROM \"audit_events\"%'",
    )
    .load(pg)
    .expect("read pg_prepared_statements");
    // All events fetching 21 and 11 (the short page's size), one workspace fetching 11.
    assert_eq!(
        plans.len(),
        3,
        "one statement per filter shape and page size"
    );
    for p in &plans {
        assert!(
            p.generic_plans >= 3 && p.custom_plans <= 5,
            "planned at every page: {} generic, {} custom",
            p.generic_plans,
            p.custom_plans
        );
    }
}
