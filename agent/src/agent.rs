//! The agent: route a query, execute the decision's calls, compose the answer and
//! log the run. One `run` span per query, with stage and tool spans inside.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};
use toolforge_core::deadline::within;
use toolforge_core::{
    CallRecord, RouteDecision, Router, RunRecord, ToolSpec, RUN_RECORD_SCHEMA_VERSION,
};
use tracing::Instrument;

use crate::executor::Executor;
use crate::registry::ToolRegistry;
use crate::responder::{OfflineResponder, Responder};
use crate::runlog::{Redactor, RunSink};

/// Longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 10_000;

/// Why a query was refused before running.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentError {
    /// The query is empty or only whitespace.
    #[error("the query is empty")]
    EmptyQuery,
    /// The query exceeds [`MAX_QUERY_CHARS`]; holds its length in characters.
    #[error("the query is too long ({0} characters; the limit is {MAX_QUERY_CHARS})")]
    QueryTooLong(usize),
}

/// Whether a run executes its decision and answers, or only routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    RouteOnly,
}

/// The query trimmed, or why it is refused.
fn checked_query(query: &str) -> Result<&str, AgentError> {
    let query = query.trim();
    if query.is_empty() {
        return Err(AgentError::EmptyQuery);
    }
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(AgentError::QueryTooLong(chars));
    }
    Ok(query)
}

/// A tool-using agent.
pub struct Agent {
    registry: ToolRegistry,
    router: Arc<dyn Router>,
    responder: Arc<dyn Responder>,
    executor: Executor,
    sink: Option<Arc<dyn RunSink>>,
    redactor: Redactor,
    answer_budget: Duration,
}

/// Builds an [`Agent`]; only the registry and router are required.
pub struct AgentBuilder {
    registry: ToolRegistry,
    router: Arc<dyn Router>,
    responder: Arc<dyn Responder>,
    executor: Executor,
    sink: Option<Arc<dyn RunSink>>,
    redactor: Redactor,
    answer_budget: Duration,
}

impl AgentBuilder {
    /// Composes answers with `responder` instead of the offline one.
    pub fn responder(mut self, responder: Arc<dyn Responder>) -> Self {
        self.responder = responder;
        self
    }

    /// Runs tool calls with `executor` (e.g. configured timeouts).
    pub fn executor(mut self, executor: Executor) -> Self {
        self.executor = executor;
        self
    }

    /// Writes every finished run to `sink`.
    pub fn log_sink(mut self, sink: Arc<dyn RunSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Removes these secrets (the configured API keys) from every record the agent
    /// returns or logs: an upstream may echo a key in an error.
    pub fn redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    /// Bounds the whole answer step (an LLM responder's retries included); past
    /// it the offline answer is used. Default 10 s.
    pub fn answer_budget(mut self, budget: Duration) -> Self {
        self.answer_budget = budget;
        self
    }

    /// Finishes the agent.
    pub fn build(self) -> Agent {
        Agent {
            registry: self.registry,
            router: self.router,
            responder: self.responder,
            executor: self.executor,
            sink: self.sink,
            redactor: self.redactor,
            answer_budget: self.answer_budget,
        }
    }
}

impl Agent {
    /// Starts a builder with the offline responder, default timeouts and no log.
    pub fn builder(registry: ToolRegistry, router: Arc<dyn Router>) -> AgentBuilder {
        AgentBuilder {
            registry,
            router,
            responder: Arc::new(OfflineResponder),
            executor: Executor::default(),
            sink: None,
            redactor: Redactor::default(),
            answer_budget: Duration::from_millis(crate::llm::DEFAULT_ANSWER_TIMEOUT_MS),
        }
    }

    /// The tools this agent can call.
    pub fn registry(&self) -> &ToolRegistry {
        &self.registry
    }

    /// The router that decides which tools to call.
    pub fn router(&self) -> &Arc<dyn Router> {
        &self.router
    }

    /// Answers one query end to end and logs the run. Tool failures end up in the
    /// record; only an empty or oversized query is refused.
    pub async fn ask(&self, query: &str) -> Result<RunRecord, AgentError> {
        self.logged(query, Mode::Answer).await
    }

    /// Routes one query without running its calls, and logs it as a run with no
    /// calls and no answer (routing traffic is training data too; feedback on
    /// its `run_id` works as for a whole run). Refuses what [`Agent::ask`] refuses.
    pub async fn route(&self, query: &str) -> Result<RunRecord, AgentError> {
        self.logged(query, Mode::RouteOnly).await
    }

