//! Resumable distillation: asks a teacher to label each query and appends one
//! JSON line per answer to the output file as it arrives, so a crash or a spent
//! budget loses nothing. A rerun reads the file back (dropping a line cut short
//! by a crash), skips the ids already answered and carries on.
//!
//! Distilled lines are turned into unfiltered [`Candidate`]s here; checking them
//! against the tool schemas is the filter module's job.

use crate::filter::Candidate;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use toolforge_core::ToolSpec;

use crate::teacher::{Teacher, TeacherError};

/// A query to label.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryItem {
    /// Unique id; resuming skips ids already in the output.
    pub id: String,
    /// The user's request to label.
    pub query: String,
    /// Carried through to the output (category, style, generator, ...).
    #[serde(default)]
    pub meta: Value,
}

/// One line of the distillation output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DistilledLine {
    /// The [`QueryItem`]'s id.
    pub id: String,
    /// The query the teacher labelled.
    pub query: String,
    /// The teacher's name, e.g. `gemini:gemini-2.5-flash`.
    pub teacher: String,
    /// The teacher's message as received.
    pub raw: String,
    /// The calls as the teacher gave them, unvalidated (see [`crate::teacher::TeacherAnswer`]).
    pub calls: Vec<Value>,
    /// The [`QueryItem`]'s `meta`, carried through.
    #[serde(default)]
    pub meta: Value,
}

/// A query the teacher failed to answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DistillFailure {
    /// The query's id.
    pub id: String,
    /// The teacher's error, as text.
    pub error: String,
}

/// Why a distillation stopped before the end of the queries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum DistillStop {
    /// The teacher's request budget ran out.
    BudgetExhausted,
    /// The teacher can answer nothing more (no usable key, not configured).
    TeacherUnusable(String),
}

/// What a distillation run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DistillStats {
    /// Queries given.
    pub total: usize,
    /// Ids found already answered in the output file (or repeated in the input).
    pub skipped: usize,
    /// Queries answered and written in this run.
    pub answered: usize,
    /// Queries the teacher failed on in this run (not written; a rerun retries them).
    pub errors: usize,
    /// The failures of this run, one per query.
    pub failures: Vec<DistillFailure>,
    /// Lines dropped from the existing output because they did not parse
    /// (normally one line cut short by a crash).
    pub dropped_lines: usize,
    /// Set when the run stopped early; everything answered so far is saved.
    pub stopped: Option<DistillStop>,
}

/// Why a distillation could not run.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// The output file could not be read or written.
    #[error("cannot read or write {path}: {source}")]
    Io {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line could not be serialised.
    #[error("cannot write a distilled line: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DistillError + '_ {
    move |source| DistillError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a distillation output, keeping every line that parses; returns the
/// lines and how many were dropped. A missing file is empty.
pub fn read_distilled(path: &Path) -> Result<(Vec<DistilledLine>, usize), DistillError> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(path)(e)),
    };
    Ok(parse_lines(&text))
}

fn parse_lines(text: &str) -> (Vec<DistilledLine>, usize) {
    let mut lines = Vec::new();
    let mut dropped = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(parsed) => lines.push(parsed),
            Err(_) => dropped += 1,
        }
    }
    (lines, dropped)
}

/// Reads what an earlier run wrote and leaves the file clean for appending: when a
/// line did not parse or the last line lacks its newline, the file is rewritten
/// (through a temporary file) with the good lines only.
async fn prepare_output(path: &Path) -> Result<(Vec<DistilledLine>, usize), DistillError> {
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io_error(path)(e)),
    };
    let text = String::from_utf8_lossy(&bytes);
    let (lines, dropped) = parse_lines(&text);
    let clean_end = bytes.is_empty() || bytes.ends_with(b"\n");
    if dropped > 0 || !clean_end {
        tracing::warn!(path = %path.display(), dropped, "repairing an interrupted distillation output");
        let mut clean = String::new();
        for line in &lines {
            clean.push_str(&serde_json::to_string(line)?);
            clean.push('\n');
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(".repair");
        let temporary = PathBuf::from(temporary);
        tokio::fs::write(&temporary, clean)
            .await
            .map_err(io_error(&temporary))?;
        tokio::fs::rename(&temporary, path)
            .await
            .map_err(io_error(path))?;
    }
    Ok((lines, dropped))
}

