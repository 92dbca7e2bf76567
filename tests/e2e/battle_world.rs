//! Battles inside the World: started through the World as the rules will start them, stepped
//! by the battle schedule at the strategy clock's pace, the same at any speed, and served to
//! clients over HTTP.

use std::{collections::BTreeMap, time::Duration};

use components::{
    battle::{BattleStatus, Side},
    events::{DomainEvent, EventKind},
    read_model::ReadModels,
    world::{City, General, GeneralStatus, Registry},
};
use systems::{
    battle::{self, Battle, BattleError, BattleRequest},
    driver::TickRates,
};

use crate::{clock::Harness, support::get};

/// The west takes Hill Fort from the north: two western generals against its governor and
/// garrison behind walls of level 4; the north's grand general arrives later.
fn request() -> BattleRequest {
    BattleRequest {
        city: "hill_fort".into(),
        attackers: vec!["xi_jiang".into(), "xi_gong".into()],
        defenders: vec!["bei_jiang".into()],
        garrison: true,
    }
}

fn general(h: &Harness, id: &str) -> General {
    let world = h.app.world();
    let entity = world.resource::<Registry>().generals[id];
    world.get::<General>(entity).unwrap().clone()
}

fn garrison(h: &Harness, city: &str) -> u32 {
    let world = h.app.world();
    let entity = world.resource::<Registry>().cities[city];
    world.get::<City>(entity).unwrap().garrison
}

fn events(models: &ReadModels) -> Vec<DomainEvent> {
    models.events.iter().map(|e| (**e).clone()).collect()
}

struct Fought {
    ended: EventKind,
    troops: BTreeMap<String, u32>,
    garrison: u32,
    owner: Option<String>,
    events: Vec<String>,
}

/// Fights the battle at `speed` with the north's reinforcement arriving at game second 240,
/// pumping the driver every 50 ms of real time; checks the clock never runs more than two
/// strategy ticks ahead of the battle.
fn fight(speed: f64) -> Fought {
    let mut h = Harness::new(TickRates {
        speed,
        ..TickRates::default()
    });
    h.driver.pump(h.app.world_mut());
    let id = battle::spawn_battle(h.app.world_mut(), &request()).unwrap();
    assert_eq!(id, "b-hill_fort-0");
    for general in ["xi_jiang", "xi_gong", "bei_jiang"] {
        assert_eq!(self::general(&h, general).status, GeneralStatus::InBattle);
    }
    let max_step = h.driver.max_step();
    let mut joined = false;
    let mut waited = false;
    for _ in 0..200_000 {
        if !joined && h.game_seconds() >= 240 {
            let step = battle::join_battle(h.app.world_mut(), &id, "bei_wei", Side::Defender, 240)
                .unwrap();
            assert_eq!(step, 600, "the step of game second 240");
            joined = true;
        }
        h.clock.advance(Duration::from_millis(50));
        let pass = h.driver.pump(h.app.world_mut());
        waited |= pass.waited_for_battles;
        let world = h.app.world_mut();
        let battle_time = world
            .query::<&Battle>()
            .iter(world)
            .next()
            .map(Battle::game_time);
        match battle_time {
            Some(at) => assert!(
                h.game_seconds() <= at + 3 * max_step,
                "the clock ran ahead of the battle: {} vs {at}",
                h.game_seconds()
            ),
            None => break,
        }
    }
    assert!(joined, "the battle ended before the reinforcement came");
    // Whether the clock had to wait depends on how fast this machine steps the battle; what
    // must hold either way is checked above: it never ran more than two ticks ahead.
    let _ = waited;
    let models = h.published();
    let events = events(&models);
    let ended = events
        .iter()
        .find(|e| e.kind.name() == "BattleEnded")
        .expect("BattleEnded")
        .kind
        .clone();
    let view = &models.battles[id.as_str()];
    assert_eq!(view.status, BattleStatus::Finished);
    assert!(view.winner.is_some() && view.ended_at.is_some());
    assert_eq!(models.world.battles_active, 0);
    assert!(!models.frames.contains_key(id.as_str()));
    let troops = ["xi_jiang", "xi_gong", "bei_jiang", "bei_wei"]
        .iter()
        .map(|g| {
            let general = general(&h, g);
            assert_eq!(general.status, GeneralStatus::Idle, "{g} after the battle");
            (g.to_string(), general.troops)
        })
        .collect();
    Fought {
        ended,
        troops,
        garrison: garrison(&h, "hill_fort"),
        owner: {
            let world = h.app.world();
            let entity = world.resource::<Registry>().cities["hill_fort"];
            world.get::<City>(entity).unwrap().owner.clone()
        },
        events: events
            .iter()
            .filter(|e| e.aggregate == format!("battle:{id}"))
            .map(|e| e.kind.name().to_string())
            .collect(),
    }
}

