//! Prometheus metrics: what Gatehouse records, under which names and labels, and the text it
//! serves at `/metrics`. Recording goes through the `metrics` facade; until `install` is called
//! (metrics are off unless configured) no recorder exists and every function here is a no-op
//! that costs a branch. Label values are fixed words or route templates, never raw paths,
//! ids or secrets, so the number of series stays bounded.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Upper bounds of the latency buckets, in seconds: 100 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Install the process's recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
            .expect("latency buckets are not empty");
        match builder.install_recorder() {
            Ok(handle) => {
                describe();
                crate::db::report_background_runs_to(background_run);
                handle
            }
            // Another recorder was installed first (an embedding program's): render ours
            // empty rather than fail.
            Err(e) => {
                log::warn!("metrics: {e}; /metrics will be empty");
                PrometheusBuilder::new().build_recorder().handle()
            }
        }
    })
}

/// Whether metrics are being recorded in this process.
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "gatehouse_http_requests_total",
        "HTTP requests by route template, method and status"
    );
    describe_histogram!(
        "gatehouse_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer, by route template and method"
    );
    describe_counter!(
        "gatehouse_tokens_issued_total",
        "Access tokens issued, by grant and signing algorithm"
    );
    describe_counter!(
        "gatehouse_credential_checks_total",
        "API keys and access tokens checked, by kind and outcome"
    );
    describe_counter!(
        "gatehouse_cache_lookups_total",
        "In-memory cache lookups, by cache and result"
    );
    describe_counter!(
        "gatehouse_rate_limited_total",
        "Requests refused by a rate limit, by limit"
    );
    describe_counter!("gatehouse_logins_total", "Sign-in attempts, by outcome");
    describe_counter!(
        "gatehouse_client_documents_total",
        "Client ID Metadata Document lookups: fetched, refused (bad or unreachable), remembered (a recent failure answered from memory)"
    );
    describe_counter!(
        "gatehouse_registrations_total",
        "Dynamic client registrations, by outcome: registered, invalid, unauthorized"
    );
    describe_histogram!(
        "gatehouse_db_pool_wait_seconds",
        Unit::Seconds,
        "Time waiting for a pooled database connection"
    );
    describe_histogram!(
        "gatehouse_db_call_seconds",
        Unit::Seconds,
        "Time holding a database connection, per unit of work"
    );
    describe_gauge!(
        "gatehouse_db_pool_connections",
        "Open connections in the pool"
    );
    describe_gauge!(
        "gatehouse_db_pool_idle_connections",
        "Idle connections in the pool"
    );
    describe_gauge!("gatehouse_db_statements", "SQL statements sent since start");
    describe_counter!(
        "gatehouse_background_runs_total",
        "Background job runs, by job and outcome"
    );
    describe_histogram!(
        "gatehouse_background_duration_seconds",
        Unit::Seconds,
        "Background job run time, by job"
    );
    describe_counter!(
        "gatehouse_janitor_deleted_rows_total",
        "Rows the janitor deleted, by table"
    );
    describe_gauge!(
        "gatehouse_process_resident_memory_bytes",
        Unit::Bytes,
        "Resident memory of the process"
    );
}

/// The gauges read at scrape time (shared state knows them; this room only writes them).
pub struct Scrape {
    pub statements: u64,
    pub limits_degraded: bool,
    pub limits_fallbacks: u64,
    pub pool_connections: u32,
    pub pool_idle_connections: u32,
}

/// The text exposition, with the gauges that are read at scrape time brought up to date.
pub fn render(now: Scrape) -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    gauge!("gatehouse_rate_limits_degraded").set(if now.limits_degraded { 1.0 } else { 0.0 });
    gauge!("gatehouse_rate_limits_local_fallbacks").set(now.limits_fallbacks as f64);
    gauge!("gatehouse_db_pool_connections").set(f64::from(now.pool_connections));
    gauge!("gatehouse_db_pool_idle_connections").set(f64::from(now.pool_idle_connections));
    gauge!("gatehouse_db_statements").set(now.statements as f64);
    if let Some(rss) = resident_bytes() {
        gauge!("gatehouse_process_resident_memory_bytes").set(rss as f64);
    }
    handle.render()
}

/// Drain the histograms' buffers (housekeeping calls it every few seconds).
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// One answered request. `route` is the matched route template (`/v1/api-keys/{id}`), or
/// `unmatched`.
pub fn http_request(route: String, method: &'static str, status: u16, elapsed: Duration) {
    let status = status_label(status);
    // The handles of a series are looked up once per worker thread: the registry's lookup
    // (building a key, hashing its labels, a shared lock) is most of a metric's cost.
    HTTP_SERIES.with(|series| {
        let mut series = series.borrow_mut();
        let key = (route, method, status);
        if let Some((count, time)) = series.get(&key) {
            count.increment(1);
            time.record(elapsed.as_secs_f64());
            return;
        }
        let (route, method, status) = key.clone();
        let count = counter!("gatehouse_http_requests_total", "route" => route.clone(), "method" => method, "status" => status);
        let time = histogram!("gatehouse_http_request_duration_seconds", "route" => route, "method" => method);
        count.increment(1);
        time.record(elapsed.as_secs_f64());
        if series.len() < MAX_CACHED_SERIES {
            series.insert(key, (count, time));
        }
    });
}

