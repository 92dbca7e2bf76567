//! Epochs, restores and hot snapshots of a World played by the AI and a player.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use bevy_ecs::prelude::*;
use components::{
    command::{Command, CommandBody, Issuer},
    persist::{Batch, Recovered, SnapshotKind},
    read_model::ReadHandle,
    time::GameClock,
    world::{City, General, Nation},
};

use super::*;
use crate::{
    app::{AppSettings, Origin, build_app_with},
    assets::GameData,
    battle::Battle,
    driver::run_headless_tick,
    event_log::Outbox,
    rules::{
        intake::AppliedLogSeq,
        orders::{Incarnation, Orders},
        presence::Presence,
        tests::assets,
        timeline::Timeline,
    },
    schedule::Publish,
    spawn::WorldSettings,
};

fn settings() -> AppSettings {
    AppSettings::new(WorldSettings {
        name: "persist-test".into(),
        speed: 24.0,
    })
}

/// A World handing its epochs to `sink`, closing them only when asked (or at once).
fn persisted(
    data: Arc<GameData>,
    inbox: Option<crossbeam_channel::Receiver<components::command::Inbound>>,
    origin: Origin,
    sink: crossbeam_channel::Sender<Batch>,
) -> bevy_app::App {
    let persist = PersistSettings {
        sink,
        flush_interval: Duration::from_secs(3_600),
        lease_epoch: 0,
        last_epoch: 0,
        incarnation: 1,
        hot: None,
    };
    build_app_with(
        data,
        &settings(),
        ReadHandle::default(),
        inbox,
        origin,
        Some(persist),
    )
    .unwrap()
}

/// What a store would hold after `batches`: the newest state per entity, the last
/// checkpoint.
fn fold(batches: impl IntoIterator<Item = Batch>) -> Recovered {
    let mut entities: BTreeMap<(SnapshotKind, String), components::persist::StoredEntity> =
        BTreeMap::new();
    let mut checkpoint = None;
    let mut last_event = 0;
    for batch in batches {
        for event in &batch.events {
            assert_eq!(
                event.seq,
                last_event + 1,
                "events are contiguous across epochs"
            );
            last_event = event.seq;
        }
        for snapshot in batch.snapshots {
            let key = (snapshot.kind, snapshot.ref_id);
            match snapshot.state {
                Some(state) => entities.insert(
                    key,
                    components::persist::StoredEntity {
                        taken_at: snapshot.taken_at,
                        state,
                    },
                ),
                None => entities.remove(&key),
            };
        }
        assert_eq!(batch.checkpoint.last_seq, last_event);
        checkpoint = Some(batch.checkpoint);
    }
    Recovered {
        checkpoint: checkpoint.expect("at least one epoch"),
        entities: entities.into_values().collect(),
        incarnation: 2,
        events: Vec::new(),
    }
}

/// Player ann joins (log sequence 1) and trains (2), each command applied and published
/// in a pass of its own; `after` runs after each pass.
fn ann_joins_and_trains(
    world: &mut World,
    bus: &crossbeam_channel::Sender<components::command::Inbound>,
    mut after: impl FnMut(),
) {
    for (seq, body) in [
        (
            1,
            CommandBody::parse("JOIN", Some(serde_json::json!({"name": "Ann"}))),
        ),
        (2, CommandBody::parse("TRAIN", None)),
    ] {
        bus.send(components::command::Inbound::Command(Command {
            id: format!("c{seq}"),
            issuer: Issuer::Player("ann".into()),
            general: (seq == 2).then(|| "g-ann".to_string()),
            body: body.unwrap(),
            log_seq: seq,
            entry: None,
        }))
        .unwrap();
        world.run_schedule(crate::schedule::Intake);
        world.run_schedule(Publish);
        after();
    }
}

fn components<T: Component + Clone>(
    world: &mut World,
    id: impl Fn(&T) -> String,
) -> BTreeMap<String, T> {
    world
        .query::<&T>()
        .iter(world)
        .map(|c| (id(c), c.clone()))
        .collect()
}

