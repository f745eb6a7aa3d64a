//! Chains of routing stages with fallback, like the write-up's feature flag
//! (model first, regex whenever the model fails). A chain is a composition of the
//! [`crate::layer`] layers: each stage is `Traced(Threshold(Budget(router)))`, the
//! stages are joined by [`Fallback`], and [`BestGuess`] goes on top when asked
//! for. A stage's decision is taken when it does not abstain and its confidence
//! reaches the stage's threshold; a stage that errors or exceeds its time budget
//! counts as abstaining. Every stage's answer is kept in the trace for the run
//! record.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use toolforge_core::{RouteContext, RouteDecision, RouteError, RouteTrace, Router};

use crate::layer::{BestGuess, Fallback, RouterExt};

/// One stage of a chain.
#[derive(Clone)]
pub struct ChainStage {
    /// The router asked at this stage.
    pub router: Arc<dyn Router>,
    /// Minimum confidence for the stage's decision to be taken. A decision without
    /// a confidence (`None`) passes only a threshold of 0.
    pub threshold: f64,
    /// Time budget; past it the stage counts as abstaining.
    pub budget: Option<Duration>,
}

impl ChainStage {
    /// A stage that takes any decision of `router`, with no time budget.
    pub fn new(router: Arc<dyn Router>) -> Self {
        Self {
            router,
            threshold: 0.0,
            budget: None,
        }
    }

    /// Sets the minimum confidence for the stage's decision to be taken.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the time budget past which the stage counts as abstaining.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The stage as layers: budget inside, then threshold, then its trace span.
    fn layered(&self) -> Arc<dyn Router> {
        let router = self.router.clone();
        match self.budget {
            Some(budget) => Arc::new(router.budget(budget).threshold(self.threshold).traced()),
            None => Arc::new(router.threshold(self.threshold).traced()),
        }
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
    /// The stages composed into one router; `None` for a chain without stages.
    composed: Option<Arc<dyn Router>>,
}

impl ChainRouter {
    /// A chain asking `stages` in order, abstaining when none decides.
    pub fn new(stages: Vec<ChainStage>) -> Self {
        Self::compose(stages, false)
    }

    /// When no stage's decision is taken, return the most confident decision that
    /// fell below its stage's threshold (if any) rather than abstaining. A model
    /// that is unsure between tools is still a better guess than no tool at all
    /// once the fallback stages have nothing to say.
    pub fn best_guess(self, enabled: bool) -> Self {
        Self::compose(self.stages, enabled)
    }

    /// The stages, in the order they are asked.
    pub fn stages(&self) -> &[ChainStage] {
        &self.stages
    }

    fn compose(stages: Vec<ChainStage>, best_guess: bool) -> Self {
        let joined = stages
            .iter()
            .rev()
            .fold(None, |rest: Option<Arc<dyn Router>>, stage| {
                let layered = stage.layered();
                Some(match rest {
                    Some(rest) => Arc::new(Fallback::new(layered, rest)),
                    None => layered,
                })
            });
        let composed = match (joined, best_guess) {
            (Some(router), true) => Some(Arc::new(BestGuess::new(router)) as Arc<dyn Router>),
            (joined, _) => joined,
        };
        Self { stages, composed }
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
        self.route_traced(query, context).await.result
    }

    /// A failed last stage counts as abstaining too: a chain never errors.
    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let Some(router) = &self.composed else {
            return RouteTrace {
                result: Ok(None),
                stages: Vec::new(),
            };
        };
        let mut trace = router.route_traced(query, context).await;
        if trace.result.is_err() {
            trace.result = Ok(None);
        }
        trace
    }

    fn model_version(&self) -> Option<String> {
        self.stages.iter().find_map(|s| s.router.model_version())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolforge_core::{StageOutcome, ToolCall};

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
        let trace = chain.route_traced("q", &RouteContext::default()).await;
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
        let trace = plain.route_traced("q", &RouteContext::default()).await;
        assert_eq!(trace.result, Ok(None));
        let guessing = ChainRouter::new(stages).best_guess(true);
        let trace = guessing.route_traced("q", &RouteContext::default()).await;
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
        let trace = chain.route_traced("q", &RouteContext::default()).await;
        assert_eq!(trace.result, Ok(None));
        assert_eq!(trace.stages.len(), 1);
    }
}
