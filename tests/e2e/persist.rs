//! Persistence and recovery (docs/storage.md#recovery, docs/operations.md#reliability) with the
//! real binary: commands answered 202 survive a SIGKILL and are applied exactly once, in both
//! store modes; a MongoDB outage loses nothing; a damaged store is refused with the file named.

use std::{collections::HashMap, fs, time::Duration};

use serde_json::{Value, json};

use crate::{
    play::{command, general, get, join, quiet_assets, register},
    support::{Mongo, RedisWorld, Server, post, repo, run, wait_for},
};

/// Every durable event, in sequence order, page by page.
fn all_events(server: &Server) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let after = events
            .last()
            .map_or(0, |e: &Value| e["seq"].as_u64().unwrap());
        let page = server
            .get(&format!("/api/events?after_seq={after}&limit=1000"))
            .json;
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return events;
        }
        assert!(
            page[0]["seq"].as_u64().unwrap() > after,
            "a page after {after} starts at {}",
            page[0]["seq"]
        );
        events.extend(page);
    }
}

fn assert_contiguous(events: &[Value]) {
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["seq"].as_u64().unwrap(),
            i as u64 + 1,
            "the log has a gap or a repeat at {i}: {event}"
        );
    }
}

/// Decisions the durable log holds for `player`'s order `id`.
fn decisions(events: &[Value], player: &str, id: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == "CommandAccepted" || e["type"] == "CommandRejected")
        .filter(|e| e["payload"]["player"] == player && e["payload"]["order_id"] == id)
        .count()
}

/// Players send commands, some made durable by a checkpoint and some only by the command
/// log; the server is killed with SIGKILL right after the last 202 and started again on the
/// same data. Every 202'd command is applied exactly once, and its cost paid once.
/// With `redis`, commands travel its world's stream.
pub(crate) fn commands_survive_sigkill(mongo: Option<&Mongo>, redis: Option<&RedisWorld>) {
    let (_assets, root) = quiet_assets(|_, text| text);
    let mut args = vec![
        "--scenario",
        "tiny",
        "--speed",
        "24",
        "--assets",
        root.to_str().unwrap(),
        "--flush-interval",
        "1",
    ];
    let mut envs: Vec<(&str, &str)> = mongo
        .map(|m| vec![("MONGODB_URI", m.uri.as_str())])
        .unwrap_or_default();
    if let Some(redis) = redis {
        args.extend(["--world", redis.world.as_str()]);
        envs.push(("REDIS_URL", redis.url.as_str()));
    }
    let server = Server::start_with_env(&args, &envs);
    server.wait_ready();

    // Before a checkpoint: two players join and send a command each.
    let mut answered: Vec<(String, String, String)> = Vec::new();
    let mut tokens = HashMap::new();
    for name in ["ann", "bob", "cat"] {
        let token = register(&server, name);
        tokens.insert(name.to_string(), token);
    }
    for name in ["ann", "bob"] {
        join(&server, &tokens[name], "north");
        let reply = command(
            &server,
            &tokens[name],
            json!({"id": "t-0", "type": "TRAIN", "general": format!("g-{name}")}),
        );
        assert_eq!(reply.status, 202, "{}", reply.text);
        answered.push((name.into(), tokens[name].clone(), "t-0".into()));
    }
    server.wait_durable();

    // After it, only the command log holds them: a join, commands with and without ids
    // (a general busy with its first order rejects the rest), then SIGKILL at once.
    let reply = crate::support::post(
        &server.url("/api/join"),
        Some(&tokens["cat"]),
        &json!({"name": "Cat", "nation": "north"}),
    );
    assert!(reply.status == 201 || reply.status == 202, "{}", reply.text);
    for round in 1..=4 {
        for name in ["ann", "bob", "cat"] {
            let id = format!("t-{round}");
            let body = if round == 4 {
                json!({"type": "TRAIN", "general": format!("g-{name}")})
            } else {
                json!({"id": id, "type": "TRAIN", "general": format!("g-{name}")})
            };
            let reply = command(&server, &tokens[name], body);
            assert_eq!(reply.status, 202, "{}", reply.text);
            let order = reply.json["order_id"].as_str().unwrap().to_string();
            answered.push((name.into(), tokens[name].clone(), order));
        }
    }
    let dir = server.kill_keeping_dir();

    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    assert!(
        server.log().contains("commands from the log applied again"),
        "{}",
        server.log()
    );
    for (player, token, id) in &answered {
        let order = wait_for(&format!("{player}'s order {id} to be decided"), || {
            let reply = get(&server, token, &format!("/api/orders/{id}"));
            assert_eq!(reply.status, 200, "{player} {id}: {}", reply.text);
            (reply.json["status"] != "queued").then_some(reply.json)
        });
        assert_eq!(
            order["revision"], 2,
            "recovered orders carry the new revision: {order}"
        );
        let expected = if id == "t-0" || (player == "cat" && id == "t-1") {
            "accepted"
        } else {
            "rejected"
        };
        assert_eq!(order["status"], expected, "{player} {id}: {order}");
    }
    for name in ["ann", "bob", "cat"] {
        let g = general(&server, &format!("g-{name}"));
        assert_eq!(g["status"], "busy", "{g}");
        assert_eq!(
            g["pcp"].as_u64().unwrap() + 5,
            g["pcp_max"].as_u64().unwrap(),
            "one TRAIN paid for, once: {g}"
        );
    }

    server.wait_durable();
    let events = all_events(&server);
    assert_contiguous(&events);
    for (player, _, id) in &answered {
        assert_eq!(
            decisions(&events, player, id),
            1,
            "{player}'s {id} is decided exactly once in the durable log"
        );
    }
    for name in ["ann", "bob", "cat"] {
        let joins = events
            .iter()
            .filter(|e| e["type"] == "CommandAccepted" && e["payload"]["command"] == "JOIN")
            .filter(|e| e["payload"]["player"] == name)
            .count();
        assert_eq!(joins, 1, "{name} joined once");
    }
    let recovered: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "WorldRecovered")
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["payload"]["incarnation"], 2);
    let last_durable = recovered[0]["payload"]["last_seq"].as_u64().unwrap();
    assert_eq!(recovered[0]["seq"].as_u64().unwrap(), last_durable + 1);
    assert!(
        events.iter().any(|e| e["type"] == "OrderRevised"),
        "replayed orders are announced as revised"
    );

    // A graceful restart keeps everything too, and the clock never goes back.
    let before = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    let dir = server.stop_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    let after = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    assert!(after >= before, "{after} < {before}");
    assert_eq!(general(&server, "g-cat")["status"], "busy");
    assert!(!server.log().contains("commands from the log applied again"));

    if let Some(mongo) = mongo {
        // Accounts live in MongoDB's `players` too.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let ann = runtime.block_on(async {
            let store = persistence::MongoStore::connect(&mongo.uri, Duration::from_secs(5))
                .await
                .unwrap();
            store.player("ann").await.unwrap()
        });
        assert_eq!(ann.map(|p| p.name), Some("ann".to_string()));
    }
}

