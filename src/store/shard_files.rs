//! Shard files: what one machine of a job array computed for a directory workspace — text and
//! image vectors (`vital embed --shard K/N`) or a run's scores (`vital score --shard K/N`) —
//! kept in a small SQLite file of its own, because many machines writing one SQLite file (often
//! on a network file system) would wait on each other or corrupt it. A shard file grows batch by
//! batch (a killed shard resumes), is sealed when its shard is done (row count and a SHA-256 over
//! its rows in key order), and `--merge` refuses one whose rows no longer match its seal.
//!
//! The merge into the workspace lives here too: vectors are added (those the workspace has are
//! kept), scores are staged per shard and published when the run's last shard is in.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use sha2::{Digest, Sha256};

use super::db::{params, Db};
use super::{TextHash, Workspace, NOW};

/// What a shard file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardContent {
    /// Vectors of one encoder (the key is its identity).
    Vectors,
    /// Answer and sample scores of one selector run (the key is the run id).
    Scores,
}

impl ShardContent {
    fn as_str(self) -> &'static str {
        match self {
            ShardContent::Vectors => "vectors",
            ShardContent::Scores => "scores",
        }
    }
}

/// A shard file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardHeader {
    pub content: ShardContent,
    /// The encoder identity (vectors) or the run id (scores), as text.
    pub key: String,
    pub index: u32,
    pub count: u32,
    /// Set when the shard finished: its rows and their digest.
    pub seal: Option<ShardSeal>,
}

/// Rows and the SHA-256 (hex) over them, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSeal {
    pub rows: u64,
    pub digest: String,
}

/// One open shard file.
pub struct ShardFile {
    db: Db,
    path: PathBuf,
    header: ShardHeader,
}

/// What a merge did with one shard file of vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct VectorMerge {
    /// Vectors in the file.
    pub rows: u64,
    /// Of those, new to the workspace.
    pub added: u64,
    /// Of those the workspace already had, how many held other values (the workspace's kept).
    pub differing: u64,
}

/// (id, score) rows of a scores shard, in id order.
pub type ScoreRows = Vec<(i64, f64)>;

/// (key, f32 little-endian bytes) rows of a vectors shard.
type VectorRows = [(TextHash, Vec<u8>)];

