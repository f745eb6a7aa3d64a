//! The run-record schema: one JSON line per agent run, written by the agent's log
//! sink and read by the trainer. Versioned by [`RUN_RECORD_SCHEMA_VERSION`]; fields
//! are only ever added (with defaults), so older lines keep parsing.
//!
//! A log file may also hold [`FeedbackRecord`] lines appended later by
//! `toolforge feedback`; [`LogLine`] reads either.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::decision::RouteDecision;

/// Version of the [`RunRecord`] layout written by this crate.
pub const RUN_RECORD_SCHEMA_VERSION: u32 = 1;

/// What one routing stage did for a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum StageOutcome {
    /// The stage decided and its decision was taken.
    Decided { decision: RouteDecision },
    /// The stage decided but below its threshold, so the next stage was asked.
    BelowThreshold {
        decision: RouteDecision,
        threshold: f64,
    },
    /// The stage abstained.
    Abstained,
    /// The stage failed (counts as abstaining).
    Error { message: String },
    /// The stage ran past its time budget (counts as abstaining).
    Timeout { budget_ms: u64 },
}

/// One stage tried for a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    pub router: String,
    #[serde(flatten)]
    pub outcome: StageOutcome,
    pub confidence: Option<f64>,
    pub latency_us: u64,
}

/// One executed tool call: its arguments and either an output or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub tool: String,
    pub arguments: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_us: u64,
}

/// A user's verdict on a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Feedback {
    /// The decision was right.
    Ok,
    /// The decision was wrong; this is the right one.
    Corrected { decision: RouteDecision },
}

/// One logged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema_version: u32,
    pub run_id: String,
    /// RFC 3339 UTC timestamp of the start of the run.
    pub timestamp: String,
    pub query: String,
    /// Every routing stage tried, in order.
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// The decision that was executed.
    pub decision: RouteDecision,
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    pub answer: String,
    #[serde(default)]
    pub feedback: Option<Feedback>,
    /// Version of the router model, when a model stage took part.
    #[serde(default)]
    pub router_model_version: Option<String>,
    #[serde(default)]
    pub total_us: u64,
}

/// A verdict appended to a run log after the run (`toolforge feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    pub feedback_for: String,
    pub timestamp: String,
    pub feedback: Feedback,
}

/// Any line of a run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogLine {
    Feedback(FeedbackRecord),
    Run(Box<RunRecord>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::ToolCall;
    use serde_json::json;

    fn sample() -> RunRecord {
        let decision = RouteDecision {
            calls: vec![ToolCall::new("calculator", json!({"expression": "2+2"}))],
            router: "regex".into(),
            confidence: Some(0.9),
            unsupported: false,
        };
        RunRecord {
            schema_version: RUN_RECORD_SCHEMA_VERSION,
            run_id: "r1".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            query: "2+2".into(),
            stages: vec![
                StageRecord {
                    router: "toolforge".into(),
                    outcome: StageOutcome::Error {
                        message: "no model".into(),
                    },
                    confidence: None,
                    latency_us: 3,
                },
                StageRecord {
                    router: "regex".into(),
                    outcome: StageOutcome::Decided {
                        decision: decision.clone(),
                    },
                    confidence: Some(0.9),
                    latency_us: 12,
                },
            ],
            decision,
            calls: vec![CallRecord {
                tool: "calculator".into(),
                arguments: json!({"expression": "2+2"}).as_object().unwrap().clone(),
                output: Some(json!({"value": 4.0})),
                error: None,
                duration_us: 40,
            }],
            answer: "2+2 = 4".into(),
            feedback: None,
            router_model_version: None,
            total_us: 100,
        }
    }

    #[test]
    fn run_record_round_trips_and_is_distinguished_from_feedback() {
        let record = sample();
        let line = serde_json::to_string(&record).unwrap();
        let back: RunRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, record);
        match serde_json::from_str::<LogLine>(&line).unwrap() {
            LogLine::Run(r) => assert_eq!(*r, record),
            other => panic!("expected a run, got {other:?}"),
        }
        let fb = FeedbackRecord {
            feedback_for: "r1".into(),
            timestamp: "2026-01-01T00:00:01Z".into(),
            feedback: Feedback::Ok,
        };
        let fb_line = serde_json::to_string(&fb).unwrap();
        assert_eq!(
            serde_json::from_str::<LogLine>(&fb_line).unwrap(),
            LogLine::Feedback(fb)
        );
    }
}
