//! The workspace: a directory holding one SQLite database (WAL) plus caches and checkpoints, or
//! a PostgreSQL server shared by a team (its files — checkpoints, downloaded figures — kept in a
//! local folder per server). Knows the data model, nothing of the UI.

mod adjudication;
pub use adjudication::AnswerReview;
mod team_guidelines;
pub use team_guidelines::{Guidelines, Stored as GuidelinesStored, MAX_GUIDELINES_BYTES};
pub mod agreement;
mod answer_decisions;
mod busy_wait;
mod copy;
mod db;
mod decisions;
mod edits;
mod embedding_cache;
mod export_reads;
mod figure_stats;
mod history;
mod image_urls;
mod import_writes;
mod journal;
mod llm_batches;
mod llm_generation;
mod llm_judge;
mod llm_ledger;
mod model_scores;
mod review;
pub mod review_session;
mod sample_lookup;
mod samples;
mod schema;
mod scores;
mod selector_inputs;
pub mod server;
mod shard_files;
mod stats;
mod team;
mod team_gold;
mod team_plan;
mod team_status;
mod verdict_rows;

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::image_files::{ImageRoots, Lookup};
use db::{params, Db, Dialect};

pub use agreement::{AgreementReport, Conflict, Resolution, Verdicts, FINAL_REVIEWER};
pub use answer_decisions::AnswerDecision;
#[cfg(test)]
pub(crate) use copy::tests as copy_tests;
pub use copy::CopySummary;
pub use decisions::{
    new_decision_uid, CurrentDecision, DecisionKind, NewDecision, MAX_EDIT_CHARS, MAX_REASON_CHARS,
};
pub use edits::EditRecord;
pub use embedding_cache::TextHash;
pub use export_reads::{
    AnswerRow, AnswerScoreLine, AnswerScoreSource, ReadSnapshot, RoundRows, SampleRows,
};
pub use figure_stats::{FigureFile, NewFigure, StoredFigureStats};
pub use history::{DecisionEvent, SelectorAnswerScore};
pub use image_urls::ImageUrl;
pub use import_writes::{AnswerSlot, ImportBatch, NewSample, SampleLists, SamplesRefused};
pub use journal::{with_pending, Journal, PendingDecision, ReviewerLock, JOURNAL_FILE};
pub use llm_batches::{
    LlmBatch, LlmBatchProgress, LlmBatchReply, LlmBatchStored, NewLlmBatch, NewLlmBatchRequest,
    PendingLlmBatchRequest,
};
pub use llm_generation::GeneratedOutcome;
pub use llm_judge::{FigureText, JudgeTarget};
pub use llm_ledger::{LedgerEntry, LlmOutcome, LlmRequest};
pub use model_scores::ModelScore;
pub use review::IndexEntry;
pub use samples::{InsertOutcome, StoredSample};
pub use scores::{RankSignals, LATEST_SCORED_RUN};
pub use selector_inputs::{edited_answer_id, AnswerRecord, HumanPairKind, RunRecord};
pub use server::{is_server_url, ServerUrl};
pub use shard_files::{ScoreRows, ShardContent, ShardFile, ShardHeader, ShardSeal, VectorMerge};
pub use stats::Stats;
pub use team::NewReviewer;
pub use team_gold::{GoldAccuracy, GoldLine, GoldStored};
pub use team_plan::{
    overlap_bucket, Lease, PlanOrder, ReviewerPlaces, TeamPlan, DEFAULT_LEASE_MINUTES,
};
pub use team_status::{ReviewerStatus, TeamStatus};
pub use verdict_rows::VerdictRow;

/// Whether an error says the workspace cannot take a write just now — its server is away (the
/// connection was lost or refused) or another writer holds a directory's lock — rather than
/// refusing what was asked.
pub fn is_unavailable(e: &anyhow::Error) -> bool {
    Db::is_busy(e) || Db::is_connection_lost(e)
}

/// The database file's name inside a workspace directory.
pub const DB_FILE: &str = "vital.db";

