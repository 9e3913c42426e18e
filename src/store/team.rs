//! Who may do what on a team server. Curators own the workspace (they created it, or hold the
//! same rights) and do everything. Each reviewer logs in as a database role of their own, made
//! by `vital store add-reviewer`: a member of this database's reviewer group, which may read
//! the tables, append decision events and take or let go of its own places on samples
//! (`team_leases`), and nothing else. Row-level security on the decision log holds each reviewer
//! to events under their own name, undoing only their own (migration 5), and to reading only
//! their own (blind review, migration 11); no UPDATE or DELETE of an event is ever granted. The database enforces all of it: vital's own checks only
//! give clearer messages first.

use super::db::{params, Dialect};
use super::Workspace;

/// A reviewer role just made, with its generated password (shown once, stored nowhere).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NewReviewer {
    pub role: String,
    pub password: String,
}

/// Names vital gives a meaning of its own in the decision log.
const RESERVED: &[&str] = &["final", "imported", "public", "postgres"];

impl Workspace {
    /// The database role this connection logs in as (None for a directory workspace).
    pub fn role(&self) -> anyhow::Result<Option<String>> {
        match self.db.dialect() {
            Dialect::Sqlite => Ok(None),
            Dialect::Postgres => Ok(Some(
                self.db
                    .query_value("SELECT current_user::text", params![])?,
            )),
        }
    }

    /// Whether this connection may change the workspace beyond appending its own decisions
    /// (import, train, score, adjudicate): always on a directory; on a server, a curator's role.
    pub fn is_curator(&self) -> anyhow::Result<bool> {
        match self.db.dialect() {
            Dialect::Sqlite => Ok(true),
            Dialect::Postgres => self
                .db
                .query_value("SELECT has_table_privilege('samples', 'INSERT')", params![]),
        }
    }

    /// Refuses, with a message saying why, when this connection is a reviewer's.
    pub fn ensure_curator(&self, doing: &str) -> anyhow::Result<()> {
        if self.is_curator()? {
            return Ok(());
        }
        let role = self.role()?.unwrap_or_default();
        anyhow::bail!(
            "{doing} needs a curator's role on {}; `{role}` is a reviewer, who reads and records their own decisions only (blind review)",
            self.describe()
        )
    }

