//! The agent's TOML configuration (router chain, model, tools, log, timeouts,
//! LLM) with environment overrides. Lookup: `--config FILE`, else `$TOOLFORGE_CONFIG`,
//! else `./toolforge.toml` when present, else built-in defaults.
//!
//! Environment overrides (applied after the file): `TOOLFORGE_ROUTER`,
//! `TOOLFORGE_MODEL_DIR`, `TOOLFORGE_MODEL_THRESHOLD`, `TOOLFORGE_LOG_PATH`, `TOOLFORGE_LOG=off`,
//! `TOOLFORGE_TOOL_TIMEOUT_MS`, `TOOLFORGE_LLM_BASE_URL`, `TOOLFORGE_LLM_MODEL`,
//! `TOOLFORGE_LLM_API_KEY_ENV`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toolforge_tools::ToolsConfig;

use crate::autonomous::AutonomousLimits;
use crate::llm::LlmConfig;

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// Path of the config file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for [`AgentConfig`] or has an out-of-range value.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// Path of the config file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// An environment override has an unusable value.
    #[error("invalid value for {var}: {message}")]
    Env {
        /// Name of the environment variable.
        var: String,
        /// What is wrong with its value.
        message: String,
    },
}

/// One stage of the configured chain.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    /// `toolforge` or `regex`.
    pub router: String,
    /// Minimum confidence for this stage's decision to be taken.
    #[serde(default)]
    pub threshold: f64,
    /// Time budget in milliseconds; past it the stage counts as abstaining.
    pub budget_ms: Option<u64>,
}

/// The `[chain]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainConfig {
    /// Stages asked in order until one decides (default: `new_tools` at 0.5, then
    /// `toolforge` at 0.2 with a 1000 ms budget, then `regex`); must not be empty.
    pub stages: Vec<StageConfig>,
    /// When every stage abstains or falls below its threshold, take the most
    /// confident below-threshold decision instead of answering without tools.
    #[serde(default = "default_best_guess")]
    pub best_guess: bool,
}

fn default_best_guess() -> bool {
    true
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            stages: vec![
                // Abstains unless the registry has tools the model does not know.
                StageConfig {
                    router: "new_tools".into(),
                    threshold: 0.5,
                    budget_ms: Some(1_000),
                },
                // 0.2: the highest of the best thresholds on the validation split
                // (0.0-0.2 tie at 94.9%; 0.6 gives 94.6%) with the default model.
                // The confidence of a tool set is a product over the tools, so a
                // higher threshold hands most multi-tool decisions to regex.
                StageConfig {
                    router: "toolforge".into(),
                    threshold: 0.2,
                    budget_ms: Some(1_000),
                },
                StageConfig {
                    router: "regex".into(),
                    threshold: 0.0,
                    budget_ms: None,
                },
            ],
            best_guess: true,
        }
    }
}

/// The `[model]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A trained model directory; the embedded default model is used when unset.
    pub dir: Option<PathBuf>,
    /// Overrides the model's abstention threshold (a confidence in `[0, 1]`);
    /// `0` makes the model answer every query itself.
    pub threshold: Option<f64>,
}

/// The `[regex]` table.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// Extra rules (TOML) added to the built-in ones, e.g. for custom tools.
    pub rules: Option<PathBuf>,
}

/// The `[log]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Whether runs are logged (default true).
    pub enabled: bool,
    /// The JSONL run log (default `$XDG_DATA_HOME/toolforge/runs.jsonl`, else
    /// `~/.local/share/toolforge/runs.jsonl`).
    pub path: PathBuf,
}

impl Default for LogConfig {
    fn default() -> Self {
        let base = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share"))
            })
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            enabled: true,
            path: base.join("toolforge").join("runs.jsonl"),
        }
    }
}

/// The `[generative]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenerativeConfig {
    /// A GGUF instruct model (Llama family such as SmolLM2, or Qwen2; its
    /// tokenizer comes from the file, or from a `tokenizer.json` beside it), or
    /// a Hugging Face Qwen2 folder (`config.json`, `*.safetensors`, `tokenizer.json`).
    pub model: Option<PathBuf>,
    /// A PEFT LoRA adapter folder merged into the model at load.
    pub adapter: Option<PathBuf>,
    /// Whether decoding is constrained to valid calls (default true).
    pub constrained: bool,
    /// Whether every answer must call a tool (default false): for labeling
    /// requests known to need one, or a stage after a no-tool detector.
    pub require_call: bool,
}

