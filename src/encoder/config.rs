//! A model folder as published on the Hugging Face hub, read into plain settings: the
//! transformer's `config.json`, the sentence-transformers files (`modules.json`,
//! `1_Pooling/config.json`, `sentence_bert_config.json`) and which weight and tokenizer files
//! exist. Every error names the file and the setting it could not accept.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

/// The `BertModel` hyper-parameters vital needs (Hugging Face `config.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    pub vocab_size: usize,
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    #[serde(default)]
    pub model_type: Option<String>,
}

// Defaults of transformers' `BertConfig`, for configs that leave a field out.
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_hidden_act() -> String {
    "gelu".into()
}
fn default_position_embedding_type() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Reads and checks `config.json`; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config: BertConfig = serde_json::from_str(text)
            .with_context(|| format!("{}: not a BERT config", path.display()))?;
        config.check(path)?;
        Ok(config)
    }

    /// The checks of [`Self::parse`], for a config made otherwise (open_clip reads one from a
    /// checkpoint's shapes); `path` names where its numbers came from.
    pub(crate) fn check(&self, path: &Path) -> Result<()> {
        let file = path.display();
        if let Some(model_type) = &self.model_type {
            ensure!(
                model_type == "bert",
                "{file}: model_type `{model_type}` is not supported (only BERT-family models, model_type `bert`)"
            );
        }
        // transformers' "gelu" is the exact (erf) GELU; the tanh variants would differ slightly.
        ensure!(
            self.hidden_act == "gelu",
            "{file}: hidden_act `{}` is not supported (only `gelu`)",
            self.hidden_act
        );
        ensure!(
            self.position_embedding_type == "absolute",
            "{file}: position_embedding_type `{}` is not supported (only `absolute`)",
            self.position_embedding_type
        );
        // Every size is checked before anything is built from it: a model is allocated whole
        // (`init`) before its weights are read, so a config alone could ask for terabytes.
        for (name, value, most) in [
            ("hidden_size", self.hidden_size, MAX_HIDDEN_SIZE),
            ("num_hidden_layers", self.num_hidden_layers, MAX_LAYERS),
            ("num_attention_heads", self.num_attention_heads, MAX_HEADS),
            (
                "intermediate_size",
                self.intermediate_size,
                MAX_INTERMEDIATE_SIZE,
            ),
            (
                "max_position_embeddings",
                self.max_position_embeddings,
                MAX_POSITIONS,
            ),
            ("type_vocab_size", self.type_vocab_size, MAX_TYPE_VOCAB_SIZE),
            ("vocab_size", self.vocab_size, MAX_VOCAB_SIZE),
        ] {
            ensure!(value > 0, "{file}: {name} is 0");
            ensure!(
                value <= most,
                "{file}: {name} {value} is more than {most}, the most vital accepts for a BERT-family encoder: refused"
            );
        }
        let parameters = self.parameter_count();
        ensure!(
            parameters <= MAX_PARAMETERS,
            "{file}: hidden_size {}, num_hidden_layers {}, intermediate_size {}, vocab_size {} and max_position_embeddings {} make {parameters} parameters ({:.1} GiB as f32), more than the {MAX_PARAMETERS} ({} GiB) vital accepts: refused",
            self.hidden_size,
            self.num_hidden_layers,
            self.intermediate_size,
            self.vocab_size,
            self.max_position_embeddings,
            parameters as f64 * 4.0 / GIB,
            MAX_PARAMETERS * 4 / (1 << 30),
        );
        ensure!(
            self.hidden_size.is_multiple_of(self.num_attention_heads),
            "{file}: hidden_size {} is not a multiple of num_attention_heads {}",
            self.hidden_size,
            self.num_attention_heads
        );
        ensure!(
            self.layer_norm_eps > 0.0,
            "{file}: layer_norm_eps must be positive"
        );
        Ok(())
    }

    /// How many numbers the model holds (every weight and bias; no pooler, no MLM head). Exact
    /// and overflow-free for any config: the sizes are multiplied as u64 after the bounds of
    /// [`Self::parse`], and saturate if called on an unchecked config.
    pub fn parameter_count(&self) -> u64 {
        let [h, layers, i, vocab, positions, types] = [
            self.hidden_size,
            self.num_hidden_layers,
            self.intermediate_size,
            self.vocab_size,
            self.max_position_embeddings,
            self.type_vocab_size,
        ]
        .map(|v| v as u64);
        let embeddings = (vocab + positions + types).saturating_mul(h) + 2 * h;
        // q, k, v and the attention output (h×h + h each), two LayerNorms, the feed-forward pair.
        let layer = 4 * (h.saturating_mul(h) + h) + 2 * 2 * h + 2 * h.saturating_mul(i) + i + h;
        embeddings.saturating_add(layers.saturating_mul(layer))
    }
}

