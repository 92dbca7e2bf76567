//! Domain events (docs/rules.md#domain-events): every state change of the World is told as a
//! past-tense event with a per-world monotonic sequence number (`seq`). Systems emit them into
//! the World's outbox (`systems::event_log`), which alone gives out sequence numbers; the read
//! side serves them and the stores make them durable. An event is never changed once emitted.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::{
    battle::{EndReason, Side, SideView},
    command::{CommandType, Reason},
    time::GameDate,
    world::{PositionKind, Relation},
};

/// One domain event as clients and stores see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DomainEvent {
    /// Per-world, strictly increasing, without gaps.
    pub seq: u64,
    #[serde(flatten)]
    pub kind: EventKind,
    /// Game seconds at which the change happened.
    pub game_time: i64,
    /// The entity the event is about, as `kind:id` (`general:cao_cao`, `world:main`).
    pub aggregate: String,
}

/// What happened, with its payload. Serialized as `"type"` and `"payload"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "payload")]
pub enum EventKind {
    /// A new world was built from a scenario.
    WorldCreated {
        scenario: String,
        data_hash: String,
        start: GameDate,
    },
    /// The World was recovered from its last checkpoint after a restart; events after
    /// `last_seq` that clients may have seen live were never made durable.
    WorldRecovered {
        /// The last durable event before this one.
        last_seq: u64,
        /// The World's new incarnation (the `revision` of orders it writes).
        incarnation: u64,
        game_seconds: i64,
    },
    /// A command replayed after a recovery came to a different outcome than the one first
    /// reported; the order now carries the new revision.
    OrderRevised {
        order_id: String,
        player: String,
        revision: u64,
        status: crate::read_model::OrderStatus,
        /// The reason code, for a rejected or cancelled order.
        reason: Option<String>,
    },
    /// The calendar entered a new month.
    MonthBegan {
        year: i32,
        month: u8,
    },
    /// Armies met at a city.
    BattleStarted {
        battle: String,
        city: String,
        attacker: SideView,
        defender: SideView,
        /// Soldiers of the city's garrison fighting on the defender's side.
        garrison: u32,
    },
    /// A general joined a battle under way.
    BattleReinforced {
        battle: String,
        general: String,
        side: Side,
        soldiers: u32,
    },
    /// A battle ended; its casualties are back in the generals' troops and the garrison.
    BattleEnded {
        battle: String,
        city: String,
        winner: Side,
        reason: EndReason,
        /// Battle steps it lasted.
        steps: u32,
        /// Soldiers lost, by general id or `garrison`.
        casualties: BTreeMap<String, u32>,
        /// The simulation's final state hash: a replay of the battle reaches the same one.
        state_hash: String,
    },
    /// The World accepted a command: its cost is paid and its order started.
    CommandAccepted {
        order_id: String,
        player: Option<String>,
        general: Option<String>,
        command: CommandType,
    },
    /// The World rejected a command; nothing changed.
    CommandRejected {
        order_id: String,
        player: Option<String>,
        general: Option<String>,
        command: CommandType,
        reason: Reason,
        message: String,
    },
    /// An order's effect was applied.
    OrderCompleted {
        order_id: String,
        player: Option<String>,
        general: Option<String>,
        command: CommandType,
    },
    /// An order ended without its effect.
    OrderCancelled {
        order_id: String,
        player: Option<String>,
        general: String,
        command: CommandType,
        reason: Reason,
    },
    MarchStarted {
        general: String,
        from: String,
        to: String,
        path: Vec<String>,
        eta: i64,
    },
    /// A march stopped short of its destination, at `at`.
    MarchHalted {
        general: String,
        at: String,
        to: String,
        reason: Reason,
    },
    MarchArrived {
        general: String,
        city: String,
    },
    /// A city changed hands (`from` is null for a neutral city). What was left of its
    /// garrison is lost with it.
    CityCaptured {
        city: String,
        from: Option<String>,
        to: String,
        battle: Option<String>,
        garrison_lost: u32,
    },
    /// A RECRUIT was accepted: the city paid for the soldiers, who join when it completes.
    RecruitStarted {
        general: String,
        city: String,
        soldiers: u32,
        gold: i64,
        population: u32,
    },
    /// Recruits joined a general's troops.
    TroopsRecruited {
        general: String,
        soldiers: u32,
    },
    /// A nation's capital moved after its old capital fell.
    CapitalMoved {
        nation: String,
        city: String,
    },
    /// A nation lost its last city: its generals are ronin, its relations and cards gone.
    NationDestroyed {
        nation: String,
        by: Option<String>,
    },
    /// A general left a city that fell: to the nearest friendly city, or as a ronin (`to`
    /// null).
    GeneralRetreated {
        general: String,
        from: String,
        to: Option<String>,
    },
    /// A player's general entered the world.
    GeneralJoined {
        general: String,
        player: String,
        nation: Option<String>,
        city: String,
    },
    GeneralAppointed {
        general: String,
        position: PositionKind,
        city: Option<String>,
        by: String,
        /// Who held the card before and lost it.
        replaced: Option<String>,
    },
    GeneralDismissed {
        general: String,
        position: PositionKind,
        by: String,
    },
    WarDeclared {
        nation: String,
        against: String,
    },
    PeaceMade {
        nation: String,
        with: String,
    },
    /// Relations between two nations changed for another reason (a destroyed nation's are
    /// removed).
    RelationChanged {
        nation: String,
        other: String,
        relation: Option<Relation>,
    },
    TaxSet {
        nation: String,
        rate: u8,
    },
    /// Monthly taxes moved gold and rice from a nation's cities to its treasury.
    TaxesCollected {
        nation: String,
        gold: i64,
        rice: i64,
    },
    /// A game day's production and upkeep, summed over the world.
    DayEnded {
        day: i64,
        gold_produced: i64,
        rice_eaten: i64,
        soldiers_deserted: i64,
    },
    /// The yearly harvest filled the cities' granaries.
    HarvestGathered {
        rice: i64,
    },
    /// An offline player's general changed state: `protected`, `ai_delegate`, or neither.
    PresenceChanged {
        general: String,
        player: String,
        online: bool,
        protected: bool,
        ai_delegate: bool,
    },
    /// Designer data changed under a running World (docs/data-files.md#hot-reload): the data
    /// in force now has `data_hash`; `files` are the files that changed.
    AssetsReloaded {
        data_hash: String,
        files: Vec<String>,
    },
    /// An operator turned maintenance on (commands refused with `message`) or off.
    MaintenanceChanged {
        on: bool,
        message: Option<String>,
    },
    /// A client developer edited a sandbox world (docs/sandbox.md): what was asked, and what
    /// the general, city or nation holds now (for GIVE), or the clock now (for CLOCK).
    SandboxEdited {
        order_id: String,
        player: String,
        edit: crate::command::SandboxEdit,
        /// After a GIVE: the target's troops (a general's, or a city's garrison), gold and rice
        /// where it holds them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        troops: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gold: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rice: Option<i64>,
        /// After a CLOCK: whether the clock is stopped, and its speed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        paused: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        speed: Option<f64>,
    },
}

