//! A review session: the app state joined to the workspace. `dispatch` feeds a message to the
//! app and carries out the effects it asks for until none are left — the same path for the
//! terminal loop, the tests and the benchmark.

use std::sync::mpsc::Sender;

use super::app::{App, Effect, Msg};
use super::keymap::Keymap;
use super::queue::Queue;
use super::sample_view::SampleView;
use super::trainer::Trainer;
use crate::store::Workspace;

pub struct Session {
    pub ws: Workspace,
    pub app: App,
    /// Where searches go when they run in the background; `None` runs them inline.
    search: Option<Sender<String>>,
    trainer: Option<Trainer>,
    /// Runs exports in the background; `None` runs them inline.
    exporter: Option<Box<dyn Fn(crate::export::ExportRequest)>>,
    /// Computes the agreement panel in the background; `None` computes it inline.
    agreement: Option<Box<dyn Fn()>>,
    /// Relative export paths are taken from here.
    export_dir: std::path::PathBuf,
    /// Decisions this session committed, newest last: `Some(event)` for a final decision (undone
    /// by id, since it is recorded under the `final` reviewer), `None` for the reviewer's own.
    history: Vec<Option<i64>>,
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
}

impl Session {
    /// Opens the review queue for `options.reviewer` and loads the first undecided sample.
    pub fn start(ws: Workspace, options: SessionOptions) -> anyhow::Result<Self> {
        let queue = Queue::new(ws.review_index(&options.reviewer)?);
        let mut app = App::new(
            options.reviewer,
            options.keymap,
            queue,
            options.auto_advance,
            options.shuffle,
        );
        app.train_after = options.train_after;
        app.top_percent = options.top_percent;
        app.export_defaults = options.export_defaults;
        // Scores of an earlier run order the queue from the start, and earlier runs' held-out
        // alignment seeds the training panel's sparkline.
        app.queue.set_signals(&ws.rank_signals()?);
        for (run, report) in past_runs(&ws)? {
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
        let export_dir = if options.export_dir.as_os_str().is_empty() {
            ws.dir().join("exports")
        } else {
            options.export_dir
        };
        let mut session = Self {
            ws,
            app,
            search: None,
            trainer: None,
            exporter: None,
            agreement: None,
            export_dir,
            history: Vec::new(),
        };
        let effects = session.app.start();
        session.run(effects);
        Ok(session)
    }

    /// Runs searches on a background worker from now on.
    pub fn search_in_background(&mut self, worker: Sender<String>) {
        self.search = Some(worker);
    }

    /// Connects the background trainer (`T`, and training after N decisions).
    pub fn attach_trainer(&mut self, trainer: Trainer) {
        self.trainer = Some(trainer);
    }

    /// Runs exports on a background thread from now on.
    pub fn export_in_background(&mut self, runner: Box<dyn Fn(crate::export::ExportRequest)>) {
        self.exporter = Some(runner);
    }

    /// Computes the agreement panel on a background thread from now on (it reads every decision).
    pub fn agreement_in_background(&mut self, runner: Box<dyn Fn()>) {
        self.agreement = Some(runner);
    }

    pub fn dispatch(&mut self, msg: Msg) {
        let effects = self.app.update(msg);
        self.run(effects);
    }

    /// Carries out effects in the order the app asked for them (and theirs after them).
    fn run(&mut self, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            if let Some(msg) = self.execute(effect) {
                queue.extend(self.app.update(msg));
            }
        }
    }

