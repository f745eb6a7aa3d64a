//! `autonomous_task`: the agent's own executor for open-ended goals. It breaks a
//! goal into steps (with the configured LLM when there is one; offline, by routing
//! each clause of the goal through the router), runs the steps' tools with bounded
//! steps and time, and returns the collected results.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{json, Value};
use toolforge_core::{Router, Tool, ToolCall, ToolError};
use toolforge_llm::{ChatModel, ChatRequest};

use crate::executor::Executor;
use crate::registry::ToolRegistry;

/// The tool's name; the runtime reserves it, so a plugin cannot take it.
pub const AUTONOMOUS_TASK: &str = "autonomous_task";

/// Arguments of `autonomous_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutonomousArgs {
    /// The open-ended goal: research, compare or plan something over several steps.
    pub goal: String,
}

/// Limits of one autonomous task.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutonomousLimits {
    /// Most tool calls one task may plan (default 6).
    pub max_steps: usize,
    /// Wall-clock limit of one task in milliseconds (default 30,000).
    pub max_time_ms: u64,
}

impl Default for AutonomousLimits {
    fn default() -> Self {
        Self {
            max_steps: 6,
            max_time_ms: 30_000,
        }
    }
}

/// The `autonomous_task` tool.
pub struct AutonomousTask {
    router: Arc<dyn Router>,
    tools: ToolRegistry,
    executor: Executor,
    planner: Option<Arc<dyn ChatModel>>,
    limits: AutonomousLimits,
}

impl AutonomousTask {
    /// `tools` are the tools steps may use (never `autonomous_task` itself).
    pub fn new(
        router: Arc<dyn Router>,
        tools: ToolRegistry,
        executor: Executor,
        planner: Option<Arc<dyn ChatModel>>,
        limits: AutonomousLimits,
    ) -> Self {
        Self {
            router,
            tools: tools.without(AUTONOMOUS_TASK),
            executor,
            planner,
            limits,
        }
    }

    async fn plan_with_llm(&self, model: &dyn ChatModel, goal: &str) -> Option<Vec<ToolCall>> {
        let tools: Vec<Value> = self.tools.specs().iter().map(|s| s.to_openai()).collect();
        let request = ChatRequest::new(goal)
            .system(format!(
                "Break the user's goal into at most {} tool calls. Answer with only a JSON array of \
                 objects {{\"tool\": <name>, \"arguments\": {{...}}}} using these tools: {}",
                self.limits.max_steps,
                Value::Array(tools)
            ))
            .temperature(0.2);
        let text = model.chat(&request).await.ok()?.text;
        let start = text.find('[')?;
        let end = text.rfind(']')?;
        let calls: Vec<ToolCall> = serde_json::from_str(text.get(start..=end)?).ok()?;
        let valid: Vec<ToolCall> = calls
            .into_iter()
            .filter(|c| {
                self.tools
                    .spec(&c.tool)
                    .is_some_and(|spec| spec.validate(&Value::Object(c.arguments.clone())).is_ok())
            })
            .take(self.limits.max_steps)
            .collect();
        (!valid.is_empty()).then_some(valid)
    }

    async fn plan_offline(&self, goal: &str) -> Vec<ToolCall> {
        let context = self.tools.context();
        let mut calls = Vec::new();
        for clause in split_goal(goal) {
            if calls.len() >= self.limits.max_steps {
                break;
            }
            let routed = match self.router.route(&clause, &context).await {
                Ok(Some(decision)) => decision.calls,
                _ => Vec::new(),
            };
            let routed: Vec<ToolCall> = routed
                .into_iter()
                .filter(|c| c.tool != AUTONOMOUS_TASK && self.tools.get(&c.tool).is_some())
                .collect();
            if routed.is_empty() {
                if self.tools.get("web_search").is_some() {
                    calls.push(ToolCall::new("web_search", json!({ "query": clause })));
                }
            } else {
                calls.extend(routed);
            }
        }
        calls.truncate(self.limits.max_steps);
        calls
    }
}

