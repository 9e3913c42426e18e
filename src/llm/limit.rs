//! Requests-per-minute and tokens-per-minute limits over a sliding one-minute window.
//!
//! Each attempt reserves one request and its estimated tokens before it is sent; once the reply
//! is in, the estimate is corrected with the token count the server reported.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

/// Shared by every request of a run. A limit of 0 means "no limit".
#[derive(Debug)]
pub struct RateLimiter {
    requests_per_minute: u32,
    tokens_per_minute: u64,
    window: Mutex<VecDeque<Entry>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    at: Instant,
    id: u64,
    tokens: u64,
}

/// A reservation in the window; pass it back to [`RateLimiter::settle`] with the real count.
#[derive(Debug, Clone, Copy)]
pub struct Reservation {
    id: u64,
}

impl RateLimiter {
    pub fn new(requests_per_minute: u32, tokens_per_minute: u64) -> Self {
        Self {
            requests_per_minute,
            tokens_per_minute,
            window: Mutex::new(VecDeque::new()),
        }
    }

    /// Waits until one more request of `tokens` fits in both limits, then reserves it.
    /// A request larger than the whole token limit is let through alone in an empty window.
    pub async fn acquire(&self, tokens: u64) -> Reservation {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        loop {
            let wait = {
                let mut window = self.window.lock().await;
                let now = Instant::now();
                while window.front().is_some_and(|e| now - e.at >= WINDOW) {
                    window.pop_front();
                }
                match self.wait_needed(&window, tokens, now) {
                    None => {
                        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        window.push_back(Entry {
                            at: now,
                            id,
                            tokens,
                        });
                        return Reservation { id };
                    }
                    Some(wait) => wait,
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Replaces a reservation's estimate with the tokens actually used.
    pub async fn settle(&self, reservation: Reservation, tokens: u64) {
        let mut window = self.window.lock().await;
        if let Some(e) = window.iter_mut().find(|e| e.id == reservation.id) {
            e.tokens = tokens;
        }
    }

    /// How long until a request of `tokens` fits, or `None` if it fits now.
    fn wait_needed(&self, window: &VecDeque<Entry>, tokens: u64, now: Instant) -> Option<Duration> {
        let until_oldest_expires = |skip: usize| {
            window
                .get(skip)
                .map(|e| WINDOW.saturating_sub(now - e.at) + Duration::from_millis(5))
        };
        if self.requests_per_minute > 0 && window.len() >= self.requests_per_minute as usize {
            return until_oldest_expires(window.len() - self.requests_per_minute as usize);
        }
        if self.tokens_per_minute > 0 && !window.is_empty() {
            let used: u64 = window.iter().map(|e| e.tokens).sum();
            if used + tokens > self.tokens_per_minute {
                // Wait for enough of the oldest entries to leave the window.
                let mut freed = 0;
                for (i, e) in window.iter().enumerate() {
                    freed += e.tokens;
                    if used - freed + tokens <= self.tokens_per_minute {
                        return until_oldest_expires(i);
                    }
                }
                return until_oldest_expires(window.len() - 1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_spreads_requests_over_the_window() {
        let limiter = RateLimiter::new(2, 0);
        let start = Instant::now();
        limiter.acquire(1).await;
        limiter.acquire(1).await;
        assert!(start.elapsed() < Duration::from_secs(1));
        limiter.acquire(1).await;
        assert!(start.elapsed() >= WINDOW, "third request waits a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_per_minute_counts_the_settled_usage() {
        let limiter = RateLimiter::new(0, 1000);
        let start = Instant::now();
        let r = limiter.acquire(900).await;
        limiter.settle(r, 100).await;
        limiter.acquire(800).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "settled to 100, 800 fits"
        );
        limiter.acquire(500).await;
        assert!(start.elapsed() >= WINDOW, "900 used, 500 more must wait");
    }

    #[tokio::test(start_paused = true)]
    async fn an_oversized_request_goes_alone() {
        let limiter = RateLimiter::new(0, 100);
        let start = Instant::now();
        limiter.acquire(5000).await;
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
