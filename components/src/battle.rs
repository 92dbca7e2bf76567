//! Battles as the API shows them (docs/rules.md#battle-read-model-and-frames): which side is
//! which, the battle read model and the frames clients draw. The simulation that produces them
//! is `systems::battle`; nothing here steps a battle.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::world::TroopType;

/// The two sides of a battle. Serialized as `attacker` / `defender`; in frames as 0 / 1.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Attacker,
    Defender,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Attacker, Side::Defender];

    /// 0 for the attacker, 1 for the defender.
    pub fn index(self) -> usize {
        match self {
            Side::Attacker => 0,
            Side::Defender => 1,
        }
    }

    pub fn other(self) -> Side {
        match self {
            Side::Attacker => Side::Defender,
            Side::Defender => Side::Attacker,
        }
    }
}

/// Why a battle ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// Every unit of the losing side fell.
    Eliminated,
    /// The losing side has no unit left fighting; some fled or are fleeing.
    Routed,
    /// The time limit passed and the defender holds.
    TimeLimit,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BattleStatus {
    Active,
    Finished,
}

/// One side of a battle in the read model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SideView {
    pub nation: Option<String>,
    pub generals: Vec<String>,
}

/// Fighting units of each side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitsAlive {
    pub attacker: u32,
    pub defender: u32,
}

/// City walls across a battle's field: a wall at `x`, `thickness` wide, across the whole
/// height of the field, with an opening `gate_width` wide centred on each of `gates` (y).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WallsView {
    pub x: f32,
    pub thickness: f32,
    pub gates: Vec<f32>,
    pub gate_width: f32,
}

/// The ground a battle is fought on, in the metres of its frames: the attackers deploy west
/// (towards `min.x`), the defenders east; a unit that crosses its own side's edge has fled.
/// It grows when reinforcements form up behind a side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldView {
    /// West and north corner `[x, y]`.
    pub min: [f32; 2],
    /// East and south corner `[x, y]`.
    pub max: [f32; 2],
    /// The city's walls, when it has any.
    pub walls: Option<WallsView>,
}

/// `GET /api/battles/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BattleView {
    pub id: String,
    pub city: String,
    pub status: BattleStatus,
    pub attacker: SideView,
    pub defender: SideView,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub winner: Option<Side>,
    pub reason: Option<EndReason>,
    pub units_alive: UnitsAlive,
    /// Soldiers lost so far, by general id or `garrison`.
    pub casualties: BTreeMap<String, u32>,
    /// Battle steps simulated so far (60 per second of battle time).
    pub steps: u32,
    /// The field and its walls, to draw the frames on. Absent from views written before it
    /// was added.
    #[serde(default)]
    pub field: FieldView,
    /// Hash of the designer data the battle is fought under (what it began with).
    #[serde(default)]
    pub data_hash: String,
    pub version: u64,
}

/// One unit in a frame: `[id, side, kind, x, y, hp, group]`, side 0 = attacker, 1 = defender,
/// `group` the index in the frame's `groups` of the general (or garrison) it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UnitFrame(
    pub u32,
    pub u8,
    pub TroopType,
    pub f32,
    pub f32,
    pub u32,
    pub u16,
);

/// `GET /api/battles/{id}/frame`: where every unit on the field stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrameView {
    pub battle: String,
    /// The battle step the frame shows.
    pub tick: u32,
    pub units: Vec<UnitFrame>,
    /// The groups units belong to, by a unit's `group`: a general's id, or `garrison`.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The battle's last frame, taken as it ended (pushed on the WebSocket with the result;
    /// `GET /api/battles/{id}/frame` serves battles under way only). Left out when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub last: bool,
}
