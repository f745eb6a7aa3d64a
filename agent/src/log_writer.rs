//! The run log of a long-running service. One writer thread owns the file, so
//! concurrent runs never interleave: each record is one whole line, written with
//! one `write` and flushed as it arrives. The file rotates by size
//! (`runs.jsonl` -> `runs.jsonl.1` -> ..., read back in order by
//! [`toolforge_core::jsonl::with_rotated`]), and [`LogWriter::close`] writes
//! everything queued before it returns: nothing accepted is lost on a graceful
//! stop. A service awaits [`LogWriter::flushed`] before it answers, so a run it
//! answered is in the file, and a kill costs at most the line being written.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::Serialize;
use toolforge_core::jsonl::rotated_path;
use toolforge_core::RunRecord;

use crate::runlog::{open_log_file, LogError, Redactor, RunSink};

/// Records queued for the writer at most; a run waits for room beyond that.
const QUEUE: usize = 8_192;

/// When the log file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rotation {
    /// A file reaching this size is rotated before the next line.
    pub max_bytes: u64,
    /// Rotated files kept (`.1` newest ... `.keep` oldest); older ones are removed.
    pub keep: usize,
}

impl Default for Rotation {
    /// 64 MiB per file, five rotated files kept.
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// What the writer did.
#[derive(Debug)]
struct Counters {
    written: AtomicU64,
    failed: AtomicU64,
    rotations: AtomicU64,
    /// Lines handled (written or failed), for [`LogWriter::flushed`].
    done: tokio::sync::watch::Sender<u64>,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            done: tokio::sync::watch::Sender::new(0),
        }
    }
}

/// The sending side: the channel and how many lines went into it, changed
/// together so a line's number is its place in the channel.
struct Queue {
    sender: Option<SyncSender<String>>,
    queued: u64,
}

/// A run log with one writer thread; a [`RunSink`] for [`crate::Agent`].
pub struct LogWriter {
    path: PathBuf,
    redactor: Redactor,
    queue: Mutex<Queue>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogWriter")
            .field("path", &self.path)
            .field("written", &self.lines_written())
            .finish()
    }
}

impl LogWriter {
    /// Opens (creating folders) the log at `path` and starts its writer. A torn
    /// last line left by an earlier process is ended first, so it costs only itself.
    pub fn start(
        path: impl AsRef<Path>,
        redactor: Redactor,
        rotation: Rotation,
    ) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        let mut file = open_log_file(&path)?;
        toolforge_core::jsonl::end_torn_line(&mut file)?;
        let size = file.metadata()?.len();
        let (sender, receiver) = sync_channel::<String>(QUEUE);
        let counters = Arc::new(Counters::default());
        let thread = {
            let counters = Arc::clone(&counters);
            let path = path.clone();
            std::thread::Builder::new()
                .name("run-log-writer".into())
                .spawn(move || {
                    let mut sink = FileSink {
                        path,
                        file,
                        size,
                        rotation,
                        counters: Arc::clone(&counters),
                    };
                    for line in receiver {
                        match sink.write(&line) {
                            Ok(()) => counters.written.fetch_add(1, Ordering::Relaxed),
                            Err(error) => {
                                tracing::error!(%error, "run log write failed");
                                counters.failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                        counters.done.send_modify(|done| *done += 1);
                    }
                })
                .map_err(LogError::Write)?
        };
        Ok(Self {
            path,
            redactor,
            queue: Mutex::new(Queue {
                sender: Some(sender),
                queued: 0,
            }),
            thread: Mutex::new(Some(thread)),
            counters,
        })
    }

    /// The log file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one line (a run, a feedback record), redacted.
    pub fn append<T: Serialize>(&self, line: &T) -> Result<(), LogError> {
        let text = self.redactor.line(line)?;
        let mut queue = self
            .queue
            .lock()
            .map_err(|_| std::io::Error::other("run log lock poisoned"))?;
        let sender = queue
            .sender
            .as_ref()
            .ok_or_else(|| std::io::Error::other("the run log is closed"))?;
        sender
            .send(text)
            .map_err(|_| std::io::Error::other("the run log writer stopped"))?;
        queue.queued += 1;
        Ok(())
    }

    /// Waits until every line queued before this call is written (or failed):
    /// a service answers after this, so what it answered is in the file.
    pub async fn flushed(&self) {
        let target = self.queue.lock().map(|q| q.queued).unwrap_or(0);
        let mut done = self.counters.done.subscribe();
        let _ = done.wait_for(|done| *done >= target).await;
    }

    /// Lines written and flushed so far.
    pub fn lines_written(&self) -> u64 {
        self.counters.written.load(Ordering::Relaxed)
    }

    /// Lines that could not be written (disk full, file removed, ...).
    pub fn lines_failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Rotations done so far.
    pub fn rotations(&self) -> u64 {
        self.counters.rotations.load(Ordering::Relaxed)
    }

    /// Stops taking lines, writes every queued one and waits for the writer.
    /// Later appends fail; closing twice is harmless.
    pub fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.sender.take();
        }
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            if thread.join().is_err() {
                tracing::error!("the run log writer panicked");
            }
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.close();
    }
}

