//! The tool registry: tools by name, in registration order, with their specs
//! computed once. Routers see the specs; the executor looks tools up by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use toolforge_core::{DynTool, RouteContext, ToolExample, ToolSpec};

/// Why a tool could not be registered.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RegistryError {
    /// Another tool already has this name.
    #[error("a tool named `{0}` is already registered")]
    Duplicate(String),
    /// The name is empty, too long or has characters other than letters, digits, `_` and `-`.
    #[error("invalid tool name `{0}`: use letters, digits, `_` or `-` (at most 64)")]
    InvalidName(String),
}

/// Registered tools.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    entries: Vec<(ToolSpec, Arc<dyn DynTool>)>,
    examples: Arc<BTreeMap<String, Vec<ToolExample>>>,
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a tool; names must be unique and identifier-like.
    pub fn register(&mut self, tool: Arc<dyn DynTool>) -> Result<(), RegistryError> {
        let spec = tool.spec();
        let valid = !spec.name.is_empty()
            && spec.name.len() <= 64
            && spec
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            return Err(RegistryError::InvalidName(spec.name));
        }
        if self.get(&spec.name).is_some() {
            return Err(RegistryError::Duplicate(spec.name));
        }
        let examples = tool.examples();
        if !examples.is_empty() {
            Arc::make_mut(&mut self.examples).insert(spec.name.clone(), examples);
        }
        self.entries.push((spec, tool));
        Ok(())
    }

    /// What routers see: the tools' specs and example requests, no memory.
    pub fn context(&self) -> RouteContext {
        RouteContext::new(self.specs()).with_examples(self.examples.clone())
    }

    /// The tool called `name`, if registered.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn DynTool>> {
        self.entries
            .iter()
            .find(|(spec, _)| spec.name == name)
            .map(|(_, tool)| tool)
    }

    /// The spec of the tool called `name`, if registered.
    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.entries
            .iter()
            .find(|(spec, _)| spec.name == name)
            .map(|(spec, _)| spec)
    }

    /// Specs of all tools, in registration order.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.entries.iter().map(|(spec, _)| spec.clone()).collect()
    }

    /// Names of all tools, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(s, _)| s.name.as_str()).collect()
    }

    /// Number of registered tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A copy without the named tool (e.g. the autonomous task's inner registry).
    pub fn without(&self, name: &str) -> Self {
        let mut examples = (*self.examples).clone();
        examples.remove(name);
        Self {
            entries: self
                .entries
                .iter()
                .filter(|(s, _)| s.name != name)
                .cloned()
                .collect(),
            examples: Arc::new(examples),
        }
    }
}