    /// Makes reviewer `name`: a login role with a generated password, a member of this
    /// database's reviewer group, and a reviewer row, in one transaction. A curator's command
    /// (it needs CREATEROLE on the server).
    pub fn add_reviewer(&self, name: &str) -> anyhow::Result<NewReviewer> {
        anyhow::ensure!(
            self.db.dialect() == Dialect::Postgres,
            "reviewer roles belong to a team server: a directory workspace records any --reviewer name"
        );
        let name = name.trim();
        anyhow::ensure!(
            is_role_name(name),
            "`{name}` is not a reviewer name: use 1-63 lower-case letters, digits and _, starting with a letter"
        );
        anyhow::ensure!(
            !RESERVED.contains(&name) && !name.starts_with("pg_") && !name.starts_with("vital_"),
            "`{name}` is a reserved name"
        );
        self.ensure_curator("adding a reviewer")?;
        // `current_user`, `all`, `none`, `select`…: SQL keywords and role specifiers mean
        // something else in a GRANT or a policy, whatever the quoting elsewhere.
        let keyword: bool = self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_get_keywords() WHERE word = ?1)",
            params![name],
        )?;
        anyhow::ensure!(
            !keyword,
            "`{name}` is an SQL keyword (a role named so would be read as something else): pick another reviewer name"
        );
        let exists: bool = self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?1)",
            params![name],
        )?;
        anyhow::ensure!(
            !exists,
            "a role named `{name}` exists already on the server"
        );
        let password = generate_password()?;
        // Hashed here: the server (and its statement log) never sees the plain text.
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let tx = self.db.begin_write()?;
        let group = self.ensure_reviewer_group()?;
        // The statement holds the password's verifier: an error names the server's reason only.
        tx.execute_batch(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}",
            quote_ident(name),
            quote_literal(&verifier),
            quote_ident(&group)
        ))
        .map_err(|e| {
            let reason = e
                .chain()
                .find_map(|c| c.downcast_ref::<postgres::Error>())
                .and_then(|pg| pg.as_db_error())
                .map_or_else(|| "refused".to_string(), |db| db.message().to_string());
            anyhow::anyhow!("the server did not create reviewer `{name}`: {reason}")
        })?;
        tx.execute(
            &format!(
                "INSERT INTO reviewers (name, created_at) VALUES (?1, {}) ON CONFLICT (name) DO NOTHING",
                super::NOW
            ),
            params![name],
        )?;
        tx.commit()?;
        Ok(NewReviewer {
            role: name.to_string(),
            password,
        })
    }

    /// This database's reviewer group, made if needed, with its rights granted afresh (tables
    /// added by a later migration included).
    fn ensure_reviewer_group(&self) -> anyhow::Result<String> {
        let group = self.reviewer_group()?;
        let exists: bool = self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?1)",
            params![group],
        )?;
        if !exists {
            self.db
                .execute_batch(&format!("CREATE ROLE {} NOLOGIN", quote_ident(&group)))?;
        }
        self.grant_reviewer_rights(&group)?;
        self.leave_legacy_group(&group)?;
        Ok(group)
    }

    /// Moves this database's reviewers from the name-derived group (which another database may
    /// share) to this database's own, and takes the old group's rights on this database away.
    fn leave_legacy_group(&self, group: &str) -> anyhow::Result<()> {
        let legacy = self.legacy_reviewer_group()?;
        let exists: bool = self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?1)",
            params![legacy],
        )?;
        if !exists {
            return Ok(());
        }
        // This database's reviewers (their roles are named as their reviewer rows).
        let members: Vec<String> = self.db.query_vec(
            "SELECT m.rolname::text FROM pg_auth_members am
             JOIN pg_roles g ON g.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
             WHERE g.rolname = ?1 AND m.rolname IN (SELECT name FROM reviewers)",
            params![legacy],
            |r| r.get(0),
        )?;
        for member in members {
            self.db.execute_batch(&format!(
                "GRANT {} TO {}",
                quote_ident(group),
                quote_ident(&member)
            ))?;
        }
        let db: String = self
            .db
            .query_value("SELECT current_database()::text", params![])?;
        let legacy = quote_ident(&legacy);
        self.db.execute_batch(&format!(
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {legacy};
             REVOKE USAGE ON SCHEMA public FROM {legacy};
             REVOKE CONNECT ON DATABASE {db} FROM {legacy};",
            db = quote_ident(&db),
        ))?;
        Ok(())
    }

    /// The name of this database's reviewer group role: by the database's OID, unique on the
    /// server. (Named from the database's name, cut and folded, `…_north_a` and `…_north-b` or
    /// `vital-x` and `vital_x` shared one group, and a reviewer of one read the other.)
    fn reviewer_group(&self) -> anyhow::Result<String> {
        let oid: i64 = self.db.query_value(
            "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
            params![],
        )?;
        Ok(format!("vital_reviewers_db{oid}"))
    }

    /// The group name of vital before groups were named by OID (see [`Self::reviewer_group`]).
    fn legacy_reviewer_group(&self) -> anyhow::Result<String> {
        let db: String = self
            .db
            .query_value("SELECT current_database()::text", params![])?;
        let cleaned: String = db
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        Ok(format!("vital_reviewers_{cleaned}"))
    }

    fn grant_reviewer_rights(&self, group: &str) -> anyhow::Result<()> {
        let db: String = self
            .db
            .query_value("SELECT current_database()::text", params![])?;
        let group = quote_ident(group);
        self.db.execute_batch(&format!(
            "GRANT CONNECT ON DATABASE {db} TO {group};
             GRANT USAGE ON SCHEMA public TO {group};
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {group};
             GRANT INSERT ON judgments TO {group};
             GRANT INSERT, UPDATE, DELETE ON team_leases TO {group};",
            db = quote_ident(&db),
        ))
    }

    /// After a migration on a server: the reviewer group (if there is one yet) may read the new
    /// tables too.
    pub(super) fn refresh_reviewer_rights(&self) -> anyhow::Result<()> {
        if self.db.dialect() != Dialect::Postgres || !self.is_curator()? {
            return Ok(());
        }
        let group = self.reviewer_group()?;
        let exists: bool = self.db.query_value(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?1)",
            params![group],
        )?;
        if exists {
            self.grant_reviewer_rights(&group)?;
            self.leave_legacy_group(&group)?;
        } else {
            // A server from before groups were named by OID: its reviewers move on the first
            // curator's connection after the upgrade.
            let legacy_exists: bool = self.db.query_value(
                "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ?1)",
                params![self.legacy_reviewer_group()?],
            )?;
            if legacy_exists {
                self.ensure_reviewer_group()?;
            }
        }
        Ok(())
    }
}

fn is_role_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 63
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// 24 random bytes from the OS, hex: 192 bits, nothing to escape anywhere.
fn generate_password() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for a password: {e}"))?;
    Ok(hex::encode(bytes))
}