/// The page size of a new directory workspace's database, in bytes (see `set_up_sqlite`).
const NEW_DATABASE_PAGE_SIZE: i64 = 16384;

/// SQL for "now" as an RFC 3339 UTC timestamp with milliseconds (PostgreSQL gets its own
/// spelling of the same text, see `db`).
pub const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// Serialises first-time set-up of a server database across processes (any fixed number).
const MIGRATION_LOCK: i64 = 0x0076_6974_616c;

pub struct Workspace {
    /// Where this workspace's files go: the directory itself, or a server's local folder.
    dir: PathBuf,
    /// What opens this workspace again: the directory, or the server's connection string.
    location: PathBuf,
    server: Option<ServerUrl>,
    /// Never leaves the store: every query is a named method of this folder, so the schema can
    /// change (or another database serve the same methods) without touching the UI or the CLI.
    db: Db,
}

impl Workspace {
    /// Opens the workspace at `location` (a directory, or a `postgresql://` connection string),
    /// creating it if needed, and brings the schema up to date.
    pub fn open(location: &Path) -> anyhow::Result<Self> {
        match server_location(location)? {
            Some(url) => Self::open_server(url, false),
            None => Self::open_dir(location),
        }
    }

    /// Opens an existing workspace, failing (without creating anything) if there is none.
    pub fn open_existing(location: &Path) -> anyhow::Result<Self> {
        if let Some(url) = server_location(location)? {
            return Self::open_server(url, true);
        }
        if !location.join(DB_FILE).is_file() {
            anyhow::bail!(
                "no workspace at {} (create one with `vital import`, or pick one with -w)",
                location.display()
            );
        }
        Self::open_dir(location)
    }

    /// [`Workspace::open_existing`], a server's local files in `files` instead of the default
    /// folder (a directory workspace keeps its files in itself; `files` is not used then).
    pub fn open_existing_with_files(location: &Path, files: &Path) -> anyhow::Result<Self> {
        match server_location(location)? {
            Some(url) => Self::open_server_with_files(url, true, files.to_path_buf()),
            None => Self::open_existing(location),
        }
    }

    /// The same workspace on a new connection (for a worker thread).
    pub fn reopen(&self) -> anyhow::Result<Self> {
        match &self.server {
            Some(url) => Self::open_server_with_files(url.clone(), true, self.dir.clone()),
            None => Self::open_dir(&self.location),
        }
    }

    fn open_dir(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create workspace directory {}", dir.display()))?;
        let file = dir.join(DB_FILE);
        let conn = rusqlite::Connection::open(&file)
            .with_context(|| format!("cannot open workspace database {}", file.display()))?;
        // WAL lets several reviewers and a background trainer work at once; FULL sync makes each
        // committed judgment survive a crash of the machine, not only of the process.
        // First, so that everything below (WAL switch, migrations) waits for another process
        // opening the same workspace at the same moment instead of failing.
        busy_wait::set(&conn, std::time::Duration::from_secs(10))?;
        let ws = Self {
            dir: dir.to_path_buf(),
            location: dir.to_path_buf(),
            server: None,
            db: Db::sqlite(conn),
        };
        // SQLite answers "busy" at once, without waiting, in a few cases the busy timeout does not
        // cover (another process creating the WAL files or recovering them at the same moment):
        // those are retried for a while rather than reported.
        let mut attempt = 0;
        loop {
            match ws.set_up_sqlite() {
                Ok(()) => break,
                Err(e) if Db::is_busy(&e) && attempt < 100 => {
                    attempt += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot upgrade workspace {}", file.display()))
                }
            }
        }
        Ok(ws)
    }

    fn open_server(url: ServerUrl, must_exist: bool) -> anyhow::Result<Self> {
        let dir = server_files_dir(&url);
        Self::open_server_with_files(url, must_exist, dir)
    }