#[test]
fn a_battle_in_the_world_ends_the_same_at_any_speed() {
    let slow = fight(24.0);
    let fast = fight(2_400.0);
    assert_eq!(slow.ended, fast.ended);
    assert_eq!(slow.troops, fast.troops);
    assert_eq!(slow.garrison, fast.garrison);
    assert_eq!(
        slow.events,
        vec!["BattleStarted", "BattleReinforced", "BattleEnded"]
    );
    assert_eq!(fast.events, slow.events);

    // The survivors are back with their generals and the garrison.
    let EventKind::BattleEnded {
        casualties, steps, ..
    } = &slow.ended
    else {
        unreachable!()
    };
    assert!(*steps > 600);
    let brought = [
        ("xi_jiang", 5_000),
        ("xi_gong", 3_000),
        ("bei_jiang", 5_000),
        ("bei_wei", 4_000),
    ];
    for (general, soldiers) in brought {
        assert_eq!(
            slow.troops[general] + casualties[general],
            soldiers,
            "{general}"
        );
    }
    // The attackers won: the city fell, and with it what was left of its garrison.
    let EventKind::BattleEnded { winner, .. } = &slow.ended else {
        unreachable!()
    };
    assert_eq!(*winner, Side::Attacker);
    assert!(casualties["garrison"] < 1_500);
    assert_eq!(slow.garrison, 0);
    assert_eq!(slow.owner.as_deref(), Some("west"));
}

#[test]
fn starting_a_battle_checks_its_request() {
    let mut h = Harness::new(TickRates::default());
    let world = h.app.world_mut();
    let bad = |world: &mut bevy_ecs::world::World, edit: fn(&mut BattleRequest)| {
        let mut request = request();
        edit(&mut request);
        battle::spawn_battle(world, &request).unwrap_err()
    };
    assert_eq!(
        bad(world, |r| r.city = "atlantis".into()),
        BattleError::UnknownCity("atlantis".into())
    );
    assert_eq!(
        bad(world, |r| r.attackers.push("nobody".into())),
        BattleError::UnknownGeneral("nobody".into())
    );
    assert_eq!(
        bad(world, |r| {
            r.defenders.clear();
            r.garrison = false;
        }),
        BattleError::NoTroops(Side::Defender)
    );
    let id = battle::spawn_battle(world, &request()).unwrap();
    assert_eq!(
        bad(world, |_| {}),
        BattleError::AlreadyActive("hill_fort".into())
    );
    let mut elsewhere = request();
    elsewhere.city = "crossroads".into();
    elsewhere.garrison = false;
    elsewhere.defenders = vec!["you_xia".into()];
    assert_eq!(
        battle::spawn_battle(world, &elsewhere).unwrap_err(),
        BattleError::InBattle("xi_jiang".into())
    );
    assert_eq!(
        battle::join_battle(world, "b-nowhere-0", "bei_wei", Side::Defender, 0).unwrap_err(),
        BattleError::UnknownBattle("b-nowhere-0".into())
    );
    assert_eq!(
        battle::join_battle(world, &id, "xi_gong", Side::Attacker, 0).unwrap_err(),
        BattleError::InBattle("xi_gong".into())
    );
}

