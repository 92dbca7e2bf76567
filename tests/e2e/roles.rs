//! The roles (docs/operations.md#roles) and the single-writer rules (docs/redis.md#the-lease,
//! docs/redis.md#fencing) with the real binary: one active `daemon` per world holds the Redis
//! lease and a standby takes over when it lapses, recovering first; every command added to the
//! stream is applied exactly once across the takeover; a daemon fenced out by a newer one
//! stops.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use serde_json::{Value, json};

use crate::{
    play::{command, get, join, quiet_assets, register},
    support::{Mongo, RedisWorld, Server, run, wait_for},
};

/// The durable events of `world` in MongoDB, up to its checkpoint.
fn durable_events(mongo: &Mongo, world: &str) -> Vec<Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use persistence::WorldStore;
        let store = persistence::MongoStore::connect(&mongo.uri, Duration::from_secs(5))
            .await
            .unwrap();
        let mut all = Vec::new();
        loop {
            let after = all.last().map_or(0, |e: &Value| e["seq"].as_u64().unwrap());
            let page = store.events(world, after, 1_000, None).await.unwrap();
            if page.is_empty() {
                return all;
            }
            all.extend(page.iter().map(|e| serde_json::to_value(e).unwrap()));
        }
    })
}

/// The durable log runs from seq 1 without a gap.
fn assert_contiguous(events: &[Value]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"].as_u64().unwrap(),
            i as u64 + 1,
            "gap at {event}"
        );
    }
}

/// How many times each (player, order id) was decided in the durable log.
fn decisions(events: &[Value]) -> BTreeMap<(String, String), usize> {
    let mut decided = BTreeMap::new();
    for event in events {
        if event["type"] == "CommandAccepted" || event["type"] == "CommandRejected" {
            let player = event["payload"]["player"].as_str().unwrap_or_default();
            let id = event["payload"]["order_id"].as_str().unwrap_or_default();
            *decided
                .entry((player.to_string(), id.to_string()))
                .or_default() += 1;
        }
    }
    decided
}

/// The hot snapshot of `world` in Redis, decoded, if there is one.
fn hot_snapshot(redis: &RedisWorld) -> Option<components::persist::HotSnapshot> {
    let bytes: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("snapshot:{}", redis.world))
        .query(&mut redis.connection())
        .unwrap();
    Some(persistence::hot::decode(&bytes?).expect("the hot snapshot decodes"))
}

/// A world's backends of the test's own (MongoDB, a Redis world) and quiet designer data:
/// what every daemon and api of one test is started with.
pub(crate) struct Deployment {
    mongo: Mongo,
    pub(crate) redis: RedisWorld,
    _assets: tempfile::TempDir,
    root: String,
}

impl Deployment {
    pub(crate) fn new(tag: &str) -> Deployment {
        Self::with_assets(tag, |_, text| text)
    }

    /// A deployment whose scenario files are edited by `edit(file name, text)`.
    pub(crate) fn with_assets(tag: &str, edit: impl Fn(&str, String) -> String) -> Deployment {
        let (assets, root) = quiet_assets(edit);
        Deployment {
            mongo: Mongo::start(),
            redis: RedisWorld::new(tag),
            root: root.to_str().unwrap().to_string(),
            _assets: assets,
        }
    }

    /// A daemon's options.
    pub(crate) fn args(&self) -> Vec<&str> {
        vec![
            "--scenario",
            "tiny",
            "--speed",
            "24",
            "--world",
            &self.redis.world,
            "--assets",
            &self.root,
            "--flush-interval",
            "0.5",
            "--snapshot-interval",
            "0.2",
        ]
    }

    pub(crate) fn envs(&self) -> [(&str, &str); 2] {
        [
            ("REDIS_URL", self.redis.url.as_str()),
            ("MONGODB_URI", self.mongo.uri.as_str()),
        ]
    }
}

#[test]
fn daemon_and_api_need_redis_and_mongodb() {
    for role in ["daemon", "api"] {
        let out = run(&[role, "--scenario", "tiny"], &[]);
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(role) && stderr.contains("REDIS_URL") && stderr.contains("MONGODB_URI"),
            "{stderr}"
        );
        let only_redis = run(&[role], &[("REDIS_URL", "redis://127.0.0.1:1")]);
        assert_eq!(only_redis.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&only_redis.stderr).contains("missing: MONGODB_URI"));
    }
}

