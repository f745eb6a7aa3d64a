//! A chat model's config table (the trainer's `[teacher]`): which API, where,
//! which keys (by environment variable name, never the keys themselves) with
//! which models, and the pool's pacing, retries and budget. [`PoolConfig::build`]
//! makes the model.
//!
//! ```toml
//! [teacher]
//! api = "gemini"
//! model = "gemini-2.5-flash"
//! min_gap_ms = 6000
//! budget = 5000
//! slots = [{ api_key_env = "GEMINI_KEY_1" }, { api_key_env = "GEMINI_KEY_2" }]
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::clock::{Clock, TokioClock};
use crate::gemini::{Gemini, GEMINI_DEFAULT_BASE};
use crate::openai::{OpenAi, OPENAI_DEFAULT_BASE};
use crate::pool::{ClientPool, PoolSettings, Slot};
use crate::{ChatModel, LlmError};

/// The model used by a Gemini client when none is configured.
const GEMINI_DEFAULT_MODEL: &str = "gemini-2.5-flash";

/// Which API format the model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiKind {
    /// Google's Gemini API (`generateContent`).
    Gemini,
    /// Any OpenAI-compatible `/chat/completions` endpoint.
    #[serde(rename = "openai")]
    OpenAi,
}

/// One key of the pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlotConfig {
    /// Name of the environment variable holding the key.
    pub api_key_env: String,
    /// This slot's model; defaults to the table's `model`.
    pub model: Option<String>,
}

/// A chat model's table (the trainer's `[teacher]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// API format of the endpoint, which picks the client (`"gemini"` or `"openai"`).
    pub api: ApiKind,
    /// Overrides the API's public base URL.
    pub base_url: Option<String>,
    /// Model of slots that name none (Gemini defaults to `gemini-2.5-flash`).
    pub model: Option<String>,
    /// The API keys to spread requests over; at least one is required.
    pub slots: Vec<SlotConfig>,
    /// Shortest time between two requests on one key.
    pub min_gap_ms: Option<u64>,
    /// First backoff of a key after a 429/5xx, doubled per further failure.
    pub backoff_ms: Option<u64>,
    /// Longest backoff of a key, in milliseconds (default 60000).
    pub max_backoff_ms: Option<u64>,
    /// Attempts per query over all keys.
    pub max_attempts: Option<u32>,
    /// Total requests allowed; unlimited when absent.
    pub budget: Option<u64>,
    /// Per-request HTTP timeout, in milliseconds (default 60000).
    pub timeout_ms: Option<u64>,
}

impl PoolConfig {
    /// The pool's policy: configured values over [`PoolSettings::default`].
    pub fn settings(&self) -> PoolSettings {
        let defaults = PoolSettings::default();
        let ms = |value: Option<u64>, default: Duration| {
            value.map(Duration::from_millis).unwrap_or(default)
        };
        PoolSettings {
            min_gap: ms(self.min_gap_ms, defaults.min_gap),
            backoff: ms(self.backoff_ms, defaults.backoff),
            max_backoff: ms(self.max_backoff_ms, defaults.max_backoff),
            max_attempts: self.max_attempts.unwrap_or(defaults.max_attempts),
            budget: self.budget.or(defaults.budget),
            timeout: ms(self.timeout_ms, defaults.timeout),
        }
    }

    /// The slots, with keys read from their environment variables.
    pub fn resolve_slots(&self) -> Result<Vec<Slot>, LlmError> {
        if self.slots.is_empty() {
            return Err(LlmError::NotConfigured(
                "no API key slots (add `slots = [{ api_key_env = \"...\" }]`)".into(),
            ));
        }
        let default_model = self.model.clone().or_else(|| match self.api {
            ApiKind::Gemini => Some(GEMINI_DEFAULT_MODEL.to_string()),
            ApiKind::OpenAi => None,
        });
        self.slots
            .iter()
            .enumerate()
            .map(|(index, slot)| {
                let key = std::env::var(&slot.api_key_env)
                    .ok()
                    .filter(|k| !k.trim().is_empty())
                    .ok_or_else(|| {
                        LlmError::NotConfigured(format!(
                            "environment variable {} (key slot {index}) is not set",
                            slot.api_key_env
                        ))
                    })?;
                let model = slot
                    .model
                    .clone()
                    .or_else(|| default_model.clone())
                    .ok_or_else(|| {
                        LlmError::NotConfigured(format!(
                            "key slot {index} has no model (set `model`)"
                        ))
                    })?;
                Ok(Slot::new(key.trim(), model))
            })
            .collect()
    }

