//! The admin routes (docs/http.md#admin-routes) and the designer's loop on a running server
//! (docs/data-files.md#hot-reload): an edit to a copied `assets/` is noticed, validated and in
//! force for the next command, told as `AssetsReloaded`; an invalid edit leaves the old data
//! in force and is shown at `/admin/status` with file and line; `POST /admin/reload` answers
//! 200 or 422 with every error; `POST /admin/flush` makes everything before it durable;
//! `POST /admin/maintenance` refuses commands across restarts while reads go on; the admin
//! routes answer 404 without `TIANXIA_ADMIN_TOKEN` and 401 with a wrong one.

use std::fs;

use serde_json::{Value, json};

use crate::{
    play::{command, get, register},
    support::{Server, copy_dir, repo, request, wait_for},
};

const ADMIN: &str = "an-admin-token-for-the-tests";

fn admin(server: &Server, method: &str, path: &str, token: &str) -> crate::support::Reply {
    let body = (method == "POST").then_some(b"".as_slice());
    request(method, &server.url(path), Some(token), body)
}

fn train_pcp(server: &Server) -> Value {
    server.get("/api/rules").json["commands"]["TRAIN"]["pcp"].clone()
}

/// Replaces `from` by `to` in the copied file, as an editor's save would.
fn edit(path: &std::path::Path, from: &str, to: &str) {
    let text = fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn an_edit_applies_to_the_next_command_and_a_bad_one_leaves_the_old_data_in_force() {
    // The assets directory as an operator names it: relative to where the server runs.
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    copy_dir(&repo().join("assets"), &assets);
    let commands = assets.join("commands.toml");
    let server = Server::start_in(
        dir,
        &[
            "--scenario",
            "tiny",
            "--assets",
            "assets",
            "--flush-interval",
            "0.5",
        ],
        &[("TIANXIA_ADMIN_TOKEN", ADMIN)],
    );
    server.wait_ready();
    let hash = server.get("/api/world").json["data_hash"].clone();
    assert_eq!(train_pcp(&server), 5);
    let token = register(&server, "Designer");
    let joined = crate::support::post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Designer", "nation": "west"}),
    );
    assert_eq!(joined.status, 201, "{}", joined.text);

    // TRAIN now costs more PCP than any general holds: the next TRAIN says so.
    edit(&commands, "[TRAIN]\npcp = 5", "[TRAIN]\npcp = 999");
    wait_for("the edit to be in force", || {
        (train_pcp(&server) == 999).then_some(())
    });
    let new_hash = server.get("/api/world").json["data_hash"].clone();
    assert_ne!(new_hash, hash);
    let reply = command(
        &server,
        &token,
        json!({"id": "train-1", "type": "TRAIN", "general": "g-designer"}),
    );
    assert_eq!(reply.status, 202, "{}", reply.text);
    let order = wait_for("the TRAIN to be decided", || {
        let order = get(&server, &token, "/api/orders/train-1").json;
        (order["status"] != "queued").then_some(order)
    });
    assert_eq!(order["reason"], "insufficient_pcp", "{order}");
    assert!(
        order["message"].as_str().unwrap().contains("999"),
        "{order}"
    );
    let reloaded = wait_for("AssetsReloaded in the event log", || {
        let events = server.get("/api/events?limit=1000").json;
        events
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "AssetsReloaded")
            .cloned()
    });
    assert_eq!(reloaded["payload"]["data_hash"], new_hash, "{reloaded}");
    assert_eq!(reloaded["payload"]["files"], json!(["commands.toml"]));

    // Out of range: refused, shown with its file and line, the old data in force.
    edit(&commands, "[TRAIN]\npcp = 999", "[TRAIN]\npcp = 5000");
    let status = wait_for("/admin/status to show the refused edit", || {
        let reply = admin(&server, "GET", "/admin/status", ADMIN);
        assert_eq!(reply.status, 200, "{}", reply.text);
        (!reply.json["reload"]["errors"].as_array()?.is_empty()).then_some(reply.json)
    });
    let errors = status["reload"]["errors"].to_string();
    assert!(errors.contains("commands.toml:9:"), "{status}");
    assert!(errors.contains("[TRAIN] pcp"), "{status}");
    assert_eq!(status["data_hash"], new_hash, "{status}");
    assert_eq!(train_pcp(&server), 999);
    assert!(
        server.log().contains("designer data edit refused"),
        "{}",
        server.log()
    );
    let reply = admin(&server, "POST", "/admin/reload", ADMIN);
    assert_eq!(reply.status, 422, "{}", reply.text);
    assert_eq!(reply.json["error"]["code"], "invalid_data");
    assert!(
        reply.json["errors"][0]
            .as_str()
            .unwrap()
            .contains("commands.toml:9:")
    );

    // Mended, and reloaded on demand: 200 once the World has it in force.
    edit(&commands, "[TRAIN]\npcp = 5000", "[TRAIN]\npcp = 3");
    let reply = wait_for("a reload of the mended file", || {
        let reply = admin(&server, "POST", "/admin/reload", ADMIN);
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(train_pcp(&server), 3, "{}", reply.text);
    assert_eq!(
        reply.json["data_hash"],
        server.get("/api/world").json["data_hash"]
    );
    let status = admin(&server, "GET", "/admin/status", ADMIN).json;
    assert_eq!(status["reload"]["errors"], json!([]), "{status}");
    // An embedded world without MongoDB writes under no lease and reads no stream; this
    // request is one of the open connections.
    assert!(status["lease"].is_null(), "{status}");
    assert!(
        status["persistence"]["stream_pending"].is_null(),
        "{status}"
    );
    assert!(
        status["connections"]["http"]["open"].as_u64().unwrap() >= 1,
        "{status}"
    );

    // A scenario file applies to new worlds only.
    edit(
        &assets.join("scenarios/tiny/cities.toml"),
        "name = \"Crossroads\"",
        "name = \"Crossways\"",
    );
    wait_for("the scenario change to be noted", || {
        let status = admin(&server, "GET", "/admin/status", ADMIN).json;
        (status["reload"]["scenario_changed"] == json!(["scenarios/tiny/cities.toml"]))
            .then_some(())
    });
    assert_eq!(
        server.get("/api/cities/crossroads").json["name"],
        "Crossroads"
    );

    // The admin token, and nothing else, opens the admin routes; without it the body is not
    // even read.
    for token in ["wrong-token-of-the-same-length!!", ""] {
        let reply = admin(&server, "GET", "/admin/status", token);
        assert_eq!(reply.status, 401, "{}", reply.text);
        let reply = request(
            "POST",
            &server.url("/admin/maintenance"),
            Some(token),
            Some(b"{not json"),
        );
        assert_eq!(reply.status, 401, "{}", reply.text);
    }
    let reply = request("GET", &server.url("/admin/status"), Some(&token), None);
    assert_eq!(reply.status, 401, "a player's token: {}", reply.text);
}

#[test]
fn without_an_admin_token_the_admin_routes_do_not_exist() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    for (method, path) in [
        ("GET", "/admin/status"),
        ("POST", "/admin/reload"),
        ("POST", "/admin/flush"),
        ("POST", "/admin/maintenance"),
    ] {
        let reply = admin(&server, method, path, ADMIN);
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.text);
    }
    // A token too short to guard anything is refused at start.
    let out = crate::support::run(
        &["serve", "--scenario", "tiny", "--bind", "127.0.0.1:0"],
        &[("TIANXIA_ADMIN_TOKEN", "short")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("TIANXIA_ADMIN_TOKEN"));
}

