//! `vital generate`, `judge` and `fetch-images` against fake servers on 127.0.0.1 (a small
//! HTTP/1.1 server on std threads in this file): good replies, 429 with Retry-After (and one that
//! asks for days), 500, a reply slower than the timeout, malformed JSON, an empty choice list,
//! replies larger than vital reads, bad credentials, and `.tar.gz` packages with a member that
//! tries to escape. Never a real host.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::write;
use vital::store::{LlmOutcome, StoredSample, Workspace};

const KEY: &str = "sk-test-SECRET-0123456789abcdefXYZ";

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    headers: HashMap<String, String>,
    body: String,
    at: Instant,
}

enum Reply {
    Status(u16, Vec<(&'static str, String)>, Vec<u8>),
    Slow(Duration),
    /// These bytes as the whole response (a head may claim more than follows).
    Raw(Vec<u8>),
    /// A chunked 200 body that goes on until the client hangs up (or 1 GiB).
    Endless,
}

fn ok_json(body: Value) -> Reply {
    Reply::Status(
        200,
        vec![("content-type", "application/json".into())],
        body.to_string().into_bytes(),
    )
}

fn chat(content: &str) -> Reply {
    ok_json(json!({
        "id": "x", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}
    }))
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A fake server: `handler(request, n)` answers the n-th (0-based) request that carries the same
/// routing tag (see [`tag_of`]).
struct FakeServer {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeServer {
    fn start(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (seen, handler) = (seen2.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &seen, &*handler));
            }
        });
        FakeServer { url, seen }
    }

    /// The base URL vital is given as `--endpoint` (it appends `/chat/completions`).
    fn endpoint(&self) -> String {
        format!("{}/v1", self.url)
    }

    fn count(&self, tag: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| tag_of(s) == tag)
            .count()
    }

    fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn times(&self, tag: &str) -> Vec<Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| tag_of(s) == tag)
            .map(|s| s.at)
            .collect()
    }
}

