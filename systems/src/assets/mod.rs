//! Designer data (docs/data-files.md): reading the text files under `assets/`, validating them,
//! and the validated [`GameData`] the World is built from. Every error names its file, and its
//! line and column or entry; validation reports every error it finds, not only the first.

mod load;
pub mod reload;
mod schema;
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
pub use schema::schemas;

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
    /// The same over the scenario's files alone: what a world was created from.
    pub scenario_hash: String,
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

/// What a reload of `data` (read from `dir`) would take away from a running world: troop types
/// its generals lead and cards they hold, which the new files no longer define. A reload with
/// such errors is refused like an invalid one (docs/data-files.md#hot-reload).
pub fn removed_in_use(
    data: &GameData,
    dir: &std::path::Path,
    troop_types: &std::collections::BTreeSet<components::world::TroopType>,
    cards: &std::collections::BTreeSet<components::world::PositionKind>,
) -> Vec<AssetError> {
    let missing = |file: &str, entry: String, message: String| AssetError {
        file: dir.join(file),
        line: None,
        column: None,
        entry: Some(entry),
        message,
    };
    let mut errors: Vec<AssetError> = troop_types
        .iter()
        .filter(|t| data.troops.get(**t).is_none())
        .map(|t| {
            missing(
                "troops.toml",
                format!("[{t}]"),
                format!("generals of the running world lead {t}: a troop type in use stays"),
            )
        })
        .collect();
    errors.extend(
        cards
            .iter()
            .filter(|c| data.positions.get(**c).is_none())
            .map(|c| {
                missing(
                    "positions.toml",
                    format!("[{c}]"),
                    format!("generals of the running world hold the {c} card: a card in use stays"),
                )
            }),
    );
    errors
}
