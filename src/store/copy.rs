//! `vital store copy FROM TO`: a workspace copied between a directory and a server (either way,
//! or server to server), every row with its ids, so decision events keep their time, reviewer,
//! display order and unique id, and exports from the copy are byte for byte the same.
//!
//! Rules: the target must be empty, or hold an unfinished copy of the same source (then the copy
//! resumes: tables already done are skipped, a table with one integer key continues after the
//! last row it has, the others are read again and rows already there are left alone). Rows go
//! in chunks of one transaction each, in an order that satisfies every foreign key, so a kill
//! leaves whole chunks. Onto a server a chunk is one `COPY` and one set-wise insert, not a
//! statement per row (see [`copy_chunk`]). The target's progress is kept in `vital_copy`,
//! dropped when done.

use super::db::{params, CopyRows, OwnedValue, Param};
use super::{Dialect, Workspace};

/// One table to copy: its columns and the key it is read in.
struct Table {
    name: &'static str,
    columns: &'static str,
    /// ORDER BY for reading; a single integer column when resumable by key.
    key: &'static str,
    /// Whether `key` is one integer column (keyset resume).
    integer_key: bool,
    /// The identity column whose counter must move past the copied ids on a server.
    identity: Option<&'static str>,
}

/// Parents before children (sources → samples → rounds → answers → judgments …).
const TABLES: &[Table] = &[
    Table {
        name: "sources",
        columns: "id, path, sha256, format, records, imported_at, bytes",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "image_dirs",
        columns: "rowid, path",
        key: "rowid",
        integer_key: true,
        identity: Some("rowid"),
    },
    Table {
        name: "samples",
        columns: "id, ext_id, image, caption, mentions, fig_label, domains, is_demo, content_hash, source_id",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "rounds",
        columns: "id, sample_id, position, question",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "answers",
        columns: "id, round_id, position, text",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "reviewers",
        columns: "id, name, created_at",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    // Before the decisions: on a server a decision may name only a stored guidelines version.
    Table {
        name: "team_guidelines",
        columns: "version, text, stored_at, stored_by",
        key: "version",
        integer_key: true,
        identity: None,
    },
    Table {
        name: "judgments",
        columns: "id, reviewer_id, sample_id, round_id, answer_id, kind, value, slot, shown_order, undoes, created_at, uid, figure_shown, guidelines_version",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "model_scores",
        columns: "answer_id, judge, score, created_at",
        key: "answer_id, judge",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "image_urls",
        columns: "rowid, key, url, member",
        key: "rowid",
        integer_key: true,
        identity: Some("rowid"),
    },
    Table {
        name: "selector_runs",
        columns: "id, created_at, backend, config, metrics, checkpoint",
        key: "id",
        integer_key: true,
        identity: Some("id"),
    },
    Table {
        name: "selector_scores",
        columns: "run_id, answer_id, score",
        key: "run_id, answer_id",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "sample_scores",
        columns: "run_id, sample_id, score",
        key: "run_id, sample_id",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "score_shards",
        columns: "run_id, shard_count, shard_index, answers, finished_at",
        key: "run_id, shard_count, shard_index",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "shard_sample_scores",
        columns: "run_id, shard_count, sample_id, score",
        key: "run_id, shard_count, sample_id",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "llm_requests",
        columns: "rowid, key, task, subject, model, outcome, reason, reply, prompt_tokens, completion_tokens, created_at",
        key: "rowid",
        integer_key: true,
        identity: Some("rowid"),
    },
    Table {
        name: "text_embeddings",
        columns: "encoder, text_hash, vector",
        key: "encoder, text_hash",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "figure_stats",
        columns: "content_sha256, version, stats",
        key: "content_sha256, version",
        integer_key: false,
        identity: None,
    },
    Table {
        name: "figure_files",
        columns: "path, size, mtime_ns, content_sha256",
        key: "path",
        integer_key: false,
        identity: None,
    },
];

/// Rows per transaction on the target: a directory inserts them one by one.
const CHUNK: usize = 2000;
/// Rows per transaction on a server, where a chunk is one `COPY` (a few MB of rows): fewer,
/// larger transactions, each one commit (and one flush of the server's log) instead of ten.
const SERVER_CHUNK: usize = 20_000;
/// A chunk ends sooner when its texts and bytes reach this (LLM replies of megabytes each): the
/// rows, and their COPY text on a server, stay a few tens of MB.
const CHUNK_BYTES: usize = 32 << 20;

/// What one copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CopySummary {
    /// Rows written now (a resumed copy counts only what it added).
    pub rows: u64,
    /// Tables found finished by an earlier, interrupted run.
    pub tables_skipped: usize,
    pub resumed: bool,
}

