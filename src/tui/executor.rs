//! Carrying out the review screen's effects. The app asks ([`Effect`]); an [`Executor`] does it
//! and answers with a [`Msg`]: at once (returned, applied before the next key) or later, from a
//! background thread, over the one channel the UI loop reads. Nothing here changes the app.
//!
//! [`SyncExecutor`] does everything inline (tests, the benchmark); [`ThreadedExecutor`] runs the
//! slow kinds (training, export, agreement, search, image decode, download and the full-screen
//! figure's zoom and contrast) on threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use super::app::{Effect, ExportJob, ImageUpdate, Msg};
use super::sample_view::SampleView;
use super::trainer::{Trainer, TrainerSettings};
use super::workers::{self, Workers};
use anyhow::Context;

use crate::store::{DecisionKind, Journal, Workspace};

/// How long a decision waits for a directory's write lock (an import holding it) before it is
/// kept in the journal instead, so a key never waits longer.
const DECISION_WRITE_WAIT: std::time::Duration = std::time::Duration::from_millis(25);

/// How often decisions waiting in the journal are tried again.
const JOURNAL_RETRY: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs effects. Returns the answer when it is ready now; a background job sends it later.
pub trait Executor {
    fn run(&mut self, effect: Effect) -> Option<Msg>;
}

/// Where a figure comes from.
pub enum ImageSource {
    File(PathBuf),
    Download(crate::figure_fetch::Item),
    Missing,
}

/// One entry of the session's undo history.
#[derive(Debug, Clone)]
enum Committed {
    /// The reviewer's own decisions, recorded together (undone with the reviewer's latest).
    Own(Vec<crate::store::NewDecision>),
    /// A final decision: undone by its event id, since it is recorded under the `final` reviewer.
    Final {
        event: i64,
        answer_id: i64,
        accepted: bool,
    },
}

impl Committed {
    /// What a reviewer sees undone, in words.
    fn describe(&self) -> String {
        let word = |d: &crate::store::NewDecision| match d.kind {
            DecisionKind::Accept => "your ✓".to_string(),
            DecisionKind::Reject => "your ✗".to_string(),
            DecisionKind::Prefer => "your preference".to_string(),
            DecisionKind::Tie => "your tie".to_string(),
            DecisionKind::Rate => format!("your rating {}", d.value.as_deref().unwrap_or("")),
            DecisionKind::Flag => "the flag".to_string(),
            DecisionKind::Note => "your note".to_string(),
            DecisionKind::Demo => "the demonstration mark".to_string(),
            DecisionKind::Edit => "your correction".to_string(),
            DecisionKind::Reason => format!("the reason \"{}\"", d.value.as_deref().unwrap_or("")),
        };
        match self {
            Committed::Own(decisions) => {
                decisions.iter().map(word).collect::<Vec<_>>().join(" and ")
            }
            Committed::Final { accepted, .. } => {
                format!("the final {}", if *accepted { "✓" } else { "✗" })
            }
        }
    }
}

/// The workspace side of a session: reads and commits on the UI thread's connection, and the
/// undo history of what this session committed.
pub struct SessionStore {
    ws: Workspace,
    reviewer: String,
    shuffle: bool,
    /// Relative export paths are taken from here.
    export_dir: PathBuf,
    /// Largest side of a decoded figure.
    max_image_side: u32,
    /// What this session committed, newest last: one entry per key that decided something, so
    /// one undo takes back an edit together with the ✗ recorded with it.
    history: Vec<Committed>,
    /// What undo took back this session, newest last, for redo; a new decision clears it.
    redo: Vec<Committed>,
    /// Every decision goes here first (see [`crate::store::Journal`]).
    journal: Journal,
    /// Why decisions wait in the journal (the server is away, the workspace is busy); None
    /// while the workspace takes them.
    waiting: Option<String>,
    /// The reviewer's decisions in force per sample as the workspace last reported them, for
    /// showing waiting decisions on top while it cannot be asked.
    known: std::collections::HashMap<i64, Vec<crate::store::CurrentDecision>>,
    /// The next samples of the queue as read ahead ([`Effect::Prefetch`]), shown when the
    /// workspace cannot be reached.
    ahead: std::collections::HashMap<i64, SampleView>,
}

