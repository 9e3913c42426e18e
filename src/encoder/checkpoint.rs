//! A checkpoint's claims checked against the file that holds them, before burn-store reads or
//! allocates anything from it. burn-store trusts what a file says: a tensor's shape, a pickled
//! storage's element count and a zip entry's size each become one allocation of that size, so a
//! few hand-made bytes claiming 10^12 elements aborted the process ("memory allocation of
//! 4000000000000 bytes failed"). Here every such claim must fit the bytes that are really there:
//!
//! * `model.safetensors`: each tensor's shape × dtype size against the data the file holds;
//! * `pytorch_model.bin`, zip layout (torch ≥ 1.6): every entry's size against the file, then the
//!   pickle's storages and tensors against the data file each one names;
//! * `pytorch_model.bin`, legacy layout (torch < 1.6): the storages, laid end to end as burn-store
//!   lays them, against the data section;
//! * the pickle itself: lengths against the bytes left, and no object copied into more than
//!   [`MAX_PICKLE_OBJECTS`] (burn-store's reader copies memoised objects whole);
//! * after burn-store has read the headers ([`check_snapshots`]), every tensor again against the
//!   file and [`MAX_TENSOR_BYTES`];
//! * a BERT config against the checkpoint ([`check_bert_against`]): its layers must be there.
//!
//! Each refusal names the file and the tensor, storage or setting, and comes before any large
//! allocation. The pickle reader mirrors burn-store's (protocol 2, the opcodes torch.save writes)
//! so that what is checked here is what burn-store will read.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, ensure, Context, Result};
use burn_store::TensorSnapshot;

use super::config::{BertConfig, WeightsFile};

/// The largest tensor, storage or zip entry accepted: 4 GiB (BERT-large's largest tensor, the
/// word embeddings, is 125 MB in f32).
pub(crate) const MAX_TENSOR_BYTES: u64 = 4 << 30;

/// The largest pickle (`data.pkl`) read into memory; torch writes a few hundred bytes per tensor.
const MAX_PICKLE_BYTES: u64 = 64 << 20;

/// The most objects the pickle may create or copy. burn-store's reader copies an object whole
/// each time the pickle memoises or fetches it, so a few hundred bytes that fetch a pair of
/// pairs of pairs… would build 2^40 objects; a real state dict needs a few hundred per tensor.
const MAX_PICKLE_OBJECTS: u64 = 10_000_000;

/// Checks `file`'s own claims (see the module's rules) before burn-store opens it.
pub(crate) fn check_file(file: &WeightsFile) -> Result<()> {
    let path = file.path();
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    match file {
        WeightsFile::Safetensors(_) => check_safetensors(path, len),
        WeightsFile::Pytorch(_) => check_pytorch(path, len),
    }
}

/// Every tensor's shape × dtype size (what reading it allocates) against the file's size and
/// [`MAX_TENSOR_BYTES`]. Costs nothing: burn-store's snapshots are lazy.
pub(crate) fn check_snapshots(snapshots: &[TensorSnapshot], file: &WeightsFile) -> Result<()> {
    let path = file.path();
    let len = std::fs::metadata(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .len();
    for snapshot in snapshots {
        let bytes = snapshot
            .shape
            .iter()
            .try_fold(snapshot.dtype.size() as u64, |acc, &d| {
                acc.checked_mul(d as u64)
            });
        match bytes {
            Some(bytes) if bytes <= len.min(MAX_TENSOR_BYTES) => {}
            _ => bail!(
                "{}: tensor `{}` claims shape {:?} of {:?} ({}), more than the file's {len} bytes{}: refused",
                path.display(),
                snapshot.full_path(),
                &snapshot.shape[..],
                snapshot.dtype,
                bytes.map_or("more bytes than a u64 counts".to_string(), |b| format!("{b} bytes")),
                if len > MAX_TENSOR_BYTES {
                    format!(" or the {MAX_TENSOR_BYTES} vital accepts for one tensor")
                } else {
                    String::new()
                },
            ),
        }
    }
    Ok(())
}

/// `bert` (read from `config`) against the checkpoint's tensors, whose keys start with `prefix`
/// (after the loader's renames): every layer it names must be there, and the weights file must be
/// big enough for its parameters at 2 bytes each (f16, the smallest type the loader reads). The
/// model is allocated whole before the weights are applied, so this comes first.
pub(crate) fn check_bert_against(
    bert: &BertConfig,
    snapshots: &[TensorSnapshot],
    prefix: &str,
    config: &Path,
    weights: &WeightsFile,
) -> Result<()> {
    let layer_prefix = format!("{prefix}encoder.layer.");
    let held: BTreeSet<usize> = snapshots
        .iter()
        .filter_map(|s| {
            let path = s.full_path();
            let rest = path.strip_prefix(&layer_prefix)?;
            rest.split('.').next()?.parse::<usize>().ok()
        })
        .collect();
    let wanted = bert.num_hidden_layers;
    let missing = (0..wanted).find(|i| !held.contains(i));
    if held.len() < wanted || missing.is_some() {
        bail!(
            "{}: num_hidden_layers {wanted}, but {} holds {}: refused",
            config.display(),
            weights.path().display(),
            match (held.first(), held.last()) {
                (Some(first), Some(last)) => format!(
                    "{} layers ({layer_prefix}{first} … {layer_prefix}{last}{})",
                    held.len(),
                    // A gap below the last layer held, not just too few layers.
                    missing
                        .filter(|m| m < last)
                        .map_or(String::new(), |m| format!(", without {layer_prefix}{m}"))
                ),
                _ => format!("no `{layer_prefix}N` layer"),
            }
        );
    }
    let len = std::fs::metadata(weights.path())
        .with_context(|| format!("{}: cannot read", weights.path().display()))?
        .len();
    let parameters = bert.parameter_count();
    ensure!(
        parameters.saturating_mul(2) <= len,
        "{}: hidden_size {}, intermediate_size {}, vocab_size {} and max_position_embeddings {} make {parameters} parameters, at least {} bytes of weights, but {} holds {len} bytes: refused",
        config.display(),
        bert.hidden_size,
        bert.intermediate_size,
        bert.vocab_size,
        bert.max_position_embeddings,
        parameters.saturating_mul(2),
        weights.path().display(),
    );
    Ok(())
}

// ---- safetensors ----------------------------------------------------------------------------

/// safetensors' own limit on the JSON header.
const MAX_SAFETENSORS_HEADER: u64 = 100_000_000;

fn check_safetensors(path: &Path, len: u64) -> Result<()> {
    let name = path.display();
    let mut f = File::open(path).with_context(|| format!("{name}: cannot read"))?;
    let mut n = [0u8; 8];
    f.read_exact(&mut n)
        .with_context(|| format!("{name}: {len} bytes, too short for a safetensors file"))?;
    let n = u64::from_le_bytes(n);
    ensure!(
        n <= (len - 8).min(MAX_SAFETENSORS_HEADER),
        "{name}: the header claims {n} bytes, more than the file's {len}{}: refused",
        if n > MAX_SAFETENSORS_HEADER {
            format!(" or safetensors' limit of {MAX_SAFETENSORS_HEADER}")
        } else {
            String::new()
        }
    );
    let mut header = vec![0; n as usize];
    f.read_exact(&mut header)
        .with_context(|| format!("{name}: cannot read the header"))?;
    let header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header)
        .with_context(|| format!("{name}: the header is not a JSON object"))?;
    let data = len - 8 - n;
    for (tensor, info) in &header {
        if tensor == "__metadata__" {
            continue;
        }
        let dtype = info.get("dtype").and_then(|d| d.as_str()).unwrap_or("");
        let shape: Option<Vec<u64>> = info
            .get("shape")
            .and_then(|s| s.as_array())
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let (Some(size), Some(shape)) = (safetensors_dtype_size(dtype), shape) else {
            bail!("{name}: tensor `{tensor}` has no dtype and shape safetensors knows: {info}");
        };
        let bytes = shape.iter().try_fold(size, |acc, &d| acc.checked_mul(d));
        match bytes {
            Some(bytes) if bytes <= data.min(MAX_TENSOR_BYTES) => {}
            _ => bail!(
                "{name}: tensor `{tensor}` claims shape {shape:?} of {dtype} ({}), more than the {data} bytes of data the file holds{}: refused",
                bytes.map_or("more bytes than a u64 counts".to_string(), |b| format!("{b} bytes")),
                if data > MAX_TENSOR_BYTES {
                    format!(" or the {MAX_TENSOR_BYTES} vital accepts for one tensor")
                } else {
                    String::new()
                },
            ),
        }
    }
    Ok(())
}

