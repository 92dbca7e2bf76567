//! A redb database file and its path: the embedded store and the command log each have one,
//! and every error they report names it (docs/storage.md#damaged-files).
//!
//! Opening checks the file: a path that is not a regular file, an empty file, or a missing
//! file in a data directory that already holds a world is refused (never a new world over an
//! old one, silently); an existing file's every page is checked against its checksum. A file
//! whose last commit does not check out is refused when that commit was made in two phases
//! (as the last one before a clean stop is), and otherwise rolled back to the commit before
//! it, as after a power loss in the middle of a commit, with a warning naming the file.
//! redb may panic on pages it does not expect; such a panic, at open or later, is caught
//! and reported as an error naming the file, and the file is then [dead](FileHealth::dead):
//! every later use fails at once, and readiness reports it.

use std::{
    any::Any,
    fs,
    io::ErrorKind,
    panic::{AssertUnwindSafe, catch_unwind},
    path::{Path, PathBuf},
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use redb::{Builder, Database};
use tracing::{error, warn};

use crate::StoreError;

/// Whether a file still works: dead once redb panicked on it.
#[derive(Debug)]
pub struct FileHealth {
    path: PathBuf,
    dead: OnceLock<String>,
}

impl FileHealth {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file can no longer be used, if it cannot.
    pub fn dead(&self) -> Option<&str> {
        self.dead.get().map(String::as_str)
    }
}

/// A redb database file and its path, for errors that name it.
pub struct RedbFile {
    pub(crate) db: Database,
    pub(crate) path: PathBuf,
    health: Arc<FileHealth>,
}

/// What a caught panic said.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// How far redb's repair has got when it found the last commit damaged: it calls back with
/// this progress just before rolling back to the commit before (redb 4.5).
const ROLLBACK_STAGE: f64 = 0.3;

impl RedbFile {
    /// Opens the file after checking it; creates it only when missing and `may_create` (the
    /// data directory held no world).
    pub(crate) fn open(path: &Path, may_create: bool) -> Result<RedbFile, StoreError> {
        let refuse = |message: String| StoreError::Open {
            path: path.to_owned(),
            message,
        };
        let exists = match fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(refuse("it is not a regular file".into()));
            }
            Ok(meta) if meta.len() == 0 => {
                return Err(refuse(
                    "it is empty (0 bytes), not a store: refusing to start a new world over it (restore it from a backup, or move the data directory away to start afresh)".into(),
                ));
            }
            Ok(_) => true,
            Err(e) if e.kind() == ErrorKind::NotFound && may_create => false,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(refuse(
                    "it is missing from a data directory that holds a world: refusing to start a new world there (restore it from a backup, or move the data directory away to start afresh)".into(),
                ));
            }
            Err(e) => return Err(refuse(e.to_string())),
        };
        let rolled_back = Arc::new(AtomicBool::new(false));
        let mut builder = Builder::new();
        builder.set_check_integrity_on_open(true);
        let seen = rolled_back.clone();
        builder.set_repair_callback(move |session| {
            if (session.progress() - ROLLBACK_STAGE).abs() < 1e-9 {
                seen.store(true, Ordering::Relaxed);
            }
        });
        let opened = catch_unwind(AssertUnwindSafe(|| {
            if exists {
                builder.open(path)
            } else {
                builder.create(path)
            }
        }));
        let db = match opened {
            Ok(Ok(db)) => db,
            Ok(Err(e)) => {
                return Err(refuse(format!(
                    "it is damaged or not a store: {e} (restore it from a backup)"
                )));
            }
            Err(panic) => {
                return Err(refuse(format!(
                    "it is damaged: reading it failed ({})",
                    panic_message(&*panic)
                )));
            }
        };
        if rolled_back.load(Ordering::Relaxed) {
            warn!(
                file = %path.display(),
                "the file's last commit did not match its checksums and was rolled back to the one before it (a write torn by a power loss or a crash of the machine, or damage): what that commit held is gone"
            );
        }
        Ok(RedbFile {
            db,
            path: path.to_owned(),
            health: Arc::new(FileHealth {
                path: path.to_owned(),
                dead: OnceLock::new(),
            }),
        })
    }

    /// Whether the file still works, shared with readiness.
    pub fn health(&self) -> Arc<FileHealth> {
        self.health.clone()
    }

    /// Runs `work` on the file; a panic inside it is an error naming the file, which is then
    /// dead: later work fails at once.
    pub(crate) fn guarded<T>(
        &self,
        work: impl FnOnce() -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(why) = self.health.dead() {
            return Err(self.dead_error(why));
        }
        match catch_unwind(AssertUnwindSafe(work)) {
            Ok(done) => done,
            Err(panic) => {
                let why = format!("reading or writing it failed ({})", panic_message(&*panic));
                error!(file = %self.path.display(), error = %why, "a store file failed; it is no longer used (restart to check it)");
                let _ = self.health.dead.set(why.clone());
                Err(self.dead_error(&why))
            }
        }
    }

    fn dead_error(&self, why: &str) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            message: format!("the file is no longer used: {why}"),
        }
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

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use redb::TableDefinition;

    use super::*;

    const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("t");

    fn written(path: &Path) {
        let file = RedbFile::open(path, true).unwrap();
        let txn = file.db.begin_write().unwrap();
        {
            let mut table = txn.open_table(TABLE).unwrap();
            for i in 0..2_000u64 {
                table.insert(i, &[i as u8; 200][..]).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    #[test]
    fn files_that_are_not_stores_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        fs::write(&path, b"").unwrap();
        let empty = RedbFile::open(&path, true).err().unwrap().to_string();
        assert!(
            empty.contains("x.redb") && empty.contains("empty"),
            "{empty}"
        );
        fs::remove_file(&path).unwrap();
        let missing = RedbFile::open(&path, false).err().unwrap().to_string();
        assert!(missing.contains("missing"), "{missing}");
        fs::create_dir(&path).unwrap();
        let dir_error = RedbFile::open(&path, true).err().unwrap().to_string();
        assert!(dir_error.contains("not a regular file"), "{dir_error}");
        fs::remove_dir(&path).unwrap();
        fs::write(&path, vec![7u8; 10_000]).unwrap();
        let garbage = RedbFile::open(&path, true).err().unwrap().to_string();
        assert!(garbage.contains("x.redb"), "{garbage}");
    }

    #[test]
    fn damaged_pages_are_found_at_open_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.redb");
        written(&path);
        let bytes = fs::read(&path).unwrap();
        // A page that holds committed values: one of them, found in the file.
        let value = bytes
            .windows(200)
            .position(|w| w.iter().all(|&b| b == 77))
            .expect("a stored value");
        for offset in [4096, value + 10] {
            let copy = dir.path().join(format!("at-{offset}.redb"));
            fs::copy(&path, &copy).unwrap();
            let mut file = fs::OpenOptions::new().write(true).open(&copy).unwrap();
            file.seek(SeekFrom::Start(offset as u64)).unwrap();
            file.write_all(&[0xA5; 64]).unwrap();
            drop(file);
            let error = RedbFile::open(&copy, false).err().expect("refused");
            assert!(
                error.to_string().contains(&format!("at-{offset}.redb")),
                "{error}"
            );
        }
    }

    #[test]
    fn a_panic_on_the_file_makes_it_dead() {
        let dir = tempfile::tempdir().unwrap();
        let file = RedbFile::open(&dir.path().join("x.redb"), true).unwrap();
        let failed = file.guarded(|| -> Result<(), StoreError> { panic!("bad page") });
        assert!(failed.unwrap_err().to_string().contains("bad page"));
        assert!(file.health().dead().is_some());
        let later = file.guarded(|| Ok(()));
        assert!(later.is_err(), "dead files fail at once");
    }
}