/// Requests are routed by a `[tag]` in their body (figure captions, answers), else by path.
fn tag_of(seen: &Seen) -> String {
    if let Some(start) = seen.body.find("[tag:") {
        let rest = &seen.body[start + 5..];
        return rest[..rest.find(']').unwrap()].to_string();
    }
    seen.path.clone()
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>, handler: &Handler) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
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
    let request = Seen {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let n = {
        let mut seen = seen.lock().unwrap();
        let n = seen
            .iter()
            .filter(|s| tag_of(s) == tag_of(&request))
            .count();
        seen.push(request.clone());
        n
    };
    let mut stream = stream;
    match handler(&request, n) {
        Reply::Slow(d) => std::thread::sleep(d),
        Reply::Raw(bytes) => {
            let _ = stream.write_all(&bytes);
        }
        Reply::Endless => {
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                        transfer-encoding: chunked\r\n\r\n";
            let chunk = [
                format!("{:x}\r\n", 64 << 10).into_bytes(),
                vec![b' '; 64 << 10],
                b"\r\n".to_vec(),
            ]
            .concat();
            if stream.write_all(head.as_bytes()).is_ok() {
                for _ in 0..(1 << 14) {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
            }
        }
        Reply::Status(code, headers, body) => {
            let mut head = format!(
                "HTTP/1.1 {code} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    }
}

/// Runs vital with a test config (tiny backoff), the API key in the environment.
fn vital_llm(ws: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vital"))
        .arg("-w")
        .arg(ws)
        .args(args)
        .env("VITAL_CONFIG", config)
        .env_remove("VITAL_WORKSPACE")
        .env_remove("VITAL_LLM_ENDPOINT")
        .env_remove("VITAL_LLM_MODEL")
        .env("OPENAI_API_KEY", KEY)
        .output()
        .expect("the vital binary runs")
}

fn test_config(dir: &Path, extra: &str) -> PathBuf {
    write(
        dir,
        "config.toml",
        &format!(
            "[llm]\nretry_base_ms = 10\nretry_max_secs = 0.05\nmax_retries = 2\nconcurrency = 4\n\
             requests_per_minute = 0\ntokens_per_minute = 0\nprice_prompt_per_1k = 0.01\n{extra}"
        ),
    )
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The requests a `--dry-run` printed, one JSON body a line.
fn printed_requests(out: &Output) -> Vec<Value> {
    text(out)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `vital generate` on the figures listed in `input`, their files in `images`, then `more`.
fn generate_args<'a>(input: &'a Path, images: &'a Path, more: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "generate",
        "--input",
        input.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    args
}

fn assert_no_key(out: &Output, ws: &Path) {
    let (stdout, stderr) = text(out);
    assert!(
        !stdout.contains(KEY) && !stderr.contains(KEY),
        "key leaked:\n{stdout}\n{stderr}"
    );
    assert!(
        !stderr.contains("0123456789abcdef"),
        "key piece leaked: {stderr}"
    );
    for entry in std::fs::read_dir(ws).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "key written to {}",
                path.display()
            );
        }
    }
}

/// A real 1×1 grey PNG: vital sends only files that decode as images.
const PNG: &[u8] = b"\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00\x3a\x7e\x9b\x55\x00\x00\x00\x0a\x49\x44\x41\x54\x78\x9c\x63\x68\x00\x00\x00\x82\x00\x81\x77\xcd\x72\xb6\x00\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";

const GOOD: &str = "User: What modality is shown?\nAssistant: A CT scan of the chest.\n\
                    User: Is there a mass?\nAssistant: Yes, a mass in the left lower lobe.";

/// Figures whose captions carry the tag the fake server routes on.
fn figures(dir: &Path, tags: &[&str]) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut lines = String::new();
    for tag in tags {
        std::fs::write(images.join(format!("{tag}.png")), PNG).unwrap();
        lines.push_str(
            &json!({
                "pair_id": tag, "fig_caption": format!("Axial CT of the chest [tag:{tag}]."),
                "fig_label": "Figure 1",
                "in_text_mention": [{"tokens": "As shown in Fig. 1 .", "entities": []}],
                "domain": {"ct_scan": true, "mri": false}
            })
            .to_string(),
        );
        lines.push('\n');
    }
    write(dir, "figures.jsonl", &lines)
}

fn demos(dir: &Path) -> PathBuf {
    write(
        dir,
        "demos.json",
        &json!([
            {"id": 1, "imgs": "a.jpg", "fig_caption": "CT of the head.", "pair_id": "P1",
             "domain": {"ct_scan": true, "mri": false},
             "in_text_mention": [{"tokens": "Fig 1 shows a bleed .", "entities": []}],
             "conversations": [{"from": "human", "value": "What modality?"}, {"from": "gpt", "value": "CT."}]},
            {"id": 2, "imgs": "b.jpg", "fig_caption": "MRI of the knee.", "pair_id": "P2",
             "domain": {"ct_scan": false, "mri": true}, "in_text_mention": null,
             "conversations": [{"from": "human", "value": "Which joint?"}, {"from": "gpt", "value": "The knee."}]}
        ])
        .to_string(),
    )
}

fn db(ws: &Path) -> Workspace {
    Workspace::open_existing(ws).unwrap()
}

/// Every stored sample, in import order.
fn samples(ws: &Workspace) -> Vec<StoredSample> {
    ws.sample_keys()
        .unwrap()
        .into_iter()
        .map(|key| ws.load_sample(key).unwrap().unwrap())
        .collect()
}

#[test]
fn generate_retries_parses_keeps_failures_resumes_and_never_leaks_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "");
    let tags = [
        "ok",
        "r429",
        "r500",
        "slow",
        "malformed",
        "empty",
        "junk",
        "down",
    ];
    let input = figures(tmp.path(), &tags);
    let demos = demos(tmp.path());
    let server = FakeServer::start(|req, n| {
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        match (tag_of(req).as_str(), n) {
            ("r429", 0) => Reply::Status(
                429,
                vec![("retry-after", "1".into())],
                b"slow down".to_vec(),
            ),
            ("r500", 0) => Reply::Status(500, vec![], b"oops".to_vec()),
            ("slow", 0) => Reply::Slow(Duration::from_secs(3)),
            ("malformed", 0) => Reply::Status(200, vec![], b"{\"choices\": [".to_vec()),
            ("empty", 0) => ok_json(json!({"choices": []})),
            ("junk", _) => chat("I am sorry, I cannot describe medical images."),
            // A server that echoes the credentials in its errors: they must not reach the user.
            ("down", _) => {
                Reply::Status(503, vec![], format!("unavailable for {auth}").into_bytes())
            }
            _ => chat(GOOD),
        }
    });
    let endpoint = server.endpoint();
    let images = tmp.path().join("images");
    let args = generate_args(
        &input,
        &images,
        &[
            "--demos",
            demos.to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--model",
            "fake-vlm",
            "--timeout",
            "1",
            "--json",
        ],
    );
    let out = vital_llm(&ws, &config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "partial: one failed, one unparseable\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["samples_added"], 6, "{summary:#}");
    assert_eq!(summary["unparseable"], 1);
    assert_eq!(summary["failed"], 1);
    assert_eq!(
        summary["prompt_tokens"], 700,
        "usage of the 7 answered requests"
    );
    assert!(summary["cost_estimate"].as_f64().unwrap() > 0.0);
    assert_eq!(
        summary["demonstrations"].as_array().unwrap().len(),
        2,
        "one per domain"
    );
    // Each retry happened, server-side.
    for (tag, expected) in [
        ("ok", 1),
        ("r429", 2),
        ("r500", 2),
        ("slow", 2),
        ("malformed", 2),
        ("empty", 2),
        ("junk", 1),
        ("down", 3),
    ] {
        assert_eq!(server.count(tag), expected, "{tag}");
    }
    let t = server.times("r429");
    assert!(
        t[1] - t[0] >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        t[1] - t[0]
    );
    // The request carried the bearer key, the system text, the demos and the image.
    let seen = server.seen.lock().unwrap().clone();
    let first = seen.iter().find(|s| tag_of(s) == "ok").unwrap();
    assert_eq!(first.headers["authorization"], format!("Bearer {KEY}"));
    let body: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(body["model"], "fake-vlm");
    let parts = body["messages"][1]["content"].as_array().unwrap();
    assert!(parts[0]["text"]
        .as_str()
        .unwrap()
        .contains("MRI of the knee."));
    assert!(parts[1]["image_url"]["url"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    // Stored: rounds parsed; the unusable reply kept with its reason.
    let conn = db(&ws);
    let generated: Vec<StoredSample> = samples(&conn)
        .into_iter()
        .filter(|s| s.sample.id.starts_with("gen-ok-"))
        .collect();
    let rounds: usize = generated.iter().map(|s| s.round_ids.len()).sum();
    assert_eq!(rounds, 2);
    let (caption, domains) = (&generated[0].sample.caption, &generated[0].sample.domains);
    assert!(caption.contains("Axial CT") && domains.iter().any(|d| d.contains("ct_scan")));
    let reason: String = conn
        .llm_ledger_entries()
        .unwrap()
        .into_iter()
        .find(|e| e.subject == "junk" && e.outcome == LlmOutcome::Unparseable)
        .and_then(|e| e.reason)
        .unwrap();
    assert!(reason.contains("no `User:`"), "{reason}");
    drop(conn);
    assert!(
        stderr.contains("down") && stderr.contains("503"),
        "failure reported: {stderr}"
    );
    assert!(stderr.contains("[redacted]"), "{stderr}");
    assert_no_key(&out, &ws);

    // Resume: only the failed request is sent again; then a rerun sends nothing.
    let server2 = FakeServer::start(|_, _| chat(GOOD));
    let endpoint2 = server2.endpoint();
    let mut args2 = args.to_vec();
    args2[8] = &endpoint2;
    let out = vital_llm(&ws, &config, &args2);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(server2.total(), 1, "only `down` is sent again");
    assert_eq!(server2.count("down"), 1);
    let out = vital_llm(&ws, &config, &args2);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server2.total(), 1, "a finished job sends nothing");
    let summary: Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(summary["skipped_done_before"], 8);
    assert_no_key(&out, &ws);
}

#[test]
fn generate_two_answers_and_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "");
    let input = figures(tmp.path(), &["a", "b", "c"]);
    let server = FakeServer::start(|_, _| {
        chat(
            "User: Is the lesion solid?\nAnswer 1: Yes, it is solid.\nAnswer 2: It looks cystic.\n\
              User: How many lesions?\nAnswer 1: One.\nAnswer 2: Two.",
        )
    });
    let endpoint = server.endpoint();
    let images = tmp.path().join("images");
    let base = generate_args(
        &input,
        &images,
        &[
            "--answers",
            "2",
            "--endpoint",
            &endpoint,
            "--model",
            "m",
            "--limit",
            "2",
        ],
    );
    // Dry run: the exact requests on stdout, nothing sent, no workspace created.
    let mut dry = base.to_vec();
    dry.push("--dry-run");
    let out = vital_llm(&ws, &config, &dry);
    assert!(out.status.success(), "{:?}", text(&out));
    let lines = printed_requests(&out);
    assert_eq!(lines.len(), 2, "--limit 2");
    assert!(lines[0]["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Answer 2:"));
    assert_eq!(server.total(), 0);
    assert!(!ws.exists());

    let out = vital_llm(&ws, &config, &base);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(server.total(), 2);
    let conn = db(&ws);
    let answers: i64 = conn.stats().unwrap().answers;
    assert_eq!(answers, 8, "2 figures × 2 rounds × 2 answers");
    // The --images dir is registered so the review screen finds the figures.
    let dirs = conn.image_dirs().unwrap().len();
    assert_eq!(dirs, 1);
    drop(conn);
    // The dry run now knows these are done and prints nothing.
    let out = vital_llm(&ws, &config, &dry);
    assert_eq!(text(&out).0, "");
}

