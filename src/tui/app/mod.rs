//! The review screen's state and its pure update function. `update` never touches the disk or the
//! terminal: it changes state and returns [`Effect`]s for the runtime to carry out; results come
//! back as [`Msg`]s. Every key can therefore be tested without a terminal or a database.

use crossterm::event::{KeyCode, KeyEvent};

use super::figure_view::{AdjustedCache, FigureView, Pan};
use super::keymap::{Action, Keymap, Scope};
use super::queue::Queue;
use super::sample_view::SampleView;
use super::score_rank::ScoreRanks;
use super::trainer::TrainerEvent;
use crate::store::{CurrentDecision, DecisionKind, NewDecision};

mod figure;
mod panels;

pub use figure::{DecodedCache, ImageSlot, ImageStatus, ImageUpdate, ZoomImage};
pub use panels::{ExportForm, ExportJob, SelectionPreview, TrainingView};

/// Every this many ticks (of 2 s), the queue's disagreement flags are read again, so another
/// reviewer's decisions show in the disagreements filter without a restart.
const TICKS_PER_TEAM_LOOK: u64 = 5;

/// What the app asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Load a sample (with this reviewer's decisions) and answer with [`Msg::Loaded`].
    Load(i64),
    /// Commit a decision, then answer with [`Msg::Saved`].
    Record(NewDecision),
    /// Withdraw this reviewer's latest decision, then answer with [`Msg::Undone`].
    Undo,
    /// Send the decisions waiting in the local journal; answer with [`Msg::Journal`].
    RetryJournal,
    /// Read which samples reviewers disagree on now (others decide meanwhile), off the UI
    /// thread; answer with [`Msg::Disagreements`].
    LoadDisagreements,
    /// Search sample text in the background; answer with [`Msg::SearchDone`].
    Search(String),
    /// Find a sample by its id; answer with [`Msg::Found`].
    Find(String),
    /// Reload the sample on screen (new scores) without moving focus; answer with [`Msg::Refreshed`].
    Refresh(i64),
    /// Ask the background trainer for a run (queued if one is running).
    Train,
    /// Stop the running training job.
    CancelTraining,
    /// Export in the background; answer with [`Msg::ExportProgress`] and [`Msg::ExportDone`].
    Export(ExportJob),
    /// Record a final (adjudicating) decision on an answer, then answer with [`Msg::FinalSaved`].
    FinalDecision {
        answer_id: i64,
        accepted: bool,
    },
    /// Compute the reviewers' agreement; answer with [`Msg::Agreement`].
    LoadAgreement,
    /// Find sample `key`'s figure (a local file, else the URL list) and decode or download it;
    /// answer with [`Msg::Image`].
    LoadImage {
        key: i64,
        sample_id: String,
        reference: String,
    },
    /// Decode a downloaded figure; answer with [`Msg::Image`].
    DecodeImage {
        key: i64,
        path: std::path::PathBuf,
    },
    /// Render sample `key`'s decoded `figure` as `view` shows it (zoomed part, contrast,
    /// brightness, inversion) off the UI thread; answer with [`Msg::Image`]
    /// ([`ImageUpdate::Adjusted`]).
    AdjustFigure {
        key: i64,
        view: FigureView,
        figure: std::sync::Arc<image::DynamicImage>,
    },
    Quit,
}

/// Inputs to the app: keys, and the results of effects.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    Loaded(Box<SampleView>),
    /// A decision was committed; the sample's decisions now in force.
    Saved {
        key: i64,
        decisions: Vec<CurrentDecision>,
        at: String,
    },
    /// An undo was committed on sample `key` (None: nothing left to undo).
    Undone {
        key: Option<i64>,
        decisions: Vec<CurrentDecision>,
        at: String,
    },
    SearchDone {
        query: String,
        keys: Vec<i64>,
    },
    Found {
        id: String,
        key: Option<i64>,
    },
    /// A decision is on this machine's disk (the local journal) but the workspace could not
    /// take it yet; the sample's decisions with it, and what the status line should say.
    SavedLocally {
        key: i64,
        decisions: Vec<CurrentDecision>,
        note: String,
    },
    /// The local journal after a retry: what still waits (None: nothing), and a decision the
    /// workspace refused outright.
    Journal {
        note: Option<String>,
        refused: Option<String>,
    },
    /// A timer: decisions waiting in the journal are tried again, and every few ticks the
    /// other reviewers' decisions are looked at.
    Tick,
    /// The samples with unresolved disagreements now.
    Disagreements(std::collections::HashSet<i64>),
    /// A decision could not be committed: it is not on disk.
    SaveFailed(String),
    Refreshed(Box<SampleView>),
    Trainer(TrainerEvent),
    /// Export progress: `done` of `total` samples written.
    ExportProgress {
        done: u64,
        total: u64,
    },
    /// The export finished (a summary line) or failed (the reason).
    ExportDone(Result<String, String>),
    /// The agreement panel's lines.
    Agreement(Vec<String>),
    /// A final decision was committed: the sample on screen is refreshed.
    FinalSaved,
    /// Training was asked for, but this session has no trainer.
    TrainingUnavailable,
    /// Progress on sample `key`'s figure.
    Image {
        key: i64,
        update: ImageUpdate,
    },
    /// Nothing changed in the app, but the screen is redrawn (a terminal resize, a resized image).
    Redraw,
    /// Something the reviewer should know from the start (how figures are drawn and why).
    Notice(String),
    /// The process was asked to end (SIGTERM, SIGHUP): quit like `q`, without asking.
    Terminate,
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Goto,
    Search,
    /// A note on this sample (kept with the sample it was started on, whatever loads meanwhile).
    Note(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Normal,
    Help,
    /// `r` was pressed: the next key 1–5 rates the focused round.
    Rating,
    /// The selection preview (`p`); any key closes it.
    Preview(SelectionPreview),
    /// The export form (`E`).
    Export(ExportForm),
    /// Decisions per reviewer and their agreement (`S`); any key closes it.
    Agreement(Vec<String>),
    Input {
        kind: InputKind,
        text: String,
    },
}

