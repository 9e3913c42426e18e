//! Stage 5 of a run: the fitted selector measured on what it never trained on — the clinician
//! pairs of the held-out figures (or the paper's pairs after the first N), and the judge's test
//! pairs across score levels (how well it reproduces the judge).

use super::fit::Fitted;
use super::inputs::RunInputs;
use super::pairs::RunPairs;
use crate::selector::{Metrics, PreferencePair};

/// What the held-out pairs say.
pub struct HeldOut {
    pub human_pairs: Vec<PreferencePair>,
    pub validation: Option<Metrics>,
    pub judge_test: Option<Metrics>,
    /// Every held-out figure, sorted (`vital eval` finds the same pairs again by them).
    pub figures: Vec<String>,
}

pub fn evaluate_held_out(
    fitted: &Fitted,
    pairs: &RunPairs,
    inputs: &RunInputs,
) -> anyhow::Result<HeldOut> {
    let figure = |id: i64| inputs.index.figure_of(id).unwrap_or_default();
    let mut figures = fitted.held_out_figures.clone();
    let human_pairs: Vec<PreferencePair> = match &pairs.fixed_held_out {
        Some(rest) => {
            figures.extend(rest.iter().map(|p| figure(p.winner).to_string()));
            rest.clone()
        }
        None => pairs
            .humans
            .iter()
            .filter(|p| figures.contains(figure(p.winner)))
            .cloned()
            .collect(),
    };
    let measure = |pairs: &[PreferencePair]| -> anyhow::Result<Option<Metrics>> {
        if pairs.is_empty() {
            return Ok(None);
        }
        let answers = &inputs.index.inputs;
        let metrics = fitted
            .selector
            .evaluate(answers, pairs, inputs.embeddings.as_ref())?;
        Ok(Some(metrics))
    };
    let validation = measure(&human_pairs)?;
    let judge_test = measure(&pairs.levels.test)?;
    let mut figures: Vec<String> = figures.into_iter().collect();
    figures.sort();
    Ok(HeldOut {
        human_pairs,
        validation,
        judge_test,
        figures,
    })
}