/// A workspace with two figures, each one round with two answers; the second round's answer 1
/// carries `[tag:junk]` so the fake judge can give it an unusable reply.
fn judged_workspace(tmp: &Path) -> PathBuf {
    let ws = tmp.join("ws");
    let data = write(
        tmp,
        "cands.jsonl",
        &[
            json!({"id": "f1", "image": "f1.png", "fig_caption": "CT.", "in_text_mention": "Fig 1.", "domain": "ct_scan",
                   "rounds": [{"question": "What modality?", "answers": ["CT [tag:a1].", "MRI [tag:a2]."]}]}),
            json!({"id": "f2", "fig_caption": "MRI.", "domain": "mri",
                   "rounds": [{"question": "Which joint?", "answers": ["Knee [tag:junk].", "Hip [tag:b2]."]}]}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n"),
    );
    std::fs::write(tmp.join("f1.png"), PNG).unwrap();
    super::common::vital_ok(&ws, &["import", data.to_str().unwrap()]);
    ws
}

#[test]
fn judge_scores_unscored_answers_once_single_and_pairwise() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = judged_workspace(tmp.path());
    let config = test_config(tmp.path(), "auth = \"azure\"\n");
    let server = FakeServer::start(|req, _| {
        if req.body.contains("two scores") {
            chat("7 3\nThe first is right.")
        } else if tag_of(req) == "junk" {
            chat("A fine answer overall.")
        } else {
            chat("8\nAccurate and grounded in the image.")
        }
    });
    let endpoint = server.endpoint();
    let args = [
        "judge",
        "--endpoint",
        &endpoint,
        "--model",
        "judge-m",
        "--json",
    ];
    let out = vital_llm(&ws, &config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "one unparseable\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["scores_added"], 3);
    assert_eq!(summary["unparseable"], 1);
    assert_eq!(server.total(), 4);
    let seen = server.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].headers.get("api-key").map(String::as_str),
        Some(KEY),
        "azure auth header"
    );
    assert!(!seen[0].headers.contains_key("authorization"));
    let with_image = seen
        .iter()
        .filter(|s| s.body.contains("data:image/png;base64,"))
        .count();
    assert_eq!(with_image, 2, "f1's answers carry the image; f2 has none");
    let conn = db(&ws);
    let ct_answer: i64 = samples(&conn)
        .iter()
        .flat_map(|s| {
            s.sample
                .rounds
                .iter()
                .zip(&s.answer_ids)
                .flat_map(|(round, ids)| round.answers.iter().zip(ids))
                .filter(|(text, _)| text.starts_with("CT"))
                .map(|(_, id)| *id)
                .collect::<Vec<_>>()
        })
        .next()
        .unwrap();
    let score: f64 = conn
        .model_scores_by_judge("judge-m")
        .unwrap()
        .into_iter()
        .find(|(answer, _)| *answer == ct_answer)
        .map(|(_, score)| score)
        .unwrap();
    assert_eq!(score, 8.0);
    drop(conn);
    assert_no_key(&out, &ws);
    // Rerun: nothing left to send (the unparseable reply is kept, not re-asked).
    let out = vital_llm(&ws, &config, &args);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert_eq!(server.total(), 4);
    // --retry-unparseable asks again for that one.
    let mut again = args.to_vec();
    again.push("--retry-unparseable");
    vital_llm(&ws, &config, &again);
    assert_eq!(server.total(), 5);

    // Pairwise under another name: one request per round, two scores each.
    let pair_args = [
        "judge",
        "--endpoint",
        &endpoint,
        "--model",
        "judge-m",
        "--judge-name",
        "pj",
        "--pairwise",
        "--json",
    ];
    let out = vital_llm(&ws, &config, &pair_args);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(server.total(), 7);
    let conn = db(&ws);
    let scores: Vec<f64> = conn
        .model_scores_by_judge("pj")
        .unwrap()
        .into_iter()
        .map(|(_, score)| score)
        .collect();
    assert_eq!(scores, vec![7.0, 3.0, 7.0, 3.0]);
    drop(conn);
    vital_llm(&ws, &config, &pair_args);
    assert_eq!(server.total(), 7, "pairwise rerun sends nothing");
}