#[test]
fn commands_survive_sigkill_with_the_embedded_store() {
    commands_survive_sigkill(None, None);
}

#[test]
fn commands_survive_sigkill_with_mongodb() {
    let mongo = Mongo::start();
    commands_survive_sigkill(Some(&mongo), None);
}

#[test]
fn a_mongodb_outage_loses_nothing() {
    let mut mongo = Mongo::start_on_disk();
    let args = [
        "--scenario",
        "tiny",
        "--speed",
        "100000",
        "--flush-interval",
        "0.2",
    ];
    let envs = [("MONGODB_URI", mongo.uri.clone())];
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with_env(&args, &envs);
    server.wait_durable();

    // MongoDB goes away for many flush intervals: the game goes on, epochs wait, and /ready
    // says so.
    mongo.stop();
    let outage = wait_for("/ready to report the outage with epochs waiting", || {
        let reply = server.get("/ready");
        let persistence = &reply.json["persistence"];
        (reply.status == 503
            && persistence["ok"] == false
            && persistence["buffered_batches"].as_u64()? >= 5)
            .then_some(reply.json)
    });
    assert_eq!(outage["persistence"]["store"], "mongodb", "{outage}");
    // Five epochs 0.2 s apart: the oldest has waited four intervals at least.
    assert!(
        outage["persistence"]["lag_seconds"].as_f64().unwrap() >= 0.5,
        "{outage}"
    );
    let during = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    let metrics = server.get("/metrics").text;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tianxia_buffered_batches ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // It comes back: everything waiting drains, in order.
    mongo.restart();
    wait_for("the waiting epochs to drain", || {
        let reply = server.get("/ready");
        (reply.status == 200
            && reply.json["persistence"]["buffered_batches"] == 0
            && reply.json["persistence"]["lag_seconds"] == 0.0)
            .then_some(())
    });
    server.wait_durable();
    let events = all_events(&server);
    assert_contiguous(&events);
    assert!(
        events
            .iter()
            .any(|e| e["game_time"].as_i64().unwrap() >= during),
        "events of the outage are durable"
    );

    // The state of the outage is durable too: a world recovered from MongoDB is at least as
    // far on as it was then.
    let dir = server.kill_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    assert!(
        server.log().contains("checkpoint loaded"),
        "{}",
        server.log()
    );
    let recovered = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    assert!(recovered >= during, "{recovered} < {during}");
    let events = all_events(&server);
    assert_contiguous(&events);
}

