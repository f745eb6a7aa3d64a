//! One client for large language models, shared by the trainer's teachers (which
//! label and invent routing data) and the agent's responder and planner (which
//! write answers and plans).
//!
//! - [`ChatModel`]: the one trait: a [`ChatRequest`] (system text, messages,
//!   optional tool specs, temperature) in, a [`ChatReply`] (text and raw tool
//!   calls) out.
//! - Providers: [`Gemini`] (`generateContent`) and [`OpenAi`] (any
//!   OpenAI-compatible `/chat/completions`), both sending through a
//!   [`ClientPool`] of rotating API keys with pacing, backoff and a budget.
//! - [`PoolConfig`]: the `[teacher]`-style table that builds either provider.
//!
//! ```
//! use std::sync::Arc;
//! use toolforge_llm::{ChatModel, ChatRequest, ClientPool, OpenAi, PoolSettings, Slot, TokioClock};
//!
//! let pool = ClientPool::new(
//!     "openai",
//!     "http://127.0.0.1:8080/v1",
//!     vec![Slot::new("", "local-model")],
//!     PoolSettings::default(),
//!     Arc::new(TokioClock),
//! )
//! .unwrap();
//! let model: Arc<dyn ChatModel> = Arc::new(OpenAi::new(Arc::new(pool)));
//! let request = ChatRequest::new("Say hi.").system("You are terse.").temperature(0.2);
//! assert_eq!(model.name(), "openai:local-model");
//! assert_eq!(request.messages.len(), 1);
//! ```

pub mod clock;
pub mod config;
pub mod gemini;
pub mod openai;
pub mod pool;

use async_trait::async_trait;
use serde_json::Value;
use toolforge_core::ToolSpec;
use toolforge_tools::http::HttpError;

pub use clock::{Clock, ManualClock, TokioClock};
pub use config::{ApiKind, PoolConfig, SlotConfig};
pub use gemini::{to_gemini_schema, Gemini, GEMINI_DEFAULT_BASE};
pub use openai::{OpenAi, OPENAI_DEFAULT_BASE};
pub use pool::{ApiKey, ClientPool, PoolReply, PoolRequest, PoolSettings, Slot, SlotRef};

/// Who wrote a message of the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions or context from the application (e.g. tool results).
    System,
    /// The user's words.
    User,
    /// The model's earlier answers.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
}

/// What to ask a chat model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Instructions sent ahead of the conversation (Gemini's `systemInstruction`,
    /// OpenAI's first `system` message).
    pub system: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Tools the model may call (their JSON schemas, in the provider's format).
    pub tools: Vec<ToolSpec>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Ask for a JSON answer where the provider supports it (Gemini's
    /// `responseMimeType`).
    pub json_answer: bool,
}

impl ChatRequest {
    /// A request with one user message, temperature 0, no tools.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            system: None,
            messages: vec![ChatMessage {
                role: Role::User,
                content: user.into(),
            }],
            tools: Vec::new(),
            temperature: 0.0,
            json_answer: false,
        }
    }

    /// Sets the system instructions.
    pub fn system(mut self, text: impl Into<String>) -> Self {
        self.system = Some(text.into());
        self
    }

    /// Appends a message.
    pub fn message(mut self, role: Role, content: impl Into<String>) -> Self {
        self.messages.push(ChatMessage {
            role,
            content: content.into(),
        });
        self
    }

    /// Offers these tools to the model.
    pub fn tools(mut self, tools: &[ToolSpec]) -> Self {
        self.tools = tools.to_vec();
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = temperature;
        self
    }

    /// Asks for a JSON answer where the provider supports it.
    pub fn json_answer(mut self) -> Self {
        self.json_answer = true;
        self
    }
}

/// What a chat model answered.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatReply {
    /// The answer's text (empty when it only called tools).
    pub text: String,
    /// Tool calls as given, in order, unvalidated: normally `{"tool": <name>,
    /// "arguments": <object>}`; arguments that were not valid JSON stay a JSON
    /// string, and a call the API could not even structure is a bare string.
    pub calls: Vec<Value>,
    /// The provider's message as received (JSON text).
    pub raw: String,
}

/// Why a chat model could not answer.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The pool's request budget is spent; nothing more will be sent.
    #[error("the request budget of {budget} requests is used up")]
    BudgetExhausted {
        /// The configured budget.
        budget: u64,
    },
    /// A needed setting or key is missing.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// Every API key of the pool was rejected by the server.
    #[error("every API key of the pool was rejected")]
    NoUsableSlot,
    /// Rate limits or server errors on every attempt.
    #[error("unavailable after {attempts} attempts: {last}")]
    Unavailable {
        /// Attempts made over all keys.
        attempts: u32,
        /// The last failure.
        last: HttpError,
    },
    /// A non-retryable HTTP failure (bad request, malformed response body, ...).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The API answered, but not in the expected shape.
    #[error("{model} sent an unexpected answer: {message}")]
    Malformed {
        /// Provider and model, e.g. `gemini:gemini-2.5-flash`.
        model: String,
        /// What was wrong.
        message: String,
    },
    /// The API declined to answer (e.g. a blocked prompt).
    #[error("{model} refused to answer: {reason}")]
    Refused {
        /// Provider and model.
        model: String,
        /// The provider's reason (`SAFETY`, `content_filter`, ...).
        reason: String,
    },
    /// The request itself is invalid (e.g. asks for nothing).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl LlmError {
    /// Whether no later request can succeed either (budget spent, no usable key,
    /// not configured), so a batch should stop rather than go on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            LlmError::BudgetExhausted { .. } | LlmError::NoUsableSlot | LlmError::NotConfigured(_)
        )
    }
}

/// A chat model behind some API.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Provider and model(s), e.g. `gemini:gemini-2.5-flash+gemini-2.5-pro`.
    fn name(&self) -> String;

    /// Sends one request and reads the answer.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatReply, LlmError>;
}

/// A temperature as a JSON number: whole values as integers (`0`, not `0.0`),
/// as APIs and their examples write them.
pub(crate) fn temperature_json(temperature: f64) -> Value {
    if temperature.fract() == 0.0 && temperature.abs() < 1e6 {
        Value::from(temperature as i64)
    } else {
        Value::from(temperature)
    }
}