#[test]
fn a_second_judge_with_the_same_model_scores_everything_again() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = judged_workspace(tmp.path());
    let config = test_config(tmp.path(), "");
    let server = FakeServer::start(|_, _| chat("6\nFine."));
    let endpoint = server.endpoint();
    let judge = |name: &str| {
        let out = vital_llm(
            &ws,
            &config,
            &[
                "judge",
                "--endpoint",
                &endpoint,
                "--model",
                "same-m",
                "--judge-name",
                name,
                "--json",
            ],
        );
        assert!(out.status.success(), "{name}: {:?}", text(&out));
        serde_json::from_str::<Value>(&text(&out).0).unwrap()
    };
    let a = judge("A");
    assert_eq!(a["scores_added"], 4);
    assert_eq!(server.total(), 4);
    let b = judge("B");
    assert_eq!(b["skipped_done_before"], 0, "{b}");
    assert_eq!(b["scores_added"], 4, "{b}");
    assert_eq!(server.total(), 8, "B sends its own requests");
    let conn = db(&ws);
    for name in ["A", "B"] {
        let n = conn.model_scores_by_judge(name).unwrap().len();
        assert_eq!(n, 4, "scores of {name}");
    }
    drop(conn);
    // Each judge resumes on its own: nothing left for either.
    judge("A");
    judge("B");
    assert_eq!(server.total(), 8);
}

#[test]
fn a_redirect_is_not_followed_so_the_key_never_reaches_another_server() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = judged_workspace(tmp.path());
    let config = test_config(tmp.path(), "auth = \"azure\"\n");
    let elsewhere = FakeServer::start(|_, _| chat("8\nStolen."));
    let target = format!("{}/collect", elsewhere.url);
    let server = FakeServer::start(move |_, _| {
        Reply::Status(307, vec![("location", target.clone())], b"moved".to_vec())
    });
    let endpoint = server.endpoint();
    let out = vital_llm(
        &ws,
        &config,
        &["judge", "--endpoint", &endpoint, "--model", "j", "--json"],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("redirect") || stderr.contains("redirect"),
        "the redirect is reported\n{stdout}\n{stderr}"
    );
    assert!(server.total() > 0);
    assert_eq!(elsewhere.total(), 0, "nothing reaches the other server");
    assert_no_key(&out, &ws);
}

#[test]
fn bad_credentials_stop_the_run_without_showing_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = judged_workspace(tmp.path());
    let config = test_config(tmp.path(), "");
    let server = FakeServer::start(|req, _| {
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        Reply::Status(
            401,
            vec![],
            format!("{{\"error\": \"Incorrect API key provided: {auth}\"}}").into_bytes(),
        )
    });
    let endpoint = server.endpoint();
    let out = vital_llm(
        &ws,
        &config,
        &[
            "judge",
            "--endpoint",
            &endpoint,
            "--model",
            "j",
            "--concurrency",
            "1",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refused the credentials") && stderr.contains("401"),
        "{stderr}"
    );
    assert!(
        server.total() <= 2,
        "the run stops at the first 401 ({} sent)",
        server.total()
    );
    assert_no_key(&out, &ws);
}

/// A `.tar.gz` with the figure, an entry that tries to leave the package, and a link.
fn package() -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let mut add = |name: &str, kind: tar::EntryType, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    add(
        "PMC1/fig1.jpg",
        tar::EntryType::Regular,
        b"\xff\xd8\xff\xe0 a jpeg figure",
    );
    add(
        "../escape.jpg",
        tar::EntryType::Regular,
        b"\xff\xd8\xff\xe0 evil",
    );
    add("PMC1/link.jpg", tar::EntryType::Symlink, b"");
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn fetch_images_extracts_from_packages_refuses_escapes_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "fetch_max_image_mb = 0.01\n");
    let pkg = package();
    let server = FakeServer::start(move |req, n| match req.path.as_str() {
        "/pkg1.tar.gz" => Reply::Status(
            200,
            vec![("content-type", "application/x-gzip".into())],
            pkg.clone(),
        ),
        "/img2.png" if n == 0 => Reply::Status(503, vec![("retry-after", "0".into())], vec![]),
        "/img2.png" => Reply::Status(
            200,
            vec![("content-type", "image/png".into())],
            PNG.to_vec(),
        ),
        "/page.html" => Reply::Status(
            200,
            vec![("content-type", "text/html".into())],
            b"<html>".to_vec(),
        ),
        "/big.png" => Reply::Status(
            200,
            vec![("content-type", "image/png".into())],
            [PNG, &[0u8; 20_000]].concat(),
        ),
        _ => Reply::Status(404, vec![], vec![]),
    });
    let u = &server.url;
    let list = write(
        tmp.path(),
        "urls.jsonl",
        &[
            json!({"pair_id": "F1", "pmc_tar_url": format!("{u}/pkg1.tar.gz"), "im_path": "PMC1/fig1.jpg"}),
            json!({"pair_id": "F2", "url": format!("{u}/img2.png")}),
            json!({"pair_id": "F3", "pmc_tar_url": format!("{u}/pkg1.tar.gz"), "im_path": "../escape.jpg"}),
            json!({"pair_id": "F4", "pmc_tar_url": format!("{u}/pkg1.tar.gz"), "im_path": "escape.jpg"}),
            json!({"pair_id": "F5", "pmc_tar_url": format!("{u}/pkg1.tar.gz"), "im_path": "PMC1/link.jpg"}),
            json!({"pair_id": "F6", "url": format!("{u}/page.html")}),
            json!({"pair_id": "F7", "url": format!("{u}/big.png")}),
            json!({"pair_id": "../F8", "url": format!("{u}/img2.png")}),
        ]
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n"),
    );
    let dir = tmp.path().join("figs");
    let args = [
        "fetch-images",
        "--urls",
        list.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
        "--concurrency",
        "3",
        "--json",
    ];
    let out = vital_llm(&ws, &config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["downloaded"], 2, "{summary:#}");
    assert_eq!(summary["failed"], 6);
    let failures = summary["failures"].to_string();
    for needle in [
        "F3: member path `../escape.jpg` leaves the package",
        "F4: package member `../escape.jpg` leaves",
        "F5: package member `PMC1/link.jpg` is not a regular file",
        "F6:",
        "text/html",
        "F7:",
        "over the limit",
        "not a plain file name",
    ] {
        assert!(failures.contains(needle), "{needle} in {failures}");
    }
    assert_eq!(
        std::fs::read(dir.join("F1.jpg")).unwrap(),
        b"\xff\xd8\xff\xe0 a jpeg figure"
    );
    assert_eq!(std::fs::read(dir.join("F2.png")).unwrap(), PNG);
    assert!(!tmp.path().join("escape.jpg").exists() && !dir.join("escape.jpg").exists());
    assert!(!tmp.path().join("F8.png").exists());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, vec!["F1.jpg", "F2.png"], "no temp files left");
    assert_eq!(
        server.count("/pkg1.tar.gz"),
        1,
        "one package download serves every figure in it"
    );
    assert_eq!(server.count("/img2.png"), 2, "503 retried");
    let conn = db(&ws);
    let registered: String = conn.image_dirs().unwrap()[0].display().to_string();
    assert!(registered.ends_with("figs"));
    drop(conn);
    // Rerun: present files are skipped, nothing downloaded again for them.
    let out = vital_llm(&ws, &config, &args);
    let summary: Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(summary["already_present"], 2);
    assert_eq!(summary["downloaded"], 0);
    assert_eq!(server.count("/img2.png"), 2);
}

