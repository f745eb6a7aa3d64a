//! Run logs: one JSON line per run ([`toolforge_core::RunRecord`]), appended and
//! flushed as each run ends, with secrets redacted before anything touches disk.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use toolforge_core::RunRecord;

/// Why a log line could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log file or its folder could not be created or opened.
    #[error("cannot open run log {path}: {source}")]
    Open {
        /// Path of the log file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing or flushing the line failed.
    #[error("cannot write run log: {0}")]
    Write(#[from] std::io::Error),
    /// The line could not be serialised to JSON.
    #[error("cannot encode run record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Where finished runs go.
pub trait RunSink: Send + Sync {
    /// Records one finished run.
    fn write(&self, record: &RunRecord) -> Result<(), LogError>;
}

/// Removes secrets from anything logged: known secret values anywhere in a string,
/// and the values of fields whose names look like credentials.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

const REDACTED: &str = "[REDACTED]";

impl Redactor {
    /// Secrets shorter than 4 characters are ignored (they would redact ordinary text).
    pub fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| s.len() >= 4).collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// Redacts `value` in place for storage: secret values inside strings, and
    /// every non-null value of a credential-like field (`api_key`, `token`,
    /// `password`, ...).
    pub fn redact(&self, value: &mut Value) {
        self.redact_with(value, true);
    }

    /// Redacts the configured secret values inside `value`'s strings, leaving
    /// fields alone: what a user is shown (a tool's `password` output is theirs,
    /// an upstream echoing the agent's key is not).
    pub fn redact_secrets(&self, value: &mut Value) {
        self.redact_with(value, false);
    }

    /// The JSON line to store for `line`, redacted ([`Redactor::redact`]).
    pub fn line<T: Serialize>(&self, line: &T) -> Result<String, LogError> {
        let mut value = serde_json::to_value(line)?;
        self.redact(&mut value);
        Ok(serde_json::to_string(&value)?)
    }

    /// `text` with the configured secret values replaced.
    pub fn redact_text(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    /// The record as shown to a user ([`Redactor::redact_secrets`]).
    pub fn redact_record(&self, record: RunRecord) -> RunRecord {
        if self.secrets.is_empty() {
            return record;
        }
        let Ok(mut value) = serde_json::to_value(&record) else {
            return record;
        };
        self.redact_secrets(&mut value);
        serde_json::from_value(value).unwrap_or(record)
    }

    fn redact_with(&self, value: &mut Value, fields: bool) {
        match value {
            Value::String(text) if self.secrets.iter().any(|s| text.contains(s.as_str())) => {
                *text = self.redact_text(text);
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_with(v, fields)),
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    if fields && is_credential_key(key) && !item.is_null() {
                        *item = Value::String(REDACTED.into());
                    } else {
                        self.redact_with(item, fields);
                    }
                }
            }
            _ => {}
        }
    }
}

fn is_credential_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "apikey",
        "token",
        "secret",
        "password",
        "authorization",
        "bearer",
    ]
    .iter()
    .any(|marker| key.contains(marker))
}

/// Opens a log file for reading and appending, creating it and its folder.
pub(crate) fn open_log_file(path: &Path) -> Result<File, LogError> {
    let open_error = |source| LogError::Open {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(open_error)?;
    }
    OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)
        .map_err(open_error)
}

/// An append-only JSON Lines file.
pub struct JsonlRunLog {
    path: PathBuf,
    file: Mutex<File>,
    redactor: Redactor,
}

impl JsonlRunLog {
    /// Opens (creating it and its folder if needed) the log for appending.
    pub fn open(path: impl AsRef<Path>, redactor: Redactor) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        let file = open_log_file(&path)?;
        Ok(Self {
            path,
            file: Mutex::new(file),
            redactor,
        })
    }

    /// Path of the log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends any serialisable line (runs, feedback), redacted, on a line of
    /// its own (after a torn last line too), and flushes.
    pub fn append<T: Serialize>(&self, line: &T) -> Result<(), LogError> {
        let text = self.redactor.line(line)?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("run log lock poisoned"))?;
        toolforge_core::jsonl::append_line(&mut file, &text)?;
        Ok(())
    }
}

impl RunSink for JsonlRunLog {
    fn write(&self, record: &RunRecord) -> Result<(), LogError> {
        self.append(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_a_user_is_shown_loses_secret_values_but_keeps_fields() {
        let redactor = Redactor::new(["sk-live-123456".to_string()]);
        let mut value = json!({
            "error": "upstream said: bad key sk-live-123456",
            "output": {"password": "hunter22"},
        });
        redactor.redact_secrets(&mut value);
        assert_eq!(value["error"], "upstream said: bad key [REDACTED]");
        assert_eq!(value["output"]["password"], "hunter22");
        assert_eq!(redactor.redact_text("x sk-live-123456 y"), "x [REDACTED] y");
    }

    #[test]
    fn redacts_secret_values_and_credential_fields() {
        let redactor = Redactor::new(["sk-live-123456".to_string(), "ab".to_string()]);
        let mut value = json!({
            "query": "use key sk-live-123456 please",
            "arguments": {"api_key": "whatever", "text": "about"},
            "nested": [{"Authorization": "Bearer x"}],
        });
        redactor.redact(&mut value);
        assert_eq!(value["query"], "use key [REDACTED] please");
        assert_eq!(value["arguments"]["api_key"], REDACTED);
        assert_eq!(value["arguments"]["text"], "about");
        assert_eq!(value["nested"][0]["Authorization"], REDACTED);
    }

    #[test]
    fn a_run_after_a_torn_line_starts_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        std::fs::write(&path, "{\"run_id\":\"a\"}\n{\"run_id\":\"torn").unwrap();
        let log = JsonlRunLog::open(&path, Redactor::default()).unwrap();
        log.append(&json!({"run_id": "b"})).unwrap();
        log.append(&json!({"run_id": "c"})).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[2], r#"{"run_id":"b"}"#);
        assert_eq!(lines[3], r#"{"run_id":"c"}"#);
    }
}