/// Bytes per element of a safetensors dtype; None for the packed sub-byte types, which the
/// loader cannot read anyway.
fn safetensors_dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "F32" | "I32" | "U32" => 4,
        "F64" | "I64" | "U64" => 8,
        _ => return None,
    })
}

// ---- pytorch_model.bin ----------------------------------------------------------------------

/// The pickled magic number that opens a legacy torch file (as burn-store recognises it).
const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

fn check_pytorch(path: &Path, len: u64) -> Result<()> {
    let name = path.display();
    let mut f = File::open(path).with_context(|| format!("{name}: cannot read"))?;
    // burn-store tries the zip layout first: any file with an end-of-archive record is a zip.
    if let Some(zip) = Zip::read(&mut f, len).with_context(|| format!("{name}: a broken zip"))? {
        return check_zip(path, &mut f, len, &zip);
    }
    let mut head = [0u8; 263];
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read(&mut head))
        .with_context(|| format!("{name}: cannot read"))?;
    if head[..15] == LEGACY_MAGIC {
        return check_legacy(path, f, len);
    }
    if &head[257..262] == b"ustar" {
        bail!(
            "{name}: a tar checkpoint (torch before 0.1.10) is not supported: save it again with torch.save"
        );
    }
    bail!(
        "{name}: not a PyTorch checkpoint (neither torch.save's zip layout nor its legacy layout)"
    )
}

/// One zip entry, from the central directory.
#[derive(Debug)]
struct ZipEntry {
    name: String,
    method: u16,
    compressed: u64,
    size: u64,
    header_offset: u64,
}

/// A zip archive's entries, read only as far as needed to check them.
struct Zip {
    entries: Vec<ZipEntry>,
    /// Where the central directory starts: every entry's data lies before it.
    directory_start: u64,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(bytes)
}

fn read_at(f: &mut File, at: u64, n: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; n];
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(&mut buf)
        .with_context(|| format!("{n} bytes at byte {at} are past the end"))?;
    Ok(buf)
}

/// The largest central directory read (torch writes about 100 bytes per tensor).
const MAX_ZIP_DIRECTORY: u64 = 16 << 20;

impl Zip {
    /// The archive's entries; None when the file has no end-of-archive record (not a zip). The
    /// directory must sit where the end record says, and end where the end record (or the zip64
    /// one) begins: a zip reader then finds the same entries as this one.
    fn read(f: &mut File, len: u64) -> Result<Option<Zip>> {
        const EOCD: u32 = 0x0605_4b50;
        let tail_len = len.min(22 + 65_535);
        let tail = read_at(f, len - tail_len, tail_len as usize)?;
        let Some(at) = (0..tail.len().saturating_sub(21))
            .rev()
            .find(|&i| u32_at(&tail, i) == EOCD)
        else {
            return Ok(None);
        };
        let eocd_pos = len - tail_len + at as u64;
        let e = &tail[at..];
        ensure!(
            eocd_pos + 22 + u64::from(u16_at(e, 20)) == len,
            "the end record at byte {eocd_pos} does not end the file"
        );
        ensure!(
            u16_at(e, 4) == 0 && u16_at(e, 6) == 0,
            "archives split over several disks are not supported"
        );
        let mut count = u64::from(u16_at(e, 10));
        let mut dir_size = u64::from(u32_at(e, 12));
        let mut dir_start = u64::from(u32_at(e, 16));
        let mut dir_end = eocd_pos;
        // A zip64 locator right before the end record points at the zip64 end record, whose
        // numbers replace the 32-bit ones (torch writes both).
        if eocd_pos >= 20 {
            let locator = read_at(f, eocd_pos - 20, 20)?;
            if u32_at(&locator, 0) == 0x0706_4b50 {
                let at = u64_at(&locator, 8);
                ensure!(
                    at.checked_add(56).is_some_and(|end| end <= eocd_pos - 20),
                    "the zip64 end record at byte {at} is outside the file"
                );
                let z = read_at(f, at, 56)?;
                ensure!(
                    u32_at(&z, 0) == 0x0606_4b50,
                    "no zip64 end record at byte {at}"
                );
                count = u64_at(&z, 32);
                dir_size = u64_at(&z, 40);
                dir_start = u64_at(&z, 48);
                dir_end = at;
            }
        }
        ensure!(
            dir_size <= MAX_ZIP_DIRECTORY,
            "the central directory claims {dir_size} bytes, more than {MAX_ZIP_DIRECTORY}"
        );
        ensure!(
            dir_start.checked_add(dir_size) == Some(dir_end),
            "the central directory ({dir_size} bytes at byte {dir_start}) does not end where the end record begins (byte {dir_end})"
        );
        let dir = read_at(f, dir_start, dir_size as usize)?;
        let mut entries = Vec::new();
        let mut at = 0usize;
        while at < dir.len() {
            ensure!(
                dir.len() - at >= 46 && u32_at(&dir, at) == 0x0201_4b50,
                "entry {} of the central directory is broken",
                entries.len() + 1
            );
            let h = &dir[at..];
            let (name_len, extra_len, comment_len) = (
                u16_at(h, 28) as usize,
                u16_at(h, 30) as usize,
                u16_at(h, 32) as usize,
            );
            ensure!(
                h.len() >= 46 + name_len + extra_len + comment_len,
                "entry {} of the central directory runs past its end",
                entries.len() + 1
            );
            let name = String::from_utf8_lossy(&h[46..46 + name_len]).into_owned();
            let mut compressed = u64::from(u32_at(h, 20));
            let mut size = u64::from(u32_at(h, 24));
            let mut header_offset = u64::from(u32_at(h, 42));
            // The zip64 extra field holds, in this order, whichever of the three is 0xFFFFFFFF.
            let mut extra = &h[46 + name_len..46 + name_len + extra_len];
            while extra.len() >= 4 {
                let (id, n) = (u16_at(extra, 0), u16_at(extra, 2) as usize);
                let data = extra.get(4..4 + n).unwrap_or(&[]);
                if id == 1 {
                    let mut values = data.chunks_exact(8).map(|c| u64_at(c, 0));
                    for field in [&mut size, &mut compressed, &mut header_offset] {
                        if *field == 0xFFFF_FFFF {
                            *field = values
                                .next()
                                .with_context(|| format!("`{name}`: a short zip64 field"))?;
                        }
                    }
                }
                extra = extra.get(4 + n..).unwrap_or(&[]);
            }
            entries.push(ZipEntry {
                name,
                method: u16_at(h, 10),
                compressed,
                size,
                header_offset,
            });
            at += 46 + name_len + extra_len + comment_len;
        }
        ensure!(
            entries.len() as u64 == count,
            "the end record counts {count} entries, the central directory holds {}",
            entries.len()
        );
        Ok(Some(Zip {
            entries,
            directory_start: dir_start,
        }))
    }

