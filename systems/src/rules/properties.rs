//! Property tests of the rules' invariants (docs/operations.md#testing) over random command
//! sequences on the `tiny` scenario: gold and troops change only through their defined sources
//! and sinks (as the World's own events account for them), no command is applied twice, command
//! points stay within their bounds, and every city has exactly one owner, an active nation (or
//! none).

use std::collections::HashMap;

use components::{
    events::{DomainEvent, EventKind},
    world::{City, General, Nation, NationStatus, Registry},
};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::tests::Game;

const PLAYERS: [&str; 3] = ["p0", "p1", "p2"];
const CITIES: [&str; 7] = [
    "north_gate",
    "hill_fort",
    "west_ford",
    "crossroads",
    "east_port",
    "river_town",
    "atlantis",
];
const NATIONS: [&str; 4] = ["north", "west", "east", "atlantis"];
const RULERS: [&str; 3] = ["bei_wang", "xi_wang", "dong_wang"];
const POSITIONS: [&str; 4] = ["chancellor", "grand_general", "corps_commander", "governor"];

#[derive(Clone, Debug)]
enum Step {
    Join {
        player: usize,
        nation: Option<usize>,
    },
    /// A player's command on its own general (or someone else's: `other`).
    Command {
        player: usize,
        id: usize,
        other: bool,
        kind: &'static str,
        args: Value,
    },
    /// The AI commanding a ruler.
    Ruler {
        ruler: usize,
        kind: &'static str,
        args: Value,
    },
    Advance {
        hours: i64,
    },
}

fn body() -> impl Strategy<Value = (&'static str, Value)> {
    prop_oneof![
        (0..CITIES.len()).prop_map(|c| ("MOVE", json!({"to": CITIES[c]}))),
        Just(("TRAIN", json!({}))),
        (1u32..3_000).prop_map(|a| ("RECRUIT", json!({"amount": a}))),
        prop_oneof![Just("agriculture"), Just("commerce"), Just("walls")]
            .prop_map(|k| ("BUILD", json!({"kind": k}))),
        (0..PLAYERS.len(), 0..POSITIONS.len(), 0..CITIES.len()).prop_map(|(t, p, c)| {
            let mut args = json!({"target": format!("g-{}", PLAYERS[t]), "position": POSITIONS[p]});
            if POSITIONS[p] == "governor" {
                args["city"] = json!(CITIES[c]);
            }
            ("APPOINT", args)
        }),
        (0..PLAYERS.len())
            .prop_map(|t| ("DISMISS", json!({"target": format!("g-{}", PLAYERS[t])}))),
        (0..NATIONS.len()).prop_map(|n| ("DECLARE_WAR", json!({"nation": NATIONS[n]}))),
        (0..NATIONS.len()).prop_map(|n| ("MAKE_PEACE", json!({"nation": NATIONS[n]}))),
        (0u8..=50).prop_map(|r| ("SET_TAX", json!({"rate": r}))),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => (0..PLAYERS.len(), proptest::option::of(0..3usize))
            .prop_map(|(player, nation)| Step::Join { player, nation }),
        6 => (0..PLAYERS.len(), 0..4usize, proptest::bool::weighted(0.1), body())
            .prop_map(|(player, id, other, (kind, args))| Step::Command { player, id, other, kind, args }),
        2 => (0..RULERS.len(), body()).prop_map(|(ruler, (kind, args))| Step::Ruler { ruler, kind, args }),
        3 => (1..30i64).prop_map(|hours| Step::Advance { hours }),
    ]
}

fn totals(game: &Game) -> (i64, i64) {
    let world = game.app.world();
    let registry = world.resource::<Registry>();
    let mut gold = 0;
    let mut troops = 0;
    for e in registry.cities.values() {
        let c = world.get::<City>(*e).unwrap();
        gold += c.gold;
        troops += i64::from(c.garrison);
    }
    for e in registry.nations.values() {
        gold += world.get::<Nation>(*e).unwrap().gold;
    }
    for e in registry.generals.values() {
        troops += i64::from(world.get::<General>(*e).unwrap().troops);
    }
    (gold, troops)
}

