//! The dataset line: `{"query", "calls": [{"tool", "arguments"}], "source", "meta"}`.
//! Hand-written evaluation sets, teacher output, logs turned into data and
//! `toolforge eval` all use it.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::{RouteDecision, ToolCall};

/// One labeled routing example.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub query: String,
    /// The right calls, in order; empty = answer directly.
    pub calls: Vec<ToolCall>,
    /// Where it came from (`handwritten`, `teacher:offline`, `logs:feedback`, ...).
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub meta: Value,
}

impl Example {
    /// Sorted, de-duplicated tool names; `[]` for no tool.
    pub fn tool_set(&self) -> Vec<String> {
        RouteDecision {
            calls: self.calls.clone(),
            router: String::new(),
            confidence: None,
        }
        .tool_set()
    }
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a dataset line: {message}")]
    Line {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Reads a JSONL dataset strictly: a bad line is an error naming the line.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut examples = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let example = serde_json::from_str(&line).map_err(|e| DatasetError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            message: e.to_string(),
        })?;
        examples.push(example);
    }
    Ok(examples)
}