#[test]
fn a_standby_daemon_takes_over_and_every_added_command_is_applied_once() {
    let deployment = Deployment::new("failover");
    let (mongo, redis) = (&deployment.mongo, &deployment.redis);
    let (args, envs) = (deployment.args(), deployment.envs());
    let active = Server::start_as("daemon", &args, &envs);
    active.wait_ready();
    // Players' routes are the api's business, not the daemon's.
    assert_eq!(active.get("/api/world").status, 404);
    let (mut standby, standby_listening) =
        Server::launch_as("daemon", tempfile::tempdir().unwrap(), &args, &envs);
    wait_for("the second daemon to stand by", || {
        standby.log().contains("standing by").then_some(())
    });
    // Standing by, its address answers: alive, not ready.
    let address = standby.log().lines().find_map(|l| {
        l.split("address=")
            .nth(1)
            .map(|a| a.split_whitespace().next().unwrap_or_default().to_string())
    });
    if let Some(address) = address {
        let base = format!("http://{address}");
        assert_eq!(crate::support::get(&format!("{base}/health")).status, 200);
        let ready = crate::support::get(&format!("{base}/ready"));
        assert_eq!(ready.status, 503, "{}", ready.text);
        assert!(ready.text.contains("standing by"), "{}", ready.text);
    } else {
        panic!(
            "the standby does not say where it listens: {}",
            standby.log()
        );
    }
    // A player on an api process; a second api serves the same world.
    let api = Server::start_as("api", &["--world", redis.world.as_str()], &envs);
    let other_api = Server::start_as("api", &["--world", redis.world.as_str()], &envs);
    api.wait_ready();
    other_api.wait_ready();
    let token = register(&api, "via");
    join(&api, &token, "north");

    // A producer adds JOINs and TRAINs, and the player sends commands through the api, while
    // the active daemon is killed.
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        let world = redis.world.clone();
        let url = redis.url.clone();
        let commands = api.url("/api/commands");
        let token = token.clone();
        thread::spawn(move || {
            let producer = RedisWorld::attach(&url, &world);
            let mut added = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) || i < 40 {
                let id = format!("a-{i}");
                let reply = crate::support::post(
                    &commands,
                    Some(&token),
                    &json!({"id": id, "type": "TRAIN", "general": "g-via"}),
                );
                if reply.status == 202 {
                    added.push(("via".to_string(), id));
                }
                let player = format!("p{i}");
                producer.xadd_command(&json!({
                    "id": "join", "player": player, "type": "JOIN", "args": {"name": player}
                }));
                added.push((player.clone(), "join".to_string()));
                producer.xadd_command(&json!({
                    "id": "train", "player": player, "type": "TRAIN", "general": format!("g-{player}")
                }));
                added.push((player, "train".to_string()));
                i += 1;
                thread::sleep(Duration::from_millis(50));
            }
            added
        })
    };
    wait_for("the active daemon to apply some commands", || {
        let ready = active.get("/ready").json;
        (ready["persistence"]["durable_seq"].as_u64()? > 30).then_some(())
    });
    let _ = active.kill_keeping_dir();
    // While no daemon runs, the player sends a backlog through the api: more commands than
    // its order window keeps, all decided at once when the standby takes over.
    let mut backlog = Vec::new();
    for i in 0..150 {
        let id = format!("b-{i}");
        let reply = command(
            &api,
            &token,
            json!({"id": id, "type": "TRAIN", "general": "g-via"}),
        );
        if reply.status == 202 {
            backlog.push(("via".to_string(), id));
        }
    }
    assert!(backlog.len() > 100, "only {} were taken", backlog.len());
    let base = standby_listening
        .recv_timeout(crate::support::WAIT)
        .unwrap_or_else(|_| panic!("the standby did not take over: {}", standby.log()));
    standby.base = base;
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let mut added = producer.join().unwrap();
    added.extend(backlog);
    assert!(standby.log().contains("lease taken"), "{}", standby.log());

    // Every added command decided exactly once in the durable log.
    let expected: BTreeMap<(String, String), usize> =
        added.iter().map(|k| (k.clone(), 1)).collect();
    let events = wait_for("every added command to be durable", || {
        let events = durable_events(mongo, &redis.world);
        let decided = decisions(&events);
        expected
            .keys()
            .all(|k| decided.contains_key(k))
            .then_some(events)
    });
    let decided = decisions(&events);
    for (key, n) in &decided {
        assert_eq!(*n, 1, "{key:?} was decided {n} times");
    }
    let extra: Vec<_> = decided
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        extra.len() == 1 && extra[0].0 == "via" && extra[0].1.starts_with("srv-"),
        "decided but never added (only the api player's JOIN may be): {extra:?}"
    );
    let joined = events
        .iter()
        .filter(|e| e["type"] == "CommandAccepted" && e["payload"]["command"] == "JOIN")
        .count();
    let players = added.iter().filter(|(_, id)| id == "join").count();
    assert_eq!(joined, players + 1, "each player joined once");
    assert!(
        added.iter().any(|(p, _)| p == "via"),
        "no command went through the api"
    );
    assert!(
        events.iter().any(|e| e["type"] == "WorldRecovered"),
        "the standby recovered first"
    );
    assert_contiguous(&events);

    // Every order the player sent shows its final decision on every api: accepted (or
    // completed) where the durable log accepted it, rejected where it rejected it.
    let accepted: std::collections::BTreeSet<String> = events
        .iter()
        .filter(|e| e["type"] == "CommandAccepted" && e["payload"]["player"] == "via")
        .filter_map(|e| e["payload"]["order_id"].as_str().map(str::to_string))
        .collect();
    for server in [&api, &other_api] {
        for (_, id) in added.iter().filter(|(p, _)| p == "via") {
            let order = wait_for(&format!("order {id} to be decided on every api"), || {
                let reply = get(server, &token, &format!("/api/orders/{id}"));
                if reply.status == 429 {
                    // The verifier reads faster than a player may.
                    thread::sleep(Duration::from_millis(100));
                    return None;
                }
                assert_eq!(reply.status, 200, "{id}: {}", reply.text);
                (reply.json["status"] != "queued").then_some(reply.json)
            });
            let status = order["status"].as_str().unwrap();
            if accepted.contains(id) {
                assert!(
                    ["accepted", "completed", "cancelled"].contains(&status),
                    "{id} was accepted: {order}"
                );
            } else {
                assert_eq!(status, "rejected", "{id}: {order}");
            }
        }
    }

    // A graceful stop releases the lease and leaves nothing pending.
    let status = standby.terminate();
    assert!(status.success(), "{status}: {}", standby.log());
    assert!(
        standby.log().contains("lease released"),
        "{}",
        standby.log()
    );
    let lease: Option<String> = redis::cmd("GET")
        .arg(format!("lease:daemon:{}", redis.world))
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(lease, None);
    assert_eq!(redis.pending(), 0);
}