impl SessionStore {
    /// `export_dir` empty: WORKSPACE/exports. Decisions a killed session left in the journal
    /// are sent first.
    pub fn new(
        ws: Workspace,
        reviewer: String,
        shuffle: bool,
        export_dir: PathBuf,
        max_image_side: u32,
    ) -> anyhow::Result<Self> {
        let export_dir = if export_dir.as_os_str().is_empty() {
            ws.dir().join("exports")
        } else {
            export_dir
        };
        ws.set_write_wait(DECISION_WRITE_WAIT)?;
        let journal = Journal::open(ws.dir())?;
        let mut store = Self {
            ws,
            reviewer,
            shuffle,
            export_dir,
            max_image_side,
            history: Vec::new(),
            redo: Vec::new(),
            journal,
            waiting: None,
            known: Default::default(),
            ahead: Default::default(),
        };
        store.send_waiting();
        Ok(store)
    }

    /// Sends what waits in the journal; on failure reconnects once (a server that came back)
    /// and tries again. Sets [`Self::waiting`]. A decision the workspace refuses outright (not
    /// for being away) is dropped from the journal and reported.
    fn send_waiting(&mut self) -> Option<String> {
        // Under a team plan, the samples whose decisions go out now have their places settled
        // once the workspace took them (decisions kept while offline included).
        let sending: std::collections::BTreeSet<i64> = self
            .journal
            .pending(&self.reviewer)
            .unwrap_or_default()
            .iter()
            .map(|p| p.decision.sample_key)
            .collect();
        let first = self.ws.send_journal(&self.journal, &self.reviewer);
        let result = match first {
            Err(e) if crate::store::is_unavailable(&e) && self.ws.is_server() => {
                match self.ws.reopen() {
                    Ok(ws) => {
                        let _ = ws.set_write_wait(DECISION_WRITE_WAIT);
                        self.ws = ws;
                        self.ws.send_journal(&self.journal, &self.reviewer)
                    }
                    Err(reconnect) => Err(reconnect),
                }
            }
            other => other,
        };
        match result {
            Ok(_) => {
                self.waiting = None;
                for key in sending {
                    self.settle_place(key);
                }
                None
            }
            Err(e) if crate::store::is_unavailable(&e) => {
                self.waiting = Some(if self.ws.is_server() {
                    "offline".to_string()
                } else {
                    "workspace busy".to_string()
                });
                None
            }
            Err(e) => {
                // Refused for what it is (not for being away): retrying cannot help.
                let _ = self.journal.take_first(&self.reviewer);
                Some(format!("{e:#}"))
            }
        }
    }

    /// The journal's state for the status line: None when nothing waits.
    fn waiting_note(&self) -> Option<String> {
        let waiting = self.waiting.as_ref().and_then(|why| {
            let n = self.journal.count(&self.reviewer).unwrap_or(0);
            (n > 0).then(|| {
                format!(
                    "{why} — {n} decision{} kept on this machine",
                    if n == 1 { "" } else { "s" }
                )
            })
        });
        // Entries no version of vital could read: never sent, kept for the curator, counted.
        let aside = self.journal.set_aside(&self.reviewer).unwrap_or(0);
        let aside = (aside > 0).then(|| format!("{aside} unreadable journal entries set aside"));
        match (waiting, aside) {
            (Some(w), Some(a)) => Some(format!("{w} · {a}")),
            (w, a) => w.or(a),
        }
    }

    pub fn workspace(&self) -> &Workspace {
        &self.ws
    }

