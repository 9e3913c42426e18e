//! Batch judging at a release's scale: N judge requests (default 200 000) prepared, uploaded to a
//! fake batch API on 127.0.0.1 and collected, with the wall time of each stage and the peak
//! memory of each `vital` process.
//!
//! Run: `cargo build --bin vital && cargo run --example batch_bench -- [ANSWERS] [DIR]`
//! (the `vital` binary is `$CARGO_TARGET_DIR/debug/vital` unless `VITAL_BIN` names another).
//!
//! The workspace is generated here (seeded): ANSWERS / 8 samples × 4 rounds × 2 answers, texts of
//! the release's lengths (a caption of ~330 characters, one mention of ~200, questions of ~80,
//! answers of ~300). Without images: a real judge request carries its figure as a data URL
//! (tens to hundreds of KB), which makes the input files larger and the uploads longer but not
//! the workspace's work, and 200 000 of them do not fit this machine's disk budget.
//!
//! The fake API keeps files on disk and streams them, answers every request with a judge reply
//! (1% in the error file), lists its output in reverse input order, and steps each batch through
//! validating, in_progress, finalizing, completed. Its own timestamps split the `judge --batch`
//! run into preparing (until the first upload starts), uploading and creating.

#![allow(clippy::unwrap_used)] // a benchmark harness: a failed unwrap is a failed run

use std::collections::HashMap;
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{json, Value};

#[derive(Default)]
struct Api {
    dir: PathBuf,
    files: HashMap<String, (PathBuf, u64, u64)>,
    batches: Vec<(String, String, String, Value)>,
    first_upload: Option<Instant>,
    upload_secs: f64,
    create_secs: f64,
    last_create: Option<Instant>,
    download_secs: f64,
    downloaded: u64,
    /// Requests failed once: answered when sent again.
    failed_before: HashSet<String>,
}

/// A little text generator (seeded), for texts of the release's lengths.
struct Words(u64);

impl Words {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn text(&mut self, chars: usize) -> String {
        const WORDS: &[&str] = &[
            "axial",
            "contrast",
            "enhanced",
            "CT",
            "image",
            "shows",
            "a",
            "lesion",
            "in",
            "the",
            "left",
            "lower",
            "lobe",
            "with",
            "surrounding",
            "ground-glass",
            "opacity",
            "and",
            "mild",
            "pleural",
            "effusion",
            "MRI",
            "T2-weighted",
            "hyperintense",
            "signal",
            "arrow",
            "indicates",
            "mass",
            "measuring",
            "cm",
            "of",
            "liver",
            "no",
            "evidence",
        ];
        let mut out = String::new();
        while out.len() < chars {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(WORDS[(self.next() % WORDS.len() as u64) as usize]);
        }
        out.push('.');
        out
    }
}

fn write_candidates(path: &Path, samples: usize) {
    let mut w = BufWriter::new(File::create(path).unwrap());
    let mut words = Words(0x5eed);
    for i in 0..samples {
        let rounds: Vec<Value> = (0..4)
            .map(|_| json!({"question": words.text(80), "answers": [words.text(300), words.text(300)]}))
            .collect();
        let line = json!({"id": format!("s{i}"), "fig_caption": words.text(330),
                          "in_text_mention": words.text(200), "domain": "ct_scan", "rounds": rounds});
        writeln!(w, "{line}").unwrap();
    }
    w.flush().unwrap();
}

