//! Types of the designer data files under `assets/` (docs/data-files.md), one struct per file
//! kind. Numbers a designer may get wrong are read as wide integers or floats so that `check`
//! can report them as out-of-range entries rather than as type errors. Entries of scenario
//! files keep their position in the file ([`Spanned`]) so errors can point at them.
//!
//! These are the shapes only; reading and validating the files live in `systems::assets`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
pub use toml::Spanned;

use crate::{
    command::CommandType,
    time::GameDate,
    world::{PositionKind, Relation, TroopType},
};

/// `troops.toml`: the troop types and their battle characteristics, one table per type
/// (docs/data-files.md#troops). A designer adds a type by adding a table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct TroopsFile(pub BTreeMap<TroopType, TroopSpec>);

impl TroopsFile {
    pub fn get(&self, troop_type: TroopType) -> Option<&TroopSpec> {
        self.0.get(&troop_type)
    }

    /// The types, in alphabetical order.
    pub fn types(&self) -> impl Iterator<Item = TroopType> + '_ {
        self.0.keys().copied()
    }

    /// What soldiers of `attacker` deal to soldiers of `target`, as a multiple of their
    /// plain damage: the attacker's `counters` entry, else 1.
    pub fn counter(&self, attacker: TroopType, target: TroopType) -> f64 {
        self.get(attacker)
            .and_then(|spec| spec.counters.get(&target))
            .copied()
            .unwrap_or(1.0)
    }
}

/// One troop type. Battle lengths are in metres and battle seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TroopSpec {
    /// Mass of one unit body.
    pub mass: f64,
    /// Radius of one unit body.
    pub radius: f64,
    /// Top speed of a unit.
    pub max_speed: f64,
    /// Hit points of one soldier.
    pub hit_points: f64,
    /// Damage one soldier deals per attack, before the target's defense.
    pub attack: f64,
    /// Resistance: each soldier's hit deals `attack × attack / (attack + defense)`.
    pub defense: f64,
    /// Reach of an attack, from body edge to body edge.
    pub range: f64,
    /// Battle seconds between two attacks of a unit.
    pub cooldown: f64,
    /// Multiplies the damage its soldiers deal to soldiers of these types (1 for a type not
    /// listed): spearmen that counter cavalry list `cavalry = 1.5`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schema(value_type = BTreeMap<String, f64>)]
    pub counters: BTreeMap<TroopType, f64>,
}

/// `positions.toml`: the position cards, one table per card
/// (docs/data-files.md#position-cards). A designer adds a card by adding a table.
#[derive(Clone, Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct PositionsFile(pub BTreeMap<PositionKind, PositionCard>);

/// What a card unknown to the data gives its holder: nothing beyond what every general has.
static NO_CARD: PositionCard = PositionCard {
    title: String::new(),
    level: i64::MAX,
    cp_multiplier: 1.0,
    pcp_max_bonus: 0,
    mcp_max_bonus: 0,
    may_issue: Vec::new(),
    appoints: Vec::new(),
    recruit_cap_multiplier: 1.0,
    scope: CardScope::Nation,
    max_holders: 0,
};

impl PositionsFile {
    pub fn get(&self, kind: PositionKind) -> Option<&PositionCard> {
        self.0.get(&kind)
    }

    /// The card, or one with no powers when the data no longer defines it (a card removed
    /// while a general held it is refused by a reload, so only a restart on edited files
    /// meets this).
    pub fn card(&self, kind: PositionKind) -> &PositionCard {
        self.0.get(&kind).unwrap_or(&NO_CARD)
    }

    /// The card the ruler of a nation holds.
    pub fn ruler(&self) -> Option<PositionKind> {
        self.0
            .iter()
            .find(|(_, card)| card.scope == CardScope::Ruler)
            .map(|(kind, _)| *kind)
    }

