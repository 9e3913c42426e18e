//! Samples with their rounds and answers: insertion (with conflict detection) and loading.

use super::db::{params, Db, Dialect, Param, Value};

use super::Workspace;
use crate::data::{Round, Sample};

/// What happened to a sample offered to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    /// New sample; its row id.
    Inserted(i64),
    /// Already stored with identical content; nothing written.
    Unchanged(i64),
    /// Already stored with different content; nothing written.
    Conflict { key: i64 },
}

/// A sample as stored, with the row ids of its rounds and answers.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSample {
    pub key: i64,
    pub sample: Sample,
    pub round_ids: Vec<i64>,
    /// `answer_ids[r][a]` is the id of answer `a` of round `r`.
    pub answer_ids: Vec<Vec<i64>>,
    pub source: Option<String>,
}

/// Inserts `sample` unless a sample with its id exists (unchanged or conflict).
pub fn insert_sample(
    db: &Db,
    sample: &Sample,
    source_id: Option<i64>,
) -> anyhow::Result<InsertOutcome> {
    insert_hashed_sample(db, sample, &sample.content_hash(), source_id)
}

/// [`insert_sample`] with `hash`, the sample's [`Sample::content_hash`], already computed.
pub fn insert_hashed_sample(
    db: &Db,
    sample: &Sample,
    hash: &str,
    source_id: Option<i64>,
) -> anyhow::Result<InsertOutcome> {
    let existing: Option<(i64, String)> = db.query_opt(
        "SELECT id, content_hash FROM samples WHERE ext_id = ?1",
        params![sample.id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if let Some((key, stored_hash)) = existing {
        return Ok(if stored_hash == *hash {
            InsertOutcome::Unchanged(key)
        } else {
            InsertOutcome::Conflict { key }
        });
    }
    let key: i64 = db.query_value(
        "INSERT INTO samples (ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash, source_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) RETURNING id",
        params![
            sample.id,
            sample.image,
            sample.caption,
            serde_json::to_string(&sample.mentions).expect("strings serialise"),
            sample.fig_label,
            serde_json::to_string(&sample.domains).expect("strings serialise"),
            sample.is_demo,
            hash,
            source_id,
        ],
    )?;
    if db.dialect() == Dialect::Postgres {
        insert_rounds_batched(db, key, sample)?;
        return Ok(InsertOutcome::Inserted(key));
    }
    for (position, round) in sample.rounds.iter().enumerate() {
        let round_id: i64 = db.query_value(
            "INSERT INTO rounds (sample_id, position, question) VALUES (?1, ?2, ?3) RETURNING id",
            params![key, position, round.question],
        )?;
        for (a, text) in round.answers.iter().enumerate() {
            db.execute(
                "INSERT INTO answers (round_id, position, text) VALUES (?1, ?2, ?3)",
                params![round_id, a, text],
            )?;
        }
    }
    Ok(InsertOutcome::Inserted(key))
}

/// Rows per multi-row INSERT (3 parameters each, far below PostgreSQL's 65 535).
const ROWS_PER_INSERT: usize = 1000;

/// A sample's rounds, then all its answers, in multi-row INSERTs: on a server every statement is
/// a round trip, and one per row made an import of 200K figures take minutes. (SQLite keeps one
/// cached statement per row, which is what is fast there.)
fn insert_rounds_batched(db: &Db, key: i64, sample: &Sample) -> anyhow::Result<()> {
    let mut round_ids = vec![0i64; sample.rounds.len()];
    let rounds: Vec<(usize, &str)> = sample
        .rounds
        .iter()
        .enumerate()
        .map(|(p, r)| (p, r.question.as_str()))
        .collect();
    for chunk in rounds.chunks(ROWS_PER_INSERT) {
        let mut values: Vec<Value<'_>> = Vec::with_capacity(chunk.len() * 3);
        for (position, question) in chunk {
            values.extend([
                Value::Int(key),
                Value::Int(*position as i64),
                Value::Text(question),
            ]);
        }
        let refs: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
        // RETURNING's row order is not promised: each id comes back with its position.
        for (id, position) in db.query_vec(
            &format!(
                "INSERT INTO rounds (sample_id, position, question) VALUES {} RETURNING id, position",
                placeholders(chunk.len())
            ),
            &refs,
            |r| Ok((r.get::<i64>(0)?, r.get::<usize>(1)?)),
        )? {
            round_ids[position] = id;
        }
    }
    let answers: Vec<(i64, usize, &str)> = sample
        .rounds
        .iter()
        .zip(&round_ids)
        .flat_map(|(round, &id)| {
            round
                .answers
                .iter()
                .enumerate()
                .map(move |(a, text)| (id, a, text.as_str()))
        })
        .collect();
    for chunk in answers.chunks(ROWS_PER_INSERT) {
        let mut values: Vec<Value<'_>> = Vec::with_capacity(chunk.len() * 3);
        for (round_id, position, text) in chunk {
            values.extend([
                Value::Int(*round_id),
                Value::Int(*position as i64),
                Value::Text(text),
            ]);
        }
        let refs: Vec<&dyn Param> = values.iter().map(|v| v as &dyn Param).collect();
        db.execute(
            &format!(
                "INSERT INTO answers (round_id, position, text) VALUES {}",
                placeholders(chunk.len())
            ),
            &refs,
        )?;
    }
    Ok(())
}

/// `(?1, ?2, ?3), (?4, ?5, ?6), …` for `rows` rows of three.
fn placeholders(rows: usize) -> String {
    (0..rows)
        .map(|r| format!("(?{}, ?{}, ?{})", 3 * r + 1, 3 * r + 2, 3 * r + 3))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Workspace {
    /// Loads one sample by its row id.
    pub fn load_sample(&self, key: i64) -> anyhow::Result<Option<StoredSample>> {
        load(&self.db, "s.id = ?1", Value::Int(key))
    }

    /// Loads one sample by the id it had in its source file.
    pub fn load_sample_by_ext_id(&self, ext_id: &str) -> anyhow::Result<Option<StoredSample>> {
        load(&self.db, "s.ext_id = ?1", Value::Text(ext_id))
    }

    /// Row ids of all samples in import order.
    pub fn sample_keys(&self) -> anyhow::Result<Vec<i64>> {
        self.db
            .query_vec("SELECT id FROM samples ORDER BY id", params![], |r| {
                r.get(0)
            })
    }
}

fn load(db: &Db, filter: &str, arg: Value<'_>) -> anyhow::Result<Option<StoredSample>> {
    let sql = format!(
        "SELECT s.id, s.ext_id, s.image, s.caption, s.mentions, s.fig_label, s.domains, s.is_demo, src.path
         FROM samples s LEFT JOIN sources src ON src.id = s.source_id WHERE {filter}"
    );
    let row = db.query_opt(&sql, params![arg], |r| {
        Ok((
            r.get::<i64>(0)?,
            Sample {
                id: r.get(1)?,
                image: r.get(2)?,
                caption: r.get(3)?,
                mentions: parse_list(r.get::<String>(4)?),
                fig_label: r.get(5)?,
                domains: parse_list(r.get::<String>(6)?),
                rounds: Vec::new(),
                is_demo: r.get(7)?,
            },
            r.get::<Option<String>>(8)?,
        ))
    })?;
    let Some((key, mut sample, source)) = row else {
        return Ok(None);
    };
    let mut round_ids = Vec::new();
    let mut answer_ids: Vec<Vec<i64>> = Vec::new();
    db.for_each_row(
        "SELECT r.id, r.question, a.id, a.text FROM rounds r LEFT JOIN answers a ON a.round_id = r.id
         WHERE r.sample_id = ?1 ORDER BY r.position, a.position NULLS FIRST",
        params![key],
        |row| {
        let round_id: i64 = row.get(0)?;
        if round_ids.last() != Some(&round_id) {
            round_ids.push(round_id);
            answer_ids.push(Vec::new());
            sample.rounds.push(Round {
                question: row.get(1)?,
                answers: Vec::new(),
            });
        }
        if let Some(answer_id) = row.get::<Option<i64>>(2)? {
            answer_ids.last_mut().expect("pushed above").push(answer_id);
            sample
                .rounds
                .last_mut()
                .expect("pushed above")
                .answers
                .push(row.get(3)?);
        }
        Ok(())
    })?;
    Ok(Some(StoredSample {
        key,
        sample,
        round_ids,
        answer_ids,
        source,
    }))
}

pub(super) fn parse_list(json: String) -> Vec<String> {
    serde_json::from_str(&json).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    fn sample(id: &str) -> Sample {
        Sample {
            id: id.into(),
            image: Some("fig.png".into()),
            caption: "Axial CT of the chest.".into(),
            mentions: vec!["As seen in Figure 1.".into()],
            fig_label: Some("Figure 1".into()),
            domains: vec!["ct_scan".into()],
            rounds: vec![
                Round {
                    question: "What modality?".into(),
                    answers: vec!["CT.".into(), "MRI.".into()],
                },
                Round {
                    question: "Unanswered?".into(),
                    answers: vec![],
                },
            ],
            is_demo: false,
        }
    }

    fn insert_then_load_round_trips(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let s = sample("a");
        let InsertOutcome::Inserted(key) = insert_sample(&ws.db, &s, None).unwrap() else {
            panic!("expected insert")
        };
        let stored = ws.load_sample(key).unwrap().unwrap();
        assert_eq!(stored.sample, s);
        assert_eq!(stored.answer_ids[0].len(), 2);
        assert!(stored.answer_ids[1].is_empty());
        assert_eq!(ws.load_sample_by_ext_id("a").unwrap().unwrap().key, key);
        assert!(ws.load_sample_by_ext_id("zzz").unwrap().is_none());
    }

    fn same_content_is_unchanged_and_different_content_conflicts(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let s = sample("a");
        let InsertOutcome::Inserted(key) = insert_sample(&ws.db, &s, None).unwrap() else {
            panic!()
        };
        assert_eq!(
            insert_sample(&ws.db, &s, None).unwrap(),
            InsertOutcome::Unchanged(key)
        );
        let mut changed = s.clone();
        changed.rounds[0].answers[1] = "Ultrasound.".into();
        assert_eq!(
            insert_sample(&ws.db, &changed, None).unwrap(),
            InsertOutcome::Conflict { key }
        );
        assert_eq!(
            ws.load_sample(key).unwrap().unwrap().sample,
            s,
            "stored sample untouched"
        );
    }

    on_both_databases!(
        insert_then_load_round_trips,
        same_content_is_unchanged_and_different_content_conflicts
    );
}