    /// Carries out every effect inline; `None` for those that answer nothing.
    fn run_inline(&mut self, effect: Effect) -> Option<Msg> {
        let result = match effect {
            Effect::Quit => {
                self.let_go();
                Ok(None)
            }
            Effect::CancelTraining => Ok(None),
            Effect::Train => Ok(Some(Msg::TrainingUnavailable)),
            Effect::Load(key) => match self.take_place(key) {
                Some(refused) => Ok(Some(refused)),
                None => self
                    .load_or_read_ahead(key)
                    .map(|view| view.map(|v| Msg::Loaded(Box::new(v)))),
            },
            Effect::Prefetch(keys) => {
                self.read_ahead(&keys);
                Ok(None)
            }
            Effect::Refresh(key) => self
                .load_or_read_ahead(key)
                .map(|view| view.map(|v| Msg::Refreshed(Box::new(v)))),
            Effect::Export(job) => {
                // Every end of an export, a folder that cannot be made included, is ExportDone:
                // the status line's "exporting…" is cleared by it and nothing else.
                let cancel = AtomicBool::new(false);
                let result = self
                    .export_request(&job)
                    .and_then(|request| crate::export::run(&self.ws, &request, &|_| {}, &cancel));
                Ok(Some(Msg::ExportDone(
                    result
                        .map(|s| export_summary(&s))
                        .map_err(|e| format!("{e:#}")),
                )))
            }
            Effect::FinalDecision {
                answer_id,
                accepted,
            } => match self.ws.record_final(&self.reviewer, answer_id, accepted) {
                Ok(event) => {
                    self.history.push(Committed::Final {
                        event,
                        answer_id,
                        accepted,
                    });
                    self.redo.clear();
                    Ok(Some(Msg::FinalSaved))
                }
                Err(e) => Ok(Some(Msg::SaveFailed(format!(
                    "final decision not saved: {e:#}"
                )))),
            },
            Effect::LoadAgreement => panel_lines(&self.ws).map(|lines| Some(Msg::Agreement(lines))),
            // A look every few seconds: offline (a dropped server), the next tick looks again
            // instead of an error on the status line each time.
            Effect::LoadGuidelines => Ok(self.ws.current_guidelines().ok().map(Msg::Guidelines)),
            Effect::Record(decision) => {
                self.redo.clear();
                Ok(Some(self.record(vec![decision])))
            }
            Effect::RecordTogether(decisions) => {
                self.redo.clear();
                Ok(Some(self.record(decisions)))
            }
            Effect::Redo => Ok(Some(self.redo())),
            Effect::RetryJournal => Ok(Some(self.retry_waiting())),
            Effect::LoadDisagreements => self
                .ws
                .disagreement_keys(true)
                .map(|keys| Some(Msg::Disagreements(keys.into_iter().collect()))),
            Effect::Undo => self.undo().map(Some),
            Effect::Search(query) => self
                .ws
                .search(&query)
                .map(|keys| Some(Msg::SearchDone { query, keys })),
            Effect::Find(id) => self.ws.load_sample_by_ext_id(&id).map(|s| {
                Some(Msg::Found {
                    key: s.map(|s| s.key),
                    id,
                })
            }),
            Effect::LoadImage {
                key,
                sample_id,
                reference,
            } => Ok(Some(Msg::Image {
                key,
                update: match self.image_source(&sample_id, &reference) {
                    ImageSource::File(path) => self.decode(&path),
                    // Downloads belong to the review screen's worker, not to an inline session.
                    ImageSource::Download(_) | ImageSource::Missing => {
                        ImageUpdate::NotFound(reference)
                    }
                },
            })),
            Effect::DecodeImage { key, path } => Ok(Some(Msg::Image {
                key,
                update: self.decode(&path),
            })),
            Effect::AdjustFigure { key, view, figure } => Ok(Some(Msg::Image {
                key,
                update: ImageUpdate::Adjusted {
                    view,
                    image: Arc::new(super::figure_view::render(&figure, &view)),
                },
            })),
        };
        result.unwrap_or_else(|e| Some(Msg::Error(format!("{e:#}"))))
    }

    /// Under a team plan (the one in force now: a plan set while the screen is open counts),
    /// takes this reviewer's place on sample `key` before it is shown: `Some(NotServed)` when
    /// the plan serves it to others now. A workspace that cannot be reached does not stop the
    /// review (the sample is shown; its place is taken with the next decision that reaches the
    /// workspace).
    fn take_place(&mut self, key: i64) -> Option<Msg> {
        if self.waiting.is_some() {
            return None;
        }
        match self.ws.take_lease(&self.reviewer, key) {
            Ok(crate::store::Lease::NotServed) => Some(Msg::NotServed(key)),
            // A gold check is due, or a split sample waits for an extra reviewer: that sample is
            // shown instead, like any other.
            Ok(crate::store::Lease::Instead(other)) => match self.load(other) {
                Ok(Some(view)) => Some(Msg::Instead {
                    asked: key,
                    view: Box::new(view),
                }),
                Ok(None) => None,
                Err(e) => Some(Msg::Error(format!("{e:#}"))),
            },
            Ok(_) => None,
            Err(e) if crate::store::is_unavailable(&e) => None,
            Err(e) => Some(Msg::Error(format!(
                "the sample's place was not taken: {e:#}"
            ))),
        }
    }

