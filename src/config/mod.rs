//! Settings: the repo's `config.toml` is compiled in as the defaults, a user copy overrides any
//! subset, environment variables override both. Unknown keys are reported, never silently ignored.
//! Settings that name one of a few choices are parsed into their enums when the config loads, so a
//! bad value stops the program at start with the key, where it came from and the allowed values.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::as_text;
use crate::export::ExportFormat;
use crate::figure_fetch::FetchSettings;
pub use crate::llm::LlmConfig;
pub use crate::selector_runs::SelectorSettings;

/// The documented defaults; the single source of truth for every setting.
pub const DEFAULTS: &str = include_str!("../../config.toml");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub workspace: WorkspaceConfig,
    pub store: StoreConfig,
    pub review: ReviewConfig,
    /// Review-screen keys: action name → key names (see `tui::keymap`).
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
    pub selector: SelectorSettings,
    pub selection: SelectionConfig,
    pub llm: LlmConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceConfig {
    pub path: String,
}

/// A team workspace on a PostgreSQL server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreConfig {
    /// `postgresql://user@host:port/db?sslmode=…`; empty: the workspace is a directory.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewConfig {
    pub reviewer: String,
    pub auto_advance: bool,
    pub shuffle_answers: bool,
    #[serde(with = "as_text")]
    pub image_protocol: ImageProtocol,
    pub max_image_side: u32,
    pub train_after_decisions: usize,
    /// The order the review queue opens in (`o` cycles through the others).
    #[serde(with = "as_text")]
    pub order: ReviewOrder,
    /// What a reviewer picks from to say why an answer is ✗ ("other" comes with them).
    pub reasons: Vec<String>,
    /// Refuse decisions while the figure is not on screen.
    pub require_figure: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelectionConfig {
    pub top_percent: f64,
    #[serde(with = "as_text")]
    pub export_format: ExportFormat,
    pub export_dir: String,
}

/// How images are drawn in the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageProtocol {
    /// Ask the terminal; fall back to halfblocks.
    Auto,
    Kitty,
    Sixel,
    Iterm2,
    /// Unicode half blocks: works everywhere (and in tests).
    Halfblocks,
}

impl std::fmt::Display for ImageProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self).ok_or(std::fmt::Error)?;
        f.write_str(value.get_name())
    }
}

impl std::str::FromStr for ImageProtocol {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        clap::ValueEnum::from_str(s.trim(), true).map_err(|_| {
            anyhow::anyhow!(
                "unknown image protocol `{s}`: expected auto, kitty, sixel, iterm2 or halfblocks"
            )
        })
    }
}

/// The order samples are reviewed in (the review screen's `o` cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReviewOrder {
    /// As imported.
    File,
    /// Selector score, best first.
    ScoreHigh,
    /// Selector score, worst first.
    ScoreLow,
    /// Active learning: samples where selector and judge disagree most, then the rounds whose
    /// answers the selector separates least; file order until a run has scored the samples.
    Uncertainty,
    /// Seeded shuffle (the same every time).
    Random,
}

impl std::fmt::Display for ReviewOrder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = clap::ValueEnum::to_possible_value(self).ok_or(std::fmt::Error)?;
        f.write_str(value.get_name())
    }
}

impl std::str::FromStr for ReviewOrder {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        clap::ValueEnum::from_str(s.trim(), true).map_err(|_| {
            anyhow::anyhow!(
                "unknown order `{s}`: expected file, score-high, score-low, uncertainty or random"
            )
        })
    }
}

/// A loaded configuration plus what was odd about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// `file: key` for every key the program does not know.
    pub unknown_keys: Vec<String>,
    /// The user file that was applied, if any.
    pub user_file: Option<PathBuf>,
}

