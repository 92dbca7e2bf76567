//! `tianxia serve` as a client and an operator see it: the 190 world running in real time at
//! the configured speed, the read API, metrics, the data-directory lock and graceful shutdown.

use std::time::{Duration, Instant};

use components::time::GameDate;
use serde_json::Value;

use crate::support::{Server, run, wait_for};

fn game_seconds(world: &Value) -> i64 {
    world["game_seconds"]
        .as_i64()
        .expect("game_seconds is an integer")
}

#[test]
fn the_world_runs_at_the_configured_speed_and_serves_the_190_scenario() {
    let mut server = Server::start(&["--speed", "2400"]);
    let ready = server.wait_ready();
    assert_eq!(ready["status"], "ready");

    // The game clock follows real time at 2400 game seconds per real second.
    let first = server.get("/api/world").json;
    let started = Instant::now();
    wait_for("5 real seconds to pass", || {
        (started.elapsed() >= Duration::from_secs(5)).then_some(())
    });
    let second = server.get("/api/world").json;
    let elapsed = started.elapsed().as_secs_f64();
    let advanced = (game_seconds(&second) - game_seconds(&first)) as f64;
    let expected = 2400.0 * elapsed;
    assert!(
        advanced >= 0.5 * expected && advanced <= 1.5 * expected + 2400.0,
        "game clock advanced {advanced} game seconds in {elapsed:.2} real seconds at speed 2400"
    );
    assert_eq!(second["speed"], 2400.0);
    assert_eq!(second["world"], "main");
    assert_eq!(second["scenario"], "190");
    let start = GameDate {
        year: 190,
        month: 1,
        day: 1,
        hour: 0,
    };
    let date: GameDate = serde_json::from_value(second["game_date"].clone()).unwrap();
    assert_eq!(date, start.after(game_seconds(&second)));
    assert!(second["tick"].as_u64().unwrap() >= 3, "{second}");

    // The scenario: 40+ cities, 100+ generals, 8+ nations, consistent with the summary.
    let cities = server.get("/api/cities").json;
    let generals = server.get("/api/generals").json;
    let nations = server.get("/api/nations").json;
    assert!(
        cities.as_array().unwrap().len() >= 40,
        "{} cities",
        cities.as_array().unwrap().len()
    );
    assert!(generals.as_array().unwrap().len() >= 100);
    assert!(nations.as_array().unwrap().len() >= 8);
    assert_eq!(second["cities"], cities.as_array().unwrap().len());
    assert_eq!(second["generals"], generals.as_array().unwrap().len());
    assert_eq!(second["nations"], nations.as_array().unwrap().len());

    let luoyang = server.get("/api/cities/luoyang");
    assert_eq!(luoyang.status, 200);
    assert_eq!(luoyang.json["nation"], "dong_zhuo");
    assert!(
        luoyang.json["neighbors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["city"] == "hongnong")
    );
    let dong_zhuo = server.get("/api/nations/dong_zhuo").json;
    assert_eq!(dong_zhuo["capital"], "luoyang");
    assert_eq!(dong_zhuo["relations"]["cao_cao"], "war");
    assert!(
        dong_zhuo["city_ids"]
            .as_array()
            .unwrap()
            .contains(&Value::from("luoyang"))
    );
    assert!(
        dong_zhuo["general_ids"]
            .as_array()
            .unwrap()
            .contains(&Value::from("lu_bu"))
    );
    let cao_cao = server.get("/api/generals/cao_cao").json;
    assert_eq!(cao_cao["nation"], "cao_cao");
    assert_eq!(cao_cao["position"]["name"], "emperor");
    assert_eq!(cao_cao["status"], "idle");
    assert!(cao_cao["order"].is_null() && cao_cao["march"].is_null());

    // Filters.
    let in_luoyang = server.get("/api/generals?city=luoyang").json;
    assert!(
        in_luoyang
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["city"] == "luoyang")
    );
    assert!(
        in_luoyang
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"] == "lu_bu")
    );
    let dong_cities = server.get("/api/cities?nation=dong_zhuo").json;
    assert_eq!(
        dong_cities.as_array().unwrap().len(),
        dong_zhuo["city_ids"].as_array().unwrap().len()
    );

    // Errors have the API's shape.
    let missing = server.get("/api/generals/no_such_general");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json["error"]["code"], "not_found");
    assert!(
        missing.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no_such_general")
    );
    assert_eq!(server.get("/api/nations/nowhere").status, 404);
    assert_eq!(
        server.get("/api/cities/Not%20An%20Id").json["error"]["code"],
        "not_found"
    );
    let no_route = server.get("/api/nothing-here");
    assert_eq!(
        (no_route.status, no_route.json["error"]["code"].clone()),
        (404, "not_found".into())
    );
    for bad in [
        "/api/generals?bogus=1",
        "/api/generals?nation=NOT%20AN%20ID",
        "/api/cities?nation=",
        "/api/events?limit=0",
        "/api/events?limit=1001",
        "/api/events?after_seq=minus-one",
        "/api/events?aggregate=nocolon",
        "/api/world?x=1",
        "/api/generals/cao_cao?x=1",
        "/api/generals/%FF",
    ] {
        let reply = server.get(bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert_eq!(reply.json["error"]["code"], "invalid_field", "{bad}");
    }

    // The event log opens with WorldCreated.
    server.wait_durable();
    let events = server.get("/api/events").json;
    let first_event = &events.as_array().unwrap()[0];
    assert_eq!(first_event["seq"], 1);
    assert_eq!(first_event["type"], "WorldCreated");
    assert_eq!(first_event["aggregate"], "world:main");
    assert_eq!(first_event["payload"]["scenario"], "190");
    assert_eq!(first_event["payload"]["data_hash"], second["data_hash"]);

    // Operators: liveness and metrics.
    assert_eq!(server.get("/health").json["status"], "ok");
    let metrics = server.get("/metrics").text;
    for name in [
        "tianxia_tick_duration_seconds_bucket{schedule=\"strategy\"",
        "tianxia_tick_duration_seconds_count{schedule=\"intake\"}",
        "tianxia_tick_overruns_total{schedule=\"strategy\"}",
        "tianxia_game_clock_lag_seconds",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }

    // Graceful shutdown on SIGTERM.
    let status = server.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("shutdown complete"),
        "{}",
        server.log()
    );
}