    async fn logged(&self, query: &str, mode: Mode) -> Result<RunRecord, AgentError> {
        let query = checked_query(query)?;
        let run_id = uuid::Uuid::new_v4().to_string();
        let span = tracing::info_span!("run", run_id = %run_id);
        let record = self.run(run_id, query, mode).instrument(span).await;
        let record = self.redactor.redact_record(record);
        if let Some(sink) = &self.sink {
            if let Err(error) = sink.write(&record) {
                tracing::warn!(%error, "run log write failed");
            }
        }
        Ok(record)
    }

    async fn run(&self, run_id: String, query: &str, mode: Mode) -> RunRecord {
        let start = Instant::now();
        let timestamp = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let context = self.registry.context();
        let trace = self
            .router
            .route_traced(query, &context)
            .instrument(tracing::info_span!("route", router = %self.router.name()))
            .await;
        let decision = match trace.result {
            Ok(Some(decision)) => decision,
            Ok(None) => RouteDecision::direct(self.router.name(), None),
            Err(error) => {
                tracing::warn!(%error, "routing failed; answering without tools");
                RouteDecision::direct(self.router.name(), None)
            }
        };
        let (calls, answer) = match mode {
            Mode::RouteOnly => (Vec::new(), String::new()),
            Mode::Answer => {
                let calls = self.executor.execute(&self.registry, &decision.calls).await;
                let answer = if decision.unsupported && decision.calls.is_empty() {
                    unsupported_answer(&self.registry.specs())
                } else {
                    self.respond(query, &decision, &calls).await
                };
                (calls, answer)
            }
        };
        RunRecord {
            schema_version: RUN_RECORD_SCHEMA_VERSION,
            run_id,
            timestamp,
            query: query.to_string(),
            stages: trace.stages,
            decision,
            calls,
            answer,
            feedback: None,
            router_model_version: self.router.model_version(),
            total_us: start.elapsed().as_micros() as u64,
        }
    }

    async fn respond(&self, query: &str, decision: &RouteDecision, calls: &[CallRecord]) -> String {
        let answer = within(
            self.answer_budget,
            self.responder.respond(query, decision, calls),
        )
        .await;
        match answer {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::warn!(%error, "responder failed; using the offline answer");
                OfflineResponder::render(calls)
            }
            Err(overrun) => {
                tracing::warn!(%overrun, "responder ran out of time; using the offline answer");
                OfflineResponder::render(calls)
            }
        }
    }
}

/// The answer to a request no registered tool can serve: say so, and list what
/// the agent can do (each tool's description, first sentence).
pub fn unsupported_answer(tools: &[ToolSpec]) -> String {
    let mut answer = String::from(
        "Sorry, I can't do that: none of my tools can carry out this request. What I can do:",
    );
    for spec in tools {
        let first = spec
            .description
            .split_inclusive(". ")
            .next()
            .unwrap_or(&spec.description)
            .trim()
            .trim_end_matches('.');
        answer.push_str(&format!("\n- {} ({first})", spec.name));
    }
    answer
}

/// The `ask --json` shape of the contract.
#[derive(Debug, Clone, Serialize)]
pub struct AskOutput {
    /// The query as run (trimmed).
    pub query: String,
    /// Router (stage) that produced the executed decision.
    pub router: String,
    /// The executed tool calls, in decision order.
    pub calls: Vec<AskCall>,
    /// Contract 1.1: no tool can do what was asked (serialised only when true).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unsupported: bool,
    /// The answer given to the user.
    pub answer: String,
}

/// One call in [`AskOutput`]: exactly one of `output` / `error`.
#[derive(Debug, Clone, Serialize)]
pub struct AskCall {
    /// Name of the tool called.
    pub tool: String,
    /// Arguments the tool was called with.
    pub arguments: Map<String, Value>,
    /// The tool's JSON result, when the call succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why the call failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&RunRecord> for AskOutput {
    fn from(record: &RunRecord) -> Self {
        Self {
            query: record.query.clone(),
            router: record.decision.router.clone(),
            calls: record.calls.iter().map(AskCall::from).collect(),
            unsupported: record.decision.unsupported,
            answer: record.answer.clone(),
        }
    }
}

impl From<&CallRecord> for AskCall {
    fn from(call: &CallRecord) -> Self {
        Self {
            tool: call.tool.clone(),
            arguments: call.arguments.clone(),
            output: call.output.clone(),
            error: call.error.clone(),
        }
    }
}
