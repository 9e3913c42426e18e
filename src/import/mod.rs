//! `vital import`: reads a file of any supported shape into the workspace, streaming, in one
//! transaction per file, so a broken file imports nothing and nothing stored is half-written.

mod apply;
mod images;

pub use apply::IMPORTED_REVIEWER;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::data::detect::detect;
use crate::data::formats::{Format, RecordParser};
use crate::data::json_stream::{JsonSource, RawRecord, RecordLoc, StreamError};
use crate::data::warnings::Warnings;
use crate::data::Record;
use crate::store::{SampleLists, Workspace};
use images::{ImageAt, ImageSearch};

/// What to do when a sample id is already stored with different content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictPolicy {
    /// Import nothing from the file and list the conflicts.
    #[default]
    Fail,
    /// Keep the stored version, import the rest, and list the conflicts.
    Skip,
}

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Force a shape instead of detecting it from the first record.
    pub format: Option<Format>,
    /// Directories holding the images the records refer to.
    pub image_dirs: Vec<PathBuf>,
    pub on_conflict: ConflictPolicy,
}

/// What one file contributed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub file: PathBuf,
    pub format: Option<Format>,
    /// The same bytes were imported before: nothing was done.
    pub already_imported: bool,
    pub records: usize,
    pub samples_added: usize,
    pub samples_unchanged: usize,
    pub rounds_added: usize,
    pub answers_added: usize,
    pub verdicts_added: usize,
    pub scores_added: usize,
    pub urls_added: usize,
    pub edits_added: usize,
    pub reasons_added: usize,
    pub conflicts: Vec<String>,
    /// Said about the file as a whole (e.g. that it holds no records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub warnings: std::collections::BTreeMap<String, usize>,
    #[serde(skip)]
    pub warning_details: Warnings,
}

/// Progress callback: bytes of the file processed so far, out of `total` (hashing, then parsing,
/// so twice the file size; the file size alone where the parse hashes it).
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// Reads `path` into the workspace. On any error the workspace is left exactly as it was.
pub fn import_file(
    ws: &mut Workspace,
    path: &Path,
    options: &ImportOptions,
    progress: Progress,
) -> anyhow::Result<ImportReport> {
    let shown = path.display().to_string();
    import_inner(ws, path, options, progress).with_context(|| format!("{shown}: nothing imported"))
}

