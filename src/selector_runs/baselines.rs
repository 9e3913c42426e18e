//! Baselines the selector must beat, scored the same way: answer length, a plain word-overlap
//! rule, and the judge LLM's own scores.

use std::collections::HashSet;

use crate::selector::AnswerInput;

/// Longer answers win.
pub fn answer_length(input: &AnswerInput) -> f32 {
    input.answer.split_whitespace().count() as f32
}

const STOPWORDS: &[&str] = &[
    "a", "an", "the", "of", "in", "on", "at", "to", "is", "are", "was", "were", "be", "and", "or",
    "this", "that", "it", "with", "for", "as", "by", "from", "what", "which", "there", "image",
    "shown", "shows", "does", "do",
];

fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .collect()
}

/// Share of the answer's content words that appear in the question, caption or mentions.
pub fn word_overlap(input: &AnswerInput) -> f32 {
    let answer = words(&input.answer);
    if answer.is_empty() {
        return 0.0;
    }
    let mut context = words(&input.question);
    context.extend(words(&input.caption));
    for m in &input.mentions {
        context.extend(words(m));
    }
    answer.intersection(&context).count() as f32 / answer.len() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(answer: &str) -> AnswerInput {
        AnswerInput {
            answer_id: 1,
            figure_key: "f".into(),
            caption: "Axial CT shows a nodule in the right upper lobe.".into(),
            mentions: vec![],
            question: "Where is the nodule?".into(),
            answer: answer.into(),
            round_position: 0,
            image_path: None,
            figure_stats: Default::default(),
        }
    }

    #[test]
    fn overlap_rewards_grounded_answers() {
        assert!(word_overlap(&input("The nodule is in the right upper lobe.")) > 0.9);
        assert!(word_overlap(&input("Please consult your physician.")) < 0.1);
        assert_eq!(word_overlap(&input("")), 0.0);
        assert_eq!(answer_length(&input("one two three")), 3.0);
    }
}