#[test]
fn a_world_restored_from_its_epochs_is_the_world_that_was_stored() {
    let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
    let (sink, batches) = crossbeam_channel::unbounded();
    let (bus, inbox) = crossbeam_channel::unbounded();
    let mut app = persisted(data.clone(), Some(inbox), Origin::Scenario, sink);
    let world = app.world_mut();
    world.run_schedule(Publish);
    // A player joins and trains; the AI marches, fights and captures.
    ann_joins_and_trains(world, &bus, || {});
    let mut battle_seen = false;
    for _ in 0..2_000 {
        run_headless_tick(world, 1_200);
        world.run_schedule(Publish);
        if world
            .query::<&Battle>()
            .iter(world)
            .any(|b| b.sim.steps() > 10)
        {
            battle_seen = true;
            break;
        }
    }
    assert!(battle_seen, "the AI starts a battle within the span");
    let last = close_epoch(world);
    let mut epochs: Vec<Batch> = batches.try_iter().collect();
    assert_eq!(epochs.last().map(|b| b.checkpoint.epoch), Some(last));
    assert!(epochs[0].full && epochs.iter().skip(1).all(|b| !b.full));
    assert!(epochs.len() > 2, "captures close epochs at once");
    let recovered = fold(epochs.drain(..));
    assert_eq!(recovered.checkpoint.log_seq, 2);

    let mut restored = build_app_with(
        data,
        &settings(),
        ReadHandle::default(),
        None,
        Origin::Checkpoint(Box::new(recovered)),
        None,
    )
    .unwrap();
    let copy = restored.world_mut();
    assert_eq!(
        components::<Nation>(world, |n| n.id.clone()),
        components::<Nation>(copy, |n| n.id.clone())
    );
    assert_eq!(
        components::<City>(world, |c| c.id.clone()),
        components::<City>(copy, |c| c.id.clone())
    );
    assert_eq!(
        components::<General>(world, |g| g.id.clone()),
        components::<General>(copy, |g| g.id.clone())
    );
    let battles = |w: &mut World| -> BTreeMap<String, (u32, u64)> {
        w.query::<&Battle>()
            .iter(w)
            .map(|b| (b.id.clone(), (b.sim.steps(), b.sim.state_hash())))
            .collect()
    };
    let before = battles(world);
    assert!(!before.is_empty());
    assert_eq!(before, battles(copy));
    let clock = world.resource::<GameClock>();
    let restored_clock = copy.resource::<GameClock>();
    assert_eq!(
        (clock.game_seconds, clock.tick),
        (restored_clock.game_seconds, restored_clock.tick)
    );
    let window = |w: &World| {
        let mut orders = w.resource::<Orders>().stored("ann");
        for order in &mut orders {
            order.view.revision = 0;
        }
        orders
    };
    assert_eq!(window(world), window(copy));
    assert!(
        copy.resource::<Orders>()
            .stored("ann")
            .iter()
            .all(|o| o.view.revision == 2)
    );
    assert_eq!(copy.resource::<Incarnation>().0, 2);
    assert_eq!(copy.resource::<AppliedLogSeq>().0, 2);
    assert_eq!(
        world.resource::<Presence>().last_seen("ann"),
        copy.resource::<Presence>().last_seen("ann")
    );
    assert_eq!(
        copy.resource::<Outbox>().last_seq(),
        world.resource::<Outbox>().last_seq() + 1,
        "WorldRecovered follows the last stored event"
    );
    assert_eq!(
        copy.resource::<Timeline>().len(),
        world
            .query::<&General>()
            .iter(world)
            .filter(|g| g.order.is_some() || g.march.is_some())
            .count()
    );

    // Both go on alike: the restored battles step to the same states.
    for w in [&mut *world, &mut *copy] {
        for _ in 0..5 {
            run_headless_tick(w, 60);
        }
    }
    assert_eq!(battles(world), battles(copy));
}

#[test]
fn a_battle_that_ends_before_a_recovered_worlds_first_epoch_leaves_a_tombstone() {
    let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
    let (sink, batches) = crossbeam_channel::unbounded();
    let mut app = persisted(data.clone(), None, Origin::Scenario, sink);
    let world = app.world_mut();
    world.run_schedule(Publish);
    while world.query::<&Battle>().iter(world).next().is_none() {
        run_headless_tick(world, 1_200);
        world.run_schedule(Publish);
    }
    close_epoch(world);
    let recovered = fold(batches.try_iter());
    let stored: Vec<String> = world
        .query::<&Battle>()
        .iter(world)
        .map(|b| b.id.clone())
        .collect();

    let (sink, batches) = crossbeam_channel::unbounded();
    let mut restored = persisted(data, None, Origin::Checkpoint(Box::new(recovered)), sink);
    let copy = restored.world_mut();
    // Catching up before the first pass publishes: the battles end.
    for _ in 0..500 {
        if copy.query::<&Battle>().iter(copy).next().is_none() {
            break;
        }
        run_headless_tick(copy, 1_200);
    }
    assert!(copy.query::<&Battle>().iter(copy).next().is_none());
    copy.run_schedule(Publish);
    let first = batches.try_recv().unwrap();
    assert!(first.full);
    for id in stored {
        assert!(
            first
                .snapshots
                .iter()
                .any(|s| s.kind == SnapshotKind::Battle && s.ref_id == id && s.state.is_none()),
            "no tombstone for {id}"
        );
    }
}