impl Default for GenerativeConfig {
    fn default() -> Self {
        Self {
            model: None,
            adapter: None,
            constrained: true,
            require_call: false,
        }
    }
}

/// The `[executor]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorConfig {
    /// Timeout of each tool call in milliseconds (default 15000).
    pub tool_timeout_ms: u64,
    /// Per-tool overrides, e.g. `{ web_search = 20000 }`.
    #[serde(default)]
    pub tool_timeouts_ms: std::collections::HashMap<String, u64>,
}

impl Default for ExecutorConfig {
    fn default() -> Self {
        Self {
            tool_timeout_ms: 15_000,
            tool_timeouts_ms: Default::default(),
        }
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Router used when `--router` is not given: `chain`, `toolforge` or `regex`.
    pub router: String,
    /// Stages of the `chain` router.
    pub chain: ChainConfig,
    /// The learned `toolforge` router's model.
    pub model: ModelConfig,
    /// The `generative` router's model (a GGUF instruct LLM).
    pub generative: GenerativeConfig,
    /// The `regex` router's rules.
    pub regex: RegexConfig,
    /// The run log.
    pub log: LogConfig,
    /// Tool-call timeouts.
    pub executor: ExecutorConfig,
    /// The optional LLM used for answers and autonomous tasks.
    pub llm: LlmConfig,
    /// Step and time limits of `autonomous_task`.
    pub autonomous: AutonomousLimits,
    /// Endpoints, keys and plugins of the tools.
    pub tools: ToolsConfig,
    /// The trainer's `[teacher]` table (the LLM that labels data for `toolforge
    /// data distill`), kept as written: the runtime never trains, so the command
    /// that uses it parses and checks it.
    pub teacher: Option<toml::Table>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            router: "chain".into(),
            chain: ChainConfig::default(),
            model: ModelConfig::default(),
            generative: GenerativeConfig::default(),
            regex: RegexConfig::default(),
            log: LogConfig::default(),
            executor: ExecutorConfig::default(),
            llm: LlmConfig::default(),
            autonomous: AutonomousLimits::default(),
            tools: ToolsConfig::default(),
            teacher: None,
        }
    }
}

impl AgentConfig {
    /// Loads the file found by the lookup order above, then applies the environment.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("TOOLFORGE_CONFIG").map(PathBuf::from))
            .or_else(|| {
                let local = PathBuf::from("toolforge.toml");
                local.exists().then_some(local)
            });
        let mut config = match path {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        Ok(config)
    }

