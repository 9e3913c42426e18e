//! `vital eval`: the selector on held-out clinician pairs, with the method's four metrics and
//! the baselines side by side.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use serde::Serialize;

use super::baselines::{answer_length, word_overlap};
use super::{answer_inputs_for, human_pairs, RunReport};
use crate::data::formats::Format;
use crate::data::json_stream::JsonSource;
use crate::data::warnings::Warnings;
use crate::data::Record;
use crate::embed::{embed_image_files, ensure_cached, SentenceEncoder};
use crate::image_files::ImageRoots;
use crate::selector::encoder_features::texts_of;
use crate::selector::{AnswerInput, Metrics, PairSource, PreferencePair, TrainedSelector};
use crate::store::Workspace;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub run_id: i64,
    /// Where the pairs came from: "workspace (held-out figures)" or the pairs file.
    pub source: String,
    #[serde(flatten)]
    pub selector: Metrics,
    pub baselines: Baselines,
}

#[derive(Debug, Clone, Serialize)]
pub struct Baselines {
    pub answer_length: Metrics,
    pub word_overlap: Metrics,
    /// The judge LLM's scores, on the pairs where both answers have one (ties count as misses).
    pub judge: Option<Metrics>,
    /// The run's encoder, zero-shot: cos(question, answer) of its cached vectors, for a run
    /// trained with an encoder (what the selector must at least match).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder_cosine: Option<Metrics>,
}

/// Evaluates on the run's held-out clinician pairs in the workspace, or on a pairs file that is
/// scored without importing it.
pub fn evaluate(
    ws: &Workspace,
    run_id: i64,
    report: &RunReport,
    selector: &TrainedSelector,
    pairs_file: Option<&Path>,
) -> anyhow::Result<EvalReport> {
    evaluate_with(ws, run_id, report, selector, pairs_file, None)
}