fn progress_bar(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("distill {bar:40} {pos}/{len} [{elapsed_precise}<{eta}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}

/// Labels every query not yet in `out_path` with `teacher`, appending each answer
/// as one flushed JSON line. A failed query is counted and the run goes on; a
/// spent budget (or an unusable teacher) stops the run cleanly.
pub async fn distill(
    teacher: &dyn Teacher,
    queries: &[QueryItem],
    tools: &[ToolSpec],
    out_path: &Path,
    progress: bool,
) -> Result<DistillStats, DistillError> {
    let (existing, dropped) = prepare_output(out_path).await?;
    let mut done: HashSet<String> = existing.into_iter().map(|line| line.id).collect();
    let mut stats = DistillStats {
        total: queries.len(),
        dropped_lines: dropped,
        ..DistillStats::default()
    };
    let pending: Vec<&QueryItem> = queries.iter().filter(|q| !done.contains(&q.id)).collect();
    stats.skipped = queries.len() - pending.len();
    if let Some(parent) = out_path.parent().filter(|p| !p.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(io_error(parent))?;
    }
    let mut file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out_path)
        .await
        .map_err(io_error(out_path))?;
    let name = teacher.name();
    let bar = progress_bar(pending.len(), progress);
    for item in pending {
        if !done.insert(item.id.clone()) {
            stats.skipped += 1;
            bar.inc(1);
            continue;
        }
        match teacher.label(&item.query, tools).await {
            Ok(answer) => {
                let line = DistilledLine {
                    id: item.id.clone(),
                    query: item.query.clone(),
                    teacher: name.clone(),
                    raw: answer.raw,
                    calls: answer.calls,
                    meta: item.meta.clone(),
                };
                let mut text = serde_json::to_string(&line)?;
                text.push('\n');
                file.write_all(text.as_bytes())
                    .await
                    .map_err(io_error(out_path))?;
                file.flush().await.map_err(io_error(out_path))?;
                stats.answered += 1;
            }
            Err(error) if error.is_fatal() => {
                done.remove(&item.id);
                tracing::warn!(%error, "distillation stopped");
                stats.stopped = Some(match error {
                    TeacherError::BudgetExhausted { .. } => DistillStop::BudgetExhausted,
                    other => DistillStop::TeacherUnusable(other.to_string()),
                });
                break;
            }
            Err(error) => {
                done.remove(&item.id);
                tracing::warn!(id = %item.id, %error, "teacher failed on a query");
                stats.errors += 1;
                stats.failures.push(DistillFailure {
                    id: item.id.clone(),
                    error: error.to_string(),
                });
                bar.set_message(format!("{} errors", stats.errors));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(stats)
}

/// Turns distilled lines into candidates, one per line, without filtering.
pub fn distilled_to_candidates(lines: &[DistilledLine]) -> Vec<Candidate> {
    lines
        .iter()
        .map(|line| {
            let mut meta = match &line.meta {
                Value::Object(map) => map.clone(),
                Value::Null => Map::new(),
                other => {
                    let mut map = Map::new();
                    map.insert("meta".into(), other.clone());
                    map
                }
            };
            meta.insert("id".into(), Value::String(line.id.clone()));
            // A query asked for as unsupported that the teacher also answers
            // with no call keeps the flag (the filter drops it when calls remain).
            let asked_unsupported =
                meta.get("category").and_then(Value::as_str) == Some("unsupported");
            Candidate {
                query: line.query.clone(),
                raw_calls: line.calls.clone(),
                unsupported: asked_unsupported && line.calls.is_empty(),
                source: format!("teacher:{}", line.teacher),
                meta: Value::Object(meta),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(id: &str, calls: Vec<Value>, meta: Value) -> DistilledLine {
        DistilledLine {
            id: id.into(),
            query: format!("query {id}"),
            teacher: "gemini:gemini-2.5-flash".into(),
            raw: "{}".into(),
            calls,
            meta,
        }
    }

    #[test]
    fn candidates_keep_raw_calls_and_carry_the_id() {
        let bad = json!({"tool": "weather", "arguments": "{not json"});
        let lines = vec![
            line(
                "a",
                vec![bad.clone(), json!("MALFORMED")],
                json!({"category": "single"}),
            ),
            line("b", vec![], Value::Null),
        ];
        let candidates = distilled_to_candidates(&lines);
        assert_eq!(candidates[0].raw_calls, vec![bad, json!("MALFORMED")]);
        assert_eq!(candidates[0].source, "teacher:gemini:gemini-2.5-flash");
        assert_eq!(candidates[0].meta, json!({"category": "single", "id": "a"}));
        assert_eq!(candidates[1].meta, json!({"id": "b"}));
        assert!(candidates[1].raw_calls.is_empty());
    }

    #[tokio::test]
    async fn truncated_last_line_is_dropped_and_the_file_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        let good = serde_json::to_string(&line("a", vec![], Value::Null)).unwrap();
        std::fs::write(&path, format!("{good}\n{{\"id\": \"b\", \"que")).unwrap();
        let (lines, dropped) = prepare_output(&path).await.unwrap();
        assert_eq!((lines.len(), dropped), (1, 1));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{good}\n"));
        // A complete last line without its newline is kept and terminated.
        std::fs::write(&path, &good).unwrap();
        let (lines, dropped) = prepare_output(&path).await.unwrap();
        assert_eq!((lines.len(), dropped), (1, 0));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{good}\n"));
        assert_eq!(
            read_distilled(&dir.path().join("missing")).unwrap().0,
            vec![]
        );
    }
}