/// One chunk of rows into `table` on a server, inside the chunk's transaction: one `COPY` into
/// a staging table shaped like it (TEMP, dropped at commit), then one `INSERT … SELECT` that
/// leaves rows already there alone, as the row-at-a-time insert does on a directory (a resumed
/// copy reads some rows again). Returns the rows added.
fn copy_chunk(db: &super::db::Db, table: &Table, chunk: &[Vec<OwnedValue>]) -> anyhow::Result<u64> {
    let (name, columns) = (table.name, table.columns);
    db.execute_batch(&format!(
        "CREATE TEMP TABLE vital_copy_rows ON COMMIT DROP AS SELECT {columns} FROM {name} WITH NO DATA"
    ))?;
    let mut rows = CopyRows::default();
    for row in chunk {
        for value in row {
            rows.value(value.value());
        }
        rows.end_row();
    }
    db.copy_in(
        &format!("COPY vital_copy_rows ({columns}) FROM STDIN"),
        &rows,
    )?;
    let added = db.execute(
        &format!(
            "INSERT INTO {name} ({columns}) SELECT {columns} FROM vital_copy_rows ON CONFLICT DO NOTHING"
        ),
        params![],
    )?;
    Ok(added as u64)
}

impl Workspace {
    /// Copies this workspace into `target` (see the module's rules). `progress(table, rows)` is
    /// called after each committed chunk; an error from it stops the copy there (resumable).
    pub fn copy_into(
        &self,
        target: &Workspace,
        progress: &mut dyn FnMut(&str, u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<CopySummary> {
        anyhow::ensure!(
            self.location() != target.location(),
            "the source and the target are the same workspace"
        );
        target.ensure_curator("copying into a workspace")?;
        let source_name = self.location().to_string_lossy().into_owned();
        let state = target.copy_state()?;
        let resumed = match &state {
            Some(from) if *from == source_name => true,
            Some(from) => anyhow::bail!(
                "{} holds an unfinished copy of {from}; finish that one, or copy into an empty workspace",
                target.describe()
            ),
            None => {
                if let Some(table) = target.first_nonempty_table()? {
                    anyhow::bail!(
                        "{} is not empty (table {table} has rows): copy into a new workspace",
                        target.describe()
                    );
                }
                target.db.execute_batch(
                    "CREATE TABLE vital_copy (source TEXT NOT NULL, finished_table TEXT)",
                )?;
                target.db.execute(
                    "INSERT INTO vital_copy (source, finished_table) VALUES (?1, NULL)",
                    params![source_name],
                )?;
                false
            }
        };
        let done: Vec<String> = target.db.query_vec(
            "SELECT finished_table FROM vital_copy WHERE finished_table IS NOT NULL",
            params![],
            |r| r.get(0),
        )?;
        let mut summary = CopySummary {
            resumed,
            ..Default::default()
        };
        for table in TABLES {
            if done.iter().any(|d| d == table.name) {
                summary.tables_skipped += 1;
                continue;
            }
            summary.rows += self.copy_table(target, table, progress)?;
            target.db.execute(
                "INSERT INTO vital_copy (source, finished_table) VALUES (?1, ?2)",
                params![source_name, table.name],
            )?;
        }
        if target.db.dialect() == Dialect::Postgres {
            for table in TABLES {
                if let Some(column) = table.identity {
                    // The next id the server hands out comes after the copied ones.
                    target.db.query_value::<i64>(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{t}', '{column}'),
                                           (SELECT coalesce(max({column}), 0) + 1 FROM {t}), false)",
                            t = table.name
                        ),
                        params![],
                    )?;
                }
            }
        }
        target.db.execute_batch("DROP TABLE vital_copy")?;
        target.analyze_after_bulk_write()?;
        Ok(summary)
    }