#[test]
fn a_killed_generate_run_continues_without_repeating_finished_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "");
    let input = figures(tmp.path(), &["a", "b", "c"]);
    let images = tmp.path().join("images");
    let server = FakeServer::start(|req, _| match tag_of(req).as_str() {
        "c" => Reply::Slow(Duration::from_secs(20)),
        _ => chat(GOOD),
    });
    let endpoint = server.endpoint();
    let args = |endpoint: &str| {
        vec![
            "generate".to_string(),
            "--input".into(),
            input.to_str().unwrap().into(),
            "--images".into(),
            images.to_str().unwrap().into(),
            "--endpoint".into(),
            endpoint.into(),
            "--model".into(),
            "m".into(),
            "--concurrency".into(),
            "1".into(),
            "--timeout".into(),
            "30".into(),
        ]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_vital"))
        .arg("-w")
        .arg(&ws)
        .args(args(&endpoint))
        .env("VITAL_CONFIG", &config)
        .env_remove("VITAL_WORKSPACE")
        .env("OPENAI_API_KEY", KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while server.count("c") == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "c was never requested"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();
    assert_eq!((server.count("a"), server.count("b")), (1, 1));

    let server2 = FakeServer::start(|_, _| chat(GOOD));
    let endpoint2 = server2.endpoint();
    let args2 = args(&endpoint2);
    let args2: Vec<&str> = args2.iter().map(String::as_str).collect();
    let out = vital_llm(&ws, &config, &args2);
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(
        server2.total(),
        1,
        "only the request in flight at the kill is sent again"
    );
    assert_eq!(server2.count("c"), 1);
    let samples: i64 = db(&ws).stats().unwrap().samples;
    assert_eq!(samples, 3);
}

/// The review screen fetches a figure that is only in the URL list, in the background.
#[test]
fn review_screen_downloads_a_missing_figure_from_the_url_list() {
    if !super::common::tmux_available() {
        return;
    }
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/demo/images/cxr_normal.png"
    ))
    .unwrap();
    let server = FakeServer::start(move |_, _| {
        Reply::Status(200, vec![("content-type", "image/png".into())], png.clone())
    });
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let data = write(
        tmp.path(),
        "c.jsonl",
        r#"{"id": "remote-1", "image": "remote-1.png", "fig_caption": "A chest radiograph.", "rounds": [{"question": "View?", "answers": ["Frontal.", "Lateral."]}]}"#,
    );
    let urls = write(
        tmp.path(),
        "urls.jsonl",
        &format!(
            r#"{{"pair_id": "remote-1", "url": "{}/remote-1.png"}}"#,
            server.url
        ),
    );
    for file in [&data, &urls] {
        let out = Command::new(env!("CARGO_BIN_EXE_vital"))
            .args([
                "-w",
                ws.to_str().unwrap(),
                "import",
                file.to_str().unwrap(),
                "--quiet",
            ])
            .env("VITAL_CONFIG", "")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tmux = crate::review::Tmux::start(&ws, "fetcher");
    tmux.wait_for("reviewer fetcher", "the screen");
    let start = Instant::now();
    while !ws.join("images/remote-1.png").is_file() && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        ws.join("images/remote-1.png").is_file(),
        "downloaded into the cache; screen:\n{}",
        tmux.screen()
    );
    assert_eq!(server.total(), 1);
    let screen = tmux.screen();
    assert!(
        !screen.contains("image not found") && !screen.contains("download failed"),
        "{screen}"
    );
    tmux.send("q");
    tmux.wait_gone();
}

/// The private file the hostile samples below point at.
const SECRET: &str = "root:x:0:0:SECRET-PASSWORD-LINE";

/// A data folder with one good figure and figures whose image references lead to a private file
/// (absolute, `..`, a link in the image folder), or to a file in the folder that is no image.
fn hostile_images(tmp: &Path) -> (PathBuf, PathBuf) {
    let private = tmp.join("private");
    std::fs::create_dir_all(&private).unwrap();
    let secret = private.join("secret.txt");
    std::fs::write(&secret, SECRET).unwrap();
    let data = tmp.join("data");
    let images = data.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::write(images.join("good.png"), PNG).unwrap();
    std::fs::write(images.join("big.json"), format!("{{\"x\": \"{SECRET}\"}}")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&secret, images.join("link.png")).unwrap();
    (data, secret)
}

fn no_secret_sent(server: &FakeServer) {
    use base64::Engine;
    let secret64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    for seen in server.seen.lock().unwrap().iter() {
        assert!(
            !seen.body.contains(SECRET) && !seen.body.contains(&secret64[..20]),
            "a private file was sent: {}",
            &seen.body[..seen.body.len().min(300)]
        );
    }
}

