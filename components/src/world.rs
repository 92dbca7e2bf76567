//! ECS components and resources of the game state (docs/rules.md#entities-and-ids): nations,
//! cities and generals as entities with plain data, cross-referenced by id, and the id registry
//! that resolves ids to entities. Only the World's systems change them; everything else reads
//! the published read models. Their serialized shape is what checkpoints hold.

use std::collections::BTreeMap;

// A fast hasher (seeded per process): the registry is looked up for every command.
use foldhash::HashMap;

use bevy_ecs::{component::Component, entity::Entity, resource::Resource};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::command::{BuildKind, CommandType};
pub use crate::name::{PositionKind, TroopType};

/// Relations between two nations.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    War,
    Peace,
    Alliance,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NationStatus {
    Active,
    Destroyed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GeneralStatus {
    Idle,
    Busy,
    Marching,
    InBattle,
}

/// A position card held by a general, within its nation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub kind: PositionKind,
    /// The city a card of a city's scope (a governor's) names; `None` for every other card.
    pub city: Option<String>,
}

/// Command points in thousandths, so regeneration by fractions of a point stays exact.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MilliCp(pub u32);

impl MilliCp {
    pub const PER_POINT: u32 = 1_000;

    pub fn from_points(points: u32) -> Self {
        MilliCp(points.saturating_mul(Self::PER_POINT))
    }

    /// Whole points available.
    pub fn points(self) -> u32 {
        self.0 / Self::PER_POINT
    }
}

/// A general's five stats, each 1–100.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub leadership: u8,
    pub strength: u8,
    pub intelligence: u8,
    pub politics: u8,
    pub charm: u8,
}

#[derive(Component, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Nation {
    pub id: String,
    pub name: String,
    /// `#rrggbb`, for maps.
    pub color: String,
    pub status: NationStatus,
    /// The general who holds the emperor card; `None` once the nation is destroyed.
    pub ruler: Option<String>,
    /// `None` once the nation is destroyed.
    pub capital: Option<String>,
    pub gold: i64,
    pub rice: i64,
    /// Integer percent, 0–50.
    pub tax_rate: u8,
    /// Relations with every other active nation, by nation id.
    pub relations: BTreeMap<String, Relation>,
    /// When the relation with a nation last changed (game seconds), for those that changed
    /// since the scenario began.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub relations_since: BTreeMap<String, i64>,
}

/// A road from a city to a neighbouring one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema, utoipa::ToSchema)]
pub struct Road {
    pub city: String,
    pub distance: u32,
}

#[derive(Component, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct City {
    pub id: String,
    pub name: String,
    pub x: f32,
    pub y: f32,
    /// Owning nation; `None` for a neutral city.
    pub owner: Option<String>,
    pub population: u32,
    pub agriculture: u32,
    pub commerce: u32,
    pub defense: u32,
    pub walls: u32,
    pub gold: i64,
    pub rice: i64,
    /// Soldiers of the owning nation stationed in the city without a general.
    pub garrison: u32,
    /// Roads to neighbouring cities, sorted by city id.
    pub neighbors: Vec<Road>,
}

#[derive(Component, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct General {
    pub id: String,
    pub name: String,
    /// The player who commands this general; `None` for NPCs.
    pub owner: Option<String>,
    /// `None` for a ronin.
    pub nation: Option<String>,
    /// The city the general is in (or last left, while marching).
    pub city: String,
    pub stats: Stats,
    pub troops: u32,
    pub troop_type: TroopType,
    /// 0–100.
    pub training: u8,
    /// 0–100.
    pub morale: u8,
    pub pcp: MilliCp,
    pub pcp_max: MilliCp,
    pub mcp: MilliCp,
    pub mcp_max: MilliCp,
    pub position: Option<Position>,
    pub status: GeneralStatus,
    /// The timed order under way (TRAIN, RECRUIT, BUILD, MOVE), if any. Boxed: most
    /// generals have none, and a general stays small.
    pub order: Option<Box<ActiveOrder>>,
    /// The march under way, if any.
    pub march: Option<Box<March>>,
    /// Protected from attack: its player went offline less than a game day ago
    /// (docs/rules.md#presence-and-ai-delegates).
    pub protected: bool,
    /// An AI delegate acts for its offline player (docs/rules.md#presence-and-ai-delegates).
    pub ai_delegate: bool,
}

/// What a timed order does when it completes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OrderEffect {
    Train,
    /// Troops to add (already paid for).
    Recruit {
        amount: u32,
        /// The troop type the general takes on (one without soldiers changing its type).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        troop_type: Option<TroopType>,
    },
    Build {
        city: String,
        build: BuildKind,
    },
    /// Completes when the march ends.
    March,
}

/// A timed order a general is carrying out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveOrder {
    pub id: String,
    /// The player who issued it; `None` for the AI.
    pub player: Option<String>,
    pub command: CommandType,
    pub accepted_at: i64,
    /// When it completes (a march: its expected arrival).
    pub completes_at: i64,
    pub effect: OrderEffect,
}

/// A march along roads (docs/rules.md#marches).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct March {
    /// Cities from the start to the destination, both included.
    pub path: Vec<String>,
    /// Index in `path` of the city the general is heading for now.
    pub next: usize,
    /// Game second of arrival at `path[next]`.
    pub next_at: i64,
    /// Game second of arrival at the destination, if nothing stops the march.
    pub eta: i64,
    pub started_at: i64,
}

impl March {
    pub fn from(&self) -> &str {
        self.path.first().map_or("", String::as_str)
    }

    pub fn to(&self) -> &str {
        self.path.last().map_or("", String::as_str)
    }
}

/// Resolves entity ids to ECS entities. Maintained by whoever spawns or despawns entities.
#[derive(Resource, Default, Debug)]
pub struct Registry {
    pub nations: HashMap<String, Entity>,
    pub cities: HashMap<String, Entity>,
    pub generals: HashMap<String, Entity>,
    /// Battles under way.
    pub battles: HashMap<String, Entity>,
    /// Player id → the id of the general the player owns (the World's record of ownership
    /// is the general's `owner`; this is its index). Ordered, so systems that visit every
    /// player do so in id order without sorting each tick.
    pub players: BTreeMap<String, String>,
}

/// A sandbox world's own state (docs/sandbox.md): the World holds it only when the world
/// was created by `serve --sandbox`; every checkpoint carries it.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The game clock is stopped: no strategy tick runs, battles stop at the clock.
    pub paused: bool,
    /// Game seconds per real second a sandbox CLOCK set; none: the server's `--speed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// Maintenance (docs/http.md#admin-routes): while the World holds it, commands are answered
/// 503 with its message and reads go on. Every checkpoint carries it.
#[derive(Resource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintenance {
    pub message: String,
}

/// Which world this is and what data it was built from.
#[derive(Resource, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorldInfo {
    /// The world's name (`--world`); keys and documents are partitioned by it.
    pub name: String,
    /// The scenario the world was created from.
    pub scenario: String,
    /// Hash of the designer data in force.
    pub data_hash: String,
    /// Hash of the scenario files the world was created from (empty if not known).
    pub scenario_hash: String,
}