/// Vectors written per transaction when merging.
const MERGE_CHUNK: usize = 2000;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS shard_header (
        content TEXT NOT NULL,
        key TEXT NOT NULL,
        shard_index INTEGER NOT NULL,
        shard_count INTEGER NOT NULL,
        sealed_rows INTEGER,
        sealed_digest TEXT
    );
    CREATE TABLE IF NOT EXISTS vectors (
        text_hash BLOB PRIMARY KEY,
        vector BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS answer_scores (
        answer_id INTEGER PRIMARY KEY,
        score REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS sample_scores (
        sample_id INTEGER PRIMARY KEY,
        score REAL NOT NULL
    );
";

fn open_db(path: &Path) -> anyhow::Result<Db> {
    let conn = rusqlite::Connection::open(path)
        .with_context(|| format!("cannot open the shard file {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(Db::sqlite(conn))
}

fn read_header(db: &Db, path: &Path) -> anyhow::Result<Option<ShardHeader>> {
    let row = db
        .query_opt(
            "SELECT content, key, shard_index, shard_count, sealed_rows, sealed_digest FROM shard_header",
            params![],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<i64>(2)?,
                    r.get::<i64>(3)?,
                    r.get::<Option<i64>>(4)?,
                    r.get::<Option<String>>(5)?,
                ))
            },
        )
        .with_context(|| format!("{}: not a vital shard file", path.display()))?;
    let Some((content, key, index, count, rows, digest)) = row else {
        return Ok(None);
    };
    let content = match content.as_str() {
        "vectors" => ShardContent::Vectors,
        "scores" => ShardContent::Scores,
        other => bail!(
            "{}: a shard file of unknown content `{other}`",
            path.display()
        ),
    };
    let seal = match (rows, digest) {
        (Some(rows), Some(digest)) => Some(ShardSeal {
            rows: rows as u64,
            digest,
        }),
        _ => None,
    };
    Ok(Some(ShardHeader {
        content,
        key,
        index: u32::try_from(index).context("shard index")?,
        count: u32::try_from(count).context("shard count")?,
        seal,
    }))
}

impl ShardFile {
    /// Opens the shard file at `path` for writing, creating it; an existing file must be the same
    /// shard of the same content and key (it resumes). A sealed file is opened as it is.
    pub fn create_or_resume(
        path: &Path,
        content: ShardContent,
        key: &str,
        index: u32,
        count: u32,
    ) -> anyhow::Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let db = open_db(path)?;
        db.execute_batch(SCHEMA)
            .with_context(|| format!("{}: cannot set up the shard file", path.display()))?;
        let header = match read_header(&db, path)? {
            Some(h) => {
                ensure!(
                    h.content == content && h.key == key && (h.index, h.count) == (index, count),
                    "{} holds shard {}/{} of {} {}, not shard {index}/{count} of {} {key}: give another --out FILE",
                    path.display(),
                    h.index,
                    h.count,
                    h.content.as_str(),
                    h.key,
                    content.as_str()
                );
                h
            }
            None => {
                db.execute(
                    "INSERT INTO shard_header (content, key, shard_index, shard_count) VALUES (?1, ?2, ?3, ?4)",
                    params![content.as_str(), key, i64::from(index), i64::from(count)],
                )?;
                ShardHeader {
                    content,
                    key: key.to_string(),
                    index,
                    count,
                    seal: None,
                }
            }
        };
        Ok(ShardFile {
            db,
            path: path.to_path_buf(),
            header,
        })
    }

    /// Opens an existing shard file to read it.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        ensure!(path.is_file(), "{}: no such shard file", path.display());
        let db = open_db(path)?;
        let header = read_header(&db, path)?
            .with_context(|| format!("{}: a shard file with no header", path.display()))?;
        Ok(ShardFile {
            db,
            path: path.to_path_buf(),
            header,
        })
    }

    /// Opens a finished shard file of `content` for merging: its header checked, and its rows
    /// against its seal.
    pub fn open_sealed(path: &Path, content: ShardContent) -> anyhow::Result<Self> {
        let file = Self::open(path)?;
        file.ensure_content(content)?;
        file.verify()?;
        Ok(file)
    }

    pub fn header(&self) -> &ShardHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ensure_content(&self, content: ShardContent) -> anyhow::Result<()> {
        ensure!(
            self.header.content == content,
            "{} holds {}, not {}",
            self.path.display(),
            self.header.content.as_str(),
            content.as_str()
        );
        Ok(())
    }

    fn ensure_open(&self) -> anyhow::Result<()> {
        ensure!(
            self.header.seal.is_none(),
            "{} is sealed (its shard finished): nothing more is written to it",
            self.path.display()
        );
        Ok(())
    }

    /// Which of `hashes` the file holds a vector of.
    pub fn vector_hashes(&self, hashes: &[TextHash]) -> anyhow::Result<HashSet<TextHash>> {
        let mut found = HashSet::new();
        for hash in hashes {
            let exists = self.db.query_opt(
                "SELECT 1 FROM vectors WHERE text_hash = ?1",
                params![hash.0],
                |_| Ok(()),
            )?;
            if exists.is_some() {
                found.insert(*hash);
            }
        }
        Ok(found)
    }

    /// Adds one batch of vectors in one transaction (those already there are kept).
    pub fn store_vectors(&self, rows: &[(TextHash, &[f32])]) -> anyhow::Result<()> {
        self.ensure_content(ShardContent::Vectors)?;
        self.ensure_open()?;
        let tx = self.db.begin_write()?;
        for (hash, vector) in rows {
            tx.execute(
                "INSERT OR IGNORE INTO vectors (text_hash, vector) VALUES (?1, ?2)",
                params![hash.0, super::embedding_cache::to_blob(vector)],
            )?;
        }
        tx.commit()
            .with_context(|| format!("{}: cannot commit a batch", self.path.display()))
    }

    /// Writes a shard's scores (answers and samples) in one transaction.
    pub fn store_scores(
        &self,
        answers: &[(i64, f32)],
        samples: &[(i64, f32)],
    ) -> anyhow::Result<()> {
        self.ensure_content(ShardContent::Scores)?;
        self.ensure_open()?;
        let tx = self.db.begin_write()?;
        for (id, score) in answers {
            tx.execute(
                "INSERT OR REPLACE INTO answer_scores (answer_id, score) VALUES (?1, ?2)",
                params![id, f64::from(*score)],
            )?;
        }
        for (id, score) in samples {
            tx.execute(
                "INSERT OR REPLACE INTO sample_scores (sample_id, score) VALUES (?1, ?2)",
                params![id, f64::from(*score)],
            )?;
        }
        tx.commit()
            .with_context(|| format!("{}: cannot commit the scores", self.path.display()))
    }

    /// Row count and digest of what the file holds now.
    fn measure(&self) -> anyhow::Result<ShardSeal> {
        let mut hasher = Sha256::new();
        let mut rows = 0u64;
        match self.header.content {
            ShardContent::Vectors => {
                let (rows, digest) = super::embedding_cache::vector_digest(
                    &self.db,
                    "SELECT text_hash, vector FROM vectors ORDER BY text_hash",
                    params![],
                )?;
                return Ok(ShardSeal { rows, digest });
            }
            ShardContent::Scores => {
                for (table, tag) in [("answer_scores", b'a'), ("sample_scores", b's')] {
                    self.db.for_each_row(
                        &format!("SELECT * FROM {table} ORDER BY 1"),
                        params![],
                        |r| {
                            let id: i64 = r.get(0)?;
                            let score: f64 = r.get(1)?;
                            hasher.update([tag]);
                            hasher.update(id.to_le_bytes());
                            hasher.update(score.to_le_bytes());
                            rows += 1;
                            Ok(())
                        },
                    )?;
                }
            }
        }
        Ok(ShardSeal {
            rows,
            digest: hex::encode(hasher.finalize()),
        })
    }

    /// Marks the shard finished: records its rows and their digest. Sealing twice is harmless.
    pub fn seal(&mut self) -> anyhow::Result<ShardSeal> {
        if let Some(seal) = &self.header.seal {
            return Ok(seal.clone());
        }
        let seal = self.measure()?;
        self.db.execute(
            "UPDATE shard_header SET sealed_rows = ?1, sealed_digest = ?2",
            params![seal.rows as i64, seal.digest],
        )?;
        self.header.seal = Some(seal.clone());
        Ok(seal)
    }

    /// The seal, after checking the rows still match it: fails for a shard that did not finish
    /// and for a file changed or cut short since.
    pub fn verify(&self) -> anyhow::Result<ShardSeal> {
        let header = &self.header;
        let Some(seal) = &header.seal else {
            bail!(
                "{}: shard {}/{} did not finish; run it again (it resumes) before merging",
                self.path.display(),
                header.index,
                header.count
            );
        };
        let now = self.measure()?;
        ensure!(
            now == *seal,
            "{}: its rows do not match its seal ({} rows, digest {} when sealed; {} rows, digest {} now): the file was changed or damaged, so it is not merged",
            self.path.display(),
            seal.rows,
            &seal.digest[..12],
            now.rows,
            &now.digest[..12]
        );
        Ok(seal.clone())
    }

    /// Every vector of the file, `chunk` at a time, in key order.
    fn for_each_vector_chunk(
        &self,
        chunk: usize,
        visit: &mut dyn FnMut(&VectorRows) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut rows: Vec<(TextHash, Vec<u8>)> = Vec::with_capacity(chunk);
        self.db.for_each_row(
            "SELECT text_hash, vector FROM vectors ORDER BY text_hash",
            params![],
            |r| {
                let hash: Vec<u8> = r.get(0)?;
                let hash: [u8; 32] = hash
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("a key is not 32 bytes"))?;
                rows.push((TextHash(hash), r.get(1)?));
                if rows.len() >= chunk {
                    visit(&rows)?;
                    rows.clear();
                }
                Ok(())
            },
        )?;
        if !rows.is_empty() {
            visit(&rows)?;
        }
        Ok(())
    }

    /// The file's answer and sample scores, in id order.
    pub fn scores(&self) -> anyhow::Result<(ScoreRows, ScoreRows)> {
        self.ensure_content(ShardContent::Scores)?;
        let read = |table: &str| {
            self.db.query_vec(
                &format!("SELECT * FROM {table} ORDER BY 1"),
                params![],
                |r| Ok((r.get::<i64>(0)?, r.get::<f64>(1)?)),
            )
        };
        Ok((read("answer_scores")?, read("sample_scores")?))
    }
}

