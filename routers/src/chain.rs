//! Chains of routing stages with fallback, like the write-up's feature flag
//! (model first, regex whenever the model fails). A stage's decision is taken when
//! it does not abstain and its confidence reaches the stage's threshold; a stage
//! that errors or exceeds its time budget counts as abstaining. Every stage's
//! answer is kept in the trace for the run record. With
//! [`ChainRouter::best_guess`], a chain whose stages all abstain or fall below
//! their thresholds returns the most confident below-threshold decision instead
//! of nothing (the agent would otherwise answer without tools).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use toolforge_core::{
    RouteContext, RouteDecision, RouteError, RouteTrace, Router, StageOutcome, StageRecord,
};

/// One stage of a chain.
#[derive(Clone)]
pub struct ChainStage {
    pub router: Arc<dyn Router>,
    /// Minimum confidence for the stage's decision to be taken. A decision without
    /// a confidence (`None`) passes only a threshold of 0.
    pub threshold: f64,
    /// Time budget; past it the stage counts as abstaining.
    pub budget: Option<Duration>,
}

impl ChainStage {
    pub fn new(router: Arc<dyn Router>) -> Self {
        Self {
            router,
            threshold: 0.0,
            budget: None,
        }
    }

    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }
}

/// Stages asked in order; the first accepted decision wins.
///
/// ```
/// use std::sync::Arc;
/// use toolforge_core::{RouteContext, RouteDecision, RouteError, Router};
/// use toolforge_routers::{ChainRouter, ChainStage};
///
/// struct Fixed(&'static str, Option<f64>);
/// #[async_trait::async_trait]
/// impl Router for Fixed {
///     fn name(&self) -> &str { self.0 }
///     async fn route(&self, _: &str, _: &RouteContext) -> Result<Option<RouteDecision>, RouteError> {
///         Ok(Some(RouteDecision::direct(self.0, self.1)))
///     }
/// }
///
/// let chain = ChainRouter::new(vec![
///     ChainStage::new(Arc::new(Fixed("model", Some(0.3)))).threshold(0.5),
///     ChainStage::new(Arc::new(Fixed("regex", Some(0.8)))),
/// ]);
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let decision = rt.block_on(chain.route("hi", &RouteContext::default())).unwrap().unwrap();
/// assert_eq!(decision.router, "regex");
/// ```
#[derive(Clone)]
pub struct ChainRouter {
    stages: Vec<ChainStage>,
    best_guess: bool,
}

impl ChainRouter {
    pub fn new(stages: Vec<ChainStage>) -> Self {
        Self {
            stages,
            best_guess: false,
        }
    }

    /// When no stage's decision is taken, return the most confident decision that
    /// fell below its stage's threshold (if any) rather than abstaining. A model
    /// that is unsure between tools is still a better guess than no tool at all
    /// once the fallback stages have nothing to say.
    pub fn best_guess(mut self, enabled: bool) -> Self {
        self.best_guess = enabled;
        self
    }

    pub fn stages(&self) -> &[ChainStage] {
        &self.stages
    }

    async fn run(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let mut stages = Vec::with_capacity(self.stages.len());
        for stage in &self.stages {
            let name = stage.router.name().to_string();
            let span = tracing::debug_span!("route_stage", router = %name);
            let _enter = span.enter();
            let start = Instant::now();
            let result = match stage.budget {
                Some(budget) => {
                    match tokio::time::timeout(budget, stage.router.route(query, context)).await {
                        Ok(result) if start.elapsed() <= budget => result,
                        _ => Err(RouteError::Timeout(budget.as_millis() as u64)),
                    }
                }
                None => stage.router.route(query, context).await,
            };
            let latency_us = start.elapsed().as_micros() as u64;
            let (outcome, confidence, accepted) = match result {
                Ok(Some(decision)) => {
                    let confidence = decision.confidence;
                    let passes = confidence.unwrap_or(0.0) >= stage.threshold
                        || (confidence.is_none() && stage.threshold <= 0.0);
                    if passes {
                        (
                            StageOutcome::Decided {
                                decision: decision.clone(),
                            },
                            confidence,
                            Some(decision),
                        )
                    } else {
                        (
                            StageOutcome::BelowThreshold {
                                decision,
                                threshold: stage.threshold,
                            },
                            confidence,
                            None,
                        )
                    }
                }
                Ok(None) => (StageOutcome::Abstained, None, None),
                Err(RouteError::Timeout(ms)) => {
                    (StageOutcome::Timeout { budget_ms: ms }, None, None)
                }
                Err(error) => (
                    StageOutcome::Error {
                        message: error.to_string(),
                    },
                    None,
                    None,
                ),
            };
            tracing::debug!(router = %name, latency_us, ?outcome, "stage answered");
            stages.push(StageRecord {
                router: name,
                outcome,
                confidence,
                latency_us,
            });
            if let Some(decision) = accepted {
                return RouteTrace {
                    result: Ok(Some(decision)),
                    stages,
                };
            }
        }
        let guess = self
            .best_guess
            .then(|| {
                stages
                    .iter()
                    .filter_map(|record| match &record.outcome {
                        StageOutcome::BelowThreshold { decision, .. } => Some(decision),
                        _ => None,
                    })
                    .max_by(|a, b| {
                        a.confidence
                            .unwrap_or(0.0)
                            .total_cmp(&b.confidence.unwrap_or(0.0))
                    })
                    .cloned()
            })
            .flatten();
        if let Some(decision) = &guess {
            tracing::debug!(router = %decision.router, "taking the best below-threshold guess");
        }
        RouteTrace {
            result: Ok(guess),
            stages,
        }
    }
}

#[async_trait]
impl Router for ChainRouter {
    fn name(&self) -> &str {
        "chain"
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        self.run(query, context).await.result
    }

