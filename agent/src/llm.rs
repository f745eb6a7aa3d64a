//! The `[llm]` table: the chat model that writes answers (the LLM responder) and
//! plans (`autonomous_task`), an OpenAI-compatible endpoint through
//! `toolforge-llm`'s client (the same one the trainer's teachers use).

use std::sync::Arc;

use serde::Deserialize;
use toolforge_llm::{ChatModel, ClientPool, OpenAi, PoolSettings, Slot, TokioClock};
use toolforge_tools::EndpointConfig;

/// The public OpenAI API, used when no `base_url` is set.
const OPENAI_BASE: &str = "https://api.openai.com/v1";

/// The `[llm]` table: any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Model name sent in requests; the LLM is used only when this is set.
    pub model: Option<String>,
    /// The whole answer step, retries included, in milliseconds (default
    /// 10,000); past it the agent answers offline from the tool results.
    pub answer_timeout_ms: Option<u64>,
    /// Where and how to reach it (base URL, key, timeout, retries, backoff).
    #[serde(flatten)]
    pub endpoint: EndpointConfig,
}

/// Default budget of the whole LLM answer step.
pub const DEFAULT_ANSWER_TIMEOUT_MS: u64 = 10_000;

impl LlmConfig {
    /// The budget of the whole answer step ([`LlmConfig::answer_timeout_ms`]).
    pub fn answer_budget(&self) -> std::time::Duration {
        std::time::Duration::from_millis(
            self.answer_timeout_ms.unwrap_or(DEFAULT_ANSWER_TIMEOUT_MS),
        )
    }

    /// The configured chat model; `None` when no model is named. A missing key
    /// is allowed (local servers need none).
    pub fn chat_model(&self) -> Option<Arc<dyn ChatModel>> {
        let model = self.model.clone().filter(|m| !m.is_empty())?;
        let key = self
            .endpoint
            .resolve_key()
            .map(|key| key.expose().to_string())
            .unwrap_or_default();
        let settings = PoolSettings {
            min_gap: std::time::Duration::ZERO,
            backoff: self.endpoint.backoff(),
            max_backoff: self.endpoint.backoff() * 8,
            max_attempts: self.endpoint.retries() + 1,
            budget: None,
            timeout: self.endpoint.timeout(),
        };
        let base = self.endpoint.base_url.as_deref().unwrap_or(OPENAI_BASE);
        let pool = ClientPool::new(
            "llm",
            base,
            vec![Slot::new(key, model)],
            settings,
            Arc::new(TokioClock),
        )
        .ok()?;
        Some(Arc::new(OpenAi::new(Arc::new(pool))))
    }
}
