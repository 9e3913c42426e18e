//! The review screen's background trainer: one job running, at most one queued (a request while
//! one runs is queued once, not doubled), cancellable. It trains on its own workspace connection,
//! scores everything, and reports through a callback; the UI thread applies the results.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::score_rank::ScoreRanks;
use crate::selector::{BackendKind, Cancelled, Metrics};
use crate::selector_runs::{
    self, EarlierChoice, RunOptions, RunProgress, RunSettings, SampleScore,
};
use crate::store::{RankSignals, Workspace};

/// What the trainer reports.
#[derive(Debug, Clone, PartialEq)]
pub enum TrainerEvent {
    Started {
        backend: String,
        /// Why the run trains elsewhere than the settings say (the GPU backend cannot run on
        /// this machine, so the CPU trains instead).
        notice: Option<String>,
    },
    /// The run's encoder embeds texts its cache lacks (new imports) before training.
    Embedding {
        done: usize,
        total: usize,
    },
    Progress {
        epoch: usize,
        epochs: usize,
        loss: f32,
        validation: Option<Metrics>,
    },
    Done(Box<TrainOutcome>),
    Cancelled,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TrainOutcome {
    pub run_id: i64,
    pub backend: String,
    pub human_pairs: usize,
    pub judge_pairs: usize,
    pub validation: Option<Metrics>,
    pub scored_answers: usize,
    pub signals: HashMap<i64, RankSignals>,
    /// The run's answer scores, for percentiles beside the answers.
    pub score_ranks: ScoreRanks,
    /// `head = auto`'s choice for the next runs to reuse: this run's when it measured one, else
    /// the one it reused (see `selector_runs::EarlierChoice`).
    pub head_choice: Option<EarlierChoice>,
}

#[derive(Debug, Clone)]
pub struct TrainerSettings {
    pub workspace: PathBuf,
    pub run: RunSettings,
    pub sample_score: SampleScore,
}

pub struct Trainer {
    requests: Sender<()>,
    cancel: Arc<AtomicBool>,
}

/// Progress events are sent at most this often (training reports every batch).
const PROGRESS_EVERY: Duration = Duration::from_millis(150);

impl Trainer {
    pub fn spawn(settings: TrainerSettings, report: Box<dyn Fn(TrainerEvent) + Send>) -> Self {
        let (requests, rx) = mpsc::channel::<()>();
        let cancel = Arc::new(AtomicBool::new(false));
        let flag = cancel.clone();
        std::thread::spawn(move || worker(settings, rx, flag, report));
        Self { requests, cancel }
    }

    /// Asks for a run; while one is running this queues exactly one more.
    pub fn request(&self) {
        let _ = self.requests.send(());
    }

    /// Stops the running job at its next batch and drops the queued one.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }
}

fn worker(
    settings: TrainerSettings,
    rx: Receiver<()>,
    cancel: Arc<AtomicBool>,
    report: Box<dyn Fn(TrainerEvent) + Send>,
) {
    // auto's last measured choice: a run reuses it until the training pairs grow by half (the
    // choice trains about seven models; the run itself one).
    let mut earlier: Option<EarlierChoice> = None;
    while rx.recv().is_ok() {
        // Requests that piled up before this job started are served by it.
        while rx.try_recv().is_ok() {}
        cancel.store(false, Ordering::SeqCst);
        let (backend, notice) = usable_backend(settings.run.backend);
        let mut settings = settings.clone();
        settings.run.backend = backend;
        report(TrainerEvent::Started {
            backend: backend.to_string(),
            notice,
        });
        let event = match run_once(&settings, earlier, &cancel, &*report) {
            Ok(outcome) => {
                earlier = outcome.head_choice;
                TrainerEvent::Done(Box::new(outcome))
            }
            Err(e) if e.downcast_ref::<Cancelled>().is_some() || cancel.load(Ordering::SeqCst) => {
                // A cancel also drops what was queued behind the cancelled job.
                while rx.try_recv().is_ok() {}
                TrainerEvent::Cancelled
            }
            Err(e) => TrainerEvent::Failed(format!("{e:#}")),
        };
        report(event);
    }
}

/// The backend to train on: the one asked for when this machine can run it, else the CPU with
/// a notice saying what is missing (a review session never fails for want of a GPU).
fn usable_backend(asked: BackendKind) -> (BackendKind, Option<String>) {
    match asked.probe() {
        Ok(_) => (asked, None),
        Err(e) => (
            BackendKind::Cpu,
            Some(format!("{e:#}; training on the CPU instead")),
        ),
    }
}

/// One run of the background trainer: the review screen's job, also the simulation's (see
/// `simulate`), so both train, score and re-rank the same way.
pub fn run_once(
    settings: &TrainerSettings,
    earlier: Option<EarlierChoice>,
    cancel: &AtomicBool,
    report: &dyn Fn(TrainerEvent),
) -> anyhow::Result<TrainOutcome> {
    let mut ws = Workspace::open_existing(&settings.workspace)?;
    // A reviewer's role on a team server reads only its own decisions and trains nothing: say
    // so here.
    ws.ensure_curator("training")?;
    let options = RunOptions {
        // Texts imported since the last run are embedded first, off the UI thread (this is the
        // trainer's), with "embedding new texts N/M" in the panel; Esc cancels between batches.
        embed: true,
        encoder_batch: settings.run.backend.encoder_batch_size(),
        score: Some(settings.sample_score),
        earlier_choice: earlier,
    };
    let mut last = Instant::now() - PROGRESS_EVERY;
    let outcome = selector_runs::run(
        &mut ws,
        &settings.run,
        &options,
        &mut |p| match p {
            RunProgress::Embedding { done, total, .. } => {
                if total > 0 && (done == total || last.elapsed() >= PROGRESS_EVERY) {
                    last = Instant::now();
                    report(TrainerEvent::Embedding { done, total });
                }
            }
            RunProgress::Training(p) => {
                let epoch_end = p.val.is_some() || p.batch == p.batches;
                if epoch_end || last.elapsed() >= PROGRESS_EVERY {
                    last = Instant::now();
                    report(TrainerEvent::Progress {
                        epoch: p.epoch,
                        epochs: p.epochs,
                        loss: p.loss,
                        validation: p.val,
                    });
                }
            }
            RunProgress::Scoring { .. } => {}
        },
        cancel,
    )?;
    let run = outcome.report;
    let head_choice = EarlierChoice::measured_by(&run).or(earlier);
    let (scored_answers, _) = outcome.scored.unwrap_or_default();
    Ok(TrainOutcome {
        run_id: run.run_id,
        backend: run.backend,
        human_pairs: run.human_pairs,
        judge_pairs: run.judge_pairs,
        validation: run.validation,
        scored_answers,
        signals: ws.rank_signals()?,
        score_ranks: ScoreRanks::from_ascending(&ws.selector_score_spread()?),
        head_choice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_this_machine_cannot_run_trains_on_the_cpu_with_the_reason() {
        assert_eq!(usable_backend(BackendKind::Cpu), (BackendKind::Cpu, None));
        for asked in [BackendKind::Wgpu, BackendKind::Cuda] {
            match (asked.probe(), usable_backend(asked)) {
                (Ok(_), (used, notice)) => assert_eq!((used, notice), (asked, None)),
                (Err(e), (used, Some(notice))) => {
                    assert_eq!(used, BackendKind::Cpu);
                    assert!(notice.starts_with(&e.to_string()), "{notice}");
                    assert!(notice.ends_with("training on the CPU instead"), "{notice}");
                }
                (Err(_), (_, None)) => panic!("{asked}: no notice for the fallback"),
            }
        }
    }
}
