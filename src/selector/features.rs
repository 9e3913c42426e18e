//! Turning an [`AnswerInput`] into model inputs: hashed n-gram ids per text field plus a
//! dense vector of engineered signals (overlap, length, hedging, refusals, image statistics).
//!
//! The [`Featurizer`] trait lets other encoders plug in; [`HashedFeaturizer`] is the built-in
//! one that needs no pretrained weights. Batches are built in parallel and reuse buffers.

use std::cell::RefCell;

use serde::{Deserialize, Serialize};

pub use super::feature_batch::{featurize_batch, featurize_refs, FeatureBatch};
use super::image_stats::ImageStatsCache;
use super::text::{self, Lexicon};
use super::AnswerInput;

/// Shape of what a featurizer produces; the model is built from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureLayout {
    /// Buckets per field; field `f` uses ids `f * buckets .. (f + 1) * buckets`.
    pub buckets: usize,
    /// Most ids kept per field (question, answer, context).
    pub field_caps: Vec<usize>,
    /// Length of the dense vector.
    pub dense_dim: usize,
    /// Index of the 0/1 "has image" flag in the dense vector; the image statistics follow it.
    pub image_flag: Option<usize>,
    pub image_stats: usize,
}

/// One answer's features; buffers are reused between calls.
#[derive(Debug, Clone, Default)]
pub struct FeatureRow {
    pub field_ids: Vec<Vec<u32>>,
    pub dense: Vec<f32>,
}

/// Something that turns answers into hashed ids + dense signals.
pub trait Featurizer: Send + Sync {
    fn layout(&self) -> &FeatureLayout;
    /// Overwrites `row` with the features of `input`.
    fn featurize(&self, input: &AnswerInput, row: &mut FeatureRow);
}

/// Settings of the built-in featurizer; saved beside the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HashedFeaturizerConfig {
    /// Hash buckets per field.
    pub buckets: usize,
    pub question_cap: usize,
    pub answer_cap: usize,
    /// Caption + inline mentions.
    pub context_cap: usize,
    /// Character 3-grams of words fill what the word n-grams leave of each cap.
    pub char_ngrams: bool,
    /// Decode images for statistics (cached per path); off = always "no image".
    pub use_images: bool,
}

impl Default for HashedFeaturizerConfig {
    fn default() -> Self {
        HashedFeaturizerConfig {
            buckets: 1 << 16,
            question_cap: 32,
            answer_cap: 64,
            context_cap: 48,
            char_ngrams: true,
            use_images: true,
        }
    }
}

/// Names of the dense signals, in order (for reports and debugging).
pub const SIGNAL_NAMES: [&str; 24] = [
    "qa_jaccard",
    "question_in_answer",
    "answer_in_context",
    "answer_context_hits_log",
    "question_in_context",
    "answer_words_log",
    "answer_question_len_ratio_log",
    "hedges_log",
    "refusal",
    "round_position",
    "first_round",
    "image_words_log",
    "answer_numbers_log",
    "number_unit_overlap",
    "yes_no_question",
    "answer_starts_yes_no",
    "yes_no_answered",
    "answer_unique_ratio",
    "answer_asks_back",
    "has_image",
    "image_gray_mean",
    "image_gray_std",
    "image_aspect_log",
    "image_colorfulness",
];
const IMAGE_FLAG: usize = 19;

const SALT_UNIGRAM: u64 = 0x9e37_79b9_7f4a_7c15;
const SALT_BIGRAM: u64 = 0xc2b2_ae3d_27d4_eb4f;
const SALT_CHAR3: u64 = 0x1656_67b1_9e37_79f9;