/// The agreement panel is computed in the background (`S`); it opens when it arrives only if no
/// key came in between, so it never swallows a key meant for a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementRequest {
    NotAsked,
    /// `S` was the last key pressed.
    Waiting,
}

pub struct App {
    pub reviewer: String,
    pub keymap: Keymap,
    pub queue: Queue,
    pub current: Option<SampleView>,
    pub focus_round: usize,
    /// Display position of the focused answer.
    pub focus_answer: usize,
    /// Extra lines scrolled in the rounds pane (PageUp/PageDown).
    pub scroll: u16,
    pub mode: Mode,
    pub auto_advance: bool,
    pub shuffle: bool,
    /// When the last decision was committed (shown in the status line).
    pub last_save: Option<String>,
    /// Decisions wait in the local journal: why and how many (the status line shows it).
    pub journal_note: Option<String>,
    /// Timer ticks so far (see [`Msg::Tick`]).
    ticks: u64,
    pub message: Option<String>,
    pub quitting: bool,
    pub training: TrainingView,
    /// Decisions since the last training request.
    pub decisions_since_train: usize,
    /// Train by itself after this many decisions (0: only on `T`).
    pub train_after: usize,
    /// Share of samples the selection keeps (for the `p` preview).
    pub top_percent: f64,
    /// The export form's starting values: selection, format, path.
    pub export_defaults: [String; 3],
    /// The running export's progress, shown in the status line.
    pub export_status: Option<String>,
    /// The last decision failed to save; shown until a save succeeds.
    pub save_error: Option<String>,
    /// Whether the agreement panel opens when its background computation arrives.
    pub agreement: AgreementRequest,
    /// The decision being saved is one the selector learns from (a verdict or preference).
    pub pending_trains: bool,
    /// `q` was pressed once while an export was running.
    pub quit_asked: bool,
    /// The figure of the sample on screen.
    pub image: ImageSlot,
    pub decoded: DecodedCache,
    /// The figure is shown over the whole screen (`z`).
    pub zoomed: bool,
    /// How each sample's figure is viewed full screen, for this session (never saved).
    pub figure_views: std::collections::HashMap<i64, FigureView>,
    /// The caption and mention are shown over the full-screen figure (`c`).
    pub caption_overlay: bool,
    /// What the full-screen figure shows, and the render asked for.
    pub zoom_image: ZoomImage,
    pub adjusted: AdjustedCache,
    /// The latest selector run's answer scores, for "top 12%" beside each answer.
    pub score_ranks: ScoreRanks,
}

impl App {
    pub fn new(
        reviewer: String,
        keymap: Keymap,
        queue: Queue,
        auto_advance: bool,
        shuffle: bool,
    ) -> Self {
        Self {
            reviewer,
            keymap,
            queue,
            current: None,
            focus_round: 0,
            focus_answer: 0,
            scroll: 0,
            mode: Mode::Normal,
            auto_advance,
            shuffle,
            last_save: None,
            journal_note: None,
            ticks: 0,
            message: None,
            quitting: false,
            training: TrainingView::default(),
            decisions_since_train: 0,
            train_after: 0,
            top_percent: 40.0,
            export_defaults: ["top:40%".into(), "llava".into(), "selection.json".into()],
            export_status: None,
            save_error: None,
            agreement: AgreementRequest::NotAsked,
            pending_trains: false,
            quit_asked: false,
            image: ImageSlot::default(),
            decoded: DecodedCache::default(),
            zoomed: false,
            figure_views: Default::default(),
            caption_overlay: false,
            zoom_image: ZoomImage::default(),
            adjusted: AdjustedCache::default(),
            score_ranks: ScoreRanks::default(),
        }
    }

