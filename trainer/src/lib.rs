//! ToolForge's trainer: labeled routing data (the dataset line shared by every
//! source and by evaluation), router evaluation with the write-up's metrics and
//! more, and plots of the results.

pub mod dataset;
pub mod distill;
pub mod eval;
pub mod plot;
pub mod teacher;
pub mod train;

pub use dataset::{read_examples, Example};
pub use eval::{evaluate, EvalReport, Prediction};