    /// Where `entry`'s data starts (after its local header), checked to lie before the directory.
    fn data_start(&self, f: &mut File, entry: &ZipEntry) -> Result<u64> {
        let local = read_at(f, entry.header_offset, 30)
            .with_context(|| format!("`{}`: no local header", entry.name))?;
        ensure!(
            u32_at(&local, 0) == 0x0403_4b50,
            "`{}`: no local header at byte {}",
            entry.name,
            entry.header_offset
        );
        let start = entry.header_offset
            + 30
            + u64::from(u16_at(&local, 26))
            + u64::from(u16_at(&local, 28));
        ensure!(
            start
                .checked_add(entry.compressed)
                .is_some_and(|end| end <= self.directory_start),
            "`{}`: {} bytes at byte {start} run past the archive's data",
            entry.name,
            entry.compressed
        );
        Ok(start)
    }
}

fn check_zip(path: &Path, f: &mut File, len: u64, zip: &Zip) -> Result<()> {
    let name = path.display();
    let mut seen = BTreeSet::new();
    for e in &zip.entries {
        ensure!(
            seen.insert(e.name.as_str()),
            "{name}: the archive holds `{}` twice: refused",
            e.name
        );
        match e.method {
            // Stored, as torch.save writes: the data is the bytes in the file.
            0 => ensure!(
                e.size == e.compressed && e.size <= len,
                "{name}: entry `{}` claims {} bytes, but {} are stored (file: {len} bytes): refused",
                e.name,
                e.size,
                e.compressed
            ),
            // Deflated (an archive re-packed by hand): bounded, since the reader sizes its buffer
            // by the claim.
            8 => ensure!(
                e.size <= MAX_TENSOR_BYTES && e.compressed <= len,
                "{name}: entry `{}` claims {} bytes unpacked, more than the {MAX_TENSOR_BYTES} vital accepts: refused",
                e.name,
                e.size
            ),
            other => bail!(
                "{name}: entry `{}` uses compression method {other}; torch.save stores entries uncompressed",
                e.name
            ),
        }
    }
    // The pickle burn-store reads: data.pkl, archive/data.pkl, else the first *data.pkl.
    let pickle = ["data.pkl", "archive/data.pkl"]
        .iter()
        .find_map(|p| zip.entries.iter().find(|e| e.name == *p))
        .or_else(|| zip.entries.iter().find(|e| e.name.ends_with("data.pkl")))
        .with_context(|| format!("{name}: no data.pkl in the archive (not a torch.save file)"))?;
    ensure!(
        pickle.size <= MAX_PICKLE_BYTES,
        "{name}: `{}` claims {} bytes, more than the {MAX_PICKLE_BYTES} vital reads for a pickle: refused",
        pickle.name,
        pickle.size
    );
    let start = zip
        .data_start(f, pickle)
        .with_context(|| format!("{name}"))?;
    let stored = read_at(f, start, pickle.compressed as usize)
        .with_context(|| format!("{name}: cannot read `{}`", pickle.name))?;
    let bytes = if pickle.method == 8 {
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(stored.as_slice())
            .take(pickle.size)
            .read_to_end(&mut out)
            .with_context(|| format!("{name}: cannot unpack `{}`", pickle.name))?;
        out
    } else {
        stored
    };
    let len_pickle = bytes.len() as u64;
    let mut scanner = Scanner::new(bytes.as_slice(), len_pickle);
    scanner
        .pickle()
        .with_context(|| format!("{name}: `{}`", pickle.name))?;
    // The data file of each storage, found as burn-store finds it: `data/KEY`, else any data
    // file whose last part is KEY. Every candidate must hold what the storage claims.
    let data_files: Vec<&ZipEntry> = zip
        .entries
        .iter()
        .filter(|e| e.name.starts_with("data/") || e.name.contains("/data/"))
        .filter(|e| !e.name.ends_with(".pkl") && !e.name.ends_with('/'))
        .collect();
    for (key, claim) in &scanner.storages {
        let exact = format!("data/{key}");
        let candidates: Vec<&ZipEntry> = match zip.entries.iter().find(|e| e.name == exact) {
            Some(e) => vec![e],
            None => data_files
                .iter()
                .copied()
                .filter(|e| {
                    e.name.ends_with(&format!("/data/{key}"))
                        || (e.name.contains("/data/")
                            && e.name.rsplit('/').next() == Some(key.as_str()))
                })
                .collect(),
        };
        ensure!(
            !candidates.is_empty(),
            "{name}: {} has no data file in the archive (it would load as zeros): refused",
            claim.describe(key)
        );
        for e in candidates {
            ensure!(
                claim.bytes <= e.size,
                "{name}: {}, but its data file `{}` holds {} bytes: refused",
                claim.describe(key),
                e.name,
                e.size
            );
        }
    }
    Ok(())
}

