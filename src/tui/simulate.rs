//! A simulated reviewer at the review screen (`vital simulate`): the real app and session, on a
//! copy of a workspace, marking each answer ✓ or ✗ from a labels file with the screen's own keys
//! (`a`, `x`), so it records exactly the events a clinician's keystrokes would. Every K decisions
//! the background trainer's own job retrains the selector and re-ranks the queue, and the new
//! run is measured on held-out pairs it never shows. The workspace read is never written: the
//! copy lives in a scratch folder.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Serialize;

use super::app::Msg;
use super::keymap::Keymap;
use super::queue::Order;
use super::session::{Session, SessionOptions};
use super::trainer::{run_once, TrainerEvent, TrainerSettings};
use crate::selector::{AnswerInput, Cancelled, PreferencePair};
use crate::selector_runs::{self, RunSettings, SampleScore};
use crate::store::Workspace;

/// The simulated clinician's verdicts: (question, answer) → ✓ (true) or ✗, both trimmed.
#[derive(Debug, Clone, Default)]
pub struct Labels(HashMap<(String, String), bool>);

impl Labels {
    /// From a pairs file's records: each positive answer ✓, each negative ✗.
    pub fn from_pairs(inputs: &[AnswerInput], pairs: &[PreferencePair]) -> Self {
        let by_id: HashMap<i64, &AnswerInput> = inputs.iter().map(|a| (a.answer_id, a)).collect();
        let mut labels = HashMap::new();
        for pair in pairs {
            for (id, accepted) in [(pair.winner, true), (pair.loser, false)] {
                if let Some(a) = by_id.get(&id) {
                    labels.insert(
                        (
                            crate::data::display_text(&a.question).trim().to_string(),
                            a.answer.trim().to_string(),
                        ),
                        accepted,
                    );
                }
            }
        }
        Labels(labels)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The verdict on `answer` to `question` as stored (LLaVA's `<image>` placeholder is not
    /// part of the question a pairs file gives).
    fn verdict(&self, question: &str, answer: &str) -> Option<bool> {
        let question = crate::data::display_text(question);
        self.0
            .get(&(question.trim().to_string(), answer.trim().to_string()))
            .copied()
    }
}

/// One simulated session's settings.
pub struct Simulation<'a> {
    pub labels: &'a Labels,
    /// The held-out pairs file each retrained run is measured on.
    pub eval_pairs: &'a Path,
    pub order: Order,
    pub seed: u64,
    /// Retrain after every this many decisions.
    pub retrain_every: usize,
    /// Stop after this many decisions (all the labelled answers otherwise).
    pub max_decisions: Option<usize>,
    pub run: RunSettings,
    pub sample_score: SampleScore,
}

/// The held-out metrics after `decisions` decisions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    pub decisions: usize,
    pub clinician_pairs: usize,
    pub alignment: f64,
    pub auc: f64,
}

/// What one simulated session recorded and measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub order: String,
    pub seed: u64,
    pub points: Vec<CurvePoint>,
    /// Samples shown, in the order the reviewer saw them.
    pub shown: Vec<String>,
}

impl Curve {
    /// Decisions taken when the held-out alignment first reached `target`.
    pub fn decisions_to(&self, target: f64) -> Option<usize> {
        self.points
            .iter()
            .find(|p| p.alignment >= target)
            .map(|p| p.decisions)
    }
}

const REVIEWER: &str = "simulated";

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

