//! `generate|judge --batch`, `--batch-file` and `vital batch …` against a fake batch API of our
//! own on 127.0.0.1 that follows OpenAI's reference: multipart uploads, status steps
//! (validating, in_progress, finalizing, then completed or expired), output lines in another
//! order than the input, an error file, a 429 on create, cancel, and metadata on list. The same
//! server answers direct chat requests, with the same reply for the same body, so the two paths
//! can be compared. Never a real host.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::write;
use vital::store::Workspace;

const KEY: &str = "sk-test-SECRET-0123456789abcdefXYZ";

/// What the fake model does with one request, from the answer's `[tag:…]`.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Fate {
    Reply(&'static str),
    /// In the error file (batch) the first time; answered `5` afterwards and directly.
    ErrorOnce,
    /// Left unanswered by a batch that expires; answered `6` afterwards and directly.
    UnansweredOnce,
}

fn fate(tag: &str) -> Fate {
    match tag {
        "boom" => Fate::ErrorOnce,
        "late" => Fate::UnansweredOnce,
        t if t.starts_with('g') => Fate::Reply(CONVERSATION),
        t if t.ends_with('2') => Fate::Reply("3\nWeak."),
        _ => Fate::Reply("8\nAccurate. (as seen by sk-test-SECRET-0123456789abcdefXYZ)"),
    }
}

const CONVERSATION: &str = "User: What modality is shown?\nAssistant: A CT scan of the chest.\n\
                            User: Is there a mass?\nAssistant: Yes, in the left lower lobe.";

fn tag_in(text: &str) -> String {
    let start = text.find("[tag:").map(|i| i + 5).unwrap_or(0);
    let rest = &text[start..];
    rest[..rest.find(']').unwrap_or(0)].to_string()
}

fn completion(content: &str) -> Value {
    json!({"id": "c", "object": "chat.completion",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})
}

#[derive(Default)]
struct Batch {
    id: String,
    input_file_id: String,
    tag: String,
    status: String,
    polls: usize,
    lines: Vec<Value>,
    output_file_id: Option<String>,
    error_file_id: Option<String>,
    cancelled: bool,
}

/// Where the server stops answering (a request it holds while the test kills vital).
#[derive(Clone, Copy, PartialEq, Debug)]
enum Hold {
    None,
    Upload,
    /// After the batch is made: the create's reply is lost.
    CreateReply,
    Poll,
    /// The second file download.
    SecondDownload,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    batches: Vec<Batch>,
    /// custom_ids that failed once (sent again: answered).
    failed_before: HashSet<String>,
    creates_to_refuse: usize,
    /// The next batch made fails validation (Azure's enqueued-token quota).
    refuse_next_batch: bool,
    /// `completed` or `expired`.
    final_status: String,
    chat_requests: usize,
    downloads: usize,
    seen_keys: Vec<String>,
}

struct FakeBatchApi {
    url: String,
    state: Arc<Mutex<State>>,
    hold: Arc<Mutex<Hold>>,
    held: Arc<AtomicBool>,
}

impl FakeBatchApi {
    fn start(final_status: &str, creates_to_refuse: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            final_status: final_status.into(),
            creates_to_refuse,
            ..Default::default()
        }));
        let hold = Arc::new(Mutex::new(Hold::None));
        let held = Arc::new(AtomicBool::new(false));
        let (s, h, d) = (state.clone(), hold.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (s, h, d) = (s.clone(), h.clone(), d.clone());
                std::thread::spawn(move || serve(stream, &s, &h, &d));
            }
        });
        FakeBatchApi {
            url,
            state,
            hold,
            held,
        }
    }

    fn endpoint(&self) -> String {
        format!("{}/v1", self.url)
    }

    fn hold_at(&self, hold: Hold) {
        self.held.store(false, Ordering::SeqCst);
        *self.hold.lock().unwrap() = hold;
    }

    fn batches_made(&self) -> usize {
        self.state.lock().unwrap().batches.len()
    }

    /// The custom_ids of every line uploaded, in upload order.
    fn uploaded_keys(&self) -> Vec<String> {
        self.state.lock().unwrap().seen_keys.clone()
    }
}

