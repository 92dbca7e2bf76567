//! The Redis command stream (docs/redis.md#the-command-stream) with the real binary: producers
//! `XADD` commands straight into `cmd:game:{world}` and the World applies them; entries that
//! are not commands go to the dead-letter stream and change nothing; entries are acknowledged
//! and trimmed once a checkpoint covers them; commands answered 202 survive a SIGKILL.

use serde_json::{Value, json};

use crate::{
    play::{command, general, get, join, quiet_assets, register},
    support::{Mongo, RedisServer, RedisWorld, Server, wait_for},
};

/// `serve` in Redis mode on the tiny scenario, for `redis`'s world.
fn start(mongo: &Mongo, redis: &RedisWorld) -> (Server, tempfile::TempDir) {
    let (assets, root) = quiet_assets(|_, text| text);
    let server = Server::start_with_env(
        &[
            "--scenario",
            "tiny",
            "--speed",
            "24",
            "--world",
            &redis.world,
            "--assets",
            root.to_str().unwrap(),
        ],
        &[("REDIS_URL", &redis.url), ("MONGODB_URI", &mongo.uri)],
    );
    server.wait_ready();
    (server, assets)
}

fn order(server: &Server, token: &str, id: &str) -> Value {
    wait_for(&format!("order {id} to be decided"), || {
        let reply = get(server, token, &format!("/api/orders/{id}"));
        (reply.status == 200 && reply.json["status"] != "queued").then_some(reply.json)
    })
}

fn xlen(redis: &RedisWorld, key: &str) -> usize {
    redis::cmd("XLEN")
        .arg(key)
        .query(&mut redis.connection())
        .unwrap()
}

