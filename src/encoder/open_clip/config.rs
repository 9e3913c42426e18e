//! An open_clip model folder as published on the hub (BiomedCLIP's layout), read into plain
//! settings: `open_clip_config.json` (`model_cfg` + `preprocess_cfg`), which weight and tokenizer
//! files exist, and the text tower's `config.json` from the `hf_model_name` sub-folder when the
//! folder has one. Defaults are open_clip's (`CLIPVisionCfg`, `CLIPTextCfg`, `PreprocessCfg`);
//! every setting vital cannot honour exactly is an error naming the file and the setting.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::encoder::config::{BertConfig, TokenizerFiles, WeightsFile};

/// Layout of a timm `VisionTransformer` named in `vision_cfg.timm_model_name` (timm's
/// `vision_transformer.py` definitions: LayerNorm eps 1e-6, MLP ratio 4, qkv bias, class token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitShape {
    pub width: usize,
    pub depth: usize,
    pub heads: usize,
    pub patch: usize,
    /// The input size timm builds the model for (its position embedding's grid).
    pub image_size: usize,
}

/// The timm ViTs vital knows by name.
const TIMM_VITS: [(&str, VitShape); 7] = [
    ("vit_tiny_patch16_224", vit(192, 12, 3, 16, 224)),
    ("vit_small_patch16_224", vit(384, 12, 6, 16, 224)),
    ("vit_base_patch16_224", vit(768, 12, 12, 16, 224)),
    ("vit_base_patch32_224", vit(768, 12, 12, 32, 224)),
    ("vit_base_patch16_384", vit(768, 12, 12, 16, 384)),
    ("vit_large_patch16_224", vit(1024, 24, 16, 16, 224)),
    ("vit_large_patch16_384", vit(1024, 24, 16, 16, 384)),
];

const fn vit(
    width: usize,
    depth: usize,
    heads: usize,
    patch: usize,
    image_size: usize,
) -> VitShape {
    VitShape {
        width,
        depth,
        heads,
        patch,
        image_size,
    }
}

impl VitShape {
    pub fn by_name(name: &str) -> Option<VitShape> {
        TIMM_VITS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, shape)| *shape)
    }

    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch
    }
}

/// How the image tower pools the trunk's tokens (`vision_cfg.timm_pool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImagePool {
    /// `""` (the ViT's default) or `"token"`: the class token.
    ClassToken,
    /// `"avg"`: the mean of the patch tokens (class token left out), after the final norm.
    Average,
}

/// The projection after pooling (`timm_proj` / `hf_proj_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Projection {
    /// One Linear (bias per `timm_proj_bias` for images, none for text).
    Linear,
    /// Image: timm `Mlp` (fc1 with bias → GELU → fc2, bias per `timm_proj_bias`, hidden 2×embed);
    /// text: Linear → GELU → Linear, no biases, hidden (width + embed) / 2.
    Mlp,
    /// Text only: none, when the tower's width already is `embed_dim` and no type is given.
    Identity,
}

/// How the text tower pools its token vectors (`text_cfg.hf_pooler_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextPool {
    /// `cls_last_hidden_state_pooler`: the `[CLS]` vector of the last layer.
    ClsLastHidden,
    /// `cls_pooler`: BERT's pooler (dense + tanh on `[CLS]`).
    ClsPooler,
    /// `mean_pooler`: the mean over the real tokens.
    Mean,
}

/// open_clip's text cleaning before the tokenizer (`tokenizer_kwargs.clean`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clean {
    /// `whitespace` (the default): HTML entities decoded, runs of whitespace made one space.
    Whitespace,
    /// `lower`: the same, lower-cased.
    Lower,
}

#[derive(Debug, Clone)]
pub struct VisionSettings {
    pub timm_name: String,
    pub shape: VitShape,
    pub pool: ImagePool,
    pub proj: Projection,
    pub proj_bias: bool,
}

#[derive(Debug, Clone)]
pub struct TextSettings {
    pub hf_model_name: String,
    pub pool: TextPool,
    /// `hf_proj_type` as written (resolved against the tower's width when loading).
    pub proj: Option<Projection>,
    /// Tokens per text, `[CLS]` and `[SEP]` included; longer texts are truncated.
    pub context_length: usize,
    pub clean: Clean,
}

