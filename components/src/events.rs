//! Domain events (SPEC 2.6): every state change of the World is told as a past-tense event
//! with a per-world monotonic sequence number. Systems emit them into the World's outbox;
//! the read side serves them and later the persistence layer makes them durable.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::{
    battle::{EndReason, Side, SideView},
    time::GameDate,
};

/// One domain event as clients and stores see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum EventKind {
    /// A new world was built from a scenario.
    WorldCreated {
        scenario: String,
        data_hash: String,
        start: GameDate,
    },
    /// The calendar entered a new month.
    MonthBegan { year: i32, month: u8 },
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
}

impl EventKind {
    /// The event's type name, as serialized.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::WorldCreated { .. } => "WorldCreated",
            EventKind::MonthBegan { .. } => "MonthBegan",
            EventKind::BattleStarted { .. } => "BattleStarted",
            EventKind::BattleReinforced { .. } => "BattleReinforced",
            EventKind::BattleEnded { .. } => "BattleEnded",
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
