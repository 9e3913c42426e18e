//! What the selector reads from a sentence encoder, per answer: the texts it embeds (question,
//! answer, caption + mentions) and the rows built from their vectors, as an [`EmbeddingTable`]
//! keyed by answer id so they flow through the same path as precomputed embeddings.
//!
//! * [`EncoderInputs::Similarities`]: `[cos(question, answer), cos(context, answer), mean
//!   cos(answer, other answers of the round), answer vector…]`; the model passes the three
//!   similarities through and learns a projection of the answer vector.
//! * [`EncoderInputs::Concat`]: `[question, context, answer]` vectors, for the paper's head.
//! * [`EncoderInputs::Signals`]: `[cos(question, answer), cos(context, answer), mean cos(answer,
//!   other answers of the round), ln(1 + answer words)]`, the zero-shot signals alone, for the
//!   few-pairs model (a linear head that starts from cos(question, answer)).
//! * [`EncoderInputs::Joined`]: the answer vector alone, for the paper's preset, whose answer text
//!   already joins caption, mention, question and answer (its question and caption are empty,
//!   so their vectors would be the same empty-text vector in every row).
//!
//! With an open_clip encoder (BiomedCLIP) the figure's image vector, in the same space as the
//! texts', joins in ([`encoder_table_with_images`]): Similarities rows gain `[has image,
//! cos(image, answer), cos(image, question)]` after the three text similarities and the image
//! vector after the answer vector; Concat rows become `[image, question, context, answer]`, Joined
//! rows `[image, answer]`. A
//! figure without an image file (or one that could not be decoded) has zeros there.
//!
//! Vectors are L2-normalised, so a cosine is a dot product. A round is the answers sharing
//! figure, round position and question.

use std::collections::HashMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{AnswerInput, EmbeddingTable};

/// Leading similarity columns of an [`EncoderInputs::Similarities`] row.
pub const SIMILARITIES: usize = 3;
/// Columns an image vector adds to the similarities: has image, image·answer, image·question.
pub const IMAGE_SIMILARITIES: usize = 3;

/// Leading pass-through columns of a Similarities row, with or without image vectors.
pub fn raw_columns(images: bool) -> usize {
    if images {
        SIMILARITIES + IMAGE_SIMILARITIES
    } else {
        SIMILARITIES
    }
}

/// How encoder vectors become model inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderInputs {
    Similarities,
    Concat,
    Joined,
    Signals,
}

impl EncoderInputs {
    /// Row width for an encoder of width `dim`.
    pub fn width(self, dim: usize) -> usize {
        match self {
            EncoderInputs::Similarities => SIMILARITIES + dim,
            EncoderInputs::Concat => 3 * dim,
            EncoderInputs::Joined => dim,
            EncoderInputs::Signals => SIMILARITIES + 1,
        }
    }

    /// Row width with an image vector per answer as well.
    pub fn width_with_images(self, dim: usize) -> usize {
        match self {
            EncoderInputs::Similarities => SIMILARITIES + IMAGE_SIMILARITIES + 2 * dim,
            EncoderInputs::Concat => 4 * dim,
            EncoderInputs::Joined => 2 * dim,
            EncoderInputs::Signals => SIMILARITIES + IMAGE_SIMILARITIES + 1,
        }
    }
}

/// The caption and the inline mentions, one per line: the figure context an answer is read in.
pub fn context_text(caption: &str, mentions: &[String]) -> String {
    let mut text = caption.to_string();
    for mention in mentions {
        text.push('\n');
        text.push_str(mention);
    }
    text
}

/// The three texts of an answer the encoder embeds: question, answer, context.
pub fn texts_of(input: &AnswerInput) -> [String; 3] {
    [
        input.question.clone(),
        input.answer.clone(),
        context_text(&input.caption, &input.mentions),
    ]
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Builds one row per answer from `vector(text)` (every text of every answer must have one).
pub fn encoder_table<'v>(
    inputs: &[AnswerInput],
    kind: EncoderInputs,
    dim: usize,
    vector: &dyn Fn(&str) -> Option<&'v [f32]>,
) -> Result<EmbeddingTable> {
    build(inputs, kind, dim, vector, None)
}

