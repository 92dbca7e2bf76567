//! Configuration as an operator meets it (docs/operations.md#configuration): precedence of
//! command line, environment, config file and defaults; refusals with exit status 2; readiness
//! of configured backends.

use std::fs;

use crate::support::{Mongo, RedisWorld, Server, free_port, run, wait_for};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_configuration_is_refused_with_status_2_and_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let serve = |extra: &[&str], envs: &[(&str, &str)]| {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--data-dir", data];
        args.extend_from_slice(extra);
        run(&args, envs)
    };

    let redis_only = serve(&[], &[("REDIS_URL", "redis://127.0.0.1:6379")]);
    assert_eq!(redis_only.status.code(), Some(2));
    assert!(
        stderr(&redis_only).contains("MONGODB_URI"),
        "{}",
        stderr(&redis_only)
    );

    for (args, needle) in [
        (
            vec!["--speed", "0"],
            "speed must be between 0.001 and 1000000",
        ),
        (vec!["--speed=-3"], "speed must be between"),
        (vec!["--speed", "NaN"], "speed must be between"),
        (
            vec!["--strategy-hz", "0"],
            "strategy_hz must be between 0.01 and 1000",
        ),
        (vec!["--intake-hz", "1e-20"], "intake_hz must be between"),
        (vec!["--world", "Not A Name"], "world: \"Not A Name\""),
        (vec!["--event-window", "0"], "event_window"),
        (vec!["--event-window", "100001"], "event_window"),
    ] {
        let output = serve(&args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }

    let config = dir.path().join("bad.toml");
    fs::write(&config, "speed = 24\nsped = 48\n").unwrap();
    let output = serve(&["--config", config.to_str().unwrap()], &[]);
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("config file {}:2", config.display())),
        "{message}"
    );
    assert!(message.contains("sped"), "{message}");

    let unknown = serve(&["--scenario", "no_such_scenario"], &[]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("unknown scenario \"no_such_scenario\""),
        "{}",
        stderr(&unknown)
    );

    // An address that does not parse is a usage error too.
    let output = serve(&["--bind", "not-an-address"], &[]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn command_line_beats_config_file_beats_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tianxia.toml");
    fs::write(
        &config,
        "world = \"from-file\"\nscenario = \"tiny\"\nspeed = 100.0\nstrategy_hz = 4.0\n",
    )
    .unwrap();
    let server = Server::start_in(
        dir,
        &["--config", config.to_str().unwrap(), "--speed", "4800"],
        &[],
    );
    server.wait_durable();
    let world = server.get("/api/world").json;
    assert_eq!(world["speed"], 4800.0, "{world}");
    assert_eq!(world["world"], "from-file");
    assert_eq!(world["scenario"], "tiny");
    assert_eq!(
        server.get("/api/events").json[0]["aggregate"],
        "world:from-file"
    );
    // At 4 strategy ticks per second, each tick advances 1200 game seconds.
    let ticks = wait_for("a few strategy ticks", || {
        let world = server.get("/api/world").json;
        (world["tick"].as_i64().unwrap() >= 4).then_some(world)
    });
    assert_eq!(ticks["game_seconds"].as_i64().unwrap() % 1200, 0, "{ticks}");
}

#[test]
fn readiness_follows_the_configured_backends() {
    let redis = RedisWorld::new("ready");
    let mongo = Mongo::start();
    let dead = format!("mongodb://127.0.0.1:{}/tianxia_test", free_port());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tianxia.toml");
    fs::write(
        &config,
        "redis_url = \"redis://127.0.0.1:1\"\nscenario = \"tiny\"\n",
    )
    .unwrap();

    // Environment beats the config file (REDIS_URL), the command line beats the environment
    // (MONGODB_URI): both backends configured this way are reachable.
    let server = Server::start_in(
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--mongodb-uri",
            &mongo.uri,
            "--world",
            &redis.world,
        ],
        &[("REDIS_URL", &redis.url), ("MONGODB_URI", &dead)],
    );
    let ready = server.wait_ready();
    let backends = ready["backends"].as_array().unwrap();
    let names: Vec<&str> = backends.iter().filter_map(|b| b["name"].as_str()).collect();
    // The two servers and the process's own store files.
    assert_eq!(
        names,
        ["redis", "mongodb", "tianxia.redb", "commands.redb"],
        "{ready}"
    );
    assert!(backends.iter().all(|b| b["ok"] == true), "{ready}");

    // An unreachable MongoDB at start: the world cannot be recovered, so the server waits
    // for it (saying why) rather than start a world it may overwrite; SIGTERM still stops it.
    let (mut waiting, listening) = Server::launch_in(
        tempfile::tempdir().unwrap(),
        &["--scenario", "tiny", "--mongodb-uri", &dead],
        &[],
    );
    wait_for("serve to report that it cannot recover yet", || {
        waiting
            .log()
            .contains("cannot take the lease epoch yet")
            .then_some(())
    });
    assert!(listening.try_recv().is_err(), "{}", waiting.log());
    let status = waiting.terminate();
    assert!(status.success(), "{status}: {}", waiting.log());
}

#[test]
fn long_log_lines_are_cut_and_stay_json_under_json_logs() {
    use std::io::Write;
    use tianxia::logging::{Clipped, LINE_MAX};
    let long = format!(
        "{{\"fields\":{{\"message\":\"{}\"}}}}\n",
        "关".repeat(LINE_MAX)
    );
    let mut text = Clipped {
        out: Vec::new(),
        json: false,
    };
    text.write_all(long.as_bytes()).unwrap();
    let out = String::from_utf8(text.out).unwrap();
    assert!(
        out.len() < LINE_MAX + 100 && out.ends_with("more bytes)\n"),
        "{}",
        out.len()
    );
    let mut json = Clipped {
        out: Vec::new(),
        json: true,
    };
    json.write_all(long.as_bytes()).unwrap();
    let line: serde_json::Value = serde_json::from_slice(&json.out).unwrap();
    assert_eq!(line["fields"]["bytes"], long.len());
    let mut short = Clipped {
        out: Vec::new(),
        json: true,
    };
    short.write_all(b"{}\n").unwrap();
    assert_eq!(short.out, b"{}\n");
}