impl Workspace {
    /// Adds a sealed shard file's vectors to the cache under its encoder (checked against the seal
    /// first; vectors the workspace has are kept). Merging the same file again adds nothing.
    pub fn merge_vector_shard(&self, file: &ShardFile) -> anyhow::Result<VectorMerge> {
        file.ensure_content(ShardContent::Vectors)?;
        let seal = file.verify()?;
        let encoder = &file.header.key;
        let mut merge = VectorMerge {
            rows: seal.rows,
            ..VectorMerge::default()
        };
        file.for_each_vector_chunk(MERGE_CHUNK, &mut |rows| {
            let tx = self.db.begin_write()?;
            for (hash, vector) in rows {
                let existing: Option<Vec<u8>> = tx.query_opt(
                    "SELECT vector FROM text_embeddings WHERE encoder = ?1 AND text_hash = ?2",
                    params![encoder, hash.0],
                    |r| r.get(0),
                )?;
                match existing {
                    None => {
                        tx.execute(
                            "INSERT INTO text_embeddings (encoder, text_hash, vector) VALUES (?1, ?2, ?3)",
                            params![encoder, hash.0, vector],
                        )?;
                        merge.added += 1;
                    }
                    Some(have) if have != *vector => merge.differing += 1,
                    Some(_) => {}
                }
            }
            tx.commit().with_context(|| {
                format!("cannot commit vectors from {}", file.path().display())
            })
        })?;
        Ok(merge)
    }

