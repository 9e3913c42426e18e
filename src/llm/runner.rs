//! Runs a stream of chat requests: at most `concurrency` in flight, each result handed back to the
//! caller on this task (which owns the workspace connection and commits it), a progress bar with
//! ETA, token counts, a cost estimate and any wait before a retry (a bar that sits still says why),
//! and Ctrl-C that stops cleanly (what finished is kept).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::client::{ChatReply, Client, RequestError};

/// One request to send.
pub struct Job<M> {
    /// The resume key (hash of `body`).
    pub key: String,
    pub body: Value,
    pub estimated_tokens: u64,
    /// What it is about, for messages (figure id, answer ids).
    pub subject: String,
    /// The caller's data, handed back with the reply.
    pub meta: M,
}

/// Price per 1K tokens, for the estimate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prices {
    pub prompt_per_1k: f64,
    pub completion_per_1k: f64,
}

impl Prices {
    pub fn cost(&self, prompt: u64, completion: u64) -> f64 {
        prompt as f64 / 1000.0 * self.prompt_per_1k
            + completion as f64 / 1000.0 * self.completion_per_1k
    }
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Totals {
    /// Requests answered (parsed or not).
    pub answered: u64,
    /// Requests that failed for good in this run (they are sent again by the next run).
    pub failed: u64,
    /// Work found finished by an earlier run and not sent.
    pub skipped: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub retries: u64,
    pub attempts: u64,
    pub interrupted: bool,
    /// `subject: reason` of the failures (the first 20).
    pub failures: Vec<String>,
}

/// The progress bar and the running totals it shows.
pub struct Progress {
    pub bar: indicatif::ProgressBar,
    pub prices: Prices,
    pub totals: Totals,
    /// The bar's message, shared with the client's wait notices ([`Progress::wait_notice`]).
    message: Arc<Mutex<BarMessage>>,
}

/// The bar's message: the running totals, then the latest wait before a retry while it lasts.
#[derive(Debug, Default)]
struct BarMessage {
    totals: String,
    wait: Option<String>,
}

impl BarMessage {
    fn text(&self) -> String {
        match (&self.wait, self.totals.is_empty()) {
            (Some(wait), true) => wait.clone(),
            (Some(wait), false) => format!("{}, {wait}", self.totals),
            (None, _) => self.totals.clone(),
        }
    }
}

/// What a run of requests did, as the commands report it (flattened into their JSON).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct RunTotals {
    pub requests_answered: u64,
    pub skipped_done_before: u64,
    pub failed: u64,
    pub retries: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost_estimate: f64,
    pub interrupted: bool,
    pub failures: Vec<String>,
}

impl RunTotals {
    /// "tokens N in / M out, cost ≈ $X, K retries"
    pub fn tokens_line(&self) -> String {
        format!(
            "tokens {} in / {} out, cost ≈ ${:.4}, {} retries",
            self.prompt_tokens, self.completion_tokens, self.cost_estimate, self.retries
        )
    }
}

impl Progress {
    /// The totals so far, for a command's report.
    pub fn run_totals(&self) -> RunTotals {
        let t = &self.totals;
        RunTotals {
            requests_answered: t.answered,
            skipped_done_before: t.skipped,
            failed: t.failed,
            retries: t.retries,
            prompt_tokens: t.prompt_tokens,
            completion_tokens: t.completion_tokens,
            cost_estimate: self.cost(),
            interrupted: t.interrupted,
            failures: t.failures.clone(),
        }
    }

    /// A bar of `len` items on stderr; hidden when `hidden` (quiet, or stderr not a terminal).
    pub fn new(len: u64, what: &str, prices: Prices, hidden: bool) -> Self {
        let bar = if hidden {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new(len);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{prefix} [{bar:25}] {pos}/{len} eta {eta} {msg}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            bar
        };
        Self {
            bar,
            prices,
            totals: Totals::default(),
            message: Arc::default(),
        }
    }

    /// For [`Client::on_wait`]: shows each wait before a retry on the bar until it ends (with
    /// several requests in flight, the latest wait).
    pub fn wait_notice(&self) -> super::WaitNotice {
        let (bar, message) = (self.bar.clone(), self.message.clone());
        Arc::new(move |wait: Option<&str>| {
            let mut message = message.lock().unwrap_or_else(|p| p.into_inner());
            message.wait = wait.map(str::to_string);
            bar.set_message(message.text());
        })
    }

