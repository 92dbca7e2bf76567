//! The WebSocket interface as clients use it (docs/websocket.md): pushes instead of polling,
//! resuming without gaps, battle frames in both encodings, the slow-client policy, fan-out
//! across `api` processes, and bad messages.

use std::{collections::BTreeSet, time::Duration};

use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, RngAlgorithm, TestRng, TestRunner},
};
use serde_json::{Value, json};
use systems::{battle, driver::TickRates};
use tungstenite::Message;

use crate::{
    clock::Harness,
    play::{command, join, quiet_assets, register},
    support::{Server, Ws, get, request, wait_for},
};

fn start(args: &[&str]) -> (Server, tempfile::TempDir) {
    let (dir, root) = quiet_assets(|_, text| text);
    let mut all = vec!["--scenario", "tiny", "--assets", root.to_str().unwrap()];
    all.extend_from_slice(args);
    let server = Server::start(&all);
    server.wait_ready();
    (server, dir)
}

fn seq(message: &Value) -> u64 {
    message["event"]["seq"].as_u64().unwrap()
}

/// Sends `count` commands the World rejects (a general that does not exist): each is one
/// `CommandRejected` event.
fn rejected_commands(server: &Server, token: &str, prefix: &str, count: usize) {
    for i in 0..count {
        let reply = command(
            server,
            token,
            json!({"id": format!("{prefix}-{i}"), "type": "TRAIN", "general": "g-nobody"}),
        );
        assert!(reply.status == 202 || reply.status == 403, "{}", reply.text);
    }
}