// The largest sizes accepted in a config.json. BERT-large, the biggest common BERT-family
// encoder, has hidden_size 1024, 24 layers, intermediate_size 4096 and 512 positions; multilingual
// vocabularies reach 250 000 tokens. The bounds leave room far beyond those while refusing the
// sizes a hostile or broken file uses to exhaust memory.
const MAX_HIDDEN_SIZE: usize = 16_384;
const MAX_LAYERS: usize = 256;
const MAX_HEADS: usize = 1024;
const MAX_INTERMEDIATE_SIZE: usize = 65_536;
const MAX_POSITIONS: usize = 65_536;
const MAX_TYPE_VOCAB_SIZE: usize = 1024;
const MAX_VOCAB_SIZE: usize = 1 << 21;
/// At most 2^30 parameters: 4 GiB as f32, three times BERT-large.
pub const MAX_PARAMETERS: u64 = 1 << 30;
const GIB: f64 = (1u64 << 30) as f64;

/// How token vectors become one text vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the real (unpadded) tokens.
    Mean,
    /// The first token (`[CLS]`) of the last layer.
    Cls,
    /// Element-wise maximum over the real tokens.
    Max,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Mean => "mean",
            Pooling::Cls => "cls",
            Pooling::Max => "max",
        }
    }

    /// Reads a sentence-transformers `Pooling` config (`1_Pooling/config.json`).
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).with_context(|| format!("{}: not JSON", path.display()))?;
        let object = value
            .as_object()
            .with_context(|| format!("{}: not a JSON object", path.display()))?;
        let mut on = Vec::new();
        for (key, value) in object {
            if let Some(mode) = key.strip_prefix("pooling_mode_") {
                if value.as_bool() == Some(true) {
                    on.push(mode.to_string());
                }
            }
        }
        match on.as_slice() {
            [one] => match one.as_str() {
                "mean_tokens" => Ok(Pooling::Mean),
                "cls_token" => Ok(Pooling::Cls),
                "max_tokens" => Ok(Pooling::Max),
                other => bail!(
                    "{}: pooling_mode_{other} is not supported (only mean_tokens, cls_token or max_tokens)",
                    path.display()
                ),
            },
            [] => bail!("{}: no pooling_mode_* is true", path.display()),
            several => bail!(
                "{}: several pooling modes at once ({}) are not supported",
                path.display(),
                several.join(", ")
            ),
        }
    }
}

/// Where the weights are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WeightsFile {
    Safetensors(PathBuf),
    Pytorch(PathBuf),
}

impl WeightsFile {
    pub fn path(&self) -> &Path {
        match self {
            WeightsFile::Safetensors(p) | WeightsFile::Pytorch(p) => p,
        }
    }
}

/// Where the tokenizer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A `tokenizers` JSON file.
    Json(PathBuf),
    /// A WordPiece `vocab.txt` and the optional `tokenizer_config.json` beside it.
    Vocab {
        vocab: PathBuf,
        config: Option<PathBuf>,
    },
}

/// Everything read from a model folder, before any weight is loaded.
#[derive(Debug, Clone)]
pub struct ModelFolder {
    /// The folder given by the user.
    pub dir: PathBuf,
    /// The folder holding `config.json` (a sentence-transformers `Transformer` module may live
    /// in a sub-folder).
    pub transformer_dir: PathBuf,
    pub bert: BertConfig,
    pub pooling: Pooling,
    /// Tokens per text including `[CLS]` and `[SEP]`; longer texts are truncated.
    pub max_tokens: usize,
    /// sentence-transformers' `do_lower_case`: lower-case texts before the tokenizer sees them.
    pub lowercase_input: bool,
    pub weights: WeightsFile,
    pub tokenizer: TokenizerFiles,
}