#[test]
fn a_flush_makes_everything_before_it_durable_at_once() {
    // Checkpoints an hour apart: only the flush writes one.
    let args = ["--scenario", "tiny", "--flush-interval", "3600"];
    let envs = [("TIANXIA_ADMIN_TOKEN", ADMIN)];
    let server = Server::start_with_env(&args, &envs);
    server.wait_durable();
    let token = register(&server, "Operator");
    let joined = crate::support::post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Operator", "nation": "west"}),
    );
    assert_eq!(joined.status, 201, "{}", joined.text);
    let joined_seq = server.get("/ready").json["last_seq"].as_u64().unwrap();
    let reply = admin(&server, "POST", "/admin/flush", ADMIN);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(reply.json["epoch"].as_u64().unwrap() >= 2, "{}", reply.text);
    assert!(
        reply.json["durable_seq"].as_u64().unwrap() >= joined_seq,
        "{} < {joined_seq}",
        reply.text
    );
    let events = server.get("/api/events?limit=1000").json;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "GeneralJoined"),
        "{events}"
    );
    // Killed right after: the general is in the checkpoint, and no command waits in the log
    // to be applied again.
    let dir = server.kill_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    let log = server.log();
    assert!(log.contains("checkpoint loaded"), "{log}");
    assert!(!log.contains("applying the logged commands"), "{log}");
    assert_eq!(server.get("/api/generals/g-operator").status, 200);
    let reply = admin(
        &server,
        "POST",
        "/admin/flush",
        "not-the-admin-token-at-all",
    );
    assert_eq!(reply.status, 401, "{}", reply.text);
}

