//! The routing stage contract. A router reads a query and returns a decision, or
//! abstains (`Ok(None)`) so the next stage of a chain decides.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::decision::RouteDecision;
use crate::tool::ToolSpec;

/// A remembered fact offered to routers (e.g. from a retrieval memory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryHit {
    pub text: String,
    pub score: f64,
}

/// What a router may look at besides the query.
#[derive(Debug, Clone, Default)]
pub struct RouteContext {
    /// Specs of the registered tools; routers must only call these.
    pub tools: Vec<ToolSpec>,
    pub memory: Vec<MemoryHit>,
}

impl RouteContext {
    pub fn new(tools: Vec<ToolSpec>) -> Self {
        Self {
            tools,
            memory: Vec::new(),
        }
    }

    pub fn tool(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.iter().find(|t| t.name == name)
    }
}

/// A stage failure. In a chain it counts as abstaining, and is logged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error("router model unavailable: {0}")]
    Unavailable(String),
    #[error("routing failed: {0}")]
    Failed(String),
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

    /// Composite routers (chains) return the trace of all their stages here;
    /// plain stages keep the default `None` and are traced by [`route_traced`].
    async fn route_with_trace(&self, _query: &str, _context: &RouteContext) -> Option<RouteTrace> {
        None
    }
}

/// A routing result together with the record of every stage that produced it.
#[derive(Debug, Clone)]
pub struct RouteTrace {
    pub result: Result<Option<RouteDecision>, RouteError>,
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

/// Routes and records the stages. Chains report each of their stages; any other
/// router reports itself as one stage.
pub async fn route_traced(router: &dyn Router, query: &str, context: &RouteContext) -> RouteTrace {
    if let Some(trace) = router.route_with_trace(query, context).await {
        return trace;
    }
    let start = std::time::Instant::now();
    let result = router.route(query, context).await;
    RouteTrace::single(router.name(), result, start.elapsed().as_micros() as u64)
}