fn respond(stream: &mut TcpStream, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

fn batch_json(id: &str, input: &str, status: &str, extra: &Value) -> Value {
    let mut b = json!({"id": id, "object": "batch", "input_file_id": input, "status": status,
                       "endpoint": "/v1/chat/completions", "completion_window": "24h"});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// Writes the output and error files of an input file (by byte range): a judge reply per line,
/// every 100th line an error the first time, the output in reverse order.
fn run_batch(api: &Mutex<Api>, input: &str) -> (String, String, usize, usize) {
    let (dir, (path, start, end)) = {
        let a = api.lock().unwrap();
        (a.dir.clone(), a.files[input].clone())
    };
    let mut file = File::open(&path).unwrap();
    file.seek(SeekFrom::Start(start)).unwrap();
    let reader = BufReader::with_capacity(1 << 20, file.take(end - start));
    let mut ids = Vec::new();
    for line in reader.lines() {
        let line = line.unwrap();
        let at = line.find("\"custom_id\":\"").unwrap() + 13;
        ids.push(line[at..at + 64].to_string());
    }
    let n = api.lock().unwrap().files.len();
    let (out_path, err_path) = (
        dir.join(format!("out-{n}.jsonl")),
        dir.join(format!("err-{n}.jsonl")),
    );
    let mut out = BufWriter::new(File::create(&out_path).unwrap());
    let mut err = BufWriter::new(File::create(&err_path).unwrap());
    let (mut answered, mut failed) = (0, 0);
    for (i, id) in ids.iter().enumerate().rev() {
        if i % 100 == 99 && api.lock().unwrap().failed_before.insert(id.clone()) {
            failed += 1;
            let line = json!({"id": format!("r{i}"), "custom_id": id, "response": null,
                              "error": {"code": "server_error", "message": "try again"}});
            writeln!(err, "{line}").unwrap();
        } else {
            answered += 1;
            let body = json!({"id": format!("c{i}"), "object": "chat.completion", "model": "judge",
                              "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                 "content": format!("{}\nThe answer addresses the question and uses the image's findings; it stays within what the caption supports.", i % 11)}}],
                              "usage": {"prompt_tokens": 850, "completion_tokens": 40, "total_tokens": 890}});
            let line = json!({"id": format!("r{i}"), "custom_id": id, "error": null,
                              "response": {"status_code": 200, "request_id": format!("q{i}"), "body": body}});
            writeln!(out, "{line}").unwrap();
        }
    }
    out.flush().unwrap();
    err.flush().unwrap();
    let mut a = api.lock().unwrap();
    let (oid, eid) = (format!("file-out-{n}"), format!("file-err-{n}"));
    let len = |p: &Path| std::fs::metadata(p).unwrap().len();
    a.files
        .insert(oid.clone(), (out_path.clone(), 0, len(&out_path)));
    a.files
        .insert(eid.clone(), (err_path.clone(), 0, len(&err_path)));
    (oid, eid, answered, failed)
}

fn serve(mut stream: TcpStream, api: &Mutex<Api>) {
    let started = Instant::now();
    let mut reader = BufReader::with_capacity(1 << 20, stream.try_clone().unwrap());
    let mut first = String::new();
    if reader.read_line(&mut first).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts
        .next()
        .unwrap_or("/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
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
    let len: u64 = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    match (method.as_str(), path.as_str()) {
        ("POST", "/v1/files") => {
            {
                let mut a = api.lock().unwrap();
                a.first_upload.get_or_insert(started);
            }
            // The raw multipart body goes to disk; the file part is a byte range of it.
            let boundary = headers["content-type"]
                .split("boundary=")
                .nth(1)
                .unwrap()
                .to_string();
            let (dir, n) = {
                let a = api.lock().unwrap();
                (a.dir.clone(), a.files.len())
            };
            let raw = dir.join(format!("upload-{n}.raw"));
            let mut file = File::create(&raw).unwrap();
            std::io::copy(&mut (&mut reader).take(len), &mut file).unwrap();
            let mut head = vec![0u8; 4096.min(len as usize)];
            File::open(&raw).unwrap().read_exact(&mut head).unwrap();
            let text = String::from_utf8_lossy(&head);
            let file_at = text.find("name=\"file\"").unwrap();
            let start = (file_at + text[file_at..].find("\r\n\r\n").unwrap() + 4) as u64;
            let end = len - format!("\r\n--{boundary}--\r\n").len() as u64;
            let mut a = api.lock().unwrap();
            let id = format!("file-in-{n}");
            a.files.insert(id.clone(), (raw, start, end));
            a.upload_secs += started.elapsed().as_secs_f64();
            drop(a);
            respond(
                &mut stream,
                json!({"id": id, "object": "file"}).to_string().as_bytes(),
            );
        }
        ("POST", "/v1/batches") => {
            let mut body = vec![0u8; len as usize];
            reader.read_exact(&mut body).unwrap();
            let request: Value = serde_json::from_slice(&body).unwrap();
            let mut a = api.lock().unwrap();
            let id = format!("batch_{}", a.batches.len());
            let input = request["input_file_id"].as_str().unwrap().to_string();
            let extra = json!({"metadata": request["metadata"]});
            a.batches.push((
                id.clone(),
                input.clone(),
                "validating".into(),
                extra.clone(),
            ));
            a.create_secs += started.elapsed().as_secs_f64();
            a.last_create = Some(Instant::now());
            respond(
                &mut stream,
                batch_json(&id, &input, "validating", &extra)
                    .to_string()
                    .as_bytes(),
            );
        }
        ("GET", "/v1/batches") => {
            let a = api.lock().unwrap();
            let data: Vec<Value> = a
                .batches
                .iter()
                .map(|(id, input, status, extra)| batch_json(id, input, status, extra))
                .collect();
            respond(
                &mut stream,
                json!({"object": "list", "data": data, "has_more": false})
                    .to_string()
                    .as_bytes(),
            );
        }
        ("GET", p) if p.starts_with("/v1/batches/") => {
            let id = p.trim_start_matches("/v1/batches/").to_string();
            let (input, status, mut extra) = {
                let a = api.lock().unwrap();
                let b = a.batches.iter().find(|b| b.0 == id).unwrap();
                (b.1.clone(), b.2.clone(), b.3.clone())
            };
            let status = match status.as_str() {
                "validating" => "in_progress".to_string(),
                "in_progress" => "finalizing".to_string(),
                "finalizing" => {
                    let (out, err, answered, failed) = run_batch(api, &input);
                    extra["output_file_id"] = json!(out);
                    extra["error_file_id"] = json!(err);
                    extra["request_counts"] = json!({"total": answered + failed, "completed": answered, "failed": failed});
                    "completed".to_string()
                }
                s => s.to_string(),
            };
            let mut a = api.lock().unwrap();
            let b = a.batches.iter_mut().find(|b| b.0 == id).unwrap();
            b.2 = status.clone();
            b.3 = extra.clone();
            drop(a);
            respond(
                &mut stream,
                batch_json(&id, &input, &status, &extra)
                    .to_string()
                    .as_bytes(),
            );
        }
        ("GET", p) if p.starts_with("/v1/files/") => {
            let id = p
                .trim_start_matches("/v1/files/")
                .trim_end_matches("/content");
            let (path, start, end) = api.lock().unwrap().files[id].clone();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                end - start
            );
            stream.write_all(head.as_bytes()).unwrap();
            let mut file = File::open(path).unwrap();
            file.seek(SeekFrom::Start(start)).unwrap();
            std::io::copy(&mut file.take(end - start), &mut stream).unwrap();
            let mut a = api.lock().unwrap();
            a.download_secs += started.elapsed().as_secs_f64();
            a.downloaded += end - start;
        }
        _ => respond(&mut stream, b"{}"),
    }
}

/// Runs vital; returns (wall seconds, peak RSS MiB) of that one process.
fn timed(vital: &Path, ws: &Path, config: &Path, args: &[&str]) -> (f64, f64) {
    let started = Instant::now();
    // Waited for below with wait4, which also gives this one process's peak memory.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(vital)
        .arg("-w")
        .arg(ws)
        .args(args)
        .env("VITAL_CONFIG", config)
        .env("OPENAI_API_KEY", "sk-bench-0123456789abcdef")
        .env_remove("VITAL_WORKSPACE")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid is valid; status and usage are valid pointers.
    let waited = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(waited, child.id() as i32);
    assert!(libc::WIFEXITED(status), "vital {args:?} was killed");
    let code = libc::WEXITSTATUS(status);
    assert!(code == 0 || code == 3, "vital {args:?} exited {code}");
    (
        started.elapsed().as_secs_f64(),
        usage.ru_maxrss as f64 / 1024.0,
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let answers: usize = args.next().map(|a| a.parse().unwrap()).unwrap_or(200_000);
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&target).join("batch-bench"));
    let vital = std::env::var("VITAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(&target).join("debug/vital"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("api")).unwrap();
    let ws = dir.join("ws");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        "[llm]\nretry_base_ms = 10\nretry_max_secs = 0.05\n",
    )
    .unwrap();

    let samples = answers.div_ceil(8);
    let candidates = dir.join("candidates.jsonl");
    write_candidates(&candidates, samples);
    let (import_s, import_mb) = timed(
        &vital,
        &ws,
        &config,
        &["import", candidates.to_str().unwrap()],
    );
    println!(
        "workspace: {samples} samples, {} answers (import {import_s:.1} s, {import_mb:.0} MiB)",
        samples * 8
    );

    let api = Arc::new(Mutex::new(Api {
        dir: dir.join("api"),
        ..Default::default()
    }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = api.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let api = server.clone();
            std::thread::spawn(move || serve(stream, &api));
        }
    });

    let started = Instant::now();
    let (submit_s, submit_mb) = timed(
        &vital,
        &ws,
        &config,
        &[
            "judge",
            "--batch",
            "--endpoint",
            &endpoint,
            "--model",
            "judge",
            "--json",
        ],
    );
    let (prepare_s, upload_s, create_s, files, bytes) = {
        let a = api.lock().unwrap();
        let first = a.first_upload.unwrap();
        let bytes: u64 = a.files.values().map(|(_, s, e)| e - s).sum();
        (
            (first - started).as_secs_f64(),
            a.upload_secs,
            a.create_secs,
            a.files.len(),
            bytes,
        )
    };
    let (collect_s, collect_mb) = timed(
        &vital,
        &ws,
        &config,
        &["batch", "collect", "--wait", "--poll-secs", "0", "--json"],
    );
    let download_s = api.lock().unwrap().download_secs;
    let downloaded = api.lock().unwrap().downloaded;
    // The failed 1% go again in a second batch.
    let (resend_s, resend_mb) = timed(
        &vital,
        &ws,
        &config,
        &[
            "judge",
            "--batch",
            "--wait",
            "--poll-secs",
            "0",
            "--endpoint",
            &endpoint,
            "--model",
            "judge",
            "--json",
        ],
    );
    let w = vital::store::Workspace::open_existing(&ws).unwrap();
    let scores = w.model_scores_by_judge("judge").unwrap().len();
    assert_eq!(scores, samples * 8, "every answer scored");
    println!(
        "judge --batch: {submit_s:.1} s, peak {submit_mb:.0} MiB: prepare {prepare_s:.1} s, upload {upload_s:.1} s ({files} files, {:.0} MB), create {create_s:.2} s",
        bytes as f64 / 1e6
    );
    println!(
        "batch collect --wait: {collect_s:.1} s, peak {collect_mb:.0} MiB (downloads {download_s:.1} s, {:.0} MB)",
        downloaded as f64 / 1e6
    );
    println!(
        "judge --batch --wait (the failed 1% again): {resend_s:.1} s, peak {resend_mb:.0} MiB"
    );
    println!(
        "scores stored: {scores}; machine: load average {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}
