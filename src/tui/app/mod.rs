//! The review screen's state and its pure update function. `update` never touches the disk or the
//! terminal: it changes state and returns [`Effect`]s for the runtime to carry out; results come
//! back as [`Msg`]s. Every key can therefore be tested without a terminal or a database.
//!
//! Where a key's behaviour lives: `keys.rs` reads it in the mode it arrives in (the review
//! screen's keymap, the rating prompt, the export form, a text input) and turns it into an
//! action; `actions.rs` has one arm per action, calling into the file of its family:
//! `decisions.rs` (✓/✗, preferences, round and sample decisions), `navigation.rs` (queue, rounds,
//! answers), `images.rs` (the figure and its full-screen view), `training.rs` (the background
//! trainer). `messages.rs` applies what the runtime and its workers send back; `panels.rs` and
//! `figure.rs` hold the panels' and the figure's state.

use crossterm::event::{KeyCode, KeyEvent};

use super::figure_view::{AdjustedCache, FigureView, Pan};
use super::keymap::{Action, Keymap, Scope};
use super::queue::Queue;
use super::sample_view::SampleView;
use super::score_rank::ScoreRanks;
use super::trainer::TrainerEvent;
use crate::store::{CurrentDecision, DecisionKind, NewDecision};

mod actions;
mod decisions;
mod edits;
mod figure;
mod images;
mod keys;
mod messages;
mod navigation;
mod panels;
mod training;

pub use edits::{EditState, EditTarget, ExternalEdit, NoteState, ReasonTarget, OTHER_REASON};
pub use figure::{DecodedCache, ImageSlot, ImageStatus, ImageUpdate, ZoomImage};
pub use panels::{ExportForm, ExportJob, SelectionPreview, TrainingView};

/// Every this many ticks (of 2 s), the queue's disagreement flags are read again, so another
/// reviewer's decisions show in the disagreements filter without a restart.
const TICKS_PER_TEAM_LOOK: u64 = 5;

/// How many samples after the one on screen are read ahead, for a dropped connection.
pub const READ_AHEAD: usize = 3;

