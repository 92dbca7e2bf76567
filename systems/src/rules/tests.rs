//! The rules played on the `tiny` scenario: a World driven schedule by schedule, commands
//! sent through its bus, the outcome read from its state and its published read models.

use std::sync::Arc;

use bevy_app::App;
use components::{
    battle::Side,
    command::{Command, CommandBody, Inbound, Issuer, Reason},
    events::{DomainEvent, EventKind},
    read_model::{OrderStatus, ReadHandle, ReadModels},
    time::GameClock,
    world::{City, General, GeneralStatus, Nation, NationStatus, Registry},
};
use crossbeam_channel::Sender;
use serde_json::json;

use crate::{
    app::{AppSettings, build_app},
    battle::Battle,
    schedule::{Intake, Publish},
    spawn::WorldSettings,
};

pub struct Game {
    pub app: App,
    pub bus: Sender<Inbound>,
    pub read: ReadHandle,
    pub events: Vec<DomainEvent>,
    next_seq: u64,
}

pub fn assets() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

impl Game {
    /// A World of `scenario` without AI, so only the test's commands act.
    pub fn new(scenario: &str) -> Game {
        Self::with_ai(scenario, false)
    }

    pub fn with_ai(scenario: &str, ai: bool) -> Game {
        Self::with_settings(scenario, |settings| settings.ai = ai)
    }

    /// A World of `scenario` built with settings `edit` changed from the tests' defaults.
    pub fn with_settings(scenario: &str, edit: impl FnOnce(&mut AppSettings)) -> Game {
        let data = Arc::new(crate::assets::load(&assets(), scenario).unwrap());
        let read = ReadHandle::default();
        let (bus, inbox) = crossbeam_channel::unbounded();
        let mut settings = AppSettings::new(WorldSettings {
            name: "rules-test".into(),
            speed: 24.0,
        });
        settings.ai = false;
        edit(&mut settings);
        let app = build_app(data, &settings, read.clone(), Some(inbox));
        let mut game = Game {
            app,
            bus,
            read,
            events: Vec::new(),
            next_seq: 0,
        };
        game.publish();
        game
    }

    pub fn publish(&mut self) {
        self.app.world_mut().run_schedule(Publish);
        let models = self.read.load_full().unwrap();
        let last = self.events.last().map_or(0, |e| e.seq);
        self.events.extend(
            models
                .events_after(last, usize::MAX, None)
                .into_iter()
                .map(|e| (*e).clone()),
        );
    }

    pub fn models(&self) -> Arc<ReadModels> {
        self.read.load_full().unwrap()
    }

    /// Sends a command whose body is built, not parsed (a sandbox edit).
    pub fn send(&mut self, player: &str, id: &str, body: CommandBody) {
        self.next_seq += 1;
        let command = Command {
            id: id.to_string(),
            issuer: Issuer::Player(player.to_string()),
            general: None,
            body,
            log_seq: self.next_seq,
            entry: None,
        };
        self.bus.send(Inbound::Command(command)).unwrap();
        self.app.world_mut().run_schedule(Intake);
        self.publish();
    }

    pub fn command(
        &mut self,
        player: Option<&str>,
        general: Option<&str>,
        id: &str,
        kind: &str,
        args: serde_json::Value,
    ) {
        self.next_seq += 1;
        let command = Command {
            id: id.to_string(),
            issuer: player.map_or(Issuer::Ai, |p| Issuer::Player(p.to_string())),
            general: general.map(str::to_string),
            body: CommandBody::parse(kind, Some(args)).unwrap(),
            log_seq: self.next_seq,
            entry: None,
        };
        self.bus.send(Inbound::Command(command)).unwrap();
        self.app.world_mut().run_schedule(Intake);
        self.publish();
    }

    /// Runs strategy ticks of `step` game seconds until `seconds` have passed, stepping
    /// battles to the clock after each.
    pub fn advance(&mut self, seconds: i64, step: i64) {
        let mut left = seconds;
        while left > 0 {
            let s = step.min(left);
            left -= s;
            crate::driver::run_headless_tick(self.app.world_mut(), s);
            self.publish();
        }
    }

    pub fn now(&self) -> i64 {
        self.app.world().resource::<GameClock>().game_seconds
    }

    pub fn general(&self, id: &str) -> General {
        let world = self.app.world();
        let e = world.resource::<Registry>().generals[id];
        world.get::<General>(e).unwrap().clone()
    }

    pub fn city(&self, id: &str) -> City {
        let world = self.app.world();
        let e = world.resource::<Registry>().cities[id];
        world.get::<City>(e).unwrap().clone()
    }

    pub fn nation(&self, id: &str) -> Nation {
        let world = self.app.world();
        let e = world.resource::<Registry>().nations[id];
        world.get::<Nation>(e).unwrap().clone()
    }

    pub fn edit_general(&mut self, id: &str, edit: impl FnOnce(&mut General)) {
        let world = self.app.world_mut();
        let e = world.resource::<Registry>().generals[id];
        edit(&mut world.get_mut::<General>(e).unwrap());
    }