    /// After a decision reached the workspace: the reviewer's place on `key` is kept for good
    /// once the sample is finished, else renewed.
    fn settle_place(&mut self, key: i64) {
        if self.waiting.is_none() {
            if let Err(e) = self.ws.settle_lease(&self.reviewer, key) {
                tracing::warn!(key, error = %format!("{e:#}"), "the sample's place was not settled");
            }
        }
    }

    /// The screen closes: the reviewer's unfinished places are free for others at once.
    fn let_go(&mut self) {
        if !matches!(self.ws.team_plan(), Ok(Some(_))) {
            return;
        }
        if let Err(e) = self.ws.release_leases(&self.reviewer) {
            tracing::warn!(error = %format!("{e:#}"), "places not let go (they lapse by themselves)");
        }
    }

    /// Reads samples `keys` ahead, keeping only those (a sample already read is not read again):
    /// what [`Self::load_or_read_ahead`] shows when the workspace cannot be reached. Nothing is
    /// read while decisions wait (the workspace is away); a failed read is left out.
    fn read_ahead(&mut self, keys: &[i64]) {
        self.ahead.retain(|key, _| keys.contains(key));
        if self.waiting.is_some() {
            return;
        }
        for &key in keys {
            if self.ahead.contains_key(&key) {
                continue;
            }
            match SampleView::load(&self.ws, &self.reviewer, key, self.shuffle) {
                Ok(Some(view)) => {
                    self.ahead.insert(key, view);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!(key, error = %format!("{e:#}"), "a sample was not read ahead");
                    return;
                }
            }
        }
    }

    /// [`Self::load`]; when the workspace cannot be reached, the sample as read ahead, with this
    /// reviewer's decisions waiting in the journal on top (so the review goes on offline).
    fn load_or_read_ahead(&mut self, key: i64) -> anyhow::Result<Option<SampleView>> {
        match self.load(key) {
            Err(e) if crate::store::is_unavailable(&e) => {
                let Some(view) = self.ahead.get(&key) else {
                    return Err(e);
                };
                let mut view = view.clone();
                let known = self.known.get(&key).cloned().unwrap_or(view.decisions);
                let pending = self.journal.pending(&self.reviewer).unwrap_or_default();
                view.decisions = crate::store::with_pending(known, &pending, key);
                Ok(Some(view))
            }
            other => other,
        }
    }

    fn load(&mut self, key: i64) -> anyhow::Result<Option<SampleView>> {
        let view = SampleView::load(&self.ws, &self.reviewer, key, self.shuffle)?;
        if let Some(v) = &view {
            self.known.insert(key, v.decisions.clone());
            if self.waiting.is_some() {
                // Read while decisions wait: show them on top.
                let pending = self.journal.pending(&self.reviewer).unwrap_or_default();
                let mut v = v.clone();
                v.decisions = crate::store::with_pending(v.decisions, &pending, key);
                return Ok(Some(v));
            }
        }
        Ok(view)
    }

