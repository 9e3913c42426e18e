//! An OpenAI-compatible chat-completions client: auth header, timeouts, retries with exponential
//! backoff and jitter that honour `Retry-After`, and the rate limits. The API key never appears in
//! an error message: every text that leaves this module is passed through [`ApiKey::redact`].
//!
//! A server is not trusted with this process's memory or time: a reply body is read as a stream
//! and dropped past `llm.max_reply_mb` (the request fails, nothing of it is stored), and a
//! `Retry-After` longer than `llm.max_retry_wait_s` stops the request instead of waiting. Every
//! wait is logged and shown on the progress bar ([`Client::on_wait`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde_json::Value;

use super::limit::RateLimiter;
use crate::retry::{retry, retry_after, Backoff, Step, Stop};

/// An API key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl ApiKey {
    pub fn new(key: String) -> Option<Self> {
        let key = key.trim().to_string();
        (!key.is_empty()).then_some(Self(key))
    }

    /// The key itself, for an auth header (the batch API's client builds its own).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key (and of its longer fragments) replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, "[redacted]");
        // Servers echo masked keys ("sk-…abcd"); also strip any 12+ character piece of it.
        if self.0.len() >= 16 {
            let bytes = self.0.as_bytes();
            for start in 0..=bytes.len() - 12 {
                if let Some(piece) = self.0.get(start..start + 12) {
                    if out.contains(piece) {
                        out = out.replace(piece, "[redacted]");
                    }
                }
            }
        }
        out
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Bearer KEY` (OpenAI, vLLM, Ollama).
    Bearer,
    /// `api-key: KEY` (Azure OpenAI).
    Azure,
}

impl std::str::FromStr for Auth {
    type Err = anyhow::Error;
    fn from_str(name: &str) -> anyhow::Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "openai" | "bearer" | "" => Ok(Auth::Bearer),
            "azure" => Ok(Auth::Azure),
            other => anyhow::bail!("unknown auth `{other}`: expected openai or azure"),
        }
    }
}

impl std::fmt::Display for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer => "openai",
            Auth::Azure => "azure",
        })
    }
}

/// Everything the client needs, resolved from config and flags.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Base URL (`…/v1`) or the full chat-completions URL.
    pub endpoint: String,
    pub api_key: Option<ApiKey>,
    pub auth: Auth,
    pub timeout: Duration,
    pub max_retries: u32,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u64,
    /// `llm.max_reply_mb`: a longer reply body fails its request.
    pub max_reply_mb: f64,
    /// `llm.max_retry_wait_s`: a longer `Retry-After` stops its request.
    pub max_retry_wait_s: f64,
}

impl ClientSettings {
    /// The most bytes of a reply body read.
    pub fn max_reply_bytes(&self) -> u64 {
        ((self.max_reply_mb * 1024.0 * 1024.0) as u64).max(1)
    }

    /// The URL requests are POSTed to.
    pub fn url(&self) -> String {
        let e = self.endpoint.trim();
        if e.contains("/chat/completions") {
            e.to_string()
        } else {
            format!("{}/chat/completions", e.trim_end_matches('/'))
        }
    }
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    pub content: String,
    pub finish_reason: Option<String>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Attempts it took (1 = no retry).
    pub attempts: u32,
}

/// Why a request finally failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// Gave up after the allowed retries; the last problem.
    #[error("gave up after {attempts} attempts: {last}")]
    Exhausted { attempts: u32, last: String },
    /// The server refused the request in a way a retry cannot fix (400, 404, 413, …).
    #[error("{0}")]
    Refused(String),
    /// Authentication failed: every other request would fail too, so the run stops.
    #[error("{0}")]
    Auth(String),
    /// vital stopped the request: its reply was larger than `llm.max_reply_mb`, or the server
    /// asked to wait longer than `llm.max_retry_wait_s`. A failure like any other: nothing is
    /// stored, and the next run sends it again.
    #[error("{0}")]
    Stopped(String),
}

/// Counters shared by a run, for the summary and the tests.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub attempts: AtomicU64,
    pub retries: AtomicU64,
}

/// Told of each wait before a retry (`Some`: what is awaited and why) and of its end (`None`).
pub type WaitNotice = Arc<dyn Fn(Option<&str>) + Send + Sync>;

pub struct Client {
    http: reqwest::Client,
    url: String,
    settings: ClientSettings,
    limiter: RateLimiter,
    pub stats: Arc<ClientStats>,
    wait_notice: Mutex<Option<WaitNotice>>,
}

/// What a server asked to wait before the next attempt.
#[derive(Debug, Clone, Copy)]
struct Asked {
    /// As the server sent it (for the message and the `llm.max_retry_wait_s` check).
    seconds: f64,
    /// What is waited: [`retry_after`]'s reading (at most an hour).
    delay: Option<Duration>,
}

/// One attempt's outcome.
enum Attempt {
    Ok(ChatReply),
    /// Worth retrying; the delay the server asked for, if any.
    Retry(String, Option<Asked>),
    Refused(String),
    Auth(String),
    Stopped(String),
}

/// A reply body read up to a bound.
enum Body {
    Whole(Vec<u8>),
    /// Longer than the bound: reading stopped there, what was read is kept for a message.
    Cut(Vec<u8>),
}

impl Client {
    pub fn new(settings: ClientSettings) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &settings.api_key {
            let (name, value) = match settings.auth {
                Auth::Bearer => ("authorization", format!("Bearer {}", key.0)),
                Auth::Azure => ("api-key", key.0.clone()),
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| anyhow::anyhow!("the API key has characters a header cannot carry"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // Chat APIs do not redirect, and reqwest would carry the `api-key` header (it strips
            // only Authorization, Cookie and Proxy-Authorization) to whatever host a redirect names.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("vital/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            url: settings.url(),
            limiter: RateLimiter::new(settings.requests_per_minute, settings.tokens_per_minute),
            settings,
            stats: Arc::default(),
            wait_notice: Mutex::new(None),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Who is told of waits before retries (the runner's progress bar); `None` stops telling.
    pub fn on_wait(&self, notice: Option<WaitNotice>) {
        *self
            .wait_notice
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = notice;
    }

    fn notify_wait(&self, text: Option<&str>) {
        let notice = self
            .wait_notice
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        if let Some(notice) = notice {
            notice(text);
        }
    }

    /// Sends `body` (a chat-completions request), retrying what can be retried.
    /// `estimated_tokens` reserves room under the tokens-per-minute limit.
    pub async fn chat(
        &self,
        body: &Value,
        estimated_tokens: u64,
    ) -> Result<ChatReply, RequestError> {
        let backoff = Backoff {
            base: self.settings.retry_base,
            max: self.settings.retry_max,
            max_retries: self.settings.max_retries,
        };
        let max_retries = self.settings.max_retries;
        let on_retry = |attempt: u32, delay: Duration, problem: &str| {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let problem = self.redact(problem);
            let wait = format!(
                "waiting {} s before retry {attempt} of {max_retries} ({})",
                seconds_text(delay.as_secs_f64()),
                snippet(&problem)
            );
            tracing::info!(attempt, delay_s = delay.as_secs_f64(), problem = %problem, "{wait}");
            self.notify_wait(Some(&wait));
        };
        let outcome = retry(backoff, on_retry, |n| async move {
            if n > 1 {
                self.notify_wait(None);
            }
            let reservation = self.limiter.acquire(estimated_tokens).await;
            self.stats.attempts.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(body).await;
            let used = match &outcome {
                Attempt::Ok(r) => r.prompt_tokens + r.completion_tokens,
                _ => estimated_tokens,
            };
            self.limiter.settle(reservation, used).await;
            match outcome {
                Attempt::Ok(reply) => Step::Done(reply),
                Attempt::Refused(m) => Step::Fail(RequestError::Refused(self.redact(&m))),
                Attempt::Auth(m) => Step::Fail(RequestError::Auth(self.redact(&m))),
                Attempt::Stopped(m) => Step::Fail(self.stopped(&m)),
                Attempt::Retry(problem, Some(asked))
                    if asked.seconds > self.settings.max_retry_wait_s =>
                {
                    // Waiting silently for as long as any server asks (an hour, or forever) is
                    // no retry: stop this request, the next run sends it again.
                    Step::Fail(self.stopped(&format!(
                        "the server asked to wait {} s, more than llm.max_retry_wait_s = {}: stopped ({})",
                        seconds_text(asked.seconds),
                        self.settings.max_retry_wait_s,
                        snippet(&problem)
                    )))
                }
                Attempt::Retry(problem, asked) => Step::Retry {
                    problem,
                    asked: asked.and_then(|a| a.delay),
                },
            }
        })
        .await;
        match outcome {
            Ok((mut reply, attempts)) => {
                reply.attempts = attempts;
                // A server may echo the key in a successful reply too; the reply is stored and shown.
                reply.content = self.redact(&reply.content);
                reply.finish_reason = reply.finish_reason.map(|r| self.redact(&r));
                Ok(reply)
            }
            Err(Stop::Failed(e)) => Err(e),
            Err(Stop::GaveUp { attempts, last }) => Err(RequestError::Exhausted {
                attempts,
                last: self.redact(&last),
            }),
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.settings.api_key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }

    /// A [`RequestError::Stopped`], logged.
    fn stopped(&self, message: &str) -> RequestError {
        let message = self.redact(message);
        tracing::warn!("{message}");
        RequestError::Stopped(message)
    }

    /// The body, as a stream, stopping past `llm.max_reply_mb`: a reply of any size costs at
    /// most that much memory. A `Content-Length` above the bound is believed without reading.
    async fn body(&self, response: &mut reqwest::Response) -> Result<Body, reqwest::Error> {
        let limit = self.settings.max_reply_bytes();
        if response.content_length().is_some_and(|n| n > limit) {
            return Ok(Body::Cut(Vec::new()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if (body.len() + chunk.len()) as u64 > limit {
                return Ok(Body::Cut(body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Body::Whole(body))
    }

    async fn attempt(&self, body: &Value) -> Attempt {
        let response = match self.http.post(&self.url).json(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(format!("no reply within {:?}", self.settings.timeout), None)
            }
            Err(e) => return Attempt::Retry(format!("request failed: {}", error_chain(&e)), None),
        };
        let mut response = response;
        let status = response.status();
        let asked = asked_seconds(response.headers()).map(|seconds| Asked {
            seconds,
            delay: retry_after(response.headers()),
        });
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(snippet);
        let announced = response.content_length();
        let text = match self.body(&mut response).await {
            Ok(Body::Whole(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            // An error's body only gives a snippet for the message: its status still decides.
            Ok(Body::Cut(bytes)) if !status.is_success() => {
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Ok(Body::Cut(_)) => {
                return Attempt::Stopped(format!(
                    "reply larger than {} MB{}: refused (llm.max_reply_mb)",
                    self.settings.max_reply_mb,
                    announced.map_or(String::new(), |n| format!(
                        " (the server announced {n} bytes)"
                    ))
                ))
            }
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(
                    format!("reply not complete within {:?}", self.settings.timeout),
                    asked,
                )
            }
            Err(e) => return Attempt::Retry(format!("reply cut off: {}", error_chain(&e)), asked),
        };
        if !status.is_success() {
            let detail = format!("HTTP {status}: {}", snippet(&text));
            return match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Attempt::Auth(format!(
                    "the endpoint refused the credentials ({detail}); check the key variable (llm.api_key_env) and llm.auth"
                )),
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::CONFLICT => Attempt::Retry(detail, asked),
                s if s.is_server_error() => Attempt::Retry(detail, asked),
                s if s.is_redirection() => Attempt::Refused(format!(
                    "the endpoint redirected ({detail}{}); vital does not follow redirects, so set the endpoint to the final URL",
                    redirect_target(&location)
                )),
                _ => Attempt::Refused(detail),
            };
        }
        match parse_reply(&text) {
            Ok(reply) => Attempt::Ok(reply),
            Err(problem) => Attempt::Retry(problem, asked),
        }
    }
}

/// What the server asked to wait, in seconds, as it sent it (no cap): `retry-after-ms`, else
/// `Retry-After`, read as [`retry_after`] reads them (negative, infinite and NaN values ignored).
fn asked_seconds(headers: &HeaderMap) -> Option<f64> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    get("retry-after-ms")
        .map(|ms| ms / 1000.0)
        .or_else(|| get("retry-after"))
}

/// Seconds for a message: `999999`, `1.5`, `0.25`; `1e300` for absurd values.
fn seconds_text(seconds: f64) -> String {
    if seconds >= 1e9 {
        return format!("{seconds:e}");
    }
    let text = format!("{seconds:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Reads a chat-completions response body.
pub fn parse_reply(text: &str) -> Result<ChatReply, String> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| format!("malformed JSON in the reply ({e}): {}", snippet(text)))?;
    let choice = match value.get("choices") {
        Some(Value::Array(choices)) if !choices.is_empty() => &choices[0],
        Some(Value::Array(_)) => return Err("the reply has an empty `choices` list".into()),
        _ => return Err(format!("the reply has no `choices`: {}", snippet(text))),
    };
    let message = choice.get("message").unwrap_or(&Value::Null);
    let content = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        // Some servers send content as parts.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => return Err("the reply's first choice has no message content".into()),
    };
    let usage = value.get("usage").unwrap_or(&Value::Null);
    let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(ChatReply {
        content,
        finish_reason: choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string),
        prompt_tokens: count("prompt_tokens"),
        completion_tokens: count("completion_tokens"),
        attempts: 1,
    })
}

fn redirect_target(location: &Option<String>) -> String {
    match location {
        Some(l) => format!(" to {l}"),
        None => String::new(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The start of a body, for messages.
fn snippet(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings {
            endpoint: "http://127.0.0.1:1/v1/".into(),
            api_key: ApiKey::new("sk-test-0123456789abcdef".into()),
            auth: Auth::Bearer,
            timeout: Duration::from_secs(1),
            max_retries: 3,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(2),
            requests_per_minute: 0,
            tokens_per_minute: 0,
            max_reply_mb: 8.0,
            max_retry_wait_s: 120.0,
        }
    }

    #[test]
    fn url_appends_the_path_once() {
        assert_eq!(settings().url(), "http://127.0.0.1:1/v1/chat/completions");
        let mut s = settings();
        s.endpoint = "https://x/openai/deployments/d/chat/completions?api-version=1".into();
        assert_eq!(s.url(), s.endpoint);
    }

    #[test]
    fn redact_removes_the_key_and_masked_pieces() {
        let key = ApiKey::new("sk-test-0123456789abcdef".into()).unwrap();
        let text = key.redact("bad key sk-test-0123456789abcdef, or sk-…456789abcdef");
        assert!(!text.contains("0123456789abcdef"), "{text}");
        assert!(!text.contains("456789abcdef"), "{text}");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
    }

    #[tokio::test]
    async fn redirects_are_not_followed_so_the_azure_key_stays_with_the_endpoint() {
        use crate::llm::test_server::{chat_response, response, TestServer};
        const KEY: &str = "sk-test-0123456789abcdef";
        let elsewhere = TestServer::start(|_, _| chat_response("8"));
        let target = format!("{}/steal", elsewhere.url);
        let endpoint =
            TestServer::start(move |_, _| response(307, &[("location", target.as_str())], "moved"));
        let mut s = settings();
        s.endpoint = format!("{}/v1", endpoint.url);
        s.auth = Auth::Azure;
        let client = Client::new(s).unwrap();
        let err = client
            .chat(&serde_json::json!({"model": "m"}), 1)
            .await
            .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, RequestError::Refused(_)), "{message}");
        assert!(
            message.contains("redirect") && message.contains("307"),
            "{message}"
        );
        assert!(!message.contains(KEY), "{message}");
        let heads = endpoint.heads();
        assert_eq!(heads.len(), 1, "no retry of a redirect");
        assert!(heads[0].contains(KEY), "the endpoint itself gets the key");
        assert!(elsewhere.heads().is_empty(), "{:?}", elsewhere.heads());
    }

    fn client_for(url: &str, max_reply_mb: f64) -> Client {
        let mut s = settings();
        s.endpoint = format!("{url}/v1");
        s.max_reply_mb = max_reply_mb;
        s.retry_base = Duration::from_millis(10);
        Client::new(s).unwrap()
    }

    #[tokio::test]
    async fn a_reply_larger_than_llm_max_reply_mb_fails_its_request_without_being_read_whole() {
        use crate::llm::test_server::{chat_response, endless_reply, response, TestServer};
        let body = serde_json::json!({"model": "m"});
        // A Content-Length far above the bound: refused without reading.
        let announced = TestServer::start(|_, _| {
            "HTTP/1.1 200 OK\r\ncontent-length: 2147483648\r\n\r\n{\"choices\":".to_string()
        });
        let err = client_for(&announced.url, 1.0)
            .chat(&body, 1)
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Stopped(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "reply larger than 1 MB (the server announced 2147483648 bytes): refused (llm.max_reply_mb)"
        );
        assert_eq!(announced.heads().len(), 1, "not retried");

        // A chunked body that never ends: reading stops past the bound, the server is cut off.
        let (url, sent) = endless_reply();
        let started = std::time::Instant::now();
        let err = client_for(&url, 1.0).chat(&body, 1).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "reply larger than 1 MB: refused (llm.max_reply_mb)"
        );
        // (Waited for off the runtime, which must run to close the connection.)
        let sent = tokio::task::spawn_blocking(move || sent.recv_timeout(Duration::from_secs(10)))
            .await
            .unwrap()
            .unwrap();
        assert!(sent < 64 << 20, "the server got {sent} bytes out");
        assert!(started.elapsed() < Duration::from_secs(10));

        // A valid reply over the bound is refused too; under it, it is read.
        let content = "x".repeat(1 << 20);
        let big = TestServer::start(move |_, _| chat_response(&content));
        let err = client_for(&big.url, 1.0).chat(&body, 1).await.unwrap_err();
        assert!(
            err.to_string().starts_with("reply larger than 1 MB"),
            "{err}"
        );
        let reply = client_for(&big.url, 2.0).chat(&body, 1).await.unwrap();
        assert_eq!(reply.content.len(), 1 << 20);
        // An error status with a long body still counts as its status (a retry here).
        let error_page = "e".repeat(3 << 20);
        let failing = TestServer::start(move |_, _| response(503, &[], &error_page));
        let err = client_for(&failing.url, 1.0)
            .chat(&body, 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RequestError::Exhausted { attempts: 4, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("HTTP 503"), "{err}");
    }

    #[tokio::test]
    async fn a_retry_after_beyond_llm_max_retry_wait_s_stops_the_request_and_a_shorter_wait_is_announced(
    ) {
        use crate::llm::test_server::{chat_response, response, TestServer};
        let body = serde_json::json!({"model": "m"});
        let greedy =
            TestServer::start(|_, _| response(429, &[("retry-after", "999999")], "slow down"));
        let started = std::time::Instant::now();
        let err = client_for(&greedy.url, 8.0)
            .chat(&body, 1)
            .await
            .unwrap_err();
        assert!(matches!(err, RequestError::Stopped(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "the server asked to wait 999999 s, more than llm.max_retry_wait_s = 120: stopped (HTTP 429 Too Many Requests: slow down)"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(greedy.heads().len(), 1);

        let patient = TestServer::start(|_, n| match n {
            0 => response(429, &[("retry-after-ms", "1500")], "slow down"),
            _ => chat_response("8"),
        });
        let client = client_for(&patient.url, 8.0);
        let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
        let log = seen.clone();
        client.on_wait(Some(Arc::new(move |wait: Option<&str>| {
            log.lock().unwrap().push(wait.map(str::to_string));
        })));
        let started = std::time::Instant::now();
        let reply = client.chat(&body, 1).await.unwrap();
        assert_eq!((reply.content.as_str(), reply.attempts), ("8", 2));
        assert!(started.elapsed() >= Duration::from_millis(1500));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen[0].as_deref(),
            Some("waiting 1.5 s before retry 1 of 3 (HTTP 429 Too Many Requests: slow down)"),
            "{seen:?}"
        );
        assert_eq!(seen.last(), Some(&None), "the wait is cleared: {seen:?}");
    }

    #[test]
    fn parse_reply_reads_content_usage_and_rejects_broken_bodies() {
        let r = parse_reply(
            r#"{"choices":[{"message":{"role":"assistant","content":"8\nGood."},"finish_reason":"stop"}],
               "usage":{"prompt_tokens":12,"completion_tokens":3}}"#,
        )
        .unwrap();
        assert_eq!(r.content, "8\nGood.");
        assert_eq!((r.prompt_tokens, r.completion_tokens), (12, 3));
        assert!(parse_reply(r#"{"choices":[]}"#)
            .unwrap_err()
            .contains("empty"));
        assert!(parse_reply("{\"choices\": [")
            .unwrap_err()
            .contains("malformed"));
        assert!(parse_reply(r#"{"error":"x"}"#)
            .unwrap_err()
            .contains("no `choices`"));
    }
}
