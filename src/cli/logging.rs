//! Trace output on stderr for the command line: an env filter (`RUST_LOG`, else
//! the `-v` level) and a writer that removes the configured API keys from every
//! line, so `-v` output cannot show a key an upstream echoed back.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;

use toolforge_agent::Redactor;
use tracing_subscriber::fmt::MakeWriter;

/// Installs the subscriber: warnings and errors by default, `-v` info, `-vv` debug.
pub fn init(verbose: u8, redactor: Redactor) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(RedactedStderr(Arc::new(redactor)))
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}

/// Makes one [`RedactedLine`] per event.
struct RedactedStderr(Arc<Redactor>);

impl<'a> MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedLine {
            redactor: Arc::clone(&self.0),
            buffer: Vec::new(),
        }
    }
}

/// Collects one formatted event and writes it, redacted, to stderr when dropped.
struct RedactedLine {
    redactor: Arc<Redactor>,
    buffer: Vec<u8>,
}

impl Write for RedactedLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let text = self
            .redactor
            .redact_text(&String::from_utf8_lossy(&self.buffer));
        let _ = io::stderr().lock().write_all(text.as_bytes());
    }
}