/// Gold and troops the events say entered (+) or left (-) the world.
fn accounted(events: &[DomainEvent], join_troops: i64) -> (i64, i64) {
    let (mut gold, mut troops) = (0, 0);
    for event in events {
        match &event.kind {
            EventKind::DayEnded {
                gold_produced,
                soldiers_deserted,
                ..
            } => {
                gold += gold_produced;
                troops -= soldiers_deserted;
            }
            EventKind::RecruitStarted { gold: paid, .. } => gold -= paid,
            EventKind::TroopsRecruited { soldiers, .. } => troops += i64::from(*soldiers),
            EventKind::BattleEnded { casualties, .. } => {
                troops -= casualties.values().map(|c| i64::from(*c)).sum::<i64>()
            }
            EventKind::CityCaptured { garrison_lost, .. } => troops -= i64::from(*garrison_lost),
            EventKind::GeneralJoined { .. } => troops += join_troops,
            _ => {}
        }
    }
    (gold, troops)
}

fn check_invariants(game: &Game) {
    let world = game.app.world();
    let registry = world.resource::<Registry>();
    for e in registry.generals.values() {
        let g = world.get::<General>(*e).unwrap();
        assert!(
            g.pcp <= g.pcp_max,
            "{}: PCP {:?} above {:?}",
            g.id,
            g.pcp,
            g.pcp_max
        );
        assert!(
            g.mcp <= g.mcp_max,
            "{}: MCP {:?} above {:?}",
            g.id,
            g.mcp,
            g.mcp_max
        );
    }
    for e in registry.cities.values() {
        let city = world.get::<City>(*e).unwrap();
        if let Some(owner) = &city.owner {
            let nation = world.get::<Nation>(registry.nations[owner]).unwrap();
            assert_eq!(
                nation.status,
                NationStatus::Active,
                "{} held by a dead nation",
                city.id
            );
        }
    }
    let mut accepted: HashMap<(String, String), usize> = HashMap::new();
    for event in &game.events {
        if let EventKind::CommandAccepted {
            order_id,
            player: Some(player),
            ..
        } = &event.kind
        {
            *accepted
                .entry((player.clone(), order_id.clone()))
                .or_default() += 1;
        }
    }
    for (key, n) in accepted {
        assert_eq!(n, 1, "{key:?} applied {n} times");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_commands(steps in proptest::collection::vec(step(), 1..40)) {
        let mut game = Game::new("tiny");
        let join_troops = game.app.world().resource::<crate::assets::Data>().balance.join.troops;
        for (i, step) in steps.into_iter().enumerate() {
            let before = totals(&game);
            let seen = game.events.len();
            match step {
                Step::Join { player, nation } => {
                    let mut args = json!({"name": PLAYERS[player]});
                    if let Some(n) = nation {
                        args["nation"] = json!(NATIONS[n]);
                    }
                    let player = PLAYERS[player];
                    game.command(Some(player), None, &format!("join-{i}"), "JOIN", args);
                }
                Step::Command { player, id, other, kind, args } => {
                    let general = if other {
                        format!("g-{}", PLAYERS[(player + 1) % PLAYERS.len()])
                    } else {
                        format!("g-{}", PLAYERS[player])
                    };
                    game.command(Some(PLAYERS[player]), Some(&general), &format!("c{id}"), kind, args);
                }
                Step::Ruler { ruler, kind, args } => {
                    game.command(None, Some(RULERS[ruler]), &format!("ai-{i}"), kind, args);
                }
                Step::Advance { hours } => game.advance(hours * 3_600, 1_800),
            }
            let after = totals(&game);
            let (gold, troops) = accounted(&game.events[seen..], join_troops);
            prop_assert_eq!(after.0 - before.0, gold, "gold after step {}", i);
            prop_assert_eq!(after.1 - before.1, troops, "troops after step {}", i);
            check_invariants(&game);
        }
    }
}
