//! Joins the workspace and the selector: a selector run is a pipeline of named steps
//! ([`pipeline::run`]), each in its own file —
//!
//! 1. `embeddings.rs`: the run's encoder has a vector of every text and figure it reads;
//! 2. `pairs.rs`: preference pairs from the clinicians and the judge;
//! 3. `inputs.rs`: the answers those pairs name, as the model reads them; `choose.rs`: with an
//!    encoder and `head = auto`, the model chosen by validation on the training pairs;
//! 4. `fit.rs`: the selector trained, figures held out;
//! 5. `held_out.rs`: measured on held-out clinician pairs and judge test pairs;
//! 6. `record.rs`: the checkpoint and the run's report;
//! 7. `scoring.rs`: every answer and sample scored, the run published.
//!
//! `vital train` and `sweep`, the review screen's background trainer and the benchmarks all call
//! the pipeline; `vital score` and `vital eval` read a recorded run (`record.rs`, `eval.rs`).
//! `run_settings.rs` holds what a run is trained with, `settings.rs` the `[selector]` config.

pub mod baselines;
mod choose;
mod embeddings;
pub mod encoded;
mod eval;
mod fit;
mod held_out;
mod inputs;
mod pairs;
mod pipeline;
mod record;
mod run_settings;
mod scoring;
mod settings;

pub use crate::answer_inputs::{answer_inputs_for, for_each_answer_chunk, AnswerIndex};
pub use choose::{
    choose_for_pairs, EarlierChoice, HeadCandidate, HeadChoice, FOLDS, REVALIDATE_GROWTH,
};
pub use embeddings::{ensure_embeddings, EmbedReport};
pub use eval::{evaluate, evaluate_with, pairs_from_file, EvalReport};
pub use pairs::{
    across_level_pairs, human_pairs, judge_level_pairs, judge_pairs, JudgePairs, LevelDraw,
    LevelPairs,
};
pub use pipeline::{run, train, train_reusing, RunOptions, RunOutcome, RunProgress};
pub use record::{load_run, load_run_report, RunReport};
pub use run_settings::{paper_text, Head, RunSettings};
pub use scoring::{compute_scores, score, SampleScore, ShardScores};
pub use settings::SelectorSettings;
