//! The dataset line: `{"query", "calls": [{"tool", "arguments"}], "source", "meta"}`,
//! with `"unsupported": true` on a request no tool can serve and, in evaluation sets
//! of real queries, `"accept": [[tool, ...], ...]` listing every acceptable tool set.
//! Hand-written evaluation sets, teacher output, logs turned into data and
//! `toolforge eval` all use it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolforge_core::{RouteDecision, ToolCall};

/// One labeled routing example.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// The user's request.
    pub query: String,
    /// The right calls, in order; empty = answer directly. A line may leave it out
    /// only when it has `accept`.
    #[serde(default)]
    pub calls: Vec<ToolCall>,
    /// The calls are empty because no tool can do what is asked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unsupported: bool,
    /// Every acceptable tool set (`[]` = no tool), for evaluation lines whose
    /// request has several right answers; when empty, only `calls`' set is right.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accept: Vec<Vec<String>>,
    /// Where it came from (`handwritten`, `teacher:offline`, `logs:feedback`, ...).
    #[serde(default)]
    pub source: String,
    /// Free-form facts about the example (generator category, run id, ...); `null` when absent.
    #[serde(default)]
    pub meta: Value,
}

impl Example {
    /// Sorted, de-duplicated tool names; `[]` for no tool.
    pub fn tool_set(&self) -> Vec<String> {
        RouteDecision {
            calls: self.calls.clone(),
            ..RouteDecision::direct("", None)
        }
        .tool_set()
    }

    /// The acceptable tool sets, each sorted: `accept`, else the set of `calls`.
    pub fn accepted_sets(&self) -> Vec<Vec<String>> {
        if self.accept.is_empty() {
            return vec![self.tool_set()];
        }
        self.accept
            .iter()
            .map(|set| {
                let mut set = set.clone();
                set.sort();
                set.dedup();
                set
            })
            .collect()
    }

    /// Whether a predicted (sorted, de-duplicated) tool set is right.
    pub fn accepts(&self, tool_set: &[String]) -> bool {
        self.accepted_sets()
            .iter()
            .any(|s| s.as_slice() == tool_set)
    }

    /// Whether answering with no tool is right.
    pub fn accepts_no_tool(&self) -> bool {
        self.accepts(&[])
    }
}

/// Why a dataset could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The dataset file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not valid JSON or not a dataset line.
    #[error("{path}:{line}: not a dataset line: {message}")]
    Line {
        /// The dataset file.
        path: PathBuf,
        /// Line number, from 1.
        line: usize,
        /// What is wrong with the line.
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
    for line in toolforge_core::jsonl::lines(std::io::BufReader::new(file)) {
        let line = line.map_err(|source| DatasetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let example = line
            .text
            .and_then(|text| parse_line(&text))
            .map_err(|message| DatasetError::Line {
                path: path.to_path_buf(),
                line: line.number,
                message,
            })?;
        examples.push(example);
    }
    Ok(examples)
}

/// Parses one dataset line; it must carry `calls` or `accept`.
pub fn parse_line(line: &str) -> Result<Example, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    if value.get("calls").is_none() && value.get("accept").is_none() {
        return Err("missing field `calls` (or `accept`)".into());
    }
    serde_json::from_value(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_lines_list_alternatives() {
        let ex = parse_line(
            r#"{"query": "plug type in japan", "accept": [["wikipedia"], ["web_search"]], "source": "x"}"#,
        )
        .unwrap();
        assert!(ex.calls.is_empty());
        assert!(ex.accepts(&["web_search".to_string()]));
        assert!(ex.accepts(&["wikipedia".to_string()]));
        assert!(!ex.accepts_no_tool());
        let none = parse_line(r#"{"query": "set an alarm", "accept": [[]], "unsupported": true}"#)
            .unwrap();
        assert!(none.unsupported && none.accepts_no_tool());
    }

    #[test]
    fn a_line_needs_calls_or_accept() {
        assert!(parse_line(r#"{"query": "hi"}"#)
            .unwrap_err()
            .contains("calls"));
        let ex = parse_line(r#"{"query": "hi", "calls": []}"#).unwrap();
        assert!(ex.accepts_no_tool() && !ex.unsupported);
        let line = serde_json::to_string(&ex).unwrap();
        assert!(!line.contains("unsupported") && !line.contains("accept"));
    }
}
