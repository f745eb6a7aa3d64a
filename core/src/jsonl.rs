//! Appending to JSON Lines files that other writers (or a crash) may have left
//! with a torn last line: a record always starts on a line of its own, so a
//! torn line costs only itself, never the record written after it.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

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
    let torn = if file.metadata()?.len() == 0 {
        false
    } else {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1))?;
        file.read_exact(&mut last)?;
        last[0] != b'\n'
    };
    let mut text = String::with_capacity(line.len() + 2);
    if torn {
        text.push('\n');
    }
    text.push_str(line);
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.flush()
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