/// Splits a goal into clauses: "compare A vs B for X" gives "A for X" and "B for X";
/// otherwise it splits on `;`, "then", "and" and sentence ends.
pub fn split_goal(goal: &str) -> Vec<String> {
    let goal = goal.trim().trim_end_matches(['.', '?', '!']);
    // ASCII case folding keeps every byte offset, so offsets found in `lower`
    // cut `goal` on the same characters; full Unicode lowercasing changes
    // lengths (the Kelvin sign `K` becomes a one-byte `k`). Every pattern
    // matched here is ASCII.
    let lower = goal.to_ascii_lowercase();
    let lead_ins = ["compare ", "contrast ", "research ", "find out "];
    let body_start = lead_ins
        .iter()
        .find(|l| lower.starts_with(*l))
        .map_or(0, |l| l.len());
    for separator in [" vs. ", " vs ", " versus ", " or "] {
        if let Some(at) = lower[body_start..].find(separator) {
            let at = body_start + at;
            let left = goal[body_start..at].trim();
            let rest = &goal[at + separator.len()..];
            let rest_lower = rest.to_ascii_lowercase();
            let tail_at = [" for ", " in ", " as ", " on ", " regarding "]
                .iter()
                .filter_map(|t| rest_lower.find(t))
                .min();
            let (right, tail) = match tail_at {
                Some(t) => (rest[..t].trim(), rest[t..].trim_end()),
                None => (rest.trim(), ""),
            };
            if !left.is_empty() && !right.is_empty() {
                return vec![
                    format!("{left}{tail}").trim().to_string(),
                    format!("{right}{tail}").trim().to_string(),
                ];
            }
        }
    }
    let mut clauses = vec![goal.to_string()];
    for separator in ["; ", ". ", ", then ", " then ", ", and ", " and "] {
        clauses = clauses
            .iter()
            .flat_map(|c| c.split(separator).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    let clauses: Vec<String> = clauses
        .into_iter()
        .map(|c| c.trim().trim_matches(',').trim().to_string())
        .filter(|c| c.split_whitespace().count() >= 2)
        .collect();
    if clauses.is_empty() {
        vec![goal.to_string()]
    } else {
        clauses
    }
}

#[async_trait]
impl Tool for AutonomousTask {
    fn examples(&self) -> Vec<toolforge_core::ToolExample> {
        toolforge_tools::knowledge::examples(self.name())
    }

    type Args = AutonomousArgs;

    fn name(&self) -> &str {
        AUTONOMOUS_TASK
    }

    fn description(&self) -> &str {
        "Open-ended multi-step work (research, compare, plan) run by the agent's own executor over the other tools."
    }

    async fn call(&self, args: AutonomousArgs) -> Result<Value, ToolError> {
        let goal = args.goal.trim();
        if goal.is_empty() {
            return Err(ToolError::InvalidArguments("the goal is empty".into()));
        }
        let budget = Duration::from_millis(self.limits.max_time_ms);
        let work = async {
            let (planner, steps) = match &self.planner {
                Some(model) => match self.plan_with_llm(model.as_ref(), goal).await {
                    Some(steps) => ("llm", steps),
                    None => ("offline", self.plan_offline(goal).await),
                },
                None => ("offline", self.plan_offline(goal).await),
            };
            let results = self.executor.execute(&self.tools, &steps).await;
            (planner, results)
        };
        let (planner, results) = tokio::time::timeout(budget, work)
            .await
            .map_err(|_| ToolError::Timeout(self.limits.max_time_ms))?;
        if results.is_empty() {
            return Err(ToolError::Failed(
                "no step of the goal could be matched to a tool".into(),
            ));
        }
        let summary = results
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let text = match (&r.output, &r.error) {
                    (Some(out), _) => out
                        .get("summary")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .unwrap_or_else(|| out.to_string()),
                    (None, Some(e)) => format!("{} failed: {e}", r.tool),
                    (None, None) => String::new(),
                };
                format!("Step {} ({}): {}", i + 1, r.tool, text)
            })
            .collect::<Vec<_>>()
            .join(" ");
        Ok(json!({
            "goal": goal,
            "planner": planner,
            "steps": results,
            "summary": summary,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goals_whose_lowercase_changes_length_split_without_panicking() {
        // U+212A KELVIN SIGN lowercases to one byte, U+0130 to three.
        for goal in [
            "compare \u{212A}elvin vs Celsius for cooking",
            "research \u{0130}stanbul or Ankara as a base",
            "\u{212A}\u{212A}\u{212A} then compare A versus B",
            "\u{1E9E}tra\u{1E9E}e and \u{212A}",
        ] {
            let clauses = split_goal(goal);
            assert!(!clauses.is_empty(), "{goal}");
        }
        assert_eq!(
            split_goal("compare \u{212A}elvin vs Celsius for cooking"),
            vec!["\u{212A}elvin for cooking", "Celsius for cooking"]
        );
    }

    #[test]
    fn comparisons_split_into_one_clause_per_side_with_shared_tail() {
        assert_eq!(
            split_goal("compare React vs Vue for 2026"),
            vec!["React for 2026", "Vue for 2026"]
        );
    }

    #[test]
    fn lists_split_on_conjunctions() {
        let clauses = split_goal(
            "find flights to Lisbon; check the weather there and convert 200 usd to eur",
        );
        assert_eq!(
            clauses,
            vec![
                "find flights to Lisbon",
                "check the weather there",
                "convert 200 usd to eur"
            ]
        );
    }
}