    /// The configured model, on real time.
    pub fn build(&self) -> Result<Arc<dyn ChatModel>, LlmError> {
        self.build_with_clock(Arc::new(TokioClock))
    }

    /// The configured model on `clock`.
    pub fn build_with_clock(&self, clock: Arc<dyn Clock>) -> Result<Arc<dyn ChatModel>, LlmError> {
        let slots = self.resolve_slots()?;
        let (service, default_base) = match self.api {
            ApiKind::Gemini => ("gemini", GEMINI_DEFAULT_BASE),
            ApiKind::OpenAi => ("openai", OPENAI_DEFAULT_BASE),
        };
        let base = self.base_url.as_deref().unwrap_or(default_base);
        let pool = Arc::new(ClientPool::new(
            service,
            base,
            slots,
            self.settings(),
            clock,
        )?);
        Ok(match self.api {
            ApiKind::Gemini => Arc::new(Gemini::new(pool)),
            ApiKind::OpenAi => Arc::new(OpenAi::new(pool)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> PoolConfig {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn slots_read_keys_from_the_environment_and_default_models() {
        std::env::set_var("TOOLFORGE_TEST_TEACHER_KEY_A", "secret-a");
        let cfg = config(
            r#"{"api": "gemini", "min_gap_ms": 6000, "budget": 10,
                "slots": [{"api_key_env": "TOOLFORGE_TEST_TEACHER_KEY_A"},
                          {"api_key_env": "TOOLFORGE_TEST_TEACHER_KEY_A", "model": "gemini-2.5-pro"}]}"#,
        );
        let slots = cfg.resolve_slots().unwrap();
        assert_eq!(slots[0].key.expose(), "secret-a");
        assert_eq!(slots[0].model, "gemini-2.5-flash");
        assert_eq!(slots[1].model, "gemini-2.5-pro");
        assert!(!format!("{slots:?}").contains("secret-a"));
        let settings = cfg.settings();
        assert_eq!(settings.min_gap, Duration::from_secs(6));
        assert_eq!(settings.budget, Some(10));
        let model = cfg.build().unwrap();
        assert_eq!(model.name(), "gemini:gemini-2.5-flash+gemini-2.5-pro");
    }

    #[test]
    fn missing_keys_and_models_are_clear_errors() {
        let cfg = config(
            r#"{"api": "openai", "slots": [{"api_key_env": "TOOLFORGE_TEST_TEACHER_UNSET"}]}"#,
        );
        let err = cfg.resolve_slots().unwrap_err().to_string();
        assert!(err.contains("TOOLFORGE_TEST_TEACHER_UNSET"), "{err}");
        std::env::set_var("TOOLFORGE_TEST_TEACHER_KEY_B", "secret-b");
        let cfg = config(
            r#"{"api": "openai", "slots": [{"api_key_env": "TOOLFORGE_TEST_TEACHER_KEY_B"}]}"#,
        );
        assert!(cfg
            .resolve_slots()
            .unwrap_err()
            .to_string()
            .contains("no model"));
        let empty = config(r#"{"api": "openai", "slots": []}"#);
        assert!(matches!(empty.build(), Err(LlmError::NotConfigured(_))));
        assert!(serde_json::from_str::<PoolConfig>(r#"{"api": "claude", "slots": []}"#).is_err());
    }
}