#[test]
fn a_client_sees_its_command_accepted_and_its_order_pushed() {
    let (server, _assets) = start(&["--speed", "24"]);
    let token = register(&server, "watcher");
    join(&server, &token, "north");
    let mut ws = Ws::connect(&server.base, &format!("token={token}"));
    ws.send(
        json!({"op": "subscribe", "id": 1, "topics": ["world", "orders", "general:g-watcher"]}),
    );
    let reply = ws.reply(1);
    assert_eq!(reply["op"], "subscribed", "{reply}");
    assert_eq!(
        reply["topics"],
        json!(["world", "orders", "general:g-watcher"])
    );
    let start_seq = reply["seq"].as_u64().unwrap();
    let snapshot = ws
        .until("the general's state", |m| m["topic"] == "general:g-watcher")
        .pop()
        .unwrap();
    assert_eq!(snapshot["state"]["id"], "g-watcher");
    assert_eq!(snapshot["state"]["status"], "idle");
    let version = snapshot["state"]["version"].as_u64().unwrap();

    let sent = command(
        &server,
        &token,
        json!({"id": "go", "type": "MOVE", "general": "g-watcher", "args": {"to": "hill_fort"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let mut accepted = false;
    let mut order = None;
    let mut marching = None;
    let mut seqs = Vec::new();
    ws.until("the order, its event and the general's new state", |m| {
        if m["topic"] == "world" {
            seqs.push(seq(m));
            if m["event"]["type"] == "CommandAccepted" && m["event"]["payload"]["order_id"] == "go"
            {
                accepted = true;
            }
        }
        if m["topic"] == "orders" && m["order"]["order_id"] == "go" {
            order = Some(m["order"].clone());
        }
        if m["topic"] == "general:g-watcher" && m["state"]["status"] == "marching" {
            marching = Some(m["state"].clone());
        }
        accepted && order.is_some() && marching.is_some()
    });
    let order = order.unwrap();
    assert_eq!(order["status"], "accepted", "{order}");
    assert_eq!(order["type"], "MOVE");
    assert!(order["revision"].as_u64().unwrap() >= 1);
    let marching = marching.unwrap();
    assert!(marching["version"].as_u64().unwrap() > version);
    assert_eq!(marching["march"]["to"], "hill_fort");
    assert!(
        seqs.iter().all(|s| *s > start_seq),
        "{seqs:?} after {start_seq}"
    );
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");

    // A ping is answered with its id; an unsubscribed topic goes quiet.
    ws.send(json!({"op": "ping", "id": "p"}));
    assert_eq!(
        ws.until("pong", |m| m["op"] == "pong").pop().unwrap()["id"],
        "p"
    );
    ws.send(json!({"op": "unsubscribe", "id": 2, "topics": ["world", "general:g-watcher"]}));
    assert_eq!(ws.reply(2)["op"], "unsubscribed");
    let metrics = server.get("/metrics").text;
    assert!(metrics.contains("tianxia_ws_connections 1"), "{metrics}");
    assert!(
        metrics.contains("tianxia_ws_messages_sent_total{kind=\"event\"}"),
        "{metrics}"
    );
    ws.close();
}

#[test]
fn a_client_that_reconnects_with_since_gets_exactly_what_it_missed() {
    // A window of 8 live events: what the client missed comes from the durable log.
    let (server, _assets) = start(&[
        "--speed",
        "24",
        "--event-window",
        "8",
        "--flush-interval",
        "0.2",
    ]);
    let token = register(&server, "resumer");
    let mut ws = Ws::connect(&server.base, "");
    ws.send(json!({"op": "subscribe", "id": 1, "topics": ["world"]}));
    assert_eq!(ws.reply(1)["op"], "subscribed");
    rejected_commands(&server, &token, "before", 3);
    let seen = ws.until("the third rejection", |m| {
        m["event"]["payload"]["order_id"] == "before-2"
    });
    let last = seq(seen.last().unwrap());
    ws.close();

    rejected_commands(&server, &token, "missed", 30);
    // Every missed event is published and durable before the client comes back.
    wait_for("the missed events to be durable", || {
        let page = server
            .get(&format!("/api/events?after_seq={last}&limit=1000"))
            .json;
        page.as_array()?
            .iter()
            .any(|e| e["payload"]["order_id"] == "missed-29")
            .then_some(())
    });
    let mut ws = Ws::connect(&server.base, "");
    ws.send(json!({"op": "subscribe", "id": 2, "topics": ["world"], "since": last}));
    let got = ws.until("the last missed event", |m| {
        m["event"]["payload"]["order_id"] == "missed-29"
    });
    let reply = got
        .iter()
        .find(|m| m["id"] == 2)
        .expect("the subscribe reply");
    assert_eq!(reply["op"], "subscribed", "{reply}");
    rejected_commands(&server, &token, "live", 2);
    let live = ws.until("the live events", |m| {
        m["event"]["payload"]["order_id"] == "live-1"
    });
    let seqs: Vec<u64> = got
        .iter()
        .chain(&live)
        .filter(|m| m["topic"] == "world")
        .map(seq)
        .collect();
    assert_eq!(seqs[0], last + 1, "{seqs:?}");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "a gap or a duplicate: {seqs:?}"
    );
    let ids: BTreeSet<&str> = got
        .iter()
        .chain(&live)
        .filter_map(|m| m["event"]["payload"]["order_id"].as_str())
        .collect();
    for i in 0..30 {
        assert!(
            ids.contains(format!("missed-{i}").as_str()),
            "missed-{i} not replayed"
        );
    }

    // A since past what the world has: the client saw events that were never durable.
    ws.send(json!({"op": "subscribe", "id": 3, "topics": ["city:north_gate"], "since": 1_000_000}));
    let refused = ws.reply(3);
    assert_eq!(refused["op"], "error");
    assert_eq!(refused["code"], "resync_required", "{refused}");
    ws.close();
}

/// After a crash the World goes on from its last durable event and numbers new events from
/// there: a client that saw later events live, and sends the incarnation it saw them under,
/// is asked to resynchronise even once the new numbering has passed its `since`; a `since`
/// from before the recovery replays from the `WorldRecovered` event on.
#[test]
fn a_client_that_saw_events_a_crash_lost_is_asked_to_resync() {
    let (dir, root) = quiet_assets(|_, text| text);
    let args = [
        "--scenario",
        "tiny",
        "--assets",
        root.to_str().unwrap(),
        "--speed",
        "24",
        "--flush-interval",
        "3600",
    ];
    let server = Server::start(&args);
    server.wait_ready();
    server.wait_durable();
    let token = register(&server, "witness");
    let mut ws = Ws::connect(&server.base, "");
    ws.send(json!({"op": "subscribe", "id": 1, "topics": ["world"]}));
    let reply = ws.reply(1);
    let first = reply["incarnation"]
        .as_u64()
        .expect("the reply's incarnation");
    rejected_commands(&server, &token, "lost", 5);
    let seen = ws.until("the fifth rejection", |m| {
        m["event"]["payload"]["order_id"] == "lost-4"
    });
    let last = seq(seen.last().unwrap());
    ws.close();

    // A crash: the events after the first checkpoint were never durable.
    let data = server.kill_keeping_dir();
    let server = Server::start_in(data, &args, &[]);
    server.wait_ready();
    let world = server.get("/api/world").json;
    assert_eq!(world["incarnation"].as_u64(), Some(first + 1), "{world}");
    let recovered = world["recovered_seq"].as_u64().unwrap();
    assert!(
        recovered <= last,
        "{recovered} <= {last}: the crash lost events"
    );
    // New events pass the client's `since` under the new numbering.
    let mut watch = Ws::connect(&server.base, "");
    watch.send(json!({"op": "subscribe", "id": 1, "topics": ["world"]}));
    assert_eq!(watch.reply(1)["incarnation"].as_u64(), Some(first + 1));
    rejected_commands(&server, &token, "after", 10);
    let newer = watch.until("the tenth new rejection", |m| {
        m["event"]["payload"]["order_id"] == "after-9"
    });
    assert!(seq(newer.last().unwrap()) > last);
    watch.close();

    let mut ws = Ws::connect(&server.base, "");
    ws.send(json!({"op": "subscribe", "id": 2, "topics": ["world"], "since": last, "incarnation": first}));
    let refused = ws.reply(2);
    assert_eq!(refused["code"], "resync_required", "{refused}");
    // From before the recovery: what survived it, then the recovery itself.
    let before = recovered - 1;
    ws.send(json!({"op": "subscribe", "id": 3, "topics": ["world"], "since": before, "incarnation": first}));
    let replayed = ws.until("the WorldRecovered event", |m| {
        m["event"]["type"] == "WorldRecovered"
    });
    let reply = replayed.iter().find(|m| m["id"] == 3).unwrap();
    assert_eq!(reply["op"], "subscribed", "{reply}");
    assert_eq!(seq(replayed.last().unwrap()), recovered);
    ws.close();
    drop(dir);
}

/// A battle's topic: its state, frames with units at 10 Hz, and the last frame with the
/// result, in JSON and in MessagePack.
#[test]
fn a_battle_topic_pushes_frames_and_the_result_in_both_encodings() {
    let mut h = Harness::new(TickRates {
        speed: 240.0,
        ..TickRates::default()
    });
    h.driver.pump(h.app.world_mut());
    let id = battle::spawn_battle(
        h.app.world_mut(),
        &battle::BattleRequest {
            city: "hill_fort".into(),
            attackers: vec!["xi_jiang".into(), "xi_gong".into()],
            defenders: vec!["bei_jiang".into()],
            garrison: true,
        },
    )
    .unwrap();
    h.run_for(Duration::from_millis(200), Duration::from_millis(50));
    let server = crate::support::InProcess::serve(h.read.clone());
    let base = server.url("");
    let topic = format!("battle:{id}");
    let (ready, subscribed) = std::sync::mpsc::channel();
    let clients: Vec<_> = ["", "encoding=msgpack"]
        .into_iter()
        .map(|query| {
            let (base, topic, ready) = (base.clone(), topic.clone(), ready.clone());
            std::thread::spawn(move || {
                let mut ws = Ws::connect(&base, query);
                ws.send(json!({"op": "subscribe", "id": 1, "topics": [topic]}));
                let mut messages = vec![ws.reply(1)];
                ready.send(()).unwrap();
                messages.extend(ws.until("the final frame", |m| !m["result"].is_null()));
                messages
            })
        })
        .collect();
    for _ in 0..2 {
        subscribed.recv_timeout(crate::support::WAIT).unwrap();
    }
    // The battle goes on in steps the pump sees one by one (it looks every 10 ms).
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    while clients.iter().any(|c| !c.is_finished()) && std::time::Instant::now() < deadline {
        h.run_for(Duration::from_millis(100), Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(40));
    }
    let mut shapes = Vec::new();
    for client in clients {
        let messages = client.join().unwrap();
        assert_eq!(messages[0]["op"], "subscribed");
        let state = messages.iter().find(|m| !m["state"].is_null()).unwrap();
        assert_eq!(state["state"]["id"], id.as_str());
        assert_eq!(state["state"]["city"], "hill_fort");
        let frames: Vec<&Value> = messages
            .iter()
            .filter(|m| !m["frame"].is_null() && m["result"].is_null())
            .collect();
        assert!(frames.len() >= 3, "only {} frames", frames.len());
        let ticks: Vec<u64> = frames
            .iter()
            .map(|f| f["frame"]["tick"].as_u64().unwrap())
            .collect();
        assert!(ticks.windows(2).all(|w| w[1] > w[0]), "{ticks:?}");
        let unit = &frames[0]["frame"]["units"][0];
        assert_eq!(unit.as_array().unwrap().len(), 7, "{unit}");
        let group = unit[6].as_u64().unwrap() as usize;
        assert!(frames[0]["frame"]["groups"][group].is_string(), "{unit}");
        let last = messages.last().unwrap();
        assert_eq!(last["topic"], topic.as_str());
        assert_eq!(last["frame"]["last"], true);
        assert_eq!(last["result"]["status"], "finished");
        assert!(!last["result"]["winner"].is_null());
        assert!(!last["frame"]["units"].as_array().unwrap().is_empty());
        shapes.push(single_precision(last.clone()));
    }
    assert_eq!(
        shapes[0], shapes[1],
        "MessagePack carries the same shapes as JSON"
    );
}

/// Numbers as the server holds them: positions are `f32`, which MessagePack carries as such
/// and JSON as their shortest decimal.
fn single_precision(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => json!(n.as_f64().unwrap() as f32),
        Value::Array(items) => Value::Array(items.into_iter().map(single_precision).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, single_precision(v)))
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn a_client_that_stops_reading_is_closed_while_others_go_on() {
    let (server, _assets) = start(&[
        "--speed",
        "24",
        "--ws-queue-messages",
        "16",
        "--ws-queue-bytes",
        "65536",
    ]);
    // Several players, each within its request rate.
    let tokens: Vec<String> = (0..8)
        .map(|i| register(&server, &format!("flooder{i}")))
        .collect();
    // A tiny receive buffer: the server's writes stop as soon as this client stops reading.
    let mut slow = Ws::try_connect(&server.base, "", Some(2048)).unwrap();
    slow.send(json!({"op": "subscribe", "id": 1, "topics": ["world"]}));
    let mut steady = Ws::connect(&server.base, "");
    steady.send(json!({"op": "subscribe", "id": 1, "topics": ["world"]}));
    assert_eq!(steady.reply(1)["op"], "subscribed");
    let rss = |pid: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    };
    let pid = server.pid().to_string();
    let before = rss(&pid);
    let mut round = 0;
    wait_for("the slow client to be closed", || {
        for (i, token) in tokens.iter().enumerate() {
            rejected_commands(&server, token, &format!("flood{round}p{i}"), 25);
        }
        // The steady client reads everything as it comes.
        let last = format!("flood{round}p7-24");
        steady.until("its events", |m| {
            m["event"]["payload"]["order_id"] == last.as_str()
        });
        round += 1;
        let metrics = server.get("/metrics").text;
        metrics
            .lines()
            .any(|l| l.starts_with("tianxia_ws_slow_closes_total") && !l.ends_with(" 0"))
            .then_some(())
    });
    // The slow client reads what was written before the close, then the close itself.
    let (frame, seen) = slow.until_closed();
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 4008, "{frame:?}");
    let reason: Value = serde_json::from_str(frame.reason.as_str()).unwrap();
    assert_eq!(reason["code"], "slow_client");
    let delivered = seen
        .iter()
        .filter(|m| m["topic"] == "world")
        .map(seq)
        .max()
        .unwrap_or(0);
    assert_eq!(reason["last_seq"].as_u64().unwrap(), delivered, "{reason}");
    // The other client goes on.
    rejected_commands(&server, &tokens[0], "after", 1);
    steady.until("an event after the close", |m| {
        m["event"]["payload"]["order_id"] == "after-0"
    });
    let after = rss(&pid);
    assert!(
        after < before + 64 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
    steady.close();
}

/// One daemon, two apis: a client on the second sees the event and the state change of a
/// command sent through the first.
#[test]
fn a_client_on_one_api_sees_a_command_sent_through_another() {
    let deployment = crate::roles::Deployment::new("ws-fanout");
    let (args, envs) = (deployment.args(), deployment.envs());
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let world = deployment.redis.world.as_str();
    let api_a = Server::start_as("api", &["--world", world], &envs);
    let api_b = Server::start_as("api", &["--world", world], &envs);
    api_a.wait_ready();
    api_b.wait_ready();
    let token = register(&api_a, "crosser");
    join(&api_a, &token, "north");
    let mut ws = Ws::connect(&api_b.base, &format!("token={token}"));
    ws.send(
        json!({"op": "subscribe", "id": 1, "topics": ["world", "general:g-crosser", "orders"]}),
    );
    assert_eq!(ws.reply(1)["op"], "subscribed");
    let sent = command(
        &api_a,
        &token,
        json!({"id": "far", "type": "MOVE", "general": "g-crosser", "args": {"to": "hill_fort"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let (mut event, mut state, mut order) = (false, false, false);
    ws.until("the event, the state and the order through api B", |m| {
        event |=
            m["event"]["type"] == "CommandAccepted" && m["event"]["payload"]["order_id"] == "far";
        state |= m["topic"] == "general:g-crosser" && m["state"]["status"] == "marching";
        order |= m["topic"] == "orders"
            && m["order"]["order_id"] == "far"
            && m["order"]["status"] == "accepted";
        event && state && order
    });
    ws.close();
}

#[test]
fn bad_messages_get_typed_errors_and_change_nothing() {
    let (server, _assets) = start(&["--speed", "24", "--ws-max-connections", "3"]);
    // Not an upgrade, a bad token, a bad query: plain HTTP errors.
    let plain = get(&server.url("/ws"));
    assert_eq!(plain.status, 426, "{}", plain.text);
    assert_eq!(plain.json["error"]["code"], "upgrade_required");
    assert!(Ws::try_connect(&server.base, "token=not-a-token", None).is_err());
    assert!(Ws::try_connect(&server.base, "encoding=xml", None).is_err());

    let mut ws = Ws::connect(&server.base, "");
    let cases: Vec<(Message, &str)> = vec![
        (
            Message::Text("{\"op\": \"subscribe\",".into()),
            "invalid_json",
        ),
        (
            Message::Text(r#"{"op":"dance","id":4}"#.into()),
            "unknown_op",
        ),
        (
            Message::Text(r#"{"op":"subscribe","id":5,"topics":["army:1"]}"#.into()),
            "unknown_topic",
        ),
        (
            Message::Text(r#"{"op":"subscribe","id":6,"topics":["orders"]}"#.into()),
            "unauthorized",
        ),
        (
            Message::Text(r#"{"op":"subscribe","id":7,"topics":["general:nobody"]}"#.into()),
            "not_found",
        ),
        (
            Message::Text(r#"{"op":"subscribe","id":8,"topics":[]}"#.into()),
            "invalid_message",
        ),
        (
            Message::Text(r#"{"op":"ping","id":9,"extra":true}"#.into()),
            "invalid_message",
        ),
        (Message::Binary(vec![0xc1, 0x00].into()), "invalid_msgpack"),
        (
            Message::Text(
                format!(r#"{{"op":"ping","id":10,"pad":"{}"}}"#, "x".repeat(5000)).into(),
            ),
            "message_too_large",
        ),
        (
            Message::Text(r#"{"op":"auth","id":11,"token":"nope"}"#.into()),
            "unauthorized",
        ),
    ];
    let too_many: Vec<String> = (0..65).map(|i| format!("general:g{i}")).collect();
    for (frame, code) in cases {
        ws.send_raw(frame).unwrap();
        let error = ws.until(code, |m| m["op"] == "error").pop().unwrap();
        assert_eq!(error["code"], code, "{error}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    ws.send(json!({"op": "subscribe", "id": 12, "topics": too_many}));
    assert_eq!(ws.reply(12)["code"], "too_many_topics");
    // Nothing was subscribed by any of them; the connection still answers.
    ws.send(json!({"op": "ping", "id": 13}));
    assert_eq!(ws.reply(13)["op"], "pong");

    // The connection limit answers 503 at the upgrade.
    let others: Vec<Ws> = (0..2).map(|_| Ws::connect(&server.base, "")).collect();
    match Ws::try_connect(&server.base, "", None) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a fourth connection: {:?}", other.map(|_| ())),
    }
    drop(others);

    // Fuzzed frames never panic the server: each connection sends a burst under the rate limit.
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let frames = proptest::collection::vec((any_bytes(), proptest::bool::ANY), 30);
    for _ in 0..5 {
        let batch = frames.new_tree(&mut runner).unwrap().current();
        let mut fuzzed = wait_for("a free connection", || {
            Ws::try_connect(&server.base, "", None).ok()
        });
        for (bytes, binary) in batch {
            let frame = if binary {
                Message::Binary(bytes.into())
            } else {
                Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
            };
            if fuzzed.send_raw(frame).is_err() {
                break;
            }
        }
        fuzzed.send(json!({"op": "ping", "id": 99}));
        assert_eq!(fuzzed.reply(99)["op"], "pong");
        fuzzed.close();
    }
    assert_eq!(server.get("/health").status, 200);

    // Abuse: far over the message rate closes the connection.
    let mut abuser = wait_for("a free connection", || {
        Ws::try_connect(&server.base, "", None).ok()
    });
    for _ in 0..200 {
        if abuser
            .send_raw(Message::Text(r#"{"op":"ping"}"#.into()))
            .is_err()
        {
            break;
        }
    }
    let (frame, _) = abuser.until_closed();
    assert_eq!(frame.map(|f| u16::from(f.code)), Some(4029));
    ws.close();
    let _ = request("GET", &server.url("/health"), None, None);
}

fn any_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::num::u8::ANY, 0..600).prop_map(|mut bytes| {
        // Some frames start like a client message, so parsing gets past the first byte.
        if bytes.first().is_some_and(|b| b % 2 == 0) {
            let mut prefix = br#"{"op":"subscribe","topics":["#.to_vec();
            prefix.append(&mut bytes);
            prefix
        } else {
            bytes
        }
    })
}