/// [`encoder_table`] plus each answer's figure vector, `image(answer)` (None: no image).
pub fn encoder_table_with_images<'v>(
    inputs: &[AnswerInput],
    kind: EncoderInputs,
    dim: usize,
    vector: &dyn Fn(&str) -> Option<&'v [f32]>,
    image: &dyn Fn(&AnswerInput) -> Option<&'v [f32]>,
) -> Result<EmbeddingTable> {
    build(inputs, kind, dim, vector, Some(image))
}

type ImageLookup<'a, 'v> = Option<&'a dyn Fn(&AnswerInput) -> Option<&'v [f32]>>;

fn build<'v>(
    inputs: &[AnswerInput],
    kind: EncoderInputs,
    dim: usize,
    vector: &dyn Fn(&str) -> Option<&'v [f32]>,
    image: ImageLookup<'_, 'v>,
) -> Result<EmbeddingTable> {
    let get = |text: &str, what: &str, id: i64| -> Result<&'v [f32]> {
        let v = vector(text).with_context(|| {
            format!("answer {id}: its {what} has no cached embedding (run `vital embed`)")
        })?;
        anyhow::ensure!(
            v.len() == dim,
            "answer {id}: a cached {what} vector is {}-d, the encoder's are {dim}-d",
            v.len()
        );
        Ok(v)
    };
    // Answers of each round, for the answer · other answers similarity.
    let mut rounds: HashMap<(&str, usize, &str), Vec<usize>> = HashMap::new();
    for (i, input) in inputs.iter().enumerate() {
        rounds
            .entry((&input.figure_key, input.round_position, &input.question))
            .or_default()
            .push(i);
    }
    let width = match image {
        Some(_) => kind.width_with_images(dim),
        None => kind.width(dim),
    };
    let zeros = vec![0f32; dim];
    let mut data = Vec::with_capacity(inputs.len() * width);
    for input in inputs {
        let id = input.answer_id;
        let [question, answer, context] = texts_of(input);
        let a = get(&answer, "answer", id)?;
        let img = match image {
            Some(lookup) => {
                let v = lookup(input);
                if let Some(v) = v {
                    anyhow::ensure!(
                        v.len() == dim,
                        "answer {id}: its figure's cached vector is {}-d, the encoder's are {dim}-d",
                        v.len()
                    );
                }
                Some(v)
            }
            None => None,
        };
        match kind {
            EncoderInputs::Joined => {
                if let Some(v) = img {
                    data.extend_from_slice(v.unwrap_or(&zeros));
                }
                data.extend_from_slice(a);
            }
            EncoderInputs::Concat => {
                if let Some(v) = img {
                    data.extend_from_slice(v.unwrap_or(&zeros));
                }
                data.extend_from_slice(get(&question, "question", id)?);
                data.extend_from_slice(get(&context, "caption and mentions", id)?);
                data.extend_from_slice(a);
            }
            EncoderInputs::Similarities | EncoderInputs::Signals => {
                let q = get(&question, "question", id)?;
                let c = get(&context, "caption and mentions", id)?;
                let mates = &rounds[&(
                    input.figure_key.as_str(),
                    input.round_position,
                    input.question.as_str(),
                )];
                let mut sum = 0.0;
                let mut n = 0usize;
                for &m in mates {
                    let other = &inputs[m];
                    // A corrected answer (negative id) is no one's round-mate: scoring, which
                    // reads only the stored answers, never sees it beside them.
                    if other.answer_id == id || other.answer_id < 0 {
                        continue;
                    }
                    sum += dot(a, get(&other.answer, "answer", other.answer_id)?);
                    n += 1;
                }
                let round = if n == 0 { 0.0 } else { sum / n as f32 };
                data.extend_from_slice(&[dot(q, a), dot(c, a), round]);
                match img {
                    Some(Some(v)) => data.extend_from_slice(&[1.0, dot(v, a), dot(v, q)]),
                    Some(None) => data.extend_from_slice(&[0.0; IMAGE_SIMILARITIES]),
                    None => {}
                }
                if kind == EncoderInputs::Signals {
                    let words = input.answer.split_whitespace().count();
                    data.push((1.0 + words as f32).ln());
                    continue;
                }
                data.extend_from_slice(a);
                if let Some(v) = img {
                    data.extend_from_slice(v.unwrap_or(&zeros));
                }
            }
        }
    }
    EmbeddingTable::new(inputs.iter().map(|a| a.answer_id).collect(), width, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(id: i64, question: &str, answer: &str) -> AnswerInput {
        AnswerInput {
            answer_id: id,
            figure_key: "fig".into(),
            caption: "cap".into(),
            mentions: vec!["m".into()],
            question: question.into(),
            answer: answer.into(),
            round_position: 0,
            image_path: None,
            figure_stats: Default::default(),
        }
    }

    #[test]
    fn similarity_rows_hold_the_three_cosines_then_the_answer_vector() {
        let vectors: HashMap<String, Vec<f32>> = [
            ("q", vec![1.0, 0.0]),
            ("a", vec![0.6, 0.8]),
            ("b", vec![0.0, 1.0]),
            ("cap\nm", vec![0.0, 1.0]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let lookup = |t: &str| vectors.get(t).map(Vec::as_slice);
        let inputs = [input(1, "q", "a"), input(2, "q", "b")];
        let table = encoder_table(&inputs, EncoderInputs::Similarities, 2, &lookup).unwrap();
        assert_eq!(table.dim(), 5);
        let row = table.get(1).unwrap();
        let expect = [0.6, 0.8, 0.8, 0.6, 0.8];
        for (got, want) in row.iter().zip(expect) {
            assert!((got - want).abs() < 1e-6, "{row:?}");
        }
        let concat = encoder_table(&inputs, EncoderInputs::Concat, 2, &lookup).unwrap();
        assert_eq!(concat.get(2).unwrap(), &[1.0, 0.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn joined_rows_hold_the_answer_vector_alone_and_need_no_question_or_caption_vector() {
        let vectors: HashMap<String, Vec<f32>> = [("joined", vec![0.6, 0.8])]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let lookup = |t: &str| vectors.get(t).map(Vec::as_slice);
        let joined = AnswerInput {
            question: String::new(),
            caption: String::new(),
            mentions: Vec::new(),
            ..input(3, "", "joined")
        };
        let table = encoder_table(
            std::slice::from_ref(&joined),
            EncoderInputs::Joined,
            2,
            &lookup,
        )
        .unwrap();
        assert_eq!(table.dim(), 2);
        assert_eq!(table.get(3).unwrap(), &[0.6, 0.8]);
        let image = |_: &AnswerInput| Some(&[1.0f32, 0.0][..]);
        let with_image =
            encoder_table_with_images(&[joined], EncoderInputs::Joined, 2, &lookup, &image)
                .unwrap();
        assert_eq!(with_image.get(3).unwrap(), &[1.0, 0.0, 0.6, 0.8]);
    }

    #[test]
    fn image_vectors_add_their_similarities_and_themselves_and_zeros_without_a_figure() {
        let vectors: HashMap<String, Vec<f32>> = [
            ("q", vec![1.0, 0.0]),
            ("a", vec![0.6, 0.8]),
            ("cap\nm", vec![0.0, 1.0]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let lookup = |t: &str| vectors.get(t).map(Vec::as_slice);
        let figure = [0.0f32, 1.0];
        let image = |i: &AnswerInput| (i.answer_id == 1).then_some(&figure[..]);
        let inputs = [input(1, "q", "a"), input(2, "q", "a")];
        let t = encoder_table_with_images(&inputs, EncoderInputs::Similarities, 2, &lookup, &image)
            .unwrap();
        assert_eq!(t.dim(), EncoderInputs::Similarities.width_with_images(2));
        let row = t.get(1).unwrap();
        let expect = [0.6, 0.8, 1.0, 1.0, 0.8, 0.0, 0.6, 0.8, 0.0, 1.0];
        for (got, want) in row.iter().zip(expect) {
            assert!((got - want).abs() < 1e-6, "{row:?}");
        }
        assert_eq!(&t.get(2).unwrap()[3..6], &[0.0, 0.0, 0.0]);
        assert_eq!(&t.get(2).unwrap()[8..], &[0.0, 0.0]);
        let concat =
            encoder_table_with_images(&inputs, EncoderInputs::Concat, 2, &lookup, &image).unwrap();
        assert_eq!(
            concat.get(1).unwrap(),
            &[0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.6, 0.8]
        );
    }

    #[test]
    fn a_text_without_a_vector_names_the_answer_and_the_field() {
        let lookup = |t: &str| (t != "a").then_some(&[1.0f32][..]);
        let err = encoder_table(&[input(7, "q", "a")], EncoderInputs::Concat, 1, &lookup)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("answer 7") && err.contains("answer has no cached"),
            "{err}"
        );
    }
}
