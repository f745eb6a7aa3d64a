//! ToolForge's contracts: everything the other crates agree on and nothing else.
//!
//! - [`Tool`] / [`DynTool`]: a tool with a typed, schema-generating argument struct,
//!   and its object-safe form used by registries.
//! - [`ToolSpec`]: name, description and JSON schema of a tool; one source of truth
//!   for teacher prompts, training formats and argument validation.
//! - [`RouteDecision`] / [`ToolCall`]: the routing decision of the public contract.
//! - [`Router`]: a routing stage that may abstain.
//! - [`deadline::within`]: the one time-budget mechanism (router stages, tool calls).
//! - [`RunRecord`]: one logged agent run, the trainer's input.
//! - [`ApiKey`]: a secret that never prints.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use serde_json::{json, Value};
//! use toolforge_core::{DynTool, Tool, ToolError};
//!
//! #[derive(Deserialize, JsonSchema)]
//! struct EchoArgs {
//!     /// Text to echo back.
//!     text: String,
//! }
//!
//! struct Echo;
//!
//! #[async_trait::async_trait]
//! impl Tool for Echo {
//!     type Args = EchoArgs;
//!     fn name(&self) -> &str { "echo" }
//!     fn description(&self) -> &str { "Repeats the text it is given." }
//!     async fn call(&self, args: EchoArgs) -> Result<Value, ToolError> {
//!         Ok(json!({ "text": args.text }))
//!     }
//! }
//!
//! # tokio_test();
//! # fn tokio_test() {
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let out = rt.block_on(Echo.call_json(json!({ "text": "hi" }))).unwrap();
//! assert_eq!(out["text"], "hi");
//! // Arguments are checked against the generated schema before the call.
//! assert!(rt.block_on(Echo.call_json(json!({ "txt": "hi" }))).is_err());
//! assert_eq!(Echo.spec().parameters["required"], json!(["text"]));
//! # }
//! ```

pub mod deadline;
pub mod decision;
pub mod digest;
pub mod jsonl;
pub mod record;
pub mod router;
pub mod schema;
pub mod secret;
pub mod tool;

pub use decision::{RouteDecision, ToolCall};
pub use record::{
    log_has_run, CallRecord, Feedback, FeedbackRecord, LogLine, RunRecord, StageOutcome,
    StageRecord, RUN_RECORD_SCHEMA_VERSION,
};
pub use router::{MemoryHit, RouteContext, RouteError, RouteTrace, Router};
pub use schema::{schema_for, schema_types, validate_arguments, SchemaViolation};
pub use secret::ApiKey;
pub use tool::{DynTool, Tool, ToolError, ToolExample, ToolSpec};
