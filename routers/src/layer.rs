//! Router layers in the manner of tower: each wraps a stage and is itself a
//! [`Router`], so a chain is a composition of small pieces, not a special type.
//!
//! - [`Threshold`]: a decision below a confidence is not taken (the trace keeps it);
//! - [`Budget`]: past a time budget the stage counts as abstaining
//!   ([`toolforge_core::deadline::within`], the executor's mechanism too);
//! - [`Traced`]: a `tracing` span and event per stage;
//! - [`Fallback`]: a second stage is asked when the first does not decide;
//! - [`BestGuess`]: when nothing was taken, the most confident rejected decision.
//!
//! [`RouterExt`] puts them on every router:
//!
//! ```
//! use std::time::Duration;
//! use toolforge_core::{RouteContext, RouteDecision, RouteError, Router, StageOutcome};
//! use toolforge_routers::RouterExt;
//!
//! struct Fixed(&'static str, f64);
//! #[async_trait::async_trait]
//! impl Router for Fixed {
//!     fn name(&self) -> &str { self.0 }
//!     async fn route(&self, _: &str, _: &RouteContext) -> Result<Option<RouteDecision>, RouteError> {
//!         Ok(Some(RouteDecision::direct(self.0, Some(self.1))))
//!     }
//! }
//!
//! let router = Fixed("model", 0.3)
//!     .budget(Duration::from_millis(50))
//!     .threshold(0.5)
//!     .traced()
//!     .or(Fixed("rules", 0.9));
//! let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
//! let trace = rt.block_on(router.route_traced("hi", &RouteContext::default()));
//! assert_eq!(trace.result.unwrap().unwrap().router, "rules");
//! assert!(matches!(trace.stages[0].outcome, StageOutcome::BelowThreshold { .. }));
//! ```

use std::time::{Duration, Instant};

use async_trait::async_trait;
use toolforge_core::deadline::within;
use toolforge_core::{
    RouteContext, RouteDecision, RouteError, RouteTrace, Router, StageOutcome, StageRecord,
};
use tracing::Instrument;

/// The layers as methods on any router.
pub trait RouterExt: Router + Sized {
    /// Decisions below `threshold` confidence are not taken; see [`Threshold`].
    fn threshold(self, threshold: f64) -> Threshold<Self> {
        Threshold {
            inner: self,
            threshold,
        }
    }

    /// Past `budget` the stage counts as abstaining; see [`Budget`].
    fn budget(self, budget: Duration) -> Budget<Self> {
        Budget {
            inner: self,
            budget,
        }
    }

    /// A `tracing` span per call; see [`Traced`].
    fn traced(self) -> Traced<Self> {
        Traced { inner: self }
    }

    /// `then` is asked when this router does not decide; see [`Fallback`].
    fn or<B: Router>(self, then: B) -> Fallback<Self, B> {
        Fallback { first: self, then }
    }

    /// The most confident rejected decision when none was taken; see [`BestGuess`].
    fn best_guess(self) -> BestGuess<Self> {
        BestGuess { inner: self }
    }
}

impl<R: Router> RouterExt for R {}

/// Takes a decision only when its confidence reaches the threshold. A decision
/// without a confidence passes only a threshold of 0. A rejected decision stays
/// in the trace as [`StageOutcome::BelowThreshold`] and the result abstains.
#[derive(Debug, Clone)]
pub struct Threshold<R> {
    inner: R,
    threshold: f64,
}

impl<R> Threshold<R> {
    fn passes(&self, decision: &RouteDecision) -> bool {
        match decision.confidence {
            Some(confidence) => confidence >= self.threshold,
            None => self.threshold <= 0.0,
        }
    }
}

#[async_trait]
impl<R: Router> Router for Threshold<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        Ok(self
            .inner
            .route(query, context)
            .await?
            .filter(|decision| self.passes(decision)))
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let mut trace = self.inner.route_traced(query, context).await;
        let rejected = matches!(&trace.result, Ok(Some(decision)) if !self.passes(decision));
        if rejected {
            if let Some(record) = trace.stages.last_mut() {
                if let StageOutcome::Decided { decision } = &record.outcome {
                    record.outcome = StageOutcome::BelowThreshold {
                        decision: decision.clone(),
                        threshold: self.threshold,
                    };
                }
            }
            trace.result = Ok(None);
        }
        trace
    }

    fn model_version(&self) -> Option<String> {
        self.inner.model_version()
    }
}

/// Runs the stage within a time budget; past it the result is
/// [`RouteError::Timeout`] and the stage's late answer is not taken.
#[derive(Debug, Clone)]
pub struct Budget<R> {
    inner: R,
    budget: Duration,
}

#[async_trait]
impl<R: Router> Router for Budget<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        within(self.budget, self.inner.route(query, context))
            .await
            .unwrap_or_else(|overrun| Err(RouteError::Timeout(overrun.budget_ms())))
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let start = Instant::now();
        match within(self.budget, self.inner.route_traced(query, context)).await {
            Ok(trace) => trace,
            Err(overrun) => RouteTrace::single(
                self.inner.name(),
                Err(RouteError::Timeout(overrun.budget_ms())),
                start.elapsed().as_micros() as u64,
            ),
        }
    }

    fn model_version(&self) -> Option<String> {
        self.inner.model_version()
    }
}

/// A `route_stage` span around the stage and a debug event with its outcome.
#[derive(Debug, Clone)]
pub struct Traced<R> {
    inner: R,
}

#[async_trait]
impl<R: Router> Router for Traced<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        self.route_traced(query, context).await.result
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let span = tracing::debug_span!("route_stage", router = %self.inner.name());
        let trace = self
            .inner
            .route_traced(query, context)
            .instrument(span.clone())
            .await;
        if let Some(StageRecord {
            router,
            outcome,
            latency_us,
            ..
        }) = trace.stages.last()
        {
            span.in_scope(|| tracing::debug!(%router, latency_us, ?outcome, "stage answered"));
        }
        trace
    }

    fn model_version(&self) -> Option<String> {
        self.inner.model_version()
    }
}

