//! Playing the game over HTTP as a client (docs/rules.md, docs/http.md): accounts, joining,
//! commands and their orders, marches, training, recruiting, a captured city, and every kind of
//! bad input.
//!
//! These servers run the `tiny` scenario from a copy of the designer data in which the AI
//! thinks so rarely that it never acts during a test (`[ai] think_every`), so only the test's
//! commands change the world.

use std::{fs, path::PathBuf};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Reply, Server, assets, copy_dir, post, request, wait_for};

/// A copy of the designer data with a quiet AI, edited by `edit(file name, text)`.
pub(crate) fn quiet_assets(edit: impl Fn(&str, String) -> String) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("assets");
    copy_dir(&assets(), &root);
    let balance = root.join("balance.toml");
    let text = fs::read_to_string(&balance).unwrap();
    assert!(text.contains("think_every = 21600"));
    fs::write(
        &balance,
        text.replace("think_every = 21600", "think_every = 1000000000000000"),
    )
    .unwrap();
    for file in ["cities.toml", "generals.toml", "nations.toml", "roads.toml"] {
        let path = root.join("scenarios/tiny").join(file);
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, edit(file, text)).unwrap();
    }
    (dir, root)
}

fn start(speed: &str, edit: impl Fn(&str, String) -> String) -> (Server, TempDir) {
    let (dir, root) = quiet_assets(edit);
    let server = Server::start(&[
        "--scenario",
        "tiny",
        "--speed",
        speed,
        "--assets",
        root.to_str().unwrap(),
    ]);
    server.wait_ready();
    (server, dir)
}

