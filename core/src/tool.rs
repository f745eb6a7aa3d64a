//! Tools: a typed trait for authors ([`Tool`]) and an object-safe, JSON-in/JSON-out
//! trait for registries ([`DynTool`]). Every `Tool` is a `DynTool` for free, with
//! its schema generated from the argument struct and arguments validated before the call.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::schema::{schema_for, validate_arguments};

/// What a tool is, as routers, teachers and exporters see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Unique tool name, as used in [`ToolCall::tool`](crate::ToolCall::tool).
    pub name: String,
    /// What the tool does, shown to routers and teachers.
    pub description: String,
    /// JSON schema (an object schema) of the arguments.
    pub parameters: Value,
}

impl ToolSpec {
    /// The OpenAI function-tool shape: `{"type": "function", "function": {...}}`.
    pub fn to_openai(&self) -> Value {
        json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }

    /// Checks arguments against this tool's schema.
    pub fn validate(&self, arguments: &Value) -> Result<(), ToolError> {
        validate_arguments(&self.parameters, arguments).map_err(|errs| {
            ToolError::InvalidArguments(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }
}

/// Why a tool call failed. The executor turns each into an `error` entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema or cannot be used.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran but could not produce a result.
    #[error("{0}")]
    Failed(String),
    /// A remote service could not be reached or answered badly.
    #[error("network error: {0}")]
    Network(String),
    /// The tool lacks configuration it needs, such as an API key.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// The call ran past its time budget (in milliseconds).
    #[error("timed out after {0} ms")]
    Timeout(u64),
}

/// An example request for a tool, with the arguments it should be called with:
/// what a tool teaches the router about itself beyond its schema. The offline
/// generator varies examples into training data for tools it has no templates
/// for, and prototype routing uses them before any retraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolExample {
    /// The request as a user would write it.
    pub query: String,
    /// The arguments the tool should be called with for it.
    #[serde(default)]
    pub arguments: Map<String, Value>,
}

/// A tool with typed arguments. Implement this; use it as a [`DynTool`].
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// The argument struct; its `JsonSchema` is the tool's published schema.
    type Args: DeserializeOwned + JsonSchema + Send;

    /// Unique tool name, as routers call it.
    fn name(&self) -> &str;
    /// What the tool does, shown to routers and teachers.
    fn description(&self) -> &str;
    /// Runs the tool on arguments already validated and parsed.
    async fn call(&self, args: Self::Args) -> Result<Value, ToolError>;
    /// Example requests with their arguments (none by default).
    fn examples(&self) -> Vec<ToolExample> {
        Vec::new()
    }
}

/// The object-safe form of a tool: JSON arguments in, JSON result out.
#[async_trait]
pub trait DynTool: Send + Sync {
    /// Name, description and argument schema of the tool.
    fn spec(&self) -> ToolSpec;
    /// Example requests with their arguments (none by default).
    fn examples(&self) -> Vec<ToolExample> {
        Vec::new()
    }
    /// Runs the tool on JSON arguments (`null` counts as `{}`), validating them first.
    async fn call_json(&self, arguments: Value) -> Result<Value, ToolError>;
}

#[async_trait]
impl<T: Tool> DynTool for T {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_string(),
            description: self.description().to_string(),
            parameters: schema_for::<T::Args>(),
        }
    }

    fn examples(&self) -> Vec<ToolExample> {
        Tool::examples(self)
    }

    async fn call_json(&self, arguments: Value) -> Result<Value, ToolError> {
        let arguments = if arguments.is_null() {
            json!({})
        } else {
            arguments
        };
        validate_arguments(&schema_for::<T::Args>(), &arguments).map_err(|errs| {
            ToolError::InvalidArguments(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        let args: T::Args = serde_json::from_value(arguments)
            .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        self.call(args).await
    }
}