#[test]
fn a_second_server_cannot_take_a_data_directory_in_use() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    let data = server.dir.path().join("data");
    let assets = crate::support::assets();
    let output = run(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--scenario",
            "tiny",
            "--assets",
            assets.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is in use by another tianxia process"),
        "{stderr}"
    );
    // The first server is unaffected.
    assert_eq!(server.get("/api/world").status, 200);
}

#[test]
fn events_are_served_in_sequence_with_filters() {
    // At the highest speed a game month passes in about 2.6 real seconds.
    let server = Server::start(&["--scenario", "tiny", "--speed", "1000000"]);
    server.wait_ready();
    let world = wait_for("two MonthBegan events", || {
        let events = server
            .get("/api/events?aggregate=world:main&limit=1000")
            .json;
        let months = events
            .as_array()?
            .iter()
            .filter(|e| e["type"] == "MonthBegan")
            .count();
        (months >= 2).then_some(events)
    });
    let world = world.as_array().unwrap();
    assert!(world.iter().all(|e| e["aggregate"] == "world:main"));
    assert!(
        world
            .windows(2)
            .all(|w| w[0]["seq"].as_u64() < w[1]["seq"].as_u64())
    );
    let month = world.iter().find(|e| e["type"] == "MonthBegan").unwrap();
    let at = month["game_time"].as_i64().unwrap();
    assert_eq!(at % 2_592_000, 0, "{month}");
    assert_eq!(
        month["payload"],
        serde_json::json!({"year": 200, "month": at / 2_592_000 + 1})
    );

    // Unfiltered, the log holds every event of its span, without gaps.
    let all = server.get("/api/events?limit=1000").json;
    let all = all.as_array().unwrap();
    assert!(all.len() > 2, "{all:?}");
    for pair in all.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_u64().unwrap(),
            pair[0]["seq"].as_u64().unwrap() + 1
        );
    }
    let first = all[0]["seq"].as_u64().unwrap();
    let page = server
        .get(&format!("/api/events?after_seq={first}&limit=1"))
        .json;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["seq"], first + 1);
    let world = server.get("/api/events?aggregate=world:main&limit=2").json;
    assert_eq!(world.as_array().unwrap().len(), 2);
    assert!(
        world
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["aggregate"] == "world:main")
    );
    let none = server.get("/api/events?aggregate=general:nobody").json;
    assert_eq!(none, serde_json::json!([]));
}

/// What a request on a new connection came to.
#[derive(Debug, PartialEq)]
enum Answer {
    /// The status line.
    Status(String),
    /// The server closed the connection without answering.
    Closed,
    /// Nothing within the time allowed.
    Silent,
}

/// Sends one request on a new connection and waits up to `wait` for the answer.
fn raw_get(base: &str, path: &str, wait: Duration) -> Answer {
    use std::io::{ErrorKind, Read, Write};
    let address = base.trim_start_matches("http://");
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return Answer::Closed;
    };
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    );
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Answer::Silent,
        _ => match String::from_utf8_lossy(&answer).lines().next() {
            Some(line) => Answer::Status(line.to_string()),
            None => Answer::Closed,
        },
    }
}

