//! ToolForge routing stages. Each implements [`toolforge_core::Router`] and may
//! abstain; a [`ChainRouter`] asks its stages in order, taking the first decision
//! that clears its stage's confidence threshold.

pub mod chain;
pub mod toolforge_model;

pub use chain::{ChainRouter, ChainStage};
pub use toolforge_model::ToolForgeRouter;