#[test]
fn a_daemon_fenced_out_by_a_newer_one_stops() {
    let deployment = Deployment::new("fence");
    let (args, envs) = (deployment.args(), deployment.envs());
    let mut old = Server::start_as("daemon", &args, &envs);
    old.wait_ready();
    // The old daemon freezes past its lease; a new one takes the world.
    old.signal("STOP");
    let newer = Server::start_as("daemon", &args, &envs);
    newer.wait_ready();
    assert!(newer.log().contains("lease epoch taken"), "{}", newer.log());
    old.signal("CONT");
    let status = old.wait_exit();
    assert!(!status.success(), "{}", old.log());
    let log = old.log();
    assert!(
        log.contains("taken by another daemon") || log.contains("fenced"),
        "{log}"
    );
    // The newer daemon goes on writing checkpoints.
    let before = newer.get("/ready").json["persistence"]["durable_epoch"]
        .as_u64()
        .unwrap();
    wait_for("the newer daemon's next checkpoint", || {
        let ready = newer.get("/ready").json;
        (ready["persistence"]["durable_epoch"].as_u64()? > before + 1).then_some(())
    });
    assert_eq!(newer.get("/ready").status, 200);
}

#[test]
fn a_daemon_killed_between_checkpoints_resumes_from_its_hot_snapshot() {
    let deployment = Deployment::new("hot");
    let (mongo, redis) = (&deployment.mongo, &deployment.redis);
    let envs = deployment.envs();
    // Checkpoints only at start: what follows lives in hot snapshots until the kill.
    let mut args = deployment.args();
    let at = args.iter().position(|a| *a == "--flush-interval").unwrap();
    args[at + 1] = "3600";
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let durable_before = daemon.get("/ready").json["persistence"]["durable_seq"]
        .as_u64()
        .unwrap();
    let mut added = Vec::new();
    let mut last = String::new();
    for i in 0..12 {
        let player = format!("p{i}");
        redis.xadd_command(&json!({
            "id": "join", "player": player, "type": "JOIN", "args": {"name": player}
        }));
        last = redis.xadd_command(&json!({
            "id": "train", "player": player, "type": "TRAIN", "general": format!("g-{player}")
        }));
        added.push((player.clone(), "join".to_string()));
        added.push((player, "train".to_string()));
    }
    let last: components::stream::EntryId = last.parse().unwrap();
    let hot = wait_for("a hot snapshot past the last command", || {
        let hot = hot_snapshot(redis)?;
        (hot.checkpoint.stream_id >= Some(last)).then_some(hot)
    });
    assert!(hot.events.iter().all(|e| e.seq > durable_before));
    let hot_lease = hot.checkpoint.lease_epoch;
    assert!(
        hot.entities.iter().any(|e| matches!(
            &e.state,
            components::persist::EntityState::General(g) if g.id == "g-p11"
        )),
        "the snapshot holds the joined generals"
    );
    // None of it is in MongoDB yet.
    assert!(decisions(&durable_events(mongo, &redis.world)).is_empty());
    let _ = daemon.kill_keeping_dir();

    let mut next = Server::start_as("daemon", &args, &envs);
    next.wait_ready();
    assert!(
        next.log().contains("recovering from the hot snapshot"),
        "{}",
        next.log()
    );
    // Its first checkpoint wrote what only the snapshot held: every command decided once,
    // none applied again (nothing revised), the events contiguous.
    let expected: BTreeMap<(String, String), usize> =
        added.iter().map(|k| (k.clone(), 1)).collect();
    let events = durable_events(mongo, &redis.world);
    assert_eq!(decisions(&events), expected);
    assert!(
        !events.iter().any(|e| e["type"] == "OrderRevised"),
        "no command was applied again"
    );
    assert_contiguous(&events);
    assert!(events.len() as u64 >= hot.checkpoint.last_seq);
    // The world goes on from there: a general joined before the kill takes an order.
    wait_for("the snapshot's entries to be acknowledged", || {
        (redis.pending() == 0).then_some(())
    });
    redis.xadd_command(&json!({
        "id": "again", "player": "p0", "type": "TRAIN", "general": "g-p0"
    }));
    wait_for("the command after recovery to be decided", || {
        let mut connection = redis.connection();
        let status: Option<String> = redis::cmd("HGET")
            .arg(format!("order:{}:p0:again", redis.world))
            .arg("status")
            .query(&mut connection)
            .ok()?;
        (status.as_deref() == Some("rejected") || status.as_deref() == Some("accepted"))
            .then_some(())
    });
    let current = wait_for("the new daemon's hot snapshot", || {
        let hot = hot_snapshot(redis)?;
        (hot.checkpoint.lease_epoch > hot_lease).then_some(hot)
    });
    // The write script itself: a process without the lease writes nothing, and a holder
    // never replaces a newer snapshot with an older one.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stamped = |lease_epoch: u64, epoch: u64| {
        let mut other = current.clone();
        other.checkpoint.lease_epoch = lease_epoch;
        other.checkpoint.epoch = epoch;
        (
            persistence::hot::encode(&other).unwrap(),
            lease_epoch,
            epoch,
        )
    };
    let manager = || async {
        let client = ::redis::Client::open(redis.url.as_str()).unwrap();
        ::redis::aio::ConnectionManager::new(client).await.unwrap()
    };
    runtime.block_on(async {
        let manager = manager().await;
        let elsewhere = format!("{}-elsewhere", redis.world);
        let lease = net::redis::lease::Lease::try_acquire(&manager, &elsewhere)
            .await
            .unwrap()
            .unwrap();
        let mut foreign = lease.tenure();
        foreign.key = net::redis::keys::lease(&redis.world);
        let writer = net::redis::hot::HotWriter::new(manager.clone(), &redis.world, foreign);
        let (bytes, l, e) = stamped(current.checkpoint.lease_epoch + 1, 1);
        assert_eq!(
            writer.write(&bytes, l, e).await.unwrap(),
            net::redis::hot::Written::NotHolder
        );
        lease.release().await.unwrap();
    });
    assert!(hot_snapshot(redis).unwrap().checkpoint.lease_epoch <= current.checkpoint.lease_epoch);
    let status = next.terminate();
    assert!(status.success(), "{}", next.log());
    let last = hot_snapshot(redis).unwrap().checkpoint;
    runtime.block_on(async {
        let manager = manager().await;
        let lease = net::redis::lease::Lease::try_acquire(&manager, &redis.world)
            .await
            .unwrap()
            .expect("the lease was released at the graceful stop");
        let writer = net::redis::hot::HotWriter::new(manager.clone(), &redis.world, lease.tenure());
        for (l, e) in [(last.lease_epoch, last.epoch - 1), (0, last.epoch + 99)] {
            let (bytes, l, e) = stamped(l, e);
            assert_eq!(
                writer.write(&bytes, l, e).await.unwrap(),
                net::redis::hot::Written::Older
            );
        }
        assert_eq!(hot_snapshot(redis).unwrap().checkpoint, last);
        let (bytes, l, e) = stamped(last.lease_epoch + 1, 1);
        assert_eq!(
            writer.write(&bytes, l, e).await.unwrap(),
            net::redis::hot::Written::Written
        );
        lease.release().await.unwrap();
    });
    assert_eq!(
        hot_snapshot(redis).unwrap().checkpoint.lease_epoch,
        last.lease_epoch + 1
    );
}