fn import_inner(
    ws: &mut Workspace,
    path: &Path,
    options: &ImportOptions,
    progress: Progress,
) -> anyhow::Result<ImportReport> {
    let size = std::fs::metadata(path)
        .with_context(|| "cannot read the file")?
        .len();
    // A file may be one imported before only if a stored file has its size: then its SHA-256
    // is read first, and a known file costs one read and no parse. Otherwise the parse hashes
    // what it reads (one read of the file, not two). On a server the hash comes first always:
    // its row claims the contents up front, so two curators importing the same file at once
    // find out at the start, not after a whole parse.
    let hash_first = ws.is_server() || ws.may_hold_source_of_size(size)?;
    let total = if hash_first { size * 2 } else { size };
    let parsed_from = total - size;
    let sha256 = if hash_first {
        Some(hash_file(path, &|done| progress(done, total))?)
    } else {
        None
    };
    let mut report = ImportReport {
        file: path.to_path_buf(),
        ..Default::default()
    };
    if let Some(sha256) = &sha256 {
        if let Some(format) = ws.imported_source_format(sha256)? {
            report.already_imported = true;
            report.format = clap::ValueEnum::from_str(&format, true).ok();
            progress(total, total);
            return Ok(report);
        }
    }
    // Checked now, registered inside the file's transaction: a failed import leaves nothing.
    let image_dirs: Vec<PathBuf> = options
        .image_dirs
        .iter()
        .map(|d| {
            std::fs::canonicalize(d)
                .with_context(|| format!("image directory {} does not exist", d.display()))
        })
        .collect::<anyhow::Result<_>>()?;
    let file = File::open(path).with_context(|| "cannot open the file")?;
    let read_hash = std::cell::RefCell::new(sha256.is_none().then(Sha256::new));
    let counting = CountingReader {
        inner: file,
        done: 0,
        hasher: &read_hash,
        report: &|done| progress(parsed_from + done, total),
    };
    let source = JsonSource::new(counting)?;
    let mut warnings = Warnings::default();
    if source.had_bom {
        warnings.add("byte-order mark skipped", "start of file");
    }

    // Two threads: this one reads, parses and hashes records; the writer inserts them into one
    // transaction. The bounded channel keeps memory flat whichever side is slower.
    let (tx, rx) = mpsc::sync_channel::<ToWriter>(CHANNEL_BATCHES);
    let (spent_tx, spent_rx) = mpsc::sync_channel::<apply::Spent>(CHANNEL_BATCHES);
    let mut searched = ws.image_dirs()?;
    for dir in &image_dirs {
        if !searched.contains(dir) {
            searched.push(dir.clone());
        }
    }
    let file_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let images = ImageSearch::new(&searched, &file_dir);
    let target = WriteTarget {
        path: path_text(path),
        sha256,
        bytes: size,
        image_dirs,
        beside_file: images.beside_file(),
        policy: options.on_conflict,
    };
    let (parsed, written) = std::thread::scope(|scope| {
        let ws = &mut *ws;
        let writer = scope.spawn(move || write_records(ws, rx, spent_tx, target));
        let channels = (tx, spent_rx);
        let parsed = parse_records(
            source,
            options.format,
            &images,
            channels,
            &mut warnings,
            &|| {
                read_hash
                    .borrow_mut()
                    .take()
                    .map(|h| hex::encode(h.finalize()))
            },
        );
        (parsed, writer.join())
    });
    let written = written.map_err(|_| anyhow::anyhow!("the import's writer thread panicked"))?;
    let written = match (parsed, written) {
        // Hashed while parsing, the file proved to be one imported before: nothing was kept.
        (Ok(()), Ok(Some(Outcome::AlreadyImported(format)))) => {
            report.already_imported = true;
            report.format = clap::ValueEnum::from_str(&format, true).ok();
            progress(total, total);
            return Ok(report);
        }
        // The writer refused a record (or the database); the parser only saw it stop.
        (Err(e), Err(w)) if e.is::<WriterGone>() => return Err(w),
        (Err(e), _) => return Err(e),
        (Ok(()), Err(w)) => return Err(w),
        (Ok(()), Ok(None)) => anyhow::bail!("the import's writer stopped early"),
        (Ok(()), Ok(Some(Outcome::Written(written)))) => written,
    };
    warnings.merge(written.warnings);
    let Some(format) = written.format else {
        // An empty array or an empty JSON Lines file (a script's empty batch): nothing to do,
        // and nothing recorded, so the same file can be imported again once it holds records.
        report.note = Some("the file holds no records: nothing imported".into());
        progress(total, total);
        return Ok(report);
    };
    let counts = written.counts;
    report.format = Some(format);
    report.records = written.records;
    report.samples_added = counts.samples_added;
    report.samples_unchanged = counts.samples_unchanged;
    report.rounds_added = counts.rounds_added;
    report.answers_added = counts.answers_added;
    report.verdicts_added = counts.verdicts_added;
    report.scores_added = counts.scores_added;
    report.urls_added = counts.urls_added;
    report.edits_added = counts.edits_added;
    report.reasons_added = counts.reasons_added;
    report.conflicts = counts.conflicts;
    report.warnings = warnings.counts();
    report.warning_details = warnings;
    Ok(report)
}

/// Records parsed per message to the writer.
const BATCH_RECORDS: usize = 512;
/// Messages in flight between the threads: at most a few MB of parsed records.
const CHANNEL_BATCHES: usize = 8;

/// From the parsing thread to the writer.
enum ToWriter {
    /// Each record's location, what it parsed into, and what was worked out for each sample in it.
    Records(Vec<(RecordLoc, Vec<Record>, Vec<Prepared>)>),
    /// Every record was sent: the file's format (`None` when it held none), record count, and
    /// its SHA-256 when the parse computed it.
    Done {
        format: Option<Format>,
        records: usize,
        sha256: Option<String>,
    },
}

