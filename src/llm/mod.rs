//! Talking to vision LLMs through any OpenAI-compatible chat-completions endpoint (OpenAI, Azure
//! OpenAI, vLLM, Ollama): generating candidate Q&A about figures (GUIDE steps 1–3), judging answers
//! 0–10 (step 5). (Fetching figures from PMC packages is not LLM work: see `figure_fetch`.)
//!
//! - [`client`]: the HTTP client (auth, timeouts, retries with backoff honouring `Retry-After` up
//!   to `llm.max_retry_wait_s`, replies bounded by `llm.max_reply_mb`).
//! - [`limit`]: requests- and tokens-per-minute limits.
//! - [`runner`]: many requests at once, with progress, cost and Ctrl-C.
//! - [`ledger`]: the content hash that keys a finished request in the workspace's ledger (kept by
//!   `store`), so runs resume and reruns send nothing.
//! - [`figures`], [`demos`], [`prompt`], [`reply`]: generation input, demonstrations, the request,
//!   and reading the reply; [`judge`]: the judge's request.

pub mod batch;
pub mod client;
pub mod demos;
pub mod figures;
pub mod judge;
pub mod ledger;
pub mod limit;
pub mod prompt;
pub mod reply;
pub mod runner;
mod settings;
#[cfg(test)]
pub(crate) mod test_server;

use std::time::Duration;

pub use client::{ApiKey, Auth, ChatReply, Client, ClientSettings, RequestError, WaitNotice};
pub use runner::{Job, Prices, Progress, Totals};
pub use settings::LlmConfig;

/// Flags that override `[llm]` settings for one run; `None` keeps the configured value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub concurrency: Option<usize>,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u64>,
    pub max_retries: Option<u32>,
    pub timeout_secs: Option<f64>,
}

/// The API key from the environment variable the config names (default `OPENAI_API_KEY`).
pub fn api_key(config: &LlmConfig) -> Option<ApiKey> {
    let var = if config.api_key_env.trim().is_empty() {
        "OPENAI_API_KEY"
    } else {
        config.api_key_env.trim()
    };
    std::env::var(var).ok().and_then(ApiKey::new)
}

/// Client settings from the config, the flags and the environment.
pub fn client_settings(config: &LlmConfig, o: &Overrides) -> anyhow::Result<ClientSettings> {
    let timeout = o.timeout_secs.unwrap_or(config.timeout_secs as f64);
    anyhow::ensure!(
        timeout.is_finite() && timeout > 0.0,
        "the request timeout must be a positive number of seconds"
    );
    anyhow::ensure!(
        config.max_reply_mb.is_finite() && config.max_reply_mb > 0.0,
        "llm.max_reply_mb = {} must be a positive number of MB",
        config.max_reply_mb
    );
    anyhow::ensure!(
        config.max_retry_wait_s.is_finite() && config.max_retry_wait_s >= 0.0,
        "llm.max_retry_wait_s = {} must be a number of seconds, 0 or more",
        config.max_retry_wait_s
    );
    Ok(ClientSettings {
        endpoint: o
            .endpoint
            .clone()
            .unwrap_or_else(|| config.endpoint.clone()),
        api_key: api_key(config),
        auth: config.auth,
        timeout: Duration::from_secs_f64(timeout),
        max_retries: o.max_retries.unwrap_or(config.max_retries),
        retry_base: Duration::from_millis(config.retry_base_ms),
        retry_max: Duration::from_secs_f64(config.retry_max_secs.max(0.0)),
        requests_per_minute: o.requests_per_minute.unwrap_or(config.requests_per_minute),
        tokens_per_minute: o
            .tokens_per_minute
            .unwrap_or(config.tokens_per_minute as u64),
        max_reply_mb: config.max_reply_mb,
        max_retry_wait_s: config.max_retry_wait_s,
    })
}

/// Concurrency from the flag or the config (at least 1).
pub fn concurrency(config: &LlmConfig, o: &Overrides) -> usize {
    o.concurrency.unwrap_or(config.concurrency).max(1)
}

pub fn prices(config: &LlmConfig) -> Prices {
    Prices {
        prompt_per_1k: config.price_prompt_per_1k,
        completion_per_1k: config.price_completion_per_1k,
    }
}

/// A runtime for one command's requests.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