/// A checkpoint of `world` at `epoch` with no entities.
fn empty_batch(world: &str, epoch: u64, stream_id: &str) -> components::persist::Batch {
    components::persist::Batch {
        checkpoint: components::persist::Checkpoint {
            world: world.to_string(),
            lease_epoch: 0,
            epoch,
            incarnation: 1,
            last_seq: 0,
            stream_id: Some(stream_id.parse().unwrap()),
            log_seq: 0,
            game_seconds: epoch as i64,
            tick: epoch,
            data_hash: "h".into(),
            scenario_hash: String::new(),
            scenario: "tiny".into(),
            updated_at: 1,
            sandbox: None,
            maintenance: None,
        },
        snapshots: Vec::new(),
        events: Vec::new(),
        full: true,
    }
}

#[test]
fn checkpoints_are_refused_once_a_newer_lease_epoch_is_taken() {
    use persistence::{StoreError, WorldStore};
    let mongo = Mongo::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let connect = || persistence::MongoStore::connect(&mongo.uri, Duration::from_secs(5));
        let mut old = connect().await.unwrap();
        assert_eq!(old.take_fence("w").await.unwrap(), 1);
        assert!(old.recover("w").await.unwrap().world.is_none());
        old.commit(Arc::new(empty_batch("w", 1, "5-0")))
            .await
            .unwrap();

        let mut newer = connect().await.unwrap();
        assert_eq!(newer.take_fence("w").await.unwrap(), 2);
        // The old writer is refused from now on, whatever it writes.
        match old.commit(Arc::new(empty_batch("w", 2, "6-0"))).await {
            Err(StoreError::Fenced(message)) => assert!(message.contains("newer"), "{message}"),
            other => panic!("the old writer's checkpoint was not refused: {other:?}"),
        }
        let recovered = newer.recover("w").await.unwrap().world.unwrap();
        assert_eq!(recovered.checkpoint.epoch, 1);
        assert_eq!(recovered.checkpoint.stream_id, Some("5-0".parse().unwrap()));
        newer
            .commit(Arc::new(empty_batch("w", 2, "7-0")))
            .await
            .unwrap();
        let recovered = connect()
            .await
            .unwrap()
            .recover("w")
            .await
            .unwrap()
            .world
            .unwrap();
        assert_eq!(recovered.checkpoint.lease_epoch, 2);
        assert_eq!(recovered.checkpoint.stream_id, Some("7-0".parse().unwrap()));

        // Events the newer writer wrote are its own: the old writer trying to write the same
        // sequence numbers is told it is fenced out (it stops), not to try again.
        let event = |seq: u64| components::events::DomainEvent {
            seq,
            kind: components::events::EventKind::MonthBegan {
                year: 190,
                month: 2,
            },
            game_time: 0,
            aggregate: "world:w".into(),
        };
        let mut with_events = empty_batch("w", 3, "8-0");
        with_events.events = vec![event(1), event(2)];
        with_events.checkpoint.last_seq = 2;
        newer.commit(Arc::new(with_events.clone())).await.unwrap();
        match old.commit(Arc::new(with_events)).await {
            Err(StoreError::Fenced(message)) => assert!(message.contains("newer"), "{message}"),
            other => panic!("the old writer's events were not refused as fenced: {other:?}"),
        }
    });
}

