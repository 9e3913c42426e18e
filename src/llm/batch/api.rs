//! The batch API of OpenAI and Azure OpenAI (same shapes; Azure under its own base URL with the
//! `api-key` header): upload an input file (`POST /files`, multipart, `purpose=batch`), create a
//! batch (`POST /batches`), look one up (`GET /batches/{id}`, or by vital's tag in its metadata
//! through `GET /batches`), cancel it, and stream a result file (`GET /files/{id}/content`).
//!
//! Every call retries what a retry can fix (429, 5xx, a dropped connection) with the client's
//! backoff, waits out a `Retry-After` only up to `llm.max_retry_wait_s`, and redacts the key in
//! every message. JSON replies are read up to `llm.max_reply_mb`; result files are streamed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::llm::client::{ApiKey, Auth, ClientSettings};
use crate::retry::{retry, retry_after, Backoff, Step, Stop};

/// The metadata key carrying vital's tag of a batch (found again after a kill).
pub const TAG_KEY: &str = "vital_batch";

/// A batch as the API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct BatchInfo {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub input_file_id: Option<String>,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default)]
    pub request_counts: Option<Counts>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, Value>>,
    #[serde(default)]
    pub errors: Option<Value>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Counts {
    #[serde(default)]
    pub total: i64,
    #[serde(default)]
    pub completed: i64,
    #[serde(default)]
    pub failed: i64,
}

impl BatchInfo {
    /// The batch ended: nothing more will be answered.
    pub fn is_done(&self) -> bool {
        is_final(&self.status)
    }

    pub fn counts(&self) -> Counts {
        self.request_counts.unwrap_or_default()
    }

    fn tag(&self) -> Option<&str> {
        self.metadata.as_ref()?.get(TAG_KEY)?.as_str()
    }

    /// The batch's own errors (a batch that failed validation), as one line.
    pub fn errors_text(&self) -> Option<String> {
        let data = self.errors.as_ref()?.get("data")?.as_array()?;
        let texts: Vec<String> = data
            .iter()
            .map(|e| {
                let field = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
                let line = e
                    .get("line")
                    .and_then(Value::as_u64)
                    .map(|l| format!(" (line {l})"))
                    .unwrap_or_default();
                format!("{}: {}{line}", field("code"), field("message"))
            })
            .collect();
        (!texts.is_empty()).then(|| texts.join("; "))
    }
}

/// Whether a batch status is final (completed, failed, expired, cancelled).
pub fn is_final(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "expired" | "cancelled")
}

/// A batch API client.
pub struct BatchApi {
    http: reqwest::Client,
    base: String,
    query: String,
    auth: Auth,
    key: Option<ApiKey>,
    backoff: Backoff,
    max_retry_wait_s: f64,
    max_json_bytes: u64,
}

/// The API base of a chat endpoint: `…/v1` from `…/v1` or `…/v1/chat/completions`; Azure's
/// `…/openai` from `…/openai/deployments/NAME/chat/completions?api-version=…` (the query is
/// kept for every call).
pub fn api_base(endpoint: &str) -> (String, String) {
    let endpoint = endpoint.trim();
    let (path, query) = match endpoint.split_once('?') {
        Some((p, q)) => (p, format!("?{q}")),
        None => (endpoint, String::new()),
    };
    let path = path.trim_end_matches('/');
    let path = match path.find("/deployments/") {
        Some(i) => &path[..i],
        None => path.strip_suffix("/chat/completions").unwrap_or(path),
    };
    (path.trim_end_matches('/').to_string(), query)
}

