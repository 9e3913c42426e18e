//! Precomputed embeddings from any encoder (e.g. BiomedCLIP run elsewhere), keyed by answer id.
//!
//! Accepted files:
//! * `.npy`: a 2-D float32/float64 array `[N, D]` plus a sidecar text file with one answer id
//!   per line (`<stem>.ids.txt` or `<stem>.ids`, or given explicitly);
//! * `.safetensors`: a tensor `embeddings` `[N, D]` (F32, F64, F16 or BF16) and the ids either
//!   as metadata `ids` (a JSON array of integers) or as an I64 tensor `ids` `[N]`.

use std::collections::HashMap;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

/// Rows of embeddings, looked up by answer id.
#[derive(Debug, Clone)]
pub struct EmbeddingTable {
    dim: usize,
    data: Vec<f32>,
    index: HashMap<i64, usize>,
}

impl EmbeddingTable {
    /// `data` is row-major `[ids.len(), dim]`; ids must be unique.
    pub fn new(ids: Vec<i64>, dim: usize, data: Vec<f32>) -> Result<Self> {
        ensure!(dim > 0, "embedding width is 0");
        ensure!(
            data.len() == ids.len() * dim,
            "{} ids but {} values ({} rows of width {dim})",
            ids.len(),
            data.len(),
            data.len() / dim
        );
        let mut index = HashMap::with_capacity(ids.len());
        for (row, id) in ids.into_iter().enumerate() {
            if index.insert(id, row).is_some() {
                bail!("answer id {id} appears twice");
            }
        }
        Ok(EmbeddingTable { dim, data, index })
    }

    /// Loads by extension: `.npy` (with a sidecar ids file) or `.safetensors`.
    pub fn load(path: &Path) -> Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => {
                // `name.v1.npy` → `name.v1.ids.txt` (with_extension would drop the `.v1`).
                let file = path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let stem = file.strip_suffix(".npy").unwrap_or(&file);
                let candidates = [
                    path.with_file_name(format!("{stem}.ids.txt")),
                    path.with_file_name(format!("{stem}.ids")),
                ];
                let ids = candidates.iter().find(|p| p.exists()).with_context(|| {
                    format!(
                        "{}: no ids file beside it (looked for {})",
                        path.display(),
                        join(&candidates)
                    )
                })?;
                Self::load_npy(path, ids)
            }
            Some("safetensors") => Self::load_safetensors(path),
            _ => bail!(
                "{}: unknown embeddings format (expected .npy or .safetensors)",
                path.display()
            ),
        }
    }

    pub fn load_npy(npy: &Path, ids_file: &Path) -> Result<Self> {
        let ids = read_ids(ids_file)?;
        let (rows, dim, data) =
            read_npy(npy).with_context(|| format!("reading {}", npy.display()))?;
        ensure!(
            rows == ids.len(),
            "{}: {rows} rows but {} has {} ids",
            npy.display(),
            ids_file.display(),
            ids.len()
        );
        Self::new(ids, dim, data).with_context(|| format!("{}", npy.display()))
    }

    pub fn load_safetensors(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let fail = |what: String| anyhow::anyhow!("{}: {what}", path.display());
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let tensors = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let emb = tensors.tensor("embeddings").map_err(|_| {
            fail(format!(
                "no tensor named `embeddings` (found {:?})",
                tensors.names()
            ))
        })?;
        let [rows, dim] = emb.shape() else {
            return Err(fail(format!(
                "`embeddings` must be 2-D [N, D], got shape {:?}",
                emb.shape()
            )));
        };
        let data = floats_from(emb.dtype(), emb.data()).map_err(fail)?;
        let ids: Vec<i64> = if let Some(json) = meta.metadata().as_ref().and_then(|m| m.get("ids"))
        {
            serde_json::from_str(json).map_err(|e| {
                fail(format!(
                    "metadata `ids` is not a JSON array of integers: {e}"
                ))
            })?
        } else if let Ok(view) = tensors.tensor("ids") {
            if view.dtype() != safetensors::Dtype::I64 {
                return Err(fail(format!(
                    "tensor `ids` must be I64, got {:?}",
                    view.dtype()
                )));
            }
            view.data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect()
        } else {
            return Err(fail(
                "no answer ids: add metadata `ids` (JSON array) or an I64 tensor `ids`".into(),
            ));
        };
        ensure!(
            ids.len() == *rows,
            "{}: `embeddings` has {rows} rows but there are {} ids",
            path.display(),
            ids.len()
        );
        Self::new(ids, *dim, data).with_context(|| format!("{}", path.display()))
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn get(&self, answer_id: i64) -> Option<&[f32]> {
        self.index
            .get(&answer_id)
            .map(|&row| &self.data[row * self.dim..(row + 1) * self.dim])
    }
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_ids(path: &Path) -> Result<Vec<i64>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading ids file {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            line.trim().parse::<i64>().with_context(|| {
                format!(
                    "{} line {}: `{}` is not an integer answer id",
                    path.display(),
                    n + 1,
                    line.trim()
                )
            })
        })
        .collect()
}