/// Image references by tag: one good figure, then an absolute path, an escaping relative path,
/// a link out of the image folder and a file that is no image.
fn hostile_refs(secret: &Path) -> [(&'static str, String); 5] {
    [
        ("good", "good.png".to_string()),
        ("abs", secret.display().to_string()),
        ("rel", "../../private/secret.txt".to_string()),
        ("link", "link.png".to_string()),
        ("json", "big.json".to_string()),
    ]
}

#[test]
fn judge_and_show_never_read_a_file_outside_the_image_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, secret) = hostile_images(tmp.path());
    let ws = tmp.path().join("ws");
    let refs = hostile_refs(&secret);
    let lines: Vec<String> = refs
        .iter()
        .map(|(tag, image)| {
            json!({"id": format!("s-{tag}"), "image": image, "fig_caption": "CT.",
                   "rounds": [{"question": "What?", "answers": [format!("A [tag:{tag}].")]}]})
            .to_string()
        })
        .collect();
    let file = write(&data, "cands.jsonl", &lines.join("\n"));
    super::common::vital_ok(&ws, &["import", file.to_str().unwrap()]);
    let config = test_config(tmp.path(), "");
    let server = FakeServer::start(|_, _| chat("8\nFine."));
    let endpoint = server.endpoint();
    let out = vital_llm(
        &ws,
        &config,
        &["judge", "--endpoint", &endpoint, "--model", "m"],
    );
    let (stdout, stderr) = text(&out);
    no_secret_sent(&server);
    assert_eq!(server.count("good"), 1, "{stdout}\n{stderr}");
    for tag in ["abs", "rel", "link", "json"] {
        assert_eq!(
            server.count(tag),
            0,
            "no text-only request in place of a refused image ({tag})"
        );
        assert!(
            stdout.contains(&format!("image refused, not sent: sample s-{tag}")),
            "{tag} reported: {stdout}"
        );
    }
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(server.seen.lock().unwrap()[0]
        .body
        .contains("data:image/png;base64,"));
    // `vital show` refuses the same references.
    for tag in ["abs", "rel", "link"] {
        let shown = super::common::vital_ok(&ws, &["show", &format!("s-{tag}"), "--no-image"]);
        assert!(shown.contains("(refused: outside"), "{tag}: {shown}");
    }
    let shown = super::common::vital_ok(&ws, &["show", "s-good", "--no-image"]);
    assert!(shown.contains("good.png"), "{shown}");
}

#[test]
fn generate_never_sends_a_file_outside_the_image_folders_or_one_that_is_no_image() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, secret) = hostile_images(tmp.path());
    let images = data.join("images");
    let ws = tmp.path().join("ws");
    let refs = hostile_refs(&secret);
    let lines: Vec<String> = refs
        .iter()
        .map(|(tag, image)| {
            json!({"pair_id": format!("f-{tag}"), "image": image,
                   "fig_caption": format!("CT [tag:{tag}].")})
            .to_string()
        })
        .collect();
    let input = write(tmp.path(), "figs.jsonl", &lines.join("\n"));
    let config = test_config(tmp.path(), "");
    let server = FakeServer::start(|_, _| chat(GOOD));
    let endpoint = server.endpoint();
    let out = vital_llm(
        &ws,
        &config,
        &generate_args(
            &input,
            &images,
            &[
                "--demos",
                "workspace",
                "--endpoint",
                &endpoint,
                "--model",
                "m",
                "--json",
            ],
        ),
    );
    let (stdout, stderr) = text(&out);
    no_secret_sent(&server);
    assert_eq!(server.count("good"), 1, "{stdout}\n{stderr}");
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["images_refused"], 4, "{stdout}");
    for tag in ["abs", "rel", "link", "json"] {
        assert_eq!(server.count(tag), 0, "{tag} not sent");
        assert!(
            summary["refused_images"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r.as_str().unwrap().contains(&format!("figure f-{tag}:"))),
            "{tag} reported: {stdout}"
        );
    }
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
}

#[test]
fn a_key_echoed_in_a_successful_reply_is_neither_stored_nor_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = judged_workspace(tmp.path());
    let config = test_config(tmp.path(), "");
    let server = FakeServer::start(|req, _| {
        if tag_of(req) == "junk" {
            chat(&format!("You sent the key {KEY}; no score."))
        } else {
            chat(&format!("8\nGood. (authenticated as {KEY})"))
        }
    });
    let endpoint = server.endpoint();
    for json in [false, true] {
        let mut args = vec![
            "judge",
            "--endpoint",
            &endpoint,
            "--model",
            "m",
            "--retry-unparseable",
        ];
        if json {
            args.push("--json");
        }
        let out = vital_llm(&ws, &config, &args);
        let (stdout, _) = text(&out);
        assert!(
            stdout.contains("[redacted]"),
            "the unparseable reply is listed: {stdout}"
        );
        assert_no_key(&out, &ws);
    }
}

#[test]
fn the_paper_preset_draws_demonstrations_per_request_as_turns_and_judges_round_one_with_the_rubric_in_the_user_message(
) {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "");
    let input = figures(tmp.path(), &["a", "b"]);
    let demos = demos(tmp.path());
    let images = tmp.path().join("images");
    let args = generate_args(
        &input,
        &images,
        &[
            "--demos",
            demos.to_str().unwrap(),
            "--preset",
            "paper",
            "--dry-run",
        ],
    );
    let out = vital_llm(&ws, &config, &args);
    assert!(out.status.success(), "{:?}", text(&out));
    let bodies = printed_requests(&out);
    assert_eq!(bodies.len(), 2);
    for body in &bodies {
        assert!(body.get("temperature").is_none(), "the endpoint's default");
        assert_eq!(body["max_tokens"], 4096);
        let roles: Vec<&str> = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect();
        // One CT and one MRI demonstration, each as its own turns, then the figure.
        assert_eq!(
            roles,
            ["system", "user", "assistant", "user", "assistant", "user"]
        );
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(system.contains("Do not copy specific facts"), "{system}");
        assert_eq!(
            body["messages"][2]["content"],
            "User: What modality?\nAssistant: CT."
        );
    }
    // Seeded: the same command sends the same requests (and resumes).
    assert_eq!(text(&vital_llm(&ws, &config, &args)).0, text(&out).0);
    let mut once = args.to_vec();
    once.extend(["--demo-draw", "once", "--per-prompt", "1"]);
    let out = vital_llm(&ws, &config, &once);
    let body: Value = serde_json::from_str(text(&out).0.lines().next().unwrap()).unwrap();
    assert_eq!(
        body["messages"].as_array().unwrap().len(),
        2,
        "choose-once stays"
    );

    // Judging the method's way: round 1 only, the rubric in the user message.
    let data = write(
        tmp.path(),
        "cands.jsonl",
        &json!({"id": "f1", "fig_caption": "CT.", "rounds": [
            {"question": "What modality?", "answers": ["CT.", "MRI."]},
            {"question": "Which side?", "answers": ["Left.", "Right."]}]})
        .to_string(),
    );
    super::common::vital_ok(&ws, &["import", data.to_str().unwrap()]);
    let judge = ["judge", "--model", "m", "--preset", "paper", "--dry-run"];
    let out = vital_llm(&ws, &config, &judge);
    assert!(out.status.success(), "{:?}", text(&out));
    let bodies = printed_requests(&out);
    assert_eq!(bodies.len(), 2, "the two answers of round 1 only");
    for body in &bodies {
        assert!(body.get("temperature").is_none());
        assert_eq!(body["max_tokens"], 4096);
        let system = body["messages"][0]["content"].as_str().unwrap();
        assert!(!system.contains("0 to 10"), "{system}");
        let user = body["messages"][1]["content"][0]["text"].as_str().unwrap();
        assert!(
            user.contains("0 to 10") && user.contains("Question: What modality?"),
            "{user}"
        );
    }
    let out = vital_llm(&ws, &config, &["judge", "--model", "m", "--dry-run"]);
    assert_eq!(
        text(&out).0.lines().count(),
        4,
        "every round without the preset"
    );
    // `--demos per-request`: the imported demonstrations, drawn per request.
    super::common::vital_ok(&ws, &["import", demos.to_str().unwrap()]);
    let out = vital_llm(
        &ws,
        &config,
        &generate_args(&input, &images, &["--demos", "per-request", "--dry-run"]),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let body: Value = serde_json::from_str(text(&out).0.lines().next().unwrap()).unwrap();
    assert_eq!(body["messages"].as_array().unwrap().len(), 6, "{body}");
    assert_eq!(
        body["temperature"], 0.7,
        "the preset alone changes the temperature"
    );
}