/// The writer hung up (it refused a record or the database failed): its error is the one to show.
#[derive(Debug, thiserror::Error)]
#[error("the import's writer stopped")]
struct WriterGone;

/// What the parsing thread works out for each sample, so the writer only writes.
pub struct Prepared {
    /// [`crate::data::Sample::content_hash`].
    pub content_hash: String,
    /// Its mentions and domains as stored.
    pub lists: SampleLists,
    pub image: ImageAt,
}

/// Reads, parses and hashes every record and looks up its images, sending them to the writer in
/// batches.
fn parse_records<R: Read>(
    source: JsonSource<R>,
    forced: Option<Format>,
    images: &ImageSearch,
    (tx, spent): (mpsc::SyncSender<ToWriter>, mpsc::Receiver<apply::Spent>),
    warnings: &mut Warnings,
    read_hash: &dyn Fn() -> Option<String>,
) -> anyhow::Result<()> {
    let mut parser: Option<Box<dyn RecordParser>> = forced.map(Format::parser);
    let mut format = forced;
    let mut pending = Vec::with_capacity(BATCH_RECORDS);
    let send = |pending: &mut Vec<_>| {
        let full = std::mem::replace(pending, Vec::with_capacity(BATCH_RECORDS));
        // The samples the writer has stored meanwhile are freed here (see `apply::Spent`).
        spent.try_iter().for_each(drop);
        tx.send(ToWriter::Records(full)).map_err(|_| WriterGone)
    };
    // A record in the format's plain shape is read straight into its types; the first record
    // (to detect the format) and any other go through a `Value` and the lenient parser.
    let mut record = |loc: RecordLoc, raw: RawRecord<'_>| -> Result<(), StreamError> {
        let plain = parser
            .as_mut()
            .and_then(|p| p.parse_plain(raw.bytes(), loc));
        let parsed = match plain {
            Some(parsed) => parsed,
            None => {
                let value = raw.value()?;
                if parser.is_none() {
                    let found = detect(&value).ok_or_else(|| {
                        let keys = value
                            .as_object()
                            .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
                            .unwrap_or_else(|| crate::data::fields::type_name(&value).to_string());
                        anyhow::anyhow!(
                            "{loc}: cannot tell the file's format from its first record (keys: {keys}); pass --format"
                        )
                    })
                    .map_err(StreamError::Handler)?;
                    format = Some(found);
                    parser = Some(found.parser());
                }
                parser
                    .as_mut()
                    .expect("set above")
                    .parse(&value, loc, warnings)
                    .map_err(StreamError::Handler)?
            }
        };
        if !parsed.is_empty() {
            let prepared = prepare(&parsed, images).map_err(StreamError::Handler)?;
            pending.push((loc, parsed, prepared));
            if pending.len() >= BATCH_RECORDS {
                send(&mut pending).map_err(|e| StreamError::Handler(e.into()))?;
            }
        }
        Ok(())
    };
    let records = source.for_each_raw(&mut record).map_err(|e| match e {
        StreamError::Handler(e) => e,
        other => anyhow::Error::new(other),
    })?;
    if let Some(parser) = parser.as_mut() {
        let rest = parser.finish(warnings)?;
        let end = RecordLoc {
            index: records,
            line: 0,
        };
        let prepared = prepare(&rest, images)?;
        pending.push((end, rest, prepared));
    }
    send(&mut pending)?;
    // The source read every byte to the end of the file (anything after the records is an
    // error above), so this is the hash of the whole file.
    let sha256 = read_hash();
    tx.send(ToWriter::Done {
        format,
        records,
        sha256,
    })
    .map_err(|_| WriterGone)?;
    Ok(())
}

/// The content hash and image location of each sample among `records`, in order.
fn prepare(records: &[Record], images: &ImageSearch) -> anyhow::Result<Vec<Prepared>> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Sample { sample, .. } => Some(SampleLists::of(sample).map(|lists| Prepared {
                content_hash: sample.content_hash(),
                lists,
                image: images.locate(sample.image.as_deref()),
            })),
            _ => None,
        })
        .collect()
}