    async fn route_with_trace(&self, query: &str, context: &RouteContext) -> Option<RouteTrace> {
        Some(self.run(query, context).await)
    }

    fn model_version(&self) -> Option<String> {
        self.stages.iter().find_map(|s| s.router.model_version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::{route_traced, ToolCall};

    enum Behaviour {
        Decide(f64),
        Abstain,
        Fail,
        Sleep(Duration),
    }

    struct Scripted(&'static str, Behaviour);

    #[async_trait]
    impl Router for Scripted {
        fn name(&self) -> &str {
            self.0
        }
        async fn route(
            &self,
            _query: &str,
            _context: &RouteContext,
        ) -> Result<Option<RouteDecision>, RouteError> {
            let decide = |c| {
                Ok(Some(RouteDecision {
                    calls: vec![ToolCall::new(
                        "calculator",
                        serde_json::json!({"expression": "1"}),
                    )],
                    router: self.0.to_string(),
                    confidence: Some(c),
                    unsupported: false,
                }))
            };
            match self.1 {
                Behaviour::Decide(c) => decide(c),
                Behaviour::Abstain => Ok(None),
                Behaviour::Fail => Err(RouteError::Unavailable("no model".into())),
                Behaviour::Sleep(d) => {
                    tokio::time::sleep(d).await;
                    decide(0.99)
                }
            }
        }
    }

    fn chain(first: Behaviour, threshold: f64) -> ChainRouter {
        ChainRouter::new(vec![
            ChainStage::new(Arc::new(Scripted("model", first)))
                .threshold(threshold)
                .budget(Duration::from_millis(50)),
            ChainStage::new(Arc::new(Scripted("regex", Behaviour::Decide(0.7)))),
        ])
    }

    async fn winner_and_first_outcome(chain: &ChainRouter) -> (String, StageOutcome, usize) {
        let trace = route_traced(chain, "q", &RouteContext::default()).await;
        let decision = trace.result.unwrap().unwrap();
        (
            decision.router,
            trace.stages[0].outcome.clone(),
            trace.stages.len(),
        )
    }

    #[tokio::test]
    async fn first_stage_wins_when_confident() {
        let (winner, outcome, n) =
            winner_and_first_outcome(&chain(Behaviour::Decide(0.9), 0.5)).await;
        assert_eq!(winner, "model");
        assert!(matches!(outcome, StageOutcome::Decided { .. }));
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn falls_back_on_abstention() {
        let (winner, outcome, n) = winner_and_first_outcome(&chain(Behaviour::Abstain, 0.5)).await;
        assert_eq!((winner.as_str(), n), ("regex", 2));
        assert_eq!(outcome, StageOutcome::Abstained);
    }

    #[tokio::test]
    async fn falls_back_on_low_confidence() {
        let (winner, outcome, _) =
            winner_and_first_outcome(&chain(Behaviour::Decide(0.4), 0.5)).await;
        assert_eq!(winner, "regex");
        assert!(
            matches!(outcome, StageOutcome::BelowThreshold { threshold, .. } if threshold == 0.5)
        );
    }

    #[tokio::test]
    async fn falls_back_on_error() {
        let (winner, outcome, _) = winner_and_first_outcome(&chain(Behaviour::Fail, 0.5)).await;
        assert_eq!(winner, "regex");
        assert!(matches!(outcome, StageOutcome::Error { message } if message.contains("no model")));
    }

    #[tokio::test]
    async fn falls_back_on_timeout() {
        let slow = Behaviour::Sleep(Duration::from_millis(500));
        let (winner, outcome, _) = winner_and_first_outcome(&chain(slow, 0.5)).await;
        assert_eq!(winner, "regex");
        assert_eq!(outcome, StageOutcome::Timeout { budget_ms: 50 });
    }

    #[tokio::test]
    async fn best_guess_takes_the_most_confident_rejected_decision() {
        let stages = vec![
            ChainStage::new(Arc::new(Scripted("model", Behaviour::Decide(0.45)))).threshold(0.6),
            ChainStage::new(Arc::new(Scripted("other", Behaviour::Decide(0.3)))).threshold(0.6),
            ChainStage::new(Arc::new(Scripted("regex", Behaviour::Abstain))),
        ];
        let plain = ChainRouter::new(stages.clone());
        let trace = route_traced(&plain, "q", &RouteContext::default()).await;
        assert_eq!(trace.result, Ok(None));
        let guessing = ChainRouter::new(stages).best_guess(true);
        let trace = route_traced(&guessing, "q", &RouteContext::default()).await;
        let decision = trace.result.unwrap().unwrap();
        assert_eq!(decision.router, "model");
        assert_eq!(decision.confidence, Some(0.45));
        assert_eq!(trace.stages.len(), 3);
        assert_eq!(trace.stages[2].outcome, StageOutcome::Abstained);
        // An accepted decision still wins over a more confident rejected one.
        let chain = ChainRouter::new(vec![
            ChainStage::new(Arc::new(Scripted("model", Behaviour::Decide(0.59)))).threshold(0.6),
            ChainStage::new(Arc::new(Scripted("regex", Behaviour::Decide(0.2)))),
        ])
        .best_guess(true);
        let (winner, _, _) = winner_and_first_outcome(&chain).await;
        assert_eq!(winner, "regex");
    }

    #[tokio::test]
    async fn abstains_when_every_stage_abstains() {
        let chain = ChainRouter::new(vec![ChainStage::new(Arc::new(Scripted(
            "model",
            Behaviour::Abstain,
        )))]);
        let trace = route_traced(&chain, "q", &RouteContext::default()).await;
        assert_eq!(trace.result, Ok(None));
        assert_eq!(trace.stages.len(), 1);
    }
}