    #[cfg(test)]
    fn message(&self) -> String {
        self.message
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .text()
    }

    /// An item found finished before: counted and passed.
    pub fn skip(&mut self) {
        self.totals.skipped += 1;
        self.bar.inc(1);
    }

    /// An item that needs no request (e.g. no image): passed without counting it as skipped.
    pub fn pass(&mut self) {
        self.bar.inc(1);
    }

    fn answered(&mut self, reply: &ChatReply) {
        self.totals.answered += 1;
        self.totals.prompt_tokens += reply.prompt_tokens;
        self.totals.completion_tokens += reply.completion_tokens;
        self.bar.inc(1);
        self.show();
    }

    fn failed(&mut self, subject: &str, error: &RequestError) {
        self.totals.failed += 1;
        if self.totals.failures.len() < 20 {
            self.totals.failures.push(format!("{subject}: {error}"));
        }
        self.bar.inc(1);
        self.show();
    }

    fn show(&self) {
        let t = &self.totals;
        let mut message = self.message.lock().unwrap_or_else(|p| p.into_inner());
        message.totals = format!(
            "{} in / {} out tokens, ≈${:.4}{}",
            t.prompt_tokens,
            t.completion_tokens,
            self.prices.cost(t.prompt_tokens, t.completion_tokens),
            if t.failed > 0 {
                format!(", {} failed", t.failed)
            } else {
                String::new()
            }
        );
        self.bar.set_message(message.text());
    }

    pub fn cost(&self) -> f64 {
        self.prices
            .cost(self.totals.prompt_tokens, self.totals.completion_tokens)
    }
}

