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

/// What a running world uses of the designer data's names: the troop types its generals
/// lead or are recruiting, and the cards they hold, with their holders per nation.
#[derive(Clone, Debug, Default)]
pub struct InUse {
    pub troop_types: std::collections::BTreeSet<components::world::TroopType>,
    /// Holders of each card, per nation.
    pub cards: std::collections::BTreeMap<(components::world::PositionKind, String), usize>,
    /// Cards held with a city (a card of a city's scope), and without.
    pub with_city: std::collections::BTreeSet<components::world::PositionKind>,
    pub without_city: std::collections::BTreeSet<components::world::PositionKind>,
}

impl InUse {
    /// Notes one general: its nation, troop type, card (with its city, if any) and a troop
    /// type it is being recruited into.
    pub fn note(
        &mut self,
        nation: Option<&str>,
        troop_type: components::world::TroopType,
        card: Option<(components::world::PositionKind, bool)>,
        recruiting: Option<components::world::TroopType>,
    ) {
        self.troop_types.insert(troop_type);
        self.troop_types.extend(recruiting);
        if let Some((kind, with_city)) = card {
            *self
                .cards
                .entry((kind, nation.unwrap_or_default().to_string()))
                .or_default() += 1;
            if with_city {
                self.with_city.insert(kind);
            } else {
                self.without_city.insert(kind);
            }
        }
    }
}

/// What new designer `data` (read from `dir`) would break in a running world that uses
/// `in_use`: troop types its generals lead or are recruiting into and cards they hold that
/// the files no longer define, a card in use whose scope changes, a card with more holders
/// in a nation than its new `max_holders`. A reload with such errors is refused like an
/// invalid one (docs/data-files.md#hot-reload).
pub fn removed_in_use(data: &GameData, dir: &std::path::Path, in_use: &InUse) -> Vec<AssetError> {
    use components::data::CardScope;
    let error = |file: &str, entry: String, message: String| AssetError {
        file: dir.join(file),
        line: None,
        column: None,
        entry: Some(entry),
        message,
    };
    let mut errors: Vec<AssetError> = in_use
        .troop_types
        .iter()
        .filter(|t| data.troops.get(**t).is_none())
        .map(|t| {
            error(
                "troops.toml",
                format!("[{t}]"),
                format!("generals of the running world lead {t}: a troop type in use stays"),
            )
        })
        .collect();
    let mut reported = std::collections::BTreeSet::new();
    for ((kind, nation), holders) in &in_use.cards {
        let entry = format!("[{kind}]");
        let Some(card) = data.positions.get(*kind) else {
            if reported.insert(*kind) {
                errors.push(error(
                    "positions.toml",
                    entry,
                    format!(
                        "generals of the running world hold the {kind} card: a card in use stays"
                    ),
                ));
            }
            continue;
        };
        let city = card.scope == CardScope::City;
        let scope_changed = (city && in_use.without_city.contains(kind))
            || (!city && in_use.with_city.contains(kind));
        if scope_changed && reported.insert(*kind) {
            errors.push(error(
                "positions.toml",
                format!("[{kind}] scope"),
                format!(
                    "generals of the running world hold the {kind} card {}: the scope of a card in use stays",
                    if city { "without a city" } else { "for a city" }
                ),
            ));
        }
        let max = card.max_holders.max(0) as usize;
        if card.scope == CardScope::Nation && *holders > max {
            errors.push(error(
                "positions.toml",
                format!("[{kind}] max_holders"),
                format!(
                    "{holders} generals of {nation} hold the {kind} card: max_holders may not go below the holders in the running world"
                ),
            ));
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use components::{
        data::CardScope,
        world::{PositionKind, TroopType},
    };

    use super::*;

    fn shipped() -> GameData {
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        load(&assets, "tiny").unwrap()
    }

    fn said(errors: &[AssetError]) -> String {
        errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn a_reload_keeps_what_the_world_uses() {
        let governor = PositionKind::new("governor").unwrap();
        let corps = PositionKind::new("corps_commander").unwrap();
        let spearman = TroopType::new("spearman").unwrap();
        let mut in_use = InUse::default();
        in_use.note(
            Some("west"),
            TroopType::INFANTRY,
            Some((governor, true)),
            None,
        );
        in_use.note(
            Some("west"),
            TroopType::INFANTRY,
            Some((corps, false)),
            Some(spearman),
        );
        in_use.note(Some("west"), TroopType::CAVALRY, Some((corps, false)), None);
        let dir = Path::new("assets");

        // The shipped data lacks only the type being recruited into.
        let errors = removed_in_use(&shipped(), dir, &in_use);
        assert_eq!(errors.len(), 1, "{}", said(&errors));
        assert!(said(&errors).contains("lead spearman"), "{}", said(&errors));

        let mut data = shipped();
        let spec = data.troops.get(TroopType::INFANTRY).unwrap().clone();
        data.troops.0.insert(spearman, spec);
        assert!(removed_in_use(&data, dir, &in_use).is_empty());

        // A card in use keeps its scope, and its limit stays above its holders.
        data.positions.0.get_mut(&governor).unwrap().scope = CardScope::Nation;
        data.positions.0.get_mut(&corps).unwrap().max_holders = 1;
        let errors = said(&removed_in_use(&data, dir, &in_use));
        assert!(errors.contains("[governor] scope"), "{errors}");
        assert!(
            errors.contains("the scope of a card in use stays"),
            "{errors}"
        );
        assert!(
            errors.contains("2 generals of west hold the corps_commander card"),
            "{errors}"
        );

        // A card the files no longer define, and a type no general uses any more.
        data.positions.0.remove(&corps);
        data.troops.0.remove(&TroopType::ARCHER);
        let errors = said(&removed_in_use(&data, dir, &in_use));
        assert!(
            errors.contains("hold the corps_commander card: a card in use stays"),
            "{errors}"
        );
        assert!(!errors.contains("archer"), "{errors}");
    }
}
