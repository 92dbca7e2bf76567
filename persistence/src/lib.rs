//! Durable storage of tianxia (SPEC 8): the data directory, held by one process at a time;
//! the embedded store in it (accounts, checkpoints, snapshots, events) and its command log;
//! MongoDB; and the [`WorldStore`] trait both stores implement.
//!
//! This crate never runs inside the tick: the World hands it plain data through channels.

pub mod backlog;
pub mod command_log;
pub mod data_dir;
pub mod embedded;
pub mod hot;
pub mod mongo;
pub mod store;
pub mod tokens;

pub use backlog::Backlog;
pub use command_log::CommandLog;
pub use data_dir::{DataDir, DataDirError};
pub use embedded::{EmbeddedStore, StoreError, StoredPlayer};
pub use mongo::{MongoError, MongoProbe, MongoStore};
pub use store::{Embedded, KEEP_EVENTS, StoreFuture, WorldStore};