/// Sends the jobs `next` yields (None = no more), `concurrency` at a time; `done` gets each
/// answered job with its reply, on this task, in completion order. Stops at the first error from
/// `next`/`done` or an authentication failure; Ctrl-C stops it with `interrupted` set.
pub async fn run<M: Send + 'static>(
    client: Arc<Client>,
    concurrency: usize,
    progress: &mut Progress,
    mut next: impl FnMut(&mut Progress) -> anyhow::Result<Option<Job<M>>>,
    mut done: impl FnMut(Job<M>, ChatReply) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    type Finished<M> = (Job<M>, Result<ChatReply, RequestError>);
    client.on_wait(Some(progress.wait_notice()));
    let semaphore = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut in_flight: JoinSet<Finished<M>> = JoinSet::new();
    let mut exhausted = false;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let result: anyhow::Result<()> = loop {
        if exhausted && in_flight.is_empty() {
            break Ok(());
        }
        tokio::select! {
            biased;
            _ = &mut ctrl_c => {
                in_flight.abort_all();
                progress.totals.interrupted = true;
                break Ok(());
            }
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let (job, outcome) = match joined {
                    Ok(finished) => finished,
                    Err(e) if e.is_cancelled() => continue,
                    Err(e) => break Err(anyhow::anyhow!("a request task failed: {e}")),
                };
                match outcome {
                    Ok(reply) => {
                        progress.answered(&reply);
                        if let Err(e) = done(job, reply) {
                            break Err(e);
                        }
                    }
                    Err(RequestError::Auth(message)) => break Err(anyhow::anyhow!(message)),
                    Err(e) => progress.failed(&job.subject, &e),
                }
            }
            permit = semaphore.clone().acquire_owned(), if !exhausted => {
                let permit = permit.expect("the semaphore is never closed");
                match next(progress) {
                    Ok(Some(job)) => {
                        let client = client.clone();
                        in_flight.spawn(async move {
                            let _permit = permit;
                            let outcome = client.chat(&job.body, job.estimated_tokens).await;
                            (job, outcome)
                        });
                    }
                    Ok(None) => exhausted = true,
                    Err(e) => break Err(e),
                }
            }
        }
    };
    if result.is_err() {
        in_flight.abort_all();
    }
    // Requests that finished before the abort are paid for: keep their replies (the first error
    // stays the run's error); the cancelled ones are sent again by the next run.
    let mut result = result;
    while let Some(joined) = in_flight.join_next().await {
        let Ok((job, outcome)) = joined else { continue };
        match outcome {
            Ok(reply) => {
                progress.answered(&reply);
                if let Err(e) = done(job, reply) {
                    if result.is_ok() {
                        result = Err(e);
                    }
                }
            }
            Err(RequestError::Auth(_)) => {}
            Err(e) => progress.failed(&job.subject, &e),
        }
    }
    client.on_wait(None);
    progress.totals.retries = client.stats.retries.load(Ordering::Relaxed);
    progress.totals.attempts = client.stats.attempts.load(Ordering::Relaxed);
    progress.bar.finish_and_clear();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::client::{ApiKey, Auth, ClientSettings};
    use crate::llm::test_server::{chat_response, TestServer};
    use std::time::Duration;

    fn client(url: &str) -> Arc<Client> {
        client_retrying(url, 0)
    }

    fn client_retrying(url: &str, max_retries: u32) -> Arc<Client> {
        Arc::new(
            Client::new(ClientSettings {
                endpoint: format!("{url}/v1"),
                api_key: ApiKey::new("sk-test-0123456789abcdef".into()),
                auth: Auth::Bearer,
                timeout: Duration::from_secs(10),
                max_retries,
                retry_base: Duration::from_millis(10),
                retry_max: Duration::from_millis(10),
                requests_per_minute: 0,
                tokens_per_minute: 0,
                max_reply_mb: 8.0,
                max_retry_wait_s: 120.0,
            })
            .unwrap(),
        )
    }

    fn job(n: usize) -> Job<usize> {
        Job {
            key: format!("k{n}"),
            body: serde_json::json!({"n": n}),
            estimated_tokens: 1,
            subject: format!("job {n}"),
            meta: n,
        }
    }

    /// Replies that arrived before the run stopped on an error are still handed to `done`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_finished_before_a_stop_are_kept() {
        let server = TestServer::start(|_, _| {
            std::thread::sleep(Duration::from_millis(50));
            chat_response("8")
        });
        let mut progress = Progress::new(4, "test", Prices::default(), true);
        let mut sent = 0;
        let mut kept = Vec::new();
        let result = run(
            client(&server.url),
            4,
            &mut progress,
            |_| {
                sent += 1;
                if sent <= 3 {
                    return Ok(Some(job(sent)));
                }
                // The three requests finish while the caller is busy, then it fails.
                std::thread::sleep(Duration::from_millis(500));
                anyhow::bail!("the workspace went away")
            },
            |job, reply| {
                assert_eq!(reply.content, "8");
                kept.push(job.meta);
                Ok(())
            },
        )
        .await;
        assert!(result.unwrap_err().to_string().contains("went away"));
        kept.sort();
        assert_eq!(kept, vec![1, 2, 3]);
        assert_eq!(progress.totals.answered, 3);
        assert_eq!(server.heads().len(), 3);
    }

    #[test]
    fn a_wait_before_a_retry_shows_on_the_bar_beside_the_totals_until_it_ends() {
        let mut progress = Progress::new(2, "test", Prices::default(), true);
        let notice = progress.wait_notice();
        notice(Some(
            "waiting 30 s before retry 1 of 6 (HTTP 429: slow down)",
        ));
        assert_eq!(
            progress.message(),
            "waiting 30 s before retry 1 of 6 (HTTP 429: slow down)"
        );
        progress.totals.prompt_tokens = 100;
        progress.show();
        assert_eq!(
            progress.message(),
            "100 in / 0 out tokens, ≈$0.0000, waiting 30 s before retry 1 of 6 (HTTP 429: slow down)"
        );
        notice(None);
        assert_eq!(progress.message(), "100 in / 0 out tokens, ≈$0.0000");
    }

    /// The run hands the client the bar: a request waiting on `Retry-After` says so there.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_shows_a_requests_retry_wait_on_its_bar() {
        use crate::llm::test_server::response;
        let server = TestServer::start(|_, n| match n {
            0 => response(429, &[("retry-after-ms", "600")], "busy"),
            _ => chat_response("8"),
        });
        let mut progress = Progress::new(1, "test", Prices::default(), true);
        let message = progress.message.clone();
        let sampler = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                seen.push(message.lock().unwrap().text());
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            seen
        });
        let mut sent = false;
        run(
            client_retrying(&server.url, 1),
            1,
            &mut progress,
            |_| Ok((!std::mem::replace(&mut sent, true)).then(|| job(1))),
            |_, _| Ok(()),
        )
        .await
        .unwrap();
        let seen = sampler.await.unwrap();
        assert!(
            seen.iter()
                .any(|m| m.starts_with("waiting 0.6 s before retry 1 of 1 (HTTP 429")),
            "{seen:?}"
        );
        assert!(
            !progress.message().contains("waiting"),
            "cleared after the wait"
        );
        assert_eq!(progress.totals.answered, 1);
    }
}
