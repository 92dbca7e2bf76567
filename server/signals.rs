//! Stopping on a signal (docs/operations.md#graceful-shutdown): SIGTERM, SIGINT and SIGHUP
//! (a closed terminal) each stop the process gracefully, with a final checkpoint. The handlers
//! are installed
//! before anything starts, so a signal that arrives early is not lost, and every wait of
//! start-up on a backend that may not answer yet ([`retrying`]) ends when one comes.

use std::time::Duration;

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tracing::{error, info};

pub(crate) struct Signals {
    terminate: Signal,
    interrupt: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs the handlers now. Must be called within the runtime.
    pub(crate) fn install() -> anyhow::Result<Signals> {
        Ok(Signals {
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            hangup: signal(SignalKind::hangup()).context("cannot handle SIGHUP")?,
        })
    }

    pub(crate) async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.hangup.recv() => "SIGHUP",
        }
    }
}

/// Runs `attempt` until it succeeds, retrying with backoff (each failure logged as "cannot
/// {what} yet"); `None` if a signal came first. What start-up needs from a backend that may
/// not be reachable yet goes through here.
pub(crate) async fn retrying<T, E: std::fmt::Display>(
    what: &str,
    signals: &mut Signals,
    mut attempt: impl AsyncFnMut() -> Result<T, E>,
) -> Option<T> {
    let mut backoff = Duration::from_millis(200);
    loop {
        // An unreachable server fails within its client's timeout.
        tokio::select! {
            outcome = attempt() => match outcome {
                Ok(done) => return Some(done),
                Err(e) => error!(error = %e, "cannot {what} yet; retrying"),
            },
            name = signals.recv() => {
                info!(signal = name, "shutting down");
                return None;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            name = signals.recv() => {
                info!(signal = name, "shutting down");
                return None;
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
