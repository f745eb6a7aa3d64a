//! The executor runs a decision's tool calls: all calls of a decision concurrently
//! (the contract's calls are independent), each on its own task under a timeout.
//! A failing, panicking, unknown or slow tool becomes an `error` entry, never a failed run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use toolforge_core::deadline::within;
use toolforge_core::{CallRecord, ToolCall, ToolError};
use tracing::Instrument;

use crate::registry::ToolRegistry;

/// Runs tool calls with timeouts.
#[derive(Debug, Clone)]
pub struct Executor {
    default_timeout: Duration,
    timeouts: HashMap<String, Duration>,
}

impl Default for Executor {
    fn default() -> Self {
        Self::new(Duration::from_secs(15))
    }
}

impl Executor {
    /// An executor giving every tool `default_timeout` ([`Executor::default`] uses 15 s).
    pub fn new(default_timeout: Duration) -> Self {
        Self {
            default_timeout,
            timeouts: HashMap::new(),
        }
    }

    /// A specific timeout for one tool.
    pub fn with_timeout(mut self, tool: &str, timeout: Duration) -> Self {
        self.timeouts.insert(tool.to_string(), timeout);
        self
    }

    /// The timeout of `tool`: its own if set, else the default.
    pub fn timeout_for(&self, tool: &str) -> Duration {
        self.timeouts
            .get(tool)
            .copied()
            .unwrap_or(self.default_timeout)
    }

    /// Runs every call concurrently; results come back in call order.
    pub async fn execute(&self, registry: &ToolRegistry, calls: &[ToolCall]) -> Vec<CallRecord> {
        let handles: Vec<_> = calls
            .iter()
            .map(|call| {
                let tool = registry.get(&call.tool).cloned();
                let timeout = self.timeout_for(&call.tool);
                let arguments = Value::Object(call.arguments.clone());
                let name = call.tool.clone();
                let span = tracing::info_span!("tool_call", tool = %name);
                tokio::spawn(
                    async move {
                        let start = Instant::now();
                        let result = match tool {
                            None => Err(ToolError::Failed(format!("unknown tool `{name}`"))),
                            Some(tool) => within(timeout, tool.call_json(arguments))
                                .await
                                .unwrap_or_else(|overrun| {
                                    Err(ToolError::Timeout(overrun.budget_ms()))
                                }),
                        };
                        if let Err(error) = &result {
                            tracing::warn!(%error, "tool call failed");
                        }
                        (result, start.elapsed())
                    }
                    .instrument(span),
                )
            })
            .collect();
        let mut records = Vec::with_capacity(calls.len());
        for (call, handle) in calls.iter().zip(handles) {
            let (result, elapsed) = match handle.await {
                Ok(done) => done,
                Err(join) => (
                    Err(ToolError::Failed(format!("the tool crashed: {join}"))),
                    Duration::ZERO,
                ),
            };
            let (output, error) = match result {
                Ok(value) => (Some(value), None),
                Err(e) => (None, Some(e.to_string())),
            };
            records.push(CallRecord {
                tool: call.tool.clone(),
                arguments: call.arguments.clone(),
                output,
                error,
                duration_us: elapsed.as_micros() as u64,
            });
        }
        records
    }
}