/// What the writer needs besides the records.
struct WriteTarget {
    path: String,
    /// `None`: hashed while parsing (a directory, a file whose size no stored file has).
    sha256: Option<String>,
    bytes: u64,
    image_dirs: Vec<PathBuf>,
    /// [`ImageSearch::beside_file`]: registered once a sample's image is found there.
    beside_file: Vec<Option<PathBuf>>,
    policy: ConflictPolicy,
}

/// What the writer did with the file.
enum Outcome {
    Written(Written),
    /// The file, hashed while parsing, is one imported before (its format): nothing was kept.
    AlreadyImported(String),
}

/// What the writer committed.
struct Written {
    /// `None`: the file held no records, and nothing was committed.
    format: Option<Format>,
    records: usize,
    counts: apply::Counts,
    warnings: Warnings,
}

/// Writes every record received into one transaction and commits it once the parser says it
/// is done. `Ok(None)`: the parser stopped early (its error is the one to show); nothing written.
fn write_records(
    ws: &mut Workspace,
    rx: mpsc::Receiver<ToWriter>,
    spent: mpsc::SyncSender<apply::Spent>,
    target: WriteTarget,
) -> anyhow::Result<Option<Outcome>> {
    ws.set_bulk_import(true)?;
    let written = write_in_one_batch(ws, rx, spent, target);
    let restored = ws.set_bulk_import(false);
    let written = written?;
    restored?;
    Ok(written)
}

fn write_in_one_batch(
    ws: &mut Workspace,
    rx: mpsc::Receiver<ToWriter>,
    spent: mpsc::SyncSender<apply::Spent>,
    target: WriteTarget,
) -> anyhow::Result<Option<Outcome>> {
    let mut warnings = Warnings::default();
    let batch = ws.import_batch()?;
    let stats_file = std::env::var_os(STATS_ENV).map(PathBuf::from);
    if stats_file.is_some() {
        // From zero: what statements run before this batch did is not the import's.
        batch.take_statement_counts();
    }
    let source_id = batch.add_source(&target.path, target.sha256.as_deref())?;
    for dir in &target.image_dirs {
        batch.add_image_dir(dir)?;
    }
    let mut applier = apply::Applier::new(
        &batch,
        source_id,
        target.beside_file,
        target.policy,
        Some(spent),
    );
    let (format, records, read_hash) = loop {
        match rx.recv() {
            Ok(ToWriter::Records(list)) => {
                for (loc, records, prepared) in list {
                    applier.apply_all(records, prepared, loc, &mut warnings)?;
                }
            }
            Ok(ToWriter::Done {
                format,
                records,
                sha256,
            }) => break (format, records, sha256),
            // Dropping the batch rolls everything back.
            Err(mpsc::RecvError) => return Ok(None),
        }
    };
    let counts = applier.finish(&mut warnings)?;
    if let Some(file) = &stats_file {
        write_stats(
            file,
            batch.is_server(),
            batch.take_statement_counts(),
            &counts,
        )?;
    }
    let Some(format) = format else {
        return Ok(Some(Outcome::Written(Written {
            format: None,
            records,
            counts,
            warnings,
        })));
    };
    let sha256 = match (target.sha256, read_hash) {
        (Some(first), _) => first,
        (None, Some(read)) => {
            // Only a file that changed size between the check and the read gets here (the
            // batch holds the workspace's write lock, so no import can store one meanwhile).
            if let Some(stored) = batch.stored_source_format(&read, source_id)? {
                return Ok(Some(Outcome::AlreadyImported(stored)));
            }
            read
        }
        (None, None) => {
            anyhow::bail!("the file's SHA-256 was neither read first nor while parsing")
        }
    };
    if !counts.conflicts.is_empty() && target.policy == ConflictPolicy::Fail {
        let shown: Vec<_> = counts.conflicts.iter().take(10).cloned().collect();
        anyhow::bail!(
            "{} record(s) conflict with stored samples (same id, different content):\n  {}\n(use --on-conflict skip to keep the stored versions and import the rest)",
            counts.conflicts.len(),
            shown.join("\n  ")
        );
    }
    batch.finish_source(source_id, format.name(), records, target.bytes, &sha256)?;
    batch.commit()?;
    ws.analyze_after_bulk_write()?;
    Ok(Some(Outcome::Written(Written {
        format: Some(format),
        records,
        counts,
        warnings,
    })))
}

