//! The embedded command log (docs/storage.md#the-command-log): without Redis, every command is
//! appended here with the next log sequence and synced before its 202. The World applies
//! commands in log order; each checkpoint records the highest sequence applied, and the log is
//! trimmed up to it. After a crash, recovery applies the entries after the checkpoint's
//! sequence, once each.
//!
//! A file of its own, `commands.redb` in the data directory, so that writing a large checkpoint
//! epoch never holds up a command's append.

use std::path::Path;

use components::command::Command;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::{DataDir, StoreError, redb_file::RedbFile};

mod journal;

pub use journal::{EmbeddedJournal, JournalThread};

/// Commands by log sequence: the JSON of the [`Command`].
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("commands");
/// `last_seq` (the stored name): the highest log sequence ever given out, kept when the log
/// is trimmed empty.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `world`: the world whose commands the log holds.
const OWNER: TableDefinition<&str, &str> = TableDefinition::new("owner");

pub struct CommandLog {
    file: RedbFile,
}

impl std::ops::Deref for CommandLog {
    type Target = RedbFile;
    fn deref(&self) -> &RedbFile {
        &self.file
    }
}

impl CommandLog {
    pub const FILE: &'static str = "commands.redb";

    /// Opens (or creates) the log of `world` in a data directory this process holds. A log
    /// still holding another world's commands is refused: they are that world's to apply.
    pub fn open(dir: &DataDir, world: &str) -> Result<CommandLog, StoreError> {
        let log = Self::open_file(&dir.path().join(Self::FILE), dir.is_new())?;
        log.claim(world)?;
        Ok(log)
    }

    fn claim(&self, world: &str) -> Result<(), StoreError> {
        self.file.guarded(|| {
            let txn = self.db.begin_write().map_err(|e| self.io(e))?;
            {
                let mut owner = txn.open_table(OWNER).map_err(|e| self.io(e))?;
                let held = owner
                    .get("world")
                    .map_err(|e| self.io(e))?
                    .map(|v| v.value().to_string());
                if let Some(held) = held
                    && held != world
                {
                    let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
                    if !log.is_empty().map_err(|e| self.io(e))? {
                        return Err(StoreError::Open {
                            path: self.path.clone(),
                            message: format!(
                                "it holds commands of world \"{held}\" that no checkpoint of that world has trimmed yet; start that world on this data directory first, or use another one for \"{world}\""
                            ),
                        });
                    }
                }
                owner.insert("world", world).map_err(|e| self.io(e))?;
            }
            txn.commit().map_err(|e| self.io(e))
        })
    }

