//! A teacher with no API key: any router (in practice the generative router, an
//! instruct LLM on this machine) labels the queries, so `data distill
//! --teacher local` works offline. It labels; it does not write new queries.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use toolforge_core::{RouteContext, Router, ToolSpec};

use super::{QueryRequest, Teacher, TeacherAnswer, TeacherError};

/// A teacher that asks a local router.
pub struct RouterTeacher {
    router: Arc<dyn Router>,
}

impl RouterTeacher {
    /// A teacher asking `router`.
    pub fn new(router: Arc<dyn Router>) -> Self {
        Self { router }
    }
}

#[async_trait]
impl Teacher for RouterTeacher {
    fn name(&self) -> String {
        let version = self.router.model_version().unwrap_or_default();
        format!(
            "local:{}{}",
            self.router.name(),
            if version.is_empty() {
                String::new()
            } else {
                format!(":{version}")
            }
        )
    }

    async fn label(&self, query: &str, tools: &[ToolSpec]) -> Result<TeacherAnswer, TeacherError> {
        let context = RouteContext::new(tools.to_vec());
        let decision = self
            .router
            .route(query, &context)
            .await
            .map_err(|e| TeacherError::NotConfigured(format!("the local teacher failed: {e}")))?
            .ok_or_else(|| TeacherError::NotConfigured("the local teacher abstained".into()))?;
        let calls = decision
            .calls
            .iter()
            .map(|call| json!({"tool": call.tool, "arguments": call.arguments}))
            .collect();
        Ok(TeacherAnswer {
            calls,
            raw: serde_json::to_string(&decision).unwrap_or_default(),
        })
    }

    async fn generate_queries(
        &self,
        _request: &QueryRequest,
        _tools: &[ToolSpec],
    ) -> Result<Vec<String>, TeacherError> {
        Err(TeacherError::NotConfigured(
            "the local teacher labels queries but does not write them: use an API teacher for `data queries`".into(),
        ))
    }
}