    // Committed before the screen shows it: what is on screen as decided is on disk — on this
    // machine's journal at once, in the workspace as soon as it takes it. A failed commit is
    // reported as such, and stays on screen until a save succeeds.
    fn record(&mut self, decisions: Vec<crate::store::NewDecision>) -> Msg {
        let Some(sample_key) = decisions.first().map(|d| d.sample_key) else {
            return Msg::SaveFailed("nothing to record".into());
        };
        for (i, decision) in decisions.iter().enumerate() {
            let uid = crate::store::new_decision_uid();
            if let Err(e) = self.journal.add(&self.reviewer, &uid, decision) {
                // The ones before it are on disk: they stay undoable.
                if i > 0 {
                    self.history.push(Committed::Own(decisions[..i].to_vec()));
                }
                return Msg::SaveFailed(format!("{e:#}"));
            }
        }
        // On disk from here: it belongs to the undo history whatever happens next.
        self.history.push(Committed::Own(decisions));
        if let Some(refused) = self.send_waiting() {
            self.history.pop();
            return Msg::SaveFailed(refused);
        }
        let note = self.waiting_note().unwrap_or_default();
        self.decisions_msg(sample_key, |key, decisions, at| match at {
            Some(at) => Msg::Saved { key, decisions, at },
            None => Msg::SavedLocally {
                key,
                decisions,
                note,
            },
        })
    }

    /// Records again what undo took back last (as new events: the log only grows).
    fn redo(&mut self) -> Msg {
        match self.redo.pop() {
            None => Msg::Notice("nothing to redo".into()),
            Some(Committed::Own(decisions)) => self.record(decisions),
            Some(Committed::Final {
                answer_id,
                accepted,
                ..
            }) => match self.ws.record_final(&self.reviewer, answer_id, accepted) {
                Ok(event) => {
                    self.history.push(Committed::Final {
                        event,
                        answer_id,
                        accepted,
                    });
                    Msg::FinalSaved
                }
                Err(e) => Msg::SaveFailed(format!("final decision not saved: {e:#}")),
            },
        }
    }

    /// The message answering a change on sample `key`: the decisions in force from the
    /// workspace, or, while decisions wait, the last ones it reported with the waiting ones on
    /// top (then `saved` gets None for the time, and the status line says why).
    fn decisions_msg(
        &mut self,
        key: i64,
        saved: impl FnOnce(i64, Vec<crate::store::CurrentDecision>, Option<String>) -> Msg,
    ) -> Msg {
        if self.waiting.is_none() {
            let reread = self
                .ws
                .current_decisions(&self.reviewer, key)
                .and_then(|decisions| {
                    self.known.insert(key, decisions.clone());
                    Ok(saved(key, decisions, Some(self.ws.local_time()?)))
                });
            return reread.unwrap_or_else(|e| {
                Msg::Error(format!("saved, but the screen could not be updated: {e:#}"))
            });
        }
        let pending = self.journal.pending(&self.reviewer).unwrap_or_default();
        let base = self.known.get(&key).cloned().unwrap_or_default();
        saved(key, crate::store::with_pending(base, &pending, key), None)
    }

    /// Tries the journal again (a timer asks while decisions wait).
    fn retry_waiting(&mut self) -> Msg {
        let refused = self.send_waiting();
        Msg::Journal {
            note: self.waiting_note(),
            refused,
        }
    }

    /// Undoes what this session did last (a final decision too), else the reviewer's latest.
    /// The history entry is dropped only once the undo is on disk. While decisions wait, only
    /// those can be undone (they are taken back before they are ever sent).
    fn undo(&mut self) -> anyhow::Result<Msg> {
        let entry = self.history.pop();
        let what = entry.as_ref().map(Committed::describe);
        let own = match &entry {
            Some(Committed::Own(decisions)) => decisions.len(),
            Some(Committed::Final { .. }) => 0,
            None => 1,
        };
        if self.waiting.is_some() {
            let mut key = None;
            for _ in 0..own.max(1) {
                match self.journal.take_last(&self.reviewer)? {
                    Some(taken) => key = Some(taken.sample_key),
                    None => break,
                }
            }
            let Some(key) = key else {
                if let Some(entry) = entry {
                    self.history.push(entry);
                }
                return Ok(Msg::SaveFailed(
                    "offline: only decisions made since the workspace went away can be undone until it is back"
                        .into(),
                ));
            };
            if self.journal.count(&self.reviewer)? == 0 {
                self.waiting = None;
            }
            self.redo.extend(entry);
            let now = self.ws.local_time().unwrap_or_default();
            return Ok(self.decisions_msg(key, |key, decisions, at| Msg::Undone {
                key: Some(key),
                decisions,
                at: at.unwrap_or(now),
                what,
            }));
        }
        let undone = match &entry {
            Some(Committed::Final { event, .. }) => self.ws.undo_event(*event),
            _ => (0..own).try_fold(None, |key, _| {
                Ok(self.ws.undo_last(&self.reviewer)?.or(key))
            }),
        };
        let key = match undone {
            Ok(key) => key,
            Err(e) => {
                if let Some(entry) = entry {
                    self.history.push(entry);
                }
                return Ok(Msg::SaveFailed(format!("undo failed: {e:#}")));
            }
        };
        self.redo.extend(entry);
        let decisions = match key {
            Some(k) => self.ws.current_decisions(&self.reviewer, k)?,
            None => Vec::new(),
        };
        if let Some(k) = key {
            self.known.insert(k, decisions.clone());
            // An undo may leave the sample unfinished again: the place is held, not done.
            self.settle_place(k);
        }
        Ok(Msg::Undone {
            key,
            decisions,
            at: self.ws.local_time()?,
            what,
        })
    }

