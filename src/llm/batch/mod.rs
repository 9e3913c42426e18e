//! Batch files of chat requests, for a provider's batch API (OpenAI, Azure OpenAI: [`api`]) or a
//! model run elsewhere (`vllm run-batch`): the request lines, split under the provider's limits,
//! and reading the output lines back.
//!
//! A line is `{"custom_id", "method": "POST", "url", "body"}` where `body` is exactly the body
//! the direct path sends and `custom_id` its request key (see [`super::ledger`]), so a reply
//! found in an output file is stored under the key a direct reply would have had.
//!
//! Output files come from outside: they are read as a stream of lines, each at most
//! `max_line_bytes` ([`LineSplitter`]), and each line is checked on its own
//! ([`parse_output_line`]): a line that is not an output line is refused with a reason, never
//! the whole file.

pub mod api;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::client::{parse_reply, ChatReply};
use crate::atomic_write::AtomicFile;

/// The `url` of every line and the batch's `endpoint` (OpenAI, vLLM).
pub const CHAT_URL: &str = "/v1/chat/completions";
/// The same for Azure OpenAI, whose batch examples name the path without `/v1`.
pub const AZURE_CHAT_URL: &str = "/chat/completions";

/// The chat path batch lines and batches name for an endpoint authenticated by `auth`.
pub fn chat_url(auth: super::Auth) -> &'static str {
    match auth {
        super::Auth::Azure => AZURE_CHAT_URL,
        super::Auth::Bearer => CHAT_URL,
    }
}

/// The limits of one input file and the batch price (`[llm]` `batch_*`).
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_requests: usize,
    pub max_bytes: u64,
    /// The batch price as a share of the direct price (0.5: half).
    pub price_factor: f64,
}

impl BatchLimits {
    pub fn from_config(config: &super::LlmConfig) -> anyhow::Result<Self> {
        anyhow::ensure!(
            config.batch_max_requests > 0,
            "llm.batch_max_requests must be 1 or more"
        );
        anyhow::ensure!(
            config.batch_max_mb.is_finite() && config.batch_max_mb > 0.0,
            "llm.batch_max_mb = {} must be a positive number of MB",
            config.batch_max_mb
        );
        anyhow::ensure!(
            config.batch_price_factor.is_finite() && config.batch_price_factor >= 0.0,
            "llm.batch_price_factor = {} must be a number, 0 or more",
            config.batch_price_factor
        );
        Ok(Self {
            max_requests: config.batch_max_requests,
            max_bytes: (config.batch_max_mb * 1024.0 * 1024.0) as u64,
            price_factor: config.batch_price_factor,
        })
    }
}

/// The line of one request (`url`: [`chat_url`]).
pub fn request_line(key: &str, body: &Value, url: &str) -> Value {
    json!({"custom_id": key, "method": "POST", "url": url, "body": body})
}

/// One input file being written: lines go to a temporary file that takes its name on
/// [`InputFile::finish`] (a killed run leaves no half file under a batch's name).
pub struct InputFile {
    file: AtomicFile,
    pub path: PathBuf,
    pub requests: usize,
    pub bytes: u64,
}

impl InputFile {
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            file: AtomicFile::create(path)?,
            path: path.to_path_buf(),
            requests: 0,
            bytes: 0,
        })
    }

    /// Whether a line of `len` bytes (newline included) still fits under `limits`.
    pub fn fits(&self, len: u64, limits: &BatchLimits) -> bool {
        self.requests < limits.max_requests && self.bytes + len <= limits.max_bytes
    }

    /// Appends one line (`line` without its newline).
    pub fn push(&mut self, line: &[u8]) -> anyhow::Result<()> {
        self.file.write_all(line)?;
        self.file.write_all(b"\n")?;
        self.requests += 1;
        self.bytes += line.len() as u64 + 1;
        Ok(())
    }

    /// Flushes, syncs and names the file.
    pub fn finish(self) -> anyhow::Result<PathBuf> {
        self.file.commit()?;
        Ok(self.path)
    }
}

/// One line of an output file, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputLine {
    /// A chat completion for request `custom_id`.
    Answered { custom_id: String, reply: ChatReply },
    /// The request failed (an error-file line, or vLLM's inline error): sent again later.
    Failed { custom_id: String, reason: String },
}