#[test]
fn battles_are_served_over_http_while_they_last_and_after() {
    let mut h = Harness::new(TickRates {
        speed: 240.0,
        ..TickRates::default()
    });
    h.driver.pump(h.app.world_mut());
    let id = battle::spawn_battle(h.app.world_mut(), &request()).unwrap();
    h.run_for(Duration::from_secs(2), Duration::from_millis(50));
    let server = crate::support::InProcess::serve(h.read.clone());

    let list = get(&server.url("/api/battles"));
    assert_eq!(list.status, 200);
    assert_eq!(list.json[0]["id"], id.as_str());
    let view = get(&server.url(&format!("/api/battles/{id}"))).json;
    assert_eq!(view["status"], "active");
    assert_eq!(view["city"], "hill_fort");
    assert_eq!(view["attacker"]["nation"], "west");
    assert_eq!(view["defender"]["nation"], "north");
    assert_eq!(
        view["attacker"]["generals"],
        serde_json::json!(["xi_jiang", "xi_gong"])
    );
    assert!(view["units_alive"]["attacker"].as_u64().unwrap() > 0);
    assert!(view["winner"].is_null() && view["ended_at"].is_null());
    let frame = get(&server.url(&format!("/api/battles/{id}/frame"))).json;
    assert_eq!(frame["battle"], id.as_str());
    assert!(frame["tick"].as_u64().unwrap() > 0);
    let units = frame["units"].as_array().unwrap();
    let groups: Vec<&str> = frame["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(
        groups.contains(&"xi_jiang") && groups.contains(&"garrison"),
        "{groups:?}"
    );
    assert_eq!(
        units.len() as u64,
        view["units_alive"]["attacker"].as_u64().unwrap()
            + view["units_alive"]["defender"].as_u64().unwrap()
    );
    for unit in units {
        let unit = unit.as_array().unwrap();
        assert_eq!(unit.len(), 7, "[id, side, kind, x, y, hp, group]");
        assert!(unit[1] == 0 || unit[1] == 1);
        // Whose soldiers: a general of the unit's side, or the defenders' garrison.
        let group = groups[unit[6].as_u64().unwrap() as usize];
        let side = if unit[1] == 0 { "attacker" } else { "defender" };
        assert!(
            group == "garrison" && side == "defender"
                || view[side]["generals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g == group),
            "{unit:?} of {group}"
        );
        assert!(["infantry", "cavalry", "archer"].contains(&unit[2].as_str().unwrap()));
        assert!(unit[3].is_number() && unit[4].is_number() && unit[5].as_u64().is_some());
    }
    assert_eq!(
        get(&server.url("/api/battles?status=finished")).json,
        serde_json::json!([])
    );
    assert_eq!(get(&server.url("/api/battles?status=won")).status, 400);
    assert_eq!(get(&server.url("/api/battles/b-none-1")).status, 404);
    // A battle under way is recorded as it stands, and replays to the recorded step's hash.
    let live = get(&server.url(&format!("/api/battles/{id}/recording")));
    assert_eq!(live.status, 200, "{}", live.text);
    assert!(live.json["outcome"].is_null(), "{}", live.json["outcome"]);
    assert!(live.json["steps"].as_u64().unwrap() > 0);
    let dir = tempfile::tempdir().unwrap();
    let live_file = dir.path().join("live.json");
    std::fs::write(&live_file, &live.text).unwrap();
    let out = crate::support::run(&["battle", "run", live_file.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("no winner yet") && stdout.contains("matches the recording"),
        "{stdout}"
    );
    assert_eq!(
        view["data_hash"],
        get(&server.url("/api/world")).json["data_hash"]
    );

    // Fight it out; the finished battle stays readable, its frames go.
    for _ in 0..20_000 {
        h.clock.advance(Duration::from_millis(50));
        h.driver.pump(h.app.world_mut());
        if h.published().battles[id.as_str()].status == BattleStatus::Finished {
            break;
        }
    }
    let finished = get(&server.url("/api/battles?status=finished")).json;
    assert_eq!(finished[0]["id"], id.as_str());
    assert!(finished[0]["winner"].is_string());
    assert_eq!(
        get(&server.url("/api/battles?status=active")).json,
        serde_json::json!([])
    );
    let gone = get(&server.url(&format!("/api/battles/{id}/frame")));
    assert_eq!(gone.status, 404);
    assert!(
        gone.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has ended")
    );
    assert_eq!(get(&server.url("/api/world")).json["battles_active"], 0);

    // Its recording replays to the same end with `tianxia battle run`.
    let recording = get(&server.url(&format!("/api/battles/{id}/recording")));
    assert_eq!(recording.status, 200, "{}", recording.text);
    assert_eq!(recording.json["battle"], id.as_str());
    let ended = events(&h.published())
        .into_iter()
        .find_map(|e| match e.kind {
            EventKind::BattleEnded {
                battle, state_hash, ..
            } if battle == id => Some(state_hash),
            _ => None,
        })
        .expect("BattleEnded");
    assert_eq!(recording.json["state_hash"], ended.as_str());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("battle.json");
    std::fs::write(&file, &recording.text).unwrap();
    let out = crate::support::run(&["battle", "run", file.to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("matches the recording"), "{stdout}");

    // Under the same data, `--assets` says so and still matches; under changed numbers it
    // says plainly which, and fights the battle again under them.
    let file = file.to_str().unwrap();
    let shipped = crate::support::assets();
    let same = crate::support::run(
        &["battle", "run", file, "--assets", shipped.to_str().unwrap()],
        &[],
    );
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "{stdout}");
    assert!(stdout.contains("is the recording's"), "{stdout}");
    assert!(stdout.contains("matches the recording"), "{stdout}");
    let changed = tempfile::tempdir().unwrap();
    crate::support::copy_dir(&shipped, changed.path());
    let troops = changed.path().join("troops.toml");
    let text = std::fs::read_to_string(&troops).unwrap();
    std::fs::write(&troops, text.replacen("attack = 3.0", "attack = 3.5", 1)).unwrap();
    let other = crate::support::run(
        &[
            "battle",
            "run",
            file,
            "--assets",
            changed.path().to_str().unwrap(),
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&other.stdout);
    assert!(other.status.success(), "{stdout}");
    assert!(
        stdout.contains("differs from the recording's in 1 of the battle's numbers")
            && stdout.contains("troops.toml [infantry] attack: 3.0 → 3.5")
            && stdout.contains("the recording ended: winner"),
        "{stdout}"
    );
    // Data that lacks a type the battle's groups lead cannot fight it: it says so.
    let text = std::fs::read_to_string(&troops).unwrap();
    let without = text.replace("[infantry]", "[foot]");
    std::fs::write(&troops, without).unwrap();
    let balance = changed.path().join("balance.toml");
    let text = std::fs::read_to_string(&balance).unwrap();
    std::fs::write(&balance, text.replace("= \"infantry\"", "= \"foot\"")).unwrap();
    let lacking = crate::support::run(
        &[
            "battle",
            "run",
            file,
            "--assets",
            changed.path().to_str().unwrap(),
        ],
        &[],
    );
    let stderr = String::from_utf8_lossy(&lacking.stderr);
    assert_eq!(lacking.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot be fought again") && stderr.contains("lead infantry"),
        "{stderr}"
    );
}

#[test]
fn the_battles_list_comes_a_page_at_a_time() {
    let mut h = Harness::new(TickRates {
        speed: 240.0,
        ..TickRates::default()
    });
    h.driver.pump(h.app.world_mut());
    let first = battle::spawn_battle(h.app.world_mut(), &request()).unwrap();
    let second = battle::spawn_battle(
        h.app.world_mut(),
        &BattleRequest {
            city: "crossroads".into(),
            attackers: vec!["xi_wang".into()],
            defenders: vec![],
            garrison: true,
        },
    )
    .unwrap();
    h.run_for(Duration::from_millis(200), Duration::from_millis(50));
    let server = crate::support::InProcess::serve(h.read.clone());

    let all = get(&server.url("/api/battles"));
    assert_eq!(all.status, 200, "{}", all.text);
    assert!(!all.headers.contains_key("link"));
    let mut ids = [first, second];
    ids.sort();
    let page = get(&server.url("/api/battles?status=active&limit=1"));
    assert_eq!(page.json.as_array().unwrap().len(), 1);
    assert_eq!(page.json[0]["id"], ids[0].as_str());
    let link = page.headers["link"].clone();
    assert_eq!(
        link,
        format!(
            "</api/battles?limit=1&after={}&status=active>; rel=\"next\"",
            ids[0]
        )
    );
    let path = link.trim_start_matches('<').split('>').next().unwrap();
    let next = get(&server.url(path));
    assert_eq!(next.json.as_array().unwrap().len(), 1);
    assert_eq!(next.json[0]["id"], ids[1].as_str());
    assert!(!next.headers.contains_key("link"));
    for bad in ["limit=0", "limit=1001", "after=Not%20An%20Id"] {
        let reply = get(&server.url(&format!("/api/battles?{bad}")));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}