#[test]
fn commands_added_straight_to_the_stream_are_applied() {
    let mongo = Mongo::start();
    let redis = RedisWorld::new("xadd");
    let (server, _assets) = start(&mongo, &redis);
    let token = register(&server, "ann");
    // JOIN through HTTP travels the stream too.
    join(&server, &token, "north");

    // Live events and cache invalidations go out on Pub/Sub.
    let mut listener = redis.connection();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(60)))
        .unwrap();
    let mut pubsub = listener.as_pubsub();
    pubsub
        .subscribe(format!("channel:game:events:{}", redis.world))
        .unwrap();
    pubsub
        .subscribe(format!("channel:cache:invalidate:{}", redis.world))
        .unwrap();

    // Another service adds commands with the stream payload (docs/redis.md#entry-payload), with
    // and without an id.
    redis.xadd_command(&json!({
        "id": "x-1", "player": "ann", "type": "TRAIN", "general": "g-ann", "args": {}, "ts": 1
    }));
    let entry = redis.xadd_command(&json!({
        "player": "ann", "type": "TRAIN", "general": "g-ann"
    }));
    let trained = order(&server, &token, "x-1");
    assert_eq!(trained["status"], "accepted", "{trained}");
    // The second finds the general busy; its id comes from its entry id.
    let second = order(&server, &token, &format!("srv-{entry}"));
    assert_eq!(second["status"], "rejected", "{second}");
    assert_eq!(second["reason"], "busy", "{second}");
    let g = general(&server, "g-ann");
    assert_eq!(g["status"], "busy", "{g}");
    let (mut accepted, mut invalidated) = (false, false);
    while !(accepted && invalidated) {
        let message = pubsub.get_message().unwrap();
        let body: Value = serde_json::from_str(&message.get_payload::<String>().unwrap()).unwrap();
        if message
            .get_channel_name()
            .starts_with("channel:game:events:")
        {
            accepted |= body["type"] == "CommandAccepted" && body["payload"]["order_id"] == "x-1";
        } else {
            invalidated |= body["keys"].as_array().is_some_and(|keys| {
                keys.contains(&json!(format!("state:{}:general:g-ann", redis.world)))
            });
        }
    }
    drop(pubsub);

    // L2 read models and the order hashes follow the World.
    let l2 = |key: String| -> std::collections::HashMap<String, String> {
        redis::cmd("HGETALL")
            .arg(key)
            .query(&mut redis.connection())
            .unwrap()
    };
    let g2 = wait_for("the general's L2 read model to show it busy", || {
        let hash = l2(format!("state:{}:general:g-ann", redis.world));
        let view: Value = serde_json::from_str(hash.get("json")?).ok()?;
        (view["status"] == "busy").then_some((hash, view))
    });
    assert_eq!(g2.0["version"], g2.1["version"].to_string(), "{g2:?}");
    for kind in [
        "world:summary",
        "nation:north",
        "city:north_gate",
        "leaderboard:cities",
    ] {
        let hash = l2(format!("state:{}:{kind}", redis.world));
        assert!(
            hash.contains_key("version") && hash.contains_key("json"),
            "{kind}: {hash:?}"
        );
    }
    let x1 = wait_for("the order hash to advance", || {
        let hash = l2(format!("order:{}:ann:x-1", redis.world));
        (hash.get("status").map(String::as_str) == Some("accepted")).then_some(hash)
    });
    assert_eq!(x1["revision"], "1", "{x1:?}");
    assert_eq!(x1["stage"], "1", "{x1:?}");

    // Through HTTP: the order hash is created with the entry, a repeat answers the same and
    // another body under the same id is a conflict.
    let reply = command(
        &server,
        &token,
        json!({"id": "h-1", "type": "RECRUIT", "general": "g-ann", "args": {"amount": 10}}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg(format!("order:{}:ann:h-1", redis.world))
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(
        hash.get("type").map(String::as_str),
        Some("RECRUIT"),
        "{hash:?}"
    );
    assert!(
        hash.contains_key("entry") && hash.contains_key("body_hash"),
        "{hash:?}"
    );
    let repeat = command(
        &server,
        &token,
        json!({"id": "h-1", "type": "RECRUIT", "general": "g-ann", "args": {"amount": 10}}),
    );
    assert_eq!(repeat.status, 202, "{}", repeat.text);
    let conflict = command(
        &server,
        &token,
        json!({"id": "h-1", "type": "RECRUIT", "general": "g-ann", "args": {"amount": 11}}),
    );
    assert_eq!(conflict.status, 409, "{}", conflict.text);
    assert_eq!(conflict.json["error"]["code"], "id_conflict");
    assert_eq!(order(&server, &token, "h-1")["status"], "rejected");

    // Once checkpoints cover them, the entries are acknowledged and trimmed.
    wait_for("the stream to be acknowledged and trimmed", || {
        (redis.pending() == 0 && xlen(&redis, &redis.stream()) == 0).then_some(())
    });
    let metrics = server.get("/metrics").text;
    assert!(metrics.contains("tianxia_stream_pending 0"), "{metrics}");
}

#[test]
fn entries_that_are_not_commands_go_to_the_dead_letter_stream() {
    let mongo = Mongo::start();
    let redis = RedisWorld::new("dlq");
    let (server, _assets) = start(&mongo, &redis);
    let token = register(&server, "bob");
    join(&server, &token, "north");
    server.wait_durable();
    let before = general(&server, "g-bob");

    let f = |name: &'static str, value: &'static [u8]| (name, value);
    let garbage: Vec<Vec<(&str, &[u8])>> = vec![
        vec![f("junk", b"1")],
        vec![f("payload", b"not json")],
        vec![f("payload", b"\xff\xfe\xfd")],
        vec![f(
            "payload",
            br#"{"player":"bob","type":"SUMMON_DRAGON","general":"g-bob"}"#,
        )],
        vec![f(
            "payload",
            br#"{"player":"bob","type":"RECRUIT","general":"g-bob","args":{"amount":999999}}"#,
        )],
        vec![f(
            "payload",
            br#"{"player":"bob","type":"TRAIN","general":"g-bob","colour":"red"}"#,
        )],
        vec![
            f(
                "payload",
                br#"{"player":"bob","type":"TRAIN","general":"g-bob"}"#,
            ),
            f("extra", b"x"),
        ],
        // A megabyte of command type, which its error quotes.
        vec![f(
            "payload",
            Box::leak(
                format!(
                    r#"{{"player":"bob","type":"{}","general":"g-bob"}}"#,
                    "X".repeat(1 << 20)
                )
                .into_boxed_str(),
            )
            .as_bytes(),
        )],
    ];
    let ids: Vec<String> = garbage.iter().map(|fields| redis.xadd(fields)).collect();
    // A good command after them: once it is decided, the reader has passed the garbage.
    redis.xadd_command(
        &json!({"id": "after", "player": "bob", "type": "TRAIN", "general": "g-bob"}),
    );
    assert_eq!(order(&server, &token, "after")["status"], "accepted");

    let dlq: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(format!("{}:dlq", redis.stream()))
        .arg("-")
        .arg("+")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(dlq.ids.len(), garbage.len(), "{dlq:?}");
    for (dead, (id, fields)) in dlq.ids.iter().zip(ids.iter().zip(&garbage)) {
        assert_eq!(dead.get::<String>("entry").as_ref(), Some(id), "{dead:?}");
        let error: String = dead.get("error").unwrap();
        assert!(!error.is_empty());
        for (name, value) in fields {
            let kept: Vec<u8> = dead.get(name).unwrap();
            assert_eq!(&kept, value, "the original field {name} is kept");
        }
    }
    let errors: Vec<String> = dlq.ids.iter().map(|d| d.get("error").unwrap()).collect();
    assert!(errors[0].contains("unknown field"), "{errors:?}");
    assert!(errors[3].contains("unknown command"), "{errors:?}");
    assert!(errors[4].contains("amount"), "{errors:?}");
    // Errors, and the log lines that tell them, stay short whatever the entry quotes.
    assert!(
        errors.iter().all(|e| e.len() < 1_200),
        "{:?}",
        errors[7].len()
    );
    assert!(errors[7].contains("more bytes"), "{}", &errors[7][..200]);
    assert!(server.log().lines().all(|line| line.len() < 20_000));

    // The world is as before apart from the good command: no order for any of them, one TRAIN
    // paid for.
    let after = general(&server, "g-bob");
    assert_eq!(
        after["pcp"].as_u64().unwrap() + 5,
        before["pcp"].as_u64().unwrap()
    );
    assert_eq!(after["troops"], before["troops"]);
    server.wait_durable();
    let events = server.get("/api/events?limit=1000").json;
    let decided: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "CommandAccepted" || e["type"] == "CommandRejected")
        .collect();
    assert_eq!(
        decided.len(),
        2,
        "the join and the good TRAIN only: {decided:?}"
    );
    // Dead letters are acknowledged at once; the rest once a checkpoint covers them.
    wait_for("the stream to be acknowledged", || {
        (redis.pending() == 0).then_some(())
    });
}