fn floats_from(dtype: safetensors::Dtype, bytes: &[u8]) -> std::result::Result<Vec<f32>, String> {
    use safetensors::Dtype;
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect(),
        other => {
            return Err(format!(
                "`embeddings` has dtype {other:?}; expected F32, F64, F16 or BF16"
            ))
        }
    })
}

/// IEEE half → single (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => return if sign != 0 { -(f as f32) } else { f as f32 } * 2f32.powi(-24),
        (0x1f, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

/// Parses a `.npy` file: returns (rows, cols, row-major f32 data).
fn read_npy(path: &Path) -> Result<(usize, usize, Vec<f32>)> {
    let file = std::fs::File::open(path)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    reader
        .read_exact(&mut magic)
        .context("file shorter than the .npy magic")?;
    ensure!(&magic[..6] == b"\x93NUMPY", "not a .npy file (bad magic)");
    let header_len = if magic[6] == 1 {
        let mut b = [0u8; 2];
        reader.read_exact(&mut b)?;
        u16::from_le_bytes(b) as usize
    } else {
        let mut b = [0u8; 4];
        reader.read_exact(&mut b)?;
        u32::from_le_bytes(b) as usize
    };
    let mut header = vec![0u8; header_len];
    reader
        .read_exact(&mut header)
        .context("truncated .npy header")?;
    let header = String::from_utf8_lossy(&header);
    let descr = dict_value(&header, "descr").context("header has no 'descr'")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True"));
    let shape_text = dict_value(&header, "shape").context("header has no 'shape'")?;
    let shape: Vec<usize> = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("bad shape entry `{s}`"))
        })
        .collect::<Result<_>>()?;
    let [rows, cols] = shape[..] else {
        bail!("expected a 2-D array [N, D], got shape {shape:?}");
    };
    let width = match descr {
        "<f4" | "|f4" | "=f4" => 4,
        "<f8" | "|f8" | "=f8" => 8,
        other => bail!("dtype `{other}` not supported; save float32 or float64 little-endian (e.g. np.float32)"),
    };
    let mut raw = vec![0u8; rows * cols * width];
    reader
        .read_exact(&mut raw)
        .with_context(|| format!("data shorter than shape {shape:?} needs"))?;
    let values: Vec<f32> = if width == 4 {
        raw.chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    } else {
        raw.chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
            .collect()
    };
    if !fortran {
        return Ok((rows, cols, values));
    }
    // Column-major on disk: transpose to row-major.
    let mut out = vec![0f32; rows * cols];
    for c in 0..cols {
        for r in 0..rows {
            out[r * cols + c] = values[c * rows + r];
        }
    }
    Ok((rows, cols, out))
}

/// The raw text after `'key':` in a numpy header dict, up to the next top-level comma.
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let mut depth = 0;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    Some(rest.trim())
}

#[cfg(test)]
mod tests;
