//! Logging through `tracing`: human-readable or JSON lines on stderr, filtered by `RUST_LOG`
//! (by default `info`; the benchmarks leave out the access log of the servers they run),
//! coloured only on a terminal.
//!
//! Lines are handed to a writer thread through a bounded queue, so no thread that logs (the
//! World's in particular) ever waits on a slow stderr; if the queue is full, lines are
//! dropped rather than block. A line longer than [`LINE_MAX`] is cut there (whatever it
//! quotes from outside stays bounded).

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;

/// Installs the global subscriber, filtered by `RUST_LOG` or else by `default` (an
/// `EnvFilter` directive). Keep the guard alive until exit: dropping it flushes.
pub fn init(format: LogFormat, default: &str) -> WorkerGuard {
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("tianxia-log")
        .finish(Clipped {
            out: std::io::stderr(),
            json: format == LogFormat::Json,
        });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// Bytes of one log line at most.
pub const LINE_MAX: usize = 16 * 1024;

/// Writes each line (one `write` per line, as the logging worker does) cut to [`LINE_MAX`]:
/// as text, the line's start and how much was cut; as JSON, a line of its own that is JSON
/// too, with the cut line's start as a string.
pub struct Clipped<W> {
    pub out: W,
    pub json: bool,
}

impl<W: std::io::Write> std::io::Write for Clipped<W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if line.len() <= LINE_MAX {
            self.out.write_all(line)?;
            return Ok(line.len());
        }
        let mut end = LINE_MAX;
        // Not inside a UTF-8 sequence.
        while end > 0 && (line[end] & 0xC0) == 0x80 {
            end -= 1;
        }
        if self.json {
            let cut = serde_json::json!({
                "level": "WARN",
                "target": "tianxia::logging",
                "fields": {
                    "message": "a log line was cut",
                    "bytes": line.len(),
                    "start": String::from_utf8_lossy(&line[..end]),
                },
            });
            writeln!(self.out, "{cut}")?;
        } else {
            self.out.write_all(&line[..end])?;
            writeln!(
                self.out,
                "… (log line cut: {} more bytes)",
                line.len() - end
            )?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}