/// Environment variables that override one setting each.
const ENV_OVERRIDES: &[(&str, &str, &str)] = &[
    ("VITAL_WORKSPACE", "workspace", "path"),
    ("VITAL_REVIEWER", "review", "reviewer"),
    ("VITAL_IMAGE_PROTOCOL", "review", "image_protocol"),
    ("VITAL_BACKEND", "selector", "backend"),
    ("VITAL_ENCODER", "selector", "encoder"),
    ("VITAL_LLM_ENDPOINT", "llm", "endpoint"),
    ("VITAL_LLM_MODEL", "llm", "model"),
];

impl Config {
    /// The built-in defaults only.
    pub fn defaults() -> Config {
        toml::from_str(DEFAULTS).expect("the bundled config.toml is valid")
    }

    /// Defaults, then the user file (VITAL_CONFIG, else the platform config dir), then env vars.
    pub fn load() -> anyhow::Result<Loaded> {
        // VITAL_CONFIG names the user file; set but empty, it means "defaults only".
        let user_file = match std::env::var_os("VITAL_CONFIG") {
            Some(p) if p.is_empty() => None,
            Some(p) => Some(PathBuf::from(p)),
            None => project_dirs()
                .map(|d| d.config_dir().join("config.toml"))
                .filter(|p| p.is_file()),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(user_file.as_deref(), &env)
    }

    /// As [`Config::load`], with the file and environment given (for tests).
    pub fn load_from(user_file: Option<&Path>, env: &[(String, String)]) -> anyhow::Result<Loaded> {
        let mut merged: toml::Table =
            toml::from_str(DEFAULTS).expect("the bundled config.toml is valid");
        let mut user = toml::Table::new();
        if let Some(path) = user_file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            user = toml::from_str(&text)
                .with_context(|| format!("config file {} is not valid TOML", path.display()))?;
            merged = merge(merged, user.clone());
        }
        let mut from_env = Vec::new();
        for (var, section, key) in ENV_OVERRIDES {
            if let Some((_, value)) = env.iter().find(|(k, _)| k == var) {
                let table = merged
                    .entry(section.to_string())
                    .or_insert_with(|| toml::Value::Table(Default::default()));
                if let toml::Value::Table(t) = table {
                    t.insert(key.to_string(), toml::Value::String(value.clone()));
                }
                from_env.push((format!("{section}.{key}"), *var));
            }
        }
        // Unknown keys can only come from the user's file: the defaults and the environment
        // set known keys alone.
        let mut unknown_keys = Vec::new();
        let mut on_unknown = |key: serde_ignored::Path| {
            if let Some(path) = user_file {
                unknown_keys.push(format!("{}: unknown key `{key}`", path.display()))
            }
        };
        let ignored = serde_ignored::Deserializer::new(toml::Value::Table(merged), &mut on_unknown);
        let config: Config = serde_path_to_error::deserialize(ignored).map_err(|e| {
            let key = e.path().to_string();
            let origin = match from_env.iter().find(|(k, _)| *k == key) {
                Some((_, var)) => format!("environment variable {var}"),
                None => match user_file.filter(|_| lookup(&user, &key)) {
                    Some(path) => format!("config file {}", path.display()),
                    None => "the bundled config.toml".to_string(),
                },
            };
            anyhow::anyhow!("{origin}: setting `{key}`: {}", e.inner())
        })?;
        Ok(Loaded {
            config,
            unknown_keys,
            user_file: user_file.map(Path::to_path_buf),
        })
    }