#[test]
fn maintenance_refuses_commands_lets_reads_go_on_and_holds_across_restarts() {
    let args = ["--scenario", "tiny", "--flush-interval", "3600"];
    let envs = [("TIANXIA_ADMIN_TOKEN", ADMIN)];
    let server = Server::start_with_env(&args, &envs);
    server.wait_ready();
    let token = register(&server, "Player");
    let set = |server: &Server, body: Value| {
        crate::support::http::request(
            "POST",
            &server.url("/admin/maintenance"),
            Some(ADMIN),
            Some(body.to_string().as_bytes()),
        )
    };
    let reply = set(&server, json!({"on": true, "message": "Back at noon"}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["on"], true);

    let join = crate::support::post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Player", "nation": "west"}),
    );
    assert_eq!(join.status, 503, "{}", join.text);
    assert_eq!(join.json["error"]["message"], "Back at noon");
    assert!(
        join.headers.contains_key("retry-after"),
        "{:?}",
        join.headers
    );
    let move_ = command(
        &server,
        &token,
        json!({"type": "MOVE", "general": "bei_wang", "args": {"to": "hill_fort"}}),
    );
    assert_eq!(move_.status, 503, "{}", move_.text);
    let world = server.get("/api/world");
    assert_eq!(world.status, 200, "reads go on: {}", world.text);
    assert_eq!(world.json["maintenance"], "Back at noon");
    let reply = set(&server, json!({"on": true, "message": "\u{7}"}));
    assert_eq!(reply.status, 400, "{}", reply.text);

    // Killed at once: the answer meant durable, so it holds.
    let dir = server.kill_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    assert_eq!(server.get("/api/world").json["maintenance"], "Back at noon");
    let status = admin(&server, "GET", "/admin/status", ADMIN).json;
    assert_eq!(status["maintenance"], "Back at noon", "{status}");

    // Off again, also across a restart: commands are taken.
    let reply = set(&server, json!({"on": false}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let dir = server.kill_keeping_dir();
    let server = Server::start_in(dir, &args, &envs);
    server.wait_ready();
    assert_eq!(server.get("/api/world").json["maintenance"], Value::Null);
    let join = crate::support::post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Player", "nation": "west"}),
    );
    assert_eq!(join.status, 201, "{}", join.text);
    let events = server.get("/api/events?limit=1000").json;
    let changes: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "MaintenanceChanged")
        .map(|e| &e["payload"]["on"])
        .collect();
    assert_eq!(changes, [&json!(true), &json!(false)], "{events}");
}

/// Scenario files apply to new worlds only: a world started again on scenario files that
/// changed since it was created says so in the log, and keeps what it was created with.
#[test]
fn a_world_started_on_changed_scenario_files_says_it_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    copy_dir(&repo().join("assets"), &assets);
    let args = ["--scenario", "tiny", "--assets", "assets"];
    let server = Server::start_in(dir, &args, &[]);
    server.wait_ready();
    server.wait_durable();
    assert!(!server.log().contains("differs from the scenario files"));
    let dir = server.stop_keeping_dir();
    edit(
        &dir.path().join("assets/scenarios/tiny/cities.toml"),
        "name = \"Crossroads\"",
        "name = \"Crossways\"",
    );
    let server = Server::start_in(dir, &args, &[]);
    server.wait_ready();
    assert!(
        server.log().contains("differs from the scenario files now"),
        "{}",
        server.log()
    );
    assert_eq!(
        server.get("/api/cities/crossroads").json["name"],
        "Crossroads"
    );
}