    fn execute(&mut self, effect: Effect) -> Option<Msg> {
        let reviewer = self.app.reviewer.clone();
        let result = match effect {
            Effect::Quit => return None,
            Effect::Load(key) => SampleView::load(&self.ws, &reviewer, key, self.app.shuffle)
                .map(|view| view.map(|v| Msg::Loaded(Box::new(v)))),
            Effect::Refresh(key) => SampleView::load(&self.ws, &reviewer, key, self.app.shuffle)
                .map(|view| view.map(|v| Msg::Refreshed(Box::new(v)))),
            Effect::Train => {
                match &self.trainer {
                    Some(trainer) => trainer.request(),
                    None => {
                        self.app.message = Some("training is not available in this session".into())
                    }
                }
                Ok(None)
            }
            Effect::Export {
                select,
                format,
                out,
            } => self.export(&select, &format, &out),
            Effect::FinalDecision {
                answer_id,
                accepted,
            } => {
                let event = match self.ws.record_final(&reviewer, answer_id, accepted) {
                    Ok(event) => event,
                    Err(e) => {
                        return Some(Msg::SaveFailed(format!("final decision not saved: {e:#}")))
                    }
                };
                self.history.push(Some(event));
                match self.app.current.as_ref().map(|v| v.key()) {
                    Some(key) => SampleView::load(&self.ws, &reviewer, key, self.app.shuffle)
                        .map(|view| view.map(|v| Msg::Refreshed(Box::new(v)))),
                    None => Ok(None),
                }
            }
            Effect::LoadAgreement => match &self.agreement {
                Some(runner) => {
                    self.app.message = Some("computing agreement…".into());
                    runner();
                    Ok(None)
                }
                None => self
                    .ws
                    .agreement_report()
                    .map(|report| Some(Msg::Agreement(super::view::agreement_lines(&report)))),
            },
            Effect::CancelTraining => {
                if let Some(trainer) = &self.trainer {
                    trainer.cancel();
                }
                Ok(None)
            }
            // Committed before the screen shows it: what is on screen as decided is on disk.
            // Committed before the screen shows it: what is on screen as decided is on disk.
            // A failed commit is reported as such, and stays on screen until a save succeeds.
            Effect::Record(judgment) => {
                if let Err(e) = self.ws.record(&reviewer, &judgment) {
                    return Some(Msg::SaveFailed(format!("{e:#}")));
                }
                // On disk from here: it belongs to the undo history whatever happens next.
                self.history.push(None);
                let reread = self
                    .ws
                    .current_decisions(&reviewer, judgment.sample_key)
                    .and_then(|decisions| {
                        Ok(Msg::Saved {
                            key: judgment.sample_key,
                            decisions,
                            at: self.clock()?,
                        })
                    });
                return Some(reread.unwrap_or_else(|e| {
                    Msg::Error(format!("saved, but the screen could not be updated: {e:#}"))
                }));
            }
            // Undo what this session did last (a final decision too), else the reviewer's latest.
            // The history entry is dropped only once the undo is on disk.
            Effect::Undo => {
                let undone = match self.history.last() {
                    Some(Some(final_event)) => self.ws.undo_event(*final_event),
                    _ => self.ws.undo_last(&reviewer),
                };
                let key = match undone {
                    Ok(key) => key,
                    Err(e) => return Some(Msg::SaveFailed(format!("undo failed: {e:#}"))),
                };
                self.history.pop();
                let decisions = match key {
                    Some(k) => self.ws.current_decisions(&reviewer, k),
                    None => Ok(Vec::new()),
                };
                decisions.and_then(|decisions| {
                    Ok(Some(Msg::Undone {
                        key,
                        decisions,
                        at: self.clock()?,
                    }))
                })
            }
            Effect::Search(query) => match &self.search {
                Some(worker) => {
                    self.app.message = Some(format!("searching \"{query}\"…"));
                    let _ = worker.send(query);
                    Ok(None)
                }
                None => self
                    .ws
                    .search(&query)
                    .map(|keys| Some(Msg::SearchDone { query, keys })),
            },
            Effect::Find(id) => self.ws.load_sample_by_ext_id(&id).map(|s| {
                Some(Msg::Found {
                    key: s.map(|s| s.key),
                    id,
                })
            }),
        };
        result.unwrap_or_else(|e| Some(Msg::Error(format!("{e:#}"))))
    }

    fn export(&mut self, select: &str, format: &str, out: &str) -> anyhow::Result<Option<Msg>> {
        let select: crate::export::Selection =
            select.parse().map_err(|e: String| anyhow::anyhow!(e))?;
        let format = <crate::export::ExportFormat as clap::ValueEnum>::from_str(format, true)
            .map_err(|_| anyhow::anyhow!("unknown format `{format}`"))?;
        let out = std::path::Path::new(out);
        let out = if out.is_absolute() {
            out.to_path_buf()
        } else {
            self.export_dir.join(out)
        };
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let request = crate::export::ExportRequest::new(select, format, out);
        match &self.exporter {
            Some(runner) => {
                runner(request);
                Ok(None)
            }
            None => {
                let cancel = std::sync::atomic::AtomicBool::new(false);
                let result = crate::export::run(&self.ws, &request, &|_| {}, &cancel);
                Ok(Some(Msg::ExportDone(
                    result
                        .map(|s| export_summary(&s))
                        .map_err(|e| format!("{e:#}")),
                )))
            }
        }
    }

    /// Local wall-clock time for "saved 14:03:07".
    fn clock(&self) -> anyhow::Result<String> {
        self.ws.local_time()
    }
}

/// One status line for a finished export.
pub fn export_summary(s: &crate::export::ExportSummary) -> String {
    format!(
        "exported {} samples ({} rounds) to {}",
        s.counts.samples_written,
        s.counts.rounds_written,
        s.output.display()
    )
}

/// Finished selector runs, oldest first, with their reports.
fn past_runs(ws: &Workspace) -> anyhow::Result<Vec<(i64, crate::ranking::RunReport)>> {
    let mut runs = Vec::new();
    for run in ws.finished_runs()? {
        // A record this version cannot read is skipped: it only feeds the panel.
        if let Ok(report) = serde_json::from_str(&run.metrics_json) {
            runs.push((run.id, report));
        }
    }
    Ok(runs)
}