/// Copies `source` into `scratch` (an empty folder) and runs the simulated reviewer there;
/// `progress(decisions)` after each decision.
pub fn simulate(
    source: &Workspace,
    scratch: &Path,
    sim: &Simulation<'_>,
    progress: &mut dyn FnMut(usize),
    cancel: &AtomicBool,
) -> anyhow::Result<Curve> {
    anyhow::ensure!(sim.retrain_every > 0, "--retrain-every must be at least 1");
    let copy = Workspace::open(scratch)
        .with_context(|| format!("cannot make the scratch workspace {}", scratch.display()))?;
    source.copy_into(&copy, &mut |_, _| Ok(()))?;
    let options = SessionOptions {
        reviewer: REVIEWER.into(),
        keymap: Keymap::default(),
        // The answers in stored order, and on to the next sample once one is decided.
        auto_advance: true,
        shuffle: false,
        train_after: 0,
        top_percent: 40.0,
        export_defaults: Default::default(),
        export_dir: scratch.join("exports"),
        order: sim.order,
        reasons: Vec::new(),
        require_figure: false,
        adjudicate: false,
    };
    let mut session = Session::start(copy, options)?;
    session.app.queue.set_random_seed(sim.seed);
    let trainer = TrainerSettings {
        workspace: scratch.to_path_buf(),
        run: RunSettings {
            seed: sim.seed,
            ..sim.run.clone()
        },
        sample_score: sim.sample_score,
    };
    let mut curve = Curve {
        order: sim.order.label().to_string(),
        seed: sim.seed,
        points: Vec::new(),
        shown: Vec::new(),
    };
    let mut visited: HashSet<i64> = HashSet::new();
    let (mut decisions, mut since_training) = (0usize, 0usize);
    let limit = sim.max_decisions.unwrap_or(usize::MAX);
    // The first undecided, unvisited sample in the queue's order, reached as `g` + id would.
    while decisions < limit {
        anyhow::ensure!(!cancel.load(Ordering::SeqCst), Cancelled);
        let next = session
            .app
            .queue
            .in_order()
            .find(|e| !e.decided && !visited.contains(&e.key))
            .map(|e| (e.key, e.ext_id.clone()));
        let Some((sample, id)) = next else { break };
        visited.insert(sample);
        session.dispatch(Msg::Found {
            id: id.clone(),
            key: Some(sample),
        });
        let Some(view) = session.app.current.clone().filter(|v| v.key() == sample) else {
            continue;
        };
        curve.shown.push(id);
        for r in 0..view.rounds() {
            let question = &view.stored.sample.rounds[r].question;
            for d in 0..view.order[r].len() {
                let Some(answer) = view.answer_text_at(r, d) else {
                    continue;
                };
                let Some(accepted) = sim.labels.verdict(question, answer) else {
                    continue;
                };
                if decisions >= limit {
                    break;
                }
                // Focus the answer, then the screen's own key for the verdict.
                session.app.focus_round = r;
                session.app.focus_answer = d;
                session.dispatch(key(KeyCode::Char(if accepted { 'a' } else { 'x' })));
                decisions += 1;
                since_training += 1;
                progress(decisions);
                // Exactly every K decisions, mid-sample too.
                if since_training == sim.retrain_every {
                    since_training = 0;
                    let point = retrain(&mut session, &trainer, sim, decisions, cancel)?;
                    curve.points.push(point);
                }
                if session.app.current.as_ref().map(|v| v.key()) != Some(sample) {
                    // Decided: the screen moved on; come back for the rest of this sample.
                    session.dispatch(Msg::Found {
                        id: curve.shown.last().cloned().unwrap_or_default(),
                        key: Some(sample),
                    });
                }
            }
        }
    }
    if since_training > 0 {
        curve
            .points
            .push(retrain(&mut session, &trainer, sim, decisions, cancel)?);
    }
    Ok(curve)
}

/// The background trainer's job, its outcome handed to the app as the screen's would be, and
/// the new run measured on the held-out pairs.
fn retrain(
    session: &mut Session,
    trainer: &TrainerSettings,
    sim: &Simulation<'_>,
    decisions: usize,
    cancel: &AtomicBool,
) -> anyhow::Result<CurvePoint> {
    let outcome = run_once(trainer, None, cancel, &|_| {})?;
    let run_id = outcome.run_id;
    let clinician_pairs = outcome.human_pairs;
    session.dispatch(Msg::Trainer(TrainerEvent::Done(Box::new(outcome))));
    let ws = session.ws();
    let (run_id, report, selector) = selector_runs::load_run(ws, Some(run_id))?;
    // A run with an encoder embeds the held-out pairs' texts its cache lacks, as `vital eval`.
    let mut encoder = match &report.settings.encoder {
        Some(used) if used.folder.exists() => Some(crate::embed::open_encoder(
            &used.folder,
            report.settings.backend,
        )?),
        _ => None,
    };
    let eval = selector_runs::evaluate_with(
        ws,
        run_id,
        &report,
        &selector,
        Some(sim.eval_pairs),
        encoder
            .as_mut()
            .map(|e| e.as_mut() as &mut dyn crate::embed::SentenceEncoder),
    )?;
    Ok(CurvePoint {
        decisions,
        clinician_pairs,
        alignment: eval.selector.alignment_rate,
        auc: eval.selector.auc,
    })
}