    pub fn edit_city(&mut self, id: &str, edit: impl FnOnce(&mut City)) {
        let world = self.app.world_mut();
        let e = world.resource::<Registry>().cities[id];
        edit(&mut world.get_mut::<City>(e).unwrap());
    }

    pub fn order(&self, player: &str, id: &str) -> components::read_model::OrderView {
        self.models().orders[player][id].view.clone()
    }

    pub fn count(&self, name: &str) -> usize {
        self.events.iter().filter(|e| e.kind.name() == name).count()
    }
}

fn join(game: &mut Game, player: &str, nation: Option<&str>) -> String {
    let args = match nation {
        Some(n) => json!({"name": player, "nation": n}),
        None => json!({"name": player}),
    };
    game.command(Some(player), None, &format!("join-{player}"), "JOIN", args);
    format!("g-{player}")
}

#[test]
fn join_creates_the_players_general_once() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let general = game.general(&id);
    assert_eq!(general.owner.as_deref(), Some("alice"));
    assert_eq!(general.nation.as_deref(), Some("north"));
    assert_eq!(general.city, "north_gate");
    let order = game.order("alice", "join-alice");
    assert_eq!(order.status, OrderStatus::Completed);
    assert_eq!(order.general_id.as_deref(), Some(id.as_str()));
    assert_eq!(game.count("GeneralJoined"), 1);

    game.command(
        Some("alice"),
        None,
        "join-again",
        "JOIN",
        json!({"name": "x"}),
    );
    let order = game.order("alice", "join-again");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert_eq!(order.reason.as_deref(), Some("already_joined"));

    let ronin = join(&mut game, "bob", None);
    let general = game.general(&ronin);
    assert_eq!(general.nation, None);
    assert_eq!(
        general.city, "crossroads",
        "a ronin starts in a neutral city"
    );
    assert_eq!(
        game.models().generals[ronin.as_str()].owner.as_deref(),
        Some("bob")
    );
}

#[test]
fn move_marches_along_the_road_and_arrives() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let pcp = game.general(&id).pcp;
    game.command(
        Some("alice"),
        Some(&id),
        "m1",
        "MOVE",
        json!({"to": "hill_fort"}),
    );
    let order = game.order("alice", "m1");
    assert_eq!(order.status, OrderStatus::Accepted);
    let view = game.models().generals[id.as_str()].clone();
    assert_eq!(view.status, GeneralStatus::Marching);
    let march = view.march.clone().unwrap();
    assert_eq!(march.path, vec!["north_gate", "hill_fort"]);
    // 120 li at 10 li per game hour.
    assert_eq!(march.eta, game.now() + 12 * 3600);
    assert_eq!(game.general(&id).pcp.0, pcp.0 - 2_000);
    assert_eq!(view.order.as_ref().unwrap().order_id, "m1");

    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    assert_eq!(game.order("alice", "t1").reason.as_deref(), Some("busy"));

    game.advance(12 * 3600 - 60, 60);
    assert_eq!(game.general(&id).status, GeneralStatus::Marching);
    game.advance(60, 60);
    let general = game.general(&id);
    assert_eq!(general.city, "hill_fort");
    assert_eq!(general.status, GeneralStatus::Idle);
    assert!(general.march.is_none());
    assert_eq!(game.order("alice", "m1").status, OrderStatus::Completed);
    assert_eq!(game.count("MarchArrived"), 1);
}

#[test]
fn train_and_recruit_take_effect_after_their_duration() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let before = game.general(&id);
    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    assert_eq!(game.order("alice", "t1").status, OrderStatus::Accepted);
    game.advance(3_599, 60);
    assert_eq!(game.general(&id).training, before.training);
    game.advance(60, 60);
    assert_eq!(game.general(&id).training, before.training + 10);
    assert_eq!(game.order("alice", "t1").status, OrderStatus::Completed);

    let city = game.city("north_gate");
    game.command(
        Some("alice"),
        Some(&id),
        "r1",
        "RECRUIT",
        json!({"amount": 500}),
    );
    assert_eq!(
        game.order("alice", "r1").status,
        OrderStatus::Accepted,
        "{:?}",
        game.order("alice", "r1")
    );
    let paid = game.city("north_gate");
    assert_eq!(paid.gold, city.gold - 250);
    assert_eq!(paid.population, city.population - 500);
    game.advance(7_200, 600);
    assert_eq!(game.general(&id).troops, before.troops + 500);
}

