//! JSON Lines files that other writers (or a crash) may have left damaged.
//! Appending: a record always starts on a line of its own, so a torn line costs
//! only itself, never the record written after it. Reading: lines are split as
//! bytes, so a line that is not UTF-8 is an error of that line (with its number),
//! not the end of the file.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// `path` with a rotation number: `runs.jsonl` -> `runs.jsonl.3`.
pub fn rotated_path(path: &Path, number: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{number}"));
    PathBuf::from(name)
}

/// A log and its rotated files that exist, oldest first (`path.N` ... `path.1`,
/// then `path`): every line a rotating writer kept, in the order written.
pub fn with_rotated(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..)
        .map(|n| rotated_path(path, n))
        .take_while(|p| p.exists())
        .collect();
    files.reverse();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    files
}

/// One non-blank line of a JSON Lines file.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Its number in the file, from 1.
    pub number: usize,
    /// Its text without the line ending, or why it has none usable.
    pub text: Result<String, String>,
    /// Whether it is the last line and lacks its newline (a torn write, when the
    /// file is a log being appended to).
    pub unterminated: bool,
}

/// The non-blank lines of `reader`. A line that is not UTF-8 carries an error
/// naming the first bad byte; an I/O error ends the iteration.
///
/// ```
/// let lines: Vec<_> = toolforge_core::jsonl::lines(&b"{\"a\":1}\n\n\xff\xfe\n{\"b\""[..])
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(lines.len(), 3);
/// assert_eq!(lines[0].text.as_deref(), Ok("{\"a\":1}"));
/// assert_eq!(lines[1].number, 3);
/// assert!(lines[1].text.as_ref().unwrap_err().contains("not valid UTF-8"));
/// assert!(lines[2].unterminated);
/// ```
pub fn lines<R: BufRead>(mut reader: R) -> impl Iterator<Item = io::Result<Line>> {
    let mut number = 0;
    let mut done = false;
    std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        let mut bytes = Vec::new();
        match reader.read_until(b'\n', &mut bytes) {
            Err(error) => {
                done = true;
                return Some(Err(error));
            }
            Ok(0) => return None,
            Ok(_) => {}
        }
        number += 1;
        let unterminated = bytes.last() != Some(&b'\n');
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = String::from_utf8(bytes).map_err(|e| {
            format!(
                "not valid UTF-8 (byte {} of the line)",
                e.utf8_error().valid_up_to() + 1
            )
        });
        return Some(Ok(Line {
            number,
            text,
            unterminated,
        }));
    })
}

/// Appends `line` (one JSON document, without a newline) and a newline to
/// `file`, first ending a last line that has no newline. `file` must be open
/// for reading and appending. One `write_all`, so concurrent appenders with
/// `O_APPEND` do not interleave within the record.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
///
/// let mut file = tempfile::tempfile().unwrap();
/// file.write_all(b"{\"run\": 1}\n{\"torn").unwrap();
/// toolforge_core::jsonl::append_line(&mut file, r#"{"run": 2}"#).unwrap();
/// let mut text = String::new();
/// file.seek(SeekFrom::Start(0)).unwrap();
/// file.read_to_string(&mut text).unwrap();
/// assert_eq!(text.lines().last(), Some(r#"{"run": 2}"#));
/// ```
pub fn append_line(file: &mut File, line: &str) -> io::Result<()> {
    end_torn_line(file)?;
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// Ends a last line that lacks its newline (a torn write) so the next record
/// starts on a line of its own; says whether there was one. `file` must be open
/// for reading and appending.
pub fn end_torn_line(file: &mut File) -> io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::End(-1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(false);
    }
    file.write_all(b"\n")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn open(path: &std::path::Path) -> File {
        OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .unwrap()
    }

    #[test]
    fn a_torn_last_line_is_ended_before_the_next_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.jsonl");
        let mut file = open(&path);
        append_line(&mut file, "{\"a\":1}").unwrap();
        file.write_all(b"{\"torn\":").unwrap();
        append_line(&mut file, "{\"b\":2}").unwrap();
        append_line(&mut file, "{\"c\":3}").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"torn\":\n{\"b\":2}\n{\"c\":3}\n");
        let mut empty = open(&dir.path().join("new.jsonl"));
        append_line(&mut empty, "{}").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("new.jsonl")).unwrap(),
            "{}\n"
        );
    }
}