#[test]
fn a_truncated_store_is_refused_with_the_file_named() {
    let server = Server::start(&["--scenario", "tiny", "--speed", "2400"]);
    server.wait_durable();
    let dir = server.stop_keeping_dir();
    for file in ["tianxia.redb", "commands.redb"] {
        let path = dir.path().join("data").join(file);
        let bytes = fs::read(&path).unwrap();
        let backup = bytes.clone();
        fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
        let data = dir.path().join("data");
        let output = run(
            &[
                "serve",
                "--scenario",
                "tiny",
                "--bind",
                "127.0.0.1:0",
                "--data-dir",
                data.to_str().unwrap(),
                "--assets",
                crate::support::assets().to_str().unwrap(),
            ],
            &[],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()),
            "{file}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        fs::write(&path, backup).unwrap();
    }
}

/// Damage of every kind to a store file of a world that was played: each start is refused
/// (exit 1, never a crash) with the file named, or, for bytes flipped where nothing that was
/// committed lies, goes on with the whole world; none starts a new world over the old one.
#[test]
fn damaged_store_files_are_refused_and_never_replaced() {
    let server = Server::start(&["--scenario", "tiny", "--speed", "2400"]);
    let token = crate::play::register(&server, "ann");
    crate::play::join(&server, &token, "north");
    server.wait_durable();
    let mut dir = server.stop_keeping_dir();
    let flip = |bytes: &mut Vec<u8>, at: usize| {
        let end = (at + 512).min(bytes.len());
        for b in &mut bytes[at..end] {
            *b ^= 0x5A;
        }
    };
    for file in ["tianxia.redb", "commands.redb"] {
        let path = dir.path().join("data").join(file);
        let good = fs::read(&path).unwrap();
        let mut at_4096 = good.clone();
        flip(&mut at_4096, 4096);
        let mut middle = good.clone();
        flip(&mut middle, good.len() / 2);
        type Damage<'a> = Box<dyn Fn(&std::path::Path) + 'a>;
        let damages: Vec<(&str, Damage)> = vec![
            ("empty", Box::new(|p| fs::write(p, b"").unwrap())),
            ("missing", Box::new(|p| fs::remove_file(p).unwrap())),
            (
                "a directory",
                Box::new(|p| {
                    fs::remove_file(p).unwrap();
                    fs::create_dir(p).unwrap();
                }),
            ),
            (
                "flipped at 4096",
                Box::new(|p| fs::write(p, &at_4096).unwrap()),
            ),
            (
                "flipped in the middle",
                Box::new(|p| fs::write(p, &middle).unwrap()),
            ),
        ];
        for (damage, apply) in damages {
            apply(&path);
            dir = match Server::try_start_in(dir, &["--scenario", "tiny"]) {
                Err((status, log, dir)) => {
                    assert_eq!(status.code(), Some(1), "{file} {damage}: {log}");
                    assert!(
                        log.contains(&path.display().to_string()),
                        "{file} {damage}: {log}"
                    );
                    dir
                }
                // Bytes flipped where no commit reads (a free page, or the allocator state that
                // the integrity check rebuilds) change nothing: the world is whole.
                Ok(server) if damage.starts_with("flipped") => {
                    let login = crate::support::http::post(
                        &server.url("/api/auth/login"),
                        None,
                        &serde_json::json!({"name": "ann", "password": "correct horse"}),
                    );
                    assert_eq!(login.status, 200, "{}", login.text);
                    server.stop_keeping_dir()
                }
                Ok(server) => panic!("{file} {damage}: started: {}", server.log()),
            };
            if path.is_dir() {
                fs::remove_dir(&path).unwrap();
            }
            fs::write(&path, &good).unwrap();
        }
    }
    // Restored, the world comes back with its accounts.
    let server = Server::start_in(dir, &["--scenario", "tiny"], &[]);
    server.wait_ready();
    let login = crate::support::http::post(
        &server.url("/api/auth/login"),
        None,
        &serde_json::json!({"name": "ann", "password": "correct horse"}),
    );
    assert_eq!(login.status, 200, "{}", login.text);
}