#[test]
fn a_world_recovered_from_a_hot_snapshot_owes_its_store_the_undurable_events() {
    use std::sync::atomic::{AtomicU64, Ordering};

    use components::persist::HotSnapshot;

    let data = Arc::new(crate::assets::load(&assets(), "190").unwrap());
    let (sink, batches) = crossbeam_channel::unbounded();
    let (hot_tx, hot_rx) = crossbeam_channel::bounded::<HotSnapshot>(1);
    let durable = Arc::new(AtomicU64::new(0));
    let (bus, inbox) = crossbeam_channel::unbounded();
    let persist = PersistSettings {
        sink,
        flush_interval: Duration::from_secs(3_600),
        lease_epoch: 3,
        last_epoch: 0,
        incarnation: 1,
        hot: Some(HotSettings {
            sink: hot_tx,
            interval: Duration::ZERO,
            durable_seq: durable.clone(),
        }),
    };
    let mut app = build_app_with(
        data.clone(),
        &settings(),
        ReadHandle::default(),
        Some(inbox),
        Origin::Scenario,
        Some(persist),
    )
    .unwrap();
    let world = app.world_mut();
    world.run_schedule(Publish);
    // The first (full) epoch is durable; what follows is not.
    let first = batches.try_recv().unwrap();
    durable.store(first.checkpoint.last_seq, Ordering::Relaxed);
    let _ = hot_rx.try_recv();
    ann_joins_and_trains(world, &bus, || {
        let _ = hot_rx.try_recv();
    });
    for _ in 0..50 {
        run_headless_tick(world, 1_200);
        world.run_schedule(Publish);
        let _ = hot_rx.try_recv();
    }
    // An epoch is handed over (not durable), then more happens before the snapshot.
    close_epoch(world);
    for _ in 0..20 {
        run_headless_tick(world, 1_200);
    }
    world.run_schedule(Publish);
    let hot = hot_rx.try_recv().expect("a hot snapshot each pass");
    assert_eq!(hot.checkpoint.lease_epoch, 3);
    assert!(batches.try_iter().count() >= 1);
    assert_eq!(
        hot.checkpoint.epoch,
        world.resource::<Extract>().epoch() + 1,
        "the epoch under way"
    );
    assert_eq!(hot.checkpoint.log_seq, 2);
    assert_eq!(
        hot.checkpoint.last_seq,
        world.resource::<Outbox>().last_taken()
    );
    let seqs: Vec<u64> = hot.events.iter().map(|e| e.seq).collect();
    let expected: Vec<u64> = (first.checkpoint.last_seq + 1..=hot.checkpoint.last_seq).collect();
    assert_eq!(
        seqs, expected,
        "every event after the durable one, in order"
    );

    // Recovery from it: the same World, and the first epoch writes the owed events.
    let (sink, batches) = crossbeam_channel::unbounded();
    let recovered = Recovered {
        checkpoint: hot.checkpoint.clone(),
        entities: hot.entities,
        incarnation: 2,
        events: hot.events,
    };
    let mut restored = persisted(data, None, Origin::Checkpoint(Box::new(recovered)), sink);
    let copy = restored.world_mut();
    assert_eq!(
        components::<General>(world, |g| g.id.clone()),
        components::<General>(copy, |g| g.id.clone())
    );
    assert_eq!(
        components::<City>(world, |c| c.id.clone()),
        components::<City>(copy, |c| c.id.clone())
    );
    assert_eq!(copy.resource::<AppliedLogSeq>().0, 2);
    assert!(copy.resource::<Orders>().get("ann", "c2").is_some());
    close_epoch(copy);
    let owed = batches.try_recv().unwrap();
    assert!(owed.full);
    assert_eq!(owed.checkpoint.last_seq, hot.checkpoint.last_seq);
    let written: Vec<u64> = owed.events.iter().map(|e| e.seq).collect();
    assert_eq!(written, expected);
    copy.run_schedule(Publish);
    close_epoch(copy);
    let next = batches.try_recv().unwrap();
    assert_eq!(
        next.events.first().map(|e| (e.seq, e.kind.name())),
        Some((hot.checkpoint.last_seq + 1, "WorldRecovered"))
    );
}

/// A recovered tiny world in which a player has joined and trained: its records as a store
/// would hand them back.
fn stored_tiny_world() -> (Arc<GameData>, Recovered) {
    let data = Arc::new(crate::assets::load(&assets(), "tiny").unwrap());
    let (bus, inbox) = crossbeam_channel::unbounded();
    let (sink, batches) = crossbeam_channel::unbounded();
    let mut app = persisted(data.clone(), Some(inbox), Origin::Scenario, sink);
    let world = app.world_mut();
    ann_joins_and_trains(world, &bus, || {});
    run_headless_tick(world, 600);
    world.run_schedule(Publish);
    close_epoch(world);
    (data, fold(batches.try_iter()))
}

