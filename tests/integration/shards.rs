//! Large collections split over machines: `vital embed --shard K/N` and `vital score --shard K/N`,
//! then `--merge` on a directory (shards written to files) or nothing on a server (shards write
//! in directly). Sharded or not, the cache holds the same texts (each vector within 1e-5: a batch's
//! padding changes the order a matrix product sums in) and the scores come out the same.

use std::path::{Path, PathBuf};

use crate::common::{stderr, vital, vital_env_ok, vital_ok, ServerDb};
use vital::store::{ScoreRows, Workspace};

fn tiny_bert() -> PathBuf {
    crate::common::repo_root().join("tests/fixtures/encoder/tiny-bert")
}

fn identity() -> String {
    vital::embed::folder_identity(&tiny_bert()).unwrap()
}

/// The cache's vector count and digest under the tiny encoder.
fn cache(ws: &Workspace) -> (u64, String) {
    ws.text_embeddings_digest(&identity()).unwrap()
}

type Vectors = std::collections::BTreeMap<Vec<u8>, Vec<f32>>;

fn floats(blob: &[u8]) -> Vec<f32> {
    blob.chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// A directory workspace's cached vectors under the tiny encoder, read straight from its file.
fn directory_vectors(dir: &Path) -> Vectors {
    let conn = rusqlite::Connection::open(dir.join("vital.db")).unwrap();
    let mut statement = conn
        .prepare("SELECT text_hash, vector FROM text_embeddings WHERE encoder = ?1")
        .unwrap();
    let rows = statement
        .query_map([identity()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, floats(&r.get::<_, Vec<u8>>(1)?)))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// Sharded vectors against unsharded ones: the same texts, each vector within 1e-5. Not bit for
/// bit: a text's batch decides how far it is padded, and the padded length changes the order a
/// matrix product sums in (the encoder's batch invariance, tested in encoder.rs, is 1e-5).
fn assert_same_vectors(sharded: &Vectors, whole: &Vectors) {
    assert_eq!(
        sharded.keys().collect::<Vec<_>>(),
        whole.keys().collect::<Vec<_>>(),
        "the same texts"
    );
    for (key, vector) in sharded {
        let diff = crate::common::max_abs_diff(vector, &whole[key]);
        assert!(diff <= 1e-5, "{}: differs by {diff}", hex(key));
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Answer scores and sample scores of the latest scored run, sorted by id.
fn run_scores(ws: &Workspace) -> (ScoreRows, ScoreRows) {
    let mut answers: Vec<(i64, f64)> = ws
        .selector_answer_scores()
        .unwrap()
        .into_iter()
        .map(|s| (s.answer_id, s.score))
        .collect();
    answers.sort_by_key(|a| a.0);
    let mut samples: Vec<(i64, f64)> = ws
        .rank_signals()
        .unwrap()
        .into_iter()
        .map(|(id, s)| (id, s.score.unwrap()))
        .collect();
    samples.sort_by_key(|s| s.0);
    (answers, samples)
}

fn shard_files(dir: &Path, prefix: &str) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir.join("shards"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    files.sort();
    files
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn three_embed_shards_and_a_merge_give_the_vectors_of_one_unsharded_run() {
    let encoder = tiny_bert();
    let encoder = encoder.to_str().unwrap();
    let (whole, split) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    vital_ok(whole.path(), &["demo", "--quiet"]);
    vital_ok(split.path(), &["demo", "--quiet"]);
    vital_ok(whole.path(), &["embed", "--encoder", encoder]);
    let mut embedded = 0;
    for k in 0..3 {
        let shard = format!("{k}/3");
        let out = vital_ok(
            split.path(),
            &["embed", "--encoder", encoder, "--shard", &shard],
        );
        assert!(out.contains(&format!("shard {shard}:")), "{out}");
        let line = out.lines().find(|l| l.contains("distinct texts")).unwrap();
        embedded += line
            .split(", ")
            .find_map(|part| part.strip_suffix(" embedded"))
            .unwrap()
            .parse::<u64>()
            .unwrap();
    }
    let files = shard_files(split.path(), "vectors-");
    assert_eq!(files.len(), 3);
    {
        let ws = Workspace::open_existing(split.path()).unwrap();
        assert_eq!(
            cache(&ws).0,
            0,
            "a directory's shards leave the workspace alone"
        );
    }
    let mut merge = vec!["embed", "--merge"];
    merge.extend(files.iter().map(String::as_str));
    let out = vital_ok(split.path(), &merge);
    let whole_cache = cache(&Workspace::open_existing(whole.path()).unwrap());
    let split_cache = cache(&Workspace::open_existing(split.path()).unwrap());
    assert_eq!(split_cache.0, whole_cache.0, "{out}");
    assert_eq!(
        embedded, whole_cache.0,
        "each text embedded by exactly one shard"
    );
    assert!(
        out.contains(&split_cache.1[..12]),
        "the digest is printed: {out}"
    );
    assert_same_vectors(
        &directory_vectors(split.path()),
        &directory_vectors(whole.path()),
    );
    // Merging again adds nothing; a shard file cut short is refused before anything is merged.
    let again = vital_ok(split.path(), &merge);
    assert!(again.contains(" 0 added"), "{again}");
    let conn = rusqlite::Connection::open(&files[1]).unwrap();
    conn.execute(
        "DELETE FROM vectors WHERE text_hash = (SELECT min(text_hash) FROM vectors)",
        [],
    )
    .unwrap();
    drop(conn);
    let out = vital(split.path(), &merge);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&files[1]) && stderr(&out).contains("do not match its seal"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn three_score_shards_and_a_merge_give_the_scores_of_one_unsharded_run() {
    let encoder = tiny_bert();
    let (whole, root) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    vital_ok(whole.path(), &["demo", "--quiet"]);
    vital_ok(
        whole.path(),
        &[
            "train",
            "--encoder",
            encoder.to_str().unwrap(),
            "--epochs",
            "2",
            "--no-score",
        ],
    );
    let split = root.path().join("split");
    copy_dir(whole.path(), &split);
    vital_ok(whole.path(), &["score", "--run", "1"]);
    let out = vital(&split, &["score", "--shard", "0/3"]);
    assert!(
        stderr(&out).contains("--run"),
        "a shard names its run: {}",
        stderr(&out)
    );
    for k in 0..3 {
        let out = vital_ok(
            &split,
            &["score", "--run", "1", "--shard", &format!("{k}/3")],
        );
        assert!(out.contains(&format!("shard {k}/3")), "{out}");
    }
    let files = shard_files(&split, "scores-run1-");
    assert_eq!(files.len(), 3);
    let mut merge = vec!["score", "--merge"];
    merge.extend(files[..2].iter().map(String::as_str));
    let out = vital_ok(&split, &merge);
    assert!(out.contains("shards 2 of 3 still to come"), "{out}");
    assert_eq!(
        Workspace::open_existing(&split)
            .unwrap()
            .latest_selector_run()
            .unwrap(),
        None,
        "two shards of three are not a scored run"
    );
    let out = vital_ok(&split, &["score", "--merge", &files[2]]);
    assert!(out.contains("run 1 is published"), "{out}");
    let expected = run_scores(&Workspace::open_existing(whole.path()).unwrap());
    assert!(!expected.0.is_empty() && !expected.1.is_empty());
    assert_eq!(
        run_scores(&Workspace::open_existing(&split).unwrap()),
        expected
    );
}

#[test]
fn shards_on_a_server_write_into_its_cache_and_publish_with_the_last() {
    let Some(server) = ServerDb::with_demo() else {
        return;
    };
    let env = server.env();
    let url = Path::new(&server.url);
    let encoder = tiny_bert();
    let encoder = encoder.to_str().unwrap();
    let whole = tempfile::tempdir().unwrap();
    vital_ok(whole.path(), &["demo", "--quiet"]);
    vital_ok(whole.path(), &["embed", "--encoder", encoder]);
    for k in 0..2 {
        let shard = format!("{k}/2");
        vital_env_ok(
            url,
            &["embed", "--encoder", encoder, "--shard", &shard],
            &env,
        );
    }
    let files = server.files.path();
    let on_server = || Workspace::open_existing_with_files(url, files).unwrap();
    let server_vectors: Vectors = server
        .admin()
        .query(
            "SELECT text_hash, vector FROM text_embeddings WHERE encoder = $1",
            &[&identity()],
        )
        .unwrap()
        .iter()
        .map(|row| (row.get::<_, Vec<u8>>(0), floats(&row.get::<_, Vec<u8>>(1))))
        .collect();
    assert_same_vectors(&server_vectors, &directory_vectors(whole.path()));
    vital_env_ok(url, &["train", "--epochs", "2", "--no-score"], &env);
    vital_ok(whole.path(), &["train", "--epochs", "2", "--no-score"]);
    vital_ok(whole.path(), &["score", "--run", "1"]);
    let first = vital_env_ok(url, &["score", "--run", "1", "--shard", "1/2"], &env);
    assert!(first.contains("shards 0 of 2 still to come"), "{first}");
    assert_eq!(on_server().latest_selector_run().unwrap(), None);
    let last = vital_env_ok(url, &["score", "--run", "1", "--shard", "0/2"], &env);
    assert!(last.contains("run 1 is published"), "{last}");
    let (answers, samples) = run_scores(&on_server());
    let (whole_answers, whole_samples) =
        run_scores(&Workspace::open_existing(whole.path()).unwrap());
    assert_eq!(answers.len(), whole_answers.len());
    assert_eq!(samples.len(), whole_samples.len());
    // Two trainings of the same data and seed (one per workspace) give the same model.
    for (a, b) in answers.iter().zip(&whole_answers) {
        assert!((a.1 - b.1).abs() < 1e-5, "{a:?} vs {b:?}");
    }
}
