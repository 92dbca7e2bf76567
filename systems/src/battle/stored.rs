//! A battle as its stores keep it (docs/storage.md#battles): its sides and setup and the
//! steps it has run, from which the simulation is rebuilt step for step (deterministic on the
//! same build, docs/rules.md#determinism-and-recordings).

use components::{battle::SideView, persist::EntityState};
use serde::{Deserialize, Serialize};
use tracing::warn;

use super::{Battle, record::hash_hex, setup::BattleSetup, sim::BattleSim};

/// A battle under way as stored: enough to rebuild its simulation step for step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredBattle {
    id: String,
    city: String,
    attacker: SideView,
    defender: SideView,
    garrison: u32,
    started_at: i64,
    /// The JSON of the [`BattleSetup`] (as text: its seed uses all 64 bits, which not every
    /// store keeps as a number).
    setup: String,
    steps: u32,
    state_hash: String,
    /// The designer data it began under (absent in battles stored before it was kept).
    #[serde(default)]
    data_hash: String,
}

impl StoredBattle {
    /// The battle as stored.
    pub fn of(battle: &Battle) -> StoredBattle {
        StoredBattle {
            id: battle.id.clone(),
            city: battle.city.clone(),
            attacker: battle.attacker.clone(),
            defender: battle.defender.clone(),
            garrison: battle.garrison,
            started_at: battle.started_at,
            setup: serde_json::to_string(battle.sim.setup()).unwrap_or_default(),
            steps: battle.sim.steps(),
            data_hash: battle.data_hash.clone(),
            state_hash: hash_hex(battle.sim.state_hash()),
        }
    }

    /// As a snapshot's state.
    pub fn state(&self) -> EntityState {
        EntityState::Battle(serde_json::to_value(self).unwrap_or_default())
    }

    /// From a snapshot's state; `(id, why)` if it cannot be read.
    pub fn from_state(value: serde_json::Value) -> Result<StoredBattle, (String, String)> {
        serde_json::from_value(value).map_err(|e| ("?".to_string(), e.to_string()))
    }

    /// The battle rebuilt by replaying its steps; `(id, why)` if its setup cannot be.
    pub fn rebuild(self) -> Result<Battle, (String, String)> {
        let id = self.id.clone();
        let fail = |message: String| (id.clone(), message);
        let setup: BattleSetup =
            serde_json::from_str(&self.setup).map_err(|e| fail(e.to_string()))?;
        let mut sim = BattleSim::new(setup).map_err(|e| fail(e.to_string()))?;
        while sim.steps() < self.steps && sim.outcome().is_none() {
            sim.step();
        }
        let hash = hash_hex(sim.state_hash());
        if hash != self.state_hash || sim.steps() != self.steps {
            // Another build steps differently: the battle goes on from where this one got.
            warn!(
                battle = %id,
                steps = self.steps,
                reached = sim.steps(),
                hash,
                stored = %self.state_hash,
                "a stored battle replayed to another state; it goes on from the replayed one"
            );
        }
        Ok(Battle {
            id: self.id,
            city: self.city,
            attacker: self.attacker,
            defender: self.defender,
            garrison: self.garrison,
            started_at: self.started_at,
            data_hash: self.data_hash,
            sim: Box::new(sim),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use components::{battle::Side, world::TroopType};

    use super::*;
    use crate::battle::setup::{BattleParams, GroupSetup, field_battle};

    /// A battle joined by a reinforcement after `join_after` steps, stored and rebuilt.
    fn stored_and_rebuilt(join_after: u32) -> (Battle, Battle) {
        let rules = crate::assets::load_rules_only(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"),
        )
        .unwrap();
        let params = BattleParams::from_balance(&rules.balance.battle);
        let mut sim = BattleSim::new(field_battle(200, 7, &params, &rules.troops)).unwrap();
        for _ in 0..join_after {
            sim.step();
        }
        sim.add_group(GroupSetup {
            id: "late".into(),
            side: Side::Defender,
            troop_type: TroopType::INFANTRY,
            soldiers: 1_500,
            leadership: 60,
            training: 60,
            morale: 80,
            join_step: 0,
        })
        .unwrap();
        for _ in 0..120 {
            sim.step();
        }
        let side = || SideView {
            nation: None,
            generals: vec![],
        };
        let battle = Battle {
            id: "b".into(),
            city: "c".into(),
            attacker: side(),
            defender: side(),
            garrison: 0,
            started_at: 0,
            data_hash: "test".into(),
            sim: Box::new(sim),
        };
        let EntityState::Battle(state) = StoredBattle::of(&battle).state() else {
            unreachable!()
        };
        let rebuilt = StoredBattle::from_state(state).unwrap().rebuild().unwrap();
        (battle, rebuilt)
    }

    #[test]
    fn a_battle_reinforced_before_its_first_step_rebuilds_to_its_state() {
        // Joined in the tick the battle began (several marches arriving together), and later.
        for join_after in [0, 25] {
            let (battle, rebuilt) = stored_and_rebuilt(join_after);
            assert_eq!(rebuilt.sim.steps(), battle.sim.steps());
            assert_eq!(
                rebuilt.sim.state_hash(),
                battle.sim.state_hash(),
                "joined after {join_after} steps"
            );
        }
    }
}
