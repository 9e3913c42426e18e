//! A review session: the app and the executor that carries out its effects, joined by one loop.
//! `dispatch` feeds a message to the app's update and runs the effects it asks for, applying
//! their immediate answers, until none are left — the same path for the terminal loop, the
//! tests and the benchmark. Background answers come back later as messages of their own.

use std::collections::VecDeque;
use std::sync::mpsc::Sender;

use super::app::{App, Effect, Msg};
use super::executor::{Executor, SessionStore, SyncExecutor, ThreadedExecutor};
use super::keymap::Keymap;
use super::queue::{Order, Queue};
use super::trainer::TrainerSettings;
use crate::store::Workspace;

pub struct Session<E = SyncExecutor> {
    pub app: App,
    pub executor: E,
}

/// What a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    pub reviewer: String,
    pub keymap: Keymap,
    pub auto_advance: bool,
    pub shuffle: bool,
    /// Train by itself after this many decisions (0: only on `T`).
    pub train_after: usize,
    /// Share of samples kept by the selection preview.
    pub top_percent: f64,
    /// The export form's starting values (selection, format, file name) and where relative
    /// output paths go (empty: WORKSPACE/exports).
    pub export_defaults: [String; 3],
    pub export_dir: std::path::PathBuf,
    /// The order the queue opens in.
    pub order: Order,
    /// The reasons offered for a ✗ (`review.reasons`).
    pub reasons: Vec<String>,
    /// No decision while the figure is not on screen (`review.require_figure`).
    pub require_figure: bool,
    /// The curator's adjudication queue: only samples whose reviewers disagree on an answer
    /// with no final decision, lowest agreement first (`vital review --adjudicate`).
    pub adjudicate: bool,
}

impl Session<SyncExecutor> {
    /// A session that runs every effect inline (no trainer, no downloads): tests and benchmarks.
    pub fn start(ws: Workspace, options: SessionOptions) -> anyhow::Result<Self> {
        let app = initial_app(&ws, &options)?;
        let store = SessionStore::new(
            ws,
            options.reviewer,
            options.shuffle,
            options.export_dir,
            DEFAULT_MAX_IMAGE_SIDE,
        )?;
        Ok(Self::new(app, SyncExecutor { store }))
    }

    /// The workspace the session reads and commits to.
    pub fn ws(&self) -> &Workspace {
        self.executor.store.workspace()
    }
}

impl Session<ThreadedExecutor> {
    /// The review screen's session: reads and commits inline, training, export, agreement,
    /// search and figures on threads whose answers come back over `to_ui`.
    pub fn start_threaded(
        ws: Workspace,
        options: SessionOptions,
        trainer: TrainerSettings,
        fetch: crate::figure_fetch::FetchSettings,
        max_image_side: u32,
        to_ui: Sender<Msg>,
    ) -> anyhow::Result<Self> {
        let app = initial_app(&ws, &options)?;
        let store = SessionStore::new(
            ws,
            options.reviewer,
            options.shuffle,
            options.export_dir,
            max_image_side,
        )?;
        let executor = ThreadedExecutor::start(store, to_ui, trainer, fetch)?;
        Ok(Self::new(app, executor))
    }
}

/// Largest side of a decoded figure in an inline session.
const DEFAULT_MAX_IMAGE_SIDE: u32 = 1024;

impl<E: Executor> Session<E> {
    /// Joins the app to its executor and loads the first undecided sample.
    pub fn new(mut app: App, executor: E) -> Self {
        let effects = app.start();
        let mut session = Self { app, executor };
        session.run(effects);
        session
    }

    pub fn dispatch(&mut self, msg: Msg) {
        let effects = self.app.update(msg);
        self.run(effects);
    }

    /// Carries out effects in the order the app asked for them (and theirs after them).
    fn run(&mut self, effects: Vec<Effect>) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            if let Some(msg) = self.executor.run(effect) {
                queue.extend(self.app.update(msg));
            }
        }
    }
}

