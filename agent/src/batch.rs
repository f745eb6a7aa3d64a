//! Batch routing (`toolforge route`): JSON Lines in, one decision line out per input
//! line, in order. Streams with bounded memory: lines longer than the limit are
//! skipped to their end without being held, and answered with an error line.

use std::io::{self, BufRead, Write};
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use toolforge_core::{RouteContext, RouteDecision, Router, ToolCall};

/// Longest input line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Counts of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Input lines read.
    pub lines: u64,
    /// Lines answered with a decision.
    pub routed: u64,
    /// Lines answered with an error line (bad input or a failed router).
    pub errors: u64,
}

enum RawLine {
    Bytes(Vec<u8>),
    TooLong(usize),
}

/// Reads one line (without its `\n`/`\r\n`), keeping at most `limit` bytes in memory.
fn read_line_bounded(reader: &mut impl BufRead, limit: usize) -> io::Result<Option<RawLine>> {
    let mut kept = Vec::new();
    let mut total = 0usize;
    let mut saw_any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        saw_any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..at], Some(at + 1)),
            None => (chunk, None),
        };
        total += part.len();
        if kept.len() <= limit {
            let room = (limit + 1).saturating_sub(kept.len());
            kept.extend_from_slice(&part[..part.len().min(room)]);
        }
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            break;
        }
    }
    if !saw_any {
        return Ok(None);
    }
    if kept.last() == Some(&b'\r') && total <= limit + 1 {
        kept.pop();
        total -= 1;
    }
    if total > limit {
        return Ok(Some(RawLine::TooLong(total)));
    }
    Ok(Some(RawLine::Bytes(kept)))
}

/// A parsed input line: its id (given, or the 1-based line number) and query.
fn parse_line(raw: RawLine, line_no: u64) -> (Value, Result<String, String>) {
    let fallback_id = Value::from(line_no);
    let bytes = match raw {
        RawLine::TooLong(n) => {
            return (
                fallback_id,
                Err(format!("line is {n} bytes; the limit is {MAX_LINE_BYTES}")),
            )
        }
        RawLine::Bytes(bytes) => bytes,
    };
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            return (
                fallback_id,
                Err(format!(
                    "line is not valid UTF-8 (byte {})",
                    e.utf8_error().valid_up_to()
                )),
            )
        }
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return (fallback_id, Err("empty line".into()));
    }
    if !(trimmed.starts_with('{') || trimmed.starts_with('[') || trimmed.starts_with('"')) {
        return (fallback_id, Ok(trimmed.to_string()));
    }
    match serde_json::from_str::<Value>(trimmed) {
        Err(e) => (fallback_id, Err(format!("invalid JSON: {e}"))),
        Ok(Value::String(query)) => (fallback_id, non_empty(query)),
        Ok(Value::Object(mut object)) => {
            let id = object.remove("id").unwrap_or(fallback_id);
            let query = match object.remove("query") {
                Some(Value::String(query)) => non_empty(query),
                Some(_) => Err("`query` must be a string".into()),
                None => Err("missing `query`".into()),
            };
            (id, query)
        }
        Ok(_) => (
            fallback_id,
            Err("expected an object {\"id\": ..., \"query\": \"...\"} or a line of text".into()),
        ),
    }
}

fn non_empty(query: String) -> Result<String, String> {
    if query.trim().is_empty() {
        Err("`query` is empty".into())
    } else {
        Ok(query)
    }
}

#[derive(Serialize)]
struct DecisionLine<'a> {
    id: &'a Value,
    query: &'a str,
    calls: &'a [ToolCall],
    router: &'a str,
    confidence: Option<f64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    unsupported: bool,
    latency_us: u64,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    id: &'a Value,
    error: &'a str,
}

/// Routes every line of `input`, writing one line to `output` per input line.
pub async fn route_stream(
    router: &dyn Router,
    context: &RouteContext,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> io::Result<BatchStats> {
    let mut stats = BatchStats::default();
    while let Some(raw) = read_line_bounded(input, MAX_LINE_BYTES)? {
        stats.lines += 1;
        let (id, query) = parse_line(raw, stats.lines);
        let line = match query {
            Err(reason) => {
                stats.errors += 1;
                serde_json::to_string(&ErrorLine {
                    id: &id,
                    error: &reason,
                })?
            }
            Ok(query) => {
                let start = Instant::now();
                let result = router.route(&query, context).await;
                let latency_us = start.elapsed().as_micros() as u64;
                match result {
                    Ok(decision) => {
                        stats.routed += 1;
                        let decision =
                            decision.unwrap_or_else(|| RouteDecision::direct(router.name(), None));
                        serde_json::to_string(&DecisionLine {
                            id: &id,
                            query: &query,
                            calls: &decision.calls,
                            router: &decision.router,
                            confidence: decision.confidence,
                            unsupported: decision.unsupported,
                            latency_us,
                        })?
                    }
                    Err(error) => {
                        stats.errors += 1;
                        serde_json::to_string(&ErrorLine {
                            id: &id,
                            error: &error.to_string(),
                        })?
                    }
                }
            }
        };
        output.write_all(line.as_bytes())?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn lines(input: &[u8]) -> Vec<(Value, Result<String, String>)> {
        let mut reader = Cursor::new(input.to_vec());
        let mut out = Vec::new();
        let mut n = 0;
        while let Some(raw) = read_line_bounded(&mut reader, MAX_LINE_BYTES).unwrap() {
            n += 1;
            out.push(parse_line(raw, n));
        }
        out
    }

    #[test]
    fn parses_objects_bare_text_and_reports_bad_lines() {
        let mut input =
            b"{\"id\": \"a\", \"query\": \"2+2\"}\r\nhello there\n\n{\"id\": 7}\n{oops\n\xff\xfe\n"
                .to_vec();
        input.extend(vec![b'x'; MAX_LINE_BYTES + 10]);
        input.extend(b"\nlast");
        let parsed = lines(&input);
        assert_eq!(parsed.len(), 8);
        assert_eq!(parsed[0], (Value::from("a"), Ok("2+2".into())));
        assert_eq!(parsed[1], (Value::from(2), Ok("hello there".into())));
        assert_eq!(parsed[2].1, Err("empty line".into()));
        assert_eq!(parsed[3], (Value::from(7), Err("missing `query`".into())));
        assert!(parsed[4]
            .1
            .as_ref()
            .unwrap_err()
            .starts_with("invalid JSON"));
        assert!(parsed[5].1.as_ref().unwrap_err().contains("UTF-8"));
        assert!(parsed[6].1.as_ref().unwrap_err().contains("limit"));
        assert_eq!(parsed[7], (Value::from(8), Ok("last".into())));
    }
}
