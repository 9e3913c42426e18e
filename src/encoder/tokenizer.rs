//! Text → token ids, as the model was trained: the folder's `tokenizer.json` through the
//! `tokenizers` crate, or a WordPiece tokenizer built from `vocab.txt` and
//! `tokenizer_config.json` the way transformers' `BertTokenizerFast` builds it. Padding is
//! the model's business (it masks), so the tokenizer never pads; it truncates at the limit.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::Deserialize;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{Model, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::config::TokenizerFiles;

/// A tokenizer that adds `[CLS]`/`[SEP]` and truncates to `max_tokens` (both included).
pub struct TextTokenizer {
    inner: Tokenizer,
    lowercase_input: bool,
}

/// The `BertTokenizer` settings of `tokenizer_config.json`, with transformers' defaults.
#[derive(Debug, Deserialize)]
struct BertTokenizerConfig {
    #[serde(default = "yes")]
    do_lower_case: bool,
    #[serde(default)]
    strip_accents: Option<bool>,
    #[serde(default = "yes")]
    tokenize_chinese_chars: bool,
    #[serde(default = "unk")]
    unk_token: SpecialToken,
    #[serde(default = "cls")]
    cls_token: SpecialToken,
    #[serde(default = "sep")]
    sep_token: SpecialToken,
}

fn yes() -> bool {
    true
}
fn unk() -> SpecialToken {
    SpecialToken::Plain("[UNK]".into())
}
fn cls() -> SpecialToken {
    SpecialToken::Plain("[CLS]".into())
}
fn sep() -> SpecialToken {
    SpecialToken::Plain("[SEP]".into())
}

/// transformers writes a special token either as a string or as an `AddedToken` object.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SpecialToken {
    Plain(String),
    Added { content: String },
}

impl SpecialToken {
    fn text(&self) -> &str {
        match self {
            SpecialToken::Plain(s) | SpecialToken::Added { content: s } => s,
        }
    }
}

impl TextTokenizer {
    /// Loads the tokenizer; `lowercase_input` is sentence-transformers' `do_lower_case`.
    pub fn load(files: &TokenizerFiles, max_tokens: usize, lowercase_input: bool) -> Result<Self> {
        let mut inner = match files {
            TokenizerFiles::Json(path) => Tokenizer::from_file(path)
                .map_err(|e| anyhow!("{}: cannot load the tokenizer: {e}", path.display()))?,
            TokenizerFiles::Vocab { vocab, config } => from_vocab(vocab, config.as_deref())?,
        };
        inner.with_padding(None);
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| anyhow!("cannot truncate at {max_tokens} tokens: {e}"))?;
        Ok(TextTokenizer {
            inner,
            lowercase_input,
        })
    }

    /// Token ids of one text, special tokens included. sentence-transformers strips the text
    /// (and lower-cases it when configured) before tokenizing; so does this.
    pub fn ids(&self, text: &str) -> Result<Vec<u32>> {
        let text = text.trim();
        let lowered;
        let text = if self.lowercase_input {
            lowered = text.to_lowercase();
            lowered.as_str()
        } else {
            text
        };
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| anyhow!("cannot tokenize: {e}"))?;
        Ok(encoding.get_ids().to_vec())
    }
}

fn from_vocab(vocab: &Path, config: Option<&Path>) -> Result<Tokenizer> {
    let settings: BertTokenizerConfig = match config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("{}: cannot read", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{}: not a tokenizer config", path.display()))?
        }
        None => serde_json::from_str("{}").context("default tokenizer config")?,
    };
    let vocab_str = vocab
        .to_str()
        .with_context(|| format!("{}: path is not UTF-8", vocab.display()))?;
    let model = WordPiece::from_file(vocab_str)
        .unk_token(settings.unk_token.text().to_string())
        .build()
        .map_err(|e| anyhow!("{}: not a WordPiece vocabulary: {e}", vocab.display()))?;
    let id = |token: &SpecialToken| {
        model
            .token_to_id(token.text())
            .with_context(|| format!("{}: has no token {}", vocab.display(), token.text()))
    };
    let cls_id = id(&settings.cls_token)?;
    let sep_id = id(&settings.sep_token)?;
    id(&settings.unk_token)?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(
            true,
            settings.tokenize_chinese_chars,
            settings.strip_accents,
            settings.do_lower_case,
        )))
        .with_pre_tokenizer(Some(BertPreTokenizer))
        .with_post_processor(Some(BertProcessing::new(
            (settings.sep_token.text().to_string(), sep_id),
            (settings.cls_token.text().to_string(), cls_id),
        )));
    Ok(tokenizer)
}