#[derive(Debug, Clone)]
pub struct PreprocessSettings {
    /// Side of the square the image is resized (shorter side) and centre-cropped to.
    pub size: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// Everything read from an open_clip folder before any weight is loaded.
#[derive(Debug, Clone)]
pub struct OpenClipFolder {
    pub dir: PathBuf,
    pub embed_dim: usize,
    pub vision: VisionSettings,
    pub text: TextSettings,
    pub preprocess: PreprocessSettings,
    pub weights: WeightsFile,
    pub tokenizer: TokenizerFiles,
    /// The text tower's `config.json` (in the `hf_model_name` sub-folder) when present; else the
    /// tower's shape comes from the checkpoint.
    pub bert: Option<(PathBuf, BertConfig)>,
}

/// The name of the config file that marks an open_clip folder.
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// Weight files in open_clip's order of preference (`_find_checkpoint_in_dir`).
pub const WEIGHT_FILES: [&str; 2] = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];

#[derive(Debug, Deserialize)]
struct RawFile {
    model_cfg: RawModel,
    #[serde(default)]
    preprocess_cfg: RawPreprocess,
}

#[derive(Debug, Deserialize)]
struct RawModel {
    embed_dim: usize,
    vision_cfg: RawVision,
    text_cfg: RawText,
    #[serde(default)]
    quick_gelu: bool,
}

