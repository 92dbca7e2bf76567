//! The sandbox (docs/sandbox.md) as a client developer uses it: `serve --sandbox`, then the
//! admin routes over HTTP to give troops and gold, teleport a general, stop, start and speed
//! the clock; the edits outlive a restart; a sandbox world is served only as one, no other
//! world becomes one, and the sandbox is never on by default nor with Redis.

use serde_json::{Value, json};

use crate::{
    play::{command, get, register},
    support::{Server, post, run, wait_for},
};

fn sandbox(server: &Server, token: &str, edit: &str, body: Value) -> crate::support::Reply {
    post(
        &server.url(&format!("/api/sandbox/{edit}")),
        Some(token),
        &body,
    )
}

fn game_seconds(server: &Server) -> i64 {
    server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap()
}

#[test]
fn a_client_developer_edits_a_sandbox_world_and_the_edits_outlive_a_restart() {
    let args = ["--scenario", "tiny", "--sandbox", "--flush-interval", "0.5"];
    let server = Server::start(&args);
    server.wait_ready();
    let world = server.get("/api/world").json;
    assert_eq!(
        (world["sandbox"].clone(), world["paused"].clone()),
        (json!(true), json!(false))
    );
    let token = register(&server, "Dev");
    // A ronin: it may stand in any city it need not fight for.
    let joined = post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Dev"}),
    );
    assert_eq!(joined.status, 201, "{}", joined.text);
    let troops = joined.json["troops"].as_i64().unwrap();
    assert_ne!(joined.json["city"], "east_port", "{}", joined.text);

    // Stop the clock first, so the economy does not move what the edits are checked against.
    let reply = sandbox(&server, &token, "clock", json!({"paused": true}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["status"], "completed", "{}", reply.text);
    assert_eq!(reply.json["type"], "SANDBOX");
    let world = server.get("/api/world").json;
    assert_eq!(world["paused"], true, "{world}");
    let stopped_at = world["game_seconds"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert_eq!(game_seconds(&server), stopped_at);

    // Troops to (and from) a general, gold to a city.
    let reply = sandbox(
        &server,
        &token,
        "give",
        json!({"general": "g-dev", "troops": -1000}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        server.get("/api/generals/g-dev").json["troops"],
        troops - 1_000
    );
    let gold = server.get("/api/cities/west_ford").json["gold"]
        .as_i64()
        .unwrap();
    let reply = sandbox(
        &server,
        &token,
        "give",
        json!({"city": "west_ford", "gold": 1000}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        server.get("/api/cities/west_ford").json["gold"],
        gold + 1_000
    );

    // A teleport to a nation's city; not into the outlaws' Crossroads, which must be fought
    // for.
    let reply = sandbox(
        &server,
        &token,
        "teleport",
        json!({"general": "g-dev", "to": "east_port"}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(server.get("/api/generals/g-dev").json["city"], "east_port");
    let reply = sandbox(
        &server,
        &token,
        "teleport",
        json!({"general": "g-dev", "to": "crossroads"}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert!(reply.text.contains("fight"), "{}", reply.text);

    // Bad edits: a clear error, nothing changed.
    for (edit, body, status, code) in [
        (
            "give",
            json!({"general": "nobody", "troops": 1}),
            404,
            "not_found",
        ),
        (
            "give",
            json!({"general": "g-dev", "city": "west_ford", "troops": 1}),
            400,
            "invalid_args",
        ),
        (
            "give",
            json!({"general": "g-dev", "gold": 1}),
            400,
            "invalid_args",
        ),
        (
            "give",
            json!({"city": "west_ford", "troops": 1, "horses": 3}),
            400,
            "invalid_field",
        ),
        ("clock", json!({"speed": 0}), 400, "invalid_args"),
        ("clock", json!({}), 400, "invalid_args"),
    ] {
        let reply = sandbox(&server, &token, edit, body.clone());
        assert_eq!(reply.status, status, "{edit} {body}: {}", reply.text);
        assert_eq!(
            reply.json["error"]["code"], code,
            "{edit} {body}: {}",
            reply.text
        );
    }
    assert_eq!(
        server.get("/api/generals/g-dev").json["troops"],
        troops - 1_000
    );
    let reply = sandbox(&server, "not-a-token", "clock", json!({"paused": false}));
    assert_eq!(reply.status, 401, "{}", reply.text);
    // Not a command of the game.
    let reply = command(
        &server,
        &token,
        json!({"type": "SANDBOX", "args": {"edit": "clock", "paused": false}}),
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json["error"]["code"], "unknown_command");

    // Every edit is an event, on the aggregate it changed (once durable).
    let aggregates = wait_for("the sandbox's events to be durable", || {
        let events = server.get("/api/events?limit=1000").json;
        let aggregates: Vec<String> = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "SandboxEdited")
            .map(|e| e["aggregate"].as_str().unwrap().to_string())
            .collect();
        (aggregates.len() >= 4).then_some(aggregates)
    });
    assert_eq!(
        aggregates,
        [
            "world:main",
            "general:g-dev",
            "city:west_ford",
            "general:g-dev"
        ]
    );

    // Faster, and going again.
    let reply = sandbox(
        &server,
        &token,
        "clock",
        json!({"speed": 600, "paused": false}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let world = server.get("/api/world").json;
    assert_eq!(
        (world["speed"].clone(), world["paused"].clone()),
        (json!(600.0), json!(false))
    );
    wait_for("the clock to run at the sandbox's speed", || {
        (game_seconds(&server) >= stopped_at + 1_200).then_some(())
    });

    // Stopped again, then a restart: the edits and the stopped clock are still there.
    let reply = sandbox(&server, &token, "clock", json!({"paused": true}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let stopped_at = game_seconds(&server);
    let dir = server.stop_keeping_dir();
    let server = Server::start_in(dir, &args, &[]);
    server.wait_ready();
    let world = server.get("/api/world").json;
    assert_eq!(world["paused"], true, "{world}");
    assert_eq!(world["speed"], 600.0, "{world}");
    assert_eq!(world["game_seconds"], stopped_at, "{world}");
    let general = get(&server, &token, "/api/generals/g-dev").json;
    assert_eq!(
        (general["city"].clone(), general["troops"].clone()),
        (json!("east_port"), json!(troops - 1_000))
    );

    // A sandbox world is served only as one.
    let dir = server.stop_keeping_dir();
    let (status, log, _) = Server::try_start_in(dir, &["--scenario", "tiny"])
        .map(|_| ())
        .expect_err("a sandbox world served without --sandbox");
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("is a sandbox: serve it with --sandbox"),
        "{log}"
    );
}

#[test]
fn the_sandbox_is_never_on_by_default_and_never_with_redis() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    assert_eq!(server.get("/api/world").json["sandbox"], false);
    let token = register(&server, "Player");
    let reply = sandbox(&server, &token, "clock", json!({"paused": true}));
    assert_eq!(reply.status, 404, "{}", reply.text);
    assert!(reply.text.contains("serve --sandbox"), "{}", reply.text);
    assert_eq!(server.get("/api/world").json["paused"], false);

    // A world that is not a sandbox does not become one.
    let dir = server.stop_keeping_dir();
    let (status, log, _) = Server::try_start_in(dir, &["--scenario", "tiny", "--sandbox"])
        .map(|_| ())
        .expect_err("a world made a sandbox after the fact");
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(log.contains("was not created as a sandbox"), "{log}");

    // Not with Redis, and not in the other roles.
    let out = run(
        &["serve", "--sandbox"],
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("MONGODB_URI", "mongodb://127.0.0.1:1"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("without Redis"));
    let out = run(
        &["daemon", "--sandbox"],
        &[
            ("REDIS_URL", "redis://127.0.0.1:1"),
            ("MONGODB_URI", "mongodb://127.0.0.1:1"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("serve only"));
}

#[test]
fn a_sandbox_kept_in_mongodb_comes_back_stopped_at_its_own_speed() {
    let mongo = crate::support::Mongo::start();
    let envs = [("MONGODB_URI", mongo.uri.as_str())];
    let args = ["--scenario", "tiny", "--sandbox", "--flush-interval", "0.5"];
    let server = Server::start_with_env(&args, &envs);
    server.wait_ready();
    let token = register(&server, "Dev");
    let reply = sandbox(
        &server,
        &token,
        "clock",
        json!({"paused": true, "speed": 120}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let stopped_at = game_seconds(&server);
    let dir = server.stop_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    assert!(
        server.log().contains("checkpoint loaded"),
        "{}",
        server.log()
    );
    let world = server.get("/api/world").json;
    assert_eq!(
        (
            world["sandbox"].clone(),
            world["paused"].clone(),
            world["speed"].clone()
        ),
        (json!(true), json!(true), json!(120.0)),
        "{world}"
    );
    assert_eq!(world["game_seconds"], stopped_at, "{world}");
    let dir = server.stop_keeping_dir();
    let launched = Server::launch_in(dir, &["--scenario", "tiny"], &envs);
    let mut server = launched.0;
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(2), "{}", server.log());
    assert!(server.log().contains("is a sandbox"), "{}", server.log());
}

#[test]
fn a_sandbox_stopped_after_its_last_checkpoint_comes_back_stopped_after_a_crash() {
    // Checkpoints a minute apart: the stop is only in the command log when the process dies.
    let args = [
        "--scenario",
        "tiny",
        "--sandbox",
        "--speed",
        "2400",
        "--flush-interval",
        "60",
    ];
    let server = Server::start(&args);
    server.wait_durable();
    let token = register(&server, "Dev");
    let reply = sandbox(&server, &token, "clock", json!({"paused": true}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let dir = server.kill_keeping_dir();
    // Down for a while: at speed 2,400 a running clock would owe hours of game time.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let server = Server::start_in(dir, &args, &[]);
    server.wait_ready();
    let log = server.log();
    assert!(log.contains("applying the logged commands"), "{log}");
    assert!(!log.contains("catching up on the time"), "{log}");
    let world = server.get("/api/world").json;
    assert_eq!(world["paused"], true, "{world}");
    let at = world["game_seconds"].as_i64().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert_eq!(game_seconds(&server), at);
}