pub(crate) fn register(server: &Server, name: &str) -> String {
    let reply = post(
        &server.url("/api/auth/register"),
        None,
        &json!({"name": name, "password": "correct horse"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["player_id"], name.to_lowercase());
    reply.json["token"].as_str().unwrap().to_string()
}

pub(crate) fn join(server: &Server, token: &str, nation: &str) -> Value {
    let reply = post(
        &server.url("/api/join"),
        Some(token),
        &json!({"name": "Test General", "nation": nation}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json
}

pub(crate) fn command(server: &Server, token: &str, body: Value) -> Reply {
    post(&server.url("/api/commands"), Some(token), &body)
}

pub(crate) fn get(server: &Server, token: &str, path: &str) -> Reply {
    request("GET", &server.url(path), Some(token), None)
}

/// Waits until the order has left `queued` and `accepted`, or reached `status`.
fn order_status(server: &Server, token: &str, id: &str, status: &str) -> Value {
    wait_for(&format!("order {id} to be {status}"), || {
        let reply = get(server, token, &format!("/api/orders/{id}"));
        assert_eq!(reply.status, 200, "{}", reply.text);
        (reply.json["status"] == status).then_some(reply.json)
    })
}

pub(crate) fn general(server: &Server, id: &str) -> Value {
    let reply = server.get(&format!("/api/generals/{id}"));
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json
}

#[test]
fn a_player_registers_joins_marches_trains_and_recruits() {
    let (server, _assets) = start("2400", |_, text| text);

    // Accounts.
    let token = register(&server, "Alice");
    let again = post(
        &server.url("/api/auth/register"),
        None,
        &json!({"name": "alice", "password": "another one"}),
    );
    assert_eq!(again.status, 409);
    assert_eq!(again.json["error"]["code"], "name_taken");
    let wrong = post(
        &server.url("/api/auth/login"),
        None,
        &json!({"name": "Alice", "password": "wrong horse"}),
    );
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json["error"]["code"], "unauthorized");
    let login = post(
        &server.url("/api/auth/login"),
        None,
        &json!({"name": "Alice", "password": "correct horse"}),
    );
    assert_eq!(login.status, 200, "{}", login.text);
    let second_token = login.json["token"].as_str().unwrap().to_string();
    assert_ne!(second_token, token);

    // Joining.
    let me = join(&server, &token, "north");
    assert_eq!(me["id"], "g-alice");
    assert_eq!(me["owner"], "alice");
    assert_eq!(me["nation"], "north");
    assert_eq!(me["city"], "north_gate");
    let twice = post(
        &server.url("/api/join"),
        Some(&second_token),
        &json!({"name": "Again"}),
    );
    assert_eq!(twice.status, 409);
    assert_eq!(twice.json["error"]["code"], "already_joined");

    // MOVE to a neighbour: marching with a path and an eta, then arrival.
    let pcp = me["pcp"].as_u64().unwrap();
    let sent = command(
        &server,
        &token,
        json!({"id": "move-1", "type": "MOVE", "general": "g-alice", "args": {"to": "hill_fort"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    assert_eq!(sent.json, json!({"order_id": "move-1", "status": "queued"}));
    let marching = wait_for("the general to march", || {
        let g = general(&server, "g-alice");
        (g["status"] == "marching").then_some(g)
    });
    assert_eq!(marching["march"]["from"], "north_gate");
    assert_eq!(marching["march"]["to"], "hill_fort");
    assert_eq!(
        marching["march"]["path"],
        json!(["north_gate", "hill_fort"])
    );
    let eta = marching["march"]["eta"].as_i64().unwrap();
    assert!(eta > 0);
    assert_eq!(marching["order"]["order_id"], "move-1");
    assert_eq!(marching["order"]["completes_at"], eta);
    assert!(marching["pcp"].as_u64().unwrap() < pcp, "MOVE paid its PCP");

    // The same id again: the recorded answer, applied once. Another body: a conflict.
    let repeat = command(
        &server,
        &token,
        json!({"id": "move-1", "type": "MOVE", "general": "g-alice", "args": {"to": "hill_fort"}}),
    );
    assert_eq!(repeat.status, 202, "{}", repeat.text);
    assert_eq!(repeat.json["status"], "accepted");
    let conflict = command(
        &server,
        &token,
        json!({"id": "move-1", "type": "TRAIN", "general": "g-alice"}),
    );
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.json["error"]["code"], "id_conflict");

    let done = order_status(&server, &token, "move-1", "completed");
    assert_eq!(done["type"], "MOVE");
    assert_eq!(done["accepted_at"].as_i64().unwrap() + 12 * 3600, eta);
    let arrived = general(&server, "g-alice");
    assert_eq!(arrived["city"], "hill_fort");
    assert_eq!(arrived["status"], "idle");
    assert_eq!(arrived["march"], Value::Null);
    let world = server.get("/api/world").json;
    assert!(world["game_seconds"].as_i64().unwrap() >= eta);
    server.wait_durable();
    let events = server
        .get("/api/events?aggregate=general:g-alice&limit=1000")
        .json;
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "MarchStarted").count(),
        1,
        "applied once: {types:?}"
    );
    assert!(types.contains(&"MarchArrived"), "{types:?}");

    // TRAIN raises training after its duration.
    wait_for("PCP for a TRAIN", || {
        (general(&server, "g-alice")["pcp"].as_u64().unwrap() >= 5).then_some(())
    });
    let training = general(&server, "g-alice")["training"].as_u64().unwrap();
    let sent = command(
        &server,
        &token,
        json!({"type": "TRAIN", "general": "g-alice"}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let id = sent.json["order_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("srv-"), "{id}");
    let accepted = order_status(&server, &token, &id, "accepted");
    assert_eq!(
        accepted["completes_at"].as_i64().unwrap() - accepted["accepted_at"].as_i64().unwrap(),
        3600
    );
    order_status(&server, &token, &id, "completed");
    assert_eq!(
        general(&server, "g-alice")["training"].as_u64().unwrap(),
        training + 10
    );

    // Insufficient PCP: rejected with its code, nothing deducted.
    let before = general(&server, "g-alice");
    assert!(before["pcp"].as_u64().unwrap() < 5, "{before}");
    let sent = command(
        &server,
        &token,
        json!({"id": "train-poor", "type": "TRAIN", "general": "g-alice"}),
    );
    assert_eq!(sent.status, 202);
    let rejected = order_status(&server, &token, "train-poor", "rejected");
    assert_eq!(rejected["reason"], "insufficient_pcp");
    let after = general(&server, "g-alice");
    assert!(after["pcp"].as_u64() >= before["pcp"].as_u64());
    assert_eq!(after["training"], before["training"]);
    assert_eq!(after["status"], "idle");

    // RECRUIT in a city of the nation: the city pays, the troops come.
    let city = server.get("/api/cities/hill_fort").json;
    let troops = after["troops"].as_u64().unwrap();
    let sent = command(
        &server,
        &token,
        json!({"id": "recruit-1", "type": "RECRUIT", "general": "g-alice", "args": {"amount": 400}}),
    );
    assert_eq!(sent.status, 202);
    order_status(&server, &token, "recruit-1", "accepted");
    // Gold also moves with production and taxes as days pass; people only with recruits.
    let paid = server.get("/api/cities/hill_fort").json;
    assert_eq!(
        paid["population"].as_u64().unwrap(),
        city["population"].as_u64().unwrap() - 400
    );
    order_status(&server, &token, "recruit-1", "completed");
    assert_eq!(
        general(&server, "g-alice")["troops"].as_u64().unwrap(),
        troops + 400
    );

    // Logging out revokes the token.
    let out = request("POST", &server.url("/api/auth/logout"), Some(&token), None);
    assert_eq!(out.status, 204, "{}", out.text);
    let revoked = get(&server, &token, "/api/orders/move-1");
    assert_eq!(revoked.status, 401);
    assert_eq!(revoked.json["error"]["code"], "unauthorized");
    assert_eq!(
        get(&server, &second_token, "/api/orders/move-1").status,
        200
    );
}

#[test]
fn a_march_into_an_enemy_city_at_war_fights_and_captures_it() {
    // West's only city, held by a small garrison: its generals have no troops.
    let (server, _assets) = start("7200", |file, text| match file {
        "cities.toml" => text.replacen(
            "walls = 2\ngold = 1500\nrice = 6000\ngarrison = 1500",
            "walls = 0\ngold = 1500\nrice = 6000\ngarrison = 100",
            1,
        ),
        "generals.toml" => text
            .lines()
            .scan(false, |west, line| {
                if line.starts_with("city = ") {
                    *west = line.contains("west_ford");
                }
                Some(if *west && line.starts_with("troops = ") {
                    "troops = 0".to_string()
                } else {
                    line.to_string()
                })
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => text,
    });
    let city = server.get("/api/cities/west_ford").json;
    assert_eq!(city["nation"], "west");
    assert_eq!(city["garrison"], 100);
    let board = server.get("/api/leaderboard?by=cities").json;
    assert_eq!(
        board,
        json!([
            {"nation": "east", "name": "East", "value": 2},
            {"nation": "north", "name": "North", "value": 2},
            {"nation": "west", "name": "West", "value": 1},
        ])
    );

    let token = register(&server, "conqueror");
    join(&server, &token, "north");
    let sent = command(
        &server,
        &token,
        json!({"id": "attack", "type": "MOVE", "general": "g-conqueror", "args": {"to": "west_ford"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let march = wait_for("the march", || {
        let g = general(&server, "g-conqueror");
        (g["status"] == "marching").then_some(g["march"].clone())
    });
    assert_eq!(
        march["path"],
        json!(["north_gate", "hill_fort", "west_ford"])
    );

    let captured = wait_for("west_ford to fall", || {
        let city = server.get("/api/cities/west_ford").json;
        (city["nation"] == "north").then_some(city)
    });
    assert_eq!(captured["garrison"], 0);
    assert_eq!(general(&server, "g-conqueror")["city"], "west_ford");
    let board = server.get("/api/leaderboard?by=cities").json;
    assert_eq!(
        board[0],
        json!({"nation": "north", "name": "North", "value": 3})
    );
    assert!(
        board
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["nation"] != "west"),
        "west is destroyed: {board}"
    );
    assert_eq!(server.get("/api/nations/west").json["status"], "destroyed");
    server.wait_durable();
    let events = server.get("/api/events?limit=1000").json;
    let types: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for expected in [
        "BattleStarted",
        "BattleEnded",
        "CityCaptured",
        "NationDestroyed",
    ] {
        assert!(
            types.contains(&expected),
            "{expected} missing from {types:?}"
        );
    }
    let ended = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "BattleEnded")
        .unwrap();
    assert_eq!(ended["payload"]["winner"], "attacker");
    order_status(&server, &token, "attack", "completed");
}

#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let (server, _assets) = start("24", |_, text| text);
    let token = register(&server, "carol");
    let other = register(&server, "dave");
    join(&server, &token, "north");
    join(&server, &other, "west");
    let before = general(&server, "g-carol");
    let url = server.url("/api/commands");
    let raw = |body: &[u8], token: Option<&str>| request("POST", &url, token, Some(body));
    let cases: Vec<(Reply, u16, &str)> = vec![
        (
            raw(b"{\"type\": \"TRAIN\",", Some(&token)),
            400,
            "invalid_json",
        ),
        (raw(b"\xff\xfe", Some(&token)), 400, "invalid_json"),
        (
            raw(b"{\"type\": 5, \"general\": \"g-carol\"}", Some(&token)),
            400,
            "invalid_field",
        ),
        (
            raw(
                b"{\"type\": \"TRAIN\", \"general\": \"g-carol\", \"speed\": 3}",
                Some(&token),
            ),
            400,
            "invalid_field",
        ),
        (
            raw(
                b"{\"type\": \"FLY\", \"general\": \"g-carol\"}",
                Some(&token),
            ),
            400,
            "unknown_command",
        ),
        (
            raw(
                b"{\"type\": \"TRAIN\", \"general\": \"G Carol\"}",
                Some(&token),
            ),
            400,
            "invalid_field",
        ),
        (
            raw(
                b"{\"id\": \"srv-1\", \"type\": \"TRAIN\", \"general\": \"g-carol\"}",
                Some(&token),
            ),
            400,
            "invalid_field",
        ),
        (
            raw(
                b"{\"type\": \"RECRUIT\", \"general\": \"g-carol\", \"args\": {\"amount\": 5001}}",
                Some(&token),
            ),
            400,
            "invalid_args",
        ),
        (
            raw(
                b"{\"type\": \"MOVE\", \"general\": \"g-carol\", \"args\": {\"to\": 7}}",
                Some(&token),
            ),
            400,
            "invalid_args",
        ),
        (
            raw(
                b"{\"type\": \"TRAIN\", \"general\": \"g-dave\"}",
                Some(&token),
            ),
            403,
            "not_owner",
        ),
        (
            raw(b"{\"type\": \"TRAIN\", \"general\": \"g-carol\"}", None),
            401,
            "unauthorized",
        ),
        (
            raw(
                b"{\"type\": \"TRAIN\", \"general\": \"g-carol\"}",
                Some("not-a-token"),
            ),
            401,
            "unauthorized",
        ),
        (
            raw(
                format!(
                    "{{\"type\": \"TRAIN\", \"general\": \"g-carol\", \"id\": \"{}\"}}",
                    "x".repeat(20_000)
                )
                .as_bytes(),
                Some(&token),
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (reply, status, code) in cases {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert_eq!(reply.json["error"]["code"], code, "{}", reply.text);
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    // Registration checks.
    let short = post(
        &server.url("/api/auth/register"),
        None,
        &json!({"name": "ab", "password": "long enough"}),
    );
    assert_eq!(
        (short.status, short.json["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let weak = post(
        &server.url("/api/auth/register"),
        None,
        &json!({"name": "erin", "password": "short"}),
    );
    assert_eq!(
        (weak.status, weak.json["error"]["code"].as_str()),
        (400, Some("invalid_field"))
    );
    let unknown = get(&server, &token, "/api/orders/nothing-here");
    assert_eq!(unknown.status, 404);

    // Nothing changed: the general is as it was, and no command reached the World.
    let after = general(&server, "g-carol");
    assert_eq!(after["version"], before["version"], "{after}");
    server.wait_durable();
    let events = server.get("/api/events?limit=1000").json;
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] != "CommandRejected"),
        "{events}"
    );
    // The World's own checks answer through the order.
    let sent = command(
        &server,
        &token,
        json!({"id": "peace", "type": "MOVE", "general": "g-carol", "args": {"to": "east_port"}}),
    );
    assert_eq!(sent.status, 202);
    let rejected = order_status(&server, &token, "peace", "rejected");
    assert_eq!(rejected["reason"], "not_at_war");
}

#[test]
fn requests_over_the_rate_limits_get_429() {
    let (server, _assets) = start("24", |_, text| text);
    let token = register(&server, "eager");
    // Logins from one address: a burst of 20, then 5 a second.
    let url = server.url("/api/auth/login");
    let limited = (0..60)
        .map(|_| {
            post(
                &url,
                None,
                &json!({"name": "nobody", "password": "wrong horse"}),
            )
        })
        .find(|r| r.status == 429)
        .expect("logins are limited per address");
    assert_eq!(limited.json["error"]["code"], "rate_limited");

    // A player's requests: a burst of 200, then 50 a second.
    let limited = (0..2_000)
        .map(|_| get(&server, &token, "/api/orders/none"))
        .find(|r| r.status == 429)
        .expect("a player's requests are limited");
    assert_eq!(limited.json["error"]["code"], "rate_limited");
}

#[test]
fn accounts_and_tokens_survive_a_restart() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    let token = register(&server, "Keeper");
    let dir = server.stop_keeping_dir();
    let store = dir.path().join("data").join("tianxia.redb");
    assert!(
        store.exists(),
        "the embedded store is in the data directory"
    );

    let server = Server::start_in(dir, &["--scenario", "tiny"], &[]);
    server.wait_ready();
    // The name is still taken, the token still works, and the password still logs in.
    let again = post(
        &server.url("/api/auth/register"),
        None,
        &json!({"name": "keeper", "password": "another one"}),
    );
    assert_eq!(again.status, 409, "{}", again.text);
    let orders = get(&server, &token, "/api/orders/none");
    assert_eq!(orders.status, 404, "authenticated: {}", orders.text);
    let login = post(
        &server.url("/api/auth/login"),
        None,
        &json!({"name": "Keeper", "password": "correct horse"}),
    );
    assert_eq!(login.status, 200, "{}", login.text);
    let out = request("POST", &server.url("/api/auth/logout"), Some(&token), None);
    assert_eq!(out.status, 204);
    let dir = server.stop_keeping_dir();
    let server = Server::start_in(dir, &["--scenario", "tiny"], &[]);
    server.wait_ready();
    assert_eq!(
        get(&server, &token, "/api/orders/none").status,
        401,
        "revoked stays revoked"
    );
}

#[test]
fn a_damaged_store_is_refused_with_its_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(&data).unwrap();
    let store = data.join("tianxia.redb");
    fs::write(&store, b"not a database at all").unwrap();
    let output = crate::support::run(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--scenario",
            "tiny",
            "--assets",
            assets().to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&store.display().to_string()), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn every_request_is_logged_and_reads_say_where_they_came_from() {
    let (server, _assets) = start("24", |_, text| text);
    let token = register(&server, "ann");
    join(&server, &token, "north");
    let world = server.get("/api/world");
    assert_eq!(
        world.headers.get("x-cache").map(String::as_str),
        Some("world")
    );
    let id = world
        .headers
        .get("x-request-id")
        .cloned()
        .expect("a request id");
    let missing = server.get("/api/generals/nobody");
    assert_eq!(
        missing.headers.get("x-cache").map(String::as_str),
        Some("miss")
    );
    let order = get(&server, &token, "/api/orders/nothing");
    assert_eq!(order.status, 404);
    let failed = post(
        &server.url("/api/auth/login"),
        None,
        &json!({"name": "ann", "password": "not-the-password"}),
    );
    assert_eq!(failed.status, 401);

    // The warning comes from the handler, the access line once the answer is sent: wait for
    // both (the last request's line is the last written).
    let log = wait_for("the access log to show the failed login", || {
        let log = server.log();
        let answered = log
            .lines()
            .any(|l| l.contains("tianxia::access") && l.contains("route=\"/api/auth/login\""));
        (log.contains("failed login") && answered).then_some(log)
    });
    // One line per request: the route's pattern (not the path), the status, the request id,
    // the player once known and the error code; never a password or a token.
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains("tianxia::access") && l.contains(needle))
            .unwrap_or_else(|| panic!("no access line with {needle}:\n{log}"))
            .to_string()
    };
    assert!(
        line(&id).contains("route=\"/api/world\"") && line(&id).contains("status=200"),
        "{}",
        line(&id)
    );
    let general = line("route=\"/api/generals/{id}\"");
    assert!(
        general.contains("status=404") && general.contains("error=\"not_found\""),
        "{general}"
    );
    assert!(line("route=\"/api/orders/{id}\"").contains("player=\"ann\""));
    assert!(line("route=\"/api/auth/login\"").contains("status=401"));
    assert!(
        !log.contains("not-the-password") && !log.contains(&token),
        "{log}"
    );
}

#[test]
fn a_player_reads_itself_and_pages_through_its_orders() {
    let (server, _assets) = start("24", |_, text| text);
    let token = register(&server, "Pager");
    let me = get(&server, &token, "/api/me");
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        me.json,
        json!({"player": "pager", "name": "Pager", "general": null, "open_orders": []})
    );
    join(&server, &token, "north");
    // One TRAIN the general carries, then four it refuses while busy.
    for i in 1..=5 {
        let sent = command(
            &server,
            &token,
            json!({"id": format!("t-{i}"), "type": "TRAIN", "general": "g-pager"}),
        );
        assert_eq!(sent.status, 202, "{}", sent.text);
        order_status_not_queued(&server, &token, &format!("t-{i}"));
    }
    let me = get(&server, &token, "/api/me").json;
    assert_eq!(me["general"]["id"], "g-pager");
    let open: Vec<&str> = me["open_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["t-1"]);

    // Every order once, page by page, in id order.
    let all = get(&server, &token, "/api/orders?limit=100").json;
    let expected: Vec<String> = all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        expected.len() >= 6,
        "the JOIN and five TRAINs: {expected:?}"
    );
    assert!(expected.windows(2).all(|w| w[0] < w[1]), "{expected:?}");
    assert_eq!(all["next"], Value::Null);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/api/orders?limit=2&after={a}"),
            None => "/api/orders?limit=2".to_string(),
        };
        let page = get(&server, &token, &path);
        assert_eq!(page.status, 200, "{}", page.text);
        for o in page.json["orders"].as_array().unwrap() {
            paged.push(o["order_id"].as_str().unwrap().to_string());
        }
        match page.json["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, expected);
    let open = get(&server, &token, "/api/orders?status=open").json;
    assert_eq!(open["orders"].as_array().unwrap().len(), 1, "{open}");
    assert_eq!(open["orders"][0]["order_id"], "t-1");
    let finished = get(&server, &token, "/api/orders?status=finished").json;
    assert!(
        finished["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["order_id"] != "t-1" && o["status"] != "accepted"),
        "{finished}"
    );

    for bad in [
        "/api/orders?limit=0",
        "/api/orders?limit=101",
        "/api/orders?after=not%20an%20id",
        "/api/orders?status=lost",
        "/api/orders?page=2",
    ] {
        let reply = get(&server, &token, bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
    for path in ["/api/me", "/api/orders"] {
        assert_eq!(server.get(path).status, 401, "{path}");
    }
}

/// Waits until the World has decided the order.
fn order_status_not_queued(server: &Server, token: &str, id: &str) {
    wait_for(&format!("order {id} to be decided"), || {
        let reply = get(server, token, &format!("/api/orders/{id}"));
        (reply.status == 200 && reply.json["status"] != "queued").then_some(())
    });
}

#[test]
fn the_generals_list_comes_a_page_at_a_time() {
    let (server, _assets) = start("24", |_, text| text);
    let all = server.get("/api/generals").json;
    let all: Vec<Value> = all.as_array().unwrap().clone();
    assert!(all.len() > 5, "{}", all.len());
    assert!(!server.get("/api/generals").headers.contains_key("link"));
    let mut paged: Vec<Value> = Vec::new();
    let mut next = Some("/api/generals?limit=5".to_string());
    while let Some(path) = next.take() {
        let page = server.get(&path);
        assert_eq!(page.status, 200, "{}", page.text);
        let items = page.json.as_array().unwrap();
        assert!(items.len() <= 5);
        paged.extend(items.iter().cloned());
        next = page.headers.get("link").map(|link| {
            assert!(link.ends_with("; rel=\"next\""), "{link}");
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_string()
        });
    }
    let ids = |list: &[Value]| -> Vec<String> {
        list.iter()
            .map(|g| g["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&paged), ids(&all));
    // Filters carry over to the next page.
    let first = server.get("/api/generals?nation=north&limit=1");
    let link = &first.headers["link"];
    assert!(link.contains("nation=north"), "{link}");
    for bad in ["limit=0", "limit=1001", "after=Not%20An%20Id"] {
        let reply = server.get(&format!("/api/generals?{bad}"));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }
}