#[derive(Debug, Deserialize)]
struct RawVision {
    #[serde(default)]
    timm_model_name: Option<String>,
    #[serde(default = "default_timm_pool")]
    timm_pool: String,
    #[serde(default = "default_proj")]
    timm_proj: String,
    #[serde(default)]
    timm_proj_bias: bool,
    #[serde(default)]
    image_size: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct RawText {
    #[serde(default)]
    hf_model_name: Option<String>,
    #[serde(default = "default_context_length")]
    context_length: usize,
    #[serde(default = "default_hf_proj")]
    hf_proj_type: Option<String>,
    #[serde(default = "default_hf_pooler")]
    hf_pooler_type: String,
    #[serde(default)]
    tokenizer_mode: Option<String>,
    #[serde(default)]
    tokenizer_kwargs: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawPreprocess {
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    mean: Option<Vec<f32>>,
    #[serde(default)]
    std: Option<Vec<f32>>,
    #[serde(default)]
    interpolation: Option<String>,
    #[serde(default)]
    resize_mode: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

// open_clip's defaults (model.py CLIPVisionCfg / CLIPTextCfg, constants.py).
fn default_timm_pool() -> String {
    "avg".into()
}
fn default_proj() -> String {
    "linear".into()
}
fn default_context_length() -> usize {
    77
}
fn default_hf_proj() -> Option<String> {
    Some("mlp".into())
}
fn default_hf_pooler() -> String {
    "mean_pooler".into()
}
const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

/// The widest shared space accepted (BiomedCLIP's is 512, the largest open_clip models' 1280).
const MAX_EMBED_DIM: usize = 16_384;

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// `224` or `[224, 224]` (open_clip accepts both); only square sizes are supported.
fn square_size(value: &serde_json::Value, file: &str, key: &str) -> Result<usize> {
    let side = |v: &serde_json::Value| {
        v.as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .with_context(|| format!("{file}: {key} must be a positive integer, got {v}"))
    };
    match value {
        serde_json::Value::Array(sides) => {
            ensure!(
                sides.len() == 2,
                "{file}: {key} must be one size or [height, width]"
            );
            let (h, w) = (side(&sides[0])?, side(&sides[1])?);
            ensure!(
                h == w,
                "{file}: {key} {h}x{w} is not supported (only square images)"
            );
            Ok(h)
        }
        other => side(other),
    }
}

fn triple(values: Option<Vec<f32>>, default: [f32; 3], file: &str, key: &str) -> Result<[f32; 3]> {
    match values {
        None => Ok(default),
        Some(v) if v.len() == 1 => Ok([v[0]; 3]),
        Some(v) => <[f32; 3]>::try_from(v.as_slice())
            .ok()
            .with_context(|| format!("{file}: {key} must have 1 or 3 values, has {}", v.len())),
    }
}

impl OpenClipFolder {
    /// True when `dir` holds an `open_clip_config.json`.
    pub fn is_open_clip(dir: &Path) -> bool {
        dir.join(CONFIG_FILE).is_file()
    }

    /// Reads the folder's settings; fails naming the missing file or the unsupported setting.
    pub fn open(dir: &Path) -> Result<Self> {
        ensure!(
            dir.is_dir(),
            "{}: no such model folder (an open_clip folder with {CONFIG_FILE})",
            dir.display()
        );
        let config_path = dir.join(CONFIG_FILE);
        ensure!(
            config_path.is_file(),
            "{}: missing (an open_clip model folder has {CONFIG_FILE})",
            config_path.display()
        );
        let file = config_path.display().to_string();
        let raw: RawFile = serde_json::from_str(&read(&config_path)?).with_context(|| {
            format!(
                "{file}: not an open_clip config (model_cfg with embed_dim, vision_cfg, text_cfg)"
            )
        })?;
        let model = raw.model_cfg;
        ensure!(model.embed_dim > 0, "{file}: model_cfg.embed_dim is 0");
        // The projections are built (allocated) from it before any weight is read.
        ensure!(
            model.embed_dim <= MAX_EMBED_DIM,
            "{file}: model_cfg.embed_dim {} is more than {MAX_EMBED_DIM}, the most vital accepts: refused",
            model.embed_dim
        );
        ensure!(
            !model.quick_gelu,
            "{file}: quick_gelu is not supported (timm and Hugging Face towers use the exact GELU)"
        );

        let vision = {
            let v = &model.vision_cfg;
            let name = v.timm_model_name.as_deref().with_context(|| {
                format!("{file}: vision_cfg.timm_model_name is missing (only timm ViT image towers are supported)")
            })?;
            let shape = VitShape::by_name(name).with_context(|| {
                format!(
                    "{file}: vision_cfg.timm_model_name `{name}` is not supported (known: {})",
                    TIMM_VITS
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            let pool = match v.timm_pool.as_str() {
                "" | "token" => ImagePool::ClassToken,
                "avg" => ImagePool::Average,
                other => bail!(
                    "{file}: vision_cfg.timm_pool `{other}` is not supported (only \"\", \"token\" or \"avg\")"
                ),
            };
            let proj = match v.timm_proj.as_str() {
                "linear" => Projection::Linear,
                "mlp" => Projection::Mlp,
                other => bail!(
                    "{file}: vision_cfg.timm_proj `{other}` is not supported (only \"linear\" or \"mlp\")"
                ),
            };
            if let Some(size) = &v.image_size {
                let size = square_size(size, &file, "vision_cfg.image_size")?;
                ensure!(
                    size == shape.image_size,
                    "{file}: vision_cfg.image_size {size} differs from {name}'s {} (open_clip builds the timm model at its default size)",
                    shape.image_size
                );
            }
            VisionSettings {
                timm_name: name.to_string(),
                shape,
                pool,
                proj,
                proj_bias: v.timm_proj_bias,
            }
        };

        let text = {
            let t = &model.text_cfg;
            let hf_model_name = t.hf_model_name.clone().with_context(|| {
                format!("{file}: text_cfg.hf_model_name is missing (only Hugging Face BERT text towers are supported)")
            })?;
            let pool = match t.hf_pooler_type.as_str() {
                "cls_last_hidden_state_pooler" => TextPool::ClsLastHidden,
                "cls_pooler" => TextPool::ClsPooler,
                "mean_pooler" => TextPool::Mean,
                other => bail!(
                    "{file}: text_cfg.hf_pooler_type `{other}` is not supported (only cls_last_hidden_state_pooler, cls_pooler, mean_pooler)"
                ),
            };
            let proj = match t.hf_proj_type.as_deref() {
                None => None,
                Some("linear") => Some(Projection::Linear),
                Some("mlp") => Some(Projection::Mlp),
                Some(other) => bail!(
                    "{file}: text_cfg.hf_proj_type `{other}` is not supported (only \"linear\" or \"mlp\")"
                ),
            };
            ensure!(
                t.context_length >= 2,
                "{file}: text_cfg.context_length must be at least 2"
            );
            if let Some(mode) = &t.tokenizer_mode {
                bail!("{file}: text_cfg.tokenizer_mode `{mode}` is not supported");
            }
            let mut clean = Clean::Whitespace;
            for (key, value) in t.tokenizer_kwargs.iter().flatten() {
                match (key.as_str(), value.as_str(), value.as_bool()) {
                    ("clean", Some("whitespace"), _) => clean = Clean::Whitespace,
                    ("clean", Some("lower"), _) => clean = Clean::Lower,
                    ("strip_sep_token", _, Some(false)) => {}
                    _ => {
                        bail!("{file}: text_cfg.tokenizer_kwargs.{key} = {value} is not supported")
                    }
                }
            }
            TextSettings {
                hf_model_name,
                pool,
                proj,
                context_length: t.context_length,
                clean,
            }
        };

        let preprocess = {
            let p = raw.preprocess_cfg;
            if let Some(interpolation) = p.interpolation.as_deref() {
                ensure!(
                    interpolation == "bicubic",
                    "{file}: preprocess_cfg.interpolation `{interpolation}` is not supported (only bicubic)"
                );
            }
            if let Some(mode) = p.resize_mode.as_deref() {
                ensure!(
                    mode == "shortest",
                    "{file}: preprocess_cfg.resize_mode `{mode}` is not supported (only shortest)"
                );
            }
            if let Some(mode) = p.mode.as_deref() {
                ensure!(
                    mode == "RGB",
                    "{file}: preprocess_cfg.mode `{mode}` is not supported (only RGB)"
                );
            }
            let size = match &p.size {
                Some(size) => square_size(size, &file, "preprocess_cfg.size")?,
                None => vision.shape.image_size,
            };
            ensure!(
                size == vision.shape.image_size,
                "{file}: preprocess_cfg.size {size} differs from the image tower's input size {}",
                vision.shape.image_size
            );
            let std = triple(p.std, OPENAI_STD, &file, "preprocess_cfg.std")?;
            ensure!(
                std.iter().all(|s| *s > 0.0),
                "{file}: preprocess_cfg.std must be positive"
            );
            PreprocessSettings {
                size,
                mean: triple(p.mean, OPENAI_MEAN, &file, "preprocess_cfg.mean")?,
                std,
            }
        };

        let weights = {
            let found = WEIGHT_FILES
                .iter()
                .map(|w| dir.join(w))
                .find(|p| p.is_file());
            match found {
                Some(p) if p.extension().is_some_and(|e| e == "safetensors") => {
                    WeightsFile::Safetensors(p)
                }
                Some(p) => WeightsFile::Pytorch(p),
                None => bail!(
                    "{}: missing {} (the weights)",
                    dir.display(),
                    WEIGHT_FILES.join(" or ")
                ),
            }
        };

        // The tokenizer files sit in the folder (open_clip's local-dir / hf-hub loading reads
        // them there); a copy in the text tower's sub-folder is the fallback.
        let sub = dir.join(&text.hf_model_name);
        let tokenizer = [dir.to_path_buf(), sub.clone()]
            .iter()
            .find_map(|d| {
                let json = d.join("tokenizer.json");
                let vocab = d.join("vocab.txt");
                if json.is_file() {
                    Some(TokenizerFiles::Json(json))
                } else if vocab.is_file() {
                    let config = d.join("tokenizer_config.json");
                    Some(TokenizerFiles::Vocab {
                        vocab,
                        config: config.is_file().then_some(config),
                    })
                } else {
                    None
                }
            })
            .with_context(|| {
                format!(
                    "{}: missing tokenizer.json or vocab.txt (the text tower's tokenizer)",
                    dir.display()
                )
            })?;

        let bert_path = sub.join("config.json");
        let bert = if bert_path.is_file() {
            Some((
                bert_path.clone(),
                BertConfig::parse(&read(&bert_path)?, &bert_path)?,
            ))
        } else {
            None
        };

        Ok(OpenClipFolder {
            dir: dir.to_path_buf(),
            embed_dim: model.embed_dim,
            vision,
            text,
            preprocess,
            weights,
            tokenizer,
            bert,
        })
    }
}
