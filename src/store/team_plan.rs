//! The team's plan and the leases that spread samples over reviewers.
//!
//! The plan (one row, set by a curator) says how many reviewers a sample gets (K on P% of the
//! samples, one on the rest), which domains each reviewer is routed to, how many samples each
//! may take at most, how long a lease lasts and the order samples are served in. Which samples
//! get K is decided by a hash of the sample's key, so every process on the workspace agrees
//! without asking anyone; a changed plan applies at once to every sample not yet complete.
//!
//! A lease row (`team_leases`: sample, reviewer, until, done) is a place on a sample: held while
//! `until` is in the future, kept for good once the reviewer has decided every answered round
//! (`done`). A sample may be served to a reviewer while the others' live and done places are
//! fewer than its planned reviewers. Taking a place is one `INSERT … SELECT` that checks and
//! takes together, run under the workspace's writer lock (`BEGIN IMMEDIATE` on SQLite, a
//! transaction-level advisory lock on PostgreSQL taken before the statement, so the statement's
//! snapshot sees every place taken before it): two reviewers never take the same last place.
//! On PostgreSQL, row-level security lets a reviewer's role insert, renew and drop only rows
//! under its own name (migration 11). Times are the database's clock, in milliseconds.

use std::collections::BTreeMap;

use anyhow::Context;

use super::db::{params, Db, Dialect};
use super::Workspace;

/// Serialises lease-taking on a server (any fixed number, other than the migration lock's).
const LEASE_LOCK: i64 = 0x0076_6974_6c73;

/// The order a plan serves samples in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanOrder {
    /// Import order.
    #[default]
    File,
    /// A fixed shuffle by a hash of the sample's key (the same in every process).
    Random,
    /// The review screen's uncertainty order (closest selector scores first); served without
    /// the screen (`vital team work`), the latest run's sample scores lowest first.
    Uncertainty,
}

impl PlanOrder {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        match text {
            "file" => Ok(Self::File),
            "random" => Ok(Self::Random),
            "uncertainty" => Ok(Self::Uncertainty),
            other => anyhow::bail!("`{other}` is not an order: use file, random or uncertainty"),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Random => "random",
            Self::Uncertainty => "uncertainty",
        }
    }
}

/// How the curator wants the work spread.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TeamPlan {
    /// Reviewers on each overlapping sample (K ≥ 1).
    pub per_sample: u32,
    /// Share of samples that get `per_sample` reviewers, in hundredths of a percent (0-10000);
    /// the rest get one.
    pub overlap_basis_points: u32,
    /// Reviewer → the domains they are served (a reviewer without a route is served any).
    pub routes: BTreeMap<String, Vec<String>>,
    /// Reviewer → the most samples they finish.
    pub caps: BTreeMap<String, u64>,
    /// A place not decided on within this many seconds is free again (`--lease-minutes`).
    pub lease_seconds: u32,
    pub order: PlanOrder,
    /// A gold sample after every this many other samples a reviewer finishes (0: no gold
    /// checks; `--gold-every`). Plans stored before gold checks read as 0.
    #[serde(default)]
    pub gold_every: u32,
    /// Gold samples every reviewer finishes before any other (`--onboarding`).
    #[serde(default)]
    pub onboarding: u32,
    /// Reviewers added to a sample whose planned reviewers contradict each other on an answer
    /// (no final decision yet), before it goes to adjudication (`--extra-when-split`; 0: none).
    #[serde(default)]
    pub extra_when_split: u32,
}

impl Default for TeamPlan {
    fn default() -> Self {
        Self {
            per_sample: 1,
            overlap_basis_points: 0,
            routes: BTreeMap::new(),
            caps: BTreeMap::new(),
            lease_seconds: DEFAULT_LEASE_MINUTES * 60,
            order: PlanOrder::File,
            gold_every: 0,
            onboarding: 0,
            extra_when_split: 0,
        }
    }
}

pub const DEFAULT_LEASE_MINUTES: u32 = 30;

/// The most reviewers a plan may ask for on one sample.
pub const MAX_PER_SAMPLE: u32 = 50;

/// The largest `--gold-every` and `--onboarding`.
pub const MAX_GOLD_SETTING: u32 = 100_000;

impl TeamPlan {
    /// Refuses what cannot be served.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (1..=MAX_PER_SAMPLE).contains(&self.per_sample),
            "--per-sample must be 1 to {MAX_PER_SAMPLE}, not {}",
            self.per_sample
        );
        anyhow::ensure!(
            self.overlap_basis_points <= 10_000,
            "--overlap must be 0% to 100%"
        );
        anyhow::ensure!(
            (1..=7 * 24 * 3600).contains(&self.lease_seconds),
            "--lease-minutes must be a second to a week (10080), not {} seconds",
            self.lease_seconds
        );
        anyhow::ensure!(
            self.extra_when_split <= MAX_PER_SAMPLE,
            "--extra-when-split must be 0 to {MAX_PER_SAMPLE}, not {}",
            self.extra_when_split
        );
        anyhow::ensure!(
            self.gold_every <= MAX_GOLD_SETTING && self.onboarding <= MAX_GOLD_SETTING,
            "--gold-every and --onboarding must be 0 to {MAX_GOLD_SETTING}"
        );
        for (reviewer, domains) in &self.routes {
            anyhow::ensure!(!reviewer.trim().is_empty(), "a --route names no reviewer");
            anyhow::ensure!(
                !domains.is_empty() && domains.iter().all(|d| !d.trim().is_empty()),
                "--route {reviewer}=… names no domain"
            );
        }
        Ok(())
    }

    /// How many reviewers sample `key` is planned for.
    pub fn reviewers_for(&self, key: i64) -> u32 {
        if overlap_bucket(key) < i64::from(self.overlap_basis_points) {
            self.per_sample
        } else {
            1
        }
    }

    /// The lease length in milliseconds.
    fn lease_ms(&self) -> i64 {
        i64::from(self.lease_seconds) * 1000
    }
}

