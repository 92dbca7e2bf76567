//! Read models (docs/http.md#world-state): the immutable views the World publishes at the end
//! of each tick and the read side serves, with the leaderboard's ranking over them. A published
//! [`ReadModels`] is never changed; the World builds the next one from it with structural
//! sharing (the maps and the event window are persistent collections), so building views and
//! snapshots costs what changed. Views are what clients see: their field names are the API's.

use std::{collections::BTreeMap, sync::Arc};

use arc_swap::ArcSwapOption;
use imbl::{OrdMap, Vector};
use serde::{Deserialize, Serialize};

use crate::{
    battle::{BattleView, FrameView},
    events::DomainEvent,
    time::GameDate,
    world::{GeneralStatus, NationStatus, Relation, Road, TroopType},
};

/// `GET /api/world`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WorldSummary {
    pub world: String,
    pub scenario: String,
    pub data_hash: String,
    pub game_seconds: i64,
    pub game_date: GameDate,
    pub speed: f64,
    pub effective_speed: f64,
    /// Strategy ticks run so far.
    pub tick: u64,
    /// Active nations.
    pub nations: usize,
    pub cities: usize,
    pub generals: usize,
    pub battles_active: usize,
    /// The World's incarnation: one more at every recovery, a clean restart included
    /// (docs/rules.md#revisions-and-replay-after-a-crash). Absent (0) in summaries written
    /// before it was added.
    #[serde(default)]
    pub incarnation: u64,
    /// The `seq` of this incarnation's `WorldRecovered` event, 0 for a world never recovered:
    /// every event before it outlived the recovery, while an event numbered from it on that a
    /// client saw under the previous incarnation may never have happened.
    #[serde(default)]
    pub recovered_seq: u64,
    /// A sandbox world (docs/sandbox.md), whose state client developers edit.
    #[serde(default)]
    pub sandbox: bool,
    /// The game clock is stopped (only a sandbox stops it).
    #[serde(default)]
    pub paused: bool,
    /// While set, commands are answered 503 with this message (docs/http.md#admin-routes).
    #[serde(default)]
    pub maintenance: Option<String>,
    /// Real seconds the game clock is behind its schedule (catching up after downtime, or a
    /// World that cannot keep up); 0 when on time.
    #[serde(default)]
    pub clock_lag_seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NationView {
    pub id: String,
    pub name: String,
    pub color: String,
    pub status: NationStatus,
    pub ruler: Option<String>,
    pub capital: Option<String>,
    pub gold: i64,
    pub rice: i64,
    pub tax_rate: u8,
    pub relations: BTreeMap<String, Relation>,
    /// When each relation changed last (game seconds), for those changed since the scenario
    /// began.
    #[serde(default)]
    pub relations_since: BTreeMap<String, i64>,
    pub city_ids: Vec<String>,
    pub general_ids: Vec<String>,
    /// Increases each time this view changes.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CityView {
    pub id: String,
    pub name: String,
    pub x: f32,
    pub y: f32,
    pub nation: Option<String>,
    pub population: u32,
    pub agriculture: u32,
    pub commerce: u32,
    pub defense: u32,
    pub walls: u32,
    pub gold: i64,
    pub rice: i64,
    pub garrison: u32,
    pub neighbors: Vec<Road>,
    pub version: u64,
}

/// A position card as the general read model shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PositionView {
    pub name: String,
    pub level: u8,
    pub cp_multiplier: f64,
    pub city: Option<String>,
}

/// A march under way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MarchView {
    pub from: String,
    pub to: String,
    pub path: Vec<String>,
    pub eta: i64,
    /// Game second the march left `from`. The march covers its path at one pace (each leg's
    /// time follows its distance), so a client can place the general between cities.
    /// Absent from views written before it was added.
    #[serde(default)]
    pub started_at: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Queued,
    Accepted,
    Rejected,
    Completed,
    Cancelled,
}

/// An order and where it is in its life cycle (docs/rules.md#order-life-cycle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderView {
    pub order_id: String,
    #[serde(rename = "type")]
    pub command_type: String,
    pub general: Option<String>,
    pub status: OrderStatus,
    pub reason: Option<String>,
    pub revision: u64,
    pub accepted_at: Option<i64>,
    pub completes_at: Option<i64>,
    /// The general a JOIN created.
    pub general_id: Option<String>,
    /// Why it was rejected or cancelled, in words (the code is `reason`).
    pub message: Option<String>,
}

impl OrderStatus {
    /// Whether the order has reached the end of its life cycle.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            OrderStatus::Rejected | OrderStatus::Completed | OrderStatus::Cancelled
        )
    }

    /// The status as the API writes it.
    pub fn name(self) -> &'static str {
        match self {
            OrderStatus::Queued => "queued",
            OrderStatus::Accepted => "accepted",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Completed => "completed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Queued,
            OrderStatus::Accepted,
            OrderStatus::Rejected,
            OrderStatus::Completed,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Where it is in the life cycle: statuses only move to a higher stage.
    pub fn stage(self) -> u8 {
        match self {
            OrderStatus::Queued => 0,
            OrderStatus::Accepted => 1,
            _ => 2,
        }
    }
}