/// Per-thread buffers, and the last context seen (answers of one figure arrive together).
#[derive(Default)]
struct Scratch {
    question_words: Vec<u64>,
    answer_words: Vec<u64>,
    answer_numbers: Vec<u64>,
    lower_answer: String,
    context_key: (String, Vec<String>),
    context_ids: Vec<u32>,
    context_words: Vec<u64>,
    context_numbers: Vec<u64>,
    context_valid: bool,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Word-level facts collected while hashing one field.
#[derive(Default)]
struct FieldStats {
    words: usize,
    hedges: usize,
    image_words: usize,
    first_word: u64,
}

/// The built-in featurizer: hashed word uni/bi-grams and character 3-grams + engineered signals.
pub struct HashedFeaturizer {
    config: HashedFeaturizerConfig,
    layout: FeatureLayout,
    lexicon: Lexicon,
    images: ImageStatsCache,
}

impl HashedFeaturizer {
    pub fn new(config: HashedFeaturizerConfig) -> Self {
        let layout = FeatureLayout {
            buckets: config.buckets.max(1),
            field_caps: vec![config.question_cap, config.answer_cap, config.context_cap],
            dense_dim: SIGNAL_NAMES.len(),
            image_flag: Some(IMAGE_FLAG),
            image_stats: SIGNAL_NAMES.len() - IMAGE_FLAG - 1,
        };
        HashedFeaturizer {
            config,
            layout,
            lexicon: Lexicon::default(),
            images: ImageStatsCache::default(),
        }
    }

    pub fn config(&self) -> &HashedFeaturizerConfig {
        &self.config
    }

    /// Hashes the words of `parts` into `ids` (field `field`) and collects content words and
    /// numbers. Word n-grams take up to 2/3 of the cap, character 3-grams fill the rest.
    fn hash_field(
        &self,
        parts: &[&str],
        field: usize,
        ids: &mut Vec<u32>,
        content: &mut Vec<u64>,
        mut numbers: Option<&mut Vec<u64>>,
    ) -> FieldStats {
        let cap = self.layout.field_caps[field];
        let buckets = self.layout.buckets as u64;
        let base = (field * self.layout.buckets) as u32;
        let bucket = |h: u64| base + (text::mix(h) % buckets) as u32;
        let word_cap = if self.config.char_ngrams {
            cap * 2 / 3
        } else {
            cap
        };
        let mut stats = FieldStats::default();
        ids.clear();
        content.clear();
        for part in parts {
            let mut prev = 0u64;
            text::for_each_word(part, |word| {
                let h = text::fnv1a_lower(word);
                if stats.words == 0 {
                    stats.first_word = h;
                }
                stats.words += 1;
                if ids.len() < word_cap {
                    ids.push(bucket(h ^ SALT_UNIGRAM));
                }
                if prev != 0 && ids.len() < word_cap {
                    ids.push(bucket(prev.rotate_left(17) ^ h ^ SALT_BIGRAM));
                }
                prev = h;
                let lex = &self.lexicon;
                if !lex.is_stopword(h) {
                    content.push(h);
                }
                stats.hedges += lex.is_hedge(h) as usize;
                stats.image_words += lex.is_image_word(h) as usize;
                if let Some(numbers) = numbers.as_deref_mut() {
                    if word[0].is_ascii_digit() || lex.is_unit(h) {
                        numbers.push(h);
                    }
                }
            });
        }
        if self.config.char_ngrams {
            'parts: for part in parts {
                let mut full = false;
                text::for_each_word(part, |word| {
                    // fastText-style boundaries: "<lung>" → "<lu", "lun", "ung", "ng>".
                    let n = word.len();
                    for i in 0..n {
                        if ids.len() >= cap {
                            full = true;
                            return;
                        }
                        let at = |k: usize| match k {
                            0 => b'<',
                            k if k == n + 1 => b'>',
                            k => word[k - 1].to_ascii_lowercase(),
                        };
                        let tri = (at(i) as u64) << 16 | (at(i + 1) as u64) << 8 | at(i + 2) as u64;
                        ids.push(bucket(tri ^ SALT_CHAR3));
                    }
                });
                if full {
                    break 'parts;
                }
            }
        }
        content.sort_unstable();
        content.dedup();
        if let Some(numbers) = numbers {
            numbers.sort_unstable();
            numbers.dedup();
        }
        stats
    }
}

fn share(part: usize, whole: usize) -> f32 {
    if whole == 0 {
        0.0
    } else {
        part as f32 / whole as f32
    }
}

