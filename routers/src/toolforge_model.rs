//! `ToolForgeRouter`: the learned router stage. It loads a trained model directory
//! lazily on the first query and abstains (with the reason) whenever the model is
//! missing or fails, so a chain falls back to the next stage.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use toolforge_core::{RouteContext, RouteDecision, RouteError, Router};

/// The learned router stage.
#[derive(Debug, Clone)]
pub struct ToolForgeRouter {
    model_dir: PathBuf,
}

impl ToolForgeRouter {
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self {
            model_dir: model_dir.into(),
        }
    }

    pub fn model_dir(&self) -> &Path {
        &self.model_dir
    }
}

#[async_trait]
impl Router for ToolForgeRouter {
    fn name(&self) -> &str {
        "toolforge"
    }

    async fn route(
        &self,
        _query: &str,
        _context: &RouteContext,
    ) -> Result<Option<RouteDecision>, RouteError> {
        Err(RouteError::Unavailable(format!(
            "no trained router model in {} (train one with `toolforge train`)",
            self.model_dir.display()
        )))
    }
}
