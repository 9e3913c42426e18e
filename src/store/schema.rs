//! The workspace schema, as an ordered list of migrations, each spelled for SQLite and for
//! PostgreSQL. Both count versions the same way: SQLite in `PRAGMA user_version`, PostgreSQL in
//! the one-row table `vital_schema`; an upgrade runs in one transaction, so an interrupted one
//! leaves the old version.
//!
//! PostgreSQL's spelling keeps SQLite's behaviour: 64-bit integers everywhere (SQLite's INTEGER),
//! text compared byte by byte (`COLLATE "C"`, SQLite's BINARY), and an explicit `rowid` where the
//! store orders by insertion.

/// One schema step in both databases' spelling.
pub struct Migration {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Migration `i` brings the schema from version `i` to `i + 1`. Never edit a released one: append.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        sqlite: SQLITE[0],
        postgres: POSTGRES[0],
    },
    Migration {
        sqlite: SQLITE[1],
        postgres: POSTGRES[1],
    },
    Migration {
        sqlite: SQLITE[2],
        postgres: POSTGRES[2],
    },
    Migration {
        sqlite: SQLITE[3],
        postgres: POSTGRES[3],
    },
    Migration {
        sqlite: SQLITE[4],
        postgres: POSTGRES[4],
    },
    Migration {
        sqlite: SQLITE[5],
        postgres: POSTGRES[5],
    },
    Migration {
        sqlite: SQLITE[6],
        postgres: POSTGRES[6],
    },
    Migration {
        sqlite: SQLITE[7],
        postgres: POSTGRES[7],
    },
    Migration {
        sqlite: SQLITE[8],
        postgres: POSTGRES[8],
    },
    Migration {
        sqlite: LLM_BATCHES_SQLITE,
        postgres: LLM_BATCHES_POSTGRES,
    },
    Migration {
        sqlite: SQLITE[9],
        postgres: POSTGRES[9],
    },
    Migration {
        sqlite: GUIDELINES_SQLITE,
        postgres: GUIDELINES_POSTGRES,
    },
    Migration {
        sqlite: TEAM_CHECKS_SQLITE,
        postgres: TEAM_CHECKS_POSTGRES,
    },
    Migration {
        sqlite: SOURCE_BYTES_SQLITE,
        postgres: SOURCE_BYTES_POSTGRES,
    },
];

// 13: gold checks (`vital import --format verdicts --gold FILE`; see `team_gold.rs`): the known
// verdict on each gold answer, who gave it and when. Not a decision: nothing in the log. On a
// server only a curator reads or writes the table (row-level security: a reviewer's role, granted
// SELECT on every table, reads no row); a reviewer's claim learns only the one gold sample it is
// served, through `vital_gold_next`, and their own accuracy through `vital_gold_accuracy`, both
// run with the owner's rights and answering for the connecting reviewer alone. And extra
// reviewers on split samples (`--extra-when-split`, `team_plan.rs`): a claim asks
// `vital_split(sample)` whether the sample's reviewers contradict each other (yes or no, never
// who or how: a reviewer's role reads only its own decisions), among the samples with a place
// finished lately (`team_leases_finished_lately`).
const TEAM_CHECKS_SQLITE: &str = r#"
    CREATE TABLE team_gold (
        answer_id INTEGER PRIMARY KEY REFERENCES answers(id),
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
        source TEXT NOT NULL,
        stored_at TEXT NOT NULL
    );
    CREATE INDEX team_gold_by_sample ON team_gold (sample_id);
    CREATE INDEX team_leases_finished_lately ON team_leases (done, until_ms);
"#;