    /// Stores the scores of shard `index` of `count` of run `run`: answer scores now, sample
    /// scores staged until every shard of the run is in, then published together (the run
    /// becomes the latest scored one at that moment). Returns whether this call published.
    pub fn store_score_shard(
        &mut self,
        run: i64,
        index: u32,
        count: u32,
        answers: &[(i64, f32)],
        samples: &[(i64, f32)],
    ) -> anyhow::Result<bool> {
        self.store_answer_scores(run, answers)?;
        let tx = self.db.begin_write()?;
        for (sample, score) in samples {
            tx.execute(
                "INSERT INTO shard_sample_scores (run_id, shard_count, sample_id, score) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id, shard_count, sample_id) DO UPDATE SET score = excluded.score",
                params![run, i64::from(count), sample, f64::from(*score)],
            )?;
        }
        tx.execute(
            &format!(
                "INSERT INTO score_shards (run_id, shard_count, shard_index, answers, finished_at) VALUES (?1, ?2, ?3, ?4, {NOW})
                 ON CONFLICT (run_id, shard_count, shard_index) DO UPDATE SET answers = excluded.answers, finished_at = excluded.finished_at"
            ),
            params![run, i64::from(count), i64::from(index), answers.len() as i64],
        )?;
        tx.commit()?;
        // Counted after this shard's commit: of shards finishing at once, the last to commit sees
        // them all (publishing twice writes the same values).
        self.publish_score_shards(run, count)
    }

    /// The shards of run `run` split `count` ways that are in, in order.
    pub fn score_shards_done(&self, run: i64, count: u32) -> anyhow::Result<Vec<u32>> {
        let done: Vec<i64> = self.db.query_vec(
            "SELECT shard_index FROM score_shards WHERE run_id = ?1 AND shard_count = ?2 ORDER BY shard_index",
            params![run, i64::from(count)],
            |r| r.get(0),
        )?;
        Ok(done.into_iter().map(|i| i as u32).collect())
    }

