//! Sandbox edits on `tiny` (docs/sandbox.md): what GIVE, TELEPORT and CLOCK change and
//! refuse, that only a sandbox world takes them, that a fault undoes a teleport in the index
//! of residents too, and that a checkpoint carries the sandbox's clock.

use components::{
    command::{ClockArgs, CommandBody, GiveArgs, SandboxEdit, TeleportArgs},
    events::EventKind,
    read_model::OrderStatus,
    world::{GeneralStatus, Sandbox},
};

use super::{residents::generals_in, tests::Game};

fn sandbox() -> Game {
    Game::with_settings("tiny", |settings| settings.sandbox = true)
}

fn edit(game: &mut Game, id: &str, edit: SandboxEdit) -> (OrderStatus, Option<String>) {
    game.send("dev", id, CommandBody::Sandbox(edit));
    let order = game.order("dev", id);
    (order.status, order.reason)
}

fn give(target: &str, id: &str, troops: Option<i64>, gold: Option<i64>) -> SandboxEdit {
    let mut args = GiveArgs {
        troops,
        gold,
        ..GiveArgs::default()
    };
    match target {
        "general" => args.general = Some(id.into()),
        "city" => args.city = Some(id.into()),
        _ => args.nation = Some(id.into()),
    }
    SandboxEdit::Give(args)
}

const DONE: (OrderStatus, Option<String>) = (OrderStatus::Completed, None);

fn refused(reason: &str) -> (OrderStatus, Option<String>) {
    (OrderStatus::Rejected, Some(reason.into()))
}

#[test]
fn give_adds_within_the_rules_bounds_and_tells_what_the_target_holds() {
    let mut game = sandbox();
    // bei_mou: leadership 40, so a cap of 4,000 troops; it has 1,000.
    let cap = crate::rules::cards::troop_cap(
        &game.app.world().resource::<crate::assets::Data>().0,
        &game.general("bei_mou"),
    );
    assert_eq!(
        edit(&mut game, "g1", give("general", "bei_mou", Some(500), None)),
        DONE
    );
    assert_eq!(game.general("bei_mou").troops, 1_500);
    assert_eq!(
        edit(
            &mut game,
            "g2",
            give("general", "bei_mou", Some(1_000_000), None)
        ),
        DONE
    );
    assert_eq!(game.general("bei_mou").troops, cap);
    assert_eq!(
        edit(
            &mut game,
            "g3",
            give("general", "bei_mou", Some(-1_000_000), None)
        ),
        DONE
    );
    assert_eq!(game.general("bei_mou").troops, 0);

    let gold = game.city("west_ford").gold;
    assert_eq!(
        edit(
            &mut game,
            "c1",
            give("city", "west_ford", Some(100), Some(250))
        ),
        DONE
    );
    let city = game.city("west_ford");
    assert_eq!((city.garrison, city.gold), (1_600, gold + 250));
    assert_eq!(
        edit(
            &mut game,
            "n1",
            give("nation", "east", None, Some(-1_000_000))
        ),
        DONE
    );
    assert_eq!(game.nation("east").gold, 0);

    let told: Vec<_> = game
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SandboxEdited {
                order_id,
                troops,
                gold,
                ..
            } => Some((e.aggregate.clone(), order_id.clone(), *troops, *gold)),
            _ => None,
        })
        .collect();
    assert_eq!(
        told[0],
        ("general:bei_mou".into(), "g1".into(), Some(1_500), None)
    );
    assert_eq!(
        told[3],
        (
            "city:west_ford".into(),
            "c1".into(),
            Some(1_600),
            Some(gold + 250)
        )
    );
    assert_eq!(told[4], ("nation:east".into(), "n1".into(), None, Some(0)));
    // The read models follow.
    assert_eq!(game.models().generals["bei_mou"].troops, 0);

    assert_eq!(
        edit(&mut game, "x1", give("general", "nobody", Some(1), None)),
        refused("unknown_general")
    );
    assert_eq!(
        edit(&mut game, "x2", give("city", "atlantis", Some(1), None)),
        refused("unknown_target")
    );
}

