//! Accepting HTTP connections (docs/operations.md#connections): at most `max` open at once
//! (beyond that a new connection is closed as soon as it is accepted), a deadline for reading
//! each request's headers that also closes a connection idle between requests, and a drain at
//! shutdown that lets requests in flight finish.
//!
//! axum's own `serve` sets no timer, so neither deadline would apply there; this is the same
//! loop over hyper with both.

use components::admin::OpenCount;
use std::{
    net::SocketAddr,
    pin::pin,
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo};
use hyper::{body::Incoming, server::conn::http1};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, oneshot, watch},
};
use tower::ServiceExt;
use tracing::warn;

/// How long a client has to send a request's headers, counted from the connection's start or
/// the end of its previous response: a connection that sends nothing for this long is closed.
pub(crate) const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// The kernel's send buffer of each connection. Left to itself Linux grows it up to
/// `tcp_wmem`'s maximum (4 MiB by default) for a client that does not read, which across
/// thousands of WebSocket clients is gigabytes outside any limit of this process; a client
/// that falls this far behind meets the WebSocket slow-client policy instead.
pub(crate) const SEND_BUFFER: usize = 128 * 1024;
/// The fewest warnings about refused connections or accept errors: one per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// File descriptors kept for everything but client connections (stores, Redis, MongoDB,
/// logs).
const RESERVED_FILES: u64 = 256;

/// Raises this process's soft limit of open files to its hard limit (the usual soft limit,
/// 1,024, would let a thousand idle sockets lock everyone out), and returns how many client
/// connections fit under it, at most `wanted`.
pub fn raise_file_limit(wanted: usize) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    };
    let fits = usize::try_from(limit.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
    if fits < wanted {
        warn!(
            open_file_limit = limit,
            max_connections = fits,
            "the open-file limit allows fewer connections than configured"
        );
    }
    wanted.min(fits)
}

/// Logs a warning at most once per [`WARN_EVERY`].
struct Throttled(Option<Instant>);

impl Throttled {
    fn due(&mut self) -> bool {
        let due = self.0.is_none_or(|at| at.elapsed() >= WARN_EVERY);
        if due {
            self.0 = Some(Instant::now());
        }
        due
    }
}

/// Serves `app` on `listener` until `stop`, then lets open connections finish their request
/// in flight for up to `drain`. The listener is shared: a standby's placeholder serves it
/// before the real routes do.
pub(crate) async fn serve(
    listener: Arc<TcpListener>,
    app: Router,
    max: usize,
    stop: oneshot::Receiver<()>,
    drain: Duration,
    count: Arc<OpenCount>,
) {
    let max = max.clamp(1, u32::MAX as usize);
    count.set_max(max);
    let open = Arc::new(Semaphore::new(max));
    let (closing, closing_rx) = watch::channel(false);
    let mut stop = pin!(stop);
    let mut refused = Throttled(None);
    let mut failed = Throttled(None);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, mostly: wait for some to close.
                    if failed.due() {
                        warn!(error = %e, "cannot accept a connection");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            if refused.due() {
                warn!(limit = max, %remote, "connection limit reached; closing new connections");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        ));
        let mut closing = closing_rx.clone();
        let counted = count.opened();
        tokio::spawn(async move {
            let _permit = permit;
            let _counted = counted;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let mut connection = pin!(
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
            );
            tokio::select! {
                _ = connection.as_mut() => return,
                _ = closing.wait_for(|closing| *closing) => {}
            }
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    drop(listener);
    let _ = closing.send(true);
    // Every connection holds a permit until it ends.
    let _ = tokio::time::timeout(drain, open.acquire_many(max as u32)).await;
}
