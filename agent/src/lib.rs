//! ToolForge's runtime: the tool registry, the concurrent executor, responders,
//! JSONL run logs and configuration: the library a user embeds (the command
//! line lives in the `toolforge` binary).
//!
//! ```no_run
//! use std::sync::Arc;
//! use toolforge_agent::{Agent, ToolRegistry};
//! use toolforge_routers::RegexRouter;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let mut registry = ToolRegistry::new();
//! for tool in toolforge_tools::builtin_tools(&Default::default()) {
//!     registry.register(tool)?;
//! }
//! let agent = Agent::builder(registry, Arc::new(RegexRouter::builtin())).build();
//! let run = agent.ask("what's 15% of 2850").await?;
//! println!("{}", run.answer);
//! # Ok(()) }
//! ```

pub mod agent;
pub mod autonomous;
pub mod batch;
pub mod config;
pub mod executor;
pub mod feedback;
pub mod llm;
pub mod log_writer;
pub mod registry;
pub mod responder;
pub mod runlog;
pub mod runtime;

pub use agent::{Agent, AgentBuilder, AgentError, AskOutput};
pub use config::AgentConfig;
pub use executor::Executor;
pub use log_writer::{LogWriter, Rotation};
pub use registry::{RegistryError, ToolRegistry};
pub use responder::{LlmResponder, OfflineResponder, Responder, ResponderError};
pub use runlog::{JsonlRunLog, Redactor, RunSink};
pub use runtime::BuildError;
