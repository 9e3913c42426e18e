//! `--include`: other LLaVA files merged into a LLaVA export, streamed record by record, with
//! dedup by id (same id and content: written once) and a report of conflicts (same id, different
//! content: the first one written wins).

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::data::json_stream::JsonSource;

/// What one included file contributed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IncludeReport {
    pub file: PathBuf,
    pub sha256: String,
    pub records: usize,
    pub added: usize,
    /// Same id and content as a record already written.
    pub duplicates: usize,
    /// Same id, different content: left out (the first one written wins).
    pub conflicts: usize,
    /// Records without an id, or not objects: left out.
    pub skipped: usize,
}

/// Ids written so far with a fingerprint of their content, and where they came from.
#[derive(Default)]
pub struct Seen {
    ids: HashMap<String, (u64, u32)>,
    /// 0 = the workspace, i = the i-th included file.
    origins: Vec<String>,
}

impl Seen {
    pub fn new() -> Self {
        Self {
            ids: HashMap::new(),
            origins: vec!["the workspace".to_string()],
        }
    }

    pub fn insert_workspace(&mut self, id: &str, fingerprint: u64) {
        self.ids.insert(id.to_string(), (fingerprint, 0));
    }
}

/// A content fingerprint that ignores key order and extra fields: image and the turns' speakers
/// (normalised to human/gpt) and texts.
pub fn fingerprint<'a>(
    image: Option<&str>,
    turns: impl Iterator<Item = (&'a str, &'a str)>,
) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    image.hash(&mut h);
    for (from, value) in turns {
        let from = match from.to_ascii_lowercase().as_str() {
            "human" | "user" => "human",
            "gpt" | "assistant" | "model" => "gpt",
            _ => "other",
        };
        from.hash(&mut h);
        value.hash(&mut h);
    }
    h.finish()
}

fn record_fingerprint(v: &Value) -> u64 {
    let image = v.get("image").and_then(Value::as_str);
    let turns = v
        .get("conversations")
        .and_then(Value::as_array)
        .map(|t| t.as_slice())
        .unwrap_or_default();
    fingerprint(
        image,
        turns.iter().map(|t| {
            (
                t.get("from").and_then(Value::as_str).unwrap_or(""),
                t.get("value").and_then(Value::as_str).unwrap_or(""),
            )
        }),
    )
}

fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Hashes every byte read through it.
struct Hashing<R> {
    inner: R,
    hasher: Arc<Mutex<Sha256>>,
    done: Arc<std::sync::atomic::AtomicU64>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher
            .lock()
            .expect("no panics while hashing")
            .update(&buf[..n]);
        self.done.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Streams `path` into `out` (a JSON array being written; `first` says whether no element has
/// been written yet). Conflicts are described into `conflicts` (the caller caps what it keeps).
#[allow(clippy::too_many_arguments)]
pub fn merge(
    path: &Path,
    seen: &mut Seen,
    out: &mut dyn Write,
    first: &mut bool,
    conflicts: &mut Vec<String>,
    cancel: &AtomicBool,
    progress: &dyn Fn(u64, u64),
) -> anyhow::Result<IncludeReport> {
    let shown = path.display().to_string();
    let file = File::open(path).with_context(|| format!("cannot open include file {shown}"))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = file.try_clone()?;
    let hasher = Arc::new(Mutex::new(Sha256::new()));
    let done = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let source = JsonSource::new(Hashing {
        inner: file,
        hasher: hasher.clone(),
        done: done.clone(),
    })
    .with_context(|| format!("cannot read include file {shown}"))?;
    let origin = seen.origins.len() as u32;
    seen.origins.push(shown.clone());
    let mut report = IncludeReport {
        file: path.to_path_buf(),
        ..Default::default()
    };
    source
        .for_each(|loc, value| {
            report.records += 1;
            if report.records.is_multiple_of(4096) {
                if cancel.load(Ordering::Relaxed) {
                    anyhow::bail!("export cancelled");
                }
                progress(done.load(Ordering::Relaxed), size);
            }
            let Some(id) = id_of(&value) else {
                report.skipped += 1;
                return Ok(());
            };
            let fp = record_fingerprint(&value);
            match seen.ids.get(&id) {
                Some((known, _)) if *known == fp => report.duplicates += 1,
                Some((_, from)) => {
                    report.conflicts += 1;
                    conflicts.push(format!(
                        "{shown}: {loc}: id `{id}` differs from the record written from {}",
                        seen.origins[*from as usize]
                    ));
                }
                None => {
                    if !*first {
                        out.write_all(b",\n")?;
                    }
                    *first = false;
                    serde_json::to_writer(&mut *out, &value)?;
                    seen.ids.insert(id, (fp, origin));
                    report.added += 1;
                }
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("include file {shown}: {e}"))?;
    // Bytes after the last record (whitespace) that the parser did not need still count.
    let mut rest = Vec::new();
    tail.read_to_end(&mut rest)?;
    let mut hasher = hasher.lock().expect("no panics while hashing").clone();
    hasher.update(&rest);
    report.sha256 = hex::encode(hasher.finalize());
    progress(size, size);
    Ok(report)
}
