//! The text embeddings cache: one vector per (encoder identity, text hash), stored as an f32
//! little-endian BLOB. Writers commit one batch at a time, so an interrupted `vital embed`
//! keeps everything it finished and the next run only embeds what is missing. An open_clip
//! encoder's image vectors live in the same table under [`TextHash::of_image_bytes`] keys.

use std::collections::{HashMap, HashSet};

use super::db::{params, Db, Param};
use anyhow::Context;
use sha2::{Digest, Sha256};

use super::Workspace;

/// SHA-256 of a text's UTF-8 bytes: the cache key of the text (stable across runs and builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TextHash(pub [u8; 32]);

impl TextHash {
    pub fn of(text: &str) -> Self {
        TextHash(Sha256::digest(text.as_bytes()).into())
    }

    /// The key of an image file's vector (an open_clip encoder's image tower), by the file's
    /// content: SHA-256 over a marker and the bytes, so it can never equal a text's key and the
    /// same figure under two names or paths is embedded once.
    pub fn of_image_bytes(bytes: &[u8]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"vital image file\0");
        hasher.update(bytes);
        TextHash(hasher.finalize().into())
    }
}

/// The count of the (key, vector) rows `sql` reads, in key order, and a SHA-256 (hex) over them:
/// a cache's vectors under one encoder and a shard file's vectors digest alike, so equal
/// digests mean equal vectors wherever they are kept.
pub(super) fn vector_digest(
    db: &Db,
    sql: &str,
    params: &[&dyn Param],
) -> anyhow::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut rows = 0u64;
    db.for_each_row(sql, params, |r| {
        let hash: Vec<u8> = r.get(0)?;
        let vector: Vec<u8> = r.get(1)?;
        hasher.update(&hash);
        hasher.update((vector.len() as u64).to_le_bytes());
        hasher.update(&vector);
        rows += 1;
        Ok(())
    })?;
    Ok((rows, hex::encode(hasher.finalize())))
}

/// `vector` as f32 little-endian bytes.
pub(super) fn to_blob(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn from_blob(blob: &[u8]) -> anyhow::Result<Vec<f32>> {
    anyhow::ensure!(
        blob.len().is_multiple_of(4),
        "a cached vector has {} bytes, not a whole number of f32",
        blob.len()
    );
    Ok(blob
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

impl Workspace {
    /// Which of `hashes` already have a vector under `encoder`.
    pub fn cached_text_hashes(
        &self,
        encoder: &str,
        hashes: &[TextHash],
    ) -> anyhow::Result<HashSet<TextHash>> {
        let mut found = HashSet::new();
        for hash in hashes {
            let exists = self.db.query_opt(
                "SELECT 1 FROM text_embeddings WHERE encoder = ?1 AND text_hash = ?2",
                params![encoder, hash.0],
                |_| Ok(()),
            )?;
            if exists.is_some() {
                found.insert(*hash);
            }
        }
        Ok(found)
    }

    /// Stores one batch of vectors under `encoder` in one transaction (existing ones are kept).
    /// Takes `&self` so that a caller walking the answers can commit batch by batch.
    pub fn store_text_embeddings(
        &self,
        encoder: &str,
        vectors: &[(TextHash, &[f32])],
    ) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        for (hash, vector) in vectors {
            tx.execute(
                "INSERT OR IGNORE INTO text_embeddings (encoder, text_hash, vector) VALUES (?1, ?2, ?3)",
                params![encoder, hash.0, to_blob(vector)],
            )?;
        }
        tx.commit().context("cannot commit a batch of embeddings")?;
        Ok(())
    }

    /// The cached vectors of `hashes` under `encoder` (texts without one are left out).
    pub fn text_embeddings(
        &self,
        encoder: &str,
        hashes: &[TextHash],
    ) -> anyhow::Result<HashMap<TextHash, Vec<f32>>> {
        let mut out = HashMap::with_capacity(hashes.len());
        for hash in hashes {
            if out.contains_key(hash) {
                continue;
            }
            let blob: Option<Vec<u8>> = self.db.query_opt(
                "SELECT vector FROM text_embeddings WHERE encoder = ?1 AND text_hash = ?2",
                params![encoder, hash.0],
                |r| r.get(0),
            )?;
            if let Some(blob) = blob {
                let vector = from_blob(&blob).with_context(|| {
                    format!(
                        "the cached vector of text {} is corrupt",
                        hex::encode(hash.0)
                    )
                })?;
                out.insert(*hash, vector);
            }
        }
        Ok(out)
    }

    /// Every answer id in the rounds of the answers `ids` (them included), sorted.
    pub fn round_mates_of(&self, ids: &HashSet<i64>) -> anyhow::Result<Vec<i64>> {
        let mut out: Vec<i64> = Vec::with_capacity(ids.len());
        for id in ids {
            self.db.for_each_row(
                "SELECT o.id FROM answers a JOIN answers o ON o.round_id = a.round_id WHERE a.id = ?1",
                params![id],
                |r| {
                    out.push(r.get(0)?);
                    Ok(())
                },
            )?;
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// How many vectors the cache holds under `encoder`, and a SHA-256 (hex) over them in key
    /// order: two caches (or one cache before and after merging shards) hold the same vectors
    /// exactly when both agree.
    pub fn text_embeddings_digest(&self, encoder: &str) -> anyhow::Result<(u64, String)> {
        vector_digest(
            &self.db,
            "SELECT text_hash, vector FROM text_embeddings WHERE encoder = ?1 ORDER BY text_hash",
            params![encoder],
        )
    }

    /// How many vectors the cache holds under `encoder`.
    pub fn text_embedding_count(&self, encoder: &str) -> anyhow::Result<usize> {
        self.db.query_value(
            "SELECT count(*) FROM text_embeddings WHERE encoder = ?1",
            params![encoder],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn vectors_round_trip_per_encoder_and_text(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let (a, b) = (TextHash::of("lung"), TextHash::of("liver"));
        assert_ne!(a, b);
        assert_eq!(a, TextHash::of("lung"));
        let v = [0.25f32, -1.5, f32::MIN_POSITIVE];
        ws.store_text_embeddings("enc-1", &[(a, &v)]).unwrap();
        assert_eq!(ws.cached_text_hashes("enc-1", &[a, b]).unwrap(), [a].into());
        assert!(ws.cached_text_hashes("enc-2", &[a]).unwrap().is_empty());
        let got = ws.text_embeddings("enc-1", &[a, b, a]).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[&a], v.to_vec());
        // A second store of the same text keeps the first vector.
        ws.store_text_embeddings("enc-1", &[(a, &[9.0, 9.0, 9.0])])
            .unwrap();
        assert_eq!(ws.text_embeddings("enc-1", &[a]).unwrap()[&a], v.to_vec());
        assert_eq!(ws.text_embedding_count("enc-1").unwrap(), 1);
        assert_eq!(ws.text_embedding_count("enc-2").unwrap(), 0);
    }

    #[test]
    fn the_text_hash_is_sha256_of_the_utf8_bytes() {
        assert_eq!(
            hex::encode(TextHash::of("").0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    on_both_databases!(vectors_round_trip_per_encoder_and_text);
}
