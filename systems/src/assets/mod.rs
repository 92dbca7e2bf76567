//! Designer data (docs/data-files.md): reading the text files under `assets/`, validating them,
//! and the validated [`GameData`] the World is built from. Every error names its file, and its
//! line and column or entry; validation reports every error it finds, not only the first.

mod load;
pub mod reload;
mod validate;

use std::{fmt, path::PathBuf, sync::Arc};

use bevy_ecs::resource::Resource;
use components::data::{
    BalanceFile, CitiesFile, CommandsFile, GeneralsFile, NationsFile, PositionsFile, RoadsFile,
    ScenarioFile, TroopsFile,
};

pub use load::{
    CheckReport, Reloaded, Reloader, check, list_scenarios, load, load_reloadable, load_rules_only,
};

/// One problem in the designer data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetError {
    /// The file, as found under the assets directory given.
    pub file: PathBuf,
    /// 1-based line and column, where the problem has a place in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// The offending entry (`city "luoyang"`, `[economy] harvest_month`), where there is one.
    pub entry: Option<String>,
    pub message: String,
}

impl fmt::Display for AssetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": ")?;
        if let Some(entry) = &self.entry {
            write!(f, "{entry}: ")?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetErrors(pub Vec<AssetError>);

impl fmt::Display for AssetErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AssetErrors {}

/// One scenario's files.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The scenario's directory name under `scenarios/`.
    pub id: String,
    pub meta: ScenarioFile,
    pub nations: NationsFile,
    pub cities: CitiesFile,
    pub roads: RoadsFile,
    pub generals: GeneralsFile,
}

/// Validated rules files, without a scenario.
#[derive(Clone, Debug)]
pub struct RulesData {
    pub troops: TroopsFile,
    pub positions: PositionsFile,
    pub commands: CommandsFile,
    pub balance: BalanceFile,
}

/// Validated designer data: the rules files and one scenario.
#[derive(Clone, Debug)]
pub struct GameData {
    pub troops: TroopsFile,
    pub positions: PositionsFile,
    pub commands: CommandsFile,
    pub balance: BalanceFile,
    pub scenario: Scenario,
    /// SHA-256 over the names and contents of the files above.
    pub data_hash: String,
}

/// The designer data in force, as a World resource.
#[derive(Resource, Clone, Debug)]
pub struct Data(pub Arc<GameData>);

impl std::ops::Deref for Data {
    type Target = GameData;
    fn deref(&self) -> &GameData {
        &self.0
    }
}
