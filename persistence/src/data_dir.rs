//! The data directory (`--data-dir`): created if missing and locked exclusively for the life
//! of the process, so two servers never write one world. The lock is an OS file lock on
//! `LOCK`, released by the OS if the process dies.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::Write,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open lock file {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another tianxia process{holder}")]
    Locked { path: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A data directory this process holds exclusively until it is dropped.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the lock; closing it releases the lock.
    _lock: File,
}

impl DataDir {
    pub const LOCK_FILE: &'static str = "LOCK";

    /// Creates `path` if needed and takes its lock, failing at once if another process holds it.
    pub fn lock(path: &Path) -> Result<DataDir, DataDirError> {
        fs::create_dir_all(path).map_err(|source| DataDirError::Create {
            path: path.to_owned(),
            source,
        })?;
        let lock_path = path.join(Self::LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|source| DataDirError::Open {
                path: lock_path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&lock_path)
                    .ok()
                    .map(|pid| pid.trim().to_string())
                    .filter(|pid| !pid.is_empty())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(DataDirError::Locked {
                    path: path.to_owned(),
                    holder,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(DataDirError::Lock {
                    path: lock_path,
                    source,
                });
            }
        }
        // Best effort: the pid only helps an operator find the holder.
        let _ = file
            .set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()));
        Ok(DataDir {
            path: path.to_owned(),
            _lock: file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("world");
        let first = DataDir::lock(&path).unwrap();
        let second = DataDir::lock(&path).unwrap_err();
        assert!(matches!(second, DataDirError::Locked { .. }), "{second}");
        assert!(
            second
                .to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{second}"
        );
        drop(first);
        DataDir::lock(&path).unwrap();
    }
}
