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
    Decided {
        /// The decision the stage returned.
        decision: RouteDecision,
    },
    /// The stage decided but below its threshold, so the next stage was asked.
    BelowThreshold {
        /// The rejected decision.
        decision: RouteDecision,
        /// The confidence the decision needed to reach.
        threshold: f64,
    },
    /// The stage abstained.
    Abstained,
    /// The stage failed (counts as abstaining).
    Error {
        /// The stage's error, as text.
        message: String,
    },
    /// The stage ran past its time budget (counts as abstaining).
    Timeout {
        /// The budget it exceeded, in milliseconds.
        budget_ms: u64,
    },
}

/// One stage tried for a query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// Name of the stage (`regex`, `toolforge`, ...).
    pub router: String,
    /// What the stage did; flattened into this record under an `outcome` tag.
    #[serde(flatten)]
    pub outcome: StageOutcome,
    /// Confidence of the stage's decision, if it decided and reported one.
    pub confidence: Option<f64>,
    /// Time the stage took, in microseconds.
    pub latency_us: u64,
}

/// One executed tool call: its arguments and either an output or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// Name of the tool called.
    pub tool: String,
    /// Arguments the tool was called with.
    pub arguments: Map<String, Value>,
    /// The tool's JSON result, when the call succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Why the call failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Time the call took, in microseconds.
    pub duration_us: u64,
}

/// A user's verdict on a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Feedback {
    /// The decision was right.
    Ok,
    /// The decision was wrong; this is the right one.
    Corrected {
        /// The decision that should have been made.
        decision: RouteDecision,
    },
}

/// One logged run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Layout version of this record ([`RUN_RECORD_SCHEMA_VERSION`] when written).
    pub schema_version: u32,
    /// Unique id of the run (a UUID v4 when written by the agent).
    pub run_id: String,
    /// RFC 3339 UTC timestamp of the start of the run.
    pub timestamp: String,
    /// The user's query, trimmed.
    pub query: String,
    /// Every routing stage tried, in order.
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// The decision that was executed.
    pub decision: RouteDecision,
    /// Every tool call executed for the decision, in order.
    #[serde(default)]
    pub calls: Vec<CallRecord>,
    /// The answer given to the user.
    pub answer: String,
    /// A verdict stored in the run line itself; verdicts given later arrive as
    /// [`FeedbackRecord`] lines instead.
    #[serde(default)]
    pub feedback: Option<Feedback>,
    /// Version of the router model, when a model stage took part.
    #[serde(default)]
    pub router_model_version: Option<String>,
    /// Wall time of the whole run, in microseconds.
    #[serde(default)]
    pub total_us: u64,
}

/// A verdict appended to a run log after the run (`toolforge feedback`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackRecord {
    /// The `run_id` of the run the verdict is about.
    pub feedback_for: String,
    /// RFC 3339 UTC timestamp of when the verdict was given.
    pub timestamp: String,
    /// The verdict.
    pub feedback: Feedback,
}

/// Any line of a run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LogLine {
    /// A verdict appended after a run.
    Feedback(FeedbackRecord),
    /// A logged run.
    Run(Box<RunRecord>),
}

impl FeedbackRecord {
    /// A verdict on run `run_id`, stamped now (RFC 3339, UTC, milliseconds).
    pub fn now(run_id: &str, feedback: Feedback) -> Self {
        Self {
            feedback_for: run_id.to_string(),
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            feedback,
        }
    }
}

/// Whether the run log read by `reader` holds a run with this id. Damaged lines
/// are passed over; ids of plain characters are matched as text before parsing.
pub fn log_has_run(reader: impl std::io::BufRead, run_id: &str) -> std::io::Result<bool> {
    let plain = run_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    for line in crate::jsonl::lines(reader) {
        let Ok(text) = line?.text else {
            continue;
        };
        if plain && !text.contains(run_id) {
            continue;
        }
        if let Ok(LogLine::Run(run)) = serde_json::from_str::<LogLine>(text.trim()) {
            if run.run_id == run_id {
                return Ok(true);
            }
        }
    }
    Ok(false)
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