fn ln1p(n: usize) -> f32 {
    (n as f32).ln_1p()
}

impl Featurizer for HashedFeaturizer {
    fn layout(&self) -> &FeatureLayout {
        &self.layout
    }

    fn featurize(&self, input: &AnswerInput, row: &mut FeatureRow) {
        row.field_ids.resize_with(3, Vec::new);
        SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let s = &mut *guard;
            let same_context = s.context_valid
                && s.context_key.0 == input.caption
                && s.context_key.1 == input.mentions;
            if !same_context {
                let mut parts: Vec<&str> = Vec::with_capacity(1 + input.mentions.len());
                parts.push(&input.caption);
                parts.extend(input.mentions.iter().map(String::as_str));
                let (mut ids, mut words, mut numbers) = (
                    std::mem::take(&mut s.context_ids),
                    std::mem::take(&mut s.context_words),
                    std::mem::take(&mut s.context_numbers),
                );
                numbers.clear();
                self.hash_field(&parts, 2, &mut ids, &mut words, Some(&mut numbers));
                (s.context_ids, s.context_words, s.context_numbers) = (ids, words, numbers);
                s.context_key.0.clone_from(&input.caption);
                s.context_key.1.clone_from(&input.mentions);
                s.context_valid = true;
            }
            row.field_ids[2].clone_from(&s.context_ids);

            let q = self.hash_field(
                &[&input.question],
                0,
                &mut row.field_ids[0],
                &mut s.question_words,
                None,
            );
            s.answer_numbers.clear();
            let a = self.hash_field(
                &[&input.answer],
                1,
                &mut row.field_ids[1],
                &mut s.answer_words,
                Some(&mut s.answer_numbers),
            );
            s.lower_answer.clear();
            s.lower_answer.push_str(&input.answer);
            s.lower_answer.make_ascii_lowercase();
            let hedge_phrases = text::count_phrases(&s.lower_answer, text::HEDGE_PHRASES);
            let refusal = text::count_phrases(&s.lower_answer, text::REFUSAL_PHRASES) > 0;

            let (qw, aw, cw) = (&s.question_words, &s.answer_words, &s.context_words);
            let qa = text::intersection_len(qw, aw);
            let ac = text::intersection_len(aw, cw);
            let number_hits = text::intersection_len(&s.answer_numbers, &s.context_numbers);
            let lex = &self.lexicon;
            let yes_no_q = q.words > 0 && lex.is_yes_no_opener(q.first_word);
            let starts_yes_no = a.first_word == lex.yes || a.first_word == lex.no;
            let round = input.round_position.min(9) as f32 / 9.0;
            let d = &mut row.dense;
            d.clear();
            d.extend_from_slice(&[
                share(qa, qw.len() + aw.len() - qa),
                share(qa, qw.len()),
                share(ac, aw.len()),
                ln1p(ac),
                share(text::intersection_len(qw, cw), qw.len()),
                ln1p(a.words),
                ((a.words as f32 + 1.0) / (q.words as f32 + 1.0)).ln(),
                ln1p(a.hedges + hedge_phrases),
                refusal as u8 as f32,
                round,
                (input.round_position == 0) as u8 as f32,
                ln1p(a.image_words),
                ln1p(s.answer_numbers.len()),
                share(number_hits, s.answer_numbers.len()),
                yes_no_q as u8 as f32,
                starts_yes_no as u8 as f32,
                (yes_no_q && starts_yes_no) as u8 as f32,
                share(aw.len(), a.words),
                input.answer.trim_end().ends_with('?') as u8 as f32,
            ]);
            let stats = match (
                input.figure_stats,
                &input.image_path,
                self.config.use_images,
            ) {
                (_, _, false) => None,
                (super::FigureStats::Known(stats), _, true) => stats,
                (super::FigureStats::Unknown, Some(path), true) => self.images.get(path),
                (super::FigureStats::Unknown, None, true) => None,
            };
            d.push(stats.is_some() as u8 as f32);
            d.extend_from_slice(&stats.unwrap_or_default());
        });
    }
}

#[cfg(test)]
pub(crate) mod tests;