#[test]
fn rejections_change_nothing() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    game.edit_general(&id, |g| g.pcp.0 = 4_000);
    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    let order = game.order("alice", "t1");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert_eq!(order.reason.as_deref(), Some("insufficient_pcp"));
    assert_eq!(game.general(&id).pcp.0, 4_000);
    assert_eq!(game.general(&id).status, GeneralStatus::Idle);

    let cases = [
        ("x", "bei_wang", "TRAIN", json!({}), "not_owner"),
        ("y", "nobody", "TRAIN", json!({}), "unknown_general"),
        (
            "z",
            id.as_str(),
            "MOVE",
            json!({"to": "atlantis"}),
            "unknown_target",
        ),
        (
            "w",
            id.as_str(),
            "DECLARE_WAR",
            json!({"nation": "east"}),
            "no_authority",
        ),
        // East is at peace with North.
        (
            "p",
            id.as_str(),
            "MOVE",
            json!({"to": "east_port"}),
            "not_at_war",
        ),
    ];
    for (order, general, kind, args, reason) in cases {
        game.command(Some("alice"), Some(general), order, kind, args);
        assert_eq!(game.order("alice", order).reason.as_deref(), Some(reason));
    }

    // A rejection names what is missing: the card a command needs, the gold a city lacks.
    let order = game.order("alice", "w");
    let message = order.message.unwrap_or_default();
    assert!(
        message.contains("emperor, chancellor, grand_general") && message.contains("no position"),
        "{message}"
    );
    game.edit_general(&id, |g| g.mcp.0 = 100_000);
    game.edit_city("north_gate", |c| c.gold = 10);
    game.command(
        Some("alice"),
        Some(&id),
        "r",
        "RECRUIT",
        json!({"amount": 500}),
    );
    let order = game.order("alice", "r");
    assert_eq!(order.reason.as_deref(), Some("insufficient_gold"));
    assert!(
        order
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("has 10 gold"),
        "{order:?}"
    );
    assert_eq!(game.general(&id).mcp.0, 100_000);
    game.edit_city("north_gate", |c| {
        c.gold = 1_000_000;
        c.population = 100;
    });
    game.command(
        Some("alice"),
        Some(&id),
        "q",
        "RECRUIT",
        json!({"amount": 500}),
    );
    assert_eq!(
        game.order("alice", "q").reason.as_deref(),
        Some("insufficient_population")
    );
}

#[test]
fn a_repeated_id_is_applied_once_and_a_reused_one_conflicts() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let pcp = game.general(&id).pcp.0;
    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    assert_eq!(game.general(&id).pcp.0, pcp - 5_000);
    assert_eq!(game.count("CommandAccepted"), 2, "the JOIN and one TRAIN");
    game.command(
        Some("alice"),
        Some(&id),
        "t1",
        "MOVE",
        json!({"to": "hill_fort"}),
    );
    let last = game.events.last().unwrap();
    assert!(matches!(
        &last.kind,
        EventKind::CommandRejected {
            reason: Reason::IdConflict,
            ..
        }
    ));
    assert_eq!(game.order("alice", "t1").command_type, "TRAIN");
}

#[test]
fn a_march_into_an_enemy_city_fights_and_captures_it() {
    let mut game = Game::new("tiny");
    // West's only city, defended by a small garrison: its generals have no troops.
    for id in ["xi_wang", "xi_hu"] {
        if game
            .app
            .world()
            .resource::<Registry>()
            .generals
            .contains_key(id)
        {
            game.edit_general(id, |g| g.troops = 0);
        }
    }
    let west: Vec<String> = game
        .models()
        .generals
        .values()
        .filter(|g| g.nation.as_deref() == Some("west"))
        .map(|g| g.id.clone())
        .collect();
    for id in &west {
        game.edit_general(id, |g| g.troops = 0);
    }
    game.edit_city("west_ford", |c| c.garrison = 300);
    game.command(
        None,
        Some("bei_jiang"),
        "ai-1",
        "MOVE",
        json!({"to": "west_ford"}),
    );
    assert_eq!(game.general("bei_jiang").status, GeneralStatus::Marching);
    game.advance(16 * 3600, 600);
    assert_eq!(game.count("BattleStarted"), 1);
    game.advance(3 * 3600, 60);
    assert_eq!(
        game.count("BattleEnded"),
        1,
        "{:?}",
        game.events
            .iter()
            .map(|e| e.kind.name())
            .collect::<Vec<_>>()
    );
    let ended = game.events.iter().find_map(|e| match &e.kind {
        EventKind::BattleEnded { winner, .. } => Some(*winner),
        _ => None,
    });
    assert_eq!(ended, Some(Side::Attacker));
    assert_eq!(game.city("west_ford").owner.as_deref(), Some("north"));
    assert_eq!(game.general("bei_jiang").city, "west_ford");
    assert_eq!(game.count("CityCaptured"), 1);
    assert_eq!(game.nation("west").status, NationStatus::Destroyed);
    assert_eq!(game.count("NationDestroyed"), 1);
    for id in &west {
        assert_eq!(game.general(id).nation, None, "{id} is a ronin");
    }
    assert!(!game.nation("north").relations.contains_key("west"));
    assert!(
        game.app
            .world_mut()
            .query::<&Battle>()
            .iter(game.app.world())
            .next()
            .is_none()
    );
}

