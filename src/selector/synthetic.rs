//! Synthetic figures, answers and preference pairs for tests, benchmarks and demos.
//!
//! Good answers reuse the question's and the caption's words (organ, finding, size); bad ones
//! hedge, refuse, or say little. Both kinds vary in length so length alone is not the answer.

use super::{AnswerInput, PairSource, PreferencePair};
use crate::stable::SplitMix64;

const MODALITIES: &[&str] = &[
    "CT",
    "MRI",
    "chest X-ray",
    "ultrasound",
    "PET-CT",
    "histology slide",
];
const ORGANS: &[&str] = &[
    "liver",
    "right lung",
    "left kidney",
    "pancreas",
    "brain",
    "spleen",
    "heart",
    "colon",
];
const FINDINGS: &[&str] = &[
    "mass",
    "nodule",
    "cyst",
    "abscess",
    "hemorrhage",
    "effusion",
    "calcification",
    "lesion",
];
const QUESTIONS: &[&str] = &[
    "What abnormality is seen in the {organ}?",
    "Which imaging modality was used for this {organ} study?",
    "How large is the {finding} in the {organ}?",
    "Is there a {finding} in the {organ}?",
    "Where is the {finding} located?",
];
const GOOD: &[&str] = &[
    "The {modality} shows a {size} cm {finding} in the {organ}, marked by the arrow.",
    "Yes, there is a well-defined {finding} measuring {size} cm within the {organ}.",
    "This is a {modality} image; the {finding} in the {organ} measures about {size} cm.",
    "A {finding} of {size} cm is visible in the {organ}, consistent with the caption.",
];
const BAD: &[&str] = &[
    "I'm sorry, but I cannot determine that from the image.",
    "It might possibly be something, please consult a healthcare professional.",
    "As an AI, I am unable to provide a diagnosis.",
    "It is not possible to say.",
    "Maybe. It could be many things and further evaluation may be needed to be sure about anything here.",
];

fn fill(template: &str, slots: &[(&str, &str)]) -> String {
    slots.iter().fold(template.to_string(), |text, (k, v)| {
        text.replace(&format!("{{{k}}}"), v)
    })
}

/// `figures` figures × `rounds` rounds × 2 answers, and one pair per round (winner = the
/// grounded answer). Every `human_every`-th figure's pairs are clinician pairs, the rest judge
/// pairs. Answer ids are `figure * 1000 + round * 2 + {0, 1}`.
pub fn dataset(
    figures: usize,
    rounds: usize,
    human_every: usize,
    seed: u64,
) -> (Vec<AnswerInput>, Vec<PreferencePair>) {
    let mut rng = SplitMix64::new(seed);
    let mut answers = Vec::with_capacity(figures * rounds * 2);
    let mut pairs = Vec::with_capacity(figures * rounds);
    let pick = |list: &[&'static str], rng: &mut SplitMix64| list[rng.below(list.len())];
    for figure in 0..figures {
        let (modality, organ, finding) = (
            pick(MODALITIES, &mut rng),
            pick(ORGANS, &mut rng),
            pick(FINDINGS, &mut rng),
        );
        let size = format!("{}.{}", 1 + rng.below(9), rng.below(10));
        let slots = [
            ("modality", modality),
            ("organ", organ),
            ("finding", finding),
            ("size", size.as_str()),
        ];
        let caption = fill(
            "{modality} of the {organ} demonstrating a {size} cm {finding} (arrow).",
            &slots,
        );
        let mention = fill("The {finding} in the {organ} was followed up.", &slots);
        let figure_key = format!("PMC{}_fig{}", 100_000 + figure, figure % 7 + 1);
        let source = if human_every > 0 && figure % human_every == 0 {
            PairSource::Human
        } else {
            PairSource::Judge
        };
        for round in 0..rounds {
            let question = fill(pick(QUESTIONS, &mut rng), &slots);
            let good = fill(pick(GOOD, &mut rng), &slots);
            let bad = pick(BAD, &mut rng).to_string();
            // Shuffle which id holds the good answer so ids carry no signal.
            let good_first = rng.below(2) == 0;
            let base = (figure * 1000 + round * 2) as i64;
            let (good_id, bad_id) = if good_first {
                (base, base + 1)
            } else {
                (base + 1, base)
            };
            for (id, text) in [(good_id, good), (bad_id, bad)] {
                answers.push(AnswerInput {
                    answer_id: id,
                    figure_key: figure_key.clone(),
                    caption: caption.clone(),
                    mentions: vec![mention.clone()],
                    question: question.clone(),
                    answer: text,
                    round_position: round,
                    image_path: None,
                    figure_stats: Default::default(),
                });
            }
            pairs.push(PreferencePair {
                winner: good_id,
                loser: bad_id,
                source,
            });
        }
    }
    (answers, pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_ids_and_sources() {
        let (answers, pairs) = dataset(10, 3, 5, 1);
        assert_eq!(answers.len(), 60);
        assert_eq!(pairs.len(), 30);
        assert_eq!(
            pairs
                .iter()
                .filter(|p| p.source == PairSource::Human)
                .count(),
            6
        );
        let mut ids: Vec<i64> = answers.iter().map(|a| a.answer_id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 60);
        assert!(!answers[0].caption.contains('{'));
        assert_eq!(dataset(10, 3, 5, 1).0, answers, "seeded");
    }
}