impl RunSink for LogWriter {
    fn write(&self, record: &RunRecord) -> Result<(), LogError> {
        self.append(record)
    }
}

/// The writer thread's side: the open file and its size.
struct FileSink {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
    counters: Arc<Counters>,
}

impl FileSink {
    fn write(&mut self, line: &str) -> Result<(), LogError> {
        if self.size > 0 && self.size + line.len() as u64 + 1 > self.rotation.max_bytes {
            self.rotate()?;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.file.flush()?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `path.(keep-1)` -> `path.keep`, ..., `path` -> `path.1`, then a new `path`.
    fn rotate(&mut self) -> Result<(), LogError> {
        let numbered = |n: usize| rotated_path(&self.path, n);
        if self.rotation.keep == 0 {
            self.file.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        for n in (1..self.rotation.keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_log_file(&self.path)?;
        self.size = 0;
        self.counters.rotations.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concurrent_appends_are_whole_lines_and_close_writes_them_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("runs.jsonl");
        let writer =
            Arc::new(LogWriter::start(&path, Redactor::default(), Rotation::default()).unwrap());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let writer = Arc::clone(&writer);
                std::thread::spawn(move || {
                    for i in 0..250 {
                        writer
                            .append(&json!({"thread": t, "i": i, "pad": "x".repeat(300)}))
                            .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        writer.close();
        assert_eq!(writer.lines_written(), 2000);
        assert!(writer.append(&json!({"late": true})).is_err());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2000);
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["pad"].as_str().unwrap().len(), 300);
        }
    }

    #[test]
    fn the_file_rotates_by_size_and_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let rotation = Rotation {
            max_bytes: 1_000,
            keep: 2,
        };
        let writer = LogWriter::start(&path, Redactor::default(), rotation).unwrap();
        for i in 0..100 {
            writer
                .append(&json!({"i": i, "pad": "y".repeat(80)}))
                .unwrap();
        }
        writer.close();
        let files = toolforge_core::jsonl::with_rotated(&path);
        assert_eq!(files.len(), 3, "{files:?}");
        let mut numbers = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            assert!(text.len() <= 1_000);
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                numbers.push(value["i"].as_u64().unwrap());
            }
        }
        // The newest lines, in order, with nothing lost between the kept files.
        assert_eq!(numbers.last(), Some(&99));
        assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "{numbers:?}");
        assert!(writer.rotations() > 2);
    }

    #[test]
    fn a_torn_last_line_of_an_earlier_process_is_ended_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        std::fs::write(&path, "{\"whole\": 1}\n{\"torn").unwrap();
        let writer = LogWriter::start(&path, Redactor::default(), Rotation::default()).unwrap();
        writer.append(&json!({"next": 2})).unwrap();
        writer.close();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"whole\": 1}\n{\"torn\n{\"next\":2}\n");
        std::fs::write(&path, "{\"whole\": 1}\n").unwrap();
        let writer = LogWriter::start(&path, Redactor::default(), Rotation::default()).unwrap();
        writer.append(&json!({"next": 2})).unwrap();
        writer.close();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"whole\": 1}\n{\"next\":2}\n");
    }
}