/// Sample `key`'s place in 0..10000, by a multiplicative hash of the key: spread evenly, the
/// same in every process. [`OVERLAP_BUCKET_SQL`] computes the same in both databases (keys stay
/// far below 2^33, so the product fits in 64 bits).
pub fn overlap_bucket(key: i64) -> i64 {
    (key.wrapping_mul(2_654_435_761).rem_euclid(4_294_967_296)) * 10_000 / 4_294_967_296
}

const OVERLAP_BUCKET_SQL: &str = "((((s.id * 2654435761) % 4294967296) * 10000) / 4294967296)";

/// What a reviewer's screen is told about one sample it asked to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// The place is this reviewer's until the lease lapses.
    Taken,
    /// The reviewer finished this sample already (it stays theirs to look at and undo).
    Done,
    /// Every planned place is taken or done by others, the sample is not routed to this
    /// reviewer, it has nothing to decide, or the reviewer reached their cap.
    NotServed,
    /// A gold check is due, or a split sample waits for an extra reviewer: the reviewer's place
    /// is taken on this other sample, to be shown in place of the one asked for (which stays
    /// for later). Nothing on the screen tells it from any other sample.
    Instead(i64),
}

/// One reviewer's places, as `vital team status` reports them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReviewerPlaces {
    pub reviewer: String,
    pub done: i64,
    pub leased: i64,
}

impl Workspace {
    /// The plan in force (None: no plan; every reviewer is served every sample, as without a
    /// team).
    pub fn team_plan(&self) -> anyhow::Result<Option<TeamPlan>> {
        read_plan(&self.db)
    }

    /// Stores `plan` (a curator's command); in force for every sample not yet complete.
    pub fn set_team_plan(&self, plan: &TeamPlan) -> anyhow::Result<()> {
        plan.check()?;
        self.ensure_curator("setting the team plan")?;
        let json = serde_json::to_string(plan)?;
        let tx = self.db.begin_write()?;
        tx.execute("DELETE FROM team_plan", params![])?;
        tx.execute(
            &format!(
                "INSERT INTO team_plan (id, plan, updated_at) VALUES (1, ?1, {})",
                super::NOW
            ),
            params![json],
        )?;
        tx.commit()
    }

    /// Removes the plan (a curator's command): every reviewer is served every sample again.
    /// Finished places stay (they record who finished what); held ones are let go.
    pub fn clear_team_plan(&self) -> anyhow::Result<()> {
        self.ensure_curator("removing the team plan")?;
        let tx = self.db.begin_write()?;
        tx.execute("DELETE FROM team_plan", params![])?;
        tx.execute("DELETE FROM team_leases WHERE done = 0", params![])?;
        tx.commit()
    }

    /// Takes (or renews) `reviewer`'s place on sample `key` when the plan serves it to them, and
    /// then lets go of their other unfinished places (moving on frees what was left; a refusal
    /// keeps them).
    pub fn take_lease(&self, reviewer: &str, key: i64) -> anyhow::Result<Lease> {
        let Some(plan) = self.team_plan()? else {
            return Ok(Lease::Taken);
        };
        let _unsynced = PlacesOnly::start(&self.db)?;
        let tx = self.db.begin_write()?;
        lock_leases(&tx)?;
        let done: bool = tx.query_value(
            "SELECT EXISTS (SELECT 1 FROM team_leases WHERE sample_id = ?1 AND reviewer = ?2 AND done = 1)",
            params![key, reviewer],
        )?;
        let gold = if done {
            None
        } else {
            super::team_gold::gold_due(&tx, &plan, reviewer)?
        };
        let outcome = if done {
            Lease::Done
        } else if let Some(gold) = gold {
            take_gold_place(&tx, &plan, reviewer, gold)?;
            if gold == key {
                Lease::Taken
            } else {
                Lease::Instead(gold)
            }
        } else if capped(&tx, &plan, reviewer)? {
            Lease::NotServed
        } else if let Some(split) = claim_split(&tx, &plan, reviewer)? {
            if split == key {
                Lease::Taken
            } else {
                Lease::Instead(split)
            }
        } else {
            let now = now_ms(&tx)?;
            let sql = claim_sql(tx.dialect(), &plan, Only::This);
            let (route, _) = route_of(&plan, reviewer);
            let (k, overlap) = (plan.per_sample, plan.overlap_basis_points);
            let extra = plan.extra_when_split;
            let until = now + plan.lease_ms();
            let taken = tx.query_opt(
                &sql,
                params![reviewer, now, k, overlap, route, extra, until, key],
                |r| r.get::<i64>(0),
            )?;
            if taken.is_some() {
                Lease::Taken
            } else {
                Lease::NotServed
            }
        };
        let on_to = match outcome {
            Lease::NotServed => None,
            Lease::Instead(other) => Some(other),
            Lease::Taken | Lease::Done => Some(key),
        };
        if let Some(on_to) = on_to {
            // On to this sample: the places left behind are free.
            tx.execute(
                "DELETE FROM team_leases WHERE reviewer = ?1 AND done = 0 AND sample_id <> ?2",
                params![reviewer, on_to],
            )?;
        }
        tx.commit()?;
        Ok(outcome)
    }