impl OutputLine {
    pub fn custom_id(&self) -> &str {
        match self {
            OutputLine::Answered { custom_id, .. } | OutputLine::Failed { custom_id, .. } => {
                custom_id
            }
        }
    }
}

/// Reads one output line of either shape (OpenAI/Azure output and error files, `vllm
/// run-batch` output): `{"id", "custom_id", "response": {"status_code", "request_id", "body"},
/// "error"}`. `Err` is why the line is refused; a line about a request that failed is
/// [`OutputLine::Failed`].
pub fn parse_output_line(text: &str) -> Result<OutputLine, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    let Some(object) = value.as_object() else {
        return Err("not a JSON object".into());
    };
    let custom_id = match object.get("custom_id") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(_) => return Err("`custom_id` is not a string".into()),
        None => return Err("no `custom_id`: not a batch output line".into()),
    };
    let failed = |reason: String| {
        Ok(OutputLine::Failed {
            custom_id: custom_id.clone(),
            reason,
        })
    };
    match object.get("error") {
        None | Some(Value::Null) => {}
        Some(error) => return failed(error_text(error)),
    }
    let Some(response) = object.get("response").filter(|r| !r.is_null()) else {
        return Err("neither `response` nor `error`".into());
    };
    let status = response
        .get("status_code")
        .and_then(Value::as_u64)
        .ok_or("the response has no `status_code`")?;
    let body = response.get("body").unwrap_or(&Value::Null);
    if status != 200 {
        let detail = body
            .get("error")
            .map(error_text)
            .unwrap_or_else(|| snippet(&body.to_string()));
        return failed(format!("HTTP {status}: {detail}"));
    }
    let is_chat = body.get("object").and_then(Value::as_str) == Some("chat.completion")
        || body.get("choices").is_some_and(Value::is_array);
    if !is_chat {
        return failed(format!(
            "the body is not a chat completion: {}",
            snippet(&body.to_string())
        ));
    }
    match parse_reply(&body.to_string()) {
        Ok(reply) => Ok(OutputLine::Answered { custom_id, reply }),
        Err(problem) => failed(problem),
    }
}

fn error_text(error: &Value) -> String {
    match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => {
            let code = o.get("code").and_then(Value::as_str);
            let message = o.get("message").and_then(Value::as_str);
            match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (None, Some(m)) => m.to_string(),
                _ => snippet(&error.to_string()),
            }
        }
        other => snippet(&other.to_string()),
    }
}

fn snippet(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Splits a byte stream into lines of at most `max` bytes; a longer line is reported as
/// refused and skipped to its end without being kept. Blank lines are skipped. Line numbers
/// count from 1.
pub struct LineSplitter {
    max: usize,
    buf: Vec<u8>,
    skipping: bool,
    line_no: u64,
}

/// One line handed out: its number and its text, or why it is refused.
pub type Line<'a> = (u64, Result<&'a str, String>);

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            buf: Vec::new(),
            skipping: false,
            line_no: 0,
        }
    }

    /// Feeds bytes; `f` gets each complete line.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        f: &mut impl FnMut(Line<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.take(&chunk[..end]);
                    chunk = &chunk[end + 1..];
                    self.emit(f)?;
                }
                None => {
                    self.take(chunk);
                    chunk = &[];
                }
            }
        }
        Ok(())
    }

    /// The last line, when the stream does not end with a newline.
    pub fn finish(
        &mut self,
        f: &mut impl FnMut(Line<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.skipping || !self.buf.is_empty() {
            self.emit(f)?;
        }
        Ok(())
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.skipping {
            return;
        }
        if self.buf.len() + bytes.len() > self.max {
            self.skipping = true;
            self.buf = Vec::new();
        } else {
            self.buf.extend_from_slice(bytes);
        }
    }

    fn emit(&mut self, f: &mut impl FnMut(Line<'_>) -> anyhow::Result<()>) -> anyhow::Result<()> {
        self.line_no += 1;
        let result = if std::mem::take(&mut self.skipping) {
            f((
                self.line_no,
                Err(format!("longer than {} bytes: refused", self.max)),
            ))
        } else {
            let line = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf);
            if line.iter().all(u8::is_ascii_whitespace) {
                Ok(())
            } else {
                match std::str::from_utf8(line) {
                    Ok(text) => f((self.line_no, Ok(text))),
                    Err(_) => f((self.line_no, Err("not UTF-8".into()))),
                }
            }
        };
        self.buf.clear();
        result
    }
}