impl OrderView {
    /// An order the World has not seen yet.
    pub fn queued(order_id: String, command_type: String, general: Option<String>) -> Self {
        OrderView {
            order_id,
            command_type,
            general,
            status: OrderStatus::Queued,
            reason: None,
            revision: 0,
            accepted_at: None,
            completes_at: None,
            general_id: None,
            message: None,
        }
    }
}

/// An order as the World records it in its player's window: its view and the hash of the
/// command that made it ([`crate::command::Command::body_hash`]), so a repeated id with
/// another body is told apart, by the World and already by the HTTP layer. The same record is
/// published in the read models and stored in checkpoints (the hash as hex, so every store
/// keeps all 64 bits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    pub view: OrderView,
    #[serde(with = "hex_u64")]
    pub body_hash: u64,
}

/// A `u64` as 16 hex digits.
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(value: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{value:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d)?;
        u64::from_str_radix(&text, 16).map_err(D::Error::custom)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GeneralView {
    pub id: String,
    pub name: String,
    pub owner: Option<String>,
    pub nation: Option<String>,
    pub city: String,
    pub status: GeneralStatus,
    pub leadership: u8,
    pub strength: u8,
    pub intelligence: u8,
    pub politics: u8,
    pub charm: u8,
    pub troops: u32,
    pub troop_type: TroopType,
    pub training: u8,
    pub morale: u8,
    pub pcp: u32,
    pub pcp_max: u32,
    pub mcp: u32,
    pub mcp_max: u32,
    pub position: Option<PositionView>,
    pub order: Option<Box<OrderView>>,
    pub march: Option<Box<MarchView>>,
    pub protected: bool,
    pub ai_delegate: bool,
    pub version: u64,
}

/// An id as a read-model key: cloned without allocating, which matters because a persistent
/// map copies the keys of every node on the path of an insert.
pub type Key = Arc<str>;

/// `GET /api/rules` (docs/http.md#rules): the rules in force, from the designer data, for a
/// client to show costs, authority and troop stats and to check what it sends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RulesView {
    /// The data hash of the files the rules come from (as in `GET /api/world`).
    pub data_hash: String,
    /// Each command type: its cost, its duration and who may issue it.
    pub commands: BTreeMap<String, CommandRule>,
    /// Each position card, by id (`emperor`, ...).
    pub positions: BTreeMap<String, PositionRule>,
    /// Each troop type's battle characteristics, by type.
    pub troops: BTreeMap<String, crate::data::TroopSpec>,
    /// The balance constants (`balance.toml`), section by section.
    #[schema(value_type = Object)]
    pub balance: serde_json::Value,
}