/// Whether the other end has closed `stream` (without waiting).
fn closed_by_peer(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let closed = match stream.peek(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    stream.set_nonblocking(false).unwrap();
    closed
}

/// The nice value of each thread of process `pid`, by thread name.
fn thread_priorities(pid: u32) -> Vec<(String, i64)> {
    let mut threads = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let dir = task.unwrap().path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("stat")),
        ) else {
            continue; // the thread ended meanwhile
        };
        // After the name in parentheses: state (field 3) ... nice (field 19).
        let after = &stat[stat.rfind(')').unwrap() + 1..];
        let nice = after.split_whitespace().nth(16).unwrap().parse().unwrap();
        threads.push((name.trim().to_string(), nice));
    }
    threads
}

/// The World's thread keeps the process's priority while the I/O runtime's threads yield to
/// it (nice 5), so a burst of HTTP or WebSocket work does not delay a tick.
#[test]
fn the_io_threads_yield_the_cpu_to_the_world() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    let threads = thread_priorities(server.pid());
    let own = threads
        .iter()
        .find(|(name, _)| name == "tianxia")
        .map(|(_, nice)| *nice)
        .unwrap_or_else(|| panic!("no main thread in {threads:?}"));
    let world: Vec<i64> = threads
        .iter()
        .filter(|(name, _)| name == "world")
        .map(|(_, nice)| *nice)
        .collect();
    assert_eq!(world, [own], "{threads:?}");
    let io: Vec<i64> = threads
        .iter()
        .filter(|(name, _)| name == "tianxia-io")
        .map(|(_, nice)| *nice)
        .collect();
    assert!(!io.is_empty(), "{threads:?}");
    assert!(io.iter().all(|nice| *nice == own.max(5)), "{threads:?}");
}

#[test]
fn idle_connections_cannot_lock_clients_out() {
    use std::io::Read;
    let server = Server::start(&["--scenario", "tiny", "--max-connections", "4"]);
    server.wait_ready();
    let address = server.base.trim_start_matches("http://").to_string();
    // Connections that send nothing fill the limit.
    let opened = Instant::now();
    let mut idle: Vec<std::net::TcpStream> = (0..4)
        .map(|_| std::net::TcpStream::connect(&address).unwrap())
        .collect();
    // Beyond it, a new connection is closed unanswered rather than left waiting.
    wait_for("a connection beyond the limit to be closed", || {
        // A connection of the readiness checks the server had not seen closed yet may have
        // held a place, so that it refused one of the idle ones: open those again.
        for stream in idle.iter_mut() {
            if closed_by_peer(stream) {
                *stream = std::net::TcpStream::connect(&address).unwrap();
            }
        }
        let answer = raw_get(&server.base, "/health", Duration::from_secs(5));
        assert_ne!(answer, Answer::Silent);
        (answer == Answer::Closed).then_some(())
    });
    // The idle ones are closed once they have sent no headers for 20 s...
    for mut stream in idle {
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut byte = [0u8; 1];
        let read = stream.read(&mut byte);
        assert!(
            matches!(read, Ok(0))
                || read
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "the server closed it: {read:?}"
        );
    }
    assert!(
        opened.elapsed() >= Duration::from_secs(15),
        "the idle connections were closed by their timeout, not at once: {:?}",
        opened.elapsed()
    );
    // ...and clients are served again.
    let answer = raw_get(&server.base, "/health", Duration::from_secs(30));
    assert!(
        matches!(&answer, Answer::Status(s) if s.contains("200")),
        "{answer:?}"
    );
    assert!(
        server.log().contains("connection limit reached"),
        "{}",
        server.log()
    );
}

#[test]
fn an_operator_stops_restarts_and_misconfigures_a_server() {
    // SIGHUP stops gracefully, as SIGTERM does, and the next start finds a clean stop.
    let mut server = Server::start(&["--scenario", "tiny", "--bind", "localhost:0"]);
    server.wait_ready();
    server.signal("HUP");
    let status = server.wait_exit();
    assert!(status.success(), "{status}: {}", server.log());
    assert!(
        server.log().contains("signal=\"SIGHUP\""),
        "{}",
        server.log()
    );
    let lock = server.dir.path().join("data").join("LOCK");
    assert_eq!(std::fs::read_to_string(&lock).unwrap(), "stopped");

    // A killed run is told at the next start.
    let dir = server.stop_keeping_dir_after_exit();
    let server = Server::start_in(dir, &["--scenario", "tiny"], &[]);
    server.wait_ready();
    let dir = server.kill_keeping_dir();
    let server = Server::start_in(dir, &["--scenario", "tiny"], &[]);
    server.wait_ready();
    assert!(
        server.log().contains("did not stop cleanly"),
        "{}",
        server.log()
    );

    // A taken port stops a new server before it creates anything, and under JSON logs the
    // failure is a JSON line.
    let taken = server.base.trim_start_matches("http://").to_string();
    let fresh = tempfile::tempdir().unwrap();
    let data = fresh.path().join("data");
    let output = run(
        &[
            "--log-format",
            "json",
            "serve",
            "--bind",
            &taken,
            "--scenario",
            "tiny",
            "--assets",
            crate::support::assets().to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(!data.exists(), "nothing was created");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot listen"),
        "{stderr}"
    );
}