/// An SQL identifier, quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// An SQL string literal, quoted.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviewer_names_are_plain_identifiers() {
        assert!(is_role_name("dr_lee"));
        assert!(is_role_name("a1"));
        assert!(!is_role_name("Dr_Lee"));
        assert!(!is_role_name("1a"));
        assert!(!is_role_name("a; DROP TABLE samples"));
        assert!(!is_role_name(""));
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    /// Each refusal is the database's own: a direct connection as the reviewer's role, not
    /// vital's code, tries what a reviewer must not do, and nothing changes.
    #[test]
    fn a_reviewer_role_may_append_its_own_decisions_and_nothing_else() {
        use crate::store::test_support::{test_server, ServerDatabase};
        use crate::store::ServerUrl;
        let Some(admin) = test_server() else {
            return;
        };
        let server = ServerDatabase::create(&admin);
        let files = tempfile::tempdir().unwrap();
        let ws = Workspace::open_server_with_files(
            ServerUrl::parse(&server.url).unwrap(),
            false,
            files.path().to_path_buf(),
        )
        .unwrap();
        let key = crate::store::test_support::insert(
            &ws,
            &crate::data::Sample {
                id: "s".into(),
                rounds: vec![
                    crate::data::Round {
                        question: "q".into(),
                        answers: vec!["a1".into(), "a2".into()],
                    },
                    crate::data::Round {
                        question: "q2".into(),
                        answers: vec!["b1".into()],
                    },
                ],
                ..Default::default()
            },
        );
        let stored = ws.load_sample(key).unwrap().unwrap();
        let answer = stored.answer_ids[0][0];
        let suffix = std::process::id();
        let (ana, ben) = (format!("ana_{suffix}"), format!("ben_{suffix}"));
        let reviewer = ws.add_reviewer(&ana).unwrap();
        ws.add_reviewer(&ben).unwrap();
        assert!(ws.add_reviewer(&ana).is_err(), "a role is made once");
        assert!(ws.add_reviewer("final").is_err());
        // Ben's event, recorded by the curator's connection under Ben's name.
        let ben_event = ws
            .record(
                &ben,
                &crate::store::NewDecision {
                    sample_key: key,
                    round_id: Some(stored.round_ids[0]),
                    answer_id: Some(answer),
                    kind: crate::store::DecisionKind::Reject,
                    value: None,
                    shown_order: None,
                    figure_shown: None,
                },
            )
            .unwrap();

        let mut config: postgres::Config = server
            .url
            .replace("vital_ci@", &format!("{ana}@"))
            .parse()
            .unwrap();
        config.password(&reviewer.password);
        let mut direct = config.connect(postgres::NoTls).unwrap();
        let id_of = |client: &mut postgres::Client, name: &str| -> i64 {
            client
                .query_one("SELECT id FROM reviewers WHERE name = $1", &[&name])
                .unwrap()
                .get(0)
        };
        let (ana_id, ben_id) = (id_of(&mut direct, &ana), id_of(&mut direct, &ben));
        let count = |client: &mut postgres::Client| -> i64 {
            client
                .query_one("SELECT count(*) FROM judgments", &[])
                .unwrap()
                .get(0)
        };
        assert_eq!(
            count(&mut direct),
            0,
            "a reviewer reads no other reviewer's event (blind review)"
        );
        let insert = "INSERT INTO judgments (reviewer_id, sample_id, round_id, answer_id, kind, slot, undoes, created_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, '2026-12-07T10:00:00.000Z')";
        let round = Some(stored.round_ids[0]);
        let slot = format!("verdict:{answer}");
        let refused = |result: Result<u64, postgres::Error>, what: &str| {
            let err = result.expect_err(what);
            assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{what}: {err}");
        };
        refused(
            direct.execute(
                insert,
                &[
                    &ben_id,
                    &key,
                    &round,
                    &answer,
                    &"accept",
                    &slot,
                    &None::<i64>,
                ],
            ),
            "inserting under another reviewer's name",
        );
        refused(
            direct.execute(
                insert,
                &[
                    &ana_id,
                    &key,
                    &None::<i64>,
                    &None::<i64>,
                    &"undo",
                    &"undo",
                    &Some(ben_event),
                ],
            ),
            "undoing another reviewer's event",
        );
        refused(
            direct.execute("DELETE FROM judgments WHERE id = $1", &[&ben_event]),
            "deleting an event",
        );
        refused(
            direct.execute(
                "UPDATE judgments SET kind = 'accept' WHERE id = $1",
                &[&ben_event],
            ),
            "updating an event",
        );
        refused(
            direct.execute(
                "UPDATE samples SET caption = 'changed' WHERE id = $1",
                &[&key],
            ),
            "updating a sample",
        );
        refused(
            direct.execute("INSERT INTO model_scores (answer_id, judge, score, created_at) VALUES ($1, 'me', 10, 'now')", &[&answer]),
            "writing a score",
        );
        refused(
            direct.execute(
                "INSERT INTO reviewers (name, created_at) VALUES ('mallory', 'now')",
                &[],
            ),
            "adding a reviewer row",
        );
        assert_eq!(count(&mut direct), 0, "nothing changed");
        assert_eq!(ws.load_sample(key).unwrap().unwrap().sample.caption, "");
        // What a reviewer may do: append under their own name.
        direct
            .execute(
                insert,
                &[
                    &ana_id,
                    &key,
                    &round,
                    &answer,
                    &"accept",
                    &slot,
                    &None::<i64>,
                ],
            )
            .unwrap();
        assert_eq!(count(&mut direct), 1, "her own event");
        // …and only decisions that hold what a decision holds (issue 34: one hand-made row broke
        // stats and every export for everyone).
        let shaped = "INSERT INTO judgments (reviewer_id, sample_id, round_id, answer_id, kind, value, slot, created_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
        let time = "2026-12-07T10:00:00.000Z";
        let bad = |client: &mut postgres::Client,
                   params: &[&(dyn postgres::types::ToSql + Sync)],
                   what: &str| {
            let err = client.execute(shaped, params).expect_err(what);
            let code = err.code().map(|c| c.code().to_string());
            assert_eq!(code.as_deref(), Some("23514"), "{what}: {err}");
        };
        let none = None::<i64>;
        let huge = "x".repeat(200_000);
        bad(
            &mut direct,
            &[
                &ana_id, &key, &round, &none, &"prefer", &"abc", &"round", &time,
            ],
            "a preference that names no answer",
        );
        bad(
            &mut direct,
            &[&ana_id, &key, &round, &none, &"rate", &"9", &"rate", &time],
            "a rating of 9",
        );
        bad(
            &mut direct,
            &[
                &ana_id,
                &key,
                &round,
                &answer,
                &"edit",
                &huge.as_str(),
                &"edit",
                &time,
            ],
            "an edit past the cap",
        );
        bad(
            &mut direct,
            &[
                &ana_id,
                &key,
                &round,
                &answer,
                &"shrug",
                &none.map(|_| ""),
                &"x",
                &time,
            ],
            "an unknown kind",
        );
        bad(
            &mut direct,
            &[
                &ana_id,
                &key,
                &round,
                &answer,
                &"accept",
                &none.map(|_| ""),
                &slot,
                &"yesterday",
            ],
            "a time in another form",
        );
        let other_answer = stored.answer_ids[1][0];
        bad(
            &mut direct,
            &[
                &ana_id,
                &key,
                &round,
                &other_answer,
                &"accept",
                &none.map(|_| ""),
                &slot,
                &time,
            ],
            "an answer of another round",
        );
        let many = direct
            .execute(
                "INSERT INTO judgments (reviewer_id, sample_id, kind, slot, created_at)
                 SELECT $1, $2, 'flag', 'flag', '2026-12-07T10:00:00.000Z' FROM generate_series(1, 1000)",
                &[&ana_id, &key],
            )
            .expect_err("a thousand decisions in one statement");
        assert_eq!(many.code().map(|c| c.code()), Some("54000"), "{many}");
        assert_eq!(count(&mut direct), 1, "none of them stored");
        // One at a time, as a script would: stopped past 600 in a minute.
        let one = "INSERT INTO judgments (reviewer_id, sample_id, kind, slot, created_at)
                   VALUES ($1, $2, 'flag', 'flag', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'))";
        let mut stopped = None;
        for i in 0..700 {
            if let Err(e) = direct.execute(one, &[&ana_id, &key]) {
                stopped = Some((i, e));
                break;
            }
        }
        let (at, err) = stopped.expect("a script's loop is stopped");
        assert_eq!(err.code().map(|c| c.code()), Some("54000"), "{err}");
        assert!((590..=601).contains(&at), "stopped after {at}");
        drop(direct);
        drop(ws);
        drop(server);
        let mut admin_client = ServerUrl::parse(&admin).unwrap().connect().unwrap();
        for role in [ana.as_str(), ben.as_str()] {
            admin_client
                .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
                .unwrap();
        }
    }

    #[test]
    fn passwords_are_long_and_differ() {
        let (a, b) = (generate_password().unwrap(), generate_password().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
    }
}
