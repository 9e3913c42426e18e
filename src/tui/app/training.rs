//! The background trainer from the screen's side: asking for a run, and what its progress and results change (queue order, scores, the panel).

use super::*;

impl App {
    pub(super) fn request_training(&mut self) -> Vec<Effect> {
        self.decisions_since_train = 0;
        if self.training.running {
            self.training.queued = true;
            self.message = Some("training queued: it starts when the current run ends".into());
        } else {
            self.training.status = "starting…".into();
        }
        vec![Effect::Train]
    }

    pub(super) fn on_trainer(&mut self, event: TrainerEvent) -> Vec<Effect> {
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
                t.epoch_validation = None;
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
                    t.epoch_validation = validation;
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
                t.epoch_validation = None;
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
}