    /// Takes the next sample the plan serves `reviewer`, in the plan's order, letting go of
    /// their other unfinished places: None when nothing is left for them. `after`: the key the
    /// reviewer was served last; in file order the search starts after it (an index range, so
    /// the finished samples behind are not walked again), and starts over from the first
    /// sample when nothing is left after it (a lapsed place behind is served then).
    pub fn claim_next(&self, reviewer: &str, after: Option<i64>) -> anyhow::Result<Option<i64>> {
        Ok(self
            .claim_next_or_check(reviewer, after)?
            .map(|(key, _)| key))
    }

    /// [`Self::claim_next`], saying whether the sample taken was served out of order (a gold
    /// check due, or a split sample waiting for an extra reviewer): a caller keeps its `after`
    /// where it was, so the samples between are not skipped.
    pub fn claim_next_or_check(
        &self,
        reviewer: &str,
        after: Option<i64>,
    ) -> anyhow::Result<Option<(i64, bool)>> {
        let plan = self.team_plan()?.unwrap_or_default();
        let _unsynced = PlacesOnly::start(&self.db)?;
        let tx = self.db.begin_write()?;
        lock_leases(&tx)?;
        tx.execute(
            "DELETE FROM team_leases WHERE reviewer = ?1 AND done = 0",
            params![reviewer],
        )?;
        let gold = super::team_gold::gold_due(&tx, &plan, reviewer)?;
        let taken = if let Some(gold) = gold {
            take_gold_place(&tx, &plan, reviewer, gold)?;
            Some((gold, true))
        } else if capped(&tx, &plan, reviewer)? {
            None
        } else {
            let now = now_ms(&tx)?;
            let (route, _) = route_of(&plan, reviewer);
            let (k, overlap) = (plan.per_sample, plan.overlap_basis_points);
            let extra = plan.extra_when_split;
            let until = now + plan.lease_ms();
            // A split sample waiting for an extra reviewer first (served out of order), then
            // on from where the reviewer was, then from the start.
            if let Some(split) = claim_split(&tx, &plan, reviewer)? {
                tx.commit()?;
                return Ok(Some((split, true)));
            }
            let ahead = match after.filter(|_| plan.order == PlanOrder::File) {
                Some(after) => tx.query_opt(
                    &claim_sql(tx.dialect(), &plan, Only::After),
                    params![reviewer, now, k, overlap, route, extra, until, after],
                    |r| r.get::<i64>(0),
                )?,
                None => None,
            };
            match ahead {
                Some(key) => Some(key),
                None => tx.query_opt(
                    &claim_sql(tx.dialect(), &plan, Only::Any),
                    params![reviewer, now, k, overlap, route, extra, until],
                    |r| r.get::<i64>(0),
                )?,
            }
            .map(|key| (key, false))
        };
        tx.commit()?;
        Ok(taken)
    }

    /// After `reviewer` decided on sample `key`: their place is kept for good once every
    /// answered round has their decision, else renewed for another lease (and a sample an undo
    /// made unfinished again is theirs for another lease, not done).
    pub fn settle_lease(&self, reviewer: &str, key: i64) -> anyhow::Result<()> {
        let Some(plan) = self.team_plan()? else {
            return Ok(());
        };
        let finished = self.finished_by(reviewer, key)?;
        let tx = self.db.begin_write()?;
        lock_leases(&tx)?;
        let until = now_ms(&tx)? + plan.lease_ms();
        tx.execute(
            "INSERT INTO team_leases (sample_id, reviewer, until_ms, done) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (sample_id, reviewer) DO UPDATE SET until_ms = excluded.until_ms, done = excluded.done",
            params![key, reviewer, until, i64::from(finished)],
        )?;
        tx.commit()
    }

    /// Lets go of every unfinished place of `reviewer` (their screen closed).
    pub fn release_leases(&self, reviewer: &str) -> anyhow::Result<()> {
        self.db.execute(
            "DELETE FROM team_leases WHERE reviewer = ?1 AND done = 0",
            params![reviewer],
        )?;
        Ok(())
    }

    /// Samples the plan would serve `reviewer` now (none taken), in key order: the review
    /// screen's queue under a plan.
    pub fn servable_keys(&self, reviewer: &str) -> anyhow::Result<Vec<i64>> {
        let Some(plan) = self.team_plan()? else {
            anyhow::bail!("no team plan is set");
        };
        if capped(&self.db, &plan, reviewer)? {
            return Ok(Vec::new());
        }
        let now = now_ms(&self.db)?;
        let sql = format!(
            "SELECT s.id FROM samples s WHERE {} ORDER BY s.id",
            eligible_sql(self.db.dialect(), &plan)
        );
        let (route, _) = route_of(&plan, reviewer);
        self.db.query_vec(
            &sql,
            params![
                reviewer,
                now,
                plan.per_sample,
                plan.overlap_basis_points,
                route,
                plan.extra_when_split
            ],
            |r| r.get(0),
        )
    }