#[derive(Debug, Deserialize)]
struct ModuleEntry {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
struct SentenceBertConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

impl ModelFolder {
    /// Reads the folder's settings; fails naming the missing file or the unsupported setting.
    pub fn open(dir: &Path) -> Result<Self> {
        ensure!(
            dir.is_dir(),
            "{}: no such model folder (a Hugging Face model folder with config.json)",
            dir.display()
        );
        let mut transformer_dir = dir.to_path_buf();
        let mut pooling = Pooling::Mean;
        let modules_path = dir.join("modules.json");
        if modules_path.is_file() {
            let modules: Vec<ModuleEntry> = serde_json::from_str(&read(&modules_path)?)
                .with_context(|| {
                    format!(
                        "{}: not a sentence-transformers module list",
                        modules_path.display()
                    )
                })?;
            let mut seen_transformer = false;
            let mut seen_pooling = false;
            for module in &modules {
                let kind = module.kind.rsplit('.').next().unwrap_or(&module.kind);
                match kind {
                    "Transformer" if !seen_transformer && !seen_pooling => {
                        seen_transformer = true;
                        transformer_dir = dir.join(&module.path);
                    }
                    "Pooling" if seen_transformer && !seen_pooling => {
                        seen_pooling = true;
                        let path = dir.join(&module.path).join("config.json");
                        ensure!(path.is_file(), "{}: missing (named by {})", path.display(), modules_path.display());
                        pooling = Pooling::parse(&read(&path)?, &path)?;
                    }
                    // vital L2-normalises every vector anyway.
                    "Normalize" if seen_pooling => {}
                    _ => bail!(
                        "{}: module `{}` is not supported here (vital reads Transformer, Pooling, Normalize in that order)",
                        modules_path.display(),
                        module.kind
                    ),
                }
            }
            ensure!(
                seen_transformer && seen_pooling,
                "{}: needs a Transformer and a Pooling module",
                modules_path.display()
            );
        }

        let config_path = transformer_dir.join("config.json");
        ensure!(
            config_path.is_file(),
            "{}: missing (a Hugging Face model folder has config.json)",
            config_path.display()
        );
        let bert = BertConfig::parse(&read(&config_path)?, &config_path)?;

        let mut max_tokens = bert.max_position_embeddings;
        let mut lowercase_input = false;
        for candidate in [
            transformer_dir.join("sentence_bert_config.json"),
            dir.join("sentence_bert_config.json"),
        ] {
            if candidate.is_file() {
                let st: SentenceBertConfig = serde_json::from_str(&read(&candidate)?)
                    .with_context(|| {
                        format!(
                            "{}: not a sentence-transformers config",
                            candidate.display()
                        )
                    })?;
                if let Some(max) = st.max_seq_length {
                    ensure!(
                        (3..=bert.max_position_embeddings).contains(&max),
                        "{}: max_seq_length {max} is outside 3..={} (config.json's max_position_embeddings)",
                        candidate.display(),
                        bert.max_position_embeddings
                    );
                    max_tokens = max;
                }
                lowercase_input = st.do_lower_case;
                break;
            }
        }

        let weights = {
            let safetensors = transformer_dir.join("model.safetensors");
            let pytorch = transformer_dir.join("pytorch_model.bin");
            if safetensors.is_file() {
                WeightsFile::Safetensors(safetensors)
            } else if pytorch.is_file() {
                WeightsFile::Pytorch(pytorch)
            } else if transformer_dir
                .join("model.safetensors.index.json")
                .is_file()
                || transformer_dir
                    .join("pytorch_model.bin.index.json")
                    .is_file()
            {
                bail!(
                    "{}: sharded weights are not supported (need one model.safetensors or pytorch_model.bin)",
                    transformer_dir.display()
                )
            } else {
                bail!(
                    "{}: missing model.safetensors or pytorch_model.bin (the weights)",
                    transformer_dir.display()
                )
            }
        };

        let tokenizer = {
            let json = transformer_dir.join("tokenizer.json");
            let vocab = transformer_dir.join("vocab.txt");
            if json.is_file() {
                TokenizerFiles::Json(json)
            } else if vocab.is_file() {
                let config = transformer_dir.join("tokenizer_config.json");
                TokenizerFiles::Vocab {
                    vocab,
                    config: config.is_file().then_some(config),
                }
            } else {
                bail!(
                    "{}: missing tokenizer.json or vocab.txt (the tokenizer)",
                    transformer_dir.display()
                )
            }
        };

        Ok(ModelFolder {
            dir: dir.to_path_buf(),
            transformer_dir,
            bert,
            pooling,
            max_tokens,
            lowercase_input,
            weights,
            tokenizer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> serde_json::Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/encoder/tiny-bert/config.json");
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn refusal(change: &[(&str, usize)]) -> String {
        let mut config = tiny();
        for (key, value) in change {
            config[*key] = (*value).into();
        }
        let err = BertConfig::parse(&config.to_string(), Path::new("m/config.json")).unwrap_err();
        format!("{err:#}")
    }

    #[test]
    fn a_size_beyond_its_bound_or_a_model_beyond_the_parameter_budget_is_refused_naming_the_field()
    {
        let err = refusal(&[("num_hidden_layers", 1_000_000)]);
        assert_eq!(
            err,
            "m/config.json: num_hidden_layers 1000000 is more than 256, the most vital accepts for a BERT-family encoder: refused"
        );
        let err = refusal(&[("vocab_size", usize::MAX)]);
        assert!(
            err.starts_with("m/config.json: vocab_size 18446744073709551615 is more than"),
            "{err}"
        );
        // Each size within its bound, together far too many parameters.
        let err = refusal(&[
            ("hidden_size", 16_384),
            ("num_hidden_layers", 200),
            ("intermediate_size", 65_536),
        ]);
        assert!(
            err.starts_with(
                "m/config.json: hidden_size 16384, num_hidden_layers 200, intermediate_size 65536"
            ),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "more than the {MAX_PARAMETERS} (4 GiB) vital accepts: refused"
            )),
            "{err}"
        );
    }

    #[test]
    fn the_parameter_count_is_the_models_own() {
        use burn::module::Module;
        let config = BertConfig::parse(&tiny().to_string(), Path::new("config.json")).unwrap();
        let model = config.init::<burn::backend::NdArray>(&Default::default());
        assert_eq!(config.parameter_count(), model.num_params() as u64);
    }
}