#[test]
fn command_points_regenerate_to_their_maximum() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    game.edit_general(&id, |g| g.pcp.0 = 0);
    game.advance(3_600, 24);
    // 0.5 points per game hour at multiplier 1.
    assert_eq!(game.general(&id).pcp.0, 500);
    game.advance(100 * 3_600, 3_600);
    let general = game.general(&id);
    assert_eq!(general.pcp, general.pcp_max);
}

#[test]
fn the_economy_produces_collects_and_feeds() {
    let mut game = Game::new("tiny");
    let city = game.city("north_gate");
    let nation = game.nation("north");
    game.advance(86_400, 3_600);
    assert_eq!(game.count("DayEnded"), 1);
    let after = game.city("north_gate");
    // 400 commerce × 0.05 × 200,000 / 100,000 = 40 gold a day.
    assert_eq!(after.gold, city.gold + 40);
    assert!(game.nation("north").rice < nation.rice, "generals ate");
    // The next month's first day brings taxes.
    game.advance(29 * 86_400, 3 * 3_600);
    assert!(game.count("TaxesCollected") >= 3);
    assert!(game.nation("north").gold > nation.gold);
}

#[test]
fn offline_players_are_protected_then_delegated() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    game.advance(7_200, 3_600);
    assert!(!game.general(&id).protected);
    game.advance(3_600, 3_600);
    assert!(game.general(&id).protected);
    assert!(game.models().generals[id.as_str()].protected);
    game.advance(86_400, 3_600);
    let general = game.general(&id);
    assert!(!general.protected && general.ai_delegate);
    // Activity brings the player back.
    game.bus
        .send(Inbound::Seen {
            player: "alice".into(),
        })
        .unwrap();
    game.app.world_mut().run_schedule(Intake);
    game.advance(60, 60);
    let general = game.general(&id);
    assert!(!general.protected && !general.ai_delegate);
}

/// Checks what must hold in every World, and that events are in sequence.
pub fn assert_consistent(game: &Game) {
    let problems = crate::rules::audit::problems(game.app.world());
    assert!(problems.is_empty(), "{problems:#?}");
    for pair in game.events.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "events out of sequence");
    }
}

#[test]
fn a_month_of_the_190_scenario_with_ai_stays_consistent() {
    let mut game = Game::with_ai("190", true);
    for _ in 0..6 {
        game.advance(5 * 86_400, 1_200);
        assert_consistent(&game);
    }
    assert!(game.count("CommandAccepted") > 100, "the AI acts");
}

#[test]
fn a_fault_while_deciding_rejects_the_command_as_internal_and_changes_nothing() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let before = game.general(&id);
    // Take away what deciding needs: the designer data.
    let data = game
        .app
        .world_mut()
        .remove_resource::<crate::assets::Data>()
        .unwrap();
    game.next_seq += 1;
    let seq = game.next_seq;
    game.bus
        .send(Inbound::Command(Command {
            id: "t1".into(),
            issuer: Issuer::Player("alice".into()),
            general: Some(id.clone()),
            body: CommandBody::parse("TRAIN", None).unwrap(),
            log_seq: seq,
            entry: None,
        }))
        .unwrap();
    game.app.world_mut().run_schedule(Intake);
    game.app.world_mut().insert_resource(data);
    game.publish();
    let order = game.order("alice", "t1");
    assert_eq!(order.status, OrderStatus::Rejected);
    assert_eq!(order.reason.as_deref(), Some("internal"));
    assert_eq!(game.general(&id), before);
    // The World goes on.
    game.command(Some("alice"), Some(&id), "t2", "TRAIN", json!({}));
    assert_eq!(game.order("alice", "t2").status, OrderStatus::Accepted);
}

/// Arms a fault in enacting the command `order_id` at `at`.
fn arm(game: &mut Game, order_id: &str, at: crate::rules::commands::FaultAfter) {
    game.app
        .world_mut()
        .insert_resource(crate::rules::commands::EnactFault {
            order_id: order_id.into(),
            at,
        });
}

fn disarm(game: &mut Game) {
    game.app
        .world_mut()
        .remove_resource::<crate::rules::commands::EnactFault>();
}