    /// The cards from the highest rank (level 1) down.
    pub fn by_rank(&self) -> Vec<(&PositionKind, &PositionCard)> {
        let mut cards: Vec<(&PositionKind, &PositionCard)> = self.0.iter().collect();
        cards.sort_by_key(|(kind, card)| (card.level, **kind));
        cards
    }
}

/// Who holds a card (docs/rules.md#position-cards-and-authority).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CardScope {
    /// The ruler of a nation, and nobody else: never appointed or dismissed. Exactly one card
    /// has this scope.
    Ruler,
    /// Generals of a nation, up to `max_holders` at once.
    #[default]
    Nation,
    /// One general per city of the nation: an APPOINT names the city, and the card gives
    /// authority in that city only. The card is lost with the city.
    City,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionCard {
    /// Display title.
    pub title: String,
    /// Rank: 1 is the highest; each level appears once.
    pub level: i64,
    /// Multiplies command-point regeneration.
    pub cp_multiplier: f64,
    /// Added to the holder's PCP maximum.
    #[serde(default)]
    pub pcp_max_bonus: i64,
    /// Added to the holder's MCP maximum.
    #[serde(default)]
    pub mcp_max_bonus: i64,
    /// Commands the holder may issue beyond what every general may.
    #[serde(default)]
    pub may_issue: Vec<CommandType>,
    /// Cards the holder may appoint and dismiss.
    #[serde(default)]
    pub appoints: Vec<PositionKind>,
    /// Multiplies the leadership cap on troops a RECRUIT may reach.
    #[serde(default = "one")]
    pub recruit_cap_multiplier: f64,
    /// Who holds it.
    #[serde(default)]
    pub scope: CardScope,
    /// Holders a nation may have at once (a card of the nation's scope). With 1, an APPOINT
    /// replaces the holder; with more, one beyond the limit is refused.
    #[serde(default = "one_holder")]
    pub max_holders: i64,
}

fn one_holder() -> i64 {
    1
}

fn one() -> f64 {
    1.0
}

/// `commands.toml`: cost and duration of each command type (JOIN costs nothing).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandsFile {
    #[serde(rename = "MOVE")]
    pub move_: CommandSpec,
    #[serde(rename = "TRAIN")]
    pub train: CommandSpec,
    #[serde(rename = "RECRUIT")]
    pub recruit: CommandSpec,
    #[serde(rename = "BUILD")]
    pub build: CommandSpec,
    #[serde(rename = "APPOINT")]
    pub appoint: CommandSpec,
    #[serde(rename = "DISMISS")]
    pub dismiss: CommandSpec,
    #[serde(rename = "DECLARE_WAR")]
    pub declare_war: CommandSpec,
    #[serde(rename = "MAKE_PEACE")]
    pub make_peace: CommandSpec,
    #[serde(rename = "SET_TAX")]
    pub set_tax: CommandSpec,
}

impl CommandsFile {
    /// The entry of a command type (JOIN has none).
    pub fn get(&self, command: CommandType) -> Option<&CommandSpec> {
        self.entries()
            .into_iter()
            .find(|(t, _)| *t == command)
            .map(|(_, spec)| spec)
    }