#[test]
fn commands_answered_202_survive_sigkill_in_redis_mode() {
    let mongo = Mongo::start();
    let redis = RedisWorld::new("kill");
    crate::persist::commands_survive_sigkill(Some(&mongo), Some(&redis));
}

#[test]
fn redis_stopped_and_started_again_loses_nothing() {
    let mongo = Mongo::start();
    let mut own = RedisServer::start();
    let redis = RedisWorld::on(&own.url, "outage");
    let (server, _assets) = start(&mongo, &redis);
    let token = register(&server, "cat");
    join(&server, &token, "north");
    let mut answered = Vec::new();
    for i in 0..5 {
        let reply = command(
            &server,
            &token,
            json!({"id": format!("before-{i}"), "type": "TRAIN", "general": "g-cat"}),
        );
        assert_eq!(reply.status, 202, "{}", reply.text);
        answered.push(format!("before-{i}"));
    }
    assert_eq!(order(&server, &token, "before-0")["status"], "accepted");

    own.stop();
    let stopped = std::time::Instant::now();
    // Commands cannot be taken: 503 with the error shape; reads and the clock go on.
    let refused = wait_for("commands to be refused", || {
        let reply = command(
            &server,
            &token,
            json!({"id": "during", "type": "TRAIN", "general": "g-cat"}),
        );
        (reply.status == 503).then_some(reply)
    });
    assert_eq!(
        refused.json["error"]["code"], "unavailable",
        "{}",
        refused.text
    );
    let clock = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    wait_for("the World to keep ticking", || {
        let world = server.get("/api/world");
        assert_eq!(world.status, 200);
        (world.json["game_seconds"].as_i64().unwrap() > clock).then_some(())
    });
    assert_eq!(general(&server, "g-cat")["status"], "busy");
    // Long enough for the lease to lapse.
    wait_for("the lease to lapse", || {
        (stopped.elapsed() > std::time::Duration::from_secs(11)).then_some(())
    });

    own.restart();
    let after = wait_for("commands to be taken again", || {
        let reply = command(
            &server,
            &token,
            json!({"id": "after", "type": "RECRUIT", "general": "g-cat", "args": {"amount": 5}}),
        );
        (reply.status == 202).then_some(reply)
    });
    assert_eq!(after.json["order_id"], "after");
    answered.push("after".into());
    for id in &answered {
        let decided = order(&server, &token, id);
        assert_eq!(decided["revision"], 1, "no recovery was needed: {decided}");
    }
    server.wait_durable();
    wait_for("every entry to be acknowledged", || {
        (redis.pending() == 0).then_some(())
    });
    let events = server.get("/api/events?limit=1000").json;
    for id in &answered {
        let n = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "CommandAccepted" || e["type"] == "CommandRejected")
            .filter(|e| e["payload"]["order_id"] == *id)
            .count();
        assert_eq!(n, 1, "{id} decided {n} times");
    }
    assert!(
        server.log().contains("lapsed while Redis was out of reach"),
        "{}",
        server.log()
    );
}