#[test]
fn a_fault_while_enacting_rejects_the_command_as_internal_and_undoes_what_it_wrote() {
    use crate::rules::{commands::FaultAfter, timeline::Timeline};
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    // Fill alice's window, so that the faulty command's order evicts older ones.
    for i in 0..100 {
        game.command(
            Some("alice"),
            None,
            &format!("x{i}"),
            "JOIN",
            json!({"name": "x"}),
        );
    }
    for at in [FaultAfter::Group, FaultAfter::Order, FaultAfter::FirstEvent] {
        let general = game.general(&id);
        let city = game.city("north_gate");
        let timeline = game.app.world().resource::<Timeline>().len();
        let stored = game
            .app
            .world()
            .resource::<crate::rules::orders::Orders>()
            .stored("alice");
        let events = game.events.len();
        let order_id = format!("r-{at:?}");
        arm(&mut game, &order_id, at);
        // RECRUIT writes the general, the city, the timeline, the window and events.
        game.command(
            Some("alice"),
            Some(&id),
            &order_id,
            "RECRUIT",
            json!({"amount": 100}),
        );
        disarm(&mut game);
        let order = game.order("alice", &order_id);
        assert_eq!(order.status, OrderStatus::Rejected, "{at:?}");
        assert_eq!(order.reason.as_deref(), Some("internal"), "{at:?}");
        assert_eq!(game.general(&id), general, "{at:?}");
        assert_eq!(game.city("north_gate"), city, "{at:?}");
        assert_eq!(
            game.app.world().resource::<Timeline>().len(),
            timeline,
            "{at:?}"
        );
        // The window is as before, but for the rejected order (which evicts the oldest).
        let now = game
            .app
            .world()
            .resource::<crate::rules::orders::Orders>()
            .stored("alice");
        assert_eq!(now[..now.len() - 1], stored[1..], "{at:?}");
        // Only the rejection was told, with the next number.
        let told: Vec<&str> = game.events[events..]
            .iter()
            .map(|e| e.kind.name())
            .collect();
        assert_eq!(told, ["CommandRejected"], "{at:?}");
        let seqs: Vec<u64> = game.events.iter().map(|e| e.seq).collect();
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{at:?}");
    }
    // The World goes on.
    game.command(Some("alice"), Some(&id), "t2", "TRAIN", json!({}));
    assert_eq!(game.order("alice", "t2").status, OrderStatus::Accepted);
}

#[test]
fn a_fault_while_enacting_a_join_leaves_no_general_behind() {
    use crate::rules::commands::FaultAfter;
    let mut game = Game::new("tiny");
    let generals = game.app.world().resource::<Registry>().generals.len();
    arm(&mut game, "join-alice", FaultAfter::FirstEvent);
    join(&mut game, "alice", Some("north"));
    disarm(&mut game);
    // The player was seen (intake counts every command), as before the JOIN was enacted.
    let presence = game
        .app
        .world()
        .resource::<crate::rules::presence::Presence>();
    assert_eq!(presence.last_seen("alice"), Some(game.now()));
    let order = game.order("alice", "join-alice");
    assert_eq!(order.reason.as_deref(), Some("internal"));
    let world = game.app.world_mut();
    assert_eq!(world.resource::<Registry>().generals.len(), generals);
    assert!(!world.resource::<Registry>().players.contains_key("alice"));
    let mut all = world.query::<&General>();
    assert!(all.iter(world).all(|g| g.id != "g-alice"));
    assert!(
        crate::rules::residents::generals_in(world, "north_gate")
            .iter()
            .all(|g| g.id != "g-alice")
    );
    // Joining again works.
    game.command(
        Some("alice"),
        None,
        "join-2",
        "JOIN",
        json!({"name": "alice", "nation": "north"}),
    );
    assert_eq!(game.order("alice", "join-2").status, OrderStatus::Completed);
}

#[test]
fn a_fault_while_enacting_an_appointment_restores_both_holders() {
    use crate::rules::commands::FaultAfter;
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let (emperor, governor, player) = (
        game.general("bei_wang"),
        game.general("bei_jiang"),
        game.general(&id),
    );
    arm(&mut game, "ai-appoint", FaultAfter::Order);
    game.command(
        None,
        Some("bei_wang"),
        "ai-appoint",
        "APPOINT",
        json!({"target": id, "position": "governor", "city": "hill_fort"}),
    );
    disarm(&mut game);
    assert_eq!(game.general("bei_wang"), emperor);
    assert_eq!(game.general("bei_jiang"), governor);
    assert_eq!(game.general(&id), player);
    assert_eq!(game.count("GeneralAppointed"), 0);
}

#[test]
fn the_order_feed_carries_every_order_even_those_evicted_before_their_player_was_published() {
    let mut game = Game::new("tiny");
    // A player never published before sends more commands in one pass than the window keeps.
    for i in 0..250 {
        game.next_seq += 1;
        let seq = game.next_seq;
        game.bus
            .send(Inbound::Command(Command {
                id: format!("z-{i}"),
                issuer: Issuer::Player("zed".into()),
                general: Some("g-zed".into()),
                body: CommandBody::parse("TRAIN", None).unwrap(),
                log_seq: seq,
                entry: None,
            }))
            .unwrap();
    }
    game.app.world_mut().run_schedule(Intake);
    game.publish();
    let models = game.models();
    let fed: std::collections::BTreeSet<String> = models
        .order_feed
        .iter()
        .filter(|c| &*c.player == "zed")
        .map(|c| c.record.view.order_id.clone())
        .collect();
    assert_eq!(fed.len(), 250, "every order, evicted or not");
    assert!(
        models
            .order_feed
            .iter()
            .all(|c| c.record.view.status == OrderStatus::Rejected)
    );
    assert_eq!(models.orders["zed"].len(), 100);
}