    /// Every entry with its command type.
    pub fn entries(&self) -> [(CommandType, &CommandSpec); 9] {
        [
            (CommandType::Move, &self.move_),
            (CommandType::Train, &self.train),
            (CommandType::Recruit, &self.recruit),
            (CommandType::Build, &self.build),
            (CommandType::Appoint, &self.appoint),
            (CommandType::Dismiss, &self.dismiss),
            (CommandType::DeclareWar, &self.declare_war),
            (CommandType::MakePeace, &self.make_peace),
            (CommandType::SetTax, &self.set_tax),
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// PCP paid on acceptance.
    #[serde(default)]
    pub pcp: i64,
    /// MCP paid on acceptance.
    #[serde(default)]
    pub mcp: i64,
    /// Game seconds from acceptance to completion (MOVE: ignored, the march decides).
    #[serde(default)]
    pub duration: i64,
}

/// `balance.toml`: the constants of the game rules.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BalanceFile {
    pub command_points: CommandPointsBalance,
    pub march: MarchBalance,
    pub economy: EconomyBalance,
    pub training: TrainingBalance,
    pub recruit: RecruitBalance,
    pub build: BuildBalance,
    pub presence: PresenceBalance,
    pub nation: NationBalance,
    pub battle: BattleBalance,
    pub orders: OrdersBalance,
    pub join: JoinBalance,
    pub ai: AiBalance,
}

/// A player's new general (JOIN).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinBalance {
    /// Each stat lies between these (1–100), derived from the player id.
    pub stat_min: i64,
    pub stat_max: i64,
    pub troops: i64,
    pub training: i64,
    pub morale: i64,
    /// The troop type of a new general whose JOIN names none.
    #[serde(default = "infantry")]
    pub troop_type: TroopType,
}

fn infantry() -> TroopType {
    TroopType::INFANTRY
}

