//! Responders compose the final answer from the query, the decision and the tool
//! results. [`OfflineResponder`] renders each tool's `summary` into sentences;
//! [`LlmResponder`] asks a chat model (and answers no-tool queries directly).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Value};
use toolforge_core::{CallRecord, RouteDecision};
use toolforge_llm::{ChatModel, ChatRequest, Role};

/// Why a responder could not answer; the agent then falls back to the offline one.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("responder failed: {0}")]
pub struct ResponderError(
    /// What went wrong.
    pub String,
);

/// Composes the final answer.
#[async_trait]
pub trait Responder: Send + Sync {
    /// The answer to `query` given the routing decision and the calls' results.
    async fn respond(
        &self,
        query: &str,
        decision: &RouteDecision,
        calls: &[CallRecord],
    ) -> Result<String, ResponderError>;
}

/// Renders tool outputs into sentences, with no model.
#[derive(Debug, Clone, Copy, Default)]
pub struct OfflineResponder;

/// Longest rendering of an output that has no `summary`.
const MAX_RAW_OUTPUT: usize = 400;

impl OfflineResponder {
    /// The offline answer, which never fails.
    pub fn render(calls: &[CallRecord]) -> String {
        if calls.is_empty() {
            return "No tool was needed for this query, and no language model is configured \
                    to answer it directly (set [llm] in the config)."
                .to_string();
        }
        calls
            .iter()
            .map(|call| match (&call.output, &call.error) {
                (_, Some(error)) => format!("{} failed: {error}.", call.tool),
                (Some(output), None) => render_output(output),
                (None, None) => format!("{} returned nothing.", call.tool),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn render_output(output: &Value) -> String {
    if let Some(summary) = output.get("summary").and_then(Value::as_str) {
        return summary.to_string();
    }
    let mut text = output.to_string();
    if text.len() > MAX_RAW_OUTPUT {
        let mut end = MAX_RAW_OUTPUT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

#[async_trait]
impl Responder for OfflineResponder {
    async fn respond(
        &self,
        _query: &str,
        _decision: &RouteDecision,
        calls: &[CallRecord],
    ) -> Result<String, ResponderError> {
        Ok(Self::render(calls))
    }
}

/// Answers with a chat model, grounded on the tool results.
#[derive(Clone)]
pub struct LlmResponder {
    model: Arc<dyn ChatModel>,
}

impl LlmResponder {
    /// A responder asking `model`.
    pub fn new(model: Arc<dyn ChatModel>) -> Self {
        Self { model }
    }
}

impl std::fmt::Debug for LlmResponder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmResponder")
            .field("model", &self.model.name())
            .finish()
    }
}

#[async_trait]
impl Responder for LlmResponder {
    async fn respond(
        &self,
        query: &str,
        _decision: &RouteDecision,
        calls: &[CallRecord],
    ) -> Result<String, ResponderError> {
        let mut request = ChatRequest::new(query)
            .system(
                "You are a helpful assistant. Answer the user's question concisely. \
                 When tool results are given, base the answer on them and say when a tool failed.",
            )
            .temperature(0.2);
        if !calls.is_empty() {
            let results: Vec<Value> = calls
                .iter()
                .map(|c| json!({"tool": c.tool, "arguments": c.arguments, "output": c.output, "error": c.error}))
                .collect();
            request = request.message(
                Role::System,
                format!("Tool results (JSON): {}", Value::Array(results)),
            );
        }
        self.model
            .chat(&request)
            .await
            .map(|reply| reply.text)
            .map_err(|e| ResponderError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn call(output: Option<Value>, error: Option<&str>) -> CallRecord {
        CallRecord {
            tool: "calculator".into(),
            arguments: Map::new(),
            output,
            error: error.map(str::to_string),
            duration_us: 1,
        }
    }

    #[test]
    fn offline_answer_uses_summaries_and_reports_errors() {
        let answer = OfflineResponder::render(&[
            call(Some(json!({"value": 4, "summary": "2+2 = 4"})), None),
            call(None, Some("timed out after 5 ms")),
        ]);
        assert_eq!(answer, "2+2 = 4 calculator failed: timed out after 5 ms.");
        assert!(OfflineResponder::render(&[]).contains("no language model is configured"));
        let long = OfflineResponder::render(&[call(Some(json!({"data": "x".repeat(2000)})), None)]);
        assert!(long.chars().count() <= MAX_RAW_OUTPUT + 1);
    }
}
