//! ToolForge routing stages. Each implements [`toolforge_core::Router`] and may
//! abstain; a [`ChainRouter`] asks its stages in order, taking the first decision
//! that clears its stage's confidence threshold.
//!
//! - [`RegexRouter`]: the heuristic baseline, rules in a TOML data file users can extend;
//! - [`ToolForgeRouter`]: the learned router model;
//! - [`NewToolRouter`]: tools registered after the model was trained, by the
//!   user's rules and by prototypes of their example requests;
//! - [`ChainRouter`]: stages with thresholds and time budgets, e.g. model then regex,
//!   composed from the [`layer`] layers ([`RouterExt`]: threshold, budget, trace,
//!   fallback, best guess).

pub mod chain;
pub mod generative;
pub mod layer;
pub mod new_tools;
pub mod regex_router;
pub mod toolforge_model;

pub use chain::{ChainRouter, ChainStage};
pub use generative::GenerativeRouter;
pub use layer::{BestGuess, Budget, Fallback, RouterExt, Threshold, Traced};
pub use new_tools::NewToolRouter;
pub use regex_router::RegexRouter;
pub use toolforge_model::ToolForgeRouter;
