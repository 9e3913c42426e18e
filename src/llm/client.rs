//! An OpenAI-compatible chat-completions client: auth header, timeouts, retries with exponential
//! backoff and jitter that honour `Retry-After`, and the rate limits. The API key never appears in
//! an error message: every text that leaves this module is passed through [`ApiKey::redact`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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
}

impl ClientSettings {
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
}

/// Counters shared by a run, for the summary and the tests.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub attempts: AtomicU64,
    pub retries: AtomicU64,
}

pub struct Client {
    http: reqwest::Client,
    url: String,
    settings: ClientSettings,
    limiter: RateLimiter,
    pub stats: Arc<ClientStats>,
}

/// One attempt's outcome.
enum Attempt {
    Ok(ChatReply),
    /// Worth retrying; the delay the server asked for, if any.
    Retry(String, Option<Duration>),
    Refused(String),
    Auth(String),
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
        })
    }

    pub fn url(&self) -> &str {
        &self.url
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
        let on_retry = |attempt: u32, delay: Duration, problem: &str| {
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(attempt, ?delay, problem = %self.redact(problem), "retrying");
        };
        let outcome = retry(backoff, on_retry, |_| async {
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
                Attempt::Retry(problem, asked) => Step::Retry { problem, asked },
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

    async fn attempt(&self, body: &Value) -> Attempt {
        let response = match self.http.post(&self.url).json(body).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(format!("no reply within {:?}", self.settings.timeout), None)
            }
            Err(e) => return Attempt::Retry(format!("request failed: {}", error_chain(&e)), None),
        };
        let status = response.status();
        let asked = retry_after(response.headers());
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(snippet);
        let text = match response.text().await {
            Ok(t) => t,
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
