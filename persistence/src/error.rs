//! Why a store call failed: one error for both stores and the command log, naming the file
//! (or MongoDB) and what could not be read or written.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the embedded store {path}: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the embedded store {path} failed: {message}")]
    Io { path: PathBuf, message: String },
    #[error("MongoDB: {0}")]
    Mongo(String),
    /// A newer writer took the world (docs/redis.md#fencing): this one must stop.
    #[error("{0}")]
    Fenced(String),
    #[error("the embedded store {path} holds a record that cannot be read ({what}): {message}")]
    Corrupt {
        path: PathBuf,
        what: String,
        message: String,
    },
}

impl StoreError {
    /// Whether trying again may succeed: a server (MongoDB) that did not answer. A store file
    /// that cannot be opened, read or written (the storage engine's errors, a dead file) and a
    /// newer writer stay as they are.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Mongo(_))
    }
}