#[test]
fn intake_applies_at_most_its_cap_per_tick_in_order() {
    let mut game = Game::new("tiny");
    game.app
        .world_mut()
        .resource_mut::<crate::rules::intake::CommandInbox>()
        .max_per_tick = 2;
    for (i, player) in ["a1", "a2", "a3", "a4", "a5"].iter().enumerate() {
        game.bus
            .send(Inbound::Command(Command {
                id: format!("join-{i}"),
                issuer: Issuer::Player(player.to_string()),
                general: None,
                body: CommandBody::parse("JOIN", Some(json!({"name": player}))).unwrap(),
                log_seq: i as u64 + 1,
                entry: None,
            }))
            .unwrap();
    }
    let joined = |game: &Game| game.app.world().resource::<Registry>().players.len();
    game.app.world_mut().run_schedule(Intake);
    assert_eq!(joined(&game), 2);
    let registry = game.app.world().resource::<Registry>();
    assert!(registry.players.contains_key("a1") && registry.players.contains_key("a2"));
    game.app.world_mut().run_schedule(Intake);
    assert_eq!(joined(&game), 4);
    game.app.world_mut().run_schedule(Intake);
    assert_eq!(joined(&game), 5);
}

#[test]
fn an_ai_delegate_trains_for_an_offline_player() {
    let mut game = Game::with_ai("tiny", true);
    let id = join(&mut game, "alice", Some("north"));
    // Offline past the online window and the day of protection: the delegate takes over.
    game.advance(7_200 + 86_400 + 3_600, 600);
    assert!(game.general(&id).ai_delegate);
    game.advance(2 * 86_400, 600);
    let trained = game.events.iter().any(|e| {
        matches!(&e.kind, EventKind::CommandAccepted { general: Some(g), player: None, .. } if *g == id)
    });
    assert!(trained, "the delegate issued commands for {id}");
    assert!(
        !game
            .events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::MarchStarted { general, .. } if *general == id)),
        "a delegate never marches"
    );
}

#[test]
fn a_busy_defender_goes_back_to_its_order_after_a_battle() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let entity = game.app.world().resource::<Registry>().generals[id.as_str()];
    crate::rules::residents::set_city(game.app.world_mut(), entity, "hill_fort");
    let troops = game.general(&id).troops;
    game.command(
        Some("alice"),
        Some(&id),
        "r1",
        "RECRUIT",
        json!({"amount": 500}),
    );
    assert_eq!(game.order("alice", "r1").status, OrderStatus::Accepted);
    // A weak raid on the city: the defenders, busy or not, fight it off quickly.
    game.edit_general("xi_jiang", |g| g.troops = 100);
    let defenders: Vec<String> =
        crate::rules::hostility::defenders_in(game.app.world(), "hill_fort", "north")
            .into_iter()
            .map(|g| g.id.clone())
            .collect();
    assert!(defenders.contains(&id));
    crate::battle::spawn_battle(
        game.app.world_mut(),
        &crate::battle::BattleRequest {
            city: "hill_fort".into(),
            attackers: vec!["xi_jiang".into()],
            defenders,
            garrison: true,
        },
    )
    .unwrap();
    let ended = |game: &Game| game.count("BattleEnded") > 0;
    while !ended(&game) {
        game.advance(60, 60);
    }
    assert_eq!(
        game.order("alice", "r1").status,
        OrderStatus::Accepted,
        "the battle was short"
    );
    assert_eq!(game.general(&id).status, GeneralStatus::Busy);
    game.command(Some("alice"), Some(&id), "t1", "TRAIN", json!({}));
    assert_eq!(game.order("alice", "t1").reason.as_deref(), Some("busy"));
    game.advance(7_200, 600);
    assert_eq!(game.order("alice", "r1").status, OrderStatus::Completed);
    let general = game.general(&id);
    assert_eq!(general.status, GeneralStatus::Idle);
    let lost = game
        .events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::BattleEnded { casualties, .. } => casualties.get(&id).copied(),
            _ => None,
        })
        .unwrap_or(0);
    assert_eq!(general.troops, troops + 500 - lost);
}

#[test]
fn a_build_in_a_city_that_fell_is_cancelled() {
    let mut game = Game::new("tiny");
    let walls = game.city("hill_fort").walls;
    game.command(
        None,
        Some("bei_jiang"),
        "ai-build",
        "BUILD",
        json!({"kind": "walls"}),
    );
    assert_eq!(game.general("bei_jiang").status, GeneralStatus::Busy);
    let now = game.now();
    crate::rules::capture::capture_city(game.app.world_mut(), "hill_fort", "west", None, now);
    game.advance(14_400, 600);
    assert_eq!(game.city("hill_fort").walls, walls);
    assert!(game.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::OrderCancelled { order_id, reason: Reason::Captured, .. } if order_id == "ai-build"
    )));
    assert_eq!(game.general("bei_jiang").status, GeneralStatus::Idle);
}

