//! A redb database file and its path: the embedded store and the command log each have one,
//! and every error they report names it.

use std::path::{Path, PathBuf};

use redb::Database;

use crate::StoreError;

/// A redb database file and its path, for errors that name it.
pub struct RedbFile {
    pub(crate) db: Database,
    pub(crate) path: PathBuf,
}

impl RedbFile {
    /// Opens (or creates) the file; a file that is not a redb database, or is damaged, is
    /// an error naming it.
    pub(crate) fn open(path: &Path) -> Result<RedbFile, StoreError> {
        let db = Database::create(path).map_err(|e| StoreError::Open {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        Ok(RedbFile {
            db,
            path: path.to_owned(),
        })
    }

    pub(crate) fn io(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            message: error.to_string(),
        }
    }

    pub(crate) fn corrupt(
        &self,
        what: impl Into<String>,
        error: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what: what.into(),
            message: error.to_string(),
        }
    }
}
