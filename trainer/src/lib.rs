//! ToolForge's trainer: labeled routing data (the dataset line shared by every
//! source and by evaluation), router evaluation with the write-up's metrics and
//! more, and plots of the results.

pub mod dataset;
pub mod eval;
pub mod export;
pub mod filter;
pub mod logs;
pub mod plot;
pub mod split;

pub use dataset::{read_examples, Example};
pub use eval::{evaluate, EvalReport, Prediction};