/// Names a file that the import writes its work into (JSON): on a directory, how many SQL
/// statements SQLite ran for the file's records and how many virtual-machine steps they took, in
/// all and per statement; on a server (`"database": "postgresql"`), how many statements and
/// COPYs the client sent for them, each a round trip. Counted, not timed, so a test can bound the
/// work per sample on any machine (tests/integration/import_work.rs).
pub const STATS_ENV: &str = "VITAL_IMPORT_STATS";

fn write_stats(
    file: &Path,
    server: bool,
    statements: Vec<(String, u64, u64)>,
    counts: &apply::Counts,
) -> anyhow::Result<()> {
    let mut stats = serde_json::json!({
        "database": if server { "postgresql" } else { "sqlite" },
        "samples_added": counts.samples_added,
        "samples_unchanged": counts.samples_unchanged,
        "rounds_added": counts.rounds_added,
        "answers_added": counts.answers_added,
    });
    {
        let runs: u64 = statements.iter().map(|s| s.1).sum();
        let steps: u64 = statements.iter().map(|s| s.2).sum();
        stats["statements_run"] = runs.into();
        stats["vm_steps"] = steps.into();
        stats["statements"] = statements
            .into_iter()
            .map(|(sql, runs, vm_steps)| {
                serde_json::json!({"sql": sql, "runs": runs, "vm_steps": vm_steps})
            })
            .collect();
    }
    let text = serde_json::to_string_pretty(&stats).context("the import's counts as JSON")?;
    std::fs::write(file, text + "\n")
        .with_context(|| format!("cannot write {STATS_ENV} file {}", file.display()))
}

fn path_text(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .to_string_lossy()
        .into_owned()
}