    /// Whether `reviewer` decided every answered round of sample `key` (a verdict on each
    /// answer, or a preference or tie): what makes their place done.
    pub fn finished_by(&self, reviewer: &str, key: i64) -> anyhow::Result<bool> {
        let Some(id) = super::decisions::find_reviewer(&self.db, reviewer)? else {
            return Ok(false);
        };
        self.db.query_value(
            "WITH answered AS (
                 SELECT r.id, count(a.id) AS n FROM rounds r JOIN answers a ON a.round_id = r.id
                 WHERE r.sample_id = ?2 GROUP BY r.id),
             mine AS (
                 SELECT round_id, kind FROM current_judgments
                 WHERE reviewer_id = ?1 AND sample_id = ?2 AND kind IN ('accept', 'reject', 'prefer', 'tie')),
             verdicts AS (SELECT round_id, count(*) AS v FROM mine WHERE kind IN ('accept', 'reject') GROUP BY round_id),
             preferences AS (SELECT DISTINCT round_id FROM mine WHERE kind IN ('prefer', 'tie'))
             SELECT count(*) > 0 AND sum(CASE WHEN coalesce(verdicts.v, 0) >= answered.n OR preferences.round_id IS NOT NULL THEN 1 ELSE 0 END) = count(*)
             FROM answered
             LEFT JOIN verdicts ON verdicts.round_id = answered.id
             LEFT JOIN preferences ON preferences.round_id = answered.id",
            params![id, key],
        )
    }

    /// Every reviewer's finished and live places, by name.
    pub fn places_by_reviewer(&self) -> anyhow::Result<Vec<ReviewerPlaces>> {
        let now = now_ms(&self.db)?;
        self.db.query_vec(
            "SELECT reviewer, CAST(sum(CASE WHEN done = 1 THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(sum(CASE WHEN done = 0 AND until_ms > ?1 THEN 1 ELSE 0 END) AS BIGINT)
             FROM team_leases GROUP BY reviewer ORDER BY reviewer",
            params![now],
            |r| {
                Ok(ReviewerPlaces {
                    reviewer: r.get(0)?,
                    done: r.get(1)?,
                    leased: r.get(2)?,
                })
            },
        )
    }

    /// (samples complete, samples planned, places left): a sample is planned when it has an
    /// answered round, complete when its planned number of reviewers finished it; a place left
    /// is one planned reviewer not yet finished.
    pub fn plan_progress(&self) -> anyhow::Result<(i64, i64, i64)> {
        let plan = self.team_plan()?.unwrap_or_default();
        self.db.query_row(
            &format!(
                "SELECT count(*),
                        CAST(coalesce(sum(CASE WHEN t.d >= t.k THEN 1 ELSE 0 END), 0) AS BIGINT),
                        CAST(coalesce(sum(CASE WHEN t.d >= t.k THEN 0 ELSE t.k - t.d END), 0) AS BIGINT)
                 FROM (SELECT b.k + (CASE WHEN CAST(?3 AS BIGINT) > 0 AND b.d >= b.k AND {split}
                                          THEN CAST(?3 AS BIGINT) ELSE 0 END) AS k, b.d
                       FROM (SELECT s.id, {k} AS k,
                                    (SELECT count(*) FROM team_leases d WHERE d.sample_id = s.id AND d.done = 1) AS d
                             FROM samples s WHERE {answered}) b) t",
                k = planned_sql_at(1, 2),
                split = split_sql(self.db.dialect(), "b.id"),
                answered = ANSWERED_SQL,
            ),
            params![plan.per_sample, plan.overlap_basis_points, plan.extra_when_split],
            |r| Ok((r.get(1)?, r.get(0)?, r.get(2)?)),
        )
    }
}

fn read_plan(db: &Db) -> anyhow::Result<Option<TeamPlan>> {
    let Some(json) = db.query_opt("SELECT plan FROM team_plan WHERE id = 1", params![], |r| {
        r.get::<String>(0)
    })?
    else {
        return Ok(None);
    };
    let plan: TeamPlan = serde_json::from_str(&json).context(
        "the stored team plan cannot be read by this vital: set it again with `vital team plan`",
    )?;
    Ok(Some(plan))
}

/// While alive, a directory's connection commits without waiting for the disk (SQLite's
/// `synchronous = NORMAL`): for the transactions that only take or let go of unfinished places
/// (`take_lease`, `claim_next`). Such a place is not worth a wait for the disk: one lost to a
/// machine crash is what a lapsed lease is, and every screen on the machine died with it.
/// Decisions and finished places (`settle_lease`) still wait for the disk (`FULL`); a later
/// such commit makes the places before it durable too. Measured: serving the next sample no
/// longer waits for its own commit to reach the disk (BENCHMARKS.md, "Team work"). The
/// setting in force before is put back when this is dropped, on every path.
struct PlacesOnly<'a> {
    conn: Option<(&'a rusqlite::Connection, i64)>,
}

impl<'a> PlacesOnly<'a> {
    fn start(db: &'a Db) -> anyhow::Result<Self> {
        let Some(conn) = db.sqlite_conn() else {
            return Ok(Self { conn: None });
        };
        let before: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        Ok(Self {
            conn: Some((conn, before)),
        })
    }
}

impl Drop for PlacesOnly<'_> {
    fn drop(&mut self) {
        if let Some((conn, before)) = self.conn {
            if let Err(e) = conn.execute_batch(&format!("PRAGMA synchronous = {before}")) {
                tracing::error!(error = %e, "the workspace's synchronous setting was not put back");
            }
        }
    }
}

/// Takes the lease lock for the rest of the transaction (on SQLite the transaction's `BEGIN
/// IMMEDIATE` is the lock).
fn lock_leases(db: &Db) -> anyhow::Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.query_value::<i64>(
            "SELECT 0 FROM (SELECT pg_advisory_xact_lock(?1)) AS locked",
            params![LEASE_LOCK],
        )?;
    }
    Ok(())
}

