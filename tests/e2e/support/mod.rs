//! Test support: the real binary as a child process with a private data directory, a free
//! port and captured logs ([`server`]); an HTTP client ([`http`]); Redis worlds and servers
//! ([`redis_server`]) and a MongoDB wire-protocol server ([`mongo`]) of the test's own; the API served
//! in process for a World driven by a manual clock ([`in_process`]); and copies of the
//! designer data; a headless Chromium over WebDriver ([`browser`]). Everything a test starts is stopped and removed when its handle drops.

pub mod browser;
pub mod http;
pub mod in_process;
pub mod mongo;
pub mod redis_server;
pub mod server;
pub mod ws;

pub use browser::Browser;
pub use http::{Reply, get, post, request, try_post};
pub use in_process::InProcess;
pub use mongo::Mongo;
pub use redis_server::{RedisServer, RedisWorld};
pub use server::Server;
pub use ws::Ws;

use std::{
    fs,
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

/// Generous bound for anything a test waits for: these machines are slow and busy.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tianxia")
}

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn assets() -> PathBuf {
    repo().join("assets")
}

/// A troop type the shipped data does not have, as a designer adds it to `troops.toml`: a
/// spearman that counters cavalry.
pub const SPEARMAN: &str = "
[spearman]
mass = 110.0
radius = 1.5
max_speed = 2.8
hit_points = 11.0
attack = 3.2
defense = 2.5
range = 2.5
cooldown = 1.1
counters = { cavalry = 1.5 }
";

/// Polls `condition` until it holds or `WAIT` passes; panics with `what` on timeout.
pub fn wait_for<T>(what: &str, mut condition: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = condition() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the binary to completion with a bound on its run time.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin());
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.env_remove("REDIS_URL").env_remove("MONGODB_URI");
    for (key, value) in envs {
        command.env(key, value);
    }
    let child = command.spawn().expect("start tianxia");
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WAIT) {
        Ok(output) => output.expect("wait for tianxia"),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("tianxia {args:?} did not finish within {WAIT:?}; killed it");
        }
    }
}

/// Kills a server the test started, if it runs, and waits for it.
pub fn kill(child: &mut Option<std::process::Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}
