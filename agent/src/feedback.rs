//! A user's verdict on a run, as the command line (`feedback --ok | --correct`)
//! and the service (`POST /v1/feedback`) receive it: a correction is checked
//! against the registered tools' schemas before it can become training data.

use serde_json::Value;
use toolforge_core::{Feedback, RouteDecision, ToolCall};

use crate::registry::ToolRegistry;

/// Why a correction was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FeedbackError {
    /// The correction is not `{"calls": [...]}` (optionally with `"unsupported"`) or a calls array.
    #[error("expected {{\"calls\": [...]}} or a calls array")]
    Shape,
    /// A call is not `{"tool": ..., "arguments": {...}}`.
    #[error("calls must be [{{\"tool\": ..., \"arguments\": {{...}}}}]: {0}")]
    Calls(String),
    /// A call names a tool that is not registered.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// A call's arguments do not satisfy its tool's schema.
    #[error("arguments of `{tool}`: {message}")]
    Arguments {
        /// The tool.
        tool: String,
        /// What is wrong.
        message: String,
    },
}

/// The corrected decision in `value` (`{"calls": [...], "unsupported"?: bool}` or a
/// bare calls array), checked against `registry`, as a [`Feedback::Corrected`].
///
/// ```
/// use serde_json::json;
/// use toolforge_agent::{feedback::correction, ToolRegistry};
///
/// let mut registry = ToolRegistry::new();
/// for tool in toolforge_tools::builtin_tools(&Default::default()) {
///     registry.register(tool).unwrap();
/// }
/// let good = json!({"calls": [{"tool": "weather", "arguments": {"location": "Oslo"}}]});
/// assert!(correction(&good, &registry).is_ok());
/// let bad = json!({"calls": [{"tool": "teleport", "arguments": {}}]});
/// assert_eq!(correction(&bad, &registry).unwrap_err().to_string(), "unknown tool `teleport`");
/// ```
pub fn correction(value: &Value, registry: &ToolRegistry) -> Result<Feedback, FeedbackError> {
    let unsupported = value.get("unsupported").and_then(Value::as_bool) == Some(true);
    let calls = match value {
        Value::Array(_) => value.clone(),
        Value::Object(object) if object.contains_key("calls") => object["calls"].clone(),
        _ => return Err(FeedbackError::Shape),
    };
    let calls: Vec<ToolCall> =
        serde_json::from_value(calls).map_err(|e| FeedbackError::Calls(e.to_string()))?;
    for call in &calls {
        let spec = registry
            .spec(&call.tool)
            .ok_or_else(|| FeedbackError::UnknownTool(call.tool.clone()))?;
        spec.validate(&Value::Object(call.arguments.clone()))
            .map_err(|e| FeedbackError::Arguments {
                tool: call.tool.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(Feedback::Corrected {
        decision: RouteDecision {
            unsupported: unsupported && calls.is_empty(),
            calls,
            router: "user".into(),
            confidence: Some(1.0),
        },
    })
}