/// [`evaluate`]; for a run trained with an encoder, `encoder` (the run's, loaded) embeds the
/// texts the cache lacks first (a pairs file's answers are not in the workspace).
pub fn evaluate_with(
    ws: &Workspace,
    run_id: i64,
    report: &RunReport,
    selector: &TrainedSelector,
    pairs_file: Option<&Path>,
    encoder: Option<&mut dyn SentenceEncoder>,
) -> anyhow::Result<EvalReport> {
    let (inputs, pairs, judge, source) = match pairs_file {
        Some(_) if report.settings.embeddings.is_some() => anyhow::bail!(
            "run {run_id} scores precomputed embeddings, which a pairs file does not have: evaluate it on the workspace's held-out pairs (no --pairs), or train a run without --embeddings"
        ),
        Some(file) => {
            // The records' images, found like training finds them (the workspace's image
            // folders and cache), and beside the file like `vital import` would.
            let mut dirs = ws.image_dirs()?;
            dirs.push(ws.image_cache_dir());
            if let Some(parent) = file.parent() {
                let parent = if parent.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    parent
                };
                dirs.push(parent.join("images"));
                dirs.push(parent.to_path_buf());
            }
            let (inputs, pairs) = pairs_from_file(file, &ImageRoots::new(dirs))?;
            (inputs, pairs, HashMap::new(), file.display().to_string())
        }
        None => {
            let held_out: HashSet<&str> =
                report.held_out_figures.iter().map(String::as_str).collect();
            let all = human_pairs(ws)?;
            let ids: HashSet<i64> = all.iter().flat_map(|p| [p.winner, p.loser]).collect();
            let index = answer_inputs_for(ws, &ids)?;
            // A run that held out exact pairs (the paper preset) is evaluated on those.
            let exact: HashSet<(i64, i64)> = report.held_out_pairs.iter().copied().collect();
            let pairs: Vec<PreferencePair> = all
                .into_iter()
                .filter(|p| {
                    if exact.is_empty() {
                        index
                            .figure_of(p.winner)
                            .is_some_and(|f| held_out.contains(f))
                    } else {
                        exact.contains(&(p.winner, p.loser))
                    }
                })
                .collect();
            anyhow::ensure!(
                !pairs.is_empty(),
                "run {run_id} holds out {} figure(s), none with clinician pairs; pass --pairs FILE",
                held_out.len()
            );
            let judge = judge_scores(ws, &ids)?;
            (
                index.inputs,
                pairs,
                judge,
                "workspace (held-out figures)".to_string(),
            )
        }
    };
    // The baselines read the answers as stored; the selector its run's inputs.
    let raw_inputs = inputs.clone();
    let mut inputs = inputs;
    report.settings.prepare_inputs(&mut inputs);
    if let (Some(encoder), Some(used)) = (encoder, &report.settings.encoder) {
        anyhow::ensure!(
            encoder.identity() == used.identity,
            "the encoder given is not run {run_id}'s (identity {} vs {})",
            crate::embed::short(encoder.identity()),
            crate::embed::short(&used.identity)
        );
        let batch = report.settings.backend.encoder_batch_size();
        // The run's texts, and the answers as stored (for the zero-shot cosine baseline).
        let texts: Vec<String> = inputs
            .iter()
            .chain(&raw_inputs)
            .flat_map(texts_of)
            .collect();
        ensure_cached(ws, encoder, &texts, batch)?;
        // A pairs file's figures were never embedded by `vital embed`: the run reads them too.
        if used.images {
            let figures: Vec<std::path::PathBuf> =
                inputs.iter().filter_map(|i| i.image_path.clone()).collect();
            let no_cancel = std::sync::atomic::AtomicBool::new(false);
            embed_image_files(ws, encoder, &figures, batch, &mut |_, _| {}, &no_cancel)?;
        }
    }
    let embeddings = report.settings.embeddings_for(ws, &inputs)?;
    let selector_scores = selector.score_with(&inputs, embeddings.as_ref())?;
    let by_id = |scores: &[f32]| -> HashMap<i64, f32> {
        inputs
            .iter()
            .map(|a| a.answer_id)
            .zip(scores.iter().copied())
            .collect()
    };
    let metrics = |scores: &HashMap<i64, f32>| {
        let scored: Vec<(f32, f32)> = pairs
            .iter()
            .filter_map(|p| Some((*scores.get(&p.winner)?, *scores.get(&p.loser)?)))
            .collect();
        Metrics::from_pairs(&scored)
    };
    let length: Vec<f32> = raw_inputs.iter().map(answer_length).collect();
    let overlap: Vec<f32> = raw_inputs.iter().map(word_overlap).collect();
    let judge_metrics = metrics(&judge);
    let encoder_cosine = match &report.settings.encoder {
        Some(used) => question_answer_cosines(ws, &used.identity, &raw_inputs)?
            .map(|scores| metrics(&by_id(&scores))),
        None => None,
    };
    Ok(EvalReport {
        run_id,
        source,
        selector: metrics(&by_id(&selector_scores)),
        baselines: Baselines {
            answer_length: metrics(&by_id(&length)),
            word_overlap: metrics(&by_id(&overlap)),
            judge: (judge_metrics.pairs > 0).then_some(judge_metrics),
            encoder_cosine,
        },
    })
}

/// cos(question, answer) of each input from the cache under `encoder` (vectors are unit
/// length); None when a vector is missing.
fn question_answer_cosines(
    ws: &Workspace,
    encoder: &str,
    inputs: &[AnswerInput],
) -> anyhow::Result<Option<Vec<f32>>> {
    use crate::store::TextHash;
    let hashes: Vec<TextHash> = inputs
        .iter()
        .flat_map(|i| [TextHash::of(&i.question), TextHash::of(&i.answer)])
        .collect();
    let vectors = ws.text_embeddings(encoder, &hashes)?;
    let mut scores = Vec::with_capacity(inputs.len());
    for pair in hashes.chunks_exact(2) {
        let (Some(q), Some(a)) = (vectors.get(&pair[0]), vectors.get(&pair[1])) else {
            return Ok(None);
        };
        scores.push(q.iter().zip(a).map(|(x, y)| x * y).sum());
    }
    Ok(Some(scores))
}