    /// Publishes the staged sample scores of run `run` once all `count` shards are in.
    fn publish_score_shards(&mut self, run: i64, count: u32) -> anyhow::Result<bool> {
        if self.score_shards_done(run, count)?.len() < count as usize {
            return Ok(false);
        }
        let tx = self.db.begin_write()?;
        tx.execute(
            "INSERT INTO sample_scores (run_id, sample_id, score)
             SELECT run_id, sample_id, score FROM shard_sample_scores WHERE run_id = ?1 AND shard_count = ?2
             ON CONFLICT (run_id, sample_id) DO UPDATE SET score = excluded.score",
            params![run, i64::from(count)],
        )?;
        tx.commit()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{
        insert, on_both_databases, sample_with_rounds, workspace_with_rounds_on, TestDb,
        TestWorkspace,
    };

    fn vectors_file(dir: &Path) -> ShardFile {
        let mut file =
            ShardFile::create_or_resume(&dir.join("v.db"), ShardContent::Vectors, "enc", 1, 3)
                .unwrap();
        let a = TextHash::of("a");
        let b = TextHash::of("b");
        file.store_vectors(&[(a, &[1.0, 2.0]), (b, &[3.0, 4.0])])
            .unwrap();
        file.seal().unwrap();
        file
    }

    #[test]
    fn a_shard_file_resumes_only_as_the_same_shard_and_seals_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        let file = ShardFile::create_or_resume(&path, ShardContent::Vectors, "enc", 1, 3).unwrap();
        file.store_vectors(&[(TextHash::of("a"), &[1.0])]).unwrap();
        drop(file);
        let err = ShardFile::create_or_resume(&path, ShardContent::Vectors, "enc", 2, 3)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("holds shard 1/3") && err.contains("not shard 2/3"),
            "{err}"
        );
        let mut file =
            ShardFile::create_or_resume(&path, ShardContent::Vectors, "enc", 1, 3).unwrap();
        assert_eq!(
            file.vector_hashes(&[TextHash::of("a"), TextHash::of("b")])
                .unwrap()
                .len(),
            1
        );
        let unfinished = file.verify().unwrap_err().to_string();
        assert!(unfinished.contains("did not finish"), "{unfinished}");
        let seal = file.seal().unwrap();
        assert_eq!(seal.rows, 1);
        assert_eq!(ShardFile::open(&path).unwrap().verify().unwrap(), seal);
        assert!(
            file.store_vectors(&[(TextHash::of("b"), &[2.0])]).is_err(),
            "sealed"
        );
    }

    #[test]
    fn a_shard_file_changed_after_its_seal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = vectors_file(dir.path());
        file.db
            .execute(
                "DELETE FROM vectors WHERE text_hash = ?1",
                params![TextHash::of("a").0],
            )
            .unwrap();
        let err = ShardFile::open(file.path())
            .unwrap()
            .verify()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("do not match its seal") && err.contains("2 rows"),
            "{err}"
        );
    }

    fn merging_a_vector_shard_adds_what_is_new_once(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let dir = tempfile::tempdir().unwrap();
        let file = vectors_file(dir.path());
        ws.store_text_embeddings("enc", &[(TextHash::of("b"), &[3.0, 5.0])])
            .unwrap();
        let merge = ws.merge_vector_shard(&file).unwrap();
        let expected = VectorMerge {
            rows: 2,
            added: 1,
            differing: 1,
        };
        assert_eq!(merge, expected);
        let again = ws.merge_vector_shard(&file).unwrap();
        assert_eq!(
            again,
            VectorMerge {
                added: 0,
                ..expected
            }
        );
        let got = ws
            .text_embeddings("enc", &[TextHash::of("a"), TextHash::of("b")])
            .unwrap();
        assert_eq!(got[&TextHash::of("a")], vec![1.0, 2.0]);
        assert_eq!(
            got[&TextHash::of("b")],
            vec![3.0, 5.0],
            "the workspace's is kept"
        );
    }

    fn a_run_scored_in_shards_is_published_when_its_last_shard_is_in(db: TestDb) {
        let (mut ws, one) = workspace_with_rounds_on(db, &[("q1", &["a", "b"])]);
        let second = crate::data::Sample {
            id: "t".into(),
            ..sample_with_rounds(&[("q2", &["c", "d"])])
        };
        let two = insert(&ws, &second);
        let two = ws.load_sample(two).unwrap().unwrap();
        let run = ws.create_selector_run("cpu", "{}", None, None).unwrap();
        let (a, b) = (one.answer_ids[0][0], one.answer_ids[0][1]);
        let published = ws
            .store_score_shard(run, 1, 2, &[(a, 1.0), (b, 2.0)], &[(one.key, 2.0)])
            .unwrap();
        assert!(!published);
        assert_eq!(
            ws.latest_selector_run().unwrap(),
            None,
            "half a run is not shown"
        );
        assert_eq!(ws.score_shards_done(run, 2).unwrap(), vec![1]);
        let (c, d) = (two.answer_ids[0][0], two.answer_ids[0][1]);
        let shard0 = [(c, 0.5), (d, -1.0)];
        assert!(ws
            .store_score_shard(run, 0, 2, &shard0, &[(two.key, 0.5)])
            .unwrap());
        assert_eq!(ws.latest_selector_run().unwrap(), Some(run));
        assert!(
            ws.store_score_shard(run, 0, 2, &shard0, &[(two.key, 0.5)])
                .unwrap(),
            "a shard sent twice publishes the same scores"
        );
        let signals = ws.rank_signals().unwrap();
        assert_eq!(signals[&one.key].score, Some(2.0));
        assert_eq!(signals[&two.key].score, Some(0.5));
        assert_eq!(ws.stats().unwrap().scored_answers, 4);
    }

    on_both_databases!(
        merging_a_vector_shard_adds_what_is_new_once,
        a_run_scored_in_shards_is_published_when_its_last_shard_is_in
    );
}
