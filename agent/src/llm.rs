//! A minimal OpenAI-compatible chat-completions client, shared by the LLM
//! responder and the autonomous task's planner.

use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_tools::http::{HttpEndpoint, HttpError};
use toolforge_tools::EndpointConfig;

/// The `[llm]` table: any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp server, Ollama, ...).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Model name sent in requests; the LLM is used only when this is set.
    pub model: Option<String>,
    #[serde(flatten)]
    pub endpoint: EndpointConfig,
}

/// A chat-completions endpoint and model.
#[derive(Debug, Clone)]
pub struct ChatClient {
    endpoint: HttpEndpoint,
    model: String,
}

impl ChatClient {
    /// `None` when no model is configured.
    pub fn from_config(config: &LlmConfig) -> Option<Self> {
        let model = config.model.clone().filter(|m| !m.is_empty())?;
        Some(Self {
            endpoint: HttpEndpoint::new("llm", &config.endpoint, "https://api.openai.com/v1"),
            model,
        })
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Sends `messages` and returns the first choice's text.
    pub async fn complete(&self, messages: Vec<Value>) -> Result<String, HttpError> {
        let body = json!({ "model": self.model, "messages": messages, "temperature": 0.2 });
        let headers: Vec<(&str, String)> = self
            .endpoint
            .api_key()
            .map(|k| vec![("authorization", format!("Bearer {k}"))])
            .unwrap_or_default();
        let response = self
            .endpoint
            .post_json("/chat/completions", &body, &headers)
            .await?;
        response["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HttpError::Malformed {
                service: "llm".into(),
                message: "no choices[0].message.content in the answer".into(),
            })
    }
}
