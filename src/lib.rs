//! ToolForge: a Rust framework for tool-using agents whose tool routing is learned
//! from their own traffic. This facade re-exports the workspace crates:
//!
//! - [`core`]: contracts (tools, specs, decisions, routers, run records);
//! - [`tools`]: the nine built-in tools and shared-library plugins;
//! - [`llm`]: one chat-model client (Gemini, OpenAI-compatible) over a pool of keys;
//! - [`model`]: the router models (features, compact network, BERT encoder), one
//!   forward for training and inference;
//! - [`routers`]: regex heuristic, the ToolForge model router, layers and chains;
//! - [`agent`]: runtime, executor, run logs and configuration (the CLI is this binary);
//! - [`trainer`]: data from teachers and logs, training and evaluation.

pub use toolforge_agent as agent;
pub use toolforge_core as core;
pub use toolforge_llm as llm;
pub use toolforge_model as model;
pub use toolforge_routers as routers;
pub use toolforge_tools as tools;
pub use toolforge_trainer as trainer;