fn respond(stream: &mut TcpStream, code: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn batch_json(b: &Batch) -> Value {
    let total = b.lines.len();
    let (done, failed) = if b.status == "in_progress" || b.status == "finalizing" {
        (total / 2, 0)
    } else if b.output_file_id.is_some() {
        let failed = b.lines.iter().filter(|l| l["error"].is_object()).count();
        (total - failed, failed)
    } else {
        (0, 0)
    };
    json!({"id": b.id, "object": "batch", "endpoint": "/v1/chat/completions",
           "input_file_id": b.input_file_id, "completion_window": "24h", "status": b.status,
           "output_file_id": b.output_file_id, "error_file_id": b.error_file_id, "errors": null,
           "request_counts": {"total": total, "completed": done, "failed": failed},
           "metadata": {"vital_batch": b.tag}})
}

/// What the model says to one request line (`None`: left unanswered).
fn answer(state: &mut State, line: &Value, expiring: bool) -> Option<Value> {
    let custom_id = line["custom_id"].as_str().unwrap().to_string();
    let tag = tag_in(&line["body"].to_string());
    let again = state.failed_before.contains(&custom_id);
    let out = |content: &str| {
        json!({"id": "r", "custom_id": custom_id, "error": null,
               "response": {"status_code": 200, "request_id": "q", "body": completion(content)}})
    };
    match fate(&tag) {
        Fate::Reply(content) => Some(out(content)),
        Fate::ErrorOnce if !again => {
            state.failed_before.insert(custom_id.clone());
            Some(json!({"id": "r", "custom_id": custom_id, "response": null,
                        "error": {"code": "server_error", "message": "the model fell over"}}))
        }
        Fate::ErrorOnce => Some(out("5\nFine.")),
        Fate::UnansweredOnce if !again && expiring => {
            state.failed_before.insert(custom_id.clone());
            None
        }
        Fate::UnansweredOnce => Some(out("6\nFine.")),
    }
}

fn finish(state: &mut State, i: usize) {
    let expiring = state.final_status == "expired" || state.batches[i].cancelled;
    let lines = state.batches[i].lines.clone();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for line in &lines {
        match answer(state, line, expiring) {
            Some(o) if o["error"].is_object() => errors.push(o),
            Some(o) => out.push(o),
            None => {}
        }
    }
    // Any order: match by custom_id.
    out.reverse();
    let text = |lines: &[Value]| {
        lines
            .iter()
            .map(|l| format!("{l}\n"))
            .collect::<String>()
            .into_bytes()
    };
    let n = state.files.len();
    let out_id = format!("file-out-{n}");
    state.files.insert(out_id.clone(), text(&out));
    let b = &mut state.batches[i];
    b.output_file_id = Some(out_id);
    if !errors.is_empty() {
        let err_id = format!("file-err-{n}");
        state.files.insert(err_id.clone(), text(&errors));
        state.batches[i].error_file_id = Some(err_id);
    }
    let b = &mut state.batches[i];
    b.lines = out.into_iter().chain(errors).collect();
    b.status = if b.cancelled {
        "cancelled".into()
    } else {
        state.final_status.clone()
    };
}

fn serve(mut stream: TcpStream, state: &Mutex<State>, hold: &Mutex<Hold>, held: &AtomicBool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let path = target.split('?').next().unwrap().to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).unwrap();
    // Azure: its own base URL (`/openai/…?api-version=…`) and the `api-key` header.
    let azure = path.starts_with("/openai/");
    let path = if azure {
        assert!(target.contains("api-version=2024-10-21"), "{target}");
        assert_eq!(headers.get("api-key").map(String::as_str), Some(KEY));
        assert!(!headers.contains_key("authorization"));
        match path.split_once("/chat/completions") {
            Some(_) => "/v1/chat/completions".to_string(),
            None => path.replacen("/openai/", "/v1/", 1),
        }
    } else {
        assert_eq!(
            headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {KEY}").as_str()),
            "{method} {path} carries the key"
        );
        path
    };
    let chat_url = if azure {
        "/chat/completions"
    } else {
        "/v1/chat/completions"
    };
    let holding = *hold.lock().unwrap();
    let stall = || {
        held.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_secs(60));
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/chat/completions") => {
            let request: Value = serde_json::from_slice(&body).unwrap();
            let content = match fate(&tag_in(&request.to_string())) {
                Fate::Reply(c) => c,
                Fate::ErrorOnce => "5\nFine.",
                Fate::UnansweredOnce => "6\nFine.",
            };
            state.lock().unwrap().chat_requests += 1;
            respond(
                &mut stream,
                200,
                &[],
                completion(content).to_string().as_bytes(),
            );
        }
        ("POST", "/v1/files") => {
            if holding == Hold::Upload {
                return stall();
            }
            let content_type = headers.get("content-type").unwrap();
            let boundary = content_type.split("boundary=").nth(1).unwrap().to_string();
            let text = String::from_utf8(body).unwrap();
            assert!(
                text.contains("name=\"purpose\"\r\n\r\nbatch\r\n"),
                "purpose=batch"
            );
            let file_part = text
                .split(&format!("--{boundary}"))
                .find(|p| p.contains("name=\"file\""))
                .unwrap();
            let content = file_part.split_once("\r\n\r\n").unwrap().1;
            let content = content.strip_suffix("\r\n").unwrap_or(content);
            let mut s = state.lock().unwrap();
            for line in content.lines() {
                let v: Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["method"], "POST");
                assert_eq!(v["url"], chat_url);
                s.seen_keys
                    .push(v["custom_id"].as_str().unwrap().to_string());
            }
            let id = format!("file-in-{}", s.files.len());
            s.files.insert(id.clone(), content.as_bytes().to_vec());
            respond(
                &mut stream,
                200,
                &[],
                json!({"id": id, "object": "file", "purpose": "batch"})
                    .to_string()
                    .as_bytes(),
            );
        }
        ("POST", "/v1/batches") => {
            let request: Value = serde_json::from_slice(&body).unwrap();
            let mut s = state.lock().unwrap();
            if s.creates_to_refuse > 0 {
                s.creates_to_refuse -= 1;
                return respond(
                    &mut stream,
                    429,
                    &[("retry-after-ms", "20")],
                    b"{\"error\":{\"message\":\"enqueued token limit\"}}",
                );
            }
            assert_eq!(request["completion_window"], "24h");
            assert_eq!(request["endpoint"], chat_url);
            let input = request["input_file_id"].as_str().unwrap().to_string();
            let lines = String::from_utf8(s.files[&input].clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            let batch = Batch {
                id: format!("batch_{}", s.batches.len()),
                input_file_id: input,
                tag: request["metadata"]["vital_batch"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                status: "validating".into(),
                lines,
                ..Default::default()
            };
            let reply = batch_json(&batch);
            s.batches.push(batch);
            drop(s);
            if holding == Hold::CreateReply {
                return stall();
            }
            respond(&mut stream, 200, &[], reply.to_string().as_bytes());
        }
        ("GET", "/v1/batches") => {
            let s = state.lock().unwrap();
            let data: Vec<Value> = s.batches.iter().rev().map(batch_json).collect();
            respond(
                &mut stream,
                200,
                &[],
                json!({"object": "list", "data": data, "has_more": false})
                    .to_string()
                    .as_bytes(),
            );
        }
        ("GET", p) if p.starts_with("/v1/batches/") => {
            if holding == Hold::Poll {
                return stall();
            }
            let id = p.trim_start_matches("/v1/batches/");
            let mut s = state.lock().unwrap();
            let i = s.batches.iter().position(|b| b.id == id).unwrap();
            let b = &mut s.batches[i];
            b.polls += 1;
            // validating → in_progress → finalizing → the end, one step a look.
            let refuse = b.status == "validating" && std::mem::take(&mut s.refuse_next_batch);
            let b = &mut s.batches[i];
            if refuse {
                b.status = "failed".into();
                let mut reply = batch_json(b);
                reply["errors"] = json!({"object": "list", "data": [{"code": "token_limit_exceeded",
                    "message": "Enqueued token limit reached", "line": null}]});
                return respond(&mut stream, 200, &[], reply.to_string().as_bytes());
            }
            match b.status.as_str() {
                "validating" => b.status = "in_progress".into(),
                "in_progress" => b.status = "finalizing".into(),
                "finalizing" | "cancelling" => finish(&mut s, i),
                _ => {}
            }
            let reply = batch_json(&s.batches[i]);
            respond(&mut stream, 200, &[], reply.to_string().as_bytes());
        }
        ("POST", p) if p.ends_with("/cancel") => {
            let id = p
                .trim_start_matches("/v1/batches/")
                .trim_end_matches("/cancel");
            let mut s = state.lock().unwrap();
            let b = s.batches.iter_mut().find(|b| b.id == id).unwrap();
            b.cancelled = true;
            b.status = "cancelling".into();
            let reply = batch_json(b);
            respond(&mut stream, 200, &[], reply.to_string().as_bytes());
        }
        ("GET", p) if p.starts_with("/v1/files/") && p.ends_with("/content") => {
            let id = p
                .trim_start_matches("/v1/files/")
                .trim_end_matches("/content");
            let mut s = state.lock().unwrap();
            s.downloads += 1;
            let content = s.files[id].clone();
            let second = s.downloads >= 2;
            drop(s);
            if holding == Hold::SecondDownload && second {
                return stall();
            }
            respond(&mut stream, 200, &[], &content);
        }
        _ => respond(&mut stream, 404, &[], b"{\"error\":\"no such route\"}"),
    }
}