    fn copy_table(
        &self,
        target: &Workspace,
        table: &Table,
        progress: &mut dyn FnMut(&str, u64) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let width = table.columns.split(',').count();
        let placeholders: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            table.name,
            table.columns,
            placeholders.join(", ")
        );
        let after: Option<i64> = if table.integer_key {
            target.db.query_value(
                &format!("SELECT max({}) FROM {}", table.key, table.name),
                params![],
            )?
        } else {
            None
        };
        let select = match after {
            Some(_) => format!(
                "SELECT {} FROM {} WHERE {} > ?1 ORDER BY {}",
                table.columns, table.name, table.key, table.key
            ),
            None => format!(
                "SELECT {} FROM {} ORDER BY {}",
                table.columns, table.name, table.key
            ),
        };
        // A PostgreSQL text cannot hold NUL: a directory imported before NULs were removed at
        // import copies without them (as an import onto a server now stores it).
        let to_server = target.db.dialect() == Dialect::Postgres;
        let chunk_rows = if to_server { SERVER_CHUNK } else { CHUNK };
        let mut chunk: Vec<Vec<OwnedValue>> = Vec::with_capacity(chunk_rows);
        let mut chunk_bytes = 0usize;
        let mut written = 0u64;
        let mut flush = |chunk: &mut Vec<Vec<OwnedValue>>| -> anyhow::Result<()> {
            if chunk.is_empty() {
                return Ok(());
            }
            let tx = target.db.begin_write()?;
            if to_server {
                written += copy_chunk(&tx, table, chunk)?;
            } else {
                for row in chunk.iter() {
                    let values: Vec<&dyn Param> = row.iter().map(|v| v as &dyn Param).collect();
                    written += tx.execute(&insert, &values)? as u64;
                }
            }
            tx.commit()?;
            chunk.clear();
            progress(table.name, written)
        };
        let after_param = after.unwrap_or(i64::MIN);
        let select_params: &[&dyn Param] = if after.is_some() {
            params![after_param]
        } else {
            params![]
        };
        let mut nul_removed = 0u64;
        self.db.stream_rows(&select, select_params, |row| {
            let mut values = (0..width)
                .map(|i| row.get::<OwnedValue>(i))
                .collect::<anyhow::Result<Vec<_>>>()?;
            if to_server {
                for value in &mut values {
                    if let OwnedValue::Text(text) = value {
                        if text.contains('\0') {
                            text.retain(|c| c != '\0');
                            nul_removed += 1;
                        }
                    }
                }
            }
            chunk_bytes += values
                .iter()
                .map(|v| match v {
                    OwnedValue::Text(t) => t.len(),
                    OwnedValue::Blob(b) => b.len(),
                    _ => 8,
                })
                .sum::<usize>();
            chunk.push(values);
            if chunk.len() >= chunk_rows || chunk_bytes >= CHUNK_BYTES {
                flush(&mut chunk)?;
                chunk_bytes = 0;
            }
            Ok(())
        })?;
        flush(&mut chunk)?;
        if nul_removed > 0 {
            tracing::warn!(table = table.name, nul_removed, "NUL characters removed");
            eprintln!(
                "{}: NUL characters removed from {nul_removed} value(s) (a PostgreSQL text cannot hold them)",
                table.name
            );
        }
        Ok(written)
    }

    /// The source of an unfinished copy into this workspace, if there is one.
    fn copy_state(&self) -> anyhow::Result<Option<String>> {
        let exists: bool = match self.db.dialect() {
            Dialect::Sqlite => self.db.query_value(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'vital_copy'",
                params![],
            )?,
            Dialect::Postgres => self
                .db
                .query_value("SELECT to_regclass('vital_copy') IS NOT NULL", params![])?,
        };
        if !exists {
            return Ok(None);
        }
        self.db.query_opt(
            "SELECT source FROM vital_copy WHERE finished_table IS NULL",
            params![],
            |r| r.get(0),
        )
    }

    fn first_nonempty_table(&self) -> anyhow::Result<Option<&'static str>> {
        for table in TABLES {
            let any = self.db.query_opt(
                &format!("SELECT 1 FROM {} LIMIT 1", table.name),
                params![],
                |_| Ok(()),
            )?;
            if any.is_some() {
                return Ok(Some(table.name));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};
    use crate::store::{DecisionKind, NewDecision};

    /// A workspace with a little of everything: samples, decisions (an undo among them), scores,
    /// a selector run, URLs, a ledger entry, embeddings and figure statistics.
    fn filled(db: TestDb) -> TestWorkspace {
        let (ws, s) = crate::store::test_support::workspace_with_rounds_on(
            db,
            &[("q1", &["a1", "a2"]), ("q2", &["b1", "b2", "b3"])],
        );
        for i in 0..7 {
            crate::store::test_support::insert(
                &ws,
                &crate::data::Sample {
                    id: format!("extra-{i}"),
                    caption: format!("caption {i} ünïcode"),
                    rounds: vec![crate::data::Round {
                        question: "q".into(),
                        answers: vec![format!("x{i}"), String::new()],
                    }],
                    ..Default::default()
                },
            );
        }
        let verdict = |a: usize, kind| NewDecision {
            sample_key: s.key,
            round_id: Some(s.round_ids[0]),
            answer_id: Some(s.answer_ids[0][a]),
            kind,
            value: None,
            shown_order: Some(vec![s.answer_ids[0][1], s.answer_ids[0][0]]),
            figure_shown: None,
        };
        ws.record("ana", &verdict(0, DecisionKind::Accept)).unwrap();
        ws.record("ana", &verdict(1, DecisionKind::Reject)).unwrap();
        ws.store_guidelines("Reject guesses.", "lead").unwrap();
        ws.record("ben", &verdict(0, DecisionKind::Reject)).unwrap();
        ws.undo_last("ben").unwrap();
        let run = ws
            .create_selector_run("ndarray", "{}", Some("{}"), Some("runs/1"))
            .unwrap();
        let mut ws = ws;
        ws.store_selector_scores(run, &[(s.answer_ids[0][0], 0.5)], &[(s.key, 0.25)])
            .unwrap();
        ws.db
            .execute_batch(
                "INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES (1, 'j', 7.5, 't');
                 INSERT INTO image_urls (key, url, member) VALUES ('b', 'http://x/b', NULL);
                 INSERT INTO image_urls (key, url, member) VALUES ('a', 'http://x/a.tar.gz', 'f/a.jpg');",
            )
            .unwrap();
        ws.store_text_embeddings("enc", &[(crate::store::TextHash::of("hi"), &[1.0, -2.5])])
            .unwrap();
        ws
    }

    /// Every row a workspace shows through its reads, as text: equal on two workspaces when
    /// they hold the same (the copy's tests, and the import's on both databases).
    pub(crate) fn everything(ws: &Workspace) -> String {
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            ws.stats().unwrap(),
            ws.decision_events().unwrap(),
            ws.image_urls().unwrap(),
            ws.selector_answer_scores().unwrap(),
            ws.sample_keys()
                .unwrap()
                .into_iter()
                .map(|k| ws.load_sample(k).unwrap())
                .collect::<Vec<_>>(),
            ws.text_embeddings("enc", &[crate::store::TextHash::of("hi")])
                .unwrap(),
        )
    }

    fn a_copy_there_and_back_keeps_every_row(db: TestDb) {
        let source = filled(TestDb::Sqlite);
        let middle = TestWorkspace::new(db);
        let back = TestWorkspace::new(TestDb::Sqlite);
        let summary = source.copy_into(&middle, &mut |_, _| Ok(())).unwrap();
        assert!(summary.rows > 20 && !summary.resumed, "{summary:?}");
        middle.copy_into(&back, &mut |_, _| Ok(())).unwrap();
        assert_eq!(everything(&middle), everything(&source));
        assert_eq!(everything(&back), everything(&source));
        // The guidelines and the version each decision was made under.
        let guidelines = |ws: &Workspace| {
            let versions: Vec<Option<i64>> = ws
                .decision_events()
                .unwrap()
                .iter()
                .map(|e| ws.decision_guidelines_version(e.event_id).unwrap())
                .collect();
            (ws.current_guidelines().unwrap(), versions)
        };
        let (stored, versions) = guidelines(&source);
        assert_eq!(stored.as_ref().map(|g| g.version), Some(1));
        assert!(
            versions.contains(&Some(1)) && versions.contains(&None),
            "{versions:?}"
        );
        assert_eq!(guidelines(&middle), (stored.clone(), versions.clone()));
        assert_eq!(guidelines(&back), (stored, versions));
        // The copy goes on as a workspace: new ids follow the copied ones.
        let next = middle.record(
            "cy",
            &NewDecision {
                sample_key: 1,
                round_id: None,
                answer_id: None,
                kind: DecisionKind::Flag,
                value: Some("1".into()),
                shown_order: None,
                figure_shown: None,
            },
        );
        assert!(next.unwrap() > 4);
        let err = source.copy_into(&middle, &mut |_, _| Ok(())).unwrap_err();
        assert!(format!("{err:#}").contains("not empty"), "{err:#}");
    }

    fn an_interrupted_copy_resumes_and_ends_the_same(db: TestDb) {
        let source = filled(TestDb::Sqlite);
        let target = TestWorkspace::new(db);
        let err = source
            .copy_into(&target, &mut |table, _| {
                anyhow::ensure!(table != "answers", "killed");
                Ok(())
            })
            .unwrap_err();
        assert!(format!("{err:#}").contains("killed"));
        let other = filled(TestDb::Sqlite);
        assert!(
            other.copy_into(&target, &mut |_, _| Ok(())).is_err(),
            "another source cannot finish someone else's copy"
        );
        let summary = source.copy_into(&target, &mut |_, _| Ok(())).unwrap();
        assert!(
            summary.resumed && summary.tables_skipped >= 3,
            "{summary:?}"
        );
        assert_eq!(everything(&target), everything(&source));
    }

    on_both_databases!(
        a_copy_there_and_back_keeps_every_row,
        an_interrupted_copy_resumes_and_ends_the_same
    );
}
