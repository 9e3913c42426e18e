//! Figure statistics kept in the workspace, so a figure is decoded once, not at every score or
//! retrain. Statistics are keyed by the SHA-256 of the file's bytes (and the version of the
//! computation); each image path remembers the content it held with the size and modification
//! time it had then, so an unchanged file is neither decoded nor read again, and a changed one
//! is hashed again (same bytes elsewhere or before: no decode either). The store only keeps the
//! numbers: decoding is the selector's business.

use super::db::params;
use super::Workspace;

/// What the workspace recorded of an image path when it last read it.
#[derive(Debug, Clone, PartialEq)]
pub struct FigureFile {
    pub size: u64,
    pub mtime_ns: i64,
    pub content_sha256: [u8; 32],
}

/// Statistics stored for one content: `None` when the file does not decode as an image.
pub type StoredFigureStats = Option<Vec<f32>>;

/// A file just read (and, if its content was new, decoded).
#[derive(Debug, Clone, PartialEq)]
pub struct NewFigure {
    /// Where it was read; `None`: only its content's statistics are stored (the path is not
    /// remembered, e.g. a file modified moments ago, which may change again unseen).
    pub path: Option<String>,
    pub file: FigureFile,
    /// The statistics of its content, when they were computed now (`None`: already stored).
    pub stats: Option<StoredFigureStats>,
}

impl Workspace {
    /// Every distinct image reference of the stored samples.
    pub fn image_references(&self) -> anyhow::Result<Vec<String>> {
        self.db.query_vec(
            "SELECT DISTINCT image FROM samples WHERE image IS NOT NULL",
            params![],
            |r| r.get(0),
        )
    }

    /// What was recorded for `path`, with the statistics of that content (version `version`)
    /// when they are stored.
    pub fn figure_file(
        &self,
        path: &str,
        version: i64,
    ) -> anyhow::Result<Option<(FigureFile, Option<StoredFigureStats>)>> {
        let row = self.db.query_opt(
            "SELECT f.size, f.mtime_ns, f.content_sha256, s.content_sha256 IS NOT NULL, s.stats
             FROM figure_files f
             LEFT JOIN figure_stats s ON s.content_sha256 = f.content_sha256 AND s.version = ?2
             WHERE f.path = ?1",
            params![path, version],
            |r| {
                Ok((
                    r.get::<i64>(0)?,
                    r.get::<i64>(1)?,
                    r.get::<Vec<u8>>(2)?,
                    r.get::<bool>(3)?,
                    r.get::<Option<Vec<u8>>>(4)?,
                ))
            },
        )?;
        let Some((size, mtime_ns, content, has_stats, stats)) = row else {
            return Ok(None);
        };
        let file = FigureFile {
            size: size as u64,
            mtime_ns,
            content_sha256: hash_of(&content)?,
        };
        Ok(Some((file, has_stats.then(|| stats.map(|b| floats(&b))))))
    }

    /// The statistics (version `version`) stored for a content, if any.
    pub fn figure_stats(
        &self,
        content_sha256: &[u8; 32],
        version: i64,
    ) -> anyhow::Result<Option<StoredFigureStats>> {
        Ok(self
            .db
            .query_opt(
                "SELECT stats FROM figure_stats WHERE content_sha256 = ?1 AND version = ?2",
                params![content_sha256, version],
                |r| r.get::<Option<Vec<u8>>>(0),
            )?
            .map(|stats| stats.map(|b| floats(&b))))
    }

    /// Records files just read and the statistics computed for them, in one transaction.
    pub fn store_figures(&self, figures: &[NewFigure], version: i64) -> anyhow::Result<()> {
        if figures.is_empty() {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        for f in figures {
            if let Some(path) = &f.path {
                tx.execute(
                    "INSERT INTO figure_files (path, size, mtime_ns, content_sha256) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,
                        content_sha256 = excluded.content_sha256",
                    params![
                        path,
                        f.file.size as i64,
                        f.file.mtime_ns,
                        f.file.content_sha256
                    ],
                )?;
            }
            if let Some(computed) = &f.stats {
                let blob: Option<Vec<u8>> = computed
                    .as_ref()
                    .map(|v| v.iter().flat_map(|x| x.to_le_bytes()).collect());
                tx.execute(
                    "INSERT INTO figure_stats (content_sha256, version, stats) VALUES (?1, ?2, ?3)
                     ON CONFLICT (content_sha256, version) DO UPDATE SET stats = excluded.stats",
                    params![f.file.content_sha256, version, blob],
                )?;
            }
        }
        tx.commit()
    }
}

fn hash_of(bytes: &[u8]) -> anyhow::Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("a stored figure hash is {} bytes, not 32", bytes.len()))
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn figures_round_trip_by_path_and_by_content(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let file = FigureFile {
            size: 1234,
            mtime_ns: 1_700_000_000_123_456_789,
            content_sha256: [7; 32],
        };
        assert_eq!(ws.figure_file("/img/a.png", 1).unwrap(), None);
        ws.store_figures(
            &[
                NewFigure {
                    path: Some("/img/a.png".into()),
                    file: file.clone(),
                    stats: Some(Some(vec![0.5, 0.25, -0.1, 0.0])),
                },
                // The same content under another path: its statistics are already stored.
                NewFigure {
                    path: Some("/img/b.png".into()),
                    file: file.clone(),
                    stats: None,
                },
            ],
            1,
        )
        .unwrap();
        let stats = Some(Some(vec![0.5, 0.25, -0.1, 0.0]));
        assert_eq!(
            ws.figure_file("/img/a.png", 1).unwrap(),
            Some((file.clone(), stats.clone()))
        );
        assert_eq!(
            ws.figure_file("/img/b.png", 1).unwrap(),
            Some((file.clone(), stats.clone()))
        );
        assert_eq!(ws.figure_stats(&[7; 32], 1).unwrap(), stats);
        // Another version of the computation knows nothing yet.
        assert_eq!(ws.figure_file("/img/a.png", 2).unwrap(), Some((file, None)));
        assert_eq!(ws.figure_stats(&[7; 32], 2).unwrap(), None);
        // A file that does not decode is remembered as such.
        let broken = FigureFile {
            size: 9,
            mtime_ns: 5,
            content_sha256: [9; 32],
        };
        ws.store_figures(
            &[NewFigure {
                path: Some("/img/broken.png".into()),
                file: broken.clone(),
                stats: Some(None),
            }],
            1,
        )
        .unwrap();
        assert_eq!(
            ws.figure_file("/img/broken.png", 1).unwrap(),
            Some((broken, Some(None)))
        );
        // Statistics without a path: found by content only.
        ws.store_figures(
            &[NewFigure {
                path: None,
                file: FigureFile {
                    size: 1,
                    mtime_ns: 1,
                    content_sha256: [4; 32],
                },
                stats: Some(Some(vec![1.0; 4])),
            }],
            1,
        )
        .unwrap();
        assert_eq!(
            ws.figure_stats(&[4; 32], 1).unwrap(),
            Some(Some(vec![1.0; 4]))
        );
    }

    on_both_databases!(figures_round_trip_by_path_and_by_content);
}
