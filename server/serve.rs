//! `tianxia serve` (docs/operations.md#serve): everything in one process. The world's
//! writer (`writer.rs`: the World on a thread of its own, its store, its command log or
//! stream) and the whole HTTP API beside it, sharing no lock: the World swaps in new read
//! models and takes commands from a channel between passes. With Redis it takes the lease and
//! fences as a daemon does.

use crate::{Failure, config::ServeConfig, writer};

/// Runs `serve` until a signal, or until the World's thread ends.
pub fn run(config: ServeConfig) -> Result<(), Failure> {
    writer::run(config, net::router)
}