const TEAM_CHECKS_POSTGRES: &str = r#"
    CREATE TABLE team_gold (
        answer_id BIGINT PRIMARY KEY REFERENCES answers(id),
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        accepted BIGINT NOT NULL CHECK (accepted IN (0, 1)),
        source TEXT COLLATE "C" NOT NULL CHECK (char_length(source) <= 100),
        stored_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX team_gold_by_sample ON team_gold (sample_id);
    CREATE INDEX team_leases_finished_lately ON team_leases (done, until_ms);
    ALTER TABLE team_gold ENABLE ROW LEVEL SECURITY;
    CREATE POLICY team_gold_curators ON team_gold
        USING (has_table_privilege('samples', 'INSERT'))
        WITH CHECK (has_table_privilege('samples', 'INSERT'));
    -- Inside these functions current_user is the owner: the caller is session_user.
    CREATE FUNCTION vital_gold_next(who TEXT) RETURNS BIGINT
        LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    DECLARE
        p jsonb; every BIGINT; onboarding BIGINT; route jsonb; gold BIGINT; regular BIGINT;
    BEGIN
        IF who <> session_user::text AND NOT has_table_privilege(session_user, 'samples', 'INSERT') THEN
            RAISE EXCEPTION 'a reviewer is served their own gold checks only'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        SELECT plan::jsonb INTO p FROM team_plan WHERE id = 1;
        IF p IS NULL THEN RETURN NULL; END IF;
        every := coalesce((p->>'gold_every')::BIGINT, 0);
        onboarding := coalesce((p->>'onboarding')::BIGINT, 0);
        SELECT count(*) FILTER (WHERE EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = l.sample_id)),
               count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = l.sample_id))
          INTO gold, regular
          FROM team_leases l WHERE l.reviewer = who AND l.done = 1;
        IF gold >= onboarding + (CASE WHEN every > 0 THEN regular / every ELSE 0 END) THEN
            RETURN NULL;
        END IF;
        route := p->'routes'->who;
        RETURN (SELECT s.id FROM samples s
                WHERE EXISTS (SELECT 1 FROM team_gold t WHERE t.sample_id = s.id)
                  AND NOT EXISTS (SELECT 1 FROM team_leases m
                                  WHERE m.sample_id = s.id AND m.reviewer = who AND m.done = 1)
                  AND (route IS NULL OR jsonb_array_length(route) = 0 OR EXISTS (
                       SELECT 1 FROM jsonb_array_elements_text(s.domains::jsonb) d
                       WHERE d IN (SELECT jsonb_array_elements_text(route))))
                ORDER BY s.id LIMIT 1);
    END $$;
    CREATE FUNCTION vital_gold_accuracy()
        RETURNS TABLE (reviewer TEXT, decided BIGINT, correct BIGINT)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        WITH v AS (
            SELECT c.reviewer_id, c.answer_id, c.kind = 'accept' AS accepted
            FROM current_judgments c WHERE c.kind IN ('accept', 'reject')
            UNION ALL
            SELECT c.reviewer_id, a.id, CAST(a.id AS TEXT) = c.value
            FROM current_judgments c JOIN answers a ON a.round_id = c.round_id
            WHERE c.kind = 'prefer')
        SELECT rv.name::text, count(*)::BIGINT,
               sum(CASE WHEN (g.accepted = 1) = v.accepted THEN 1 ELSE 0 END)::BIGINT
        FROM v JOIN team_gold g ON g.answer_id = v.answer_id
        JOIN reviewers rv ON rv.id = v.reviewer_id
        WHERE rv.name NOT IN ('final', 'imported')
          AND (has_table_privilege(session_user, 'samples', 'INSERT') OR rv.name = session_user::text)
        GROUP BY rv.name ORDER BY rv.name
    $$;
    CREATE FUNCTION vital_split(sample BIGINT) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
        SELECT EXISTS (
            SELECT 1 FROM current_judgments c JOIN reviewers rv ON rv.id = c.reviewer_id
            WHERE c.sample_id = sample AND c.kind IN ('accept', 'reject') AND rv.name <> 'imported'
            GROUP BY c.answer_id
            HAVING count(DISTINCT CASE WHEN rv.name <> 'final' THEN c.kind END) = 2
               AND sum(CASE WHEN rv.name = 'final' THEN 1 ELSE 0 END) = 0)
    $$;
"#;

// 14: each imported file's size in bytes. An import whose size no stored file has (and no file
// stored before this column, whose size is NULL) cannot be a file imported before, so a directory
// import hashes it while parsing instead of reading it twice (`src/import/mod.rs`).
const SOURCE_BYTES_SQLITE: &str = "ALTER TABLE sources ADD COLUMN bytes INTEGER;";
const SOURCE_BYTES_POSTGRES: &str = "ALTER TABLE sources ADD COLUMN bytes BIGINT;";

// 12: the reviewers' guidelines, one row per version (`vital team guidelines FILE.md`; see
// `team_guidelines.rs`), and the version in force when each decision was made. Only a curator
// stores a version (reviewers are granted SELECT alone); on a server a decision written directly
// can name only a stored version.
const GUIDELINES_SQLITE: &str = r#"
    CREATE TABLE team_guidelines (
        version INTEGER PRIMARY KEY,
        text TEXT NOT NULL,
        stored_at TEXT NOT NULL,
        stored_by TEXT NOT NULL
    );
    ALTER TABLE judgments ADD COLUMN guidelines_version INTEGER;
"#;

const GUIDELINES_POSTGRES: &str = r#"
    CREATE TABLE team_guidelines (
        version BIGINT PRIMARY KEY CHECK (version > 0),
        text TEXT COLLATE "C" NOT NULL CHECK (octet_length(text) <= 262144),
        stored_at TEXT COLLATE "C" NOT NULL,
        stored_by TEXT COLLATE "C" NOT NULL
    );
    ALTER TABLE judgments ADD COLUMN guidelines_version BIGINT;
    CREATE FUNCTION vital_judgment_guidelines() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.guidelines_version IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM team_guidelines WHERE version = NEW.guidelines_version) THEN
            RAISE EXCEPTION 'guidelines version % was never stored', NEW.guidelines_version
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER judgments_guidelines BEFORE INSERT ON judgments
        FOR EACH ROW EXECUTE FUNCTION vital_judgment_guidelines();