#[test]
fn position_cards_give_authority_and_their_holders_change() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    let emperor = game.general("bei_wang");
    // The emperor makes the player governor of Hill Fort: its governor loses the card.
    game.command(
        None,
        Some("bei_wang"),
        "ai-appoint",
        "APPOINT",
        json!({"target": id, "position": "governor", "city": "hill_fort"}),
    );
    let general = game.general(&id);
    assert_eq!(
        general.position,
        Some(components::world::Position {
            kind: components::world::PositionKind::from_static("governor"),
            city: Some("hill_fort".into())
        })
    );
    assert_eq!(game.general("bei_jiang").position, None);
    assert_eq!(game.general("bei_wang").pcp.0, emperor.pcp.0 - 5_000);
    assert_eq!(game.count("GeneralAppointed"), 1);

    // A governor builds only in its own city.
    game.command(
        Some("alice"),
        Some(&id),
        "b1",
        "BUILD",
        json!({"kind": "walls"}),
    );
    assert_eq!(
        game.order("alice", "b1").reason.as_deref(),
        Some("no_authority")
    );
    let entity = game.app.world().resource::<Registry>().generals[id.as_str()];
    crate::rules::residents::set_city(game.app.world_mut(), entity, "hill_fort");
    game.command(
        Some("alice"),
        Some(&id),
        "b2",
        "BUILD",
        json!({"kind": "walls"}),
    );
    assert_eq!(
        game.order("alice", "b2").status,
        OrderStatus::Accepted,
        "{:?}",
        game.order("alice", "b2")
    );
    // But it may not declare war.
    game.command(
        Some("alice"),
        Some(&id),
        "w1",
        "DECLARE_WAR",
        json!({"nation": "east"}),
    );
    assert_eq!(
        game.order("alice", "w1").reason.as_deref(),
        Some("no_authority")
    );

    // The emperor declares war, makes peace and sets the tax, paying MCP for each.
    let mcp = game.general("bei_wang").mcp.0;
    game.command(
        None,
        Some("bei_wang"),
        "ai-war",
        "DECLARE_WAR",
        json!({"nation": "east"}),
    );
    assert_eq!(
        game.nation("north").relations["east"],
        components::world::Relation::War
    );
    assert_eq!(
        game.nation("east").relations["north"],
        components::world::Relation::War
    );
    game.command(
        None,
        Some("bei_wang"),
        "ai-peace",
        "MAKE_PEACE",
        json!({"nation": "west"}),
    );
    // MCP may not cover both: each is paid in full or rejected.
    let after = game.general("bei_wang").mcp.0;
    let peace = game.nation("north").relations["west"];
    match peace {
        components::world::Relation::Peace => assert_eq!(after, mcp - 60_000),
        _ => assert_eq!(after, mcp - 30_000),
    }
    game.edit_general("bei_wang", |g| g.mcp = g.mcp_max);
    game.command(
        None,
        Some("bei_wang"),
        "ai-tax",
        "SET_TAX",
        json!({"rate": 25}),
    );
    assert_eq!(game.nation("north").tax_rate, 25);

    // Dismissal takes the card away; the emperor's own card cannot be taken.
    game.edit_general("bei_wang", |g| g.pcp = g.pcp_max);
    game.command(
        None,
        Some("bei_wang"),
        "ai-dismiss",
        "DISMISS",
        json!({"target": id}),
    );
    assert_eq!(game.general(&id).position, None);
    assert_eq!(game.count("GeneralDismissed"), 1);
    game.command(
        None,
        Some("bei_mou"),
        "ai-coup",
        "DISMISS",
        json!({"target": "bei_wang"}),
    );
    assert!(game.general("bei_wang").position.is_some());
    assert!(game.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::CommandRejected { order_id, reason: Reason::NoAuthority, .. } if order_id == "ai-coup"
    )));
}

#[test]
fn a_march_that_may_no_longer_enter_halts_at_the_previous_city() {
    let mut game = Game::new("tiny");
    let id = join(&mut game, "alice", Some("north"));
    game.command(
        Some("alice"),
        Some(&id),
        "m1",
        "MOVE",
        json!({"to": "west_ford"}),
    );
    assert_eq!(
        game.general(&id).march.as_ref().unwrap().path,
        ["north_gate", "hill_fort", "west_ford"]
    );
    // Peace is made while the army is on the road.
    game.command(
        None,
        Some("bei_wang"),
        "ai-peace",
        "MAKE_PEACE",
        json!({"nation": "west"}),
    );
    assert_eq!(
        game.nation("north").relations["west"],
        components::world::Relation::Peace
    );
    game.advance(28 * 3_600, 600);
    let general = game.general(&id);
    assert_eq!(general.city, "hill_fort");
    assert!(general.march.is_none());
    assert_eq!(general.status, GeneralStatus::Idle);
    let order = game.order("alice", "m1");
    assert_eq!(
        (order.status, order.reason.as_deref()),
        (OrderStatus::Cancelled, Some("march_halted"))
    );
    assert!(game.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::MarchHalted { at, reason: Reason::NotAtWar, .. } if at == "hill_fort"
    )));
    assert_eq!(game.count("BattleStarted"), 0);
}