#[test]
fn a_command_sent_through_one_api_is_read_through_another() {
    let deployment = Deployment::new("apis");
    let redis = &deployment.redis;
    let (args, envs) = (deployment.args(), deployment.envs());
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let api_args = ["--world", redis.world.as_str()];
    let first = Server::start_as("api", &api_args, &envs);
    let second = Server::start_as("api", &api_args, &envs);
    first.wait_ready();
    second.wait_ready();
    let world = second.get("/api/world");
    assert_eq!(world.json["world"], redis.world.as_str());
    // An api answers from its copy of the L2 read models, and says so.
    assert_eq!(world.headers.get("x-cache").map(String::as_str), Some("l2"));
    // So are the rules, of the daemon's data.
    let rules = second.get("/api/rules");
    assert_eq!(rules.status, 200, "{}", rules.text);
    assert_eq!(rules.json["data_hash"], world.json["data_hash"]);
    assert_eq!(rules.json["commands"]["MOVE"]["pcp"], 2, "{}", rules.text);
    assert_eq!(
        rules.json["commands"]["DECLARE_WAR"]["cards"],
        json!(["emperor", "chancellor", "grand_general"])
    );

    // A player registers and joins through the first; the second knows the account.
    let token = register(&first, "dan");
    let general = join(&first, &token, "north");
    assert_eq!(general["id"], "g-dan", "{general}");
    let reply = command(
        &first,
        &token,
        json!({"id": "t1", "type": "TRAIN", "general": "g-dan"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let order = wait_for("the order to show on the other api", || {
        let reply = get(&second, &token, "/api/orders/t1");
        (reply.status == 200 && reply.json["status"] == "accepted").then_some(reply.json)
    });
    assert_eq!(order["revision"], 1, "{order}");
    wait_for("the general to show busy on the other api", || {
        let g = second.get("/api/generals/g-dan").json;
        (g["status"] == "busy").then_some(())
    });
    // The caller and its orders, from the account store and the api's copy.
    let me = get(&second, &token, "/api/me").json;
    assert_eq!(
        (
            &me["name"],
            &me["general"]["id"],
            &me["open_orders"][0]["order_id"]
        ),
        (&json!("dan"), &json!("g-dan"), &json!("t1")),
        "{me}"
    );
    let open = get(&second, &token, "/api/orders?status=open").json;
    assert_eq!(open["orders"][0]["order_id"], "t1", "{open}");
    // Repeats are recognised by any api; another body under the id is a conflict.
    let repeat = command(
        &second,
        &token,
        json!({"id": "t1", "type": "TRAIN", "general": "g-dan"}),
    );
    assert_eq!(repeat.status, 202, "{}", repeat.text);
    assert_eq!(repeat.json["status"], "accepted", "{}", repeat.text);
    let conflict = command(
        &second,
        &token,
        json!({"id": "t1", "type": "RECRUIT", "general": "g-dan", "args": {"amount": 1}}),
    );
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    // Reads count as cache requests: the api's copy (L1) answering or not, and the L2 hashes
    // it fetched.
    assert_eq!(second.get("/api/generals/nobody").status, 404);
    let metrics = second.get("/metrics").text;
    for series in [
        r#"tianxia_cache_requests_total{layer="l1",result="hit"}"#,
        r#"tianxia_cache_requests_total{layer="l1",result="miss"}"#,
        r#"tianxia_cache_requests_total{layer="l2",result="hit"}"#,
    ] {
        assert!(metrics.contains(series), "{series} missing: {metrics}");
    }
    // Leaderboards and the durable event history (from MongoDB) on either.
    let board = second.get("/api/leaderboard?by=cities").json;
    assert!(board.as_array().is_some_and(|b| !b.is_empty()), "{board}");
    wait_for("the durable history to hold the command", || {
        let events = first.get("/api/events?limit=1000").json;
        events
            .as_array()?
            .iter()
            .any(|e| e["type"] == "CommandAccepted" && e["payload"]["order_id"] == "t1")
            .then_some(())
    });
    // Tokens live in Redis: one logged out on one api is gone on the other.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("token:*")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    // At most 16 tokens per player stay valid, whichever api issued them: the oldest go.
    let mut tokens = vec![token.clone()];
    for i in 0..17 {
        let api = if i % 2 == 0 { &first } else { &second };
        let reply = crate::support::post(
            &api.url("/api/auth/login"),
            None,
            &json!({"name": "dan", "password": "correct horse"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
        tokens.push(reply.json["token"].as_str().unwrap().to_string());
    }
    for (i, held) in tokens.iter().enumerate() {
        let status = get(&first, held, "/api/orders/t1").status;
        let expected = if i < 2 { 401 } else { 200 };
        assert_eq!(status, expected, "token {i} of {}", tokens.len());
    }
    let token = tokens.last().unwrap().clone();
    let out = crate::support::request("POST", &second.url("/api/auth/logout"), Some(&token), None);
    assert_eq!(out.status, 204, "{}", out.text);
    assert_eq!(get(&first, &token, "/api/orders/t1").status, 401);
    let held: usize = redis::cmd("ZCARD")
        .arg("tokens:dan")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(held, 15, "the player's index follows revocations");
}

/// Faults of the backends under a daemon with players on an api: MongoDB alone goes away
/// while commands flow, then Redis and MongoDB together for longer than the lease. The daemon
/// rides both out (it never exits), says it is not ready meanwhile, and every command answered
/// 202 is decided exactly once in the durable log and shows its decision on the api.
#[test]
fn a_daemon_rides_out_mongodb_and_then_redis_and_mongodb_going_away() {
    let mut mongo = Mongo::start_on_disk();
    let mut own = crate::support::RedisServer::start();
    let redis = RedisWorld::on(&own.url, "backends-down");
    let (_assets, root) = quiet_assets(|_, text| text);
    let root = root.to_str().unwrap().to_string();
    let args = [
        "--scenario",
        "tiny",
        "--world",
        redis.world.as_str(),
        "--assets",
        root.as_str(),
        "--flush-interval",
        "0.5",
    ];
    let envs = [
        ("REDIS_URL", redis.url.as_str()),
        ("MONGODB_URI", mongo.uri.as_str()),
    ];
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let api = Server::start_as("api", &["--world", redis.world.as_str()], &envs);
    api.wait_ready();
    let token = register(&api, "kim");
    join(&api, &token, "north");
    let mut sent = Vec::new();
    let send = |sent: &mut Vec<String>, id: String| {
        let reply = command(
            &api,
            &token,
            json!({"id": id, "type": "TRAIN", "general": "g-kim"}),
        );
        if reply.status == 202 {
            sent.push(id);
        }
        reply.status
    };

    // MongoDB goes away: commands are still taken (the stream holds them), the daemon is not
    // ready, and its epochs wait.
    mongo.stop();
    for i in 0..20 {
        assert_eq!(send(&mut sent, format!("m-{i}")), 202);
        thread::sleep(Duration::from_millis(100));
    }
    wait_for("the daemon to report its store failing", || {
        let ready = daemon.get("/ready");
        (ready.status == 503 && ready.json["persistence"]["ok"] == false).then_some(())
    });
    mongo.restart();
    wait_for("the daemon to be ready again", || {
        (daemon.get("/ready").status == 200).then_some(())
    });

    // Redis and MongoDB go away together for longer than the lease: commands cannot be taken
    // (503), the World goes on.
    own.stop();
    mongo.stop();
    let down = std::time::Instant::now();
    wait_for("commands to be refused", || {
        (send(&mut sent, "refused".into()) == 503).then_some(())
    });
    wait_for("the lease to lapse", || {
        (down.elapsed() > Duration::from_secs(11)).then_some(())
    });
    assert_eq!(daemon.get("/ready").status, 503);
    mongo.restart();
    own.restart();
    wait_for("commands to be taken again", || {
        (send(&mut sent, "after-0".into()) == 202).then_some(())
    });
    for i in 1..10 {
        assert_eq!(send(&mut sent, format!("after-{i}")), 202);
    }
    wait_for("the daemon to be ready again", || {
        (daemon.get("/ready").status == 200).then_some(())
    });
    // The lease notices at its next poll, which may come after readiness (the lease's own
    // freshness is not what `/ready` waits for while it is renewed).
    wait_for("the lease to be taken again after lapsing", || {
        daemon
            .log()
            .contains("lapsed while Redis was out of reach")
            .then_some(())
    });

    // Nothing lost, nothing twice.
    let started = std::time::Instant::now();
    let events = loop {
        let events = durable_events(&mongo, &redis.world);
        let decided = decisions(&events);
        let missing: Vec<&String> = sent
            .iter()
            .filter(|id| !decided.contains_key(&("kim".to_string(), (*id).clone())))
            .collect();
        if missing.is_empty() {
            break events;
        }
        if started.elapsed() > crate::support::WAIT {
            let orders: Vec<String> = missing
                .iter()
                .map(|id| get(&api, &token, &format!("/api/orders/{id}")).text)
                .collect();
            let seqs: Vec<String> = events
                .iter()
                .map(|e| format!("{}:{}:{}", e["seq"], e["type"], e["payload"]["order_id"]))
                .collect();
            panic!(
                "not durable: {missing:?} of {sent:?}; orders on the api: {orders:?}; durable events: {seqs:?}; the daemon's log:\n{}",
                daemon.log()
            );
        }
        thread::sleep(Duration::from_millis(200));
    };
    assert_contiguous(&events);
    for (key, n) in decisions(&events) {
        assert_eq!(n, 1, "{key:?} was decided {n} times");
    }
    for id in &sent {
        let order = wait_for(&format!("order {id} to show on the api"), || {
            let reply = get(&api, &token, &format!("/api/orders/{id}"));
            (reply.status == 200 && reply.json["status"] != "queued").then_some(reply.json)
        });
        assert!(
            order["status"] == "accepted"
                || order["status"] == "rejected"
                || order["status"] == "completed",
            "{order}"
        );
    }
    // The daemon never stopped: the same process, still the lease holder.
    assert_eq!(daemon.get("/health").status, 200);
}

/// `/admin/status` on a daemon tells an operator what only the World's process knows: the
/// lease it writes under, the command stream's entries not yet acknowledged, and the
/// connections open (docs/http.md#admin-routes).
#[test]
fn an_operator_sees_the_lease_the_stream_and_the_connections() {
    const ADMIN: &str = "an-admin-token-for-the-daemon";
    let deployment = Deployment::new("adminstatus");
    let args = deployment.args();
    let [redis_url, mongodb_uri] = deployment.envs();
    let envs = [redis_url, mongodb_uri, ("TIANXIA_ADMIN_TOKEN", ADMIN)];
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let status = || {
        let reply = crate::support::request("GET", &daemon.url("/admin/status"), Some(ADMIN), None);
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json
    };
    let first = status();
    let lease = &first["lease"];
    assert!(lease["epoch"].as_u64().unwrap() >= 1, "{first}");
    assert!(
        lease["key"]
            .as_str()
            .unwrap()
            .contains(deployment.redis.world.as_str()),
        "{first}"
    );
    assert_eq!(lease["fresh"], true, "{first}");
    assert!(
        lease["holder"].as_str().unwrap().starts_with("pid "),
        "{first}"
    );
    let http = &first["connections"]["http"];
    assert!(
        http["open"].as_u64().unwrap() >= 1 && http["max"].as_u64().unwrap() > 0,
        "{first}"
    );
    assert_eq!(first["connections"]["websocket"]["open"], 0, "{first}");

    // An entry of the stream, a checkpoint on demand: acknowledged, nothing pending.
    deployment.redis.xadd_command(&json!({
        "id": "probe", "player": "nobody", "type": "TRAIN", "general": "g-nobody"
    }));
    wait_for("the stream's pending entries to be counted", || {
        let flushed =
            crate::support::request("POST", &daemon.url("/admin/flush"), Some(ADMIN), Some(b""));
        assert_eq!(flushed.status, 200, "{}", flushed.text);
        let now = status();
        (now["persistence"]["stream_pending"] == 0).then_some(())
    });
}