/// Series handles kept per thread (route templates × methods × statuses stay far below).
const MAX_CACHED_SERIES: usize = 4096;

type HttpSeries = std::collections::HashMap<
    (String, &'static str, &'static str),
    (metrics::Counter, metrics::Histogram),
>;

thread_local! {
    static HTTP_SERIES: std::cell::RefCell<HttpSeries> = std::cell::RefCell::default();
    /// Counters whose labels are fixed words, by (name, first label, second label).
    static FIXED_COUNTERS: std::cell::RefCell<
        std::collections::HashMap<(&'static str, &'static str, &'static str), metrics::Counter>,
    > = std::cell::RefCell::default();
}

/// Increment a counter whose two label values are fixed words, through the per-thread handle.
fn fixed_counter(
    name: &'static str,
    labels: [(&'static str, &'static str); 2],
    make: impl FnOnce() -> metrics::Counter,
) {
    // Off (the default): nothing would be recorded, so nothing is looked up either.
    if !enabled() {
        return;
    }
    FIXED_COUNTERS.with(|counters| {
        let mut counters = counters.borrow_mut();
        let key = (name, labels[0].1, labels[1].1);
        if let Some(counter) = counters.get(&key) {
            counter.increment(1);
            return;
        }
        let counter = make();
        counter.increment(1);
        if counters.len() < MAX_CACHED_SERIES {
            counters.insert(key, counter);
        }
    });
}

fn status_label(status: u16) -> &'static str {
    static LABELS: OnceLock<Vec<String>> = OnceLock::new();
    let labels = LABELS.get_or_init(|| (0..600).map(|s| s.to_string()).collect());
    labels
        .get(usize::from(status))
        .map_or("other", String::as_str)
}

/// The kind of credential checked.
#[derive(Debug, Clone, Copy)]
pub enum Checked {
    ApiKey,
    AccessToken,
}

/// An API key or access token was checked, with its outcome (`valid`, `expired`, `revoked`,
/// `bad_checksum`, `unknown`, `ip_not_allowed`, `scope`, `audience`, `malformed`, …).
pub fn credential_checked(kind: Checked, outcome: &'static str) {
    let kind = match kind {
        Checked::ApiKey => "api_key",
        Checked::AccessToken => "access_token",
    };
    fixed_counter(
        "gatehouse_credential_checks_total",
        [("kind", kind), ("outcome", outcome)],
        || counter!("gatehouse_credential_checks_total", "kind" => kind, "outcome" => outcome),
    );
}

/// An access token was signed.
pub fn token_issued(grant: &'static str, alg: &'static str) {
    counter!("gatehouse_tokens_issued_total", "grant" => grant, "alg" => alg).increment(1);
}

/// A lookup in one of the in-memory caches.
pub fn cache_lookup(cache: &'static str, hit: bool) {
    let result = if hit { "hit" } else { "miss" };
    fixed_counter(
        "gatehouse_cache_lookups_total",
        [("cache", cache), ("result", result)],
        || counter!("gatehouse_cache_lookups_total", "cache" => cache, "result" => result),
    );
}

/// A request refused by a rate limit (`credential`, `address`, `client`, `forms`, `login`).
pub fn rate_limited(limit: &'static str) {
    counter!("gatehouse_rate_limited_total", "limit" => limit).increment(1);
}

/// A sign-in attempt: `success`, `failure`, `throttled`.
pub fn login(outcome: &'static str) {
    counter!("gatehouse_logins_total", "outcome" => outcome).increment(1);
}

/// A metadata document fetched (`fetched`), refused (`refused`) or a recent failure answered
/// from memory (`remembered`).
pub fn client_document(outcome: &'static str) {
    counter!("gatehouse_client_documents_total", "outcome" => outcome).increment(1);
}

/// A `POST /oauth/register`: `registered`, `invalid` (its metadata), `unauthorized` (no or a
/// spent initial access token).
pub fn registration(outcome: &'static str) {
    counter!("gatehouse_registrations_total", "outcome" => outcome).increment(1);
}

/// One unit of database work: the wait for a connection and the time holding it.
pub fn db_call(wait: Duration, work: Duration) {
    histogram!("gatehouse_db_pool_wait_seconds").record(wait.as_secs_f64());
    histogram!("gatehouse_db_call_seconds").record(work.as_secs_f64());
}

/// One run of a background job.
pub fn background_run(job: &'static str, ok: bool, elapsed: Duration) {
    let outcome = if ok { "ok" } else { "error" };
    counter!("gatehouse_background_runs_total", "job" => job, "outcome" => outcome).increment(1);
    histogram!("gatehouse_background_duration_seconds", "job" => job).record(elapsed.as_secs_f64());
}

/// Rows the janitor deleted from one table.
pub fn janitor_deleted(table: &'static str, rows: usize) {
    if rows > 0 {
        counter!("gatehouse_janitor_deleted_rows_total", "table" => table).increment(rows as u64);
    }
}