/// Who may issue a command type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssuedBy {
    /// A player without a general (JOIN).
    Newcomer,
    /// Every general, ronin included.
    #[default]
    Anyone,
    /// Every general of a nation.
    NationMember,
    /// Only holders of the listed cards.
    Cards,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CommandRule {
    /// PCP and MCP paid when the World accepts it.
    pub pcp: i64,
    pub mcp: i64,
    /// Game seconds from acceptance to completion; `null` for MOVE, whose march decides.
    pub duration: Option<i64>,
    pub issued_by: IssuedBy,
    /// The cards that may issue it (also those that may beyond `issued_by`).
    pub cards: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PositionRule {
    pub title: String,
    /// Rank: 1 is the highest.
    pub level: i64,
    /// Who holds it: `ruler`, `nation` or `city` (docs/data-files.md#position-cards).
    pub scope: String,
    /// Holders a nation may have at once, for a card of the nation's scope.
    pub max_holders: i64,
    pub cp_multiplier: f64,
    pub pcp_max_bonus: i64,
    pub mcp_max_bonus: i64,
    /// Commands it may issue beyond what every general may.
    pub may_issue: Vec<String>,
    /// Cards its holder may appoint and dismiss.
    pub appoints: Vec<String>,
    /// Multiplies the leadership cap on troops.
    pub recruit_cap_multiplier: f64,
}

/// Everything the read side serves, as of the end of one tick.
#[derive(Clone, Debug)]
pub struct ReadModels {
    pub world: Arc<WorldSummary>,
    /// The rules in force; empty until the World publishes them.
    pub rules: Arc<RulesView>,
    pub nations: OrdMap<Key, Arc<NationView>>,
    pub cities: OrdMap<Key, Arc<CityView>>,
    pub generals: OrdMap<Key, Arc<GeneralView>>,
    /// Battles under way and the most recently finished ones.
    pub battles: OrdMap<Key, Arc<BattleView>>,
    /// The latest frame of each battle under way.
    pub frames: OrdMap<Key, Arc<FrameView>>,
    /// The last frame of each finished battle in `battles`.
    pub final_frames: OrdMap<Key, Arc<FrameView>>,
    /// The recording (JSON for `tianxia battle run`) of each finished battle in `battles`.
    pub recordings: OrdMap<Key, Arc<str>>,
    /// The most recent domain events in sequence order, bounded.
    pub events: Vector<Arc<DomainEvent>>,
    /// Each player's order window (docs/rules.md#order-ids-and-idempotency), by player id, then
    /// order id.
    pub orders: OrdMap<Key, OrdMap<Key, Arc<OrderRecord>>>,
    /// Every change of an order, oldest first and bounded ([`ORDER_FEED_LEN`]): what a reader
    /// that is not at every publish (the L2 writer, a subscriber) needs to see each order's
    /// last state, including orders the window evicted before it looked.
    pub order_feed: Vector<OrderChange>,
    /// Log position of the last command the World applied: a command at or below it has its
    /// order in `orders` (or had, before the window evicted it).
    pub applied_log_seq: u64,
    /// The same as a stream entry (Redis mode).
    pub applied_entry: Option<crate::stream::EntryId>,
}

/// How many order changes [`ReadModels::order_feed`] keeps.
pub const ORDER_FEED_LEN: usize = 1 << 16;

/// One change of an order in the order feed: its state as of one publish.
#[derive(Clone, Debug)]
pub struct OrderChange {
    /// Numbers the feed's entries: one more than the entry before it.
    pub seq: u64,
    pub player: Key,
    pub record: Arc<OrderRecord>,
}

impl ReadModels {
    /// A player's orders not finished yet (queued or accepted), by order id.
    pub fn open_orders(&self, player: &str) -> Vec<OrderView> {
        self.orders
            .get(player)
            .map(|window| {
                window
                    .values()
                    .filter(|o| !o.view.status.is_finished())
                    .map(|o| o.view.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The order feed's entries after `after`, or `None` when the feed no longer holds all of
    /// them (the reader fell more than [`ORDER_FEED_LEN`] changes behind).
    pub fn order_changes_after(&self, after: u64) -> Option<Vector<OrderChange>> {
        let first = self.order_feed.front().map_or(after + 1, |c| c.seq);
        if first > after + 1 {
            return None;
        }
        let skip = usize::try_from(after + 1 - first).unwrap_or(usize::MAX);
        Some(self.order_feed.skip(skip.min(self.order_feed.len())))
    }

    /// Sequence number of the newest entry of the order feed (0 before the first).
    pub fn order_feed_seq(&self) -> u64 {
        self.order_feed.back().map_or(0, |c| c.seq)
    }

    /// Up to `limit` events with `seq > after_seq`, in sequence order, optionally only those
    /// of one aggregate.
    pub fn events_after(
        &self,
        after_seq: u64,
        limit: usize,
        aggregate: Option<&str>,
    ) -> Vec<Arc<DomainEvent>> {
        let start = self
            .events
            .binary_search_by(|e| {
                if e.seq <= after_seq {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            })
            .unwrap_or_else(|i| i);
        self.events
            .skip(start)
            .iter()
            .filter(|e| aggregate.is_none_or(|a| e.aggregate == a))
            .take(limit)
            .cloned()
            .collect()
    }
}

/// What the leaderboard ranks nations by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RankBy {
    #[default]
    Cities,
    Troops,
    Gold,
}

impl RankBy {
    pub const ALL: [RankBy; 3] = [RankBy::Cities, RankBy::Troops, RankBy::Gold];

    pub fn name(self) -> &'static str {
        match self {
            RankBy::Cities => "cities",
            RankBy::Troops => "troops",
            RankBy::Gold => "gold",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Rank {
    pub nation: String,
    pub name: String,
    pub value: i64,
}

/// Active nations ranked by `by`, as of `models`.
pub fn ranks(models: &ReadModels, by: RankBy) -> Vec<Rank> {
    let mut troops: BTreeMap<&str, i64> = BTreeMap::new();
    if matches!(by, RankBy::Troops) {
        for general in models.generals.values() {
            if let Some(nation) = &general.nation {
                *troops.entry(nation).or_default() += i64::from(general.troops);
            }
        }
        for city in models.cities.values() {
            if let Some(nation) = &city.nation {
                *troops.entry(nation).or_default() += i64::from(city.garrison);
            }
        }
    }
    let mut ranks: Vec<Rank> = models
        .nations
        .values()
        .filter(|n| n.status == NationStatus::Active)
        .map(|n| Rank {
            nation: n.id.clone(),
            name: n.name.clone(),
            value: match by {
                RankBy::Cities => n.city_ids.len() as i64,
                RankBy::Troops => troops.get(n.id.as_str()).copied().unwrap_or(0),
                RankBy::Gold => n.gold,
            },
        })
        .collect();
    ranks.sort_by(|a, b| b.value.cmp(&a.value).then(a.nation.cmp(&b.nation)));
    ranks
}

/// Where the World publishes its read models and the read side finds them: an atomic
/// pointer swap, so neither side ever waits for the other. Empty until the world is loaded.
pub type ReadHandle = Arc<ArcSwapOption<ReadModels>>;
