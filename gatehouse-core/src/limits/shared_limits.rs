//! Rate limits shared by every instance through Redis (`GATEHOUSE_REDIS_URL`). Each subject's
//! GCRA state is one Redis key, `gatehouse:rl:{kind}:{id}`, that expires as soon as the
//! subject's allowance is full again; one Lua script reads and updates it in a single round
//! trip, on Redis' clock, so instances need not agree on the time.
//!
//! Redis is never allowed to fail a request: a call that errs or takes longer than
//! `CALL_TIMEOUT` is answered by the caller's local limiter, and the link is marked down so
//! that the next requests do not wait for Redis at all. A supervisor thread, with a Tokio
//! runtime of its own (actix workers each run their own runtime and the connection's driver
//! task must outlive any of them), reconnects in the background; once a fresh connection has
//! run the script, requests are counted in Redis again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak, mpsc};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, ErrorKind, RedisError, ServerErrorKind};

use super::decision::{RateDecision, replenish_interval};

/// The longest a request waits for Redis before it is counted locally.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(50);
/// A (re)connection, handshake included, takes at most this.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How often the supervisor tries again while Redis is out of reach.
const RECONNECT_EVERY: Duration = Duration::from_millis(250);
/// How long `start` waits for the first connection, so that a server starts counting in Redis
/// when Redis is there.
const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(2);

/// The GCRA of governor (which counts when Redis is out of reach), so that headers read the
/// same either way. ARGV: the emission interval `t` and the burst tolerance `tau = t × (n − 1)`,
/// in microseconds. Returns `{1, remaining}` or `{0, microseconds to wait}`.
const GCRA: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if now < tat - tau then
  return {0, tat - tau - now}
end
local next = math.max(tat, now) + t
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.ceil((next - now) / 1000))
return {1, math.floor((now + tau + t - next) / t)}
";

/// The key the supervisor runs the script on to prove a new connection works end to end.
const PROBE_KEY: &str = "gatehouse:rl:probe:supervisor";

/// The shared counters: a handle on the link that the supervisor keeps up.
pub struct SharedLimits {
    link: Arc<Link>,
}

/// The connection in use (with its generation, so that a late failure of a replaced
/// connection cannot mark its successor down) and why there is none.
struct Link {
    live: RwLock<Option<(u64, MultiplexedConnection)>>,
    up: AtomicBool,
    generation: AtomicU64,
    down_reason: Mutex<String>,
    script_sha: String,
}

impl SharedLimits {
    /// Connect to `url` in the background; waits a moment for the first connection. A Redis
    /// that is not there yet leaves the limits local until it is.
    pub fn start(url: &str) -> Result<SharedLimits, RedisError> {
        let client = redis::Client::open(url)?;
        let link = Arc::new(Link {
            live: RwLock::new(None),
            up: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            down_reason: Mutex::new("not connected yet".into()),
            script_sha: redis::Script::new(GCRA).get_hash().to_owned(),
        });
        let (first_attempt, attempted) = mpsc::channel();
        let weak = Arc::downgrade(&link);
        std::thread::Builder::new()
            .name("gatehouse-redis".into())
            .spawn(move || supervise(weak, client, first_attempt))
            .map_err(|e| RedisError::from(std::io::Error::other(e)))?;
        let _ = attempted.recv_timeout(FIRST_CONNECTION_WAIT);
        Ok(SharedLimits { link })
    }

    /// Whether requests are counted in Redis right now.
    pub fn is_up(&self) -> bool {
        self.link.up.load(Ordering::Acquire)
    }

    /// Why requests are counted locally right now, or `None` when they are counted in Redis.
    pub fn down_reason(&self) -> Option<String> {
        if self.is_up() {
            return None;
        }
        Some(
            self.link
                .down_reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// Count one request of `subject` in Redis; `None` when Redis cannot answer in time (the
    /// caller counts it locally).
    pub async fn check(&self, subject: &str, per_minute: u32) -> Option<RateDecision> {
        let (generation, mut connection) = self.link.connection()?;
        let key = format!("gatehouse:rl:{subject}");
        let (t, tau) = gcra_parameters(per_minute);
        let call = run_gcra(&mut connection, &self.link.script_sha, &key, t, tau);
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok((1, remaining))) => Some(RateDecision::allowed(
                per_minute,
                u32::try_from(remaining).unwrap_or(0),
            )),
            Ok(Ok((_, wait))) => Some(RateDecision::refused(
                per_minute,
                Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
            )),
            Ok(Err(e)) => {
                self.link.fail(generation, describe(&e));
                None
            }
            Err(_) => {
                self.link.fail(generation, no_answer());
                None
            }
        }
    }
}