/// A data directory written by the code before the structure pass (its checkpoint, order
/// windows and command log kept the old names; see `tests/fixtures/pre-structure`) recovers:
/// the accounts log in, the checkpoint's orders come back under the new incarnation, and the
/// two logged commands after it are applied once each.
#[test]
fn a_data_directory_written_before_the_structure_pass_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let fixture = repo().join("tests/fixtures/pre-structure");
    for file in ["tianxia.redb", "commands.redb"] {
        let packed = fs::read(fixture.join(format!("{file}.lz4"))).unwrap();
        let bytes = lz4_flex::decompress_size_prepended(&packed).unwrap();
        fs::write(data.join(file), bytes).unwrap();
    }
    // No AI, and a clock so slow that the years since the fixture was written are hours of
    // game time: the train-1 of the checkpoint may have completed, nothing else happens.
    let (_assets_dir, assets) = quiet_assets(|_, text| text);
    let server = Server::start_in(
        dir,
        &[
            "--scenario",
            "tiny",
            "--speed",
            "0.001",
            "--assets",
            assets.to_str().unwrap(),
        ],
        &[],
    );
    server.wait_ready();
    let log = server.log();
    assert!(log.contains("checkpoint loaded epoch=3"), "{log}");
    assert!(
        log.contains("applying the logged commands after the checkpoint commands=2"),
        "{log}"
    );
    let login = |name: &str| {
        let reply = post(
            &server.url("/api/auth/login"),
            None,
            &json!({"name": name, "password": "correct horse"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json["token"].as_str().unwrap().to_string()
    };
    let (alice, bob) = (login("alice"), login("bob"));
    let order = |token: &str, id: &str| {
        let reply = get(&server, token, &format!("/api/orders/{id}"));
        assert_eq!(reply.status, 200, "{id}: {}", reply.text);
        assert_eq!(reply.json["revision"], 2, "{id}: {}", reply.text);
        reply.json
    };
    let train = order(&alice, "train-1");
    assert!(
        ["accepted", "completed"].contains(&train["status"].as_str().unwrap()),
        "{train}"
    );
    let again = order(&alice, "srv-5");
    assert_eq!(again["status"], "rejected", "{again}");
    assert_eq!(again["reason"], "busy", "{again}");
    let march = order(&bob, "move-1");
    assert_eq!(march["status"], "accepted", "{march}");
    let bob_general = general(&server, "g-bob");
    assert_eq!(bob_general["status"], "marching", "{bob_general}");
    assert_eq!(bob_general["march"]["to"], "crossroads", "{bob_general}");
}

/// SIGKILL in the middle of a command load: four players send commands as fast as they are
/// answered, each from its own connection, and the server is killed while they do. After the
/// restart every command answered 202 is decided exactly once in the durable log, and each
/// player's order shows the decision the log holds.
#[test]
fn sigkill_under_a_command_load_loses_and_repeats_nothing() {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    };
    let (_assets, root) = quiet_assets(|_, text| text);
    let args = [
        "--scenario",
        "tiny",
        "--assets",
        root.to_str().unwrap(),
        "--flush-interval",
        "0.3",
    ];
    let server = Server::start_with_env(&args, &[]);
    server.wait_ready();
    let players = ["ann", "bob", "cat", "dan"];
    let tokens: Vec<String> = players
        .iter()
        .map(|name| {
            let token = register(&server, name);
            join(&server, &token, "north");
            token
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let taken = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = players
        .iter()
        .zip(&tokens)
        .map(|(name, token)| {
            let (name, token, stop) = (name.to_string(), token.clone(), stop.clone());
            let taken = taken.clone();
            let url = server.url("/api/commands");
            std::thread::spawn(move || {
                let mut answered = Vec::new();
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let id = format!("{name}-{i}");
                    let body = match i % 3 {
                        0 => json!({"id": id, "type": "TRAIN", "general": format!("g-{name}")}),
                        1 => json!({"id": id, "type": "RECRUIT", "general": format!("g-{name}"), "args": {"amount": 10}}),
                        _ => json!({"id": id, "type": "MOVE", "general": format!("g-{name}"), "args": {"to": "hill_fort"}}),
                    };
                    // A killed server answers nothing: the command may or may not be logged,
                    // and only a 202 promises it was.
                    match crate::support::try_post(&url, Some(&token), &body) {
                        Some(reply) if reply.status == 202 => {
                            answered.push(id);
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                        Some(reply) if reply.status == 429 => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => break,
                    }
                }
                answered
            })
        })
        .collect();
    wait_for("commands to flow and some to be checkpointed", || {
        let ready = server.get("/ready").json;
        (ready["persistence"]["durable_seq"].as_u64()? > 40 && taken.load(Ordering::SeqCst) > 200)
            .then_some(())
    });
    let dir = server.kill_keeping_dir();
    stop.store(true, Ordering::SeqCst);
    let answered: Vec<Vec<String>> = senders.into_iter().map(|s| s.join().unwrap()).collect();
    assert!(
        answered.iter().map(Vec::len).sum::<usize>() > 20,
        "{answered:?}"
    );

    let server = Server::start_in(dir, &args, &[]);
    server.wait_ready();
    // The kill came between checkpoints: commands only the log held were applied again.
    assert!(
        server.log().contains("commands from the log applied again"),
        "{}",
        server.log()
    );
    eprintln!(
        "answered before the kill: {:?}",
        answered.iter().map(Vec::len).collect::<Vec<_>>()
    );
    server.wait_durable();
    let events = wait_for("every answered command to be durable", || {
        let events = all_events(&server);
        answered
            .iter()
            .zip(players)
            .all(|(ids, player)| ids.iter().all(|id| decisions(&events, player, id) > 0))
            .then_some(events)
    });
    assert_contiguous(&events);
    for (ids, (player, token)) in answered.iter().zip(players.iter().zip(&tokens)) {
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(decisions(&events, player, id), 1, "{player}'s {id}");
            // Orders older than the window (its last 100 finished orders) are no longer kept.
            if n + 90 < ids.len() {
                continue;
            }
            let accepted = events.iter().any(|e| {
                e["type"] == "CommandAccepted"
                    && e["payload"]["player"] == *player
                    && e["payload"]["order_id"] == *id
            });
            let order = get(&server, token, &format!("/api/orders/{id}")).json;
            let status = order["status"].as_str().unwrap_or_default();
            if accepted {
                assert!(
                    ["accepted", "completed", "cancelled"].contains(&status),
                    "{player}'s {id} was accepted: {order}"
                );
            } else {
                assert_eq!(status, "rejected", "{player}'s {id}: {order}");
            }
        }
    }
}

/// Two `serve` processes without Redis, on different data directories, pointed at one MongoDB
/// world: the one started last fences the first out (its next checkpoint is refused and it
/// stops, exit 1), so the world never has two writers; a world a daemon wrote before is
/// served without Redis afterwards.
#[test]
fn a_second_writer_of_a_mongodb_world_fences_the_first_out() {
    let mongo = Mongo::start();
    let envs = [("MONGODB_URI", mongo.uri.as_str())];
    let args = [
        "--scenario",
        "tiny",
        "--world",
        "shared",
        "--flush-interval",
        "0.2",
    ];
    let mut first = Server::start_with_env(&args, &envs);
    first.wait_ready();
    let token = register(&first, "ann");
    join(&first, &token, "north");
    first.wait_durable();

    let second = Server::start_with_env(&args, &envs);
    second.wait_ready();
    // The second recovered the first's world: the account and the general are there.
    assert_eq!(general(&second, "g-ann")["owner"], "ann");
    let status = first.wait_exit();
    assert_eq!(status.code(), Some(1), "{}", first.log());
    assert!(first.log().contains("fenced out"), "{}", first.log());
    // The second goes on writing the world.
    second.wait_durable();
    assert_eq!(second.get("/ready").status, 200);

    // A world a daemon wrote (lease epochs from the same fence) moves to a serve without
    // Redis after a graceful stop: its checkpoints are not refused.
    let redis = RedisWorld::new("moved");
    let daemon_args = [
        "--scenario",
        "tiny",
        "--world",
        redis.world.as_str(),
        "--flush-interval",
        "0.2",
    ];
    let daemon = Server::start_as(
        "daemon",
        &daemon_args,
        &[
            ("REDIS_URL", redis.url.as_str()),
            ("MONGODB_URI", mongo.uri.as_str()),
        ],
    );
    daemon.wait_ready();
    let _ = daemon.stop_keeping_dir();
    let moved = Server::start_with_env(&daemon_args, &envs);
    moved.wait_ready();
    moved.wait_durable();
    assert!(
        !moved.log().contains("checkpoint refused"),
        "{}",
        moved.log()
    );
}