    /// The view of sample `key`'s figure (the plain, fitted figure until changed).
    pub fn figure_view(&self, key: i64) -> FigureView {
        self.figure_views.get(&key).copied().unwrap_or_default()
    }

    /// The figure to draw now: the sheet's, or on the full-screen view the rendered view (the
    /// last one shown while a newer one is being rendered).
    pub fn figure_on_screen(&self) -> ImageStatus {
        if !self.zoomed {
            return self.image.status.clone();
        }
        match (&self.image.status, &self.zoom_image.shown) {
            (ImageStatus::Ready(_), Some((key, _, img))) if Some(*key) == self.image.key => {
                ImageStatus::Ready(img.clone())
            }
            (ImageStatus::Ready(_), _) => ImageStatus::Loading("the zoomed figure".into()),
            (other, _) => other.clone(),
        }
    }

    /// The full-screen figure shows an older view while the current one is rendered.
    pub fn zoom_pending(&self) -> bool {
        let Some(key) = self.image.key else {
            return false;
        };
        matches!(self.image.status, ImageStatus::Ready(_))
            && self
                .zoom_image
                .shown
                .as_ref()
                .is_none_or(|(k, v, _)| (*k, *v) != (key, self.figure_view(key)))
    }

    /// Resume where this reviewer stopped: the first sample they have not decided.
    pub fn start(&mut self) -> Vec<Effect> {
        self.queue.to_first_undecided();
        self.load_current()
    }

    /// The only place the app changes: applies `msg` and returns what the runtime is to do.
    pub fn update(&mut self, msg: Msg) -> Vec<Effect> {
        let mut effects = self.apply(msg);
        effects.extend(self.follow_image());
        effects.extend(self.follow_zoom());
        effects
    }

