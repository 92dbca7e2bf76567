//! Durable storage of tianxia (SPEC 8): the data directory, held by one process at a time;
//! the embedded store in it (accounts so far); and the MongoDB connection.
//!
//! This crate never runs inside the tick: the World hands it plain data through channels.

pub mod data_dir;
pub mod embedded;
pub mod mongo;

pub use data_dir::{DataDir, DataDirError};
pub use embedded::{EmbeddedStore, StoreError, StoredPlayer};
pub use mongo::{MongoError, MongoProbe};
