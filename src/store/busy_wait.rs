//! How a directory workspace's connection waits for the write lock another process holds.
//!
//! SQLite's own wait (`busy_timeout`) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100
//! ms between looks at the lock. A writer that finds it taken three or four times in a row, as
//! one does behind a few commits that each wait for the disk, sleeps on long after the lock was
//! let go: at 20 reviewers on one directory under I/O load that made serving the next sample
//! take a p99 of 90 ms (BENCHMARKS.md, "Team work"). This wait looks again after 0.1 ms,
//! doubling to at most 1 ms, so a writer takes the lock within a millisecond of its release.
//!
//! Rules: a wait is never shorter than asked: it is rounded up to the next of 25 ms, 0.1 s, 1 s,
//! 5 s, 10 s, 30 s and 60 s (the handler SQLite calls is a plain function, one per step); a wait
//! longer than a minute falls back to SQLite's own. The time is measured from the first look of each wait (the
//! handler runs on the thread running the statement, so a thread-local clock is that wait's).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The longest pause between two looks at the lock.
const MAX_PAUSE: Duration = Duration::from_millis(1);

thread_local! {
    /// When the current wait began (set at SQLite's first call of a wait).
    static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// SQLite's busy handler for a wait of `MS` milliseconds: `count` is how many times it was
/// called in this wait; true: look again.
fn wait_up_to<const MS: u64>(count: i32) -> bool {
    let now = Instant::now();
    let since = SINCE.with(|s| {
        if count == 0 || s.get().is_none() {
            s.set(Some(now));
        }
        s.get().unwrap_or(now)
    });
    let waited = now.duration_since(since);
    let limit = Duration::from_millis(MS);
    if waited >= limit {
        return false;
    }
    std::thread::sleep(pause(count).min(limit - waited));
    true
}

/// The pause before look `count + 1`: 0.1 ms, doubling, at most [`MAX_PAUSE`].
fn pause(count: i32) -> Duration {
    let shift = count.clamp(0, 4) as u32;
    Duration::from_micros(100u64 << shift).min(MAX_PAUSE)
}

/// Makes `conn` wait up to `wait` (rounded up to a step) for a lock another connection holds.
pub fn set(conn: &rusqlite::Connection, wait: Duration) -> rusqlite::Result<()> {
    let ms = wait.as_micros().div_ceil(1000);
    let handler: fn(i32) -> bool = match ms {
        0 => return conn.busy_handler(None),
        1..=25 => wait_up_to::<25>,
        26..=100 => wait_up_to::<100>,
        101..=1_000 => wait_up_to::<1_000>,
        1_001..=5_000 => wait_up_to::<5_000>,
        5_001..=10_000 => wait_up_to::<10_000>,
        10_001..=30_000 => wait_up_to::<30_000>,
        30_001..=60_000 => wait_up_to::<60_000>,
        _ => return conn.busy_timeout(wait),
    };
    conn.busy_handler(Some(handler))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_start_short_and_stay_under_a_millisecond() {
        assert_eq!(pause(0), Duration::from_micros(100));
        assert_eq!(pause(1), Duration::from_micros(200));
        assert_eq!(pause(3), Duration::from_micros(800));
        assert_eq!(pause(4), MAX_PAUSE);
        assert_eq!(pause(1_000), MAX_PAUSE);
    }

    /// Another connection holds the write lock: a writer waits at least as long as asked and
    /// gives up soon after; once the lock is let go it takes it within a few milliseconds.
    #[test]
    fn a_writer_waits_as_long_as_asked_and_takes_the_lock_soon_after_its_release() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db");
        let holder = rusqlite::Connection::open(&file).unwrap();
        holder
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x)")
            .unwrap();
        let writer = rusqlite::Connection::open(&file).unwrap();
        set(&writer, Duration::from_millis(100)).unwrap();
        holder.execute_batch("BEGIN IMMEDIATE").unwrap();
        let t = Instant::now();
        let refused = writer.execute_batch("BEGIN IMMEDIATE").unwrap_err();
        let waited = t.elapsed();
        assert!(refused.to_string().contains("locked"), "{refused}");
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_millis(600),
            "{waited:?}"
        );
        // Released 450 ms into the wait (SQLite's own wait looks at 428 ms, then 528 ms): taken
        // within a few milliseconds of that.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(450));
            holder.execute_batch("COMMIT").unwrap();
            Instant::now()
        });
        set(&writer, Duration::from_secs(5)).unwrap();
        writer.execute_batch("BEGIN IMMEDIATE").unwrap();
        let took = Instant::now();
        let released = release.join().unwrap();
        assert!(
            took.duration_since(released) < Duration::from_millis(20),
            "{:?} after the release",
            took.duration_since(released)
        );
        writer.execute_batch("COMMIT").unwrap();
    }
}