impl EventKind {
    /// The event's type name, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorldCreated { .. } => "WorldCreated",
            EventKind::WorldRecovered { .. } => "WorldRecovered",
            EventKind::OrderRevised { .. } => "OrderRevised",
            EventKind::MonthBegan { .. } => "MonthBegan",
            EventKind::BattleStarted { .. } => "BattleStarted",
            EventKind::BattleReinforced { .. } => "BattleReinforced",
            EventKind::BattleEnded { .. } => "BattleEnded",
            EventKind::CommandAccepted { .. } => "CommandAccepted",
            EventKind::CommandRejected { .. } => "CommandRejected",
            EventKind::OrderCompleted { .. } => "OrderCompleted",
            EventKind::OrderCancelled { .. } => "OrderCancelled",
            EventKind::MarchStarted { .. } => "MarchStarted",
            EventKind::MarchHalted { .. } => "MarchHalted",
            EventKind::MarchArrived { .. } => "MarchArrived",
            EventKind::CityCaptured { .. } => "CityCaptured",
            EventKind::RecruitStarted { .. } => "RecruitStarted",
            EventKind::TroopsRecruited { .. } => "TroopsRecruited",
            EventKind::CapitalMoved { .. } => "CapitalMoved",
            EventKind::NationDestroyed { .. } => "NationDestroyed",
            EventKind::GeneralRetreated { .. } => "GeneralRetreated",
            EventKind::GeneralJoined { .. } => "GeneralJoined",
            EventKind::GeneralAppointed { .. } => "GeneralAppointed",
            EventKind::GeneralDismissed { .. } => "GeneralDismissed",
            EventKind::WarDeclared { .. } => "WarDeclared",
            EventKind::PeaceMade { .. } => "PeaceMade",
            EventKind::RelationChanged { .. } => "RelationChanged",
            EventKind::TaxSet { .. } => "TaxSet",
            EventKind::TaxesCollected { .. } => "TaxesCollected",
            EventKind::DayEnded { .. } => "DayEnded",
            EventKind::HarvestGathered { .. } => "HarvestGathered",
            EventKind::PresenceChanged { .. } => "PresenceChanged",
            EventKind::SandboxEdited { .. } => "SandboxEdited",
            EventKind::AssetsReloaded { .. } => "AssetsReloaded",
            EventKind::MaintenanceChanged { .. } => "MaintenanceChanged",
        }
    }
}

/// The aggregate id of an entity: `kind:id`.
pub fn aggregate(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_type_and_payload() {
        let event = DomainEvent {
            seq: 7,
            kind: EventKind::MonthBegan {
                year: 190,
                month: 2,
            },
            game_time: 2_592_000,
            aggregate: aggregate("world", "main"),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "seq": 7,
                "type": "MonthBegan",
                "payload": {"year": 190, "month": 2},
                "game_time": 2_592_000,
                "aggregate": "world:main"
            })
        );
        let back: DomainEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        assert_eq!(event.kind.name(), "MonthBegan");
    }
}