/// Reads a file through a [`LineSplitter`], 64 KiB at a time.
pub fn read_lines(
    path: &Path,
    max_line: usize,
    mut f: impl FnMut(Line<'_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Read;
    let mut file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut splitter = LineSplitter::new(max_line);
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        splitter.push(&buf[..n], &mut f)?;
    }
    splitter.finish(&mut f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(max: usize, chunks: &[&[u8]]) -> Vec<(u64, Result<String, String>)> {
        let mut out = Vec::new();
        let mut s = LineSplitter::new(max);
        let mut f = |(n, l): Line<'_>| {
            out.push((n, l.map(str::to_string)));
            Ok(())
        };
        for c in chunks {
            s.push(c, &mut f).unwrap();
        }
        s.finish(&mut f).unwrap();
        out
    }

    #[test]
    fn lines_are_split_across_chunks_and_an_overlong_line_is_refused_alone() {
        let got = lines(5, &[b"ab", b"c\n1234567", b"89\n\nxy\r\n", b"z"]);
        assert_eq!(
            got,
            vec![
                (1, Ok("abc".into())),
                (2, Err("longer than 5 bytes: refused".into())),
                (4, Ok("xy".into())),
                (5, Ok("z".into())),
            ]
        );
        assert_eq!(
            lines(4, &[b"\xff\xfe\n"]),
            vec![(1, Err("not UTF-8".into()))]
        );
    }

    fn chat_body(content: &str) -> Value {
        json!({"id": "c", "object": "chat.completion",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 10, "completion_tokens": 2}})
    }

    #[test]
    fn output_lines_of_both_shapes_are_read_and_strangers_refused_with_a_reason() {
        let ok = json!({"id": "r1", "custom_id": "k1",
                        "response": {"status_code": 200, "request_id": "q", "body": chat_body("8")},
                        "error": null});
        match parse_output_line(&ok.to_string()).unwrap() {
            OutputLine::Answered { custom_id, reply } => {
                assert_eq!((custom_id.as_str(), reply.content.as_str()), ("k1", "8"));
                assert_eq!((reply.prompt_tokens, reply.completion_tokens), (10, 2));
            }
            other => panic!("{other:?}"),
        }
        // vLLM's inline error and an OpenAI error-file line.
        let inline = json!({"id": "r2", "custom_id": "k2",
                            "response": {"status_code": 400, "request_id": "q",
                                         "body": {"error": {"message": "too long", "code": "bad"}}},
                            "error": null});
        assert_eq!(
            parse_output_line(&inline.to_string()).unwrap(),
            OutputLine::Failed {
                custom_id: "k2".into(),
                reason: "HTTP 400: bad: too long".into()
            }
        );
        let error = json!({"id": "r3", "custom_id": "k3", "response": null,
                           "error": {"code": "batch_expired", "message": "not done in time"}});
        assert_eq!(
            parse_output_line(&error.to_string()).unwrap(),
            OutputLine::Failed {
                custom_id: "k3".into(),
                reason: "batch_expired: not done in time".into()
            }
        );
        let embedding = json!({"custom_id": "k4",
                               "response": {"status_code": 200, "body": {"object": "list", "data": []}}});
        assert!(matches!(
            parse_output_line(&embedding.to_string()).unwrap(),
            OutputLine::Failed { reason, .. } if reason.starts_with("the body is not a chat completion")
        ));
        assert!(parse_output_line("[1, 2]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(parse_output_line(r#"{"id": 1}"#)
            .unwrap_err()
            .contains("no `custom_id`"));
        assert!(parse_output_line("{").unwrap_err().starts_with("not JSON"));
    }

    #[test]
    fn input_files_split_under_the_request_and_size_limits() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits {
            max_requests: 2,
            max_bytes: 30,
            price_factor: 0.5,
        };
        let mut file = InputFile::create(&dir.path().join("a.jsonl")).unwrap();
        assert!(file.fits(10, &limits));
        file.push(b"123456789").unwrap();
        assert!(file.fits(20, &limits));
        assert!(!file.fits(21, &limits), "over the size");
        file.push(b"1").unwrap();
        assert!(!file.fits(1, &limits), "over the count");
        let path = file.finish().unwrap();
        assert_eq!(std::fs::read(path).unwrap(), b"123456789\n1\n");
    }
}
