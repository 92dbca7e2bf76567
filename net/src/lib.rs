//! The network side of tianxia: the axum HTTP API over the read models the World publishes,
//! readiness of the configured backends and of persistence, and (later) the Redis bridges.
//!
//! Nothing here changes game state: commands go to the World over the command bus. Handlers read the last published
//! [`components::read_model::ReadModels`] snapshot with one atomic load and never wait for
//! the World.

pub mod accounts;
pub mod bus;
pub mod durable;
pub mod error;
pub mod extract;
pub mod health;
pub mod hot;
pub mod l2;
pub mod lease;
pub mod limits;
pub mod mirror;
pub mod play;
pub mod presence;
pub mod read;
pub mod redis_probe;
pub mod router;
pub mod streams;

pub use accounts::{AccountStore, Accounts, MemoryAccounts};
pub use bus::CommandBus;
pub use durable::{
    Appended, DurableFuture, EventLog, Journal, JournalError, JournalFuture, PersistReport,
    PersistStatus,
};
pub use error::{ApiError, ErrorCode};
pub use health::{Backends, Probe, ProbeFuture};
pub use limits::RateLimits;
pub use router::{AppState, ops_router, router};
