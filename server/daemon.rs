//! `tianxia daemon` (docs/operations.md#daemon): the single writer of one world in Redis
//! mode. It runs the world's writer (`writer.rs`: the lease, the fence, recovery, the
//! World, the command stream, checkpoints to MongoDB, L2 read models and Pub/Sub) and serves
//! no players: its HTTP port answers `/health`, `/ready` and `/metrics` only. Players reach
//! the world through `api` processes. Configuration has made sure Redis and MongoDB are set.

use crate::{Failure, config::ServeConfig, writer};

/// Runs `daemon` until a signal, or until it may no longer write the world.
pub fn run(config: ServeConfig) -> Result<(), Failure> {
    writer::run(config, net::ops_router)
}
