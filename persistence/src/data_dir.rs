//! The data directory (`--data-dir`): created if missing and locked exclusively for the life
//! of the process, so two servers never write one world. The lock is an OS file lock on
//! `LOCK`, released by the OS if the process dies.
//!
//! `LOCK` holds the holder's pid while it runs and `stopped` once it stopped cleanly, so the
//! next start can say that the previous run did not stop cleanly. A directory that holds
//! anything but `LOCK` (and a file system's `lost+found`) holds a world: its stores must be
//! there (docs/storage.md#damaged-files).

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io::{Seek, Write},
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
    lock: File,
    /// Whether the directory held nothing but a lock file before.
    new: bool,
    /// The pid of a previous holder that did not stop cleanly.
    unclean: Option<String>,
}

/// What `LOCK` holds once its holder stopped cleanly.
const STOPPED: &str = "stopped";

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
        // Looked at under the lock: what another holder wrote is there by now. A directory that
        // cannot be listed is taken to hold a world (nothing is created over it).
        let new = fs::read_dir(path).is_ok_and(|entries| {
            entries.filter_map(Result::ok).all(|e| {
                let name = e.file_name();
                name == Self::LOCK_FILE || name == "lost+found"
            })
        });
        let previous = fs::read_to_string(&lock_path).unwrap_or_default();
        let previous = previous.trim();
        let unclean = (!previous.is_empty() && previous != STOPPED).then(|| previous.to_string());
        // Best effort: the pid only helps an operator find the holder.
        let _ = file
            .set_len(0)
            .and_then(|()| write!(file, "{}", std::process::id()));
        Ok(DataDir {
            path: path.to_owned(),
            lock: file,
            new,
            unclean,
        })
    }

    /// Whether the directory held no world before this process locked it.
    pub fn is_new(&self) -> bool {
        self.new
    }

    /// The pid of the previous holder, if it did not stop cleanly (killed, or crashed).
    pub fn previous_run_unclean(&self) -> Option<&str> {
        self.unclean.as_deref()
    }

    /// Unlocks the directory, noting that this run stopped cleanly.
    pub fn release_cleanly(mut self) {
        let _ = self
            .lock
            .set_len(0)
            .and_then(|()| self.lock.rewind())
            .and_then(|()| self.lock.write_all(STOPPED.as_bytes()))
            .and_then(|()| self.lock.sync_all());
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
        let second = DataDir::lock(&path).unwrap();
        assert!(second.is_new(), "a lock file alone is no world");
        assert_eq!(
            second.previous_run_unclean(),
            Some(std::process::id().to_string().as_str()),
            "the first did not stop cleanly"
        );
        second.release_cleanly();
        let third = DataDir::lock(&path).unwrap();
        assert_eq!(third.previous_run_unclean(), None);
    }

    #[test]
    fn a_directory_with_files_holds_a_world() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DataDir::lock(dir.path()).unwrap().is_new());
        // A fresh file system's mount point is no world.
        fs::create_dir(dir.path().join("lost+found")).unwrap();
        assert!(DataDir::lock(dir.path()).unwrap().is_new());
        fs::write(dir.path().join("tianxia.redb"), b"x").unwrap();
        assert!(!DataDir::lock(dir.path()).unwrap().is_new());
    }
}