fn vital_cmd(ws: &Path, config: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vital"));
    cmd.arg("-w")
        .arg(ws)
        .args(args)
        .env("VITAL_CONFIG", config)
        .env_remove("VITAL_WORKSPACE")
        .env_remove("VITAL_LLM_ENDPOINT")
        .env_remove("VITAL_LLM_MODEL")
        .env("OPENAI_API_KEY", KEY);
    cmd
}

fn run(ws: &Path, config: &Path, args: &[&str]) -> Output {
    vital_cmd(ws, config, args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn config(dir: &Path, extra: &str) -> PathBuf {
    write(
        dir,
        "config.toml",
        &format!(
            "[llm]\nretry_base_ms = 10\nretry_max_secs = 0.05\nmax_retries = 3\nconcurrency = 2\n\
             requests_per_minute = 0\ntokens_per_minute = 0\nprice_prompt_per_1k = 0.01\n\
             price_completion_per_1k = 0.02\n{extra}"
        ),
    )
}

/// A 1×1 PNG.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00\x3a\x7e\x9b\x55\x00\x00\x00\x0a\x49\x44\x41\x54\x78\x9c\x63\x68\x00\x00\x00\x82\x00\x81\x77\xcd\x72\xb6\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

/// A workspace of three samples, answers tagged with what the fake model does.
fn workspace(dir: &Path, name: &str, tags: &[[&str; 2]; 3]) -> PathBuf {
    let ws = dir.join(name);
    let lines: Vec<String> = tags
        .iter()
        .enumerate()
        .map(|(i, [a, b])| {
            json!({"id": format!("f{i}"), "image": "f0.png", "fig_caption": format!("CT {i}."),
                   "in_text_mention": "Fig 1.", "domain": "ct_scan",
                   "rounds": [{"question": "What modality?",
                               "answers": [format!("CT [tag:{a}]."), format!("MRI [tag:{b}].")]}]})
            .to_string()
        })
        .collect();
    let data = write(dir, &format!("{name}.jsonl"), &lines.join("\n"));
    std::fs::write(dir.join("f0.png"), PNG).unwrap();
    super::common::vital_ok(&ws, &["import", data.to_str().unwrap()]);
    ws
}

/// What a run leaves in the workspace that matters: a judge's scores, and the ledger's keys with
/// their outcomes.
type Snapshot = (Vec<(i64, f64)>, Vec<(String, String)>);

fn snapshot(ws: &Path, judge: &str) -> Snapshot {
    let w = Workspace::open_existing(ws).unwrap();
    let scores = w.model_scores_by_judge(judge).unwrap();
    let mut ledger: Vec<(String, String)> = w
        .llm_ledger_entries()
        .unwrap()
        .into_iter()
        .map(|e| (e.key, format!("{:?}", e.outcome)))
        .collect();
    ledger.sort();
    (scores, ledger)
}

const TAGS: [[&str; 2]; 3] = [["a1", "a2"], ["boom", "b2"], ["c1", "late"]];

fn judge_args<'a>(endpoint: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["judge", "--endpoint", endpoint, "--model", "judge-m"];
    args.extend_from_slice(more);
    args
}

#[test]
fn a_judge_batch_stores_what_the_direct_path_stores_and_sends_only_its_failed_lines_again() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "batch_max_requests = 4\n");
    let server = FakeBatchApi::start("completed", 1);
    let endpoint = server.endpoint();

    let direct = workspace(tmp.path(), "direct", &TAGS);
    let out = run(&direct, &config, &judge_args(&endpoint, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.state.lock().unwrap().chat_requests, 6);

    let batched = workspace(tmp.path(), "batched", &TAGS);
    let out = run(
        &batched,
        &config,
        &judge_args(
            &endpoint,
            &["--batch", "--wait", "--poll-secs", "0", "--json"],
        ),
    );
    let report = text(&out);
    assert_eq!(out.status.code(), Some(3), "one line failed: {report}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["requests"], 6);
    assert_eq!(
        summary["batches"].as_array().unwrap().len(),
        2,
        "4 + 2 requests"
    );
    let collect = &summary["collect"];
    assert_eq!(collect["replies_stored"], 5);
    assert_eq!(collect["scores_added"], 5);
    assert_eq!(collect["failed"], 1);
    assert!(
        collect["failures"][0]
            .as_str()
            .unwrap()
            .contains("the model fell over"),
        "{collect}"
    );
    // The batch price: (5 × 100 × 0.01 + 5 × 20 × 0.02) / 1000 × 0.5.
    let cost = collect["cost_estimate"].as_f64().unwrap();
    assert!((cost - 0.0035).abs() < 1e-9, "{cost}");
    assert_eq!(
        server.state.lock().unwrap().chat_requests,
        6,
        "nothing sent directly"
    );
    assert!(!report.contains(KEY), "{report}");
    let first_keys = server.uploaded_keys();
    assert_eq!(first_keys.len(), 6);

    // Same keys, same stored replies as the direct path, less the failed line.
    let (direct_scores, direct_ledger) = snapshot(&direct, "judge-m");
    let (scores, ledger) = snapshot(&batched, "judge-m");
    assert_eq!(scores.len(), 5);
    assert!(
        scores.iter().all(|s| direct_scores.contains(s)),
        "{scores:?}"
    );
    assert!(ledger.iter().all(|l| direct_ledger.contains(l)));
    let w = Workspace::open_existing(&batched).unwrap();
    let stored: Vec<String> = w
        .llm_ledger_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.key)
        .collect();
    let failed: Vec<&String> = first_keys.iter().filter(|k| !stored.contains(k)).collect();
    assert_eq!(failed.len(), 1);
    drop(w);

    // The next batch run sends the failed line, and only it.
    let out = run(
        &batched,
        &config,
        &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
    );
    assert!(out.status.success(), "{}", text(&out));
    let keys = server.uploaded_keys();
    assert_eq!(&keys[6..], &[failed[0].clone()]);
    assert_eq!(
        snapshot(&batched, "judge-m"),
        (direct_scores, direct_ledger)
    );
    // Nothing is left to send, by batch or directly.
    let out = run(&batched, &config, &judge_args(&endpoint, &["--batch"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.uploaded_keys().len(), 7);
    let status = run(&batched, &config, &["batch", "status", "--json"]);
    let rows: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "collected"));
}

