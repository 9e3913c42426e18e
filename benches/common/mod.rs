//! The synthetic workspace both workspace-sized benches build (`export`, `score`): samples of
//! the 210K release's shape (a caption, a mention, 4 rounds × 2 candidate answers) from a small
//! radiology vocabulary, and a clinician's verdicts on some of them. Each bench keeps its own
//! random stream (words drawn by `text`), so each builds the same workspace as before.
//!
//! Included by `mod common;` (a folder module, so that cargo does not take it for a bench).

use vital::data::{Round, Sample};
use vital::store::{AnswerSlot, DecisionKind, ImportBatch, InsertOutcome, NewDecision};

/// The words synthetic texts are drawn from.
pub const WORDS: &[&str] = &[
    "axial",
    "contrast",
    "enhanced",
    "lesion",
    "right",
    "upper",
    "lobe",
    "nodule",
    "shows",
    "mass",
    "the",
    "of",
    "with",
    "without",
    "effusion",
    "consolidation",
    "margin",
    "mm",
    "hyperintense",
    "signal",
    "cortex",
    "biopsy",
    "atypia",
    "radiograph",
    "is",
    "a",
    "in",
];

/// Inserts synthetic sample `i` (id `PMC{i:07}_F1`, figure `image`); `text(n)` draws an n-word
/// text, called in a fixed order (caption, mention, then each round's question and answers).
/// Returns the sample's key.
pub fn insert_sample(
    batch: &ImportBatch<'_>,
    i: usize,
    image: String,
    mut text: impl FnMut(usize) -> String,
) -> anyhow::Result<i64> {
    let sample = Sample {
        id: format!("PMC{i:07}_F1"),
        image: Some(image),
        caption: text(30),
        mentions: vec![text(20)],
        fig_label: Some("Figure 1".into()),
        domains: vec!["ct_scan".into()],
        rounds: (0..4)
            .map(|r| Round {
                question: if r == 0 {
                    format!("<image>\n{}?", text(10))
                } else {
                    format!("{}?", text(10))
                },
                answers: vec![text(35), text(35)],
            })
            .collect(),
        is_demo: false,
    };
    let InsertOutcome::Inserted(key) = batch.insert_sample(&sample, None)? else {
        anyhow::bail!("duplicate synthetic id");
    };
    Ok(key)
}

/// A clinician's verdicts on a sample's first round: the first answer accepted, the second
/// rejected.
pub fn append_verdicts(
    batch: &ImportBatch<'_>,
    reviewer: i64,
    key: i64,
    slots: &[AnswerSlot],
) -> anyhow::Result<()> {
    for (a, slot) in slots.iter().take(2).enumerate() {
        let decision = NewDecision {
            sample_key: key,
            round_id: Some(slot.round_id),
            answer_id: Some(slot.answer_id),
            kind: if a == 0 {
                DecisionKind::Accept
            } else {
                DecisionKind::Reject
            },
            value: None,
            shown_order: None,
            figure_shown: None,
        };
        batch.append_decision(reviewer, &decision)?;
    }
    Ok(())
}