    /// The export request for `job`, its output path resolved and its folder created.
    fn export_request(&self, job: &ExportJob) -> anyhow::Result<crate::export::ExportRequest> {
        let out = if job.out.is_absolute() {
            job.out.clone()
        } else {
            self.export_dir.join(&job.out)
        };
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the folder {}", parent.display()))?;
        }
        Ok(crate::export::ExportRequest::new(
            job.select, job.format, out,
        ))
    }

    /// A local file if there is one, else an entry of the workspace's URL list.
    fn image_source(&self, sample_id: &str, reference: &str) -> ImageSource {
        if let Some(path) = self.ws.resolve_image(reference) {
            return ImageSource::File(path);
        }
        // A failed lookup reads as "not found": the pane says so.
        match self.ws.image_url(sample_id, Some(reference)) {
            Ok(Some((key, url, member))) => {
                ImageSource::Download(crate::figure_fetch::Item { key, url, member })
            }
            _ => ImageSource::Missing,
        }
    }

    fn decode(&self, path: &Path) -> ImageUpdate {
        ImageUpdate::Decoded(workers::decode_image(path, self.max_image_side).map(Arc::new))
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

/// Everything inline, on the caller's thread: for tests and the benchmark. It has no trainer
/// (training answers [`Msg::TrainingUnavailable`]) and downloads nothing.
pub struct SyncExecutor {
    pub store: SessionStore,
}

impl Executor for SyncExecutor {
    fn run(&mut self, effect: Effect) -> Option<Msg> {
        self.store.run_inline(effect)
    }
}

/// The review screen's executor: reads and commits inline (they take milliseconds, and a key
/// typed next must land on their result), the slow kinds on threads that answer over `to_ui`.
pub struct ThreadedExecutor {
    store: SessionStore,
    to_ui: Sender<Msg>,
    trainer: Trainer,
    workers: Workers,
}

impl ThreadedExecutor {
    /// Starts the trainer and the search, decode and download workers.
    pub fn start(
        store: SessionStore,
        to_ui: Sender<Msg>,
        trainer: TrainerSettings,
        fetch: crate::figure_fetch::FetchSettings,
    ) -> anyhow::Result<Self> {
        let trainer_tx = to_ui.clone();
        let trainer = Trainer::spawn(
            trainer,
            Box::new(move |event| {
                // The UI may be gone (quitting): nothing to report to then.
                let _ = trainer_tx.send(Msg::Trainer(event));
            }),
        );
        let search_ws = store.ws.reopen()?;
        let workers = Workers::start(to_ui.clone(), search_ws, fetch, store.max_image_side);
        // Decisions left waiting by an earlier session (sent at start if the workspace took them).
        if let Some(note) = store.waiting_note() {
            let _ = to_ui.send(Msg::Journal {
                note: Some(note),
                refused: None,
            });
        }
        let ticks = to_ui.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(JOURNAL_RETRY);
            // The UI is gone (quitting): so is the reason to tick.
            if ticks.send(Msg::Tick).is_err() {
                return;
            }
        });
        Ok(Self {
            store,
            to_ui,
            trainer,
            workers,
        })
    }

    fn export_in_background(&self, job: &ExportJob) -> Option<Msg> {
        let request = match self.store.export_request(job) {
            Ok(request) => request,
            Err(e) => return Some(Msg::ExportDone(Err(format!("{e:#}")))),
        };
        let tx = self.to_ui.clone();
        let dir = self.store.ws.location().to_path_buf();
        std::thread::spawn(move || {
            let progress = |p: crate::export::Progress| {
                let _ = tx.send(Msg::ExportProgress {
                    done: p.done,
                    total: p.total,
                });
            };
            let cancel = AtomicBool::new(false);
            let result = crate::export::run_in_dir(&dir, &request, &progress, &cancel)
                .map(|summary| export_summary(&summary))
                .map_err(|e| format!("{e:#}"));
            let _ = tx.send(Msg::ExportDone(result));
        });
        None
    }

    /// Who disagrees now reads every decision: on its own connection and thread. A workspace
    /// that cannot be reached just now is asked again at the next look.
    fn disagreements_in_background(&self) -> Option<Msg> {
        let tx = self.to_ui.clone();
        let dir = self.store.ws.location().to_path_buf();
        std::thread::spawn(move || {
            if let Ok(keys) =
                Workspace::open_existing(&dir).and_then(|ws| ws.disagreement_keys(true))
            {
                let _ = tx.send(Msg::Disagreements(keys.into_iter().collect()));
            }
        });
        None
    }

    /// The agreement panel reads every decision: on its own connection and thread.
    fn agreement_in_background(&self) -> Option<Msg> {
        let tx = self.to_ui.clone();
        let dir = self.store.ws.location().to_path_buf();
        std::thread::spawn(move || {
            let msg = Workspace::open_existing(&dir)
                .and_then(|ws| panel_lines(&ws))
                .map(Msg::Agreement)
                .unwrap_or_else(|e| Msg::Error(format!("{e:#}")));
            let _ = tx.send(msg);
        });
        None
    }
}

