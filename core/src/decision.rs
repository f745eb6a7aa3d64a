//! The routing decision of the public contract: an ordered list of tool calls
//! (empty = answer directly, or `unsupported` when no tool can do what is asked),
//! the stage that produced it and its confidence.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One tool invocation: `{"tool": "weather", "arguments": {"location": "Tokyo"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Name of the registered tool to call.
    pub tool: String,
    /// Arguments as a JSON object, checked against the tool's schema before the call.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

impl ToolCall {
    /// Builds a call from a tool name and a JSON object of arguments
    /// (anything that is not an object becomes empty arguments).
    pub fn new(tool: impl Into<String>, arguments: Value) -> Self {
        let arguments = match arguments {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            tool: tool.into(),
            arguments,
        }
    }
}

/// `{"calls": [...], "router": "toolforge", "confidence": 0.97}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteDecision {
    /// Tool calls to run, in order; empty to answer directly (or when `unsupported`).
    #[serde(default)]
    pub calls: Vec<ToolCall>,
    /// Name of the stage that decided (`regex`, `toolforge`, ...).
    #[serde(default)]
    pub router: String,
    /// In `[0, 1]`, or `None` (serialised as `null`) when the stage has none.
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Contract 1.1: `calls` is empty because the request asks for something no
    /// registered tool can do ("set an alarm for 7"), not for a direct answer.
    /// Serialised only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsupported: bool,
}

impl RouteDecision {
    /// A decision to answer directly, with no tool.
    pub fn direct(router: impl Into<String>, confidence: Option<f64>) -> Self {
        Self {
            calls: Vec::new(),
            router: router.into(),
            confidence,
            unsupported: false,
        }
    }

    /// A decision that no registered tool can serve the request.
    pub fn unsupported(router: impl Into<String>, confidence: Option<f64>) -> Self {
        Self {
            unsupported: true,
            ..Self::direct(router, confidence)
        }
    }

    /// The sorted, de-duplicated set of tool names, the unit of tool-set accuracy.
    pub fn tool_set(&self) -> Vec<String> {
        let mut names: Vec<String> = self.calls.iter().map(|c| c.tool.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decision_matches_contract_shape() {
        let d = RouteDecision {
            calls: vec![ToolCall::new("weather", json!({"location": "Tokyo"}))],
            router: "toolforge".into(),
            confidence: Some(0.97),
            unsupported: false,
        };
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v,
            json!({"calls": [{"tool": "weather", "arguments": {"location": "Tokyo"}}],
                   "router": "toolforge", "confidence": 0.97})
        );
        let none = serde_json::to_value(RouteDecision::direct("regex", None)).unwrap();
        assert_eq!(
            none,
            json!({"calls": [], "router": "regex", "confidence": null})
        );
        let unsupported =
            serde_json::to_value(RouteDecision::unsupported("regex", Some(0.8))).unwrap();
        assert_eq!(
            unsupported,
            json!({"calls": [], "router": "regex", "confidence": 0.8, "unsupported": true})
        );
        let read: RouteDecision =
            serde_json::from_value(json!({"calls": [], "router": "x", "confidence": null}))
                .unwrap();
        assert!(!read.unsupported);
    }

    #[test]
    fn tool_set_is_sorted_and_unique() {
        let d = RouteDecision {
            calls: vec![
                ToolCall::new("weather", json!({})),
                ToolCall::new("calculator", json!({})),
                ToolCall::new("weather", json!({})),
            ],
            router: String::new(),
            confidence: None,
            unsupported: false,
        };
        assert_eq!(d.tool_set(), vec!["calculator", "weather"]);
    }
}
