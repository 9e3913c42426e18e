//! The LLM endpoint's settings (`[llm]` in config.toml), owned here, read by `config`. The figure
//! downloads' limits sit in the same section; `config::fetch_settings` turns them into
//! `figure_fetch`'s own settings.

use serde::{Deserialize, Serialize};

use super::Auth;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmConfig {
    pub endpoint: String,
    pub model: String,
    pub api_key_env: String,
    #[serde(with = "crate::as_text")]
    pub auth: Auth,
    pub concurrency: usize,
    pub requests_per_minute: u32,
    pub tokens_per_minute: u32,
    pub max_retries: u32,
    pub timeout_secs: u64,
    pub retry_base_ms: u64,
    pub retry_max_secs: f64,
    /// The longest `Retry-After` waited out, in seconds; a server asking for longer stops the
    /// request.
    pub max_retry_wait_s: f64,
    /// The largest reply body read, in MB; a longer one fails the request.
    pub max_reply_mb: f64,
    pub temperature: f64,
    pub max_tokens: u32,
    pub judge_temperature: f64,
    pub judge_max_tokens: u32,
    pub image_tokens: u64,
    pub price_prompt_per_1k: f64,
    pub price_completion_per_1k: f64,
    /// The most requests in one batch input file (OpenAI: 50,000; Azure: 100,000).
    pub batch_max_requests: usize,
    /// The largest batch input file, in MB (OpenAI: 200).
    pub batch_max_mb: f64,
    /// The batch price as a share of the direct price, for the cost estimate (0.5: half).
    pub batch_price_factor: f64,
    pub fetch_concurrency: usize,
    pub fetch_timeout_secs: u64,
    pub fetch_max_image_mb: f64,
    pub fetch_max_package_mb: f64,
}