/// The `S` panel: for a curator, the agreement figures, then the team's status under a plan;
/// for a reviewer on a team server (blind review), their own status row.
fn panel_lines(ws: &Workspace) -> anyhow::Result<Vec<String>> {
    let curator = ws.is_curator()?;
    let planned = ws.team_plan()?.is_some();
    let mut lines = if curator {
        super::view::agreement_lines(&ws.agreement_report()?)
    } else {
        Vec::new()
    };
    if planned || !curator {
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(super::view::team_status_lines(&ws.team_status()?, planned));
    }
    Ok(lines)
}

impl Executor for ThreadedExecutor {
    fn run(&mut self, effect: Effect) -> Option<Msg> {
        match effect {
            Effect::Train => {
                self.trainer.request();
                None
            }
            Effect::CancelTraining => {
                self.trainer.cancel();
                None
            }
            Effect::Export(job) => self.export_in_background(&job),
            Effect::LoadAgreement => self.agreement_in_background(),
            Effect::LoadDisagreements => self.disagreements_in_background(),
            Effect::Search(query) => {
                self.workers.search(query);
                None
            }
            Effect::LoadImage {
                key,
                sample_id,
                reference,
            } => match self.store.image_source(&sample_id, &reference) {
                ImageSource::File(path) => {
                    self.workers.decode(key, path);
                    None
                }
                ImageSource::Download(item) => {
                    self.workers.download(key, item);
                    Some(Msg::Image {
                        key,
                        update: ImageUpdate::Downloading(reference),
                    })
                }
                ImageSource::Missing => Some(Msg::Image {
                    key,
                    update: ImageUpdate::NotFound(reference),
                }),
            },
            Effect::DecodeImage { key, path } => {
                self.workers.decode(key, path);
                None
            }
            Effect::AdjustFigure { key, view, figure } => {
                self.workers.adjust(key, view, figure);
                None
            }
            effect @ (Effect::Load(_)
            | Effect::Prefetch(_)
            | Effect::Refresh(_)
            | Effect::Record(_)
            | Effect::RecordTogether(_)
            | Effect::Undo
            | Effect::Redo
            | Effect::RetryJournal
            | Effect::Find(_)
            | Effect::FinalDecision { .. }
            | Effect::LoadGuidelines
            | Effect::Quit) => self.store.run_inline(effect),
        }
    }
}
