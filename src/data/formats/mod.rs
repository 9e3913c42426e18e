//! One parser per shape in GUIDE section 2. Each turns one JSON record into zero or more [`Record`]s.

mod candidates;
mod demos;
mod edits;
mod llava;
mod pairs;
mod qa;
mod scores;
mod urls;
mod verdicts;

pub use verdicts::utc_time;

use serde_json::Value;

use super::json_stream::RecordLoc;
use super::warnings::Warnings;
use super::Record;

/// The shapes `vital import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// LLaVA / LLaVA-Med / BioMed-VITAL instruction data: `{id, image, conversations}`.
    Llava,
    /// Generated candidates with several answers per question: `{id, image, rounds:[{question, answers}]}`.
    Candidates,
    /// Clinician pairs: `{img, fig_caption, inline_mention, question, answer_positive, answer_negative}`.
    Pairs,
    /// One question per line evaluation records (`llava_med_qa50.jsonl`), grouped by `pair_id`.
    Qa,
    /// Clinician-selected demonstrations (`clinician_demos.json`).
    Demos,
    /// Judge scores: `{sample_id, round, answer, score, judge}`.
    Scores,
    /// Image URL lists: `{pair_id, url | pmc_tar_url, im_path?}`.
    Urls,
    /// Reviewers' corrected answers: `{id, round, answer?, original, edited, reviewer, reasons}`.
    Edits,
    /// Reviewers' ✓/✗ verdicts: `{sample_id, round, answer, verdict, reviewer, time?}`.
    Verdicts,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Llava => "llava",
            Format::Candidates => "candidates",
            Format::Pairs => "pairs",
            Format::Qa => "qa",
            Format::Demos => "demos",
            Format::Scores => "scores",
            Format::Urls => "urls",
            Format::Edits => "edits",
            Format::Verdicts => "verdicts",
        }
    }

    /// A fresh parser for one file of this shape.
    pub fn parser(self) -> Box<dyn RecordParser> {
        match self {
            Format::Llava => Box::new(llava::LlavaParser),
            Format::Candidates => Box::new(candidates::CandidatesParser),
            Format::Pairs => Box::new(pairs::PairsParser),
            Format::Qa => Box::new(qa::QaParser::default()),
            Format::Demos => Box::new(demos::DemosParser),
            Format::Scores => Box::new(scores::ScoresParser),
            Format::Urls => Box::new(urls::UrlsParser),
            Format::Edits => Box::new(edits::EditsParser),
            Format::Verdicts => Box::new(verdicts::VerdictsParser),
        }
    }
}

/// Parses the records of one file. `finish` flushes shapes that group several records.
pub trait RecordParser {
    fn parse(
        &mut self,
        value: &Value,
        loc: RecordLoc,
        warnings: &mut Warnings,
    ) -> anyhow::Result<Vec<Record>>;

    /// The records of one record's bytes read straight into their types, without a `Value`
    /// (a parse without the DOM's maps and copies), or `None` when the record is not in the plain
    /// shape this parser reads that way: then [`RecordParser::parse`] reads its `Value`.
    /// `Some` only where `parse` would return the same records and add no warning, so the
    /// two paths cannot disagree; an odd or broken record always takes `parse`.
    fn parse_plain(&mut self, _bytes: &[u8], _loc: RecordLoc) -> Option<Vec<Record>> {
        None
    }

    fn finish(&mut self, _warnings: &mut Warnings) -> anyhow::Result<Vec<Record>> {
        Ok(Vec::new())
    }
}

/// Turns a `from`/`value` conversation into rounds: human turns open a round, gpt turns answer it.
/// Consecutive gpt turns become extra candidate answers; a dangling last question stays unanswered.
pub(crate) fn conversation_rounds(
    fields: &super::fields::Fields,
    warnings: &mut Warnings,
) -> anyhow::Result<Vec<super::Round>> {
    let loc = fields.loc;
    let turns = match fields.get(&["conversations", "conversation"]) {
        Some((_, Value::Array(turns))) => turns,
        Some((_, other)) => anyhow::bail!(
            "{loc}: `conversations` is {}, expected an array",
            super::fields::type_name(other)
        ),
        None => anyhow::bail!("{loc}: missing field `conversations`"),
    };
    let mut rounds: Vec<super::Round> = Vec::new();
    for (i, turn) in turns.iter().enumerate() {
        let turn_fields = super::fields::Fields {
            obj: match turn {
                Value::Object(o) => o,
                other => {
                    warnings.add(
                        "malformed turn skipped",
                        format!("{loc}: turn {i} is {}", super::fields::type_name(other)),
                    );
                    continue;
                }
            },
            loc,
        };
        let speaker = turn_fields
            .text(&["from", "role"], warnings)
            .unwrap_or_default();
        let Some(text) = turn_fields.text(&["value", "content"], warnings) else {
            warnings.add(
                "malformed turn skipped",
                format!("{loc}: turn {i} has no text"),
            );
            continue;
        };
        if text.trim().is_empty() {
            warnings.add("empty turn skipped", format!("{loc}: turn {i}"));
            continue;
        }
        match speaker.to_ascii_lowercase().as_str() {
            "human" | "user" => rounds.push(super::Round {
                question: text,
                answers: Vec::new(),
            }),
            "gpt" | "assistant" | "model" => match rounds.last_mut() {
                Some(round) => {
                    if !round.answers.is_empty() {
                        warnings.add(
                            "consecutive answers kept as candidates of one question",
                            format!("{loc}: turn {i}"),
                        );
                    }
                    round.answers.push(text)
                }
                None => warnings.add(
                    "answer before any question skipped",
                    format!("{loc}: turn {i}"),
                ),
            },
            other => warnings.add(
                "unknown speaker skipped",
                format!("{loc}: turn {i} is from {other:?}"),
            ),
        }
    }
    if rounds.last().is_some_and(|r| r.answers.is_empty()) {
        warnings.add(
            "unanswered last question kept",
            format!("{loc}: round {}", rounds.len()),
        );
    }
    Ok(rounds)
}

/// The record's id from the first of `keys` present, or an error naming the record and `keys[0]`.
pub(crate) fn required_id(fields: &super::fields::Fields, keys: &[&str]) -> anyhow::Result<String> {
    id_text(fields, keys)
        .ok_or_else(|| anyhow::anyhow!("{}: missing field `{}`", fields.loc, keys[0]))
}

/// The text of an id field, which real files write as a string or a number.
pub(crate) fn id_text(fields: &super::fields::Fields, keys: &[&str]) -> Option<String> {
    match fields.get(keys)?.1 {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The figure fields every sample shape shares, read under the names the different releases use.
pub(crate) fn figure_fields(
    fields: &super::fields::Fields,
    id: String,
    warnings: &mut Warnings,
) -> super::Sample {
    super::Sample {
        id,
        image: fields.text(&["image", "img", "imgs", "image_path"], warnings),
        caption: fields
            .text(&["fig_caption", "caption"], warnings)
            .unwrap_or_default(),
        mentions: fields.mentions(
            &["in_text_mention", "inline_mention", "mentions", "context"],
            warnings,
        ),
        fig_label: fields.text(&["fig_label"], warnings),
        domains: fields.domains(&["domain", "domains"], warnings),
        rounds: Vec::new(),
        is_demo: false,
    }
}
