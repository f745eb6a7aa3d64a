//! Teachers: LLMs that label routing queries (and invent new ones) for distillation.
//! The tool schemas ([`ToolSpec`]) are the only description of the tools a teacher
//! sees. Answers are kept raw: bad calls are returned as given, so the filters
//! downstream can count invalid JSON, hallucinated tools and schema failures.
//!
//! [`LlmTeacher`] puts the routing prompts on any [`ChatModel`] of
//! `toolforge-llm` (Gemini or OpenAI-compatible, over a pool of rotating keys);
//! [`TeacherConfig`] (the `[teacher]` table) builds one.

pub mod local;
pub mod prompt;

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::ToolSpec;
use toolforge_llm::{ChatModel, ChatRequest};

pub use local::RouterTeacher;
pub use prompt::parse_query_list;
/// Why a teacher could not answer: the LLM client's errors (budget, keys, HTTP,
/// malformed or refused answers, invalid requests).
pub use toolforge_llm::LlmError as TeacherError;
pub use toolforge_llm::PoolConfig as TeacherConfig;

use prompt::{query_generation_prompt, routing_instructions};

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
    /// Example requests of `tool` (e.g. from its spec or `Tool::examples`),
    /// shown to the teacher as a guide to the tool's domain, not to copy.
    pub examples: Vec<String>,
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

/// A routing teacher on a chat model: the routing instructions as the system
/// text, the query as the user turn, the tools offered as functions.
#[derive(Clone)]
pub struct LlmTeacher {
    model: Arc<dyn ChatModel>,
}

impl LlmTeacher {
    /// A teacher asking `model`.
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        Self { model }
    }

    /// The teacher the `[teacher]` table describes, on real time.
    pub fn from_config(config: &TeacherConfig) -> Result<Self, TeacherError> {
        Ok(Self::new(config.build()?))
    }
}

impl std::fmt::Debug for LlmTeacher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTeacher")
            .field("model", &self.model.name())
            .finish()
    }
}

#[async_trait]
impl Teacher for LlmTeacher {
    fn name(&self) -> String {
        self.model.name()
    }

    async fn label(&self, query: &str, tools: &[ToolSpec]) -> Result<TeacherAnswer, TeacherError> {
        let request = ChatRequest::new(query)
            .system(routing_instructions(tools))
            .tools(tools);
        let reply = self.model.chat(&request).await?;
        Ok(TeacherAnswer {
            calls: reply.calls,
            raw: reply.raw,
        })
    }

    async fn generate_queries(
        &self,
        request: &QueryRequest,
        tools: &[ToolSpec],
    ) -> Result<Vec<String>, TeacherError> {
        let prompt = query_generation_prompt(request, tools)?;
        if request.count == 0 {
            return Ok(Vec::new());
        }
        let chat = ChatRequest::new(prompt).temperature(1.0).json_answer();
        let reply = self.model.chat(&chat).await?;
        let mut queries =
            parse_query_list(&reply.text).map_err(|message| TeacherError::Malformed {
                model: self.name(),
                message,
            })?;
        queries.truncate(request.count);
        Ok(queries)
    }
}