    fn open_server_with_files(
        url: ServerUrl,
        must_exist: bool,
        dir: PathBuf,
    ) -> anyhow::Result<Self> {
        let client = url.connect()?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the local folder {}", dir.display()))?;
        let ws = Self {
            dir,
            location: PathBuf::from(url.as_str()),
            server: Some(url),
            db: Db::postgres(client),
        };
        if must_exist && ws.server_schema_version()? == 0 {
            anyhow::bail!(
                "no workspace on {} yet (create one with `vital import`, or copy one up with `vital store copy`)",
                ws.describe()
            );
        }
        ws.migrate()
            .with_context(|| format!("cannot upgrade workspace {}", ws.describe()))?;
        Ok(ws)
    }

    /// Connection settings and migrations, once per open.
    fn set_up_sqlite(&self) -> anyhow::Result<()> {
        let conn = self
            .db
            .sqlite_conn()
            .expect("a directory workspace is SQLite");
        // Before anything is written: the page size of a new database (an existing one keeps
        // its own; no-op then). Every page a write changes goes to the WAL and later into the
        // database, a system call each: 16 KiB pages take a quarter of the calls of SQLite's
        // 4 KiB (a 60K-sample import: 1.50 s -> 1.29 s, a third less system time), and hold a
        // release's 1–2 KB answers with less overflow.
        conn.pragma_update(None, "page_size", NEW_DATABASE_PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        self.migrate()
    }

    /// The directory this workspace's files go in: the workspace directory, or for a server the
    /// local folder of that server (`VITAL_SERVER_FILES`, else `servers/HOST_PORT_DB` in the
    /// platform data dir).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How long a write on this connection waits for another writer before it is reported as
    /// [`is_unavailable`] (a directory's lock; a server never makes a decision wait).
    pub fn set_write_wait(&self, wait: std::time::Duration) -> anyhow::Result<()> {
        if let Some(conn) = self.db.sqlite_conn() {
            busy_wait::set(conn, wait)?;
        }
        Ok(())
    }

    /// What opens this workspace again (`-w`): its directory or its connection string.
    pub fn location(&self) -> &Path {
        &self.location
    }

    /// Whether this workspace lives on a PostgreSQL server.
    /// Fresh planner statistics after a bulk write (an import, a copy): on a server the planner
    /// otherwise plans the next import and `stats` from the empty tables' statistics (23 minutes
    /// for a re-import after a killed one, issue 34). A directory's SQLite plans by its indexes.
    pub fn analyze_after_bulk_write(&self) -> anyhow::Result<()> {
        if self.db.dialect() == Dialect::Postgres {
            self.db
                .execute_batch("ANALYZE samples, rounds, answers, judgments, model_scores")
                .context("cannot update the server's planner statistics (ANALYZE)")?;
        }
        Ok(())
    }

    pub fn is_server(&self) -> bool {
        self.server.is_some()
    }

    /// The workspace for messages: its directory, or `server host:port/db`.
    pub fn describe(&self) -> String {
        match &self.server {
            Some(url) => format!("server {}", url.label()),
            None => self.dir.display().to_string(),
        }
    }

    /// The schema version this build writes.
    pub fn schema_version() -> i64 {
        schema::MIGRATIONS.len() as i64
    }

    /// The schema version stored in the database (0: a new database).
    fn stored_schema_version(&self) -> anyhow::Result<i64> {
        match self.db.dialect() {
            Dialect::Sqlite => Ok(self.db.sqlite_conn().expect("SQLite").pragma_query_value(
                None,
                "user_version",
                |r| r.get(0),
            )?),
            Dialect::Postgres => self.server_schema_version(),
        }
    }

    fn server_schema_version(&self) -> anyhow::Result<i64> {
        let exists: bool = self.db.query_value(
            "SELECT to_regclass('vital_schema') IS NOT NULL",
            db::NO_PARAMS,
        )?;
        if !exists {
            return Ok(0);
        }
        Ok(self
            .db
            .query_opt("SELECT version FROM vital_schema", db::NO_PARAMS, |r| {
                r.get(0)
            })?
            .unwrap_or(0))
    }

    fn set_stored_schema_version(&self, version: i64) -> anyhow::Result<()> {
        match self.db.dialect() {
            Dialect::Sqlite => self.db.sqlite_conn().expect("SQLite").pragma_update(
                None,
                "user_version",
                version,
            )?,
            Dialect::Postgres => {
                self.db.execute("DELETE FROM vital_schema", db::NO_PARAMS)?;
                self.db.execute(
                    "INSERT INTO vital_schema (version) VALUES (?1)",
                    params![version],
                )?;
            }
        }
        Ok(())
    }

    /// Brings the schema up to date. The write lock is taken first (SQLite's `BEGIN IMMEDIATE`,
    /// an advisory lock on PostgreSQL) and the version read under it, so several processes
    /// opening a new workspace at once (two first imports) migrate it once: the others wait,
    /// then find it up to date.
    fn migrate(&self) -> anyhow::Result<()> {
        let latest = Self::schema_version();
        let newer = |current: i64| {
            anyhow::anyhow!(
                "the workspace has schema version {current}, newer than this vital understands ({latest}); upgrade vital"
            )
        };
        let current = self.stored_schema_version()?;
        if current > latest {
            return Err(newer(current));
        }
        if current == latest {
            return Ok(());
        }
        let tx = self.db.begin_write()?;
        if self.db.dialect() == Dialect::Postgres {
            tx.query_value::<i64>(
                "SELECT 0 FROM (SELECT pg_advisory_xact_lock(?1)) AS locked",
                params![MIGRATION_LOCK],
            )?;
            tx.execute_batch("CREATE TABLE IF NOT EXISTS vital_schema (version BIGINT NOT NULL)")?;
        }
        let current = self.stored_schema_version()?;
        if current > latest {
            return Err(newer(current));
        }
        for (version, migration) in schema::MIGRATIONS.iter().enumerate().skip(current as usize) {
            let sql = match self.db.dialect() {
                Dialect::Sqlite => migration.sqlite,
                Dialect::Postgres => migration.postgres,
            };
            tx.execute_batch(sql)
                .with_context(|| format!("migration {} failed", version + 1))?;
            self.set_stored_schema_version(version as i64 + 1)?;
        }
        tx.commit()?;
        self.refresh_reviewer_rights()
    }

    /// Directories searched for image files, in the order they were added.
    pub fn image_dirs(&self) -> anyhow::Result<Vec<PathBuf>> {
        let dirs = self.db.query_vec(
            "SELECT path FROM image_dirs ORDER BY rowid",
            db::NO_PARAMS,
            |r| r.get::<String>(0),
        )?;
        Ok(dirs.into_iter().map(PathBuf::from).collect())
    }

    pub fn add_image_dir(&self, dir: &Path) -> anyhow::Result<()> {
        let abs = std::fs::canonicalize(dir)
            .with_context(|| format!("image directory {} does not exist", dir.display()))?;
        self.db.execute(
            "INSERT OR IGNORE INTO image_dirs (path) VALUES (?1)",
            params![abs.to_string_lossy()],
        )?;
        Ok(())
    }

    /// Finds the file for an image reference, only inside the registered image directories and
    /// the download cache (see [`crate::image_files`]): None when missing or refused.
    pub fn resolve_image(&self, reference: &str) -> Option<PathBuf> {
        self.locate_image(reference).found()
    }

    /// Like [`Workspace::resolve_image`], telling a missing file from one refused because it lies
    /// outside the image directories.
    pub fn locate_image(&self, reference: &str) -> Lookup {
        match ImageFinder::new(self) {
            Ok(finder) => finder.locate(reference),
            Err(_) => Lookup::Missing,
        }
    }

    /// Where downloaded images are kept.
    pub fn image_cache_dir(&self) -> PathBuf {
        self.dir.join("images")
    }
}

/// The server a workspace argument names, if it names one.
fn server_location(location: &Path) -> anyhow::Result<Option<ServerUrl>> {
    match location.to_str() {
        Some(text) if is_server_url(text) => Ok(Some(ServerUrl::parse(text)?)),
        Some(text) if server::is_keyword_connection(text) => anyhow::bail!(
            "a key=value connection string is not a workspace: use postgresql://USER@HOST/DATABASE (passwords through PGPASSWORD, a passfile or the prompt)"
        ),
        _ => Ok(None),
    }
}

/// The local folder of a server workspace's files.
fn server_files_dir(url: &ServerUrl) -> PathBuf {
    if let Some(dir) = std::env::var_os("VITAL_SERVER_FILES") {
        return PathBuf::from(dir);
    }
    let name: String = url
        .label()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    directories::ProjectDirs::from("org", "vital", "vital")
        .map(|d| d.data_dir().join("servers").join(&name))
        .unwrap_or_else(|| std::env::temp_dir().join("vital-servers").join(&name))
}

/// Resolves many image references against the workspace's image directories, read once (for
/// scoring 210K samples without a query per image). Confined like [`Workspace::resolve_image`].
pub struct ImageFinder {
    roots: ImageRoots,
}

impl ImageFinder {
    pub fn new(ws: &Workspace) -> anyhow::Result<Self> {
        let mut dirs = ws.image_dirs()?;
        dirs.push(ws.image_cache_dir());
        Ok(Self {
            roots: ImageRoots::new(dirs),
        })
    }