#[test]
fn redis_losing_its_data_mid_run_is_recovered_from() {
    let mongo = Mongo::start();
    let mut own = RedisServer::start();
    let redis = RedisWorld::on(&own.url, "wiped");
    let (server, _assets) = start(&mongo, &redis);
    let token = register(&server, "eve");
    join(&server, &token, "north");
    let reply = command(
        &server,
        &token,
        json!({"id": "before", "type": "TRAIN", "general": "g-eve"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(order(&server, &token, "before")["status"], "accepted");
    server.wait_durable();

    // Redis comes back empty: no group, no stream, no read models, no tokens.
    own.restart_empty();
    let token = wait_for("logging in again", || {
        let reply = crate::support::post(
            &server.url("/api/auth/login"),
            None,
            &json!({"name": "eve", "password": "correct horse"}),
        );
        (reply.status == 200).then(|| reply.json["token"].as_str().unwrap().to_string())
    });
    let after = wait_for("a command to be taken again", || {
        let reply = command(
            &server,
            &token,
            json!({"id": "after", "type": "RECRUIT", "general": "g-eve", "args": {"amount": 5}}),
        );
        (reply.status == 202).then_some(reply)
    });
    assert_eq!(after.json["order_id"], "after");
    // The group is made again where the World is, and the command is applied.
    let decided = order(&server, &token, "after");
    assert_eq!(decided["status"], "rejected", "busy training: {decided}");
    // The read models are written again in full.
    wait_for("the L2 read models to be written again", || {
        let hash: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("state:{}:city:north_gate", redis.world))
            .query(&mut redis.connection())
            .ok()?;
        hash.contains_key("json").then_some(())
    });
    assert!(
        server.log().contains("creating it again"),
        "{}",
        server.log()
    );
}

#[test]
fn a_backlog_larger_than_the_order_window_advances_every_order_hash() {
    // More of one player's commands decided between two L2 rounds than the order window keeps
    // (100 finished): each order's hash still reaches its decision, evicted or not.
    let mongo = Mongo::start();
    let redis = RedisWorld::new("backlog");
    let (server, _assets) = start(&mongo, &redis);
    let token = register(&server, "ann");
    join(&server, &token, "north");
    let mut pipe = redis::pipe();
    for i in 0..150 {
        let payload = json!({
            "id": format!("b-{i}"), "player": "ann", "type": "TRAIN", "general": "g-ann"
        });
        pipe.cmd("XADD")
            .arg(redis.stream())
            .arg("*")
            .arg("payload")
            .arg(payload.to_string())
            .ignore();
    }
    pipe.query::<()>(&mut redis.connection()).unwrap();
    let status = |i: usize| -> Option<String> {
        redis::cmd("HGET")
            .arg(format!("order:{}:ann:b-{i}", redis.world))
            .arg("status")
            .query(&mut redis.connection())
            .unwrap()
    };
    // The first trains; the rest find the general busy.
    wait_for("the last order's hash to be decided", || {
        (status(149).as_deref() == Some("rejected")).then_some(())
    });
    // Accepted, or already completed on a slow machine.
    assert!(
        matches!(status(0).as_deref(), Some("accepted" | "completed")),
        "{:?}",
        status(0)
    );
    for i in 1..150 {
        assert_eq!(status(i).as_deref(), Some("rejected"), "order b-{i}");
    }
}
