//! Teachers: LLMs that label routing queries (and invent new ones) for distillation.
//! The tool schemas ([`ToolSpec`]) are the only description of the tools a teacher
//! sees. Answers are kept raw: bad calls are returned as given, so the filters
//! downstream can count invalid JSON, hallucinated tools and schema failures.
//!
//! [`GeminiTeacher`] and [`OpenAiTeacher`] are API formats on top of a
//! [`ClientPool`] of rotating API keys; [`TeacherConfig`] builds either from config.

pub mod clock;
pub mod config;
pub mod gemini;
pub mod openai;
pub mod pool;
pub mod prompt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::ToolSpec;
use toolforge_tools::http::HttpError;

pub use clock::{Clock, ManualClock, TokioClock};
pub use config::{ApiKind, SlotConfig, TeacherConfig};
pub use gemini::{to_gemini_schema, GeminiTeacher, GEMINI_DEFAULT_BASE};
pub use openai::{OpenAiTeacher, OPENAI_DEFAULT_BASE};
pub use pool::{ApiKey, ClientPool, PoolReply, PoolRequest, PoolSettings, Slot, SlotRef};
pub use prompt::parse_query_list;

/// What a teacher answered for one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeacherAnswer {
    /// The calls as the teacher gave them, in order, unvalidated: normally
    /// `{"tool": <name>, "arguments": <object>}`; arguments that were not valid
    /// JSON stay a JSON string, and a call the API could not even structure is a
    /// bare JSON string. Empty = no tool.
    pub calls: Vec<Value>,
    /// The teacher's message as received (JSON text of the API's message object).
    pub raw: String,
}

/// A request for new user queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    /// The tool the queries are about; `None` for no-tool or multi-tool queries.
    pub tool: Option<String>,
    /// `single`, `multi`, `no_tool`, `ambiguous` or `edge`.
    pub category: String,
    /// `casual`, `terse`, `spoken`, `misspelled`, `lowercase` or `long`.
    pub style: String,
    /// How many queries to ask for.
    pub count: usize,
}

/// Why a teacher could not answer.
#[derive(Debug, thiserror::Error)]
pub enum TeacherError {
    /// The pool's request budget is spent; nothing more will be sent.
    #[error("the teacher's request budget of {budget} requests is used up")]
    BudgetExhausted { budget: u64 },
    #[error("teacher not configured: {0}")]
    NotConfigured(String),
    /// Every API key of the pool was rejected by the server.
    #[error("every API key of the teacher's pool was rejected")]
    NoUsableSlot,
    /// Rate limits or server errors on every attempt.
    #[error("teacher unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: HttpError },
    /// A non-retryable HTTP failure (bad request, malformed response body, ...).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The API answered, but not in the expected shape.
    #[error("{teacher} sent an unexpected answer: {message}")]
    Malformed { teacher: String, message: String },
    /// The API declined to answer (e.g. a blocked prompt).
    #[error("{teacher} refused to answer: {reason}")]
    Refused { teacher: String, reason: String },
    #[error("invalid query request: {0}")]
    InvalidRequest(String),
}

impl TeacherError {
    /// Whether no later request can succeed either (budget spent, no usable key,
    /// not configured), so a batch should stop rather than go on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            TeacherError::BudgetExhausted { .. }
                | TeacherError::NoUsableSlot
                | TeacherError::NotConfigured(_)
        )
    }
}

/// A routing teacher.
#[async_trait]
pub trait Teacher: Send + Sync {
    /// Name recorded with its labels, e.g. `gemini:gemini-2.5-flash`.
    fn name(&self) -> String;

    /// Labels one query: the calls the teacher would make with `tools`.
    async fn label(&self, query: &str, tools: &[ToolSpec]) -> Result<TeacherAnswer, TeacherError>;

    /// Asks for `request.count` diverse user queries of the requested kind.
    async fn generate_queries(
        &self,
        request: &QueryRequest,
        tools: &[ToolSpec],
    ) -> Result<Vec<String>, TeacherError>;
}
