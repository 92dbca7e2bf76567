//! Battle recordings (docs/rules.md#determinism-and-recordings): a battle's setup (groups,
//! seed, rules numbers, troop types, reinforcements with their join steps), the data hash in
//! force, and how it ended, as a JSON file. Replaying one runs the same steps headless and must
//! reach the same state hash.

use serde::{Deserialize, Serialize};

use super::{
    setup::{BattleSetup, SetupError},
    sim::{BattleSim, GroupResult, Outcome},
};

/// The recording format this build writes and reads.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BattleRecord {
    pub format: u32,
    /// The battle's id where it was fought.
    pub battle: String,
    /// Hash of the designer data in force when it was fought.
    pub data_hash: String,
    pub setup: BattleSetup,
    /// Steps the battle ran.
    pub steps: u32,
    /// How it ended, if it had.
    pub outcome: Option<Outcome>,
    /// State hash after `steps` steps, 16 hex digits.
    pub state_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a battle recording: {0}")]
    Json(String),
    #[error("recording format {0} is not supported (this build reads format {FORMAT})")]
    Format(u32),
    #[error("the recorded setup is invalid: {0}")]
    Setup(#[from] SetupError),
    #[error("state_hash \"{0}\" is not 16 hex digits")]
    Hash(String),
}

/// What a replay reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    pub steps: u32,
    pub outcome: Option<Outcome>,
    pub groups: Vec<GroupResult>,
    pub state_hash: String,
}

pub fn hash_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

impl BattleRecord {
    /// Records `sim` as it stands.
    pub fn of(sim: &BattleSim, battle: &str, data_hash: &str) -> BattleRecord {
        BattleRecord {
            format: FORMAT,
            battle: battle.to_string(),
            data_hash: data_hash.to_string(),
            setup: sim.setup().clone(),
            steps: sim.steps(),
            outcome: sim.outcome(),
            state_hash: hash_hex(sim.state_hash()),
        }
    }

    /// Reads a recording; syntax errors give line and column.
    pub fn parse(text: &str) -> Result<BattleRecord, RecordError> {
        let record: BattleRecord = serde_json::from_str(text).map_err(|e| {
            RecordError::Json(format!("{e} (line {}, column {})", e.line(), e.column()))
        })?;
        if record.format != FORMAT {
            return Err(RecordError::Format(record.format));
        }
        if record.state_hash.len() != 16 || u64::from_str_radix(&record.state_hash, 16).is_err() {
            return Err(RecordError::Hash(record.state_hash));
        }
        record.setup.validate()?;
        Ok(record)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a recording serializes")
    }

    /// Runs the recorded setup for the recorded number of steps (or to its end).
    pub fn replay(&self) -> Result<Replay, RecordError> {
        let mut sim = BattleSim::new(self.setup.clone())?;
        while sim.steps() < self.steps && sim.outcome().is_none() {
            sim.step();
        }
        Ok(Replay {
            steps: sim.steps(),
            outcome: sim.outcome(),
            groups: sim.group_results(),
            state_hash: hash_hex(sim.state_hash()),
        })
    }
}