/// The database's clock in milliseconds since 1970 (one clock for every reviewer's machine).
fn now_ms(db: &Db) -> anyhow::Result<i64> {
    db.query_value(
        match db.dialect() {
            Dialect::Sqlite => {
                "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
            }
            Dialect::Postgres => {
                "SELECT CAST(extract(epoch FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
        },
        params![],
    )
}

/// Whether `reviewer` finished as many samples as their cap allows.
fn capped(db: &Db, plan: &TeamPlan, reviewer: &str) -> anyhow::Result<bool> {
    let Some(&cap) = plan.caps.get(reviewer) else {
        return Ok(false);
    };
    let done: i64 = db.query_value(
        "SELECT count(*) FROM team_leases WHERE reviewer = ?1 AND done = 1",
        params![reviewer],
    )?;
    Ok(done as u64 >= cap)
}

/// A sample with something to decide.
const ANSWERED_SQL: &str =
    "EXISTS (SELECT 1 FROM rounds r JOIN answers a ON a.round_id = r.id WHERE r.sample_id = s.id)";

/// Sample `s`'s planned reviewers, from parameters ?3 (K) and ?4 (overlap in basis points).
fn planned_sql() -> String {
    planned_sql_at(3, 4)
}

fn planned_sql_at(k: usize, overlap: usize) -> String {
    format!(
        "(CASE WHEN {OVERLAP_BUCKET_SQL} < CAST(?{overlap} AS BIGINT) THEN CAST(?{k} AS BIGINT) ELSE 1 END)"
    )
}

/// How far back a finished place makes its sample a candidate for an extra reviewer served
/// first (a day): the claim then looks at the samples finished lately, not at every finished
/// sample. A split sample older than that gets its extra reviewers when a queue reaches it.
const SPLIT_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// Takes `reviewer`'s place on the first split sample waiting for an extra reviewer, among the
/// samples with a place finished within [`SPLIT_WINDOW_MS`] (None without `--extra-when-split`).
fn claim_split(db: &Db, plan: &TeamPlan, reviewer: &str) -> anyhow::Result<Option<i64>> {
    if plan.extra_when_split == 0 {
        return Ok(None);
    }
    let now = now_ms(db)?;
    let (route, _) = route_of(plan, reviewer);
    db.query_opt(
        &claim_sql(db.dialect(), plan, Only::Split),
        params![
            reviewer,
            now,
            plan.per_sample,
            plan.overlap_basis_points,
            route,
            plan.extra_when_split,
            now + plan.lease_ms(),
            now - SPLIT_WINDOW_MS
        ],
        |r| r.get::<i64>(0),
    )
}

/// Takes `reviewer`'s place on gold sample `key` (a gold check has no planned number of
/// reviewers: every reviewer is served it once).
fn take_gold_place(db: &Db, plan: &TeamPlan, reviewer: &str, key: i64) -> anyhow::Result<()> {
    let until = now_ms(db)? + plan.lease_ms();
    db.execute(
        "INSERT INTO team_leases (sample_id, reviewer, until_ms, done) VALUES (?1, ?2, ?3, 0)
         ON CONFLICT (sample_id, reviewer) DO UPDATE SET until_ms = excluded.until_ms",
        params![key, reviewer, until],
    )?;
    Ok(())
}

/// The reviewer's route as a JSON array (empty: every domain) and whether there is one.
pub(super) fn route_of(plan: &TeamPlan, reviewer: &str) -> (String, bool) {
    match plan.routes.get(reviewer) {
        Some(domains) => (
            serde_json::to_string(domains).unwrap_or_else(|_| "[]".into()),
            true,
        ),
        None => ("[]".into(), false),
    }
}

/// Whether sample `s` may be served to reviewer ?1 at time ?2 (?3 K, ?4 overlap, ?5 route, ?6
/// extra reviewers on a split sample): answered, not finished by them, routed to them, and
/// fewer others' live or done places than planned, or than planned and extra when the
/// reviewers who decided it contradict each other (looked at only then: it reads decisions).
fn eligible_sql(dialect: Dialect, _plan: &TeamPlan) -> String {
    let route = route_sql(dialect, 5);
    let others = "(SELECT count(*) FROM team_leases o
              WHERE o.sample_id = s.id AND o.reviewer <> CAST(?1 AS TEXT)
                AND (o.done = 1 OR o.until_ms > CAST(?2 AS BIGINT)))";
    format!(
        "{ANSWERED_SQL}
         AND NOT EXISTS (SELECT 1 FROM team_leases m
                         WHERE m.sample_id = s.id AND m.reviewer = CAST(?1 AS TEXT) AND m.done = 1)
         AND (CASE WHEN {others} < {planned} THEN 1
                   WHEN CAST(?6 AS BIGINT) = 0 THEN 0
                   WHEN {others} < {planned} + CAST(?6 AS BIGINT) AND {split} THEN 1
                   ELSE 0 END) = 1
         AND {route}",
        planned = planned_sql(),
        split = split_sql(dialect, "s.id"),
    )
}

/// Whether the reviewers who decided sample `key` (an SQL expression) contradict each other:
/// on some answer a ✓ and a ✗ in force, and no final decision. On a server through the owner's
/// function (a reviewer's role reads only its own decisions; the function answers yes or no).
fn split_sql(dialect: Dialect, key: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("vital_split({key})"),
        Dialect::Sqlite => format!(
            "EXISTS (SELECT 1 FROM current_judgments c JOIN reviewers rv ON rv.id = c.reviewer_id
                     WHERE c.sample_id = {key} AND c.kind IN ('accept', 'reject') AND rv.name <> 'imported'
                     GROUP BY c.answer_id
                     HAVING count(DISTINCT CASE WHEN rv.name <> 'final' THEN c.kind END) = 2
                        AND sum(CASE WHEN rv.name = 'final' THEN 1 ELSE 0 END) = 0)"
        ),
    }
}