/// Every leaf of a JSON value, as a path of keys and indexes.
fn leaves(
    value: &serde_json::Value,
    path: &mut Vec<serde_json::Value>,
    out: &mut Vec<Vec<serde_json::Value>>,
) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                path.push(key.clone().into());
                leaves(child, path, out);
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.into());
                leaves(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn replace_at(value: &mut serde_json::Value, path: &[serde_json::Value], new: serde_json::Value) {
    let mut at = value;
    for step in path {
        at = match step {
            serde_json::Value::String(key) => &mut at[key.as_str()],
            serde_json::Value::Number(i) => &mut at[i.as_u64().unwrap_or(0) as usize],
            _ => return,
        };
    }
    *at = new;
}

/// Values a damaged or hostile record might hold where another value was: (a number, a
/// string, anything), the first two used where the record held one of their kind, so most
/// altered records still decode and reach the World.
fn hostile_values()
-> impl proptest::strategy::Strategy<Value = (serde_json::Value, serde_json::Value, serde_json::Value)>
{
    use proptest::prelude::*;
    let number = prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<u8>().prop_map(serde_json::Value::from),
        Just(serde_json::json!(0)),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(u32::MAX)),
        Just(serde_json::json!(i64::MAX)),
    ];
    let string = prop_oneof![
        Just(serde_json::json!("")),
        Just(serde_json::json!("nowhere")),
        Just(serde_json::json!("north_gate")),
        Just(serde_json::json!("north")),
        Just(serde_json::json!("g-nobody")),
        Just(serde_json::json!("bei_wang")),
        "[a-z_-]{0,12}".prop_map(serde_json::Value::from),
    ];
    let anything = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        Just(serde_json::json!([])),
        Just(serde_json::json!({})),
    ];
    (number, string, anything)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        // A fixed sequence in the suite, so a run is repeatable; TIANXIA_FUZZ_SEED and
        // TIANXIA_FUZZ_CASES explore further.
        cases: std::env::var("TIANXIA_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        rng_seed: proptest::test_runner::RngSeed::Fixed(
            std::env::var("TIANXIA_FUZZ_SEED").ok().and_then(|n| n.parse().ok()).unwrap_or(15),
        ),
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// Store records fuzzed: whatever one field of one stored entity holds, restoring a World
    /// from the records and running it is an error or a World, never a panic.
    #[test]
    fn a_world_restored_from_altered_records_never_panics(
        entity in proptest::prelude::any::<proptest::sample::Index>(),
        leaf in proptest::prelude::any::<proptest::sample::Index>(),
        values in hostile_values(),
        same_kind in proptest::bool::weighted(0.9),
    ) {
        static BASE: std::sync::OnceLock<(Arc<GameData>, Recovered)> = std::sync::OnceLock::new();
        let (data, base) = BASE.get_or_init(stored_tiny_world);
        let mut recovered = base.clone();
        let target = entity.index(recovered.entities.len());
        let mut state = serde_json::to_value(&recovered.entities[target].state).unwrap();
        let mut paths = Vec::new();
        leaves(&state, &mut Vec::new(), &mut paths);
        if !paths.is_empty() {
            let path = &paths[leaf.index(paths.len())];
            let mut old = &state;
            for step in path {
                old = match step {
                    serde_json::Value::String(key) => &old[key.as_str()],
                    serde_json::Value::Number(i) => &old[i.as_u64().unwrap_or(0) as usize],
                    _ => old,
                };
            }
            let (number, string, anything) = values;
            let value = match old {
                serde_json::Value::Number(_) if same_kind => number,
                serde_json::Value::String(_) if same_kind => string,
                _ => anything,
            };
            replace_at(&mut state, path, value);
        }
        // A record that no longer decodes is the store's error (it names the record).
        if let Ok(altered) = serde_json::from_value(state) {
            recovered.entities[target].state = altered;
            let (sink, _batches) = crossbeam_channel::unbounded();
            if let Ok(mut app) = build_app_with(
                data.clone(),
                &settings(),
                ReadHandle::default(),
                None,
                Origin::Checkpoint(Box::new(recovered)),
                Some(PersistSettings {
                    sink,
                    flush_interval: Duration::from_secs(3_600),
                    lease_epoch: 0,
                    last_epoch: 1,
                    incarnation: 2,
                    hot: None,
                }),
            ) {
                let world = app.world_mut();
                for _ in 0..3 {
                    run_headless_tick(world, 3_600);
                    world.run_schedule(Publish);
                }
                close_epoch(world);
            }
        }
    }
}
