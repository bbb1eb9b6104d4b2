//! Giving freed memory back to the system.
//!
//! glibc's allocator keeps what a burst of requests freed in its per-thread arenas: after a
//! hundred thousand different API keys, the live heap is back under 30 MB but the resident
//! size stays 70–80 MB (BENCHMARKS.md, "Memory at scale"). `malloc_trim(0)` hands the free
//! pages of every arena back (it never moves or touches live memory). A server runs it from one
//! thread every [`TRIM_EVERY`]: a millisecond or so, which no request waits for (an allocation
//! in the arena being trimmed waits for that arena only). One-shot CLI commands do not start it.

use std::time::Duration;

/// How often free memory is returned.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Start the trimming thread, once per process (tests run many servers in one).
pub fn spawn_trimmer() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("gatehouse-memory".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    let started = std::time::Instant::now();
                    trim();
                    crate::metrics::background_run("memory_trim", true, started.elapsed());
                }
            });
        if let Err(e) = spawned {
            log::warn!("cannot start the memory trimming thread: {e}");
        }
    });
}

/// Return the allocator's free pages to the system (glibc); elsewhere nothing to do.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it takes the
    // allocator's own locks and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_keeps_live_memory_intact() {
        let kept: Vec<Vec<u8>> = (0..1000).map(|i| vec![(i % 251) as u8; 4096]).collect();
        drop((0..1000).map(|_| vec![0u8; 65536]).collect::<Vec<_>>());
        super::trim();
        assert!(
            kept.iter()
                .enumerate()
                .all(|(i, v)| v.iter().all(|&b| b == (i % 251) as u8))
        );
    }
}