#[test]
fn a_city_defended_only_by_protected_generals_cannot_be_attacked() {
    let mut game = Game::new("tiny");
    let bob = join(&mut game, "bob", Some("west"));
    game.edit_city("west_ford", |c| c.garrison = 0);
    for id in ["xi_wang", "xi_jiang", "xi_gong"] {
        game.edit_general(id, |g| g.troops = 0);
    }
    // Bob goes offline: after the online window his general is protected for a game day.
    game.advance(7_200 + 600, 600);
    assert!(game.general(&bob).protected);
    let entity = game.app.world().resource::<Registry>().generals["bei_jiang"];
    game.command(
        None,
        Some("bei_jiang"),
        "ai-attack",
        "MOVE",
        json!({"to": "west_ford"}),
    );
    assert!(game.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::CommandRejected { order_id, reason: Reason::TargetProtected, .. } if order_id == "ai-attack"
    )));
    assert!(
        game.app
            .world()
            .get::<General>(entity)
            .unwrap()
            .march
            .is_none()
    );
}

#[test]
fn a_general_arriving_at_a_battle_joins_its_side() {
    let mut game = Game::new("tiny");
    let entity = game.app.world().resource::<Registry>().generals["bei_wei"];
    crate::rules::residents::set_city(game.app.world_mut(), entity, "hill_fort");
    game.command(
        None,
        Some("bei_jiang"),
        "ai-1",
        "MOVE",
        json!({"to": "west_ford"}),
    );
    game.advance(600, 600);
    game.command(
        None,
        Some("bei_wei"),
        "ai-2",
        "MOVE",
        json!({"to": "west_ford"}),
    );
    game.advance(15 * 3_600, 600);
    assert_eq!(game.count("BattleStarted"), 1);
    let reinforced = game.events.iter().find_map(|e| match &e.kind {
        EventKind::BattleReinforced { general, side, .. } => Some((general.clone(), *side)),
        _ => None,
    });
    assert_eq!(reinforced, Some(("bei_wei".to_string(), Side::Attacker)));
    assert_eq!(game.general("bei_wei").status, GeneralStatus::InBattle);
    assert_eq!(
        game.general("bei_wei").city,
        "hill_fort",
        "attackers wait where they came from"
    );
}

#[test]
fn stream_entries_are_applied_once_in_entry_order() {
    use components::stream::EntryId;
    let mut game = Game::new("tiny");
    let send = |player: &str, entry: EntryId| {
        game.bus
            .send(Inbound::Command(Command {
                id: format!("join-{entry}"),
                issuer: Issuer::Player(player.to_string()),
                general: None,
                body: CommandBody::parse("JOIN", Some(json!({"name": player}))).unwrap(),
                log_seq: 0,
                entry: Some(entry),
            }))
            .unwrap();
    };
    send("b1", EntryId::new(100, 0));
    send("b2", EntryId::new(100, 1));
    // Delivered again (a claimed entry the World already applied), and an older one.
    send("b2", EntryId::new(100, 1));
    send("b3", EntryId::new(99, 7));
    game.app.world_mut().run_schedule(Intake);
    game.publish();
    let world = game.app.world();
    let generals = &world.resource::<Registry>().generals;
    assert!(generals.contains_key("g-b1"));
    assert!(generals.contains_key("g-b2"));
    assert!(
        !generals.contains_key("g-b3"),
        "an entry below the applied one was applied"
    );
    assert_eq!(
        world.resource::<crate::rules::intake::AppliedEntry>().0,
        Some(EntryId::new(100, 1))
    );
    // The same id delivered twice is one order (the second never reached it).
    assert_eq!(
        game.order("b2", "join-100-1").status,
        OrderStatus::Completed
    );
}

#[test]
fn a_card_the_data_no_longer_defines_gives_nothing_and_may_be_taken_away() {
    let mut game = Game::new("tiny");
    // As after a restart on files without it: a corps commander holds an unknown card.
    let unknown = components::world::PositionKind::from_static("marshal");
    game.edit_general("bei_mou", |g| {
        g.position = Some(components::world::Position {
            kind: unknown,
            city: None,
        });
    });
    // It gives no power: its holder may not BUILD.
    game.edit_general("bei_mou", |g| g.mcp = g.mcp_max);
    game.command(
        None,
        Some("bei_mou"),
        "m-build",
        "BUILD",
        json!({"kind": "walls"}),
    );
    assert!(game.events.iter().any(|e| matches!(
        &e.kind,
        EventKind::CommandRejected { order_id, reason: Reason::NoAuthority, .. } if order_id == "m-build"
    )));
    // The ruler's card does not list it, and may still take it away.
    game.edit_general("bei_wang", |g| g.pcp = g.pcp_max);
    game.command(
        None,
        Some("bei_wang"),
        "m-dismiss",
        "DISMISS",
        json!({"target": "bei_mou"}),
    );
    assert_eq!(game.general("bei_mou").position, None);
}
