//! One retry loop for every HTTP call vital makes (LLM requests, figure downloads): exponential
//! backoff with jitter, never shorter than a server's `Retry-After`, a bounded number of retries.
//! Callers say per attempt whether it is done, failed for good, or worth another try.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::header::HeaderMap;

/// How long to wait between attempts, and how many retries to make after the first attempt.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub max_retries: u32,
}

/// One attempt's outcome.
pub enum Step<T, E> {
    Done(T),
    /// A failure no retry can fix.
    Fail(E),
    /// Worth retrying; the delay the server asked for, if any.
    Retry {
        problem: String,
        asked: Option<Duration>,
    },
}

/// Why [`retry`] stopped without a result.
#[derive(Debug)]
pub enum Stop<E> {
    Failed(E),
    GaveUp { attempts: u32, last: String },
}

/// Runs `attempt(n)` for n = 1, 2, … until it is done or fails for good, or retries run out;
/// calls `on_retry(n, delay, problem)` before each wait. Returns the result and the attempts taken.
pub async fn retry<T, E, Fut>(
    backoff: Backoff,
    mut on_retry: impl FnMut(u32, Duration, &str),
    mut attempt: impl FnMut(u32) -> Fut,
) -> Result<(T, u32), Stop<E>>
where
    Fut: Future<Output = Step<T, E>>,
{
    let mut n = 0u32;
    loop {
        n += 1;
        let (problem, asked) = match attempt(n).await {
            Step::Done(value) => return Ok((value, n)),
            Step::Fail(e) => return Err(Stop::Failed(e)),
            Step::Retry { problem, asked } => (problem, asked),
        };
        if n > backoff.max_retries {
            return Err(Stop::GaveUp {
                attempts: n,
                last: problem,
            });
        }
        let delay = retry_delay(backoff.base, backoff.max, n, asked);
        on_retry(n, delay, &problem);
        tokio::time::sleep(delay).await;
    }
}

/// `Retry-After` (seconds) or `retry-after-ms`, as sent by OpenAI and Azure.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    // Capped at an hour; negative, infinite and NaN values are ignored.
    let capped = |secs: f64| {
        (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER)))
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        if let Some(d) = capped(ms / 1000.0) {
            return Some(d);
        }
    }
    capped(get("retry-after")?.parse::<f64>().ok()?)
}

/// The longest wait a server's `Retry-After` or `retry-after-ms` can ask for, in seconds.
const MAX_RETRY_AFTER: f64 = 3600.0;

/// Exponential backoff with full jitter on top of the base, never shorter than what the server
/// asked for, capped at `retry_max` (a server's own `Retry-After` is honoured beyond the cap).
pub fn retry_delay(
    base: Duration,
    max: Duration,
    attempt: u32,
    asked: Option<Duration>,
) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let jittered = exp.min(max).mul_f64(0.5 + 0.5 * jitter());
    match asked {
        Some(asked) => asked.max(jittered.min(asked + base)),
        None => jittered,
    }
}

/// A number in [0, 1) that differs between calls and processes (no seed to share).
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn settings() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
            max_retries: 2,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_done_and_gives_up_after_the_allowed_retries() {
        let mut retried = Vec::new();
        let result: Result<(u32, u32), Stop<()>> = retry(
            settings(),
            |n, _, problem: &str| retried.push((n, problem.to_string())),
            |n| async move {
                if n < 3 {
                    Step::Retry {
                        problem: format!("busy {n}"),
                        asked: None,
                    }
                } else {
                    Step::Done(n * 10)
                }
            },
        )
        .await;
        assert_eq!(result.unwrap(), (30, 3));
        assert_eq!(
            retried,
            [(1, "busy 1".to_string()), (2, "busy 2".to_string())]
        );
        let result: Result<((), u32), Stop<()>> = retry(
            settings(),
            |_, _, _: &str| {},
            |_| async {
                Step::Retry {
                    problem: "down".into(),
                    asked: None,
                }
            },
        )
        .await;
        assert!(matches!(result, Err(Stop::GaveUp { attempts: 3, ref last }) if last == "down"));
        let result: Result<((), u32), Stop<&str>> = retry(
            settings(),
            |_, _, _: &str| {},
            |_| async { Step::Fail("refused") },
        )
        .await;
        assert!(matches!(result, Err(Stop::Failed("refused"))));
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let s = settings();
        for attempt in 1..=8 {
            let d = retry_delay(s.base, s.max, attempt, None);
            let full = (s.base * (1 << (attempt - 1))).min(s.max);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
        let asked = Duration::from_secs(5);
        let d = retry_delay(s.base, s.max, 1, Some(asked));
        assert!(d >= asked && d <= asked + s.base, "{d:?}");
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(250)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_is_capped_and_ignores_values_that_are_not_durations() {
        let hour = Some(Duration::from_secs(3600));
        for huge in ["1e300", "1e20", "inf"] {
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", HeaderValue::from_str(huge).unwrap());
            let expect = if huge == "inf" { None } else { hour };
            assert_eq!(retry_after(&h), expect, "retry-after-ms: {huge}");
            let mut h = HeaderMap::new();
            h.insert("retry-after", HeaderValue::from_str(huge).unwrap());
            assert_eq!(retry_after(&h), expect, "retry-after: {huge}");
        }
        for bad in ["NaN", "-5", "-inf"] {
            let mut h = HeaderMap::new();
            h.insert("retry-after-ms", HeaderValue::from_str(bad).unwrap());
            assert_eq!(retry_after(&h), None, "retry-after-ms: {bad}");
            // A bad `retry-after-ms` falls back to `Retry-After`.
            h.insert("retry-after", HeaderValue::from_static("3"));
            assert_eq!(retry_after(&h), Some(Duration::from_secs(3)), "{bad}");
        }
    }
}
