//! The routing stage contract. A router reads a query and returns a decision, or
//! abstains (`Ok(None)`) so the next stage of a chain decides.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::decision::RouteDecision;
use crate::tool::{ToolExample, ToolSpec};

/// A remembered fact offered to routers (e.g. from a retrieval memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryHit {
    /// The remembered text.
    pub text: String,
    /// Relevance score the memory gave the hit.
    pub score: f64,
}

/// What a router may look at besides the query.
#[derive(Debug, Clone, Default)]
pub struct RouteContext {
    /// Specs of the registered tools; routers must only call these.
    pub tools: Vec<ToolSpec>,
    /// Remembered facts relevant to the query; empty when there is no memory.
    pub memory: Vec<MemoryHit>,
    /// Example requests of the registered tools, by tool name (shared: a
    /// registry computes them once).
    pub examples: Arc<BTreeMap<String, Vec<ToolExample>>>,
}

impl RouteContext {
    /// A context offering `tools`, with no examples and no memory.
    pub fn new(tools: Vec<ToolSpec>) -> Self {
        Self {
            tools,
            memory: Vec::new(),
            examples: Arc::default(),
        }
    }

    /// The same context with the tools' example requests.
    pub fn with_examples(mut self, examples: Arc<BTreeMap<String, Vec<ToolExample>>>) -> Self {
        self.examples = examples;
        self
    }

    /// The example requests of the tool called `name` (empty when it has none).
    pub fn examples_of(&self, name: &str) -> &[ToolExample] {
        self.examples.get(name).map_or(&[], Vec::as_slice)
    }

    /// The spec of the registered tool called `name`, if any.
    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// A stage failure. In a chain it counts as abstaining, and is logged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    /// The stage's model could not be loaded or used.
    #[error("router model unavailable: {0}")]
    Unavailable(String),
    /// The stage failed for another reason.
    #[error("routing failed: {0}")]
    Failed(String),
    /// The stage ran past its time budget (in milliseconds).
    #[error("routing exceeded its budget of {0} ms")]
    Timeout(u64),
}

/// A routing stage.
#[async_trait]
pub trait Router: Send + Sync {
    /// Stage name reported in decisions (`regex`, `toolforge`, ...).
    fn name(&self) -> &str;

    /// `Ok(Some(decision))` to decide, `Ok(None)` to abstain.
    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError>;

    /// Version of the model behind the stage, recorded in run logs.
    fn model_version(&self) -> Option<String> {
        None
    }

    /// Routes and records every stage that took part. A plain stage is one stage,
    /// timed around [`Router::route`] (this default); layers that wrap or combine
    /// stages (threshold, budget, fallback, ...) override it to keep each inner
    /// stage's record.
    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let start = std::time::Instant::now();
        let result = self.route(query, context).await;
        RouteTrace::single(self.name(), result, start.elapsed().as_micros() as u64)
    }
}

/// A shared router is a router: stages are usually held as `Arc<dyn Router>`.
#[async_trait]
impl<R: Router + ?Sized> Router for std::sync::Arc<R> {
    fn name(&self) -> &str {
        (**self).name()
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        (**self).route(query, context).await
    }

    fn model_version(&self) -> Option<String> {
        (**self).model_version()
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        (**self).route_traced(query, context).await
    }
}

/// A routing result together with the record of every stage that produced it.
#[derive(Debug, Clone)]
pub struct RouteTrace {
    /// The routing result: a decision, an abstention or a failure.
    pub result: Result<Option<RouteDecision>, RouteError>,
    /// Every stage that took part, in the order tried.
    pub stages: Vec<crate::record::StageRecord>,
}

impl RouteTrace {
    /// Records a single stage's result.
    pub fn single(
        router: &str,
        result: Result<Option<RouteDecision>, RouteError>,
        latency_us: u64,
    ) -> Self {
        use crate::record::{StageOutcome, StageRecord};
        let (outcome, confidence) = match &result {
            Ok(Some(decision)) => (
                StageOutcome::Decided {
                    decision: decision.clone(),
                },
                decision.confidence,
            ),
            Ok(None) => (StageOutcome::Abstained, None),
            Err(RouteError::Timeout(ms)) => (StageOutcome::Timeout { budget_ms: *ms }, None),
            Err(e) => (
                StageOutcome::Error {
                    message: e.to_string(),
                },
                None,
            ),
        };
        Self {
            stages: vec![StageRecord {
                router: router.to_string(),
                outcome,
                confidence,
                latency_us,
            }],
            result,
        }
    }
}