/// Asks `first`; when it abstains or fails (the failure stays in the trace),
/// asks `then` and returns its result. The trace holds both stages' records.
#[derive(Debug, Clone)]
pub struct Fallback<A, B> {
    first: A,
    then: B,
}

impl<A, B> Fallback<A, B> {
    /// Asks `first`, then `then` when `first` does not decide.
    pub fn new(first: A, then: B) -> Self {
        Self { first, then }
    }
}

#[async_trait]
impl<A: Router, B: Router> Router for Fallback<A, B> {
    fn name(&self) -> &str {
        "fallback"
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        match self.first.route(query, context).await {
            Ok(Some(decision)) => Ok(Some(decision)),
            Ok(None) | Err(_) => self.then.route(query, context).await,
        }
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let first = self.first.route_traced(query, context).await;
        if matches!(first.result, Ok(Some(_))) {
            return first;
        }
        let then = self.then.route_traced(query, context).await;
        let mut stages = first.stages;
        stages.extend(then.stages);
        RouteTrace {
            result: then.result,
            stages,
        }
    }

    fn model_version(&self) -> Option<String> {
        self.first
            .model_version()
            .or_else(|| self.then.model_version())
    }
}

/// When the inner router takes no decision, returns the most confident decision
/// its stages rejected for a low confidence, if any: a model unsure between tools
/// is a better guess than no tool once the fallbacks have nothing to say.
#[derive(Debug, Clone)]
pub struct BestGuess<R> {
    inner: R,
}

impl<R> BestGuess<R> {
    /// Wraps `inner`, falling back to its best rejected decision.
    pub fn new(inner: R) -> Self {
        Self { inner }
    }
}

#[async_trait]
impl<R: Router> Router for BestGuess<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    async fn route(
        &self,
        query: &str,
        context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        self.route_traced(query, context).await.result
    }

    async fn route_traced(&self, query: &str, context: &RouteContext) -> RouteTrace {
        let mut trace = self.inner.route_traced(query, context).await;
        if matches!(trace.result, Ok(Some(_))) {
            return trace;
        }
        let guess = trace
            .stages
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
            .cloned();
        if let Some(decision) = guess {
            tracing::debug!(router = %decision.router, "taking the best below-threshold guess");
            trace.result = Ok(Some(decision));
        }
        trace
    }

    fn model_version(&self) -> Option<String> {
        self.inner.model_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decides with a fixed confidence after an optional sleep, or fails.
    struct Fixed(&'static str, Option<f64>, Duration);

    #[async_trait]
    impl Router for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        async fn route(
            &self,
            _query: &str,
            _context: &RouteContext,
        ) -> Result<Option<RouteDecision>, RouteError> {
            tokio::time::sleep(self.2).await;
            match self.1 {
                Some(c) => Ok(Some(RouteDecision::direct(self.0, Some(c)))),
                None => Err(RouteError::Failed("broken".into())),
            }
        }
    }

    fn fixed(name: &'static str, confidence: Option<f64>) -> Fixed {
        Fixed(name, confidence, Duration::ZERO)
    }

    /// The plain and the traced paths of a router agree on the decision.
    async fn both(router: &dyn Router) -> (Option<String>, Option<String>) {
        let context = RouteContext::default();
        let plain = router.route("q", &context).await.ok().flatten();
        let traced = router
            .route_traced("q", &context)
            .await
            .result
            .ok()
            .flatten();
        (plain.map(|d| d.router), traced.map(|d| d.router))
    }

    #[tokio::test]
    async fn threshold_and_fallback_agree_on_both_paths() {
        let low = fixed("model", Some(0.3))
            .threshold(0.5)
            .or(fixed("rules", Some(0.9)));
        assert_eq!(
            both(&low).await,
            (Some("rules".into()), Some("rules".into()))
        );
        let high = fixed("model", Some(0.7))
            .threshold(0.5)
            .or(fixed("rules", Some(0.9)));
        assert_eq!(
            both(&high).await,
            (Some("model".into()), Some("model".into()))
        );
        let failing = fixed("model", None).or(fixed("rules", Some(0.9)));
        assert_eq!(
            both(&failing).await,
            (Some("rules".into()), Some("rules".into()))
        );
    }

    #[tokio::test]
    async fn budget_turns_a_late_stage_into_a_timeout() {
        let slow =
            Fixed("model", Some(0.9), Duration::from_millis(300)).budget(Duration::from_millis(20));
        let context = RouteContext::default();
        assert_eq!(
            slow.route("q", &context).await,
            Err(RouteError::Timeout(20))
        );
        let trace = slow.route_traced("q", &context).await;
        assert_eq!(trace.stages.len(), 1);
        assert_eq!(trace.stages[0].router, "model");
        assert_eq!(
            trace.stages[0].outcome,
            StageOutcome::Timeout { budget_ms: 20 }
        );
    }

    #[tokio::test]
    async fn best_guess_only_when_nothing_was_taken() {
        let guessing = fixed("model", Some(0.4))
            .threshold(0.5)
            .or(fixed("other", Some(0.2)).threshold(0.5))
            .best_guess();
        assert_eq!(
            both(&guessing).await,
            (Some("model".into()), Some("model".into()))
        );
        let taken = fixed("model", Some(0.4))
            .threshold(0.5)
            .or(fixed("rules", Some(0.1)))
            .best_guess();
        assert_eq!(
            both(&taken).await,
            (Some("rules".into()), Some("rules".into()))
        );
    }
}