#[test]
fn pick_figures_draws_across_topic_clusters_leaves_out_gross_and_histology_and_feeds_generate() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let topics = [
        (
            "ct_scan",
            "Axial CT of the abdomen shows a hypodense liver lesion",
        ),
        (
            "mri",
            "Sagittal MRI of the knee shows an anterior cruciate ligament tear",
        ),
        (
            "chest_xray",
            "Frontal chest radiograph shows a right pleural effusion",
        ),
        (
            "histology",
            "Haematoxylin and eosin stained section of the liver",
        ),
        ("gross", "Gross photograph of the resected specimen"),
    ];
    let mut lines = String::new();
    for k in 0..25 {
        let (domain, caption) = topics[k % 5];
        let id = format!("PMC{k}_F1");
        std::fs::write(images.join(format!("{id}.png")), PNG).unwrap();
        lines.push_str(
            &json!({"pair_id": id, "fig_caption": format!("{caption}, patient {k}."),
                    "in_text_mention": [{"tokens": format!("{caption} ( Fig. 1 ) .")}],
                    "domain": {domain: true}})
            .to_string(),
        );
        lines.push('\n');
    }
    let input = write(tmp.path(), "figs.jsonl", &lines);
    let out = tmp.path().join("picked.jsonl");
    let pick = |extra: &[&str]| -> Value {
        let mut args = vec![
            "pick-figures",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend(extra);
        serde_json::from_str(&super::common::vital_ok(tmp.path(), &args)).unwrap()
    };
    let three = ["--k", "3", "--n", "3"];
    let summary = pick(&three);
    assert_eq!(summary["left_out_gross_histology"], 10);
    assert_eq!(summary["clustered"], 15);
    assert_eq!(summary["picked"], 3);
    assert_eq!(summary["per_cluster"], json!([1, 1, 1]));
    let picked: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut domains: Vec<String> = picked
        .iter()
        .map(|r| {
            r["domain"]
                .as_object()
                .unwrap()
                .keys()
                .next()
                .unwrap()
                .clone()
        })
        .collect();
    domains.sort();
    assert_eq!(domains, ["chest_xray", "ct_scan", "mri"], "one per topic");
    let first = std::fs::read_to_string(&out).unwrap();
    pick(&three);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), first, "seeded");
    let all = pick(&["--keep-gross-histology", "--k", "5", "--n", "100"]);
    assert_eq!(
        (all["clustered"].as_u64(), all["picked"].as_u64()),
        (Some(25), Some(25))
    );
    // The output is `vital generate`'s input.
    pick(&three);
    let config = test_config(tmp.path(), "");
    let ws = tmp.path().join("ws");
    let out = vital_llm(
        &ws,
        &config,
        &generate_args(&out, &images, &["--model", "m", "--dry-run"]),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(text(&out).0.lines().count(), 3);
}

/// The LLM commands on a team server: the same requests, the same scores as on a directory, and
/// a second run asks nothing (the ledger is on the server).
#[test]
fn judge_on_a_server_stores_what_it_stores_on_a_directory_and_resumes_from_the_server_ledger() {
    let Some(server_db) = super::common::ServerDb::create() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = judged_workspace(tmp.path());
    let files = server_db.files.path().to_str().unwrap().to_string();
    let url = Path::new(&server_db.url);
    let data = tmp.path().join("cands.jsonl");
    super::common::vital_env_ok(
        url,
        &["import", data.to_str().unwrap()],
        &[("VITAL_SERVER_FILES", files.as_str())],
    );
    let config = test_config(tmp.path(), "");
    let fake = FakeServer::start(|_, _| chat("8\nAccurate and grounded in the image."));
    let endpoint = fake.endpoint();
    let judge = |ws: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_vital"))
            .arg("-w")
            .arg(ws)
            .args([
                "judge",
                "--endpoint",
                &endpoint,
                "--model",
                "judge-m",
                "--json",
            ])
            .env("VITAL_CONFIG", &config)
            .env("VITAL_SERVER_FILES", &files)
            .env_remove("VITAL_WORKSPACE")
            .env("OPENAI_API_KEY", KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "{:?}", text(&out));
        serde_json::from_str::<Value>(&String::from_utf8_lossy(&out.stdout)).unwrap()
    };
    assert_eq!(judge(&dir)["scores_added"], 4);
    assert_eq!(judge(url)["scores_added"], 4);
    assert_eq!(fake.total(), 8, "the same four requests for each");
    assert_eq!(judge(url)["scores_added"], 0);
    assert_eq!(fake.total(), 8, "the server's ledger remembers them");
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
            &[("VITAL_SERVER_FILES", files.as_str())],
        );
        std::fs::read(out).unwrap()
    };
    assert!(
        export(&dir, "a.jsonl") == export(url, "b.jsonl"),
        "the same scores"
    );
}