fn judge_scores(ws: &Workspace, ids: &HashSet<i64>) -> anyhow::Result<HashMap<i64, f32>> {
    Ok(ws
        .mean_judge_scores_of(ids)?
        .into_iter()
        .map(|(id, score)| (id, score as f32))
        .collect())
}

/// Reads a clinician pairs file into inputs with ids of their own (negative, never stored).
/// Each record's `img` is looked up in `images`, as training looks up a stored sample's image.
pub fn pairs_from_file(
    file: &Path,
    images: &ImageRoots,
) -> anyhow::Result<(Vec<AnswerInput>, Vec<PreferencePair>)> {
    let shown = file.display().to_string();
    let reader = std::fs::File::open(file).with_context(|| format!("cannot open {shown}"))?;
    let source = JsonSource::new(reader).with_context(|| format!("cannot read {shown}"))?;
    let mut parser = Format::Pairs.parser();
    let mut warnings = Warnings::default();
    let mut inputs = Vec::new();
    let mut pairs = Vec::new();
    source
        .for_each(|loc, value| {
            for record in parser.parse(&value, loc, &mut warnings)? {
                let Record::Sample { sample, .. } = record else {
                    continue;
                };
                let round = &sample.rounds[0];
                let base = -(inputs.len() as i64) - 1;
                let image_path = sample
                    .image
                    .as_deref()
                    .and_then(|img| images.lookup(img).found());
                for (k, answer) in round.answers.iter().take(2).enumerate() {
                    inputs.push(AnswerInput {
                        answer_id: base - k as i64,
                        figure_key: sample.figure_key().to_string(),
                        caption: sample.caption.clone(),
                        mentions: sample.mentions.clone(),
                        question: crate::data::display_text(&round.question),
                        answer: answer.clone(),
                        round_position: 0,
                        image_path: image_path.clone(),
                        figure_stats: Default::default(),
                    });
                }
                pairs.push(PreferencePair {
                    winner: base,
                    loser: base - 1,
                    source: PairSource::Human,
                });
            }
            Ok(())
        })
        .map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
    anyhow::ensure!(!pairs.is_empty(), "{shown}: no clinician pairs in the file");
    Ok((inputs, pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pairs_file_keeps_empty_answers_and_finds_each_records_image() {
        let dir = tempfile::tempdir().unwrap();
        let mut png = std::io::Cursor::new(Vec::new());
        image::RgbImage::new(2, 2)
            .write_to(&mut png, image::ImageFormat::Png)
            .unwrap();
        std::fs::write(dir.path().join("fig.png"), png.into_inner()).unwrap();
        let file = dir.path().join("pairs.jsonl");
        std::fs::write(
            &file,
            concat!(
                r#"{"img": "fig.png", "fig_caption": "CT.", "inline_mention": "", "question": "Where?", "answer_positive": "Left.", "answer_negative": ""}"#,
                "\n",
                r#"{"img": "gone.png", "fig_caption": "MRI.", "inline_mention": "", "question": "What?", "answer_positive": "", "answer_negative": "No idea."}"#,
                "\n"
            ),
        )
        .unwrap();
        let roots = ImageRoots::new([dir.path().to_path_buf()]);
        let (inputs, pairs) = pairs_from_file(&file, &roots).unwrap();
        assert_eq!(pairs.len(), 2, "empty answers are answers");
        assert_eq!(inputs.len(), 4);
        assert_eq!(inputs[1].answer, "");
        let found = std::fs::canonicalize(dir.path().join("fig.png")).unwrap();
        assert_eq!(inputs[0].image_path.as_ref(), Some(&found));
        assert_eq!(inputs[1].image_path.as_ref(), Some(&found));
        assert_eq!(inputs[2].image_path, None);
    }
}