impl BatchApi {
    pub fn new(settings: &ClientSettings) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &settings.api_key {
            let (name, value) = match settings.auth {
                Auth::Bearer => ("authorization", format!("Bearer {}", key.expose())),
                Auth::Azure => ("api-key", key.expose().to_string()),
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| anyhow::anyhow!("the API key has characters a header cannot carry"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // As for chat requests: a redirect would carry Azure's `api-key` to another host.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("vital/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let (base, query) = api_base(&settings.endpoint);
        Ok(Self {
            http,
            base,
            query,
            auth: settings.auth,
            key: settings.api_key.clone(),
            backoff: Backoff {
                base: settings.retry_base,
                max: settings.retry_max,
                max_retries: settings.max_retries,
            },
            max_retry_wait_s: settings.max_retry_wait_s,
            max_json_bytes: settings.max_reply_bytes(),
        })
    }

    /// The base URL calls go to (for messages).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str, extra: &str) -> String {
        let sep = if self.query.is_empty() { "?" } else { "&" };
        match (self.query.is_empty(), extra.is_empty()) {
            (_, true) => format!("{}{path}{}", self.base, self.query),
            (_, false) => format!("{}{path}{}{sep}{extra}", self.base, self.query),
        }
    }

    fn redact(&self, text: &str) -> String {
        match &self.key {
            Some(key) => key.redact(text),
            None => text.to_string(),
        }
    }

    /// Sends the request `make` builds, retrying what can be retried; the successful response.
    async fn send(
        &self,
        what: &str,
        make: impl Fn() -> anyhow::Result<reqwest::RequestBuilder>,
    ) -> anyhow::Result<reqwest::Response> {
        let on_retry = |attempt: u32, delay: Duration, problem: &str| {
            tracing::info!(
                attempt,
                delay_s = delay.as_secs_f64(),
                problem = %self.redact(problem),
                "batch API: {what}: retrying"
            );
        };
        let make = &make;
        let outcome = retry(self.backoff, on_retry, |_| async move {
            let request = match make() {
                Ok(r) => r,
                Err(e) => return Step::Fail(e),
            };
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) => {
                    return Step::Retry {
                        problem: format!("request failed: {e}"),
                        asked: None,
                    }
                }
            };
            let status = response.status();
            if status.is_success() {
                return Step::Done(response);
            }
            let asked = retry_after(response.headers());
            let text = read_bounded(response, 4096).await.unwrap_or_default();
            let detail = format!("HTTP {status}: {}", one_line(&text));
            match status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Step::Fail(anyhow::anyhow!(
                    "the endpoint refused the credentials ({detail}); check the key variable (llm.api_key_env) and llm.auth"
                )),
                StatusCode::TOO_MANY_REQUESTS
                | StatusCode::REQUEST_TIMEOUT
                | StatusCode::CONFLICT => {
                    if asked.is_some_and(|d| d.as_secs_f64() > self.max_retry_wait_s) {
                        return Step::Fail(anyhow::anyhow!(
                            "the server asked to wait longer than llm.max_retry_wait_s = {}: stopped ({detail})",
                            self.max_retry_wait_s
                        ));
                    }
                    Step::Retry {
                        problem: detail,
                        asked,
                    }
                }
                s if s.is_server_error() => Step::Retry {
                    problem: detail,
                    asked,
                },
                _ => Step::Fail(anyhow::anyhow!(detail)),
            }
        })
        .await;
        match outcome {
            Ok((response, _)) => Ok(response),
            Err(Stop::Failed(e)) => Err(anyhow::anyhow!(
                "{what}: {}",
                self.redact(&format!("{e:#}"))
            )),
            Err(Stop::GaveUp { attempts, last }) => Err(anyhow::anyhow!(
                "{what}: gave up after {attempts} attempts: {}",
                self.redact(&last)
            )),
        }
    }

    async fn json(&self, what: &str, response: reqwest::Response) -> anyhow::Result<Value> {
        let text = read_bounded(response, self.max_json_bytes)
            .await
            .with_context(|| format!("{what}: the reply could not be read"))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{what}: the reply is not JSON: {}",
                one_line(&self.redact(&text))
            )
        })
    }

    async fn batch(&self, what: &str, response: reqwest::Response) -> anyhow::Result<BatchInfo> {
        let value = self.json(what, response).await?;
        serde_json::from_value(value.clone()).with_context(|| {
            format!(
                "{what}: the reply is not a batch: {}",
                one_line(&self.redact(&value.to_string()))
            )
        })
    }

    /// Uploads an input file (streamed from disk); returns the file's id.
    pub async fn upload(&self, path: &Path, name: &str) -> anyhow::Result<String> {
        let what = format!("uploading {}", path.display());
        let response = self
            .send(&what, || {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                let len = file.metadata()?.len();
                let body = reqwest::Body::from(tokio::fs::File::from_std(file));
                let part = reqwest::multipart::Part::stream_with_length(body, len)
                    .file_name(name.to_string())
                    .mime_str("application/jsonl")?;
                let form = reqwest::multipart::Form::new()
                    .text("purpose", "batch")
                    .part("file", part);
                Ok(self.http.post(self.url("/files", "")).multipart(form))
            })
            .await?;
        let value = self.json(&what, response).await?;
        value
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .with_context(|| format!("{what}: the reply has no file id"))
    }

    /// Creates a batch of an uploaded file, tagged with `tag` in its metadata.
    pub async fn create(&self, input_file_id: &str, tag: &str) -> anyhow::Result<BatchInfo> {
        let endpoint = super::chat_url(self.auth);
        let body = json!({
            "input_file_id": input_file_id,
            "endpoint": endpoint,
            "completion_window": "24h",
            "metadata": {TAG_KEY: tag},
        });
        let what = format!("creating the batch of {input_file_id}");
        let response = self
            .send(&what, || {
                Ok(self.http.post(self.url("/batches", "")).json(&body))
            })
            .await?;
        self.batch(&what, response).await
    }

    /// The batch tagged `tag`, if one exists (a create whose reply was lost to a kill). Looks
    /// through at most the 2,000 newest batches.
    pub async fn find_by_tag(&self, tag: &str) -> anyhow::Result<Option<BatchInfo>> {
        let mut after: Option<String> = None;
        for _ in 0..20 {
            let extra = match &after {
                Some(a) => format!("limit=100&after={a}"),
                None => "limit=100".to_string(),
            };
            let what = "listing the batches";
            let response = self
                .send(what, || Ok(self.http.get(self.url("/batches", &extra))))
                .await?;
            let page = self.json(what, response).await?;
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for item in &data {
                if let Ok(info) = serde_json::from_value::<BatchInfo>(item.clone()) {
                    if info.tag() == Some(tag) {
                        return Ok(Some(info));
                    }
                }
            }
            let more = page
                .get("has_more")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            match data
                .last()
                .and_then(|d| d.get("id"))
                .and_then(Value::as_str)
            {
                Some(last) if more => after = Some(last.to_string()),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    pub async fn get(&self, id: &str) -> anyhow::Result<BatchInfo> {
        let what = format!("reading batch {id}");
        let response = self
            .send(&what, || {
                Ok(self.http.get(self.url(&format!("/batches/{id}"), "")))
            })
            .await?;
        self.batch(&what, response).await
    }

    pub async fn cancel(&self, id: &str) -> anyhow::Result<BatchInfo> {
        let what = format!("cancelling batch {id}");
        let response = self
            .send(&what, || {
                Ok(self
                    .http
                    .post(self.url(&format!("/batches/{id}/cancel"), "")))
            })
            .await?;
        self.batch(&what, response).await
    }

    /// Streams a file's content to `f`, chunk by chunk.
    pub async fn download(
        &self,
        file_id: &str,
        mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let what = format!("downloading file {file_id}");
        let mut response = self
            .send(&what, || {
                Ok(self
                    .http
                    .get(self.url(&format!("/files/{file_id}/content"), "")))
            })
            .await?;
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("{what}: the download broke off"))?
        {
            f(&chunk)?;
        }
        Ok(())
    }
}

/// A body read up to `limit` bytes (an error past it).
async fn read_bounded(mut response: reqwest::Response, limit: u64) -> anyhow::Result<String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if (body.len() + chunk.len()) as u64 > limit {
            let keep = (limit as usize).saturating_sub(body.len()).min(chunk.len());
            body.extend_from_slice(&chunk[..keep]);
            if limit <= 4096 {
                break;
            }
            anyhow::bail!("the reply is larger than {limit} bytes (llm.max_reply_mb)");
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn one_line(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_base_comes_from_the_chat_endpoint_of_openai_vllm_and_azure() {
        assert_eq!(
            api_base("https://api.openai.com/v1/"),
            ("https://api.openai.com/v1".into(), String::new())
        );
        assert_eq!(
            api_base("http://h:8000/v1/chat/completions"),
            ("http://h:8000/v1".into(), String::new())
        );
        assert_eq!(
            api_base("https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"),
            (
                "https://r.openai.azure.com/openai".into(),
                "?api-version=2024-10-21".into()
            )
        );
    }

    #[test]
    fn a_batch_reads_its_counts_tag_and_errors() {
        let info: BatchInfo = serde_json::from_value(json!({
            "id": "batch_1", "status": "failed", "metadata": {TAG_KEY: "t"},
            "request_counts": {"total": 3, "completed": 1, "failed": 2},
            "errors": {"object": "list", "data": [{"code": "invalid_json", "message": "bad", "line": 2}]}
        }))
        .unwrap();
        assert!(info.is_done());
        assert_eq!(info.tag(), Some("t"));
        assert_eq!(info.counts().failed, 2);
        assert_eq!(info.errors_text().unwrap(), "invalid_json: bad (line 2)");
    }
}
