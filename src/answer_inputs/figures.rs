//! A figure is decoded once: the statistics of each image file come from the workspace when the
//! file is unchanged (same size and modification time as when it was read) or its content was
//! seen before (same SHA-256), and are otherwise computed now, in parallel, and stored. Scores
//! and retrains then read them instead of decoding every figure again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::selector::image_stats::{image_stats_of_bytes, ImageStats};
use crate::store::{FigureFile, NewFigure, StoredFigureStats, Workspace};

/// Version of the statistics computation: bump it when `image_stats` changes what it computes,
/// and stored statistics are computed again.
pub const STATS_VERSION: i64 = 1;

/// A file modified less than this before it was read is not remembered by path: file times are
/// coarse (a few ms), so it could change again within the same time and size unseen. Its
/// content's statistics are stored; the path is hashed again next time.
const RACY: Duration = Duration::from_secs(2);

/// Computes one file's statistics from its bytes; `None` when they do not decode.
pub type Decode<'a> = dyn Fn(&[u8]) -> Option<ImageStats> + Sync + 'a;

/// The real decoder.
pub fn decode(bytes: &[u8]) -> Option<ImageStats> {
    image_stats_of_bytes(bytes).ok()
}

/// Statistics of `paths` (`None`: the file is unreadable or does not decode), decoding only
/// contents the workspace has not seen, and storing what was computed.
pub fn figure_stats(
    ws: &Workspace,
    paths: &[PathBuf],
    decode: &Decode<'_>,
) -> anyhow::Result<HashMap<PathBuf, Option<ImageStats>>> {
    let mut known = HashMap::new();
    let mut to_read = Vec::new();
    for path in paths {
        let Some(text) = path.to_str() else {
            to_read.push((path.clone(), String::new()));
            continue;
        };
        let now = file_state(path);
        match (ws.figure_file(text, STATS_VERSION)?, now) {
            (Some((stored, Some(stats))), Some((size, mtime_ns)))
                if stored.size == size && stored.mtime_ns == mtime_ns =>
            {
                known.insert(path.clone(), to_stats(stats));
            }
            _ => to_read.push((path.clone(), text.to_string())),
        }
    }
    if to_read.is_empty() {
        return Ok(known);
    }
    // Read and hash in parallel; decode only contents neither stored nor met in this batch.
    let read = parallel(&to_read, |(path, _)| read_and_hash(path));
    let racy: Vec<bool> = read
        .iter()
        .map(|f| f.as_ref().is_some_and(is_racy))
        .collect();
    let mut new_contents: HashMap<[u8; 32], usize> = HashMap::new();
    let mut pending: Vec<(usize, FigureFile)> = Vec::new();
    for (i, state) in read.into_iter().enumerate() {
        match state {
            None => {
                known.insert(to_read[i].0.clone(), None);
            }
            Some(file) => {
                if let Some(stats) = ws.figure_stats(&file.content_sha256, STATS_VERSION)? {
                    known.insert(to_read[i].0.clone(), to_stats(stats.clone()));
                    pending.push((i, file));
                } else {
                    new_contents.entry(file.content_sha256).or_insert(i);
                    pending.push((i, file));
                }
            }
        }
    }
    let mut to_decode: Vec<(&PathBuf, [u8; 32])> = new_contents
        .iter()
        .map(|(hash, &i)| (&to_read[i].0, *hash))
        .collect();
    to_decode.sort_by(|a, b| a.0.cmp(b.0));
    // `None`: the file changed since it was hashed (or vanished); it is read again next time.
    let decoded: HashMap<[u8; 32], Option<Option<ImageStats>>> = to_decode
        .iter()
        .map(|(_, hash)| *hash)
        .zip(parallel(&to_decode, |(path, hash)| {
            let bytes = std::fs::read(path).ok()?;
            (Sha256::digest(&bytes)[..] == hash[..]).then(|| decode(&bytes))
        }))
        .collect();
    let mut stored_now = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (i, file) in pending {
        let (path, text) = &to_read[i];
        let stats = match decoded.get(&file.content_sha256) {
            // Stored before, under another path or an older state of this one.
            None => None,
            Some(None) => {
                known.insert(path.clone(), None);
                continue;
            }
            Some(Some(stats)) => {
                known.insert(path.clone(), *stats);
                // Each new content is stored once, however many paths hold it.
                stored_now
                    .insert(file.content_sha256)
                    .then(|| stats.map(|s| s.to_vec()))
            }
        };
        // A path that is not UTF-8, or a file modified moments ago, is not remembered.
        let path = (!text.is_empty() && !racy[i]).then(|| text.clone());
        if path.is_some() || stats.is_some() {
            rows.push(NewFigure { path, file, stats });
        }
    }
    ws.store_figures(&rows, STATS_VERSION)?;
    Ok(known)
}

/// Size and modification time (ns since 1970) of `path`, if it can be read.
fn file_state(path: &Path) -> Option<(u64, i64)> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((meta.len(), mtime.as_nanos() as i64))
}

fn read_and_hash(path: &Path) -> Option<FigureFile> {
    // The state first: a file changed while it is read gets a new state, so it is read again.
    let (size, mtime_ns) = file_state(path)?;
    let bytes = std::fs::read(path).ok()?;
    Some(FigureFile {
        size,
        mtime_ns,
        content_sha256: Sha256::digest(&bytes).into(),
    })
}

fn is_racy(file: &FigureFile) -> bool {
    let modified = UNIX_EPOCH + Duration::from_nanos(file.mtime_ns.max(0) as u64);
    SystemTime::now()
        .duration_since(modified)
        .map_or(true, |age| age < RACY)
}

fn to_stats(stored: StoredFigureStats) -> Option<ImageStats> {
    stored.and_then(|v| v.try_into().ok())
}

/// `f` over `items` on all cores, results in order.
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a figure worker panicked"))
            .collect()
    })
}

#[cfg(test)]
mod tests;
