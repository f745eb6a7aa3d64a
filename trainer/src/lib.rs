//! ToolForge's trainer: labeled routing data from teachers and the agent's own
//! run logs, filtered and split with provenance, exported to standard fine-tuning
//! formats, router evaluation with the write-up's metrics and more, and plots.
//!
//! Pipeline: [`teacher`] / [`distill`] (and the offline generator) and [`logs`]
//! produce candidates, [`filter`] cleans them, [`split`] writes stratified splits
//! and a manifest, [`export`] renders them, [`eval`] scores routers on them.

pub mod dataset;
pub mod distill;
pub mod eval;
pub mod export;
pub mod filter;
pub mod gate;
pub mod generate;
pub mod logs;
pub mod plot;
pub mod retrain;
pub mod split;
pub mod teacher;
pub mod train;

pub use dataset::{read_examples, Example};
pub use eval::{evaluate, EvalReport, Prediction};
