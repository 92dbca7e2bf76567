//! Sieges with the shipped data: how an attacking army fares against defenders behind walls.

use std::path::Path;

use components::{battle::Side, world::TroopType};

use super::{
    setup::{BattleParams, BattleSetup, GroupSetup},
    sim::BattleSim,
};

fn rules() -> crate::assets::RulesData {
    crate::assets::load_rules_only(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets"))
        .unwrap()
}

fn siege(
    attackers: &[(TroopType, u32)],
    defender: Option<(TroopType, u32)>,
    garrison: u32,
    walls: u32,
    seed: u64,
) -> Side {
    let rules = rules();
    let params = BattleParams::from_balance(&rules.balance.battle);
    let b = &rules.balance.battle;
    let mut groups: Vec<GroupSetup> = attackers
        .iter()
        .enumerate()
        .map(|(i, (t, n))| GroupSetup {
            id: format!("a{i}"),
            side: Side::Attacker,
            troop_type: *t,
            soldiers: *n,
            leadership: 70,
            training: 60,
            morale: 75,
            join_step: 0,
        })
        .collect();
    if let Some((t, n)) = defender {
        groups.push(GroupSetup {
            id: "d".into(),
            side: Side::Defender,
            troop_type: t,
            soldiers: n,
            leadership: 70,
            training: 60,
            morale: 75,
            join_step: 0,
        });
    }
    groups.push(GroupSetup {
        id: "garrison".into(),
        side: Side::Defender,
        troop_type: TroopType::INFANTRY,
        soldiers: garrison,
        leadership: b.garrison_leadership as u8,
        training: b.garrison_training as u8,
        morale: b.garrison_morale as u8,
        join_step: 0,
    });
    let mut sim = BattleSim::new(BattleSetup {
        seed,
        walls,
        params,
        troops: rules.troops.clone(),
        groups,
    })
    .unwrap();
    while sim.outcome().is_none() {
        sim.step();
    }
    sim.outcome().unwrap().winner
}

/// Who wins each of `seeds` sieges of `defenders` soldiers (1,000 of them the garrison, the
/// rest a general's) by `ratio` times as many attackers.
fn winners(
    attacker: TroopType,
    defender: TroopType,
    walls: u32,
    ratio: u32,
    seeds: u64,
) -> Vec<Side> {
    let defenders = 3_000;
    (0..seeds)
        .map(|seed| {
            siege(
                &[(attacker, defenders * ratio)],
                Some((defender, defenders - 1_000)),
                1_000,
                walls,
                seed,
            )
        })
        .collect()
}

/// Walls are worth holding and still fall to superior numbers (docs/rules.md#walls-and-gates):
/// behind level-4 walls an equal army holds, and three times its numbers take the city, also
/// when the defenders are archers.
#[test]
fn walls_hold_against_equal_numbers_and_fall_to_three_times_as_many() {
    for defender in [TroopType::INFANTRY, TroopType::ARCHER] {
        assert_eq!(
            winners(TroopType::INFANTRY, defender, 4, 1, 2),
            [Side::Defender; 2],
            "{defender:?} behind walls against as many"
        );
        assert_eq!(
            winners(TroopType::INFANTRY, defender, 4, 3, 2),
            [Side::Attacker; 2],
            "{defender:?} behind walls against three times as many"
        );
    }
}