/// Whether sample `s` is routed to the reviewer whose route (a JSON array, empty: every domain)
/// is parameter `?{at}`.
pub(super) fn route_sql(dialect: Dialect, at: usize) -> String {
    match dialect {
        Dialect::Sqlite => format!(
            "(json_array_length(?{at}) = 0 OR EXISTS (
                SELECT 1 FROM json_each(s.domains) d WHERE d.value IN (SELECT value FROM json_each(?{at}))))"
        ),
        Dialect::Postgres => format!(
            "(jsonb_array_length(CAST(?{at} AS TEXT)::jsonb) = 0 OR EXISTS (
                SELECT 1 FROM jsonb_array_elements_text(s.domains::jsonb) d
                WHERE d IN (SELECT jsonb_array_elements_text(CAST(?{at} AS TEXT)::jsonb))))"
        ),
    }
}

/// Which samples a claim looks at.
#[derive(Clone, Copy)]
enum Only {
    /// Sample ?8.
    This,
    /// Samples after key ?8.
    After,
    /// Samples with a place finished since ?8 (a settled place's `until_ms` is its finish time
    /// and a lease): the ones that may have split lately.
    Split,
    /// Every sample.
    Any,
}

/// The one statement that checks and takes a place: the first servable sample in the plan's
/// order among those `only` names. Answers the sample's key, or no row.
fn claim_sql(dialect: Dialect, plan: &TeamPlan, only: Only) -> String {
    let only = match only {
        Only::This => "AND s.id = CAST(?8 AS BIGINT)",
        Only::After => "AND s.id > CAST(?8 AS BIGINT)",
        Only::Split => {
            "AND s.id IN (SELECT f.sample_id FROM team_leases f
                          WHERE f.done = 1 AND f.until_ms > CAST(?8 AS BIGINT))"
        }
        Only::Any => "",
    };
    let order = match plan.order {
        PlanOrder::File => "s.id",
        PlanOrder::Random => "((s.id * 2246822519) % 4294967296), s.id",
        PlanOrder::Uncertainty => {
            "(SELECT ss.score FROM sample_scores ss WHERE ss.sample_id = s.id
               AND ss.run_id = (SELECT max(run_id) FROM sample_scores)) IS NULL,
             (SELECT ss.score FROM sample_scores ss WHERE ss.sample_id = s.id
               AND ss.run_id = (SELECT max(run_id) FROM sample_scores)), s.id"
        }
    };
    format!(
        "INSERT INTO team_leases (sample_id, reviewer, until_ms, done)
         SELECT s.id, CAST(?1 AS TEXT), CAST(?7 AS BIGINT), 0 FROM samples s
         WHERE {eligible} {only}
         ORDER BY {order} LIMIT 1
         ON CONFLICT (sample_id, reviewer) DO UPDATE SET until_ms = excluded.until_ms
         RETURNING sample_id",
        eligible = eligible_sql(dialect, plan),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::test_support::{insert, on_both_databases, TestDb, TestWorkspace};
    use crate::store::{DecisionKind, NewDecision};

    /// A workspace of `n` one-round samples, each with two answers, domains alternating
    /// radiology / pathology.
    pub(in crate::store) fn team_workspace(db: TestDb, n: usize) -> (TestWorkspace, Vec<i64>) {
        let ws = TestWorkspace::new(db);
        let keys = (0..n)
            .map(|i| {
                insert(
                    &ws,
                    &crate::data::Sample {
                        id: format!("s{i}"),
                        domains: vec![if i % 2 == 0 { "radiology" } else { "pathology" }.into()],
                        rounds: vec![crate::data::Round {
                            question: "q".into(),
                            answers: vec!["a".into(), "b".into()],
                        }],
                        ..Default::default()
                    },
                )
            })
            .collect();
        (ws, keys)
    }

    /// Accepts every answer of sample `key` as `reviewer`, then settles the place.
    pub(in crate::store) fn finish(ws: &Workspace, reviewer: &str, key: i64) {
        finish_with(ws, reviewer, key, DecisionKind::Accept);
    }

    /// Decides every answer of sample `key` as `reviewer` with one verdict, then settles.
    pub(in crate::store) fn finish_with(
        ws: &Workspace,
        reviewer: &str,
        key: i64,
        kind: DecisionKind,
    ) {
        let stored = ws.load_sample(key).unwrap().unwrap();
        for (round, answers) in stored.round_ids.iter().zip(&stored.answer_ids) {
            for &answer in answers {
                ws.record(
                    reviewer,
                    &NewDecision {
                        sample_key: key,
                        round_id: Some(*round),
                        answer_id: Some(answer),
                        kind,
                        value: None,
                        shown_order: None,
                        figure_shown: None,
                    },
                )
                .unwrap();
            }
        }
        ws.settle_lease(reviewer, key).unwrap();
    }

    #[test]
    fn the_overlap_share_is_the_planned_share_and_the_same_everywhere() {
        let plan = TeamPlan {
            per_sample: 3,
            overlap_basis_points: 3000,
            ..Default::default()
        };
        let overlapping = (1..=20_000).filter(|&k| plan.reviewers_for(k) == 3).count();
        assert!(
            (5_700..=6_300).contains(&overlapping),
            "{overlapping} of 20000 overlap"
        );
        assert!((1..=20_000).all(|k| (0..10_000).contains(&overlap_bucket(k))));
        // Nothing overlaps at 0%, everything at 100%.
        let none = TeamPlan {
            overlap_basis_points: 0,
            ..plan.clone()
        };
        let all = TeamPlan {
            overlap_basis_points: 10_000,
            ..plan
        };
        assert!((1..=1000).all(|k| none.reviewers_for(k) == 1 && all.reviewers_for(k) == 3));
    }

    #[test]
    fn a_plan_that_cannot_be_served_is_refused() {
        for bad in [
            TeamPlan {
                per_sample: 0,
                ..Default::default()
            },
            TeamPlan {
                overlap_basis_points: 10_001,
                ..Default::default()
            },
            TeamPlan {
                lease_seconds: 0,
                ..Default::default()
            },
            TeamPlan {
                routes: [("ana".to_string(), vec![])].into(),
                ..Default::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }

    fn a_plan_is_stored_changed_and_removed(db: TestDb) {
        let (ws, _) = team_workspace(db, 2);
        assert_eq!(ws.team_plan().unwrap(), None);
        let plan = TeamPlan {
            per_sample: 2,
            overlap_basis_points: 2500,
            routes: [("ana".to_string(), vec!["radiology".to_string()])].into(),
            caps: [("ben".to_string(), 7)].into(),
            lease_seconds: 300,
            order: PlanOrder::Random,
            gold_every: 4,
            onboarding: 2,
            extra_when_split: 1,
        };
        ws.set_team_plan(&plan).unwrap();
        assert_eq!(ws.team_plan().unwrap(), Some(plan.clone()));
        let changed = TeamPlan {
            per_sample: 3,
            ..plan
        };
        ws.set_team_plan(&changed).unwrap();
        assert_eq!(ws.team_plan().unwrap(), Some(changed));
        ws.clear_team_plan().unwrap();
        assert_eq!(ws.team_plan().unwrap(), None);
    }

    /// The SQL's count of planned reviewers is the Rust one's, sample by sample.
    fn the_database_plans_each_sample_as_the_plan_says(db: TestDb) {
        let (ws, keys) = team_workspace(db, 60);
        let plan = TeamPlan {
            per_sample: 2,
            overlap_basis_points: 3000,
            ..Default::default()
        };
        ws.set_team_plan(&plan).unwrap();
        let expected: i64 = keys.iter().map(|&k| i64::from(plan.reviewers_for(k))).sum();
        assert_eq!(ws.plan_progress().unwrap(), (0, 60, expected));
        assert!(expected > 60 && expected < 120, "{expected}");
    }

    fn places_spread_reviewers_and_finished_samples_leave_every_queue(db: TestDb) {
        let (ws, keys) = team_workspace(db, 3);
        ws.set_team_plan(&TeamPlan::default()).unwrap();
        let a = ws.claim_next("ana", None).unwrap().unwrap();
        let b = ws.claim_next("ben", None).unwrap().unwrap();
        assert_eq!((a, b), (keys[0], keys[1]), "each reviewer gets their own");
        assert_eq!(ws.take_lease("ana", b).unwrap(), Lease::NotServed);
        assert_eq!(ws.take_lease("ben", a).unwrap(), Lease::NotServed);
        assert!(!ws.servable_keys("cy").unwrap().contains(&a));
        finish(&ws, "ana", a);
        assert_eq!(ws.take_lease("ana", a).unwrap(), Lease::Done);
        assert_eq!(ws.take_lease("cy", a).unwrap(), Lease::NotServed);
        assert_eq!(ws.plan_progress().unwrap(), (1, 3, 2));
        // Ana moves on to the third: her place on it is held, Ben's stays his.
        assert_eq!(ws.claim_next("ana", None).unwrap(), Some(keys[2]));
        assert_eq!(
            ws.claim_next("cy", None).unwrap(),
            None,
            "nothing left for a third"
        );
        // Ben's screen closes: his place is free at once.
        ws.release_leases("ben").unwrap();
        assert_eq!(ws.claim_next("cy", None).unwrap(), Some(keys[1]));
        let places = ws.places_by_reviewer().unwrap();
        assert_eq!(
            places,
            vec![
                ReviewerPlaces {
                    reviewer: "ana".into(),
                    done: 1,
                    leased: 1
                },
                ReviewerPlaces {
                    reviewer: "cy".into(),
                    done: 0,
                    leased: 1
                },
            ]
        );
    }

    fn a_lapsed_lease_is_served_again_and_overlap_serves_k_reviewers(db: TestDb) {
        let (ws, keys) = team_workspace(db, 1);
        ws.set_team_plan(&TeamPlan {
            per_sample: 2,
            overlap_basis_points: 10_000,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ws.claim_next("ana", None).unwrap(), Some(keys[0]));
        assert_eq!(
            ws.claim_next("ben", None).unwrap(),
            Some(keys[0]),
            "two places"
        );
        assert_eq!(ws.claim_next("cy", None).unwrap(), None, "no third");
        // Ana's lease lapses (her machine died): Cy gets her place.
        ws.db
            .execute(
                "UPDATE team_leases SET until_ms = 0 WHERE reviewer = 'ana'",
                params![],
            )
            .unwrap();
        assert_eq!(ws.claim_next("cy", None).unwrap(), Some(keys[0]));
        finish(&ws, "ben", keys[0]);
        finish(&ws, "cy", keys[0]);
        assert_eq!(ws.plan_progress().unwrap(), (1, 1, 0));
        assert_eq!(ws.take_lease("ana", keys[0]).unwrap(), Lease::NotServed);
    }

    fn routes_and_caps_hold(db: TestDb) {
        let (ws, keys) = team_workspace(db, 6);
        ws.set_team_plan(&TeamPlan {
            routes: [("ana".to_string(), vec!["pathology".to_string()])].into(),
            caps: [("ben".to_string(), 1)].into(),
            ..Default::default()
        })
        .unwrap();
        // Ana is served pathology only (odd samples).
        assert_eq!(
            ws.servable_keys("ana").unwrap(),
            vec![keys[1], keys[3], keys[5]]
        );
        assert_eq!(ws.take_lease("ana", keys[0]).unwrap(), Lease::NotServed);
        let first = ws.claim_next("ben", None).unwrap().unwrap();
        finish(&ws, "ben", first);
        assert_eq!(ws.claim_next("ben", None).unwrap(), None, "Ben's cap is 1");
        assert!(ws.servable_keys("ben").unwrap().is_empty());
    }

    fn without_a_plan_every_sample_is_served(db: TestDb) {
        let (ws, keys) = team_workspace(db, 2);
        assert_eq!(ws.take_lease("ana", keys[0]).unwrap(), Lease::Taken);
        assert_eq!(ws.take_lease("ben", keys[0]).unwrap(), Lease::Taken);
        ws.settle_lease("ana", keys[0]).unwrap();
        assert!(
            ws.places_by_reviewer().unwrap().is_empty(),
            "nothing stored"
        );
    }

    fn a_split_sample_gets_extra_reviewers_first_then_goes_to_adjudication(db: TestDb) {
        let (ws, keys) = team_workspace(db, 4);
        ws.set_team_plan(&TeamPlan {
            per_sample: 2,
            overlap_basis_points: 10_000,
            extra_when_split: 1,
            ..Default::default()
        })
        .unwrap();
        // Sample 0: Ana accepts, Ben rejects (split). Sample 1: both accept.
        finish_with(&ws, "ana", keys[0], DecisionKind::Accept);
        finish_with(&ws, "ben", keys[0], DecisionKind::Reject);
        finish_with(&ws, "ana", keys[1], DecisionKind::Accept);
        finish_with(&ws, "ben", keys[1], DecisionKind::Accept);
        assert_eq!(
            ws.plan_progress().unwrap(),
            (1, 4, 5),
            "sample 0 needs a third"
        );
        // Cy, further on, is served the split sample first, not the next in line; so is a
        // screen opening another sample.
        assert_eq!(
            ws.take_lease("fay", keys[3]).unwrap(),
            Lease::Instead(keys[0])
        );
        ws.release_leases("fay").unwrap();
        assert_eq!(ws.claim_next("cy", Some(keys[2])).unwrap(), Some(keys[0]));
        assert_eq!(ws.take_lease("dan", keys[0]).unwrap(), Lease::NotServed);
        assert_eq!(ws.take_lease("dan", keys[1]).unwrap(), Lease::NotServed);
        finish_with(&ws, "cy", keys[0], DecisionKind::Accept);
        // Up to one more: now it waits for adjudication, served to no one.
        assert_eq!(ws.take_lease("dan", keys[0]).unwrap(), Lease::NotServed);
        assert_eq!(ws.claim_next("dan", None).unwrap(), Some(keys[2]));
        assert_eq!(ws.plan_progress().unwrap(), (2, 4, 4));
        assert!(ws
            .servable_keys("eve")
            .unwrap()
            .iter()
            .all(|&k| k >= keys[2]));
        // Without extra reviewers the split sample is complete with its two.
        let plan = ws.team_plan().unwrap().unwrap();
        ws.set_team_plan(&TeamPlan {
            extra_when_split: 0,
            ..plan.clone()
        })
        .unwrap();
        assert_eq!(ws.plan_progress().unwrap().0, 2);
        // A final decision resolves the split: no extra place on a resolved sample.
        let (ws, keys) = team_workspace(
            match ws.db.dialect() {
                Dialect::Sqlite => TestDb::Sqlite,
                Dialect::Postgres => TestDb::Postgres,
            },
            2,
        );
        ws.set_team_plan(&plan).unwrap();
        finish_with(&ws, "ana", keys[0], DecisionKind::Accept);
        finish_with(&ws, "ben", keys[0], DecisionKind::Reject);
        let stored = ws.load_sample(keys[0]).unwrap().unwrap();
        for &answer in &stored.answer_ids[0] {
            ws.record_final("cur", answer, true).unwrap();
        }
        assert_eq!(ws.take_lease("cy", keys[0]).unwrap(), Lease::NotServed);
    }

    /// Taking places commits without waiting for the disk; every decision after it still waits.
    #[test]
    fn on_a_directory_decisions_still_wait_for_the_disk_after_places_are_taken() {
        let (ws, keys) = team_workspace(TestDb::Sqlite, 2);
        let synchronous = || -> i64 { ws.db.query_value("PRAGMA synchronous", params![]).unwrap() };
        assert_eq!(synchronous(), 2, "FULL");
        ws.set_team_plan(&TeamPlan::default()).unwrap();
        assert_eq!(ws.claim_next("ana", None).unwrap(), Some(keys[0]));
        assert_eq!(ws.take_lease("ben", keys[0]).unwrap(), Lease::NotServed);
        assert_eq!(ws.take_lease("ben", keys[1]).unwrap(), Lease::Taken);
        assert_eq!(synchronous(), 2, "FULL again");
    }

    on_both_databases!(
        a_plan_is_stored_changed_and_removed,
        the_database_plans_each_sample_as_the_plan_says,
        places_spread_reviewers_and_finished_samples_leave_every_queue,
        a_lapsed_lease_is_served_again_and_overlap_serves_k_reviewers,
        routes_and_caps_hold,
        without_a_plan_every_sample_is_served,
        a_split_sample_gets_extra_reviewers_first_then_goes_to_adjudication,
    );
}