/// Said of any call or connection that timed out (the reason is stable while Redis hangs).
fn no_answer() -> String {
    format!("no answer within {} ms", CALL_TIMEOUT.as_millis())
}

/// `t` and `tau` of a per-minute allowance in microseconds, as governor derives them.
fn gcra_parameters(per_minute: u32) -> (u64, u64) {
    let per_minute = per_minute.max(1);
    let t = u64::try_from(replenish_interval(per_minute).as_micros())
        .unwrap_or(u64::MAX)
        .max(1);
    (t, t.saturating_mul(u64::from(per_minute - 1)))
}

/// One round trip while Redis has the script (EVALSHA); when it does not (a restarted or
/// flushed Redis), EVAL sends it along and Redis keeps it for the next calls.
async fn run_gcra(
    connection: &mut MultiplexedConnection,
    sha: &str,
    key: &str,
    t: u64,
    tau: u64,
) -> Result<(i64, i64), RedisError> {
    let by_sha = redis::cmd("EVALSHA")
        .arg(sha)
        .arg(1)
        .arg(key)
        .arg(t)
        .arg(tau)
        .query_async(connection)
        .await;
    match by_sha {
        Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
            redis::cmd("EVAL")
                .arg(GCRA)
                .arg(1)
                .arg(key)
                .arg(t)
                .arg(tau)
                .query_async(connection)
                .await
        }
        other => other,
    }
}

/// A short reason for `/readyz` and the log (Redis errors name no URL nor password).
fn describe(e: &RedisError) -> String {
    if e.is_timeout() {
        return no_answer();
    }
    let mut reason = e.to_string();
    if reason.len() > 160 {
        let mut end = 160;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

impl Link {
    fn connection(&self) -> Option<(u64, MultiplexedConnection)> {
        if !self.up.load(Ordering::Acquire) {
            return None;
        }
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A call on connection `generation` failed: count locally until the supervisor has
    /// connected again.
    fn fail(&self, generation: u64, reason: String) {
        let mut live = self.live.write().unwrap_or_else(|p| p.into_inner());
        if !matches!(&*live, Some((g, _)) if *g == generation) {
            return;
        }
        *live = None;
        self.up.store(false, Ordering::Release);
        log::warn!(
            "rate limits: Redis unreachable ({reason}); counting in this instance until it answers again"
        );
        *self.down_reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    fn install(&self, connection: MultiplexedConnection) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Some((generation, connection));
        self.up.store(true, Ordering::Release);
        log::info!("rate limits: shared with the other instances through Redis");
    }

    fn still_down(&self, reason: String) {
        let mut current = self.down_reason.lock().unwrap_or_else(|p| p.into_inner());
        if *current != reason {
            log::warn!("rate limits: cannot reach Redis ({reason}); will retry");
            *current = reason;
        }
    }
}

/// The supervisor: (re)connects whenever the link is down, until the limits are dropped.
fn supervise(link: Weak<Link>, client: redis::Client, first_attempt: mpsc::Sender<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            log::error!("rate limits: cannot start the Redis supervisor ({e}); counting locally");
            return;
        }
    };
    runtime.block_on(async move {
        let mut first_attempt = Some(first_attempt);
        loop {
            // Not held across the sleep: dropping the limits ends this loop.
            let Some(strong) = link.upgrade() else {
                return;
            };
            if !strong.up.load(Ordering::Acquire) {
                match connect(&client).await {
                    Ok(connection) => strong.install(connection),
                    Err(reason) => strong.still_down(reason),
                }
            }
            drop(strong);
            if let Some(sender) = first_attempt.take() {
                let _ = sender.send(());
            }
            tokio::time::sleep(RECONNECT_EVERY).await;
        }
    });
}

/// A new connection that has run the script once (which also loads it into Redis).
async fn connect(client: &redis::Client) -> Result<MultiplexedConnection, String> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CALL_TIMEOUT));
    let attempt = async {
        let mut connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("EVAL")
            .arg(GCRA)
            .arg(1)
            .arg(PROBE_KEY)
            .arg(1)
            .arg(0)
            .query_async::<(i64, i64)>(&mut connection)
            .await?;
        Ok::<_, RedisError>(connection)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT + CALL_TIMEOUT, attempt).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(describe(&e)),
        Err(_) => Err(no_answer()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_match_governors_quota() {
        assert_eq!(gcra_parameters(3), (20_000_000, 40_000_000));
        assert_eq!(gcra_parameters(1), (60_000_000, 0));
        assert_eq!(gcra_parameters(0), (60_000_000, 0), "at least one a minute");
        let (t, tau) = gcra_parameters(u32::MAX);
        assert!(
            t >= 1 && tau >= t,
            "a huge allowance still counts: {t} {tau}"
        );
    }
}