#[test]
fn pick_figures_with_an_open_clip_encoder_clusters_on_text_and_image_vectors() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let mut lines = String::new();
    for k in 0..6 {
        let id = format!("PMC{k}_F1");
        // Every other figure has its image beside the input; the rest cluster on text alone.
        if k % 2 == 0 {
            std::fs::write(images.join(format!("{id}.png")), PNG).unwrap();
        }
        lines.push_str(
            &json!({"pair_id": id, "fig_caption": format!("Axial CT of patient {k}."),
                    "in_text_mention": [], "domain": {"ct_scan": true}})
            .to_string(),
        );
        lines.push('\n');
    }
    let input = write(tmp.path(), "figs.jsonl", &lines);
    let out = tmp.path().join("picked.jsonl");
    let encoder = super::common::repo_root().join("tests/fixtures/open_clip/tiny-biomedclip");
    let pick = |extra: &[&str]| -> Value {
        let mut args = vec![
            "pick-figures",
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--encoder",
            encoder.to_str().unwrap(),
            "--k",
            "2",
            "--n",
            "4",
            "--json",
        ];
        args.extend(extra);
        serde_json::from_str(&super::common::vital_ok(tmp.path(), &args)).unwrap()
    };
    let summary = pick(&["--images", images.to_str().unwrap()]);
    let features = summary["features"].as_str().unwrap();
    assert!(
        features.contains("figure images (3 of 6 found)"),
        "{features}"
    );
    assert_eq!(summary["picked"], 4);
    // The input's own folder is searched by default: the images are not there.
    let features = pick(&[])["features"].as_str().unwrap().to_string();
    assert!(features.contains("(0 of 6 found)"), "{features}");
}

/// Every byte under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            if p.is_dir() {
                bytes_under(&p)
            } else {
                std::fs::metadata(&p).unwrap().len()
            }
        })
        .sum()
}

#[test]
fn a_reply_over_llm_max_reply_mb_fails_its_request_and_nothing_of_it_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "max_reply_mb = 1\n");
    let input = figures(tmp.path(), &["ok", "announced", "endless", "valid_big"]);
    let server = FakeServer::start(|req, _| {
        match tag_of(req).as_str() {
        // Before: a 2 GB body took 2.16 GB per request; a valid 300 MB reply was stored whole.
        "announced" => Reply::Raw(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n{\"choices\": [".to_vec(),
        ),
        "endless" => Reply::Endless,
        "valid_big" => chat(&format!("{GOOD}\n{}", "x".repeat(2 << 20))),
        _ => chat(GOOD),
    }
    });
    let endpoint = server.endpoint();
    let images = tmp.path().join("images");
    let args = generate_args(&input, &images, &["--endpoint", &endpoint, "--json"]);
    let started = Instant::now();
    let out = vital_llm(&ws, &config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "partial\n{stdout}\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["failed"], 3, "{summary:#}");
    assert_eq!(summary["samples_added"], 1, "{summary:#}");
    for tag in ["announced", "endless", "valid_big"] {
        assert_eq!(server.count(tag), 1, "{tag}: refused, not retried");
        let line = stderr
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{tag}:")))
            .unwrap_or_else(|| panic!("{tag} not reported: {stderr}"));
        assert!(
            line.contains("reply larger than 1 MB") && line.ends_with("refused (llm.max_reply_mb)"),
            "{line}"
        );
    }
    assert!(
        stderr.contains("(the server announced 2147483648 bytes)"),
        "{stderr}"
    );
    // Only the good reply is in the ledger, and the workspace stays small.
    let subjects: Vec<String> = db(&ws)
        .llm_ledger_entries()
        .unwrap()
        .into_iter()
        .map(|e| e.subject)
        .collect();
    assert_eq!(subjects, ["ok"]);
    let stored = bytes_under(&ws);
    assert!(stored < 1 << 20, "the workspace holds {stored} bytes");
}

#[test]
fn a_retry_after_beyond_llm_max_retry_wait_s_stops_that_request_and_a_shorter_wait_is_logged() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let config = test_config(tmp.path(), "max_retry_wait_s = 120\n");
    let input = figures(tmp.path(), &["ok", "patient", "greedy"]);
    let server = FakeServer::start(|req, n| match (tag_of(req).as_str(), n) {
        ("patient", 0) => Reply::Status(429, vec![("retry-after", "1".into())], b"busy".to_vec()),
        // Before: waited up to an hour per retry in silence, the bar showing `0/1 eta 0s`.
        ("greedy", _) => Reply::Status(
            429,
            vec![("retry-after", "999999".into())],
            b"come back next week".to_vec(),
        ),
        _ => chat(GOOD),
    });
    let endpoint = server.endpoint();
    let images = tmp.path().join("images");
    let log = tmp.path().join("vital.log");
    let mut args = vec!["--log", log.to_str().unwrap()];
    args.extend(generate_args(
        &input,
        &images,
        &["--endpoint", &endpoint, "--json"],
    ));
    let started = Instant::now();
    let out = vital_llm(&ws, &config, &args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "partial\n{stdout}\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.count("greedy"), 1, "stopped, not retried");
    assert_eq!(server.count("patient"), 2);
    let t = server.times("patient");
    assert!(
        t[1] - t[0] >= Duration::from_millis(950),
        "{:?}",
        t[1] - t[0]
    );
    let summary: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(summary["failed"], 1, "{summary:#}");
    assert!(
        stderr.contains(
            "greedy: the server asked to wait 999999 s, more than llm.max_retry_wait_s = 120: stopped (HTTP 429 Too Many Requests: come back next week)"
        ),
        "{stderr}"
    );
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("waiting 1 s before retry 1 of 2 (HTTP 429 Too Many Requests: busy)"),
        "{log}"
    );
    assert!(
        log.contains("WARN") && log.contains("the server asked to wait 999999 s"),
        "{log}"
    );
}