#[test]
fn teleport_moves_an_idle_general_where_it_may_stand_and_nowhere_else() {
    let mut game = sandbox();
    let teleport = |general: &str, to: &str| {
        SandboxEdit::Teleport(TeleportArgs {
            general: general.into(),
            to: to.into(),
        })
    };
    assert_eq!(
        edit(&mut game, "t1", teleport("bei_mou", "hill_fort")),
        DONE
    );
    assert_eq!(game.general("bei_mou").city, "hill_fort");
    let residents: Vec<String> = generals_in(game.app.world(), "hill_fort")
        .into_iter()
        .map(|g| g.id.clone())
        .collect();
    assert!(residents.contains(&"bei_mou".to_string()), "{residents:?}");
    assert!(
        !generals_in(game.app.world(), "north_gate")
            .iter()
            .any(|g| g.id == "bei_mou")
    );
    // North is at war with West: West Ford is held against it.
    assert_eq!(
        edit(&mut game, "t2", teleport("bei_mou", "west_ford")),
        refused("invalid_args")
    );
    assert_eq!(
        edit(&mut game, "t3", teleport("bei_mou", "hill_fort")),
        refused("invalid_args")
    );
    // At peace with the East, not allied: a march would halt before East Port.
    assert_eq!(
        edit(&mut game, "t6", teleport("bei_mou", "east_port")),
        refused("invalid_args")
    );
    // An empty neutral city would be taken by walking in: that is a MOVE's to do.
    assert_eq!(
        edit(
            &mut game,
            "g1",
            give("city", "crossroads", Some(-1_000), None)
        ),
        DONE
    );
    assert_eq!(
        edit(&mut game, "t7", teleport("bei_mou", "crossroads")),
        refused("invalid_args")
    );
    assert_eq!(game.city("crossroads").owner, None);
    // A ronin stands in any city it need not fight for.
    assert_eq!(
        edit(&mut game, "t8", teleport("you_xia", "east_port")),
        DONE
    );
    assert_eq!(game.general("you_xia").city, "east_port");
    game.edit_general("bei_mou", |g| g.status = GeneralStatus::InBattle);
    assert_eq!(
        edit(&mut game, "t4", teleport("bei_mou", "north_gate")),
        refused("in_battle")
    );
    game.edit_general("bei_mou", |g| g.status = GeneralStatus::Marching);
    assert_eq!(
        edit(&mut game, "t5", teleport("bei_mou", "north_gate")),
        refused("busy")
    );
}

#[test]
fn clock_edits_keep_the_sandbox_state_and_the_clock_speed() {
    let mut game = sandbox();
    let clock =
        |paused: Option<bool>, speed: Option<f64>| SandboxEdit::Clock(ClockArgs { paused, speed });
    assert_eq!(edit(&mut game, "k1", clock(Some(true), None)), DONE);
    assert_eq!(
        *game.app.world().resource::<Sandbox>(),
        Sandbox {
            paused: true,
            speed: None
        }
    );
    assert!(game.models().world.paused && game.models().world.sandbox);
    assert_eq!(edit(&mut game, "k2", clock(None, Some(600.0))), DONE);
    assert_eq!(
        *game.app.world().resource::<Sandbox>(),
        Sandbox {
            paused: true,
            speed: Some(600.0)
        }
    );
    assert_eq!(game.models().world.speed, 600.0);
    assert_eq!(edit(&mut game, "k3", clock(Some(false), None)), DONE);
    assert!(!game.models().world.paused);

    // The checkpoint carries it, and a World restored from it has it.
    let record = crate::persist::state::checkpoint_record(game.app.world(), 0, 1);
    assert_eq!(
        record.sandbox,
        Some(Sandbox {
            paused: false,
            speed: Some(600.0)
        })
    );
}

#[test]
fn a_world_that_is_not_a_sandbox_refuses_every_edit() {
    let mut game = Game::new("tiny");
    let troops = game.general("bei_mou").troops;
    assert_eq!(
        edit(&mut game, "g1", give("general", "bei_mou", Some(500), None)),
        refused("invalid_args")
    );
    assert_eq!(
        edit(
            &mut game,
            "k1",
            SandboxEdit::Clock(ClockArgs {
                paused: Some(true),
                speed: None
            })
        ),
        refused("invalid_args")
    );
    assert_eq!(game.general("bei_mou").troops, troops);
    assert!(game.app.world().get_resource::<Sandbox>().is_none());
    assert!(!game.models().world.sandbox);
    let record = crate::persist::state::checkpoint_record(game.app.world(), 0, 1);
    assert_eq!(record.sandbox, None);
}

#[test]
fn a_fault_while_teleporting_puts_the_general_back_in_its_city_and_its_index() {
    use crate::rules::commands::{EnactFault, FaultAfter};
    let mut game = sandbox();
    game.app.world_mut().insert_resource(EnactFault {
        order_id: "t1".into(),
        at: FaultAfter::Group,
    });
    let (status, reason) = edit(
        &mut game,
        "t1",
        SandboxEdit::Teleport(TeleportArgs {
            general: "bei_mou".into(),
            to: "hill_fort".into(),
        }),
    );
    assert_eq!(
        (status, reason.as_deref()),
        (OrderStatus::Rejected, Some("internal"))
    );
    assert_eq!(game.general("bei_mou").city, "north_gate");
    assert!(
        generals_in(game.app.world(), "north_gate")
            .iter()
            .any(|g| g.id == "bei_mou")
    );
    assert!(
        !generals_in(game.app.world(), "hill_fort")
            .iter()
            .any(|g| g.id == "bei_mou")
    );
}