    fn open_file(path: &Path, may_create: bool) -> Result<CommandLog, StoreError> {
        let log = CommandLog {
            file: RedbFile::open(path, may_create)?,
        };
        log.file.guarded(|| {
            let txn = log.db.begin_write().map_err(|e| log.io(e))?;
            txn.open_table(LOG).map_err(|e| log.io(e))?;
            txn.open_table(META).map_err(|e| log.io(e))?;
            txn.open_table(OWNER).map_err(|e| log.io(e))?;
            txn.commit().map_err(|e| log.io(e))
        })?;
        Ok(log)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the file still works (readiness reports a dead one).
    pub fn health(&self) -> std::sync::Arc<crate::FileHealth> {
        self.file.health()
    }

    /// The highest sequence given out so far (0 for a new log).
    pub fn last_log_seq(&self) -> Result<u64, StoreError> {
        self.file.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.io(e))?;
            let meta = txn.open_table(META).map_err(|e| self.io(e))?;
            Ok(meta
                .get("last_seq")
                .map_err(|e| self.io(e))?
                .map_or(0, |v| v.value()))
        })
    }

    /// Appends `commands` in order, each with the next log sequence after `max(last given out,
    /// floor)` (and an id derived from it where it has none, through `name`), in one
    /// transaction synced before it returns. Returns them as logged.
    pub fn append(
        &self,
        mut commands: Vec<Command>,
        floor: u64,
        name: impl Fn(&mut Command),
    ) -> Result<Vec<Command>, StoreError> {
        self.file.guarded(|| {
            let txn = self.db.begin_write().map_err(|e| self.io(e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| self.io(e))?;
                let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
                let mut log_seq = meta
                    .get("last_seq")
                    .map_err(|e| self.io(e))?
                    .map_or(0, |v| v.value())
                    .max(floor);
                for command in &mut commands {
                    log_seq += 1;
                    command.log_seq = log_seq;
                    name(command);
                    let json = serde_json::to_vec(command).map_err(|e| self.io(e))?;
                    log.insert(log_seq, json.as_slice())
                        .map_err(|e| self.io(e))?;
                }
                meta.insert("last_seq", log_seq).map_err(|e| self.io(e))?;
            }
            txn.commit().map_err(|e| self.io(e))?;
            Ok(commands)
        })
    }

    /// The logged commands after log sequence `log_seq`, in order.
    pub fn after(&self, log_seq: u64) -> Result<Vec<Command>, StoreError> {
        self.file.guarded(|| {
            let txn = self.db.begin_read().map_err(|e| self.io(e))?;
            let log = txn.open_table(LOG).map_err(|e| self.io(e))?;
            let mut commands = Vec::new();
            for entry in log
                .range(log_seq.saturating_add(1)..)
                .map_err(|e| self.io(e))?
            {
                let (key, value) = entry.map_err(|e| self.io(e))?;
                let command: Command = serde_json::from_slice(value.value())
                    .map_err(|e| self.corrupt(format!("command {}", key.value()), e))?;
                commands.push(command);
            }
            Ok(commands)
        })
    }

    /// Removes the entries up to and including `log_seq` (a checkpoint has applied them).
    pub fn trim(&self, log_seq: u64) -> Result<(), StoreError> {
        self.file.guarded(|| {
            let txn = self.db.begin_write().map_err(|e| self.io(e))?;
            {
                let mut log = txn.open_table(LOG).map_err(|e| self.io(e))?;
                log.retain_in(..=log_seq, |_, _| false)
                    .map_err(|e| self.io(e))?;
            }
            txn.commit().map_err(|e| self.io(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use components::command::{CommandBody, Issuer, NoArgs, server_command_id};

    use super::*;

    fn command(id: Option<&str>) -> Command {
        Command {
            id: id.unwrap_or_default().to_string(),
            issuer: Issuer::Player("p".into()),
            general: Some("g".into()),
            body: CommandBody::Train(NoArgs {}),
            log_seq: 0,
            entry: None,
        }
    }

    fn name(command: &mut Command) {
        if command.id.is_empty() {
            command.id = server_command_id(command.log_seq);
        }
    }

    #[test]
    fn sequences_continue_across_trims_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CommandLog::FILE);
        let log = CommandLog::open_file(&path, true).unwrap();
        let logged = log
            .append(vec![command(Some("a")), command(None)], 0, name)
            .unwrap();
        assert_eq!(logged[0].log_seq, 1);
        assert_eq!(logged[1].id, "srv-2");
        log.trim(2).unwrap();
        assert!(log.after(0).unwrap().is_empty());
        drop(log);
        let log = CommandLog::open_file(&path, true).unwrap();
        assert_eq!(log.last_log_seq().unwrap(), 2);
        let logged = log.append(vec![command(None)], 0, name).unwrap();
        assert_eq!(logged[0].log_seq, 3, "sequences are never reused");
        // A floor above the log (a checkpoint newer than the log) moves sequences past it.
        let logged = log.append(vec![command(None)], 10, name).unwrap();
        assert_eq!(logged[0].log_seq, 11);
        let after: Vec<u64> = log.after(3).unwrap().iter().map(|c| c.log_seq).collect();
        assert_eq!(after, vec![11]);
    }

    #[test]
    fn a_log_holding_another_worlds_commands_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CommandLog::FILE);
        let log = CommandLog::open_file(&path, true).unwrap();
        log.claim("east").unwrap();
        log.append(vec![command(None)], 0, name).unwrap();
        let error = log.claim("west").unwrap_err().to_string();
        assert!(
            error.contains("east") && error.contains(&path.display().to_string()),
            "{error}"
        );
        log.claim("east").unwrap();
        // Once applied and trimmed, the log may serve another world.
        log.trim(1).unwrap();
        log.claim("west").unwrap();
    }
}