fn check_legacy(path: &Path, mut f: File, len: u64) -> Result<()> {
    let name = path.display();
    f.seek(SeekFrom::Start(0))
        .with_context(|| format!("{name}: cannot read"))?;
    let mut scanner = Scanner::new(BufReader::new(f), len);
    for what in ["magic number", "protocol version", "system information"] {
        scanner
            .pickle()
            .with_context(|| format!("{name}: the {what}"))?;
    }
    scanner
        .pickle()
        .with_context(|| format!("{name}: the state dict"))?;
    let keys = match scanner
        .pickle()
        .with_context(|| format!("{name}: the list of storages"))?
        .val
    {
        Val::List(items) => items
            .iter()
            .filter_map(|v| match &v.val {
                Val::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    // burn-store reads storages only once every listed one is used by a tensor, and gives
    // zeros for a storage it cannot place: both lists must be the same.
    let listed: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    for (key, claim) in &scanner.storages {
        ensure!(
            listed.contains(key.as_str()),
            "{name}: {} is missing from the file's list of storages (it would load as zeros): refused",
            claim.describe(key)
        );
    }
    if let Some(unused) = keys.iter().find(|k| !scanner.storages.contains_key(*k)) {
        bail!("{name}: storage `{unused}` is listed but no tensor uses it (every tensor would load as zeros): refused");
    }
    // The storages lie end to end after the pickles, each after its 8-byte element count, sized
    // by what the pickle claims: the claims must fit the bytes that follow.
    let data = len - scanner.pos;
    let mut end = 0u64;
    for key in &keys {
        let claim = &scanner.storages[key];
        end = end.saturating_add(8).saturating_add(claim.bytes);
        ensure!(
            end <= data,
            "{name}: {}, more than the {data} bytes of the file's data section{}: refused",
            claim.describe(key),
            if claim.bytes.saturating_add(8) <= data {
                format!(" after the storages before it (it would end at byte {end})")
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

// ---- the pickle -----------------------------------------------------------------------------

/// What the pickle's tensors claim of one storage.
#[derive(Debug)]
struct StorageClaim {
    /// The bytes a reader must set aside for it: its element count (or the furthest element
    /// a tensor reaches, when the count is not given) × the element size.
    bytes: u64,
    elements: u64,
    storage_type: String,
    /// The first tensor seen using it (once the pickle names it).
    tensor: Option<String>,
}

impl StorageClaim {
    fn describe(&self, key: &str) -> String {
        format!(
            "storage `{key}`{} claims {} elements of {} ({} bytes)",
            self.tensor
                .as_ref()
                .map_or(String::new(), |t| format!(" (tensor `{t}`)")),
            self.elements,
            self.storage_type,
            self.bytes
        )
    }
}

/// A pickled value as burn-store's reader would hold it, with the number of objects it is made
/// of (`weight`): what one copy costs there. Containers share their contents here (`Rc`), so
/// copies cost this reader nothing.
#[derive(Debug, Clone)]
struct V {
    val: Val,
    weight: u64,
}

#[derive(Debug, Clone)]
enum Val {
    Int(i64),
    Str(Rc<str>),
    /// A class (`GLOBAL`); `mark.mark` is burn-store's stack marker.
    Global(Rc<str>, Rc<str>),
    Tuple(Rc<Vec<V>>),
    List(Rc<Vec<V>>),
    /// Key, value, key, value…
    Dict(Rc<Vec<V>>),
    /// A persistent id that is a tuple (torch's storages).
    Persistent(Rc<Vec<V>>),
    /// An object built by `NEWOBJ`.
    NewObj,
    /// A tensor, by its storage key.
    Tensor(Rc<str>),
    Other,
}

impl V {
    fn leaf(val: Val) -> V {
        V { val, weight: 1 }
    }
    fn of(items: Vec<V>, make: fn(Rc<Vec<V>>) -> Val) -> V {
        let weight = items.iter().fold(1u64, |w, v| w.saturating_add(v.weight));
        V {
            val: make(Rc::new(items)),
            weight,
        }
    }
    fn is_mark(&self) -> bool {
        matches!(&self.val, Val::Global(m, n) if &**m == "mark" && &**n == "mark")
    }
    fn kind(&self) -> &'static str {
        match self.val {
            Val::Int(_) => "an integer",
            Val::Str(_) => "a string",
            Val::Global(..) => "a class",
            Val::Tuple(_) => "a tuple",
            Val::List(_) => "a list",
            Val::Dict(_) => "a dict",
            Val::Persistent(_) => "a persistent id",
            Val::NewObj => "an object",
            Val::Tensor(_) => "a tensor",
            Val::Other => "a value",
        }
    }
}

/// Reads pickles (protocol 2, the opcodes burn-store reads) from `r`, whose bytes end at `end`,
/// collecting the storages the tensors claim.
struct Scanner<R: BufRead> {
    r: R,
    pos: u64,
    end: u64,
    /// Objects created or copied so far (see [`MAX_PICKLE_OBJECTS`]).
    objects: u64,
    storages: BTreeMap<String, StorageClaim>,
}

impl<R: BufRead> Scanner<R> {
    fn new(r: R, end: u64) -> Self {
        Scanner {
            r,
            pos: 0,
            end,
            objects: 0,
            storages: BTreeMap::new(),
        }
    }

    fn bytes(&mut self, n: u64) -> Result<Vec<u8>> {
        ensure!(
            n <= self.end - self.pos,
            "byte {}: {n} bytes claimed, {} left: refused",
            self.pos,
            self.end - self.pos
        );
        let mut buf = vec![0; n as usize];
        self.r.read_exact(&mut buf)?;
        self.pos += n;
        Ok(buf)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.bytes(2)?;
        Ok(u16_at(&b, 0))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32_at(&b, 0))
    }
    fn line(&mut self) -> Result<String> {
        let mut line = Vec::new();
        // At most what is left (and a little more than any real class name).
        let limit = (self.end - self.pos).min(64 << 10);
        (&mut self.r).take(limit).read_until(b'\n', &mut line)?;
        self.pos += line.len() as u64;
        ensure!(
            line.pop() == Some(b'\n'),
            "byte {}: a line without its end",
            self.pos
        );
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).with_context(|| format!("byte {}: not UTF-8", self.pos))
    }
    fn string(&mut self, n: u64) -> Result<V> {
        let bytes = self.bytes(n)?;
        let s =
            String::from_utf8(bytes).with_context(|| format!("byte {}: not UTF-8", self.pos))?;
        Ok(V::leaf(Val::Str(s.into())))
    }

    /// Counts the objects a copy of `v` makes in burn-store's reader.
    fn copied(&mut self, v: &V) -> Result<()> {
        self.objects = self.objects.saturating_add(v.weight);
        ensure!(
            self.objects <= MAX_PICKLE_OBJECTS,
            "byte {}: the pickle copies its objects into more than {MAX_PICKLE_OBJECTS}: refused",
            self.pos
        );
        Ok(())
    }

    /// One pickle, up to its STOP; returns the value it leaves.
    fn pickle(&mut self) -> Result<V> {
        let mut stack: Vec<V> = Vec::new();
        let mut memo: HashMap<u32, V> = HashMap::new();
        fn pop(stack: &mut Vec<V>) -> Result<V> {
            stack.pop().context("the pickle's stack is empty")
        }
        fn to_mark(stack: &mut Vec<V>) -> Result<Vec<V>> {
            let at = stack
                .iter()
                .rposition(V::is_mark)
                .context("no mark on the pickle's stack")?;
            let items = stack.split_off(at + 1);
            stack.pop();
            Ok(items)
        }
        loop {
            let at = self.pos;
            let op = self.u8()?;
            let pushed = match op {
                0x80 => {
                    let version = self.u8()?;
                    ensure!(version <= 5, "byte {at}: pickle protocol {version}");
                    continue;
                }
                b'c' => {
                    let (module, name) = (self.line()?, self.line()?);
                    V::leaf(Val::Global(module.into(), name.into()))
                }
                b'J' => V::leaf(Val::Int(i64::from(self.u32()? as i32))),
                b'K' => V::leaf(Val::Int(i64::from(self.u8()?))),
                b'M' => V::leaf(Val::Int(i64::from(self.u16()?))),
                b'I' => {
                    let line = self.line()?;
                    let n = line
                        .parse::<i64>()
                        .with_context(|| format!("byte {at}: INT {line:?}"))?;
                    V::leaf(Val::Int(n))
                }
                0x8a => {
                    // LONG1 as burn-store reads it: the first 8 bytes, sign-extended.
                    let n = self.u8()?;
                    let bytes = self.bytes(u64::from(n))?;
                    let mut value = 0i64;
                    for (i, &b) in bytes.iter().enumerate().take(8) {
                        value |= i64::from(b).wrapping_shl(i as u32 * 8);
                    }
                    if (n as usize) < 8 && bytes.last().is_some_and(|&b| b & 0x80 != 0) {
                        for i in n as usize..8 {
                            value |= 0xffi64.wrapping_shl(i as u32 * 8);
                        }
                    }
                    V::leaf(Val::Int(value))
                }
                b'G' => {
                    self.bytes(8)?;
                    V::leaf(Val::Other)
                }
                b'X' => {
                    let n = self.u32()?;
                    self.string(u64::from(n))?
                }
                b'U' => {
                    let n = self.u8()?;
                    self.string(u64::from(n))?
                }
                b'N' | 0x88 | 0x89 => V::leaf(Val::Other),
                b'(' => V::leaf(Val::Global("mark".into(), "mark".into())),
                b')' => V::of(Vec::new(), Val::Tuple),
                b']' => V::of(Vec::new(), Val::List),
                b'}' => V::of(Vec::new(), Val::Dict),
                b't' => V::of(to_mark(&mut stack)?, Val::Tuple),
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    ensure!(stack.len() >= n, "byte {at}: TUPLE{n} on a short stack");
                    let items = stack.split_off(stack.len() - n);
                    V::of(items, Val::Tuple)
                }
                b'l' => V::of(to_mark(&mut stack)?, Val::List),
                b'd' => {
                    let items = to_mark(&mut stack)?;
                    ensure!(items.len() % 2 == 0, "byte {at}: DICT of an odd count");
                    self.name_tensors(&items);
                    // burn-store copies every value into its dict.
                    for v in &items {
                        self.copied(v)?;
                    }
                    V::of(items, Val::Dict)
                }
                b'a' | b'e' | b's' | b'u' => {
                    let items = match op {
                        b'a' => vec![pop(&mut stack)?],
                        b's' => {
                            let value = pop(&mut stack)?;
                            let key = pop(&mut stack)?;
                            vec![key, value]
                        }
                        _ => to_mark(&mut stack)?,
                    };
                    let target = stack.last_mut().context("the pickle's stack is empty")?;
                    let list_op = matches!(op, b'a' | b'e');
                    let slot = match (&mut target.val, list_op) {
                        (Val::List(existing), true) | (Val::Dict(existing), false) => existing,
                        _ => bail!(
                            "byte {at}: {} onto {}",
                            if list_op { "APPEND" } else { "SETITEM" },
                            target.kind()
                        ),
                    };
                    ensure!(
                        list_op || items.len() % 2 == 0,
                        "byte {at}: SETITEMS of an odd count"
                    );
                    let added = items
                        .iter()
                        .fold(0u64, |w, v| w.saturating_add(v.weight));
                    Rc::make_mut(slot).extend(items.iter().cloned());
                    target.weight = target.weight.saturating_add(added);
                    if !list_op {
                        self.name_tensors(&items);
                    }
                    continue;
                }
                b'Q' => {
                    let id = pop(&mut stack)?;
                    match id.val {
                        Val::Tuple(items) => V {
                            val: Val::Persistent(items),
                            weight: id.weight,
                        },
                        Val::Str(_) => V::leaf(Val::Other),
                        _ => bail!("byte {at}: a persistent id that is {}", id.kind()),
                    }
                }
                b'R' => {
                    let args = pop(&mut stack)?;
                    let callable = pop(&mut stack)?;
                    // burn-store keeps copies of both while it rebuilds.
                    self.copied(&args)?;
                    self.copied(&args)?;
                    match &callable.val {
                        Val::Global(m, n) if &**m == "collections" && &**n == "OrderedDict" => {
                            let items = match &args.val {
                                Val::Tuple(t) => match t.first().map(|v| &v.val) {
                                    Some(Val::List(l)) => Some(l.clone()),
                                    _ => None,
                                },
                                Val::List(l) => Some(l.clone()),
                                _ => None,
                            };
                            let mut pairs = Vec::new();
                            for item in items.iter().flat_map(|l| l.iter()) {
                                if let Val::List(pair) | Val::Tuple(pair) = &item.val {
                                    if let [key @ V { val: Val::Str(_), .. }, value, ..] = &pair[..] {
                                        self.copied(value)?;
                                        pairs.push(key.clone());
                                        pairs.push(value.clone());
                                    }
                                }
                            }
                            self.name_tensors(&pairs);
                            V::of(pairs, Val::Dict)
                        }
                        _ => self
                            .rebuild(vec![callable, args])
                            .with_context(|| format!("byte {at}"))?,
                    }
                }
                b'b' => {
                    let args = pop(&mut stack)?;
                    let mut target = pop(&mut stack)?;
                    match (&mut target.val, &args.val) {
                        (Val::Dict(items), Val::Dict(update)) => {
                            Rc::make_mut(items).extend(update.iter().cloned());
                            target.weight = target.weight.saturating_add(args.weight);
                            target
                        }
                        (Val::Dict(_), _) => target,
                        _ => V {
                            val: Val::Other,
                            weight: target.weight.saturating_add(args.weight),
                        },
                    }
                }
                0x81 => {
                    let args = pop(&mut stack)?;
                    let class = pop(&mut stack)?;
                    V {
                        val: Val::NewObj,
                        weight: 1u64.saturating_add(args.weight).saturating_add(class.weight),
                    }
                }
                b'q' | b'r' | 0x94 => {
                    let index = match op {
                        b'q' => u32::from(self.u8()?),
                        b'r' => self.u32()?,
                        _ => memo.len() as u32,
                    };
                    let top = stack.last().context("the pickle's stack is empty")?.clone();
                    self.copied(&top)?;
                    memo.insert(index, top);
                    continue;
                }
                b'h' | b'j' => {
                    let index = if op == b'h' {
                        u32::from(self.u8()?)
                    } else {
                        self.u32()?
                    };
                    let v = memo
                        .get(&index)
                        .with_context(|| format!("byte {at}: memo {index} was never stored"))?
                        .clone();
                    self.copied(&v)?;
                    v
                }
                b'.' => return pop(&mut stack),
                other => bail!(
                    "byte {at}: pickle opcode 0x{other:02x} is not one torch.save writes (protocol 2)"
                ),
            };
            self.copied(&pushed)?;
            stack.push(pushed);
        }
    }

    /// What burn-store's `rebuild_from_type_v2` makes of `[callable, args…]`.
    fn rebuild(&mut self, items: Vec<V>) -> Result<V> {
        let Some(Val::Global(module, name)) = items.first().map(|v| v.val.clone()) else {
            bail!("a call of something that is not a class");
        };
        let args: Vec<V> = match &items[..] {
            [_, V {
                val: Val::Tuple(t), ..
            }] => t.to_vec(),
            _ => items[1..].to_vec(),
        };
        match (&*module, &*name) {
            ("torch._utils", "_rebuild_tensor_v2") => self.tensor(&args, 5),
            ("torch._utils", "_rebuild_tensor") => self.tensor(&args, 4),
            ("torch._tensor", "_rebuild_from_type_v2") => self.rebuild(args),
            ("torch._utils", "_rebuild_parameter") => match args.first() {
                Some(V {
                    val: Val::NewObj, ..
                }) => bail!("_rebuild_parameter of an object"),
                Some(v) => Ok(v.clone()),
                None => bail!("_rebuild_parameter without arguments"),
            },
            ("collections", "OrderedDict") => Ok(V::of(Vec::new(), Val::Dict)),
            _ => bail!("{module}.{name} is not a call torch.save writes"),
        }
    }

    /// A `_rebuild_tensor(_v2)` call: storage, offset, shape, … Its claims must agree (the shape
    /// within the storage) and are recorded against the storage.
    fn tensor(&mut self, args: &[V], at_least: usize) -> Result<V> {
        ensure!(
            args.len() >= at_least,
            "a tensor rebuilt from {} arguments",
            args.len()
        );
        let id = match &args[0].val {
            Val::Persistent(t) | Val::Tuple(t) if t.len() >= 3 => t.clone(),
            _ => bail!("a tensor whose storage is {}", args[0].kind()),
        };
        let storage_type = match &id[1].val {
            Val::Str(s) => s.to_string(),
            Val::Global(_, name) => name.to_string(),
            _ => bail!("a storage whose type is {}", id[1].kind()),
        };
        let Val::Str(key) = &id[2].val else {
            bail!("a storage whose key is {}", id[2].kind());
        };
        let size = burn_store::pytorch::pickle_reader::storage_type_to_element_size(&storage_type)
            .map_err(|e| anyhow::anyhow!("storage `{key}`: {e}"))? as u64;
        let offset = match &args[1].val {
            Val::Int(n) => u64::try_from(*n)
                .ok()
                .with_context(|| format!("storage `{key}`: a tensor at offset {n}"))?,
            _ => 0,
        };
        let Val::Tuple(shape) = &args[2].val else {
            bail!(
                "storage `{key}`: a tensor whose shape is {}",
                args[2].kind()
            );
        };
        let shape: Vec<i64> = shape
            .iter()
            .map(|d| match d.val {
                Val::Int(n) => Ok(n),
                _ => bail!("storage `{key}`: a tensor shape holding {}", d.kind()),
            })
            .collect::<Result<_>>()?;
        let elements = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(u64::try_from(d).ok()?))
            .with_context(|| format!("storage `{key}`: a tensor of shape {shape:?}: refused"))?;
        let reach = offset.checked_add(elements);
        let claimed = match id.get(4).map(|v| &v.val) {
            Some(Val::Int(n)) => Some(u64::try_from(*n).ok().with_context(|| {
                format!("storage `{key}` claims {n} elements of {storage_type}: refused")
            })?),
            _ => None,
        };
        if let Some(claimed) = claimed {
            ensure!(
                reach.is_some_and(|r| r <= claimed),
                "storage `{key}` holds {claimed} elements of {storage_type}, but a tensor of shape {shape:?} at offset {offset} reaches past them: refused"
            );
        }
        let elements = claimed.or(reach).unwrap_or(u64::MAX);
        let bytes = elements.saturating_mul(size);
        let claim = self
            .storages
            .entry(key.to_string())
            .or_insert(StorageClaim {
                bytes: 0,
                elements: 0,
                storage_type: storage_type.clone(),
                tensor: None,
            });
        if bytes > claim.bytes {
            claim.bytes = bytes;
            claim.elements = elements;
            claim.storage_type = storage_type;
        }
        Ok(V::leaf(Val::Tensor(key.clone())))
    }

    /// Remembers the first name each storage's tensors are given in a dict (for messages).
    fn name_tensors(&mut self, pairs: &[V]) {
        for pair in pairs.chunks_exact(2) {
            if let (Val::Str(name), Val::Tensor(key)) = (&pair[0].val, &pair[1].val) {
                if let Some(claim) = self.storages.get_mut(&**key) {
                    claim.tensor.get_or_insert_with(|| name.to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod hostile {
    //! Hand-made checkpoints for the tests: torch's pickle protocol 2, its legacy file layout and
    //! its zip layout, written byte by byte so that a test can make any of them lie.

    /// A protocol-2 pickle under construction.
    pub struct Pickle(pub Vec<u8>);

    impl Pickle {
        pub fn new() -> Self {
            Pickle(vec![0x80, 2])
        }
        pub fn op(mut self, bytes: &[u8]) -> Self {
            self.0.extend_from_slice(bytes);
            self
        }
        pub fn global(self, module: &str, name: &str) -> Self {
            self.op(format!("c{module}\n{name}\n").as_bytes())
        }
        pub fn str(self, s: &str) -> Self {
            let len = (s.len() as u32).to_le_bytes();
            self.op(b"X").op(&len).op(s.as_bytes())
        }
        pub fn int(self, n: i64) -> Self {
            if (0..256).contains(&n) {
                self.op(&[b'K', n as u8])
            } else if (0..65536).contains(&n) {
                self.op(b"M").op(&(n as u16).to_le_bytes())
            } else if i32::try_from(n).is_ok() {
                self.op(b"J").op(&(n as i32).to_le_bytes())
            } else {
                self.op(&[0x8a, 8]).op(&n.to_le_bytes())
            }
        }
        pub fn ints(self, values: &[i64]) -> Self {
            values.iter().fold(self.op(b"("), |p, &v| p.int(v)).op(b"t")
        }
        pub fn stop(self) -> Vec<u8> {
            self.op(b".").0
        }
    }

    /// One tensor of a state dict: its name, storage type, storage key, the storage's claimed
    /// element count, the offset into the storage and the shape.
    pub struct Tensor<'a> {
        pub name: &'a str,
        pub storage_type: &'a str,
        pub key: &'a str,
        pub numel: i64,
        pub offset: i64,
        pub shape: &'a [i64],
    }

    /// `torch.save(state_dict)`'s pickle: an OrderedDict of `_rebuild_tensor_v2` calls.
    pub fn state_dict(tensors: &[Tensor]) -> Vec<u8> {
        let mut p = Pickle::new()
            .global("collections", "OrderedDict")
            .op(b")R(");
        for t in tensors {
            let mut stride = vec![1i64; t.shape.len()];
            for i in (0..t.shape.len().saturating_sub(1)).rev() {
                stride[i] = stride[i + 1] * t.shape[i + 1];
            }
            p = p
                .str(t.name)
                .global("torch._utils", "_rebuild_tensor_v2")
                .op(b"((")
                .str("storage")
                .global("torch", t.storage_type)
                .str(t.key)
                .str("cpu")
                .int(t.numel)
                .op(b"tQ")
                .int(t.offset)
                .ints(t.shape)
                .ints(&stride)
                .op(&[0x89])
                .global("collections", "OrderedDict")
                .op(b")Rt")
                .op(b"R");
        }
        p.op(b"u").stop()
    }

    /// A legacy (PyTorch < 1.6) file: magic, protocol, system info, the state dict, the storage
    /// keys, then each storage as its element count and its bytes.
    pub fn legacy(tensors: &[Tensor], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut out = Pickle::new()
            .op(&[0x8a, 0x0a])
            .op(&0x1950a86a20f9469cfc6c_u128.to_le_bytes()[..10])
            .stop();
        out.extend(Pickle::new().int(1001).stop());
        out.extend(
            Pickle::new()
                .op(b"}(")
                .str("protocol_version")
                .int(1001)
                .str("little_endian")
                .op(&[0x88])
                .str("type_sizes")
                .op(b"}(")
                .str("short")
                .int(2)
                .str("int")
                .int(4)
                .str("long")
                .int(4)
                .op(b"uu")
                .stop(),
        );
        out.extend(state_dict(tensors));
        let keys = storages
            .iter()
            .fold(Pickle::new().op(b"]("), |p, (key, _)| p.str(key))
            .op(b"e")
            .stop();
        out.extend(keys);
        for (key, bytes) in storages {
            let numel = tensors
                .iter()
                .find(|t| t.key == *key)
                .map_or(0, |t| t.numel);
            out.extend((numel as u64).to_le_bytes());
            out.extend(bytes);
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in data {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    }

    /// A zip archive of stored (uncompressed) entries, as torch.save writes them.
    pub fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        zip_claiming(entries, &[])
    }

    /// [`zip`], with the unpacked size of the entries named in `claims` replaced by a lie.
    pub fn zip_claiming(entries: &[(&str, &[u8])], claims: &[(&str, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let crc = crc32(data);
            let len = data.len() as u32;
            let size = claims
                .iter()
                .find(|(n, _)| n == name)
                .map_or(len, |(_, size)| *size);
            let common = |v: &mut Vec<u8>| {
                v.extend(20u16.to_le_bytes()); // version needed
                v.extend(0u16.to_le_bytes()); // flags
                v.extend(0u16.to_le_bytes()); // stored
                v.extend(0u32.to_le_bytes()); // time and date
                v.extend(crc.to_le_bytes());
                v.extend(len.to_le_bytes());
                v.extend(size.to_le_bytes());
                v.extend((name.len() as u16).to_le_bytes());
                v.extend(0u16.to_le_bytes()); // extra
            };
            out.extend(0x0403_4b50u32.to_le_bytes());
            common(&mut out);
            out.extend(name.as_bytes());
            out.extend(*data);
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(20u16.to_le_bytes()); // version made by
            common(&mut central);
            central.extend(0u16.to_le_bytes()); // comment
            central.extend(0u16.to_le_bytes()); // disk
            central.extend(0u16.to_le_bytes()); // internal attributes
            central.extend(0u32.to_le_bytes()); // external attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        let n = entries.len() as u16;
        out.extend(&central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(n.to_le_bytes());
        out.extend(n.to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    /// A copy of the tiny BERT test folder without its weights.
    pub fn tiny_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/encoder/tiny-bert");
        for name in ["config.json", "vocab.txt", "tokenizer_config.json"] {
            std::fs::copy(source.join(name), dir.path().join(name)).unwrap();
        }
        dir
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use burn::backend::NdArray;

    use burn_store::{ModuleStore, PytorchStore};

    use super::hostile::{legacy, state_dict, tiny_folder, zip, zip_claiming, Pickle, Tensor};
    use super::{check_file, MAX_PICKLE_OBJECTS};
    use crate::encoder::config::WeightsFile;
    use crate::encoder::TextEncoder;

    fn fixture(path: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
    }

    /// What `check_file` says of `bytes` as a `pytorch_model.bin`.
    fn pytorch_check(bytes: &[u8]) -> anyhow::Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pytorch_model.bin");
        std::fs::write(&path, bytes).unwrap();
        check_file(&WeightsFile::Pytorch(path))
    }

    fn pytorch_refusal(bytes: &[u8]) -> String {
        let started = Instant::now();
        let error = format!("{:#}", pytorch_check(bytes).unwrap_err());
        assert!(started.elapsed() < Duration::from_secs(5), "{error}");
        assert!(error.contains("pytorch_model.bin"), "{error}");
        error
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// One tensor `w` of shape [2, 3] in storage `0`, claiming `numel` elements.
    fn w(numel: i64, shape: &'static [i64]) -> Tensor<'static> {
        Tensor {
            name: "w",
            storage_type: "FloatStorage",
            key: "0",
            numel,
            offset: 0,
            shape,
        }
    }

    #[test]
    fn checkpoints_written_as_torch_writes_them_pass_and_load() {
        let values = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0];
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in [
            (
                "legacy.bin",
                legacy(&[w(6, &[2, 3])], &[("0", floats(&values))]),
            ),
            (
                "zip.bin",
                zip(&[
                    ("archive/data.pkl", &state_dict(&[w(6, &[2, 3])])),
                    ("archive/data/0", &floats(&values)),
                ]),
            ),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            check_file(&WeightsFile::Pytorch(path.clone())).unwrap();
            // burn-store reads the hand-made files as the checks read them.
            let mut store = PytorchStore::from_file(&path);
            let snapshots = store.get_all_snapshots().unwrap();
            let data = snapshots["w"].to_data().unwrap();
            assert_eq!(&data.shape[..], &[2, 3], "{name}");
            assert_eq!(data.to_vec::<f32>().unwrap(), values, "{name}");
        }
        for real in [
            "tests/fixtures/encoder/tiny-bert/pytorch_model.bin",
            "tests/fixtures/open_clip/tiny-biomedclip/open_clip_pytorch_model.bin",
        ] {
            check_file(&WeightsFile::Pytorch(fixture(real))).unwrap();
        }
    }

    #[test]
    fn a_storage_or_tensor_that_claims_more_than_its_data_is_refused() {
        let data = floats(&[0.0; 6]);
        // A negative count (burn-store would read it as 2^64 - 1).
        let error = pytorch_refusal(&legacy(&[w(-1, &[2, 3])], &[("0", data.clone())]));
        assert!(error.contains("storage `0` claims -1 elements"), "{error}");
        // A shape reaching past the storage it is in.
        let error = pytorch_refusal(&zip(&[
            ("archive/data.pkl", &state_dict(&[w(6, &[1000, 1000])])),
            ("archive/data/0", &data),
        ]));
        assert!(error.contains("shape [1000, 1000]"), "{error}");
        assert!(error.contains("reaches past"), "{error}");
        // A shape whose element count overflows.
        let error = pytorch_refusal(&zip(&[
            (
                "archive/data.pkl",
                &state_dict(&[w(6, &[1 << 40, 1 << 40])]),
            ),
            ("archive/data/0", &data),
        ]));
        assert!(error.contains("refused"), "{error}");
        // Storages that each fit but not together.
        let two = [
            w(6, &[2, 3]),
            Tensor {
                name: "v",
                key: "1",
                ..w(6, &[2, 3])
            },
        ];
        let error = pytorch_refusal(&legacy(&two, &[("0", data.clone()), ("1", vec![])]));
        assert!(error.contains("storage `1` (tensor `v`)"), "{error}");
        assert!(error.contains("after the storages before it"), "{error}");
        // A storage with no data file would load as zeros.
        let error = pytorch_refusal(&zip(&[("archive/data.pkl", &state_dict(&[w(6, &[2, 3])]))]));
        assert!(error.contains("no data file"), "{error}");
        // A zip entry claiming more bytes than it stores.
        let error = pytorch_refusal(&zip_claiming(
            &[
                ("archive/data.pkl", &state_dict(&[w(6, &[2, 3])])),
                ("archive/data/0", &data),
            ],
            &[("archive/data/0", u32::MAX)],
        ));
        assert!(
            error.contains("entry `archive/data/0` claims 4294967295 bytes, but 24 are stored"),
            "{error}"
        );
    }

    #[test]
    fn a_pickle_string_longer_than_the_file_or_a_pickle_that_copies_itself_into_billions_is_refused(
    ) {
        let mut long = Pickle::new().op(b"X").op(&u32::MAX.to_le_bytes()).0;
        long.extend(b"abc.");
        let error = pytorch_refusal(&zip(&[("archive/data.pkl", &long)]));
        assert!(error.contains("4294967295 bytes claimed"), "{error}");
        // A pair of the previous pair, 40 times: 2^40 objects once burn-store copies them out.
        let mut laughs = Pickle::new().op(b"]q\x00");
        for i in 0..40u8 {
            laughs = laughs.op(&[b'h', i, b'h', i, 0x86, b'q', i + 1]);
        }
        let error = pytorch_refusal(&zip(&[("archive/data.pkl", &laughs.stop())]));
        assert!(
            error.contains(&format!("more than {MAX_PICKLE_OBJECTS}")),
            "{error}"
        );
    }

    #[test]
    fn a_safetensors_header_claiming_a_huge_tensor_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let header = serde_json::json!({
            "embeddings.word_embeddings.weight":
                {"dtype": "F32", "shape": [1_000_000, 1_000_000], "data_offsets": [0, 16]},
        })
        .to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 16]);
        std::fs::write(&path, &bytes).unwrap();
        let error = format!(
            "{:#}",
            check_file(&WeightsFile::Safetensors(path.clone())).unwrap_err()
        );
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(
            error.contains("tensor `embeddings.word_embeddings.weight` claims shape [1000000, 1000000] of F32 (4000000000000 bytes), more than the 16 bytes"),
            "{error}"
        );
        // A header longer than the file.
        let mut bytes = u64::MAX.to_le_bytes().to_vec();
        bytes.extend(b"{}");
        std::fs::write(&path, &bytes).unwrap();
        let error = format!(
            "{:#}",
            check_file(&WeightsFile::Safetensors(path)).unwrap_err()
        );
        assert!(
            error.contains("the header claims 18446744073709551615 bytes"),
            "{error}"
        );
        // The real model passes.
        if let Some(minilm) = std::env::var_os("VITAL_TEST_MINILM") {
            let real = std::path::PathBuf::from(minilm).join("model.safetensors");
            check_file(&WeightsFile::Safetensors(real)).unwrap();
        }
    }

    fn load_error(dir: &std::path::Path) -> String {
        let started = Instant::now();
        let result = TextEncoder::<NdArray>::load(dir, &Default::default());
        let error = match result {
            Ok(_) => panic!("the hostile folder loaded"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "refused only after {:?}",
            started.elapsed()
        );
        error
    }

    #[test]
    fn a_legacy_checkpoint_whose_storage_claims_a_trillion_elements_is_refused_before_reading() {
        let dir = tiny_folder();
        let tensors = [Tensor {
            name: "bert.embeddings.word_embeddings.weight",
            storage_type: "FloatStorage",
            key: "0",
            numel: 1_000_000_000_000,
            offset: 0,
            shape: &[95, 32],
        }];
        let file = dir.path().join("pytorch_model.bin");
        std::fs::write(&file, legacy(&tensors, &[("0", vec![0; 95 * 32 * 4])])).unwrap();
        let error = load_error(dir.path());
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(error.contains("storage `0`"), "{error}");
        assert!(error.contains("1000000000000 elements"), "{error}");
        assert!(
            error.contains("bert.embeddings.word_embeddings.weight"),
            "{error}"
        );
    }

    #[test]
    fn a_zip_checkpoint_whose_tensor_claims_a_trillion_elements_is_refused_before_reading() {
        let dir = tiny_folder();
        let pickle = state_dict(&[Tensor {
            name: "bert.embeddings.word_embeddings.weight",
            storage_type: "FloatStorage",
            key: "0",
            numel: 1_000_000_000_000,
            offset: 0,
            shape: &[1_000_000_000_000],
        }]);
        let file = dir.path().join("pytorch_model.bin");
        std::fs::write(
            &file,
            zip(&[
                ("archive/data.pkl", &pickle),
                ("archive/data/0", &[0u8; 128]),
            ]),
        )
        .unwrap();
        let error = load_error(dir.path());
        assert!(error.contains(&file.display().to_string()), "{error}");
        assert!(error.contains("storage `0`"), "{error}");
        assert!(error.contains("archive/data/0"), "{error}");
    }

    /// The tiny folder with its real weights and `key` of config.json set to `value`.
    fn tiny_with(key: &str, value: serde_json::Value) -> tempfile::TempDir {
        let dir = tiny_folder();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/encoder/tiny-bert/pytorch_model.bin");
        std::fs::copy(source, dir.path().join("pytorch_model.bin")).unwrap();
        let path = dir.path().join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[key] = value;
        std::fs::write(&path, config.to_string()).unwrap();
        dir
    }

    #[test]
    fn a_config_claiming_a_million_layers_is_refused_before_the_model_is_built() {
        let dir = tiny_with("num_hidden_layers", 1_000_000.into());
        let error = load_error(dir.path());
        let config = dir.path().join("config.json");
        assert!(error.contains(&config.display().to_string()), "{error}");
        assert!(error.contains("num_hidden_layers 1000000"), "{error}");
    }

    #[test]
    fn a_config_with_more_layers_than_the_checkpoint_holds_is_refused() {
        let dir = tiny_with("num_hidden_layers", 12.into());
        let error = load_error(dir.path());
        assert!(
            error.contains("config.json: num_hidden_layers 12, but"),
            "{error}"
        );
        assert!(
            error.contains("pytorch_model.bin holds 2 layers (encoder.layer.0 … encoder.layer.1)"),
            "{error}"
        );
    }

    #[test]
    fn a_config_describing_more_weights_than_the_file_holds_is_refused() {
        let dir = tiny_with("vocab_size", 1_000_000.into());
        let error = load_error(dir.path());
        assert!(error.contains("config.json: hidden_size 32"), "{error}");
        assert!(error.contains("vocab_size 1000000"), "{error}");
        assert!(
            error.contains("pytorch_model.bin holds 98053 bytes"),
            "{error}"
        );
    }
}