/// The AI of NPC generals and offline players' delegates (docs/data-files.md#ai).
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AiBalance {
    /// Game seconds between two decisions of one AI-driven general; decisions are
    /// staggered across ticks.
    pub think_every: i64,
    /// Recruit when troops are below this share (0–1) of the cap.
    pub recruit_below: f64,
    /// Train while training is below this.
    pub train_up_to: i64,
    /// Attack a neighbouring city at war when own troops are this many times its defence.
    pub attack_ratio: f64,
    /// ... and own troops are at least this share (0–1) of the cap, unless its city cannot
    /// pay for more.
    pub attack_min_share: f64,
    /// Each wall level counts as this share more defence when the AI weighs a siege.
    pub wall_weight: f64,
    /// A nation at war with fewer than `max_wars` nations declares war on its weakest
    /// neighbour when its strength is at least `war_ratio` times that neighbour's.
    pub war_ratio: f64,
    pub max_wars: i64,
    /// A nation at war with more than one nation and weaker than its enemies together makes
    /// peace with the strongest of them.
    pub peace_when_outnumbered: bool,
    /// Game days a relation the AI changed (or saw changed) stays before it changes it again.
    pub settle_days: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandPointsBalance {
    /// Points of PCP and of MCP regained per game hour at multiplier 1.
    pub regen_per_game_hour: f64,
    /// PCP maximum = base + politics × per_politics + the card's bonus.
    pub pcp_max_base: i64,
    pub pcp_max_per_politics: f64,
    /// MCP maximum = base + leadership × per_leadership + the card's bonus.
    pub mcp_max_base: i64,
    pub mcp_max_per_leadership: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MarchBalance {
    /// Road distance covered per game hour.
    pub distance_per_game_hour: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EconomyBalance {
    /// City gold per game day = commerce × this × population / population_unit.
    pub gold_per_commerce_per_day: f64,
    pub population_unit: i64,
    /// Month (1–12) of the rice harvest.
    pub harvest_month: i64,
    /// Rice harvested per point of agriculture.
    pub rice_per_agriculture: f64,
    /// Rice each soldier eats per game day.
    pub rice_per_soldier_per_day: f64,
    /// Fraction (0–1) of unfed soldiers that desert per game day.
    pub desertion_per_day: f64,
    /// Day of the month (1–30) on which taxes are collected.
    pub tax_day: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrainingBalance {
    /// Training gained by one TRAIN.
    pub gain: i64,
    pub max: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecruitBalance {
    /// Troop cap = leadership × this (× the card's multiplier).
    pub troops_per_leadership: i64,
    /// Largest amount one RECRUIT may ask for.
    pub amount_max: i64,
    pub gold_per_soldier: f64,
    pub population_per_soldier: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildBalance {
    pub agriculture_step: i64,
    pub agriculture_max: i64,
    pub commerce_step: i64,
    pub commerce_max: i64,
    pub walls_step: i64,
    pub walls_max: i64,
}

/// Presence thresholds (docs/rules.md#presence-and-ai-delegates), in game seconds.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PresenceBalance {
    /// A player is online while its last activity is this recent.
    pub online_window: i64,
    /// An offline player's general is protected for this long after going offline.
    pub protection: i64,
    /// An AI delegate acts for an offline player's general until this long after.
    pub ai_delegate_until: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NationBalance {
    /// Highest tax rate, in percent.
    pub tax_rate_max: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BattleBalance {
    /// Soldiers grouped into one unit body.
    pub soldiers_per_unit: i64,
    /// Game seconds after which the defender holds.
    pub time_limit: i64,
    /// Game seconds per physics step (1/60 s of battle time), to the millisecond.
    pub game_seconds_per_step: f64,
    /// Stats scale units by `stat_floor + (1 - stat_floor) × stat / 100`.
    pub stat_floor: f64,
    /// Each hit varies by up to this fraction either way.
    pub damage_variation: f64,
    /// Morale a unit loses per percent of its soldiers lost.
    pub morale_loss_per_percent: f64,
    /// A unit whose morale falls to this routs and flees.
    pub rout_morale: f64,
    /// Defense bonus of defenders behind walls, per wall level.
    pub wall_defense_bonus: f64,
    /// Metres of wall per gate (a wall has at least one), the width of each gate in
    /// metres, and the wall's thickness in metres at level 0 and per level.
    pub wall_per_gate: f64,
    pub gate_width: f64,
    pub wall_thickness: f64,
    pub wall_thickness_per_level: f64,
    /// Distance (metres) within which a unit looks for the nearest enemy.
    pub search_radius: f64,
    /// Battle steps between two target searches of a unit.
    pub retarget_steps: i64,
    /// Distance (metres) between the two armies when they deploy.
    pub deploy_gap: f64,
    /// Iterations of the physics contact solver per step: crowds of units need few, and each
    /// one costs a share of the step.
    pub solver_iterations: i64,
    /// Leadership, training and morale of a city's garrison, which fights without a general.
    pub garrison_leadership: i64,
    pub garrison_training: i64,
    pub garrison_morale: i64,
    /// The troop type a garrison fights as.
    #[serde(default = "infantry")]
    pub garrison_troop_type: TroopType,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrdersBalance {
    /// Finished orders remembered per player for idempotency.
    pub finished_window: i64,
}

/// `scenarios/NAME/scenario.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The calendar date at game second 0.
    pub start: GameDate,
}

/// `scenarios/NAME/nations.toml`: `[[nation]]` entries and `[[relation]]` pairs; pairs not
/// listed are at peace.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NationsFile {
    #[serde(default)]
    #[schemars(with = "Vec<NationDef>")]
    pub nation: Vec<Spanned<NationDef>>,
    #[serde(default)]
    #[schemars(with = "Vec<RelationDef>")]
    pub relation: Vec<Spanned<RelationDef>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NationDef {
    pub id: String,
    pub name: String,
    /// `#rrggbb`.
    pub color: String,
    /// Id of the general who rules; must belong to this nation.
    pub ruler: String,
    /// Id of a city this nation owns.
    pub capital: String,
    pub gold: i64,
    pub rice: i64,
    /// Percent.
    pub tax_rate: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationDef {
    pub nations: [String; 2],
    pub state: Relation,
}

/// `scenarios/NAME/cities.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CitiesFile {
    #[serde(default)]
    #[schemars(with = "Vec<CityDef>")]
    pub city: Vec<Spanned<CityDef>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CityDef {
    pub id: String,
    pub name: String,
    /// Map position west to east (the shipped maps use 0–1000; at most ±1,000,000).
    pub x: f64,
    /// Map position north to south (the shipped maps use 0–1000; at most ±1,000,000).
    pub y: f64,
    /// Owning nation; absent for a neutral city.
    #[serde(default)]
    pub owner: Option<String>,
    pub population: i64,
    pub agriculture: i64,
    pub commerce: i64,
    pub defense: i64,
    pub walls: i64,
    pub gold: i64,
    pub rice: i64,
    pub garrison: i64,
}

/// `scenarios/NAME/roads.toml`: two-way roads; the road graph must be connected.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoadsFile {
    #[serde(default)]
    #[schemars(with = "Vec<RoadDef>")]
    pub road: Vec<Spanned<RoadDef>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RoadDef {
    pub from: String,
    pub to: String,
    pub distance: i64,
}

/// `scenarios/NAME/generals.toml`.
#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneralsFile {
    #[serde(default)]
    #[schemars(with = "Vec<GeneralDef>")]
    pub general: Vec<Spanned<GeneralDef>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeneralDef {
    pub id: String,
    pub name: String,
    /// Absent for a ronin.
    #[serde(default)]
    pub nation: Option<String>,
    pub city: String,
    pub leadership: i64,
    pub strength: i64,
    pub intelligence: i64,
    pub politics: i64,
    pub charm: i64,
    pub troops: i64,
    pub troop_type: TroopType,
    pub training: i64,
    pub morale: i64,
    #[serde(default)]
    pub position: Option<PositionKind>,
    /// The city a governor governs.
    #[serde(default)]
    pub position_city: Option<String>,
}

/// The kinds of designer data file, for `tianxia schema` and error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileKind {
    Troops,
    Positions,
    Commands,
    Balance,
    Scenario,
    Nations,
    Cities,
    Roads,
    Generals,
}

impl FileKind {
    pub const ALL: [FileKind; 9] = [
        FileKind::Troops,
        FileKind::Positions,
        FileKind::Commands,
        FileKind::Balance,
        FileKind::Scenario,
        FileKind::Nations,
        FileKind::Cities,
        FileKind::Roads,
        FileKind::Generals,
    ];

    /// The kind's name, as `tianxia schema` takes it.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Troops => "troops",
            FileKind::Positions => "positions",
            FileKind::Commands => "commands",
            FileKind::Balance => "balance",
            FileKind::Scenario => "scenario",
            FileKind::Nations => "nations",
            FileKind::Cities => "cities",
            FileKind::Roads => "roads",
            FileKind::Generals => "generals",
        }
    }

    pub fn from_name(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The file's name: at the top of `assets/` for the rules files, inside each scenario's
    /// directory for the others.
    pub fn file_name(self) -> &'static str {
        match self {
            FileKind::Troops => "troops.toml",
            FileKind::Positions => "positions.toml",
            FileKind::Commands => "commands.toml",
            FileKind::Balance => "balance.toml",
            FileKind::Scenario => "scenario.toml",
            FileKind::Nations => "nations.toml",
            FileKind::Cities => "cities.toml",
            FileKind::Roads => "roads.toml",
            FileKind::Generals => "generals.toml",
        }
    }

    /// Whether the file belongs to a scenario rather than to the rules.
    pub fn in_scenario(self) -> bool {
        matches!(
            self,
            FileKind::Scenario
                | FileKind::Nations
                | FileKind::Cities
                | FileKind::Roads
                | FileKind::Generals
        )
    }

    /// JSON Schema of the file's contents, for editor completion.
    pub fn schema(self) -> schemars::Schema {
        match self {
            FileKind::Troops => schemars::schema_for!(TroopsFile),
            FileKind::Positions => schemars::schema_for!(PositionsFile),
            FileKind::Commands => schemars::schema_for!(CommandsFile),
            FileKind::Balance => schemars::schema_for!(BalanceFile),
            FileKind::Scenario => schemars::schema_for!(ScenarioFile),
            FileKind::Nations => schemars::schema_for!(NationsFile),
            FileKind::Cities => schemars::schema_for!(CitiesFile),
            FileKind::Roads => schemars::schema_for!(RoadsFile),
            FileKind::Generals => schemars::schema_for!(GeneralsFile),
        }
    }
}
