//! Durable storage of tianxia (docs/storage.md): the data directory, held by one process at
//! a time; the embedded store in it (accounts, checkpoints, snapshots, events) and its command
//! log with the journal that fills it; MongoDB; the [`WorldStore`] trait both stores
//! implement; the bounded backlog of epochs waiting for a store; and the hot snapshot's bytes.
//!
//! This crate never runs inside the tick: the World hands it plain data through channels.
//! It knows nothing of HTTP or Redis.

pub mod accounts;
pub mod backlog;
pub mod command_log;
pub mod data_dir;
pub mod embedded;
pub mod error;
pub mod hot;
pub mod mongo;
mod redb_file;
pub mod store;
mod tokens;

pub use accounts::{PlayerTables, StoreAccounts};
pub use backlog::Backlog;
pub use command_log::{CommandLog, EmbeddedJournal, JournalThread};
pub use data_dir::{DataDir, DataDirError};
pub use embedded::{Embedded, EmbeddedAccounts, EmbeddedStore};
pub use error::StoreError;
pub use mongo::{MongoAccounts, MongoError, MongoProbe, MongoStore};
pub use redb_file::FileHealth;
pub use store::{KEEP_EVENTS, StoreFuture, WorldEvents, WorldStore};