    /// Reads and parses one config file, without environment overrides.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses config text and checks the model threshold is in `[0, 1]`.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let config: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        if let Some(t) = config.model.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(format!("[model] threshold must be in [0, 1], got {t}"));
            }
        }
        Ok(config)
    }

    /// Applies overrides read through `get` (the process environment in `load`).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(router) = get("TOOLFORGE_ROUTER") {
            self.router = router;
        }
        if let Some(dir) = get("TOOLFORGE_MODEL_DIR") {
            self.model.dir = Some(PathBuf::from(dir));
        }
        if let Some(threshold) = get("TOOLFORGE_MODEL_THRESHOLD") {
            let value = threshold
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|t| (0.0..=1.0).contains(t))
                .ok_or_else(|| ConfigError::Env {
                    var: "TOOLFORGE_MODEL_THRESHOLD".into(),
                    message: format!("`{threshold}` is not a number in [0, 1]"),
                })?;
            self.model.threshold = Some(value);
        }
        if let Some(path) = get("TOOLFORGE_GENERATIVE_MODEL") {
            self.generative.model = Some(PathBuf::from(path));
        }
        if let Some(path) = get("TOOLFORGE_GENERATIVE_ADAPTER") {
            self.generative.adapter = Some(PathBuf::from(path));
        }
        if let Some(flag) = get("TOOLFORGE_GENERATIVE_CONSTRAINED") {
            self.generative.constrained = !matches!(
                flag.to_ascii_lowercase().as_str(),
                "off" | "0" | "false" | "no"
            );
        }
        if let Some(flag) = get("TOOLFORGE_GENERATIVE_REQUIRE_CALL") {
            self.generative.require_call = matches!(
                flag.to_ascii_lowercase().as_str(),
                "on" | "1" | "true" | "yes"
            );
        }
        if let Some(path) = get("TOOLFORGE_LOG_PATH") {
            self.log.path = PathBuf::from(path);
        }
        if let Some(flag) = get("TOOLFORGE_LOG") {
            self.log.enabled = !matches!(
                flag.to_ascii_lowercase().as_str(),
                "off" | "0" | "false" | "no"
            );
        }
        if let Some(ms) = get("TOOLFORGE_TOOL_TIMEOUT_MS") {
            self.executor.tool_timeout_ms = ms.trim().parse().map_err(|_| ConfigError::Env {
                var: "TOOLFORGE_TOOL_TIMEOUT_MS".into(),
                message: format!("`{ms}` is not a number of milliseconds"),
            })?;
        }
        if let Some(url) = get("TOOLFORGE_LLM_BASE_URL") {
            self.llm.endpoint.base_url = Some(url);
        }
        if let Some(model) = get("TOOLFORGE_LLM_MODEL") {
            self.llm.model = Some(model);
        }
        if let Some(var) = get("TOOLFORGE_LLM_API_KEY_ENV") {
            self.llm.endpoint.api_key_env = Some(var);
        }
        Ok(())
    }

    /// Every secret in the configuration, for log redaction.
    pub fn secrets(&self) -> Vec<String> {
        let mut secrets = self.tools.secrets();
        secrets.extend(
            self.llm
                .endpoint
                .resolve_key()
                .map(|key| key.expose().to_string()),
        );
        secrets
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config_and_applies_env_overrides() {
        let mut config = AgentConfig::from_toml(
            r#"
            router = "regex"
            [chain]
            stages = [{ router = "toolforge", threshold = 0.7, budget_ms = 50 }, { router = "regex" }]
            [log]
            enabled = true
            path = "runs.jsonl"
            [executor]
            tool_timeout_ms = 500
            tool_timeouts_ms = { web_search = 900 }
            [tools.weather]
            base_url = "http://127.0.0.1:9"
            api_key_env = "WEATHER_KEY"
            "#,
        )
        .unwrap();
        assert_eq!(config.router, "regex");
        assert_eq!(config.chain.stages[0].threshold, 0.7);
        assert!(config.chain.best_guess, "best_guess defaults to on");
        assert_eq!(config.executor.tool_timeouts_ms["web_search"], 900);
        config
            .apply_env(|var| match var {
                "TOOLFORGE_ROUTER" => Some("chain".into()),
                "TOOLFORGE_LOG" => Some("off".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.router, "chain");
        assert!(!config.log.enabled);
        let bad =
            config.apply_env(|var| (var == "TOOLFORGE_TOOL_TIMEOUT_MS").then(|| "soon".into()));
        assert!(bad
            .unwrap_err()
            .to_string()
            .contains("TOOLFORGE_TOOL_TIMEOUT_MS"));
    }

    #[test]
    fn model_threshold_comes_from_the_file_or_the_environment_and_is_checked() {
        let mut config = AgentConfig::from_toml("[model]\nthreshold = 0.25").unwrap();
        assert_eq!(config.model.threshold, Some(0.25));
        config
            .apply_env(|var| (var == "TOOLFORGE_MODEL_THRESHOLD").then(|| "0".into()))
            .unwrap();
        assert_eq!(config.model.threshold, Some(0.0));
        for bad in ["1.5", "-0.1", "high"] {
            let err = config
                .apply_env(|var| (var == "TOOLFORGE_MODEL_THRESHOLD").then(|| bad.into()))
                .unwrap_err();
            assert!(
                err.to_string().contains("TOOLFORGE_MODEL_THRESHOLD"),
                "{err}"
            );
        }
        let err = AgentConfig::from_toml("[model]\nthreshold = 2.0").unwrap_err();
        assert!(err.contains("threshold"), "{err}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_clear_message() {
        let err = AgentConfig::from_toml("routr = \"regex\"").unwrap_err();
        assert!(err.contains("routr"), "{err}");
    }
}
