//! placeholder

pub mod regex_router;
pub use regex_router::RegexRouter;