    /// The workspace: the configured server (`[store] url`), else the configured path, else
    /// `<data dir>/default`.
    pub fn workspace_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.store.url.trim().is_empty() {
            return Ok(PathBuf::from(self.store.url.trim()));
        }
        if !self.workspace.path.trim().is_empty() {
            return Ok(expand_home(&self.workspace.path));
        }
        let dirs =
            project_dirs().context("cannot find the platform data directory; pass -w DIR")?;
        Ok(dirs.data_dir().join("default"))
    }

    /// `review.reasons`, trimmed and checked: at most 8 (keys 1-8, "other" is 9), none empty,
    /// repeated, longer than 200 characters or named "other" (always offered last).
    pub fn review_reasons(&self) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for (i, reason) in self.review.reasons.iter().enumerate() {
            let reason = reason.trim();
            let problem = if reason.is_empty() {
                Some("is empty".to_string())
            } else if reason.chars().count() > 200 {
                Some("is longer than 200 characters".to_string())
            } else if reason.eq_ignore_ascii_case("other") || reason.starts_with("other:") {
                Some("is `other`, which is always offered last".to_string())
            } else if out.iter().any(|r| r == reason) {
                Some("is given twice".to_string())
            } else {
                None
            };
            if let Some(problem) = problem {
                anyhow::bail!("config: review.reasons[{i}] `{reason}` {problem}");
            }
            out.push(reason.to_string());
        }
        anyhow::ensure!(
            out.len() <= 8,
            "config: review.reasons has {} reasons; at most 8 (keys 1-8, and 9 for other)",
            out.len()
        );
        Ok(out)
    }

    /// The reviewer name: configured, else the login name; None when neither is set (decisions
    /// are never recorded under a made-up name).
    pub fn reviewer(&self) -> Option<String> {
        let configured = self.review.reviewer.trim();
        if !configured.is_empty() {
            return Some(configured.to_string());
        }
        std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .ok()
            .filter(|name| !name.trim().is_empty())
    }
}

/// The figure downloads' settings from the `[llm]` section, saving into `dir`.
pub fn fetch_settings(cfg: &LlmConfig, dir: std::path::PathBuf) -> FetchSettings {
    let mb = |v: f64| (v.max(0.0) * 1024.0 * 1024.0) as u64;
    FetchSettings {
        dir,
        concurrency: cfg.fetch_concurrency.max(1),
        timeout: Duration::from_secs(cfg.fetch_timeout_secs.max(1)),
        max_image_bytes: mb(cfg.fetch_max_image_mb),
        max_package_bytes: mb(cfg.fetch_max_package_mb),
        max_retries: cfg.max_retries,
        retry_base: Duration::from_millis(cfg.retry_base_ms),
        retry_max: Duration::from_secs_f64(cfg.retry_max_secs.max(0.0)),
        max_retry_wait: Duration::from_secs_f64(cfg.max_retry_wait_s.clamp(0.0, 86_400.0)),
    }
}

pub fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("org", "vital", "vital")
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), directories::BaseDirs::new()) {
        (Some(rest), Some(base)) => base.home_dir().join(rest),
        _ => PathBuf::from(path),
    }
}

/// Whether the dotted `key` (e.g. `selector.backend`) is set in `table`.
fn lookup(table: &toml::Table, key: &str) -> bool {
    let mut parts = key.split('.');
    let Some(first) = parts.next() else {
        return false;
    };
    let mut value = table.get(first);
    for part in parts {
        value = value.and_then(|v| v.as_table()).and_then(|t| t.get(part));
    }
    value.is_some()
}

