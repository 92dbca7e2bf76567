//! Durable storage of tianxia (SPEC 8): the data directory the embedded store lives in, held
//! by one process at a time, and the MongoDB connection.
//!
//! This crate never runs inside the tick: the World hands it plain data through channels.

pub mod data_dir;
pub mod mongo;

pub use data_dir::{DataDir, DataDirError};
pub use mongo::{MongoError, MongoProbe};