"#;

// Batches of LLM requests (`--batch`, `--batch-file`; see `store::llm_batches`): one row per
// input file, recorded before it is uploaded, and each request in it with what storing its reply
// needs. A request `pending` in an open batch is not sent again until the batch ends.
const LLM_BATCHES_SQLITE: &str = r#"
    CREATE TABLE llm_batches (
        id INTEGER PRIMARY KEY,
        tag TEXT NOT NULL UNIQUE,        -- vital's id of the batch: the file's name and the batch's metadata
        task TEXT NOT NULL,              -- generate | judge | judge-pairwise
        model TEXT NOT NULL,
        judge TEXT,                      -- the judge's name (judging)
        endpoint TEXT NOT NULL,          -- the API base ('' for a batch file run elsewhere)
        input_path TEXT NOT NULL,        -- the request lines, kept until the batch is collected
        requests INTEGER NOT NULL,
        input_file_id TEXT,              -- set once uploaded
        remote_id TEXT,                  -- set once created
        status TEXT NOT NULL,            -- prepared | uploaded | file | the API's status | collected
        completed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        output_file_id TEXT,
        error_file_id TEXT,
        message TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE llm_batch_requests (
        batch_id INTEGER NOT NULL REFERENCES llm_batches(id),
        key TEXT NOT NULL,               -- the request key (the line's custom_id)
        subject TEXT NOT NULL,
        meta TEXT NOT NULL,              -- JSON: what storing the reply needs
        state TEXT NOT NULL,             -- pending | answered | failed
        reason TEXT,                     -- why it failed
        PRIMARY KEY (batch_id, key)
    );
    CREATE INDEX llm_batch_requests_by_key ON llm_batch_requests (key, state);
"#;

const LLM_BATCHES_POSTGRES: &str = r#"
    CREATE TABLE llm_batches (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tag TEXT COLLATE "C" NOT NULL UNIQUE,
        task TEXT COLLATE "C" NOT NULL,
        model TEXT COLLATE "C" NOT NULL,
        judge TEXT COLLATE "C",
        endpoint TEXT COLLATE "C" NOT NULL,
        input_path TEXT COLLATE "C" NOT NULL,
        requests BIGINT NOT NULL,
        input_file_id TEXT COLLATE "C",
        remote_id TEXT COLLATE "C",
        status TEXT COLLATE "C" NOT NULL,
        completed BIGINT NOT NULL,
        failed BIGINT NOT NULL,
        output_file_id TEXT COLLATE "C",
        error_file_id TEXT COLLATE "C",
        message TEXT COLLATE "C",
        created_at TEXT COLLATE "C" NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE llm_batch_requests (
        batch_id BIGINT NOT NULL REFERENCES llm_batches(id),
        key TEXT COLLATE "C" NOT NULL,
        subject TEXT COLLATE "C" NOT NULL,
        meta TEXT COLLATE "C" NOT NULL,
        state TEXT COLLATE "C" NOT NULL,
        reason TEXT COLLATE "C",
        PRIMARY KEY (batch_id, key)
    );
    CREATE INDEX llm_batch_requests_by_key ON llm_batch_requests (key, state);
"#;

const SQLITE: &[&str] = &[
    // 1: samples, rounds, answers, judgments, scores.
    r#"
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        format TEXT NOT NULL,
        records INTEGER NOT NULL,
        imported_at TEXT NOT NULL
    );
    CREATE TABLE image_dirs (
        path TEXT PRIMARY KEY
    );
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        ext_id TEXT NOT NULL UNIQUE,
        image TEXT,
        caption TEXT NOT NULL,
        mentions TEXT NOT NULL,          -- JSON array of strings
        fig_label TEXT,
        domains TEXT NOT NULL,           -- JSON array of strings
        is_demo INTEGER NOT NULL DEFAULT 0,
        content_hash TEXT NOT NULL,
        source_id INTEGER REFERENCES sources(id)
    );
    CREATE TABLE rounds (
        id INTEGER PRIMARY KEY,
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        position INTEGER NOT NULL,       -- 0-based
        question TEXT NOT NULL,
        UNIQUE (sample_id, position)
    );
    CREATE TABLE answers (
        id INTEGER PRIMARY KEY,
        round_id INTEGER NOT NULL REFERENCES rounds(id),
        position INTEGER NOT NULL,       -- 0-based; "Answer 1" is position 0
        text TEXT NOT NULL,
        UNIQUE (round_id, position)
    );
    CREATE TABLE reviewers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    -- Append-only event log. A decision is never updated: a later event in the same slot replaces
    -- it, and an `undo` event (undoes = the undone event's id) withdraws one.
    CREATE TABLE judgments (
        id INTEGER PRIMARY KEY,
        reviewer_id INTEGER NOT NULL REFERENCES reviewers(id),
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        round_id INTEGER REFERENCES rounds(id),
        answer_id INTEGER REFERENCES answers(id),
        kind TEXT NOT NULL,              -- accept reject prefer tie rate flag note demo undo
        value TEXT,                      -- e.g. the preferred answer id, the rating, the note
        slot TEXT NOT NULL,              -- what the decision is about: later events in a slot win
        shown_order TEXT,                -- JSON array of answer ids in the order shown
        undoes INTEGER REFERENCES judgments(id),
        created_at TEXT NOT NULL
    );
    CREATE INDEX judgments_by_reviewer_slot ON judgments (reviewer_id, slot, id);
    CREATE INDEX judgments_by_sample ON judgments (sample_id);
    CREATE UNIQUE INDEX judgments_undone_once ON judgments (undoes) WHERE undoes IS NOT NULL;
    CREATE TABLE model_scores (
        answer_id INTEGER NOT NULL REFERENCES answers(id),
        judge TEXT NOT NULL,
        score REAL NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (answer_id, judge)
    );
    CREATE TABLE image_urls (
        key TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        member TEXT
    );
    CREATE TABLE selector_runs (
        id INTEGER PRIMARY KEY,
        created_at TEXT NOT NULL,
        backend TEXT NOT NULL,
        config TEXT NOT NULL,            -- JSON: the hyper-parameters it was trained with
        metrics TEXT,                    -- JSON: held-out metrics
        checkpoint TEXT                  -- directory of the saved weights, inside the workspace
    );
    CREATE TABLE selector_scores (
        run_id INTEGER NOT NULL REFERENCES selector_runs(id),
        answer_id INTEGER NOT NULL REFERENCES answers(id),
        score REAL NOT NULL,
        PRIMARY KEY (run_id, answer_id)
    ) WITHOUT ROWID;
    CREATE TABLE sample_scores (
        run_id INTEGER NOT NULL REFERENCES selector_runs(id),
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        score REAL NOT NULL,
        PRIMARY KEY (run_id, sample_id)
    ) WITHOUT ROWID;
    -- Effective events: not undo events and not undone.
    CREATE VIEW effective_judgments AS
        SELECT j.* FROM judgments j
        WHERE j.kind <> 'undo'
          AND NOT EXISTS (SELECT 1 FROM judgments u WHERE u.undoes = j.id);
    -- The current decision in each slot of each reviewer: its latest effective event.
    CREATE VIEW current_judgments AS
        SELECT e.* FROM effective_judgments e
        WHERE e.id = (SELECT max(e2.id) FROM effective_judgments e2
                      WHERE e2.reviewer_id = e.reviewer_id AND e2.slot = e.slot);
    -- Clinician preference pairs in force: a ✓ and a ✗ answer to the same question by the same
    -- reviewer, or an explicit preference of one answer over the others.
    CREATE VIEW human_pairs AS
        WITH verdicts AS (
            SELECT reviewer_id, round_id, answer_id, kind FROM current_judgments
            WHERE kind IN ('accept', 'reject'))
        SELECT a.reviewer_id, a.round_id, a.answer_id AS winner, r.answer_id AS loser
        FROM verdicts a JOIN verdicts r
          ON a.reviewer_id = r.reviewer_id AND a.round_id = r.round_id
         AND a.kind = 'accept' AND r.kind = 'reject'
        UNION
        SELECT p.reviewer_id, p.round_id, CAST(p.value AS INTEGER), other.id
        FROM current_judgments p JOIN answers other
          ON other.round_id = p.round_id AND other.id <> CAST(p.value AS INTEGER)
        WHERE p.kind = 'prefer';
    "#,
    // 2: finished LLM requests (generate, judge), keyed by the hash of the request body, so runs
    // resume without repeating one; replies that could not be used are kept with the reason.
    r#"
    CREATE TABLE llm_requests (
        key TEXT PRIMARY KEY,            -- SHA-256 of the exact request body
        task TEXT NOT NULL,              -- generate | judge | judge-pairwise
        subject TEXT NOT NULL,           -- the figure id, or the answer ids judged
        model TEXT NOT NULL,
        outcome TEXT NOT NULL,           -- stored | unparseable
        reason TEXT,                     -- why an unparseable reply could not be used
        reply TEXT NOT NULL,             -- the model's reply, kept for audit and re-parsing
        prompt_tokens INTEGER NOT NULL,
        completion_tokens INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX llm_requests_by_outcome ON llm_requests (outcome, task);
    "#,
    // Text embeddings cache: one vector per (encoder, text), so every question, answer and
    // caption+mention is embedded once per encoder, and `vital embed` resumes where it stopped.
    r#"
    CREATE TABLE text_embeddings (
        encoder TEXT NOT NULL,           -- the encoder's identity: hash of its config and weights
        text_hash BLOB NOT NULL,         -- SHA-256 of the text's UTF-8 bytes
        vector BLOB NOT NULL,            -- f32 little-endian, the encoder's width
        PRIMARY KEY (encoder, text_hash)
    ) WITHOUT ROWID;
    "#,
    // Figure statistics (the selector's image signals), computed once per file content, and the
    // content each image path held when it was last read, so an unchanged file is not read again.
    r#"
    CREATE TABLE figure_stats (
        content_sha256 BLOB NOT NULL,    -- SHA-256 of the image file's bytes
        version INTEGER NOT NULL,        -- how the statistics were computed
        stats BLOB,                      -- f32 little-endian; NULL: the file does not decode
        PRIMARY KEY (content_sha256, version)
    ) WITHOUT ROWID;
    CREATE TABLE figure_files (
        path TEXT PRIMARY KEY,           -- absolute path of the image file
        size INTEGER NOT NULL,           -- bytes, when last read
        mtime_ns INTEGER NOT NULL,       -- modification time (ns since 1970), when last read
        content_sha256 BLOB NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 5: a client-made unique id per decision event (a resend of the same decision is a no-op).
    r#"
    ALTER TABLE judgments ADD COLUMN uid TEXT;
    CREATE UNIQUE INDEX judgments_by_uid ON judgments (uid);
    "#,
    // 6: a run scored in shards (`vital score --shard K/N`, one machine each): each shard's sample
    // scores wait here until all N shards of the run are in, then publish together, so a run is
    // never half-visible in the queue.
    r#"
    CREATE TABLE score_shards (
        run_id INTEGER NOT NULL REFERENCES selector_runs(id),
        shard_count INTEGER NOT NULL,
        shard_index INTEGER NOT NULL,
        answers INTEGER NOT NULL,        -- answers the shard scored
        finished_at TEXT NOT NULL,
        PRIMARY KEY (run_id, shard_count, shard_index)
    ) WITHOUT ROWID;
    CREATE TABLE shard_sample_scores (
        run_id INTEGER NOT NULL REFERENCES selector_runs(id),
        shard_count INTEGER NOT NULL,
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        score REAL NOT NULL,
        PRIMARY KEY (run_id, shard_count, sample_id)
    ) WITHOUT ROWID;
    "#,
    // 7: the `human_pairs` view goes: training and `stats` derive clinician pairs from the
    // decisions in force in Rust (`human_training_pairs`), by one rule, and nothing read it.
    r#"
    DROP VIEW human_pairs;
    "#,
    // 8: whether the figure was on the reviewer's screen when they decided (1/0; NULL: not
    // known, as for imported decisions and those made before this column).
    r#"
    ALTER TABLE judgments ADD COLUMN figure_shown INTEGER;
    "#,
    // 9: nothing for a directory: its decisions are written by vital alone (the server's 9 checks
    // what a reviewer's role writes directly).
    r#"
    SELECT 1;
    "#,
    // 11 (10 is `LLM_BATCHES_*`): the team plan and the reviewers' places on samples (see `team_plan.rs`).
    r#"
    CREATE TABLE team_plan (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        plan TEXT NOT NULL,              -- JSON, read by team_plan.rs
        updated_at TEXT NOT NULL
    );
    CREATE TABLE team_leases (
        sample_id INTEGER NOT NULL REFERENCES samples(id),
        reviewer TEXT NOT NULL,
        until_ms INTEGER NOT NULL,       -- the database's clock, ms since 1970
        done INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
        PRIMARY KEY (sample_id, reviewer)
    );
    CREATE INDEX team_leases_by_reviewer ON team_leases (reviewer, done);
    "#,
];

const POSTGRES: &[&str] = &[
    // 1: samples, rounds, answers, judgments, scores.
    r#"
    CREATE TABLE sources (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        path TEXT COLLATE "C" NOT NULL,
        sha256 TEXT COLLATE "C" NOT NULL UNIQUE,
        format TEXT COLLATE "C" NOT NULL,
        records BIGINT NOT NULL,
        imported_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE image_dirs (
        rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,
        path TEXT COLLATE "C" PRIMARY KEY
    );
    CREATE TABLE samples (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        ext_id TEXT COLLATE "C" NOT NULL UNIQUE,
        image TEXT COLLATE "C",
        caption TEXT COLLATE "C" NOT NULL,
        mentions TEXT COLLATE "C" NOT NULL,
        fig_label TEXT COLLATE "C",
        domains TEXT COLLATE "C" NOT NULL,
        is_demo BIGINT NOT NULL DEFAULT 0,
        content_hash TEXT COLLATE "C" NOT NULL,
        source_id BIGINT REFERENCES sources(id)
    );
    CREATE TABLE rounds (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        position BIGINT NOT NULL,
        question TEXT COLLATE "C" NOT NULL,
        UNIQUE (sample_id, position)
    );
    CREATE TABLE answers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        round_id BIGINT NOT NULL REFERENCES rounds(id),
        position BIGINT NOT NULL,
        text TEXT COLLATE "C" NOT NULL,
        UNIQUE (round_id, position)
    );
    CREATE TABLE reviewers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        name TEXT COLLATE "C" NOT NULL UNIQUE,
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE judgments (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        reviewer_id BIGINT NOT NULL REFERENCES reviewers(id),
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        round_id BIGINT REFERENCES rounds(id),
        answer_id BIGINT REFERENCES answers(id),
        kind TEXT COLLATE "C" NOT NULL,
        value TEXT COLLATE "C",
        slot TEXT COLLATE "C" NOT NULL,
        shown_order TEXT COLLATE "C",
        undoes BIGINT REFERENCES judgments(id),
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX judgments_by_reviewer_slot ON judgments (reviewer_id, slot, id);
    CREATE INDEX judgments_by_sample ON judgments (sample_id);
    CREATE UNIQUE INDEX judgments_undone_once ON judgments (undoes) WHERE undoes IS NOT NULL;
    CREATE TABLE model_scores (
        answer_id BIGINT NOT NULL REFERENCES answers(id),
        judge TEXT COLLATE "C" NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (answer_id, judge)
    );
    CREATE TABLE image_urls (
        rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,
        key TEXT COLLATE "C" PRIMARY KEY,
        url TEXT COLLATE "C" NOT NULL,
        member TEXT COLLATE "C"
    );
    CREATE TABLE selector_runs (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        created_at TEXT COLLATE "C" NOT NULL,
        backend TEXT COLLATE "C" NOT NULL,
        config TEXT COLLATE "C" NOT NULL,
        metrics TEXT COLLATE "C",
        checkpoint TEXT COLLATE "C"
    );
    CREATE TABLE selector_scores (
        run_id BIGINT NOT NULL REFERENCES selector_runs(id),
        answer_id BIGINT NOT NULL REFERENCES answers(id),
        score DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, answer_id)
    );
    CREATE TABLE sample_scores (
        run_id BIGINT NOT NULL REFERENCES selector_runs(id),
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        score DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, sample_id)
    );
    CREATE VIEW effective_judgments AS
        SELECT j.* FROM judgments j
        WHERE j.kind <> 'undo'
          AND NOT EXISTS (SELECT 1 FROM judgments u WHERE u.undoes = j.id);
    CREATE VIEW current_judgments AS
        SELECT e.* FROM effective_judgments e
        WHERE e.id = (SELECT max(e2.id) FROM effective_judgments e2
                      WHERE e2.reviewer_id = e.reviewer_id AND e2.slot = e.slot);
    CREATE VIEW human_pairs AS
        WITH verdicts AS (
            SELECT reviewer_id, round_id, answer_id, kind FROM current_judgments
            WHERE kind IN ('accept', 'reject'))
        SELECT a.reviewer_id, a.round_id, a.answer_id AS winner, r.answer_id AS loser
        FROM verdicts a JOIN verdicts r
          ON a.reviewer_id = r.reviewer_id AND a.round_id = r.round_id
         AND a.kind = 'accept' AND r.kind = 'reject'
        UNION
        SELECT p.reviewer_id, p.round_id, CAST(p.value AS BIGINT), other.id
        FROM current_judgments p JOIN answers other
          ON other.round_id = p.round_id AND other.id <> CAST(p.value AS BIGINT)
        WHERE p.kind = 'prefer';
    "#,
    // 2: the LLM request ledger.
    r#"
    CREATE TABLE llm_requests (
        rowid BIGINT GENERATED BY DEFAULT AS IDENTITY,
        key TEXT COLLATE "C" PRIMARY KEY,
        task TEXT COLLATE "C" NOT NULL,
        subject TEXT COLLATE "C" NOT NULL,
        model TEXT COLLATE "C" NOT NULL,
        outcome TEXT COLLATE "C" NOT NULL,
        reason TEXT COLLATE "C",
        reply TEXT COLLATE "C" NOT NULL,
        prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL,
        created_at TEXT COLLATE "C" NOT NULL
    );
    CREATE INDEX llm_requests_by_outcome ON llm_requests (outcome, task);
    "#,
    // 3: the text embeddings cache.
    r#"
    CREATE TABLE text_embeddings (
        encoder TEXT COLLATE "C" NOT NULL,
        text_hash BYTEA NOT NULL,
        vector BYTEA NOT NULL,
        PRIMARY KEY (encoder, text_hash)
    );
    "#,
    // 4: figure statistics and the files they were read from.
    r#"
    CREATE TABLE figure_stats (
        content_sha256 BYTEA NOT NULL,
        version BIGINT NOT NULL,
        stats BYTEA,
        PRIMARY KEY (content_sha256, version)
    );
    CREATE TABLE figure_files (
        path TEXT COLLATE "C" PRIMARY KEY,
        size BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        content_sha256 BYTEA NOT NULL
    );
    "#,
    // 5: the decision ids, and row-level security on the decision log: a reviewer's role appends
    // events under its own name only, and undoes only its own events; nobody but the owner
    // updates or deletes one (no such grant exists; see `team.rs`).
    r#"
    ALTER TABLE judgments ADD COLUMN uid TEXT COLLATE "C";
    CREATE UNIQUE INDEX judgments_by_uid ON judgments (uid);
    ALTER TABLE judgments ENABLE ROW LEVEL SECURITY;
    CREATE POLICY judgments_read ON judgments FOR SELECT USING (true);
    CREATE POLICY judgments_append_own ON judgments FOR INSERT WITH CHECK (
        reviewer_id = (SELECT id FROM reviewers WHERE name = current_user::text)
        AND (undoes IS NULL OR EXISTS (
            SELECT 1 FROM judgments undone
            WHERE undone.id = undoes AND undone.reviewer_id = judgments.reviewer_id)));
    "#,
    // 6: scores of a run scored in shards, waiting for the run's last shard.
    r#"
    CREATE TABLE score_shards (
        run_id BIGINT NOT NULL REFERENCES selector_runs(id),
        shard_count BIGINT NOT NULL,
        shard_index BIGINT NOT NULL,
        answers BIGINT NOT NULL,
        finished_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (run_id, shard_count, shard_index)
    );
    CREATE TABLE shard_sample_scores (
        run_id BIGINT NOT NULL REFERENCES selector_runs(id),
        shard_count BIGINT NOT NULL,
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        score DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, shard_count, sample_id)
    );
    "#,
    // 7: the unused `human_pairs` view goes.
    r#"
    DROP VIEW human_pairs;
    "#,
    // 8: whether the figure was on the reviewer's screen when they decided.
    r#"
    ALTER TABLE judgments ADD COLUMN figure_shown BIGINT;
    "#,
    // 9: the server checks what a decision holds, not only whose it is: a reviewer's role can
    // write to the log directly (psql), so kinds, value shapes and lengths, the time's form, and
    // that the round and answer belong to the sample are enforced here; a reviewer inserts at
    // most 100 rows in one statement and 600 a minute. NOT VALID: rows already there are not
    // rechecked (the reads tolerate them).
    r#"
    ALTER TABLE judgments ADD CONSTRAINT judgments_shape CHECK (
        kind IN ('accept', 'reject', 'prefer', 'tie', 'rate', 'flag', 'note', 'demo', 'edit', 'reason', 'undo')
        AND (value IS NULL OR char_length(value) <= 100000)
        AND (kind <> 'prefer' OR value ~ '^[0-9]{1,18}$')
        AND (kind <> 'rate' OR value IN ('1', '2', '3', '4', '5'))
        AND (kind NOT IN ('flag', 'demo') OR value IS NULL OR value IN ('0', '1'))
        AND (kind NOT IN ('edit', 'reason') OR value IS NOT NULL)
        AND (figure_shown IS NULL OR figure_shown IN (0, 1))
        AND char_length(slot) <= 200
        AND (shown_order IS NULL OR char_length(shown_order) <= 10000)
        AND created_at ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}'
    ) NOT VALID;
    CREATE FUNCTION vital_judgment_fits() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.round_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM rounds WHERE id = NEW.round_id AND sample_id = NEW.sample_id) THEN
            RAISE EXCEPTION 'round % is not a round of sample %', NEW.round_id, NEW.sample_id
                USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.answer_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM answers WHERE id = NEW.answer_id AND round_id = NEW.round_id) THEN
            RAISE EXCEPTION 'answer % is not an answer of round %', NEW.answer_id, NEW.round_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER judgments_fit BEFORE INSERT ON judgments
        FOR EACH ROW EXECUTE FUNCTION vital_judgment_fits();
    CREATE INDEX judgments_by_reviewer_time ON judgments (reviewer_id, created_at);
    CREATE FUNCTION vital_judgments_bounded() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF pg_has_role(current_user,
                (SELECT relowner FROM pg_class WHERE oid = 'judgments'::regclass), 'MEMBER') THEN
            RETURN NULL;
        END IF;
        IF (SELECT count(*) FROM inserted) > 100 THEN
            RAISE EXCEPTION 'a reviewer records at most 100 decisions in one statement'
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        -- A person decides far less than this; a script looping over single inserts does not.
        IF (SELECT count(*) FROM judgments j
            WHERE j.reviewer_id IN (SELECT DISTINCT reviewer_id FROM inserted)
              AND j.created_at >= to_char(now() AT TIME ZONE 'UTC' - interval '1 minute',
                                          'YYYY-MM-DD"T"HH24:MI:SS')) > 600 THEN
            RAISE EXCEPTION 'a reviewer records at most 600 decisions a minute'
                USING ERRCODE = 'program_limit_exceeded';
        END IF;
        RETURN NULL;
    END $$;
    CREATE TRIGGER judgments_bounded AFTER INSERT ON judgments
        REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT
        EXECUTE FUNCTION vital_judgments_bounded();
    "#,
    // 11 (10 is `LLM_BATCHES_*`): the team plan and the reviewers' places on samples (see `team_plan.rs`): a reviewer's
    // role takes, renews and drops only places under its own name. And blind review: a
    // reviewer's role reads only its own decisions (verdicts, notes, reasons, edits); a curator
    // (who may write samples) reads all. The views read with the reader's rights, so the same
    // policy holds through them. The append policy's check that an undo undoes the reviewer's
    // own event reads the log through a function with the owner's rights (a policy on the log
    // that reads the log under the new read policy is refused as recursive).
    r#"
    CREATE TABLE team_plan (
        id BIGINT PRIMARY KEY CHECK (id = 1),
        plan TEXT COLLATE "C" NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE team_leases (
        sample_id BIGINT NOT NULL REFERENCES samples(id),
        reviewer TEXT COLLATE "C" NOT NULL,
        until_ms BIGINT NOT NULL,
        done BIGINT NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
        PRIMARY KEY (sample_id, reviewer)
    );
    CREATE INDEX team_leases_by_reviewer ON team_leases (reviewer, done);
    ALTER TABLE team_leases ENABLE ROW LEVEL SECURITY;
    CREATE POLICY team_leases_read ON team_leases FOR SELECT USING (true);
    CREATE POLICY team_leases_take_own ON team_leases FOR INSERT
        WITH CHECK (reviewer = current_user::text);
    CREATE POLICY team_leases_renew_own ON team_leases FOR UPDATE
        USING (reviewer = current_user::text) WITH CHECK (reviewer = current_user::text);
    CREATE POLICY team_leases_release_own ON team_leases FOR DELETE
        USING (reviewer = current_user::text);
    CREATE FUNCTION vital_undoes_own(target BIGINT, reviewer BIGINT) RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
        AS $$ SELECT EXISTS (SELECT 1 FROM judgments WHERE id = target AND reviewer_id = reviewer) $$;
    DROP POLICY judgments_append_own ON judgments;
    CREATE POLICY judgments_append_own ON judgments FOR INSERT WITH CHECK (
        reviewer_id = (SELECT id FROM reviewers WHERE name = current_user::text)
        AND (undoes IS NULL OR vital_undoes_own(undoes, reviewer_id)));
    DROP POLICY judgments_read ON judgments;
    CREATE POLICY judgments_read_own ON judgments FOR SELECT USING (
        has_table_privilege('samples', 'INSERT')
        OR reviewer_id = (SELECT id FROM reviewers WHERE name = current_user::text));
    DO $$ BEGIN
        IF current_setting('server_version_num')::int >= 150000 THEN
            EXECUTE 'ALTER VIEW effective_judgments SET (security_invoker = true)';
            EXECUTE 'ALTER VIEW current_judgments SET (security_invoker = true)';
        ELSE
            -- Before PostgreSQL 15 a view reads with its owner's rights: the same rule, spelled
            -- in the view (current_user stays the reader's inside a view).
            EXECUTE $v$CREATE OR REPLACE VIEW effective_judgments AS
                SELECT j.id, j.reviewer_id, j.sample_id, j.round_id, j.answer_id, j.kind, j.value,
                       j.slot, j.shown_order, j.undoes, j.created_at
                FROM judgments j
                WHERE j.kind <> 'undo'
                  AND NOT EXISTS (SELECT 1 FROM judgments u WHERE u.undoes = j.id)
                  AND (has_table_privilege('samples', 'INSERT')
                       OR j.reviewer_id = (SELECT id FROM reviewers WHERE name = current_user::text))$v$;
        END IF;
    END $$;
    "#,
];

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::db::{params, Dialect};
    use crate::store::test_support::{on_both_databases, TestDb, TestWorkspace};

    #[test]
    fn both_databases_have_every_migration() {
        assert_eq!(SQLITE.len(), POSTGRES.len());
        assert_eq!(MIGRATIONS.len(), SQLITE.len() + 4);
    }

    fn the_unused_human_pairs_view_is_gone(db: TestDb) {
        let ws = TestWorkspace::new(db);
        let sql = match ws.db.dialect() {
            Dialect::Sqlite => "SELECT count(*) FROM sqlite_master WHERE name = 'human_pairs'",
            Dialect::Postgres => "SELECT count(*) FROM pg_views WHERE viewname = 'human_pairs'",
        };
        let views: i64 = ws.db.query_value(sql, params![]).unwrap();
        assert_eq!(views, 0);
    }

    on_both_databases!(the_unused_human_pairs_view_is_gone);
}