/// What the app asks the runtime to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Load a sample (with this reviewer's decisions) and answer with [`Msg::Loaded`].
    Load(i64),
    /// Read these samples ahead (the next in the queue), so they can be shown and decided while
    /// the workspace cannot be reached; answers nothing.
    Prefetch(Vec<i64>),
    /// Commit a decision, then answer with [`Msg::Saved`].
    Record(NewDecision),
    /// Commit decisions that one key made (an edit and the ✗ it implies), undone together.
    RecordTogether(Vec<NewDecision>),
    /// Withdraw this reviewer's latest decision, then answer with [`Msg::Undone`].
    Undo,
    /// Record again what the last undo took back; answer as [`Effect::Record`] does.
    Redo,
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
    /// Read the guidelines in force; answer with [`Msg::Guidelines`].
    LoadGuidelines,
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
        /// What was taken back, in words ("your ✓"), when known.
        what: Option<String>,
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
    /// The guidelines in force now (None: none stored).
    Guidelines(Option<crate::store::Guidelines>),
    /// Training was asked for, but this session has no trainer.
    TrainingUnavailable,
    /// Progress on sample `key`'s figure.
    Image {
        key: i64,
        update: ImageUpdate,
    },
    /// Nothing changed in the app, but the screen is redrawn (a resized image).
    Redraw,
    /// The terminal's size now (at start and on every resize).
    Resized(u16, u16),
    /// Something the reviewer should know from the start (how figures are drawn and why).
    Notice(String),
    /// The team plan does not serve sample `key` to this reviewer now (others hold or finished
    /// its places, or the reviewer reached their cap): it leaves their queue.
    NotServed(i64),
    /// A gold check is due, or a split sample waits for an extra reviewer: `view` is shown in
    /// place of sample `asked` (which stays in the queue, right after it).
    Instead {
        asked: i64,
        view: Box<SampleView>,
    },
    /// Text pasted into the terminal (bracketed paste).
    Paste(String),
    /// The reviewer's `$VISUAL`/`$EDITOR` returned: the file's text, or why there is none.
    ExternalEditDone {
        target: EditTarget,
        result: Result<String, String>,
    },
    /// The process was asked to end (SIGTERM, SIGHUP): quit like `q`, without asking.
    Terminate,
    Error(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Goto,
    Search,
    /// The free text of an "other" reason for a ✗.
    ReasonOther(ReasonTarget),
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
    /// The guidelines in force (`G`, at a reviewer's first start and after each change):
    /// j/k/PageUp/PageDown scroll, any other key closes.
    Guidelines,
    Input {
        kind: InputKind,
        text: String,
    },
    /// The in-place editor on an answer (`e`).
    Edit(Box<EditState>),
    /// The note editor on the sample (`n`).
    Note(Box<NoteState>),
    /// Picking why an answer is ✗ (`R`).
    Reason(ReasonTarget),
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
    /// The samples last asked to be read ahead ([`Effect::Prefetch`]).
    prefetched: Vec<i64>,
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
    /// The reasons offered for a ✗ (`review.reasons`; "other" comes after them).
    pub reasons: Vec<String>,
    /// How far the help is scrolled.
    pub help_scroll: u16,
    /// `review.require_figure`: no decision while the figure is not on screen.
    pub require_figure: bool,
    /// The answer the last key rejected: `R` right after `x` gives it a reason.
    pub last_rejected: Option<ReasonTarget>,
    /// Edited answers show their original text too (`D`).
    pub show_original: bool,
    /// An edit in `$VISUAL`/`$EDITOR` the runtime is to run (it owns the terminal).
    pub external_edit: Option<ExternalEdit>,
    /// The terminal's width, for laying the editor's text out as the view draws it.
    pub screen_width: u16,
    /// `vital review --adjudicate`: the queue holds the samples awaiting a final decision
    /// (filter `disagreements`), each answer shows every reviewer's verdict, reason,
    /// correction and time, and a sample whose conflicts are all resolved leaves the queue.
    pub adjudicating: bool,
    /// The guidelines in force as last read (shown by `G`).
    pub guidelines: Option<crate::store::Guidelines>,
    /// How far the guidelines are scrolled.
    pub guidelines_scroll: u16,
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
            prefetched: Vec::new(),
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
            reasons: Vec::new(),
            require_figure: false,
            help_scroll: 0,
            last_rejected: None,
            show_original: false,
            external_edit: None,
            screen_width: 80,
            adjudicating: false,
            guidelines: None,
            guidelines_scroll: 0,
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

    /// Whether the sample's figure is on the reviewer's screen now.
    pub fn figure_shown(&self) -> bool {
        matches!(self.figure_on_screen(), ImageStatus::Ready(_))
    }

    /// Why the figure is not on screen, in plain words (None while it is).
    pub fn figure_not_shown(&self) -> Option<String> {
        let why = match self.figure_on_screen() {
            ImageStatus::Ready(_) => return None,
            ImageStatus::Loading(what) => format!("loading {what}"),
            ImageStatus::Placeholder(why) if why.is_empty() => "no figure".to_string(),
            ImageStatus::Placeholder(why) => why.lines().next().unwrap_or_default().to_string(),
        };
        Some(format!("figure not shown ({why})"))
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
        // Whether the figure was on screen when the key was pressed (a decision may load the
        // next sample, whose figure is not there yet).
        let shown = self.figure_shown();
        let mut effects = self.apply(msg);
        for effect in &mut effects {
            let decisions = match effect {
                Effect::Record(d) => std::slice::from_mut(d),
                Effect::RecordTogether(ds) => ds.as_mut_slice(),
                _ => continue,
            };
            for d in decisions {
                d.figure_shown.get_or_insert(shown);
            }
        }
        effects.extend(self.follow_image());
        effects.extend(self.follow_zoom());
        effects
    }
}