fn hash_file(path: &Path, progress: &dyn Fn(u64)) -> anyhow::Result<String> {
    let mut reader =
        BufReader::with_capacity(1 << 20, File::open(path).context("cannot open the file")?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).context("cannot read the file")?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        progress(done);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Reports bytes read every 256 KiB, for the progress bar, and hashes them when asked to.
struct CountingReader<'a, R> {
    inner: R,
    done: u64,
    /// The file's SHA-256 so far, while it is computed during the parse (taken at the end).
    hasher: &'a std::cell::RefCell<Option<Sha256>>,
    report: &'a dyn Fn(u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(hasher) = self.hasher.borrow_mut().as_mut() {
            hasher.update(&buf[..n]);
        }
        let before = self.done >> 18;
        self.done += n as u64;
        if self.done >> 18 != before || n == 0 {
            (self.report)(self.done);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, test_server, TestDb, TestWorkspace};

    /// A sample in vital's candidates shape: odd text (tabs, newlines, backslashes, quotes,
    /// non-ASCII), a missing image on some, rounds without answers and empty answers.
    fn candidate(i: usize, answer: &str) -> serde_json::Value {
        let rounds: Vec<_> = (0..1 + i % 4)
            .map(|r| {
                let answers: Vec<String> = match r {
                    0 => vec![],
                    1 => vec![String::new(), format!("{answer} {i}")],
                    _ => vec![
                        format!("{answer}\tsee \\N and \\x00\r\n{i}"),
                        format!("ünïcödé «{r}» \"q\""),
                        format!("third {i}"),
                    ],
                };
                serde_json::json!({"question": format!("question {r} of {i}?\n"), "answers": answers})
            })
            .collect();
        serde_json::json!({
            "id": format!("fig-{i}"),
            "image": if i.is_multiple_of(3) { serde_json::Value::Null } else { format!("f{i}.png").into() },
            "fig_caption": format!("caption {i}\twith a tab, a \\ and\na newline"),
            "in_text_mention": format!("mention of {i}"),
            "domain": if i.is_multiple_of(2) { "ct_scan" } else { "mri" },
            "fig_label": format!("Figure {i}"),
            "rounds": rounds,
        })
    }

    /// Writes `records` as a JSON array into `dir/name`.
    fn write_file(dir: &Path, name: &str, records: &[serde_json::Value]) -> PathBuf {
        let file = dir.join(name);
        std::fs::write(&file, serde_json::Value::from(records.to_vec()).to_string()).unwrap();
        file
    }

    /// More samples than one write takes (three writes), one repeated across writes and one
    /// right after itself, both with the same content.
    fn release(dir: &Path) -> PathBuf {
        let mut records: Vec<_> = (0..4500).map(|i| candidate(i, "answer")).collect();
        records.insert(21, candidate(20, "answer"));
        records.push(candidate(10, "answer"));
        write_file(dir, "release.json", &records)
    }

    fn import(
        ws: &mut Workspace,
        file: &Path,
        policy: ConflictPolicy,
    ) -> anyhow::Result<ImportReport> {
        let options = ImportOptions {
            on_conflict: policy,
            ..Default::default()
        };
        import_file(ws, file, &options, &|_, _| {})
    }

    /// What a report says, without its warnings' order.
    fn summary(r: &ImportReport) -> String {
        format!(
            "{} {} {} {} {:?} {:?}",
            r.samples_added,
            r.samples_unchanged,
            r.rounds_added,
            r.answers_added,
            r.conflicts,
            r.warnings
        )
    }

    #[test]
    fn a_file_imported_into_a_directory_and_into_a_server_stores_the_same_rows_and_conflicts_the_same_way(
    ) {
        if test_server().is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let file = release(dir.path());
        // The same ids again, some with other answers: conflicts.
        let changed: Vec<_> = (4000..4600)
            .map(|i| {
                candidate(
                    i,
                    if i.is_multiple_of(7) {
                        "changed"
                    } else {
                        "answer"
                    },
                )
            })
            .collect();
        let again = write_file(dir.path(), "again.json", &changed);
        let mut lite = TestWorkspace::new(TestDb::Sqlite);
        let mut server = TestWorkspace::new(TestDb::Postgres);

        let on_lite = import(&mut lite, &file, ConflictPolicy::Fail).unwrap();
        let on_server = import(&mut server, &file, ConflictPolicy::Fail).unwrap();

        assert_eq!(on_lite.samples_added, 4500);
        assert_eq!(on_lite.samples_unchanged, 2);
        assert_eq!(summary(&on_server), summary(&on_lite));
        let everything = crate::store::copy_tests::everything;
        assert!(
            everything(&server) == everything(&lite),
            "the same rows and ids on both"
        );

        let refused_lite = import(&mut lite, &again, ConflictPolicy::Fail).unwrap_err();
        let refused_server = import(&mut server, &again, ConflictPolicy::Fail).unwrap_err();
        assert!(
            format!("{refused_lite:#}").contains(
                "record 11 (line 1): sample id `fig-4011` is already stored with different content"
            ),
            "{refused_lite:#}"
        );
        assert_eq!(format!("{refused_server:#}"), format!("{refused_lite:#}"));
        assert!(
            everything(&server) == everything(&lite),
            "nothing of the refused file stayed"
        );

        let skipped_lite = import(&mut lite, &again, ConflictPolicy::Skip).unwrap();
        let skipped_server = import(&mut server, &again, ConflictPolicy::Skip).unwrap();
        assert_eq!(skipped_lite.samples_added, 100);
        assert_eq!(skipped_lite.conflicts.len(), 53);
        assert_eq!(summary(&skipped_server), summary(&skipped_lite));
        // The refused import took ids from the server's sequences (a rolled-back transaction
        // gives none back; SQLite does): the same rows, under other ids from there on.
        let rows = |ws: &Workspace| {
            let samples: Vec<_> = ws
                .sample_keys()
                .unwrap()
                .into_iter()
                .map(|k| ws.load_sample(k).unwrap().map(|s| (s.sample, s.source)))
                .collect();
            format!("{:?}\n{samples:?}", ws.stats().unwrap())
        };
        assert!(
            rows(&server) == rows(&lite),
            "the same rows on both after the skipping import"
        );
    }

    fn a_broken_record_after_thousands_of_good_ones_leaves_nothing(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let mut records: Vec<_> = (0..2600).map(|i| candidate(i, "answer")).collect();
        records.insert(2500, serde_json::json!({"id": "broken", "rounds": 5}));
        let file = write_file(dir.path(), "broken.json", &records);
        let mut ws = TestWorkspace::new(db);

        let err = import(&mut ws, &file, ConflictPolicy::Fail).unwrap_err();

        let message = format!("{err:#}");
        assert!(
            message.contains("broken.json: nothing imported"),
            "{message}"
        );
        assert!(
            message.contains("record 2500 (line 1): `rounds` is a number"),
            "{message}"
        );
        assert!(ws.sample_keys().unwrap().is_empty());
        assert_eq!(
            format!("{:?}", ws.stats().unwrap()),
            format!("{:?}", TestWorkspace::new(db).stats().unwrap())
        );
        let report = import(&mut ws, &release(dir.path()), ConflictPolicy::Fail).unwrap();
        assert_eq!(
            report.samples_added, 4500,
            "the workspace takes the next file"
        );
        assert_eq!(ws.foreign_key_violations(), Vec::<String>::new());
    }

    /// A file whose size no stored file has is hashed while it is parsed (one read), any other
    /// before (so a known file is not parsed at all); either way the stored SHA-256 is the
    /// file's, and the same contents are never imported twice, even when a stored size is wrong.
    fn a_file_imported_before_is_recognised_whether_hashed_first_or_while_parsing(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let first = release(dir.path());
        let records: Vec<_> = (0..30).map(|i| candidate(9000 + i, "other")).collect();
        let second = write_file(dir.path(), "second.json", &records);
        let mut ws = TestWorkspace::new(db);
        let file_hash = |file: &Path| {
            let bytes = std::fs::read(file).unwrap();
            (
                path_text(file),
                hex::encode(Sha256::digest(&bytes)),
                Some(bytes.len() as i64),
            )
        };

        assert_eq!(
            import(&mut ws, &first, ConflictPolicy::Fail)
                .unwrap()
                .samples_added,
            4500
        );
        assert_eq!(
            import(&mut ws, &second, ConflictPolicy::Fail)
                .unwrap()
                .samples_added,
            30
        );
        assert_eq!(
            ws.stored_sources(),
            vec![file_hash(&first), file_hash(&second)]
        );
        let stats = format!("{:?}", ws.stats().unwrap());

        let again = import(&mut ws, &first, ConflictPolicy::Fail).unwrap();
        assert!(again.already_imported, "same size: hashed first");
        // A stored size that does not match (the file was written to while it was imported):
        // the parse hashes it, and the stored hash still recognises it before anything is kept.
        ws.forge_source_sizes(Some(1));
        let again = import(&mut ws, &first, ConflictPolicy::Fail).unwrap();
        assert!(again.already_imported, "other size: hashed while parsing");
        assert_eq!(again.format, Some(Format::Candidates));
        // Files stored before sizes were recorded.
        ws.forge_source_sizes(None);
        assert!(
            import(&mut ws, &second, ConflictPolicy::Fail)
                .unwrap()
                .already_imported
        );
        assert_eq!(format!("{:?}", ws.stats().unwrap()), stats);
        assert_eq!(ws.foreign_key_violations(), Vec::<String>::new());
    }

    on_both_databases!(a_file_imported_before_is_recognised_whether_hashed_first_or_while_parsing);

    /// A server refuses what a directory takes: an id too long for its index. The batch goes
    /// back, the samples go in one at a time, and the error names the record.
    #[test]
    fn a_sample_the_server_refuses_is_named_with_its_record_and_nothing_is_stored() {
        if test_server().is_none() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut records: Vec<_> = (0..50).map(|i| candidate(i, "answer")).collect();
        let mut long = candidate(50, "answer");
        let id: String = (0..400u32)
            .map(|i| hex::encode(sha2::Sha256::digest(i.to_le_bytes())))
            .collect();
        long["id"] = id.into();
        records.insert(30, long);
        let file = write_file(dir.path(), "long.json", &records);
        let mut ws = TestWorkspace::new(TestDb::Postgres);

        let err = import(&mut ws, &file, ConflictPolicy::Fail).unwrap_err();

        let message = format!("{err:#}");
        assert!(
            message.contains("record 30 (line 1): sample `"),
            "{message}"
        );
        assert!(
            message.contains("54000"),
            "the server's own reason: {message}"
        );
        assert!(ws.sample_keys().unwrap().is_empty());
    }

    /// Clinician pairs carry verdicts: each is recorded once its sample is stored, across the
    /// writes of 2 000 samples, and a pair repeated later adds no second verdict.
    fn verdicts_of_pairs_are_recorded_for_every_stored_sample(db: TestDb) {
        let dir = tempfile::tempdir().unwrap();
        let pair = |i: usize| {
            serde_json::json!({
                "img": format!("p{i}.png"), "fig_caption": format!("caption {i}"),
                "inline_mention": "m", "question": format!("q {i}?"),
                "answer_positive": format!("yes {i}"), "answer_negative": if i.is_multiple_of(10) { String::new() } else { format!("no {i}") },
            })
        };
        let mut records: Vec<_> = (0..2100).map(pair).collect();
        records.push(pair(7));
        let file = write_file(dir.path(), "pairs.json", &records);
        let mut ws = TestWorkspace::new(db);

        let report = import(&mut ws, &file, ConflictPolicy::Fail).unwrap();

        assert_eq!((report.samples_added, report.samples_unchanged), (2100, 1));
        assert_eq!(report.verdicts_added, 4200);
        let stats = ws.stats().unwrap();
        assert_eq!((stats.answers, stats.judgments), (4200, 4200));
        assert_eq!(ws.foreign_key_violations(), Vec::<String>::new());
    }

    on_both_databases!(
        a_broken_record_after_thousands_of_good_ones_leaves_nothing,
        verdicts_of_pairs_are_recorded_for_every_stored_sample
    );

    fn llava(id: &str, image: &str) -> serde_json::Value {
        serde_json::json!({
            "id": id,
            "image": image,
            "conversations": [
                {"from": "human", "value": "<image>\nWhat is shown?"},
                {"from": "gpt", "value": "A chest X-ray."}
            ]
        })
    }

    #[test]
    fn images_beside_the_file_register_their_folder_and_missing_ones_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("images")).unwrap();
        std::fs::write(data.join("images/a.png"), b"png").unwrap();
        std::fs::write(data.join("b.png"), b"png").unwrap();
        std::fs::write(dir.path().join("secret.png"), b"png").unwrap();
        let records = serde_json::json!([
            llava("1", "a.png"),
            llava("2", "b.png"),
            llava("3", "absent.png"),
            llava("4", "../secret.png"),
            llava("5", "https://example.org/f.png"),
        ]);
        let file = data.join("release.json");
        std::fs::write(&file, records.to_string()).unwrap();
        let mut ws = Workspace::open(&dir.path().join("ws")).unwrap();

        let report = import_file(&mut ws, &file, &ImportOptions::default(), &|_, _| {}).unwrap();

        assert_eq!(report.samples_added, 5);
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap();
        assert_eq!(
            ws.image_dirs().unwrap(),
            vec![canonical(&data.join("images")), canonical(&data)],
            "each folder beside the file that holds an image is registered once, in the order found"
        );
        // absent.png and ../secret.png (outside every folder vital may read); the URL is fetched later.
        assert_eq!(
            report.warnings.get(
                "image file not found (in the --images folders, beside the file or in the download cache; fetch missing ones with `vital fetch-images`)"
            ),
            Some(&1),
            "{:?}",
            report.warnings
        );
        assert!(report.warning_details.to_string().contains("2 sample(s)"));
    }
}