    pub fn find(&self, reference: &str) -> Option<PathBuf> {
        self.locate(reference).found()
    }

    pub fn locate(&self, reference: &str) -> Lookup {
        self.roots.lookup(reference)
    }
}

/// Test fixtures shared by the store's and its callers' unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use super::db::params;
    use super::samples::insert_sample;
    use super::{InsertOutcome, ServerUrl, StoredSample, Workspace};
    use crate::data::{Round, Sample};

    /// Which database a store test runs on: every store test runs on both (see
    /// [`on_both_databases`]), the server one against `VITAL_TEST_PG` (`tools/test_postgres.sh`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum TestDb {
        Sqlite,
        Postgres,
    }

    /// The test server's connection string (an administrator's), if one is set. Under CI a
    /// missing server fails the test; on a user's machine the server half of a test is skipped.
    pub(crate) fn test_server() -> Option<String> {
        match std::env::var("VITAL_TEST_PG") {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("VITAL_TEST_PG is not set under CI: .ci/run starts a PostgreSQL server for the tests")
            }
            _ => {
                eprintln!("skipped on PostgreSQL: VITAL_TEST_PG is not set (eval \"$(tools/test_postgres.sh start)\")");
                None
            }
        }
    }

    /// A fresh database on the test server, dropped with this value.
    pub(crate) struct ServerDatabase {
        admin: String,
        name: String,
        /// The connection string of the new database (as the administrator).
        pub url: String,
    }

    impl ServerDatabase {
        pub(crate) fn create(admin: &str) -> Self {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let name = format!(
                "vital_test_{}_{}",
                std::process::id(),
                NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let mut client = ServerUrl::parse(admin).unwrap().connect().unwrap();
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
            Self {
                admin: admin.to_string(),
                url: super::server::with_dbname(admin, &name),
                name,
            }
        }
    }

    impl Drop for ServerDatabase {
        fn drop(&mut self) {
            if let Ok(mut client) = ServerUrl::parse(&self.admin).and_then(|u| u.connect()) {
                // One statement per call: DROP DATABASE cannot run inside a transaction block.
                let _ = client.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
                let _ = client.batch_execute(&format!(
                    "DROP ROLE IF EXISTS vital_reviewers_{}",
                    self.name
                ));
                // Groups named by the database's OID: any left without a database.
                if let Ok(rows) = client.query(
                    "SELECT rolname::text FROM pg_roles WHERE rolname LIKE 'vital_reviewers_db%'
                     AND substr(rolname, 19)::oid NOT IN (SELECT oid FROM pg_database)",
                    &[],
                ) {
                    for row in rows {
                        let name: String = row.get(0);
                        let _ = client.batch_execute(&format!("DROP ROLE IF EXISTS {name}"));
                    }
                }
            }
        }
    }

    /// A workspace on the server database `url` (made if new), its files in `files`.
    pub(crate) fn server_workspace(url: &str, files: &std::path::Path) -> Workspace {
        Workspace::open_server_with_files(ServerUrl::parse(url).unwrap(), false, files.into())
            .unwrap()
    }

    /// A new, empty workspace on `db`, removed with this value (derefs to the workspace).
    pub(crate) struct TestWorkspace {
        pub ws: Workspace,
        _files: tempfile::TempDir,
        _server: Option<ServerDatabase>,
    }

    impl TestWorkspace {
        pub(crate) fn new(db: TestDb) -> Self {
            let files = tempfile::tempdir().unwrap();
            match db {
                TestDb::Sqlite => Self {
                    ws: Workspace::open(files.path()).unwrap(),
                    _files: files,
                    _server: None,
                },
                TestDb::Postgres => {
                    let admin = test_server().expect("the caller checked for a server");
                    let server = ServerDatabase::create(&admin);
                    let url = ServerUrl::parse(&server.url).unwrap();
                    let ws =
                        Workspace::open_server_with_files(url, false, files.path().to_path_buf())
                            .unwrap();
                    Self {
                        ws,
                        _files: files,
                        _server: Some(server),
                    }
                }
            }
        }
    }

    impl TestWorkspace {
        /// Takes the test server's database away (every connection dropped, new ones refused)
        /// or gives it back: a server that went down, then came back.
        pub(crate) fn set_server_reachable(&self, reachable: bool) {
            let server = self._server.as_ref().expect("a server workspace");
            let mut admin = ServerUrl::parse(&server.admin).unwrap().connect().unwrap();
            admin
                .batch_execute(&format!(
                    "ALTER DATABASE {} ALLOW_CONNECTIONS {reachable}",
                    server.name
                ))
                .unwrap();
            if !reachable {
                admin
                    .execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                        &[&server.name],
                    )
                    .unwrap();
            }
        }
    }

    impl TestWorkspace {
        /// Each imported file's path, SHA-256 and recorded size, in import order.
        pub(crate) fn stored_sources(&self) -> Vec<(String, String, Option<i64>)> {
            self.db
                .query_vec(
                    "SELECT path, sha256, bytes FROM sources ORDER BY id",
                    params![],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .unwrap()
        }

        /// The first rows whose foreign key names no row, on a directory (`PRAGMA foreign_key_check`: the
        /// import writes with the checks off); a server checks every row as it is written.
        pub(crate) fn foreign_key_violations(&self) -> Vec<String> {
            match self.db.sqlite_conn() {
                Some(conn) => {
                    let mut stmt = conn.prepare("PRAGMA foreign_key_check").unwrap();
                    let rows = stmt
                        .query_map([], |r| {
                            Ok(format!(
                                "{} row {:?} -> {}",
                                r.get::<_, String>(0)?,
                                r.get::<_, Option<i64>>(1)?,
                                r.get::<_, String>(2)?
                            ))
                        })
                        .unwrap();
                    // The first few say enough.
                    rows.take(5).map(Result::unwrap).collect()
                }
                None => Vec::new(),
            }
        }

        /// Rewrites every stored file's recorded size: `Some(d)` adds `d`, `None` forgets it
        /// (a file imported before sizes were recorded).
        pub(crate) fn forge_source_sizes(&self, change: Option<i64>) {
            match change {
                Some(d) => self
                    .db
                    .execute("UPDATE sources SET bytes = bytes + ?1", params![d]),
                None => self
                    .db
                    .execute("UPDATE sources SET bytes = NULL", params![]),
            }
            .unwrap();
        }
    }

    impl std::ops::Deref for TestWorkspace {
        type Target = Workspace;
        fn deref(&self) -> &Workspace {
            &self.ws
        }
    }

    impl std::ops::DerefMut for TestWorkspace {
        fn deref_mut(&mut self) -> &mut Workspace {
            &mut self.ws
        }
    }

    /// Runs each named `fn NAME(db: TestDb)` of the enclosing module as two tests,
    /// `NAME::sqlite` and `NAME::postgres`.
    macro_rules! on_both_databases {
        ($($name:ident),* $(,)?) => {$(
            mod $name {
                use crate::store::test_support::{test_server, TestDb};
                #[test]
                fn sqlite() {
                    super::$name(TestDb::Sqlite)
                }
                #[test]
                fn postgres() {
                    if test_server().is_some() {
                        super::$name(TestDb::Postgres)
                    }
                }
            }
        )*};
    }
    pub(crate) use on_both_databases;

    /// [`workspace_with_rounds`] on either database.
    pub(crate) fn workspace_with_rounds_on(
        db: TestDb,
        rounds: &[(&str, &[&str])],
    ) -> (TestWorkspace, StoredSample) {
        let ws = TestWorkspace::new(db);
        let key = insert(&ws, &sample_with_rounds(rounds));
        let stored = ws.load_sample(key).unwrap().unwrap();
        (ws, stored)
    }

    /// Sample `s` with the given (question, answers) rounds.
    pub(crate) fn sample_with_rounds(rounds: &[(&str, &[&str])]) -> Sample {
        Sample {
            id: "s".into(),
            rounds: rounds
                .iter()
                .map(|(question, answers)| Round {
                    question: question.to_string(),
                    answers: answers.iter().map(|a| a.to_string()).collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// Stores `sample` (which must be new) and returns its key.
    pub(crate) fn insert(ws: &Workspace, sample: &Sample) -> i64 {
        let InsertOutcome::Inserted(key) = insert_sample(&ws.db, sample, None).unwrap() else {
            panic!("a new sample is inserted")
        };
        key
    }

    /// A fresh workspace holding one sample `s` with the given (question, answers) rounds.
    pub(crate) fn workspace_with_rounds(
        rounds: &[(&str, &[&str])],
    ) -> (tempfile::TempDir, Workspace, StoredSample) {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::open(dir.path()).unwrap();
        let key = insert(&ws, &sample_with_rounds(rounds));
        let stored = ws.load_sample(key).unwrap().unwrap();
        (dir, ws, stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_creates_and_reopens_at_latest_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ws");
        {
            let ws = Workspace::open(&path).unwrap();
            let v = ws.stored_schema_version().unwrap();
            assert_eq!(v, Workspace::schema_version());
        }
        let ws = Workspace::open_existing(&path).unwrap();
        let mode: String = ws
            .db
            .sqlite_conn()
            .unwrap()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    /// A new workspace's pages are 16 KiB; one made with SQLite's 4 KiB keeps them.
    #[test]
    fn a_new_workspace_has_16_kib_pages_and_an_older_one_keeps_its_own() {
        let page_size = |ws: &Workspace| -> i64 {
            ws.db
                .sqlite_conn()
                .unwrap()
                .pragma_query_value(None, "page_size", |r| r.get(0))
                .unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let new = Workspace::open(&dir.path().join("new")).unwrap();
        assert_eq!(page_size(&new), NEW_DATABASE_PAGE_SIZE);

        let old = dir.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        let conn = rusqlite::Connection::open(old.join(DB_FILE)).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; CREATE TABLE t (x);",
        )
        .unwrap();
        drop(conn);
        assert_eq!(page_size(&Workspace::open(&old).unwrap()), 4096);
    }

    #[test]
    fn open_existing_refuses_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = Workspace::open_existing(dir.path()).err().unwrap();
        assert!(err.to_string().contains("no workspace"));
        assert!(!dir.path().join(DB_FILE).exists());
    }

    /// Two processes' first imports into a new workspace open it at the same moment.
    #[test]
    fn opening_a_new_workspace_twice_at_once_migrates_it_once_and_both_succeed() {
        for _ in 0..8 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("ws");
            let start = std::sync::Arc::new(std::sync::Barrier::new(3));
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        Workspace::open(&path)
                            .map(|_| ())
                            .map_err(|e| format!("{e:#}"))
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let ws = Workspace::open_existing(&path).unwrap();
            let v = ws.stored_schema_version().unwrap();
            assert_eq!(v, Workspace::schema_version());
        }
    }

    /// Three first commands on a new server database at the same moment: one migrates, the
    /// others wait on the advisory lock and find the schema done.
    #[test]
    fn opening_a_new_server_database_three_times_at_once_migrates_it_once() {
        use super::test_support::{test_server, ServerDatabase};
        let Some(admin) = test_server() else {
            return;
        };
        for _ in 0..3 {
            let server = ServerDatabase::create(&admin);
            let files = tempfile::tempdir().unwrap();
            let start = std::sync::Arc::new(std::sync::Barrier::new(3));
            let openers: Vec<_> = (0..3)
                .map(|_| {
                    let (url, start) = (server.url.clone(), start.clone());
                    let dir = files.path().to_path_buf();
                    std::thread::spawn(move || {
                        start.wait();
                        Workspace::open_server_with_files(ServerUrl::parse(&url)?, false, dir)
                            .map(|_| ())
                            .map_err(|e| anyhow::anyhow!("{e:#}"))
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let ws = Workspace::open_server_with_files(
                ServerUrl::parse(&server.url).unwrap(),
                true,
                files.path().to_path_buf(),
            )
            .unwrap();
            assert_eq!(
                ws.stored_schema_version().unwrap(),
                Workspace::schema_version()
            );
            let versions: i64 = ws
                .db
                .query_value("SELECT count(*) FROM vital_schema", db::NO_PARAMS)
                .unwrap();
            assert_eq!(versions, 1);
        }
    }

    #[test]
    fn a_server_without_a_workspace_is_not_created_by_a_reading_command() {
        use super::test_support::{test_server, ServerDatabase};
        let Some(admin) = test_server() else {
            return;
        };
        let server = ServerDatabase::create(&admin);
        let files = tempfile::tempdir().unwrap();
        let err = Workspace::open_server_with_files(
            ServerUrl::parse(&server.url).unwrap(),
            true,
            files.path().to_path_buf(),
        )
        .err()
        .unwrap();
        assert!(
            format!("{err:#}").contains("no workspace on server"),
            "{err:#}"
        );
    }

    /// A statement that failed inside a transaction makes its commit fail, on both databases
    /// (PostgreSQL would otherwise roll back in silence).
    fn a_commit_after_a_failed_statement_is_an_error_and_keeps_nothing(db: test_support::TestDb) {
        let ws = test_support::TestWorkspace::new(db);
        let tx = ws.db.begin_write().unwrap();
        tx.execute(
            "INSERT INTO reviewers (name, created_at) VALUES ('kept?', 'now')",
            db::NO_PARAMS,
        )
        .unwrap();
        assert!(tx
            .execute("INSERT INTO no_such_table VALUES (1)", db::NO_PARAMS)
            .is_err());
        let committed = tx.commit();
        let reviewers: i64 = ws
            .db
            .query_value("SELECT count(*) FROM reviewers", db::NO_PARAMS)
            .unwrap();
        match db {
            // SQLite keeps the statements that succeeded: the commit is real.
            test_support::TestDb::Sqlite => assert!(committed.is_ok() && reviewers == 1),
            test_support::TestDb::Postgres => {
                assert!(committed.is_err(), "a failed transaction is not a commit");
                assert_eq!(reviewers, 0);
            }
        }
    }

    test_support::on_both_databases!(
        a_commit_after_a_failed_statement_is_an_error_and_keeps_nothing
    );

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let ws = Workspace::open(dir.path()).unwrap();
            ws.set_stored_schema_version(99).unwrap();
        }
        let err = Workspace::open(dir.path()).err().unwrap();
        assert!(format!("{err:#}").contains("newer"));
    }
}
