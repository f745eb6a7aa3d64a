//! ToolForge routing stages: the regex heuristic, the ToolForge model and chains with fallback.

pub mod regex_router;
pub use regex_router::RegexRouter;
