//! The shapes written for each format, built from a scanned sample.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::{Map, Value};

use super::scan::{AnswerRow, RoundRows, SampleRows};
use crate::data::display_text;

#[derive(Serialize)]
pub struct Turn<'a> {
    pub from: &'static str,
    pub value: Cow<'a, str>,
}

#[derive(Serialize)]
pub struct Llava<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<&'a str>,
    pub conversations: Vec<Turn<'a>>,
}

/// Alternating human/gpt turns for the kept rounds; the first question carries `<image>\n` when
/// the sample has an image and the question does not already hold the token.
pub fn conversation<'a>(
    image: bool,
    kept: &[(&'a RoundRows, &'a AnswerRow)],
    plain: bool,
) -> Vec<Turn<'a>> {
    let mut turns = Vec::with_capacity(kept.len() * 2);
    for (i, (round, answer)) in kept.iter().enumerate() {
        let question: Cow<str> = if plain {
            Cow::Owned(display_text(&round.question))
        } else if i == 0 && image && !round.question.contains("<image>") {
            Cow::Owned(format!("<image>\n{}", round.question))
        } else {
            Cow::Borrowed(round.question.as_str())
        };
        turns.push(Turn {
            from: "human",
            value: question,
        });
        turns.push(Turn {
            from: "gpt",
            value: Cow::Borrowed(answer.text.as_str()),
        });
    }
    turns
}

#[derive(Serialize)]
pub struct Mention<'a> {
    pub tokens: &'a str,
    pub entities: [(); 0],
}

/// The demonstration shape of `clinician_demos.json`, re-importable with `vital import`.
#[derive(Serialize)]
pub struct Demo<'a> {
    pub id: Value,
    pub imgs: Option<&'a str>,
    pub domain: Map<String, Value>,
    pub conversations: Vec<Turn<'a>>,
    pub fig_caption: &'a str,
    pub fig_label: Option<&'a str>,
    pub pair_id: String,
    pub in_text_mention: Vec<Mention<'a>>,
}

/// The five modality flags every demonstration carries, plus any other tag of the sample.
const DOMAINS: [&str; 5] = ["chest_xray", "mri", "ct_scan", "histology", "gross"];

pub fn demo<'a>(s: &'a SampleRows, conversations: Vec<Turn<'a>>) -> Demo<'a> {
    let bare = s.ext_id.strip_prefix("demo-").unwrap_or(&s.ext_id);
    let id = match bare.parse::<u64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(bare),
    };
    let mut domain = Map::new();
    for d in DOMAINS {
        domain.insert(d.to_string(), Value::Bool(s.domains.iter().any(|x| x == d)));
    }
    for d in &s.domains {
        domain.insert(d.clone(), Value::Bool(true));
    }
    let pair_id = s
        .image
        .as_deref()
        .and_then(|i| std::path::Path::new(i).file_stem())
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_else(|| bare.to_string());
    Demo {
        id,
        imgs: s.image.as_deref(),
        domain,
        conversations,
        fig_caption: &s.caption,
        fig_label: s.fig_label.as_deref(),
        pair_id,
        in_text_mention: s
            .mentions
            .iter()
            .map(|m| Mention {
                tokens: m,
                entities: [],
            })
            .collect(),
    }
}

/// The reference code's clinician pair shape.
#[derive(Serialize)]
pub struct Pair<'a> {
    pub img: Option<&'a str>,
    pub fig_caption: &'a str,
    pub inline_mention: String,
    pub question: Cow<'a, str>,
    pub answer_positive: &'a str,
    pub answer_negative: &'a str,
}

/// TRL's preference convention plus where the pair came from.
#[derive(Serialize)]
pub struct Dpo<'a> {
    pub prompt: Cow<'a, str>,
    pub chosen: &'a str,
    pub rejected: &'a str,
    pub image: Option<&'a str>,
    pub id: String,
    /// `human`, `edit` (a reviewer's corrected answer against the original), `judge` or
    /// `selector`.
    pub source: &'static str,
    /// Where the chosen answer's verdict came from (`single`, `unanimous`, `majority`,
    /// `adjudicated`, `unresolved`); absent when no reviewer decided it and on `edit` pairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chosen_provenance: Option<super::Provenance>,
    /// The same for the rejected answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_provenance: Option<super::Provenance>,
}

/// One answer's score, in the shape `vital import` reads as `scores`.
#[derive(Serialize)]
pub struct Score<'a> {
    pub sample_id: &'a str,
    /// 1-based.
    pub round: i64,
    /// 1-based.
    pub answer: i64,
    pub score: f64,
    pub judge: Cow<'a, str>,
    pub source: &'static str,
}
