//! What a process needs to talk to its backends: the tokio runtime beside the World, a Redis
//! link (one client, one connection for ordinary requests, more connections on demand), and
//! how long MongoDB may take. Shared by every role and the benchmarks; connecting is lazy, so
//! nothing here waits for a server.

use std::time::Duration;

use anyhow::Context;
use net::redis::REDIS_TIMEOUT;
use redis::aio::ConnectionManager;
use tokio::runtime::Runtime;

use crate::Failure;

/// How long MongoDB may take to answer before an operation counts as failed.
pub(crate) const MONGO_TIMEOUT: Duration = Duration::from_secs(5);

/// The tokio runtime beside the World: HTTP, Redis, MongoDB and the store's futures.
pub(crate) fn runtime(workers: usize) -> Result<Runtime, Failure> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tianxia-io")
        .on_thread_start(|| {
            static WARNED: std::sync::Once = std::sync::Once::new();
            if !crate::priority::lower_this_thread(crate::priority::IO_NICE) {
                WARNED.call_once(|| {
                    tracing::warn!(
                        "cannot lower the priority of the I/O threads; they compete with the World's for the CPU"
                    )
                });
            }
        })
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?)
}

/// Redis: its client, and one connection for ordinary requests (the lease, tokens, the
/// stream's requests, L2); blocking reads and hot snapshots get connections of their own.
pub(crate) struct RedisLink {
    pub(crate) client: redis::Client,
    pub(crate) redis: ConnectionManager,
}

impl RedisLink {
    /// A link to `url` (a usage error if it is not a Redis URL). Must be called within the
    /// runtime.
    pub(crate) fn open(url: &str) -> Result<RedisLink, Failure> {
        let client = redis::Client::open(url)
            .map_err(|e| Failure::Usage(format!("REDIS_URL is not a Redis URL: {e}")))?;
        let link = RedisLink {
            redis: connection(&client, REDIS_TIMEOUT)?,
            client,
        };
        Ok(link)
    }

    /// Another connection, whose requests may take up to `timeout`. Must be called within
    /// the runtime.
    pub(crate) fn connection(&self, timeout: Duration) -> Result<ConnectionManager, Failure> {
        connection(&self.client, timeout)
    }
}

fn connection(client: &redis::Client, timeout: Duration) -> Result<ConnectionManager, Failure> {
    Ok(net::redis::connect(client, timeout).context("cannot set up the Redis connection")?)
}
