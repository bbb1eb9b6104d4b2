//! Log output: plain text (env_logger's) or one JSON object per line, and the per-request
//! access line. Access lines carry the request id, method, route template, status, latency
//! and the caller's ids — never a path's query, a header or a secret.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::LogFormat;

/// The target access lines are logged under (filter them with `RUST_LOG`).
pub const ACCESS_TARGET: &str = "gatehouse::access";

static ACCESS: AtomicBool = AtomicBool::new(false);
static JSON: AtomicBool = AtomicBool::new(false);

/// Set up the process's logger (`RUST_LOG` filters, default `info`).
pub fn init(format: LogFormat) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    if format == LogFormat::Json {
        JSON.store(true, Ordering::Relaxed);
        builder.format(write_json);
    }
    builder.init();
}

/// Turn the access lines on or off for this process.
pub fn set_access_log(on: bool, format: LogFormat) {
    ACCESS.store(on, Ordering::Relaxed);
    if format == LogFormat::Json {
        JSON.store(true, Ordering::Relaxed);
    }
}

pub fn access_enabled() -> bool {
    ACCESS.load(Ordering::Relaxed) && log::log_enabled!(target: ACCESS_TARGET, log::Level::Info)
}

/// The caller of a request, as the access line names it (ids only).
#[derive(Debug, Clone)]
pub struct LoggedCaller {
    pub user_id: String,
    /// The key id, or the client id of an access token; `None` for a session.
    pub credential_id: Option<String>,
}

/// One answered request.
#[derive(Debug, serde::Serialize)]
pub struct AccessLine<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub route: &'a str,
    pub status: u16,
    pub latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<&'a str>,
}

pub fn access(line: &AccessLine<'_>) {
    if JSON.load(Ordering::Relaxed) {
        // The fields go into the line's object as they are (see `write_json`).
        let fields = serde_json::to_string(line).unwrap_or_default();
        let inner = fields
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .unwrap_or("");
        log::info!(target: ACCESS_TARGET, "{inner}");
    } else {
        log::info!(
            target: ACCESS_TARGET,
            "{} {} {} {:.2}ms {} {}{}",
            line.method,
            line.route,
            line.status,
            line.latency_ms,
            line.request_id,
            line.principal.unwrap_or("-"),
            line.credential.map(|c| format!(" {c}")).unwrap_or_default()
        );
    }
}

fn write_json(
    buf: &mut env_logger::fmt::Formatter,
    record: &log::Record<'_>,
) -> std::io::Result<()> {
    let ts = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let head = format!(
        "{{\"ts\":\"{ts}\",\"level\":\"{}\",\"target\":{}",
        record.level(),
        serde_json::Value::from(record.target())
    );
    if record.target() == ACCESS_TARGET {
        // Already JSON fields, written by `access`.
        writeln!(buf, "{head},{}}}", record.args())
    } else {
        let msg = serde_json::Value::from(record.args().to_string());
        writeln!(buf, "{head},\"msg\":{msg}}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_fields_are_an_object_body() {
        let line = AccessLine {
            request_id: "req_1",
            method: "GET",
            route: "/v1/api-keys/{id}",
            status: 200,
            latency_ms: 0.25,
            principal: Some("usr_1"),
            credential: None,
        };
        let fields = serde_json::to_string(&line).unwrap();
        let whole: serde_json::Value = serde_json::from_str(&format!(
            "{{\"ts\":\"x\",{}}}",
            &fields[1..fields.len() - 1]
        ))
        .unwrap();
        assert_eq!(whole["route"], "/v1/api-keys/{id}");
        assert_eq!(whole["status"], 200);
        assert!(whole.get("credential").is_none());
    }
}