    fn apply(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Key(key) => self.on_key(key),
            Msg::Loaded(view) => {
                if Some(view.key()) == self.queue.current() {
                    // The stored state wins over the queue's (e.g. after an undo elsewhere).
                    self.queue
                        .update(view.key(), view.decided(), view.flagged());
                    self.focus_round = first_undecided_round(&view);
                    self.focus_answer = 0;
                    self.scroll = 0;
                    self.current = Some(*view);
                }
                vec![]
            }
            Msg::SaveFailed(why) => {
                self.pending_trains = false;
                self.save_error = Some(why);
                vec![]
            }
            Msg::Saved { key, decisions, at } => {
                self.last_save = Some(at);
                self.save_error = None;
                self.journal_note = None;
                if std::mem::take(&mut self.pending_trains) {
                    self.decisions_since_train += 1;
                }
                let mut effects = self.apply_decisions(key, decisions, true);
                if self.train_after > 0 && self.decisions_since_train >= self.train_after {
                    effects.extend(self.request_training());
                }
                effects
            }
            Msg::SavedLocally {
                key,
                decisions,
                note,
            } => {
                self.save_error = None;
                self.journal_note = Some(note);
                if std::mem::take(&mut self.pending_trains) {
                    self.decisions_since_train += 1;
                }
                self.apply_decisions(key, decisions, true)
            }
            Msg::Journal { note, refused } => {
                if self.journal_note.is_some() && note.is_none() {
                    self.message = Some("every decision is stored in the workspace".into());
                }
                self.journal_note = note;
                if let Some(why) = refused {
                    self.save_error = Some(why);
                }
                vec![]
            }
            Msg::Tick => {
                self.ticks += 1;
                let mut effects = Vec::new();
                if self.journal_note.is_some() {
                    effects.push(Effect::RetryJournal);
                }
                if self.ticks.is_multiple_of(TICKS_PER_TEAM_LOOK) {
                    effects.push(Effect::LoadDisagreements);
                }
                effects
            }
            Msg::Disagreements(keys) => {
                self.queue.set_disagreements(&keys);
                vec![]
            }
            Msg::Refreshed(view) => {
                if let Some(current) = self.current.as_mut().filter(|c| c.key() == view.key()) {
                    current.selector_scores = view.selector_scores;
                    current.judge_scores = view.judge_scores;
                    current.others = view.others;
                    current.decisions = view.decisions;
                    let (key, conflict) = (current.key(), current.unresolved_conflict());
                    self.queue.set_disagreement(key, conflict);
                }
                vec![]
            }
            Msg::Trainer(event) => self.on_trainer(event),
            Msg::ExportProgress { done, total } => {
                let percent = (100 * done).checked_div(total).unwrap_or(0);
                self.export_status = Some(format!("exporting {percent}%"));
                vec![]
            }
            Msg::ExportDone(result) => {
                self.export_status = None;
                self.message = Some(match result {
                    Ok(summary) => summary,
                    Err(why) => format!("export failed: {why}"),
                });
                vec![]
            }
            Msg::Agreement(lines) => {
                // Computed in the background: it opens only if no key came since S, so it never
                // swallows a key meant for a decision.
                if self.mode == Mode::Normal && self.agreement == AgreementRequest::Waiting {
                    self.agreement = AgreementRequest::NotAsked;
                    self.mode = Mode::Agreement(lines);
                    self.message = None;
                } else {
                    self.message = Some("agreement ready: press S again".into());
                }
                vec![]
            }
            Msg::Undone { key, decisions, at } => match key {
                None => {
                    self.message = Some("nothing to undo".into());
                    vec![]
                }
                Some(key) => {
                    self.last_save = Some(at);
                    self.message = Some("undone".into());
                    if self.current.as_ref().map(SampleView::key) == Some(key) {
                        let mut effects = self.apply_decisions(key, decisions, false);
                        // Others' verdicts (a withdrawn final decision) come back with a refresh.
                        effects.push(Effect::Refresh(key));
                        effects
                    } else {
                        // The undone decision was on another sample: go there so it can be seen.
                        self.queue.jump_to(key);
                        self.load_current()
                    }
                }
            },
            Msg::SearchDone { query, keys } => {
                self.message = Some(format!("{} sample(s) match \"{query}\"", keys.len()));
                self.queue.set_search(Some((query, keys)));
                self.load_current()
            }
            Msg::Found { id, key } => match key {
                Some(key) if self.queue.jump_to(key) => self.load_current(),
                _ => {
                    self.message = Some(format!("no sample with id `{id}`"));
                    vec![]
                }
            },
            Msg::FinalSaved => self
                .current
                .as_ref()
                .map(|v| vec![Effect::Refresh(v.key())])
                .unwrap_or_default(),
            Msg::TrainingUnavailable => {
                self.message = Some("training is not available in this session".into());
                vec![]
            }
            Msg::Image { key, update } => self.on_image(key, update),
            Msg::Redraw => vec![],
            Msg::Notice(text) => {
                self.message = Some(text);
                vec![]
            }
            Msg::Terminate => {
                self.quitting = true;
                vec![]
            }
            Msg::Error(e) => {
                self.message = Some(format!("error: {e}"));
                vec![]
            }
        }
    }

    /// When the sample on screen changes, asks for its figure (or says why there is none).
    fn follow_image(&mut self) -> Vec<Effect> {
        let key = self.current.as_ref().map(SampleView::key);
        if key == self.image.key {
            return vec![];
        }
        self.image.key = key;
        let Some(view) = &self.current else {
            self.image.status = ImageStatus::Placeholder(String::new());
            return vec![];
        };
        if let Some(img) = self.decoded.get(view.key()) {
            self.image.status = ImageStatus::Ready(img.clone());
            return vec![];
        }
        match view.stored.sample.image.as_deref() {
            None => {
                self.image.status =
                    ImageStatus::Placeholder("no image in the data for this figure".into());
                vec![]
            }
            Some(reference) => {
                self.image.status = ImageStatus::Loading(reference.to_string());
                vec![Effect::LoadImage {
                    key: view.key(),
                    sample_id: view.stored.sample.id.clone(),
                    reference: reference.to_string(),
                }]
            }
        }
    }

    /// On the full-screen view, shows the current view of the figure: at once when it is plain
    /// or was rendered before, else asks a worker to render it (once).
    fn follow_zoom(&mut self) -> Vec<Effect> {
        let (true, Some(key), ImageStatus::Ready(figure)) =
            (self.zoomed, self.image.key, &self.image.status)
        else {
            return vec![];
        };
        let view = self.figure_view(key);
        let shown = &self.zoom_image.shown;
        if shown
            .as_ref()
            .is_some_and(|(k, v, _)| (*k, *v) == (key, view))
        {
            return vec![];
        }
        let ready = if view.is_plain() {
            Some(figure.clone())
        } else {
            self.adjusted.get(key, &view).cloned()
        };
        if let Some(img) = ready {
            self.zoom_image.shown = Some((key, view, img));
            return vec![];
        }
        if self.zoom_image.requested == Some((key, view)) {
            return vec![];
        }
        self.zoom_image.requested = Some((key, view));
        vec![Effect::AdjustFigure {
            key,
            view,
            figure: figure.clone(),
        }]
    }

    fn on_image(&mut self, key: i64, update: ImageUpdate) -> Vec<Effect> {
        // A decoded figure is kept even when the reviewer has moved on: going back shows it.
        if let ImageUpdate::Decoded(Ok(img)) = &update {
            self.decoded.insert(key, img.clone());
        }
        if let ImageUpdate::Adjusted { view, image } = update {
            // Shown by `follow_zoom` if it is still the view asked for; kept for stepping back.
            self.adjusted.insert(key, view, image);
            if self.zoom_image.requested == Some((key, view)) {
                self.zoom_image.requested = None;
            }
            return vec![];
        }
        if self.image.key != Some(key) {
            return vec![];
        }
        let (status, effects) = match update {
            ImageUpdate::Downloading(reference) => (
                ImageStatus::Loading(format!("downloading {reference}")),
                vec![],
            ),
            ImageUpdate::NotFound(reference) => (
                ImageStatus::Placeholder(format!(
                    "image not found: {reference}\n(import with --images DIR, or run `vital fetch-images`)"
                )),
                vec![],
            ),
            ImageUpdate::Downloaded(Ok(path)) => (
                ImageStatus::Loading("the downloaded image".into()),
                vec![Effect::DecodeImage { key, path }],
            ),
            ImageUpdate::Downloaded(Err(why)) => (
                ImageStatus::Placeholder(format!("download failed: {why}")),
                vec![],
            ),
            ImageUpdate::Decoded(Ok(img)) => (ImageStatus::Ready(img), vec![]),
            ImageUpdate::Decoded(Err(why)) => (ImageStatus::Placeholder(why), vec![]),
            ImageUpdate::Adjusted { .. } => return vec![],
        };
        self.image.status = status;
        effects
    }

    fn request_training(&mut self) -> Vec<Effect> {
        self.decisions_since_train = 0;
        if self.training.running {
            self.training.queued = true;
            self.message = Some("training queued: it starts when the current run ends".into());
        } else {
            self.training.status = "starting…".into();
        }
        vec![Effect::Train]
    }

    fn on_trainer(&mut self, event: TrainerEvent) -> Vec<Effect> {
        let t = &mut self.training;
        match event {
            TrainerEvent::Started { backend, notice } => {
                t.running = true;
                t.queued = false;
                t.backend = backend;
                if let Some(notice) = notice {
                    self.message = Some(notice);
                }
                t.epoch = 0;
                t.loss = None;
                t.status = "training".into();
                vec![]
            }
            TrainerEvent::Embedding { done, total } => {
                t.status = format!("embedding new texts {done}/{total}");
                vec![]
            }
            TrainerEvent::Progress {
                epoch,
                epochs,
                loss,
                validation,
            } => {
                t.status = "training".into();
                t.epoch = epoch;
                t.epochs = epochs;
                t.loss = Some(loss);
                if validation.is_some() {
                    t.validation = validation;
                }
                vec![]
            }
            TrainerEvent::Cancelled => {
                t.running = false;
                t.queued = false;
                t.status = "cancelled".into();
                vec![]
            }
            TrainerEvent::Failed(why) => {
                t.running = false;
                t.status = format!("failed: {why}");
                vec![]
            }
            TrainerEvent::Done(outcome) => {
                t.running = t.queued;
                t.last_run = Some(outcome.run_id);
                t.backend = outcome.backend;
                t.human_pairs = outcome.human_pairs;
                t.judge_pairs = outcome.judge_pairs;
                t.validation = outcome.validation;
                if let Some(v) = &t.validation {
                    t.history.push(v.alignment_rate);
                }
                t.status = format!(
                    "run {} scored {} answers",
                    outcome.run_id, outcome.scored_answers
                );
                self.score_ranks = outcome.score_ranks;
                // New scores re-rank the queue; the sample on screen stays where it is.
                self.queue.set_signals(&outcome.signals);
                self.current
                    .as_ref()
                    .map(|v| vec![Effect::Refresh(v.key())])
                    .unwrap_or_default()
            }
        }
    }

    fn load_current(&mut self) -> Vec<Effect> {
        match self.queue.current() {
            Some(key) if self.current.as_ref().map(SampleView::key) != Some(key) => {
                self.current = None;
                vec![Effect::Load(key)]
            }
            Some(_) => vec![],
            None => {
                self.current = None;
                vec![]
            }
        }
    }

    fn apply_decisions(
        &mut self,
        key: i64,
        decisions: Vec<CurrentDecision>,
        may_advance: bool,
    ) -> Vec<Effect> {
        let Some(view) = self.current.as_mut().filter(|v| v.key() == key) else {
            return vec![];
        };
        let was_decided = view.decided();
        view.decisions = decisions;
        let decided = view.decided();
        let flagged = view.flagged();
        self.queue.update(key, decided, flagged);
        if may_advance && self.auto_advance && decided && !was_decided && self.queue.advance() {
            self.message = Some("sample decided: next".into());
            return self.load_current();
        }
        vec![]
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        // Any key after `S` means the reviewer moved on: the panel no longer opens by itself.
        self.agreement = AgreementRequest::NotAsked;
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Help | Mode::Preview(_) | Mode::Agreement(_) => vec![],
            Mode::Export(form) => self.on_export_key(form, key),
            Mode::Rating => self.on_rating_key(key),
            Mode::Input { kind, text } => self.on_input_key(kind, text, key),
            Mode::Normal => {
                self.message = None;
                let scope = if self.zoomed {
                    Scope::Figure
                } else {
                    Scope::Sheet
                };
                match self.keymap.action_in(scope, &key) {
                    Some(action) => self.on_action(action),
                    None if key.code == KeyCode::Esc && self.queue.search_text().is_some() => {
                        self.queue.set_search(None);
                        self.message = Some("search cleared".into());
                        self.load_current()
                    }
                    None if key.code == KeyCode::Esc && self.training.running => {
                        self.training.status = "cancelling…".into();
                        vec![Effect::CancelTraining]
                    }
                    None => vec![],
                }
            }
        }
    }

    fn on_rating_key(&mut self, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Char(c @ '1'..='5') => {
                self.round_decision(DecisionKind::Rate, Some(c.to_string()))
            }
            _ => {
                self.message = Some("rating cancelled".into());
                vec![]
            }
        }
    }

    fn on_export_key(&mut self, mut form: ExportForm, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => return vec![],
            KeyCode::Tab | KeyCode::Down => form.focus = (form.focus + 1) % 3,
            KeyCode::BackTab | KeyCode::Up => form.focus = (form.focus + 2) % 3,
            KeyCode::Backspace => {
                form.fields[form.focus].pop();
            }
            KeyCode::Char(c) => form.fields[form.focus].push(c),
            KeyCode::Enter => {
                let job = form.request().and_then(|job| match self.export_status {
                    Some(_) => Err("an export is already running".to_string()),
                    None => Ok(job),
                });
                match job {
                    Ok(job) => {
                        self.export_defaults = form.fields.clone();
                        self.export_status = Some("exporting…".into());
                        return vec![Effect::Export(job)];
                    }
                    Err(problem) => {
                        form.error = Some(problem);
                        self.mode = Mode::Export(form);
                        return vec![];
                    }
                }
            }
            _ => {}
        }
        form.error = None;
        self.mode = Mode::Export(form);
        vec![]
    }

    fn on_input_key(&mut self, kind: InputKind, mut text: String, key: KeyEvent) -> Vec<Effect> {
        match key.code {
            KeyCode::Esc => vec![],
            KeyCode::Enter => match kind {
                InputKind::Goto if !text.trim().is_empty() => {
                    vec![Effect::Find(text.trim().to_string())]
                }
                InputKind::Search if text.trim().is_empty() => {
                    self.queue.set_search(None);
                    self.load_current()
                }
                InputKind::Search => {
                    let query = text.trim().to_string();
                    self.message = Some(format!("searching \"{query}\"…"));
                    vec![Effect::Search(query)]
                }
                InputKind::Note(sample_key) => vec![Effect::Record(NewDecision {
                    sample_key,
                    round_id: None,
                    answer_id: None,
                    kind: DecisionKind::Note,
                    value: Some(text),
                    shown_order: None,
                })],
                InputKind::Goto => vec![],
            },
            KeyCode::Backspace => {
                text.pop();
                self.mode = Mode::Input { kind, text };
                vec![]
            }
            KeyCode::Char(c) => {
                text.push(c);
                self.mode = Mode::Input { kind, text };
                vec![]
            }
            _ => {
                self.mode = Mode::Input { kind, text };
                vec![]
            }
        }
    }

    fn on_action(&mut self, action: Action) -> Vec<Effect> {
        match action {
            // Quitting ends a background export (its file is never half-written, but it is not
            // written either): ask once.
            Action::Quit if self.export_status.is_some() && !self.quit_asked => {
                self.quit_asked = true;
                self.message =
                    Some("an export is running: press q again to quit and abandon it".into());
                vec![]
            }
            Action::Quit => {
                self.quitting = true;
                vec![Effect::Quit]
            }
            Action::Help => {
                self.mode = Mode::Help;
                vec![]
            }
            Action::NextSample => {
                if !self.queue.advance() {
                    self.message = Some("last sample in the queue".into());
                }
                self.load_current()
            }
            Action::PrevSample => {
                if !self.queue.back() {
                    self.message = Some("first sample in the queue".into());
                }
                self.load_current()
            }
            Action::Filter => {
                self.queue.cycle_filter();
                self.message = Some(format!("filter: {}", self.queue.filter().label()));
                self.load_current()
            }
            Action::Goto => self.input(InputKind::Goto, String::new()),
            Action::Search => self.input(
                InputKind::Search,
                self.queue.search_text().unwrap_or_default().to_string(),
            ),
            Action::Undo => vec![Effect::Undo],
            Action::Train => self.request_training(),
            Action::Order => {
                let order = self.queue.order().next();
                self.queue.set_order(order);
                let note = if self.queue.scored() == 0
                    && order != super::queue::Order::File
                    && order != super::queue::Order::Random
                {
                    " (no selector scores yet: press T)"
                } else {
                    ""
                };
                self.message = Some(format!("order: {}{note}", order.label()));
                vec![]
            }
            Action::Export => {
                self.mode = Mode::Export(ExportForm {
                    fields: self.export_defaults.clone(),
                    focus: 0,
                    error: None,
                });
                vec![]
            }
            Action::Agreement => {
                self.agreement = AgreementRequest::Waiting;
                self.message = Some("computing agreement…".into());
                vec![Effect::LoadAgreement]
            }
            Action::Preview => {
                self.mode = Mode::Preview(SelectionPreview::compute(&self.queue, self.top_percent));
                vec![]
            }
            Action::ScrollDown => {
                self.scroll = self.scroll.saturating_add(5);
                vec![]
            }
            Action::ScrollUp => {
                self.scroll = self.scroll.saturating_sub(5);
                vec![]
            }
            Action::ZoomClose => {
                self.zoomed = false;
                vec![]
            }
            Action::Zoom if self.zoomed => {
                self.zoomed = false;
                vec![]
            }
            Action::CaptionOverlay => {
                self.caption_overlay = !self.caption_overlay;
                vec![]
            }
            _ if self.current.is_none() => {
                self.message = Some("no sample on screen".into());
                vec![]
            }
            Action::NextRound => {
                self.move_round(1);
                vec![]
            }
            Action::PrevRound => {
                self.move_round(-1);
                vec![]
            }
            Action::NextAnswer => {
                self.move_answer(1);
                vec![]
            }
            Action::PrevAnswer => {
                self.move_answer(-1);
                vec![]
            }
            Action::Accept => self.verdict(DecisionKind::Accept),
            Action::Reject => self.verdict(DecisionKind::Reject),
            Action::Prefer1 => self.prefer(0),
            Action::Prefer2 => self.prefer(1),
            Action::Tie => self.round_decision(DecisionKind::Tie, None),
            Action::Rate => {
                if self.focused_round_has_answers() {
                    self.mode = Mode::Rating;
                    self.message = Some("rate the round: 1-5 (any other key cancels)".into());
                }
                vec![]
            }
            Action::Flag => {
                let flagged = self.current.as_ref().is_some_and(SampleView::flagged);
                self.sample_decision(
                    DecisionKind::Flag,
                    Some(if flagged { "0" } else { "1" }.into()),
                )
            }
            Action::FinalAccept | Action::FinalReject => {
                // Final decisions overrule reviewers: only where they are being adjudicated.
                if self.queue.filter() != &super::queue::Filter::Disagreements {
                    self.message = Some(
                        "final decisions resolve disagreements: press F until the filter is disagreements".into(),
                    );
                    return vec![];
                }
                if !self.focused_round_has_answers() {
                    return vec![];
                }
                let view = self.current.as_ref().expect("checked above");
                match view.answer_at(self.focus_round, self.focus_answer) {
                    Some(answer_id) => {
                        vec![Effect::FinalDecision {
                            answer_id,
                            accepted: action == Action::FinalAccept,
                        }]
                    }
                    None => vec![],
                }
            }
            Action::Demo => {
                let demo = self.current.as_ref().is_some_and(SampleView::is_demo);
                self.message = Some(
                    if demo {
                        "no longer a demonstration"
                    } else {
                        "marked as a demonstration"
                    }
                    .into(),
                );
                self.sample_decision(
                    DecisionKind::Demo,
                    Some(if demo { "0" } else { "1" }.into()),
                )
            }
            Action::Zoom => {
                self.zoomed = true;
                vec![]
            }
            Action::ZoomIn => self.change_view(|v| v.zoom_by(1), "8× is the closest view"),
            Action::ZoomOut => self.change_view(|v| v.zoom_by(-1), "the whole figure is shown"),
            Action::ZoomFit => self.change_view(
                |v| {
                    let before = *v;
                    v.fit();
                    *v != before
                },
                "the whole figure is shown",
            ),
            Action::PanLeft => self.pan(Pan::Left),
            Action::PanRight => self.pan(Pan::Right),
            Action::PanUp => self.pan(Pan::Up),
            Action::PanDown => self.pan(Pan::Down),
            Action::ContrastUp => self.change_view(|v| v.contrast_by(1), "most contrast"),
            Action::ContrastDown => self.change_view(|v| v.contrast_by(-1), "least contrast"),
            Action::BrightnessUp => self.change_view(|v| v.brightness_by(1), "brightest"),
            Action::BrightnessDown => self.change_view(|v| v.brightness_by(-1), "darkest"),
            Action::Invert => self.change_view(
                |v| {
                    v.invert = !v.invert;
                    true
                },
                "",
            ),
            Action::Note => {
                let note = self
                    .current
                    .as_ref()
                    .and_then(SampleView::note)
                    .unwrap_or_default()
                    .to_string();
                let key = self.current.as_ref().map_or(0, SampleView::key);
                self.input(InputKind::Note(key), note)
            }
        }
    }

    /// Changes the figure view of the sample on screen (only on the full-screen view); `limit`
    /// is said when nothing changed. The new view is rendered by `follow_zoom`.
    fn change_view(
        &mut self,
        change: impl FnOnce(&mut FigureView) -> bool,
        limit: &str,
    ) -> Vec<Effect> {
        let Some(key) = self
            .current
            .as_ref()
            .map(SampleView::key)
            .filter(|_| self.zoomed)
        else {
            return vec![];
        };
        let mut view = self.figure_view(key);
        if change(&mut view) {
            self.figure_views.insert(key, view);
        } else if !limit.is_empty() {
            self.message = Some(limit.into());
        }
        vec![]
    }

    fn pan(&mut self, direction: Pan) -> Vec<Effect> {
        let zoomed_in = self
            .current
            .as_ref()
            .is_some_and(|v| self.figure_view(v.key()).zoom > 0);
        let limit = if zoomed_in {
            "the edge of the figure"
        } else {
            "zoom in (+) to pan"
        };
        self.change_view(|v| v.pan(direction), limit)
    }

    fn input(&mut self, kind: InputKind, text: String) -> Vec<Effect> {
        self.mode = Mode::Input { kind, text };
        vec![]
    }

    fn move_round(&mut self, delta: isize) {
        let Some(view) = &self.current else { return };
        let last = view.rounds().saturating_sub(1);
        self.focus_round = (self.focus_round as isize + delta).clamp(0, last as isize) as usize;
        self.focus_answer = self
            .focus_answer
            .min(view.order[self.focus_round].len().saturating_sub(1));
        self.scroll = 0;
    }

    fn move_answer(&mut self, delta: isize) {
        let Some(view) = &self.current else { return };
        let n = view.order.get(self.focus_round).map_or(0, Vec::len);
        if n > 0 {
            self.focus_answer =
                (self.focus_answer as isize + delta).rem_euclid(n as isize) as usize;
        }
    }

    fn focused_round_has_answers(&mut self) -> bool {
        let has = self
            .current
            .as_ref()
            .is_some_and(|v| !v.order[self.focus_round].is_empty());
        if !has {
            self.message = Some("this question has no answer to judge".into());
        }
        has
    }

    fn verdict(&mut self, kind: DecisionKind) -> Vec<Effect> {
        if !self.focused_round_has_answers() {
            return vec![];
        }
        let view = self.current.as_ref().expect("checked above");
        let (r, d) = (self.focus_round, self.focus_answer);
        let decision = NewDecision {
            sample_key: view.key(),
            round_id: Some(view.stored.round_ids[r]),
            answer_id: view.answer_at(r, d),
            kind,
            value: None,
            shown_order: Some(view.shown_order(r)),
        };
        // Move on to the next answer, then the next round, so a sheet is marked with a, x, a, x…
        if d + 1 < view.order[r].len() {
            self.focus_answer += 1;
        } else if r + 1 < view.rounds() {
            self.focus_round += 1;
            self.focus_answer = 0;
            self.scroll = 0;
        }
        self.pending_trains = true;
        vec![Effect::Record(decision)]
    }

    fn prefer(&mut self, display: usize) -> Vec<Effect> {
        if !self.focused_round_has_answers() {
            return vec![];
        }
        let view = self.current.as_ref().expect("checked above");
        match view.answer_at(self.focus_round, display) {
            Some(answer) if view.order[self.focus_round].len() >= 2 => {
                self.round_decision(DecisionKind::Prefer, Some(answer.to_string()))
            }
            _ => {
                self.message = Some(format!("no answer {} to prefer in this round", display + 1));
                vec![]
            }
        }
    }

    fn round_decision(&mut self, kind: DecisionKind, value: Option<String>) -> Vec<Effect> {
        let Some(view) = &self.current else {
            return vec![];
        };
        let r = self.focus_round;
        self.pending_trains = matches!(kind, DecisionKind::Prefer | DecisionKind::Tie);
        vec![Effect::Record(NewDecision {
            sample_key: view.key(),
            round_id: Some(view.stored.round_ids[r]),
            answer_id: None,
            kind,
            value,
            shown_order: Some(view.shown_order(r)),
        })]
    }

    fn sample_decision(&mut self, kind: DecisionKind, value: Option<String>) -> Vec<Effect> {
        let Some(view) = &self.current else {
            return vec![];
        };
        vec![Effect::Record(NewDecision {
            sample_key: view.key(),
            round_id: None,
            answer_id: None,
            kind,
            value,
            shown_order: None,
        })]
    }
}

fn first_undecided_round(view: &SampleView) -> usize {
    (0..view.rounds())
        .find(|&r| !view.stored.answer_ids[r].is_empty() && !view.round_decided(r))
        .unwrap_or(0)
}