/// Deep-merges `over` into `base` (tables merge, other values replace).
fn merge(mut base: toml::Table, over: toml::Table) -> toml::Table {
    for (key, value) in over {
        match (base.remove(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => {
                base.insert(key, toml::Value::Table(merge(b, o)));
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Auth;
    use crate::selector::{BackendKind, PairLoss};

    #[test]
    fn bundled_defaults_parse_and_document_every_setting() {
        let config = Config::defaults();
        assert_eq!(config.selector.margin, 1.0);
        assert_eq!(config.selector.loss, PairLoss::Hinge);
        // Every key of the struct appears in the file (no serde defaults hide an undocumented one).
        let table: toml::Table = toml::from_str(DEFAULTS).unwrap();
        let round_trip: toml::Table = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        for (section, values) in round_trip {
            let documented = table[&section].as_table().unwrap();
            for key in values.as_table().unwrap().keys() {
                assert!(
                    documented.contains_key(key),
                    "{section}.{key} is not in config.toml"
                );
            }
        }
    }

    #[test]
    fn user_file_overrides_partly_and_unknown_keys_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "[selector]\nhuman_weight = 10\nepocs = 3\n[colour]\nx = 1\n",
        )
        .unwrap();
        let loaded = Config::load_from(Some(&file), &[]).unwrap();
        assert_eq!(loaded.config.selector.human_weight, 10.0);
        assert_eq!(
            loaded.config.selector.epochs, 6,
            "untouched settings keep their default"
        );
        assert_eq!(loaded.unknown_keys.len(), 2, "{:?}", loaded.unknown_keys);
        assert!(loaded
            .unknown_keys
            .iter()
            .any(|k| k.contains("selector.epocs")));
        assert!(loaded.unknown_keys[0].contains("config.toml"));
    }

    #[test]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "[review]\nreviewer = \"file\"\n").unwrap();
        let env = vec![("VITAL_REVIEWER".to_string(), "env".to_string())];
        let loaded = Config::load_from(Some(&file), &env).unwrap();
        assert_eq!(loaded.config.reviewer().as_deref(), Some("env"));
    }

    #[test]
    fn wrong_type_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.toml");
        std::fs::write(&file, "[selector]\nepochs = \"many\"\n").unwrap();
        let err = format!("{:#}", Config::load_from(Some(&file), &[]).unwrap_err());
        assert!(err.contains("mine.toml"), "{err}");
    }

    #[test]
    fn a_bad_choice_fails_at_load_naming_the_key_the_source_and_the_allowed_values() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("mine.toml");
        let cases = [
            (
                "[selector]\nbackend = \"gpu\"\n",
                "selector.backend",
                "cpu, wgpu or cuda",
            ),
            (
                "[selector]\nloss = \"l2\"\n",
                "selector.loss",
                "hinge or logistic",
            ),
            (
                "[selector]\nsample_score = \"max\"\n",
                "selector.sample_score",
                "mean-best, mean or min",
            ),
            (
                "[review]\nimage_protocol = \"x\"\n",
                "review.image_protocol",
                "halfblocks",
            ),
            (
                "[selection]\nexport_format = \"csv\"\n",
                "selection.export_format",
                "llava",
            ),
            ("[llm]\nauth = \"basic\"\n", "llm.auth", "openai or azure"),
        ];
        for (text, key, allowed) in cases {
            std::fs::write(&file, text).unwrap();
            let err = format!("{:#}", Config::load_from(Some(&file), &[]).unwrap_err());
            assert!(err.contains("mine.toml"), "{err}");
            assert!(err.contains(key), "{err}");
            assert!(err.contains(allowed), "{err}");
        }
        let env = vec![("VITAL_BACKEND".to_string(), "tpu".to_string())];
        let err = format!("{:#}", Config::load_from(None, &env).unwrap_err());
        assert!(
            err.contains("VITAL_BACKEND") && err.contains("selector.backend"),
            "{err}"
        );
        assert!(!err.contains("mine.toml"), "{err}");
    }

    #[test]
    fn choices_load_into_their_types_and_save_as_the_words_users_type() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(
            &file,
            "[selector]\nbackend = \"WGPU\"\nloss = \"bradley-terry\"\n[llm]\nauth = \"azure\"\n",
        )
        .unwrap();
        let config = Config::load_from(Some(&file), &[]).unwrap().config;
        assert_eq!(config.selector.backend, BackendKind::Wgpu);
        assert_eq!(config.selector.loss, PairLoss::Logistic);
        assert_eq!(config.llm.auth, Auth::Azure);
        assert_eq!(config.review.image_protocol, ImageProtocol::Auto);
        let saved = toml::to_string(&config).unwrap();
        assert!(saved.contains("backend = \"wgpu\""), "{saved}");
        assert!(saved.contains("loss = \"logistic\""), "{saved}");
        assert!(saved.contains("auth = \"azure\""), "{saved}");
    }
}