/// The app for `options.reviewer` on `ws`: its review queue ordered by the latest scores, and the
/// training panel seeded from earlier runs.
pub fn initial_app(ws: &Workspace, options: &SessionOptions) -> anyhow::Result<App> {
    let mut index = ws.review_index(&options.reviewer)?;
    let plan = ws.team_plan()?;
    if plan.is_some() {
        // Under a team plan the queue holds what the plan serves this reviewer now, and what
        // they finished (theirs to look at and undo).
        let served: std::collections::HashSet<i64> =
            ws.servable_keys(&options.reviewer)?.into_iter().collect();
        index.retain(|e| e.decided || served.contains(&e.key));
    }
    let adjudication = if options.adjudicate {
        // The samples awaiting adjudication first, lowest agreement first, then every other
        // sample in file order (file order then keeps the entries' order). Under the
        // disagreements filter only the awaiting ones show; a conflict that arises while the
        // screen is open joins at its sample's place, a resolved one leaves.
        let order = ws.adjudication_queue()?;
        let mut rest: Vec<Option<crate::store::IndexEntry>> = index.into_iter().map(Some).collect();
        let at: std::collections::HashMap<i64, usize> = rest
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (e.key, i)))
            .collect();
        let mut ordered = Vec::with_capacity(rest.len());
        for (key, _) in &order {
            if let Some(mut entry) = at.get(key).and_then(|&i| rest[i].take()) {
                entry.disagreement = true;
                ordered.push(entry);
            }
        }
        ordered.extend(rest.into_iter().flatten().map(|mut e| {
            e.disagreement = false;
            e
        }));
        index = ordered;
        true
    } else {
        false
    };
    let mut queue = Queue::new(index);
    if adjudication {
        queue.set_filter(super::queue::Filter::Disagreements);
    }
    let mut app = App::new(
        options.reviewer.clone(),
        options.keymap.clone(),
        queue,
        options.auto_advance,
        options.shuffle,
    );
    app.adjudicating = adjudication;
    // The guidelines open at a reviewer's first start and after each change: when they have
    // made no decision under the version in force.
    if let Some(g) = ws.current_guidelines()? {
        if !ws.decided_under_guidelines(&options.reviewer, g.version)? {
            app.mode = super::app::Mode::Guidelines;
        }
        app.guidelines = Some(g);
    }
    app.train_after = options.train_after;
    app.top_percent = options.top_percent;
    app.export_defaults = options.export_defaults.clone();
    // Scores of an earlier run order the queue from the start, and earlier runs' held-out
    // alignment seeds the training panel's sparkline.
    app.queue.set_order(match plan.map(|p| p.order) {
        _ if adjudication => Order::File,
        // The curator's plan names the order work is served in.
        Some(crate::store::PlanOrder::File) => Order::File,
        Some(crate::store::PlanOrder::Random) => Order::Random,
        Some(crate::store::PlanOrder::Uncertainty) => Order::Uncertainty,
        None => options.order,
    });
    app.reasons = options.reasons.clone();
    app.require_figure = options.require_figure;
    app.queue.set_signals(&ws.rank_signals()?);
    app.score_ranks = super::score_rank::ScoreRanks::from_ascending(&ws.selector_score_spread()?);
    for (run, report) in past_runs(ws)? {
        if let Some(v) = &report.validation {
            app.training.history.push(v.alignment_rate);
        }
        app.training.last_run = Some(run);
        app.training.backend = report.backend.clone();
        app.training.human_pairs = report.human_pairs;
        app.training.judge_pairs = report.judge_pairs;
        app.training.validation = report.validation;
        app.training.status = format!("run {run} (earlier session)");
    }
    Ok(app)
}

/// Finished selector runs, oldest first, with their reports.
fn past_runs(ws: &Workspace) -> anyhow::Result<Vec<(i64, crate::selector_runs::RunReport)>> {
    let mut runs = Vec::new();
    for run in ws.finished_runs()? {
        // A record this version cannot read is skipped: it only feeds the panel.
        if let Ok(report) = serde_json::from_str(&run.metrics_json) {
            runs.push((run.id, report));
        }
    }
    Ok(runs)
}