#[test]
fn an_expired_batch_keeps_its_partial_output_and_a_pending_request_is_never_sent_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "");
    let server = FakeBatchApi::start("expired", 0);
    let endpoint = server.endpoint();
    let ws = workspace(tmp.path(), "ws", &TAGS);
    // Submitted, not waited for: the requests wait in the batch.
    let out = run(&ws, &config, &judge_args(&endpoint, &["--batch"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.batches_made(), 1);
    // Neither a direct run nor another batch run sends them meanwhile.
    let out = run(&ws, &config, &judge_args(&endpoint, &["--json"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&ws, &config, &judge_args(&endpoint, &["--batch"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.state.lock().unwrap().chat_requests, 0);
    assert_eq!(
        (server.batches_made(), server.uploaded_keys().len()),
        (1, 6)
    );

    let out = run(
        &ws,
        &config,
        &["batch", "collect", "--wait", "--poll-secs", "0", "--json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Expired: 4 answered, "boom" in the error file, "late" never answered.
    assert_eq!(
        (
            summary["replies_stored"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(4), Some(2))
    );
    let failures = summary["failures"].to_string();
    assert!(failures.contains("ended expired"), "{failures}");
    // The two failed requests go directly now (and only they).
    let out = run(&ws, &config, &judge_args(&endpoint, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.state.lock().unwrap().chat_requests, 2);
    let (scores, _) = snapshot(&ws, "judge-m");
    assert_eq!(scores.len(), 6);
}

#[test]
fn a_batch_file_for_vllm_is_imported_back_line_by_line_with_inline_errors_and_strangers_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Output lines are read up to max_reply_mb (and their wrapping): a 3 MB line is refused.
    let config = config(tmp.path(), "max_reply_mb = 1\n");
    let ws = workspace(tmp.path(), "ws", &TAGS);
    // Nothing listens here: a file run contacts nothing.
    let dead = "http://127.0.0.1:9/v1";
    let file = tmp.path().join("in.jsonl");
    let dry = run(&ws, &config, &judge_args(dead, &["--dry-run"]));
    let bodies: Vec<Value> = String::from_utf8_lossy(&dry.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let out = run(
        &ws,
        &config,
        &judge_args(dead, &["--batch-file", file.to_str().unwrap()]),
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines: Vec<Value> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    let sent: Vec<Value> = lines.iter().map(|l| l["body"].clone()).collect();
    assert_eq!(
        sent, bodies,
        "the lines carry exactly the direct path's bodies"
    );

    // `vllm run-batch`'s output: input order, errors inline; plus lines that are not ours.
    let mut out_lines: Vec<String> = lines
        .iter()
        .map(|l| {
            let tag = tag_in(&l["body"].to_string());
            let response = match fate(&tag) {
                Fate::ErrorOnce => json!({"status_code": 400, "request_id": "q",
                                          "body": {"object": "error", "message": "prompt too long", "code": 400}}),
                Fate::Reply(c) => json!({"status_code": 200, "request_id": "q", "body": completion(c)}),
                Fate::UnansweredOnce => json!({"status_code": 200, "request_id": "q", "body": completion("6")}),
            };
            json!({"id": "vllm-1", "custom_id": l["custom_id"], "response": response, "error": null}).to_string()
        })
        .collect();
    out_lines.push(json!({"id": "x", "custom_id": "f".repeat(64), "response": {"status_code": 200, "body": completion("9")}, "error": null}).to_string());
    out_lines.push("this is not JSON".into());
    out_lines.push(json!({"id": "y", "custom_id": lines[0]["custom_id"], "response": {"status_code": 200, "body": {"object": "list", "data": []}}}).to_string());
    out_lines.push(format!("{{\"custom_id\": \"{}\"}}", "x".repeat(3 << 20)));
    let output = write(tmp.path(), "out.jsonl", &out_lines.join("\n"));
    let out = run(
        &ws,
        &config,
        &["batch", "import", output.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["replies_stored"], 5);
    assert_eq!(summary["failed"], 1);
    assert!(
        summary["failures"][0]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{summary}"
    );
    let refused: Vec<String> = summary["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_string())
        .collect();
    assert_eq!(refused.len(), 3, "{refused:?}");
    assert!(
        refused[0].contains("line 7") && refused[0].contains("not a request waiting"),
        "{refused:?}"
    );
    assert!(
        refused[1].contains("line 8") && refused[1].contains("not JSON"),
        "{refused:?}"
    );
    assert!(
        refused[2].contains("line 10") && refused[2].contains("longer than"),
        "{refused:?}"
    );
    assert_eq!(
        summary["already_stored"], 1,
        "line 9 is about a request stored by line 1"
    );
    // The failed request, and only it, goes out with the next run.
    let server = FakeBatchApi::start("completed", 0);
    let endpoint = server.endpoint();
    let out = run(&ws, &config, &judge_args(&endpoint, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.state.lock().unwrap().chat_requests, 1);
    assert_eq!(snapshot(&ws, "judge-m").0.len(), 6);
}

/// Starts `judge --batch --wait`, kills it (SIGKILL) once the server holds the stage's request.
fn killed_at(hold: Hold) -> (tempfile::TempDir, PathBuf, PathBuf, FakeBatchApi) {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "batch_max_requests = 3\n");
    let server = FakeBatchApi::start("completed", 0);
    let ws = workspace(tmp.path(), "ws", &TAGS);
    server.hold_at(hold);
    let endpoint = server.endpoint();
    let mut child = vital_cmd(
        &ws,
        &config,
        &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    while !server.held.load(Ordering::SeqCst) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{hold:?} never reached"
        );
        assert!(child.try_wait().unwrap().is_none(), "ended before {hold:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    server.hold_at(Hold::None);
    (tmp, ws, config, server)
}

#[test]
fn a_batch_run_killed_at_any_stage_is_finished_by_batch_collect_as_if_never_killed() {
    // The uninterrupted run, for comparison.
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "batch_max_requests = 3\n");
    let server = FakeBatchApi::start("completed", 0);
    let ws = workspace(tmp.path(), "ws", &TAGS);
    let endpoint = server.endpoint();
    run(
        &ws,
        &config,
        &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
    );
    let expected = snapshot(&ws, "judge-m");
    assert_eq!(expected.0.len(), 5, "all but the failed line");

    for hold in [
        Hold::Upload,
        Hold::CreateReply,
        Hold::Poll,
        Hold::SecondDownload,
    ] {
        let (_tmp, ws, config, server) = killed_at(hold);
        let made = server.batches_made();
        let out = run(
            &ws,
            &config,
            &["batch", "collect", "--wait", "--poll-secs", "0", "--json"],
        );
        assert_eq!(out.status.code(), Some(3), "{hold:?}: {}", text(&out));
        assert_eq!(snapshot(&ws, "judge-m"), expected, "{hold:?}");
        assert_eq!(
            server.batches_made(),
            2,
            "{hold:?}: one batch per file (had {made})"
        );
        let w = Workspace::open_existing(&ws).unwrap();
        let batches = w.llm_batches().unwrap();
        assert_eq!(batches.len(), 2, "{hold:?}");
        assert!(batches.iter().all(|b| !b.is_open()), "{hold:?}");
        // A second collect finds nothing to do and stores nothing twice.
        drop(w);
        let again = run(&ws, &config, &["batch", "collect", "--json"]);
        assert!(again.status.success(), "{hold:?}: {}", text(&again));
        assert_eq!(snapshot(&ws, "judge-m"), expected, "{hold:?}");
    }
}

fn figures(dir: &Path, tags: &[&str]) -> (PathBuf, PathBuf) {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut lines = String::new();
    for tag in tags {
        std::fs::write(images.join(format!("{tag}.png")), PNG).unwrap();
        lines.push_str(
            &json!({"pair_id": tag, "fig_caption": format!("Axial CT [tag:{tag}]."),
                               "fig_label": "Figure 1", "in_text_mention": null,
                               "domain": {"ct_scan": true}})
            .to_string(),
        );
        lines.push('\n');
    }
    (write(dir, "figures.jsonl", &lines), images)
}

#[test]
fn a_generate_batch_stores_the_samples_the_direct_path_stores() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "");
    let server = FakeBatchApi::start("completed", 0);
    let endpoint = server.endpoint();
    let (input, images) = figures(tmp.path(), &["g1", "g2", "g3"]);
    let args = |more: &[&'static str]| {
        let mut a: Vec<String> = [
            "generate",
            "--input",
            input.to_str().unwrap(),
            "--images",
            images.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--model",
            "gen-m",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(more.iter().map(|s| s.to_string()));
        a
    };
    let stored = |ws: &Path| {
        let w = Workspace::open_existing(ws).unwrap();
        let mut samples: Vec<_> = w
            .sample_keys()
            .unwrap()
            .into_iter()
            .map(|k| w.load_sample(k).unwrap().unwrap().sample)
            .collect();
        // Replies arrive in any order, directly and in a batch's output.
        samples.sort_by(|a, b| a.id.cmp(&b.id));
        samples
    };
    let direct = tmp.path().join("direct");
    let a = args(&[]);
    let out = run(
        &direct,
        &config,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let batched = tmp.path().join("batched");
    let a = args(&["--batch", "--wait", "--poll-secs", "0", "--json"]);
    let out = run(
        &batched,
        &config,
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["collect"]["samples_added"], 3, "{summary}");
    assert_eq!(
        server.state.lock().unwrap().chat_requests,
        3,
        "the direct run's only"
    );
    let samples = stored(&batched);
    assert_eq!(samples.len(), 3);
    assert_eq!(samples, stored(&direct));
    assert_eq!(snapshot(&batched, "-").1, snapshot(&direct, "-").1);
}

#[test]
fn an_azure_batch_uses_its_base_url_and_api_key_and_a_cancelled_batch_gives_back_what_it_did_not_answer(
) {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "auth = \"azure\"\n");
    let server = FakeBatchApi::start("completed", 0);
    let endpoint = format!(
        "{}/openai/deployments/judge-m/chat/completions?api-version=2024-10-21",
        server.url
    );
    let ws = workspace(tmp.path(), "ws", &TAGS);
    let out = run(&ws, &config, &judge_args(&endpoint, &["--batch"]));
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&ws, &config, &["batch", "cancel"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("cancelling"), "{}", text(&out));
    let out = run(
        &ws,
        &config,
        &["batch", "collect", "--wait", "--poll-secs", "0", "--json"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Cancelled: "late" unanswered and "boom" failed go back; the other four are stored.
    assert_eq!(
        (
            summary["replies_stored"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(4), Some(2))
    );
    assert!(
        summary["failures"].to_string().contains("ended cancelled"),
        "{summary}"
    );
    // A batch never sent (a file run) is cancelled here alone; its requests go back too.
    let file = tmp.path().join("in.jsonl");
    let out = run(
        &ws,
        &config,
        &judge_args(&endpoint, &["--batch-file", file.to_str().unwrap()]),
    );
    assert!(out.status.success(), "{}", text(&out));
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 2);
    assert!(lines.contains("\"url\":\"/chat/completions\""), "{lines}");
    let out = run(&ws, &config, &["batch", "cancel", "2"]);
    assert!(
        text(&out).contains("2 request(s) will be sent again"),
        "{}",
        text(&out)
    );
    let out = run(&ws, &config, &judge_args(&endpoint, &[]));
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(server.state.lock().unwrap().chat_requests, 2);
    assert_eq!(snapshot(&ws, "judge-m").0.len(), 6);
}

#[test]
fn a_batch_that_fails_validation_gives_back_all_its_requests_with_the_apis_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "");
    let server = FakeBatchApi::start("completed", 0);
    server.state.lock().unwrap().refuse_next_batch = true;
    let endpoint = server.endpoint();
    let ws = workspace(tmp.path(), "ws", &TAGS);
    let out = run(
        &ws,
        &config,
        &judge_args(
            &endpoint,
            &["--batch", "--wait", "--poll-secs", "0", "--json"],
        ),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["collect"]["failed"], 6);
    assert!(
        summary["collect"]["failures"][0]
            .as_str()
            .unwrap()
            .contains("token_limit_exceeded: Enqueued token limit reached"),
        "{summary}"
    );
    let status = run(&ws, &config, &["batch", "status"]);
    assert!(text(&status).contains("6 failed"), "{}", text(&status));
    // All six go again in the next batch.
    let out = run(
        &ws,
        &config,
        &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "boom fails once: {}",
        text(&out)
    );
    assert_eq!(server.uploaded_keys().len(), 12);
    assert_eq!(snapshot(&ws, "judge-m").0.len(), 5);
}

#[test]
fn a_judge_batch_on_a_team_server_stores_what_it_stores_on_a_directory() {
    let Some(server_db) = super::common::ServerDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = config(tmp.path(), "");
    let dir = workspace(tmp.path(), "dir", &TAGS);
    let url = Path::new(&server_db.url);
    let data = tmp.path().join("dir.jsonl");
    super::common::vital_env_ok(url, &["import", data.to_str().unwrap()], &server_db.env());
    let export = |ws: &Path, name: &str| {
        let out = tmp.path().join(name);
        super::common::vital_env_ok(
            ws,
            &[
                "export",
                "--format",
                "scores",
                "--by",
                "judge",
                "--out",
                out.to_str().unwrap(),
                "-q",
            ],
            &server_db.env(),
        );
        std::fs::read_to_string(out).unwrap()
    };
    let mut exports = Vec::new();
    for (ws, name) in [(dir.as_path(), "a.jsonl"), (url, "b.jsonl")] {
        // One fake API each: each sees its own first failure of "boom".
        let api = FakeBatchApi::start("completed", 1);
        let endpoint = api.endpoint();
        let out = vital_cmd(
            ws,
            &config,
            &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
        )
        .envs(server_db.env())
        .output()
        .unwrap();
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let again = vital_cmd(
            ws,
            &config,
            &judge_args(&endpoint, &["--batch", "--wait", "--poll-secs", "0"]),
        )
        .envs(server_db.env())
        .output()
        .unwrap();
        assert!(again.status.success(), "{}", text(&again));
        assert_eq!(api.uploaded_keys().len(), 7);
        exports.push(export(ws, name));
    }
    assert_eq!(exports[0].lines().count(), 6);
    assert_eq!(exports[0], exports[1], "the same scores");
}
