//! Test support: the real binary as a child process with a private data directory, a free
//! port and captured logs; an HTTP client; a MongoDB wire-protocol server of the test's own;
//! and copies of the designer data. Everything a test starts is stopped and removed when its
//! handle drops.

use std::{
    fs,
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;
use tempfile::TempDir;

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

/// An HTTP response: status and JSON body (`Value::Null` if the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub text: String,
    pub json: Value,
}

pub fn get(url: &str) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut response = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, text, json }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn reply(mut response: ureq::http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply { status, text, json }
}

/// A request with an optional bearer token: `body` is sent as is (it may be broken JSON).
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<&[u8]>) -> Reply {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut r = agent.get(url);
            if let Some(auth) = &auth {
                r = r.header("Authorization", auth);
            }
            r.call()
        }
        ("POST", body) => {
            let mut r = agent.post(url).header("Content-Type", "application/json");
            if let Some(auth) = &auth {
                r = r.header("Authorization", auth);
            }
            r.send(body.unwrap_or_default())
        }
        _ => panic!("unsupported method {method}"),
    };
    reply(result.unwrap_or_else(|e| panic!("{method} {url}: {e}")))
}

/// POSTs a JSON value.
pub fn post(url: &str, token: Option<&str>, body: &Value) -> Reply {
    request("POST", url, token, Some(body.to_string().as_bytes()))
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

/// `tianxia serve` as a child process, on a free port, with its own data directory.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub dir: TempDir,
    stderr: PathBuf,
}

impl Server {
    /// Starts `serve` with `args` (after the defaults this adds) and waits until it listens.
    pub fn start(args: &[&str]) -> Server {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, args, envs)
    }

    /// Starts `serve` with its data directory under `dir`.
    pub fn start_in(dir: TempDir, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let (mut server, rx) = Self::launch_in(dir, args, envs);
        server.base = match rx.recv_timeout(WAIT) {
            Ok(base) => base,
            Err(_) => panic!(
                "tianxia serve did not start listening; its log:\n{}",
                server.log()
            ),
        };
        server
    }

    /// Starts `serve` without waiting for it to listen; the receiver gets its address once
    /// it does.
    pub fn launch_in(
        dir: TempDir,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (Server, mpsc::Receiver<String>) {
        Self::launch_as("serve", dir, args, envs)
    }

    /// Starts `role` (`serve`, `daemon`) and waits until it listens.
    pub fn start_as(role: &str, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let (mut server, rx) = Self::launch_as(role, tempfile::tempdir().unwrap(), args, envs);
        server.base = match rx.recv_timeout(WAIT) {
            Ok(base) => base,
            Err(_) => panic!(
                "tianxia {role} did not start listening; its log:\n{}",
                server.log()
            ),
        };
        server
    }

    /// Starts `role` without waiting for it to listen.
    pub fn launch_as(
        role: &str,
        dir: TempDir,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> (Server, mpsc::Receiver<String>) {
        let data = dir.path().join("data");
        let stderr = dir.path().join("stderr.log");
        let mut command = Command::new(bin());
        command
            .arg(role)
            .args(["--bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .env_remove("REDIS_URL")
            .env_remove("MONGODB_URI")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&stderr).unwrap());
        if !args.contains(&"--assets") {
            command.arg("--assets").arg(assets());
        }
        if !args.contains(&"--flush-interval") {
            // Epochs often, so the durable event log follows the World closely.
            command.args(["--flush-interval", "0.2"]);
        }
        for (key, value) in envs {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start tianxia serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(address) = line.strip_prefix("tianxia listening on ") {
                    let _ = tx.send(address.to_string());
                }
            }
        });
        let server = Server {
            child,
            base: String::new(),
            dir,
            stderr,
        };
        (server, rx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> Reply {
        get(&self.url(path))
    }

    /// Waits until `/ready` answers 200 and returns its body.
    pub fn wait_ready(&self) -> Value {
        wait_for("GET /ready to answer 200", || {
            let reply = self.get("/ready");
            (reply.status == 200).then_some(reply.json)
        })
    }

    /// Waits until every event the World had published when called is durable (served by
    /// `GET /api/events`).
    pub fn wait_durable(&self) {
        let ready = self.wait_ready();
        let target = ready["last_seq"].as_u64().unwrap();
        wait_for("the event log to become durable", || {
            let ready = self.get("/ready").json;
            (ready["persistence"]["durable_seq"].as_u64()? >= target).then_some(())
        });
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the process.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{name} {pid} failed");
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self) -> ExitStatus {
        wait_for("tianxia to exit", || self.child.try_wait().unwrap())
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and hands back its directory.
    pub fn kill_keeping_dir(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the process to exit.
    /// Stops the server with SIGTERM and hands back its directory (data and log), for a
    /// restart on the same data.
    pub fn stop_keeping_dir(mut self) -> TempDir {
        let status = self.terminate();
        assert!(
            status.success(),
            "serve exited with {status}: {}",
            self.log()
        );
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid} failed");
        wait_for("tianxia serve to exit after SIGTERM", || {
            self.child.try_wait().unwrap()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A world of the test's own: a unique world name on a Redis, and every key of that world
/// removed when the handle drops. [`RedisWorld::new`] runs a `redis-server` of its own, so
/// keys outside the world's (tokens) never reach the machine's Redis either.
pub struct RedisWorld {
    pub url: String,
    pub world: String,
    client: redis::Client,
    /// Whether dropping this handle removes the world's keys.
    owned: bool,
    /// The private server, stopped (and its data removed) last.
    _server: Option<RedisServer>,
}

impl RedisWorld {
    /// A world on a `redis-server` of the test's own.
    pub fn new(tag: &str) -> RedisWorld {
        let server = RedisServer::start();
        let mut world = Self::on(&server.url, tag);
        world._server = Some(server);
        world
    }

    /// A world on the Redis at `url`.
    pub fn on(url: &str, tag: &str) -> RedisWorld {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let world = format!("t-{tag}-{}-{n}", std::process::id());
        let client = redis::Client::open(url).unwrap();
        let world = RedisWorld {
            url: url.to_string(),
            world,
            client,
            owned: true,
            _server: None,
        };
        world.clean();
        world
    }

    /// Another handle on an existing world (dropping it removes nothing).
    pub fn attach(url: &str, world: &str) -> RedisWorld {
        RedisWorld {
            url: url.to_string(),
            world: world.to_string(),
            client: redis::Client::open(url).unwrap(),
            owned: false,
            _server: None,
        }
    }

    pub fn connection(&self) -> redis::Connection {
        self.client.get_connection().unwrap()
    }

    /// `cmd:game:{world}`.
    pub fn stream(&self) -> String {
        format!("cmd:game:{}", self.world)
    }

    /// Adds an entry to the command stream as any producer would; returns its id.
    pub fn xadd(&self, fields: &[(&str, &[u8])]) -> String {
        let mut add = redis::cmd("XADD");
        add.arg(self.stream()).arg("*");
        for (name, value) in fields {
            add.arg(*name).arg(*value);
        }
        add.query(&mut self.connection()).unwrap()
    }

    /// Entries read by the daemons' group and not yet acknowledged.
    pub fn pending(&self) -> usize {
        let summary: redis::streams::StreamPendingReply = redis::cmd("XPENDING")
            .arg(self.stream())
            .arg("game-daemon")
            .query(&mut self.connection())
            .unwrap();
        summary.count()
    }

    /// Adds a command with the payload of SPEC 7.
    pub fn xadd_command(&self, payload: &Value) -> String {
        self.xadd(&[("payload", payload.to_string().as_bytes())])
    }

    fn keys(&self) -> Vec<String> {
        let Ok(mut connection) = self.client.get_connection() else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        for pattern in [format!("*:{}", self.world), format!("*:{}:*", self.world)] {
            if let Ok(found) = redis::Commands::scan_match::<_, String>(&mut connection, &pattern) {
                keys.extend(found.filter_map(Result::ok));
            }
        }
        keys
    }

    fn clean(&self) {
        let keys = self.keys();
        if keys.is_empty() {
            return;
        }
        if let Ok(mut connection) = self.client.get_connection() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut connection);
        }
    }
}

impl Drop for RedisWorld {
    fn drop(&mut self) {
        if self.owned {
            self.clean();
        }
    }
}

/// A `redis-server` of the test's own on a free port, its data (append-only, synced on every
/// write) in a temporary directory, for tests that stop and start Redis.
pub struct RedisServer {
    child: Option<Child>,
    pub url: String,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            child: None,
            url: String::new(),
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (install Redis to run this test)");
        self.child = Some(child);
        self.url = format!("redis://127.0.0.1:{}", self.port);
        let client = redis::Client::open(self.url.as_str()).unwrap();
        wait_for("redis-server to answer", || {
            let mut connection = client.get_connection().ok()?;
            redis::cmd("PING").query::<String>(&mut connection).ok()
        });
    }

    /// Kills the server (SIGKILL: what it acknowledged is in its append-only file).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// Starts it again on the same port with its data lost.
    pub fn restart_empty(&mut self) {
        self.stop();
        for entry in fs::read_dir(self.dir.path()).unwrap().flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
        }
        self.run();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A MongoDB wire-protocol server (`nx-27017`) of the test's own, in memory, on a free port.
pub struct Mongo {
    child: Option<Child>,
    pub uri: String,
    port: u16,
    db: PathBuf,
    dir: TempDir,
}

impl Mongo {
    fn program() -> PathBuf {
        if let Ok(path) = std::env::var("TIANXIA_NX27017") {
            return PathBuf::from(path);
        }
        let venv = repo().join(".venv/bin/nx-27017");
        if !venv.exists() {
            panic!(
                "this test needs the MongoDB wire-protocol server nx-27017: run `scripts/test.sh` \
                 (it installs it into .venv), or `python3 -m venv .venv && .venv/bin/pip install \
                 nx-27017`, or set TIANXIA_NX27017 to its path"
            );
        }
        venv
    }

    pub fn start() -> Mongo {
        let dir = tempfile::tempdir().unwrap();
        let mut mongo = Mongo {
            child: None,
            uri: String::new(),
            port: free_port(),
            db: "memory".into(),
            dir,
        };
        mongo.run();
        mongo
    }

    /// A server keeping its data in a file, so it can be stopped and started again.
    pub fn start_on_disk() -> Mongo {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("nx.db");
        let mut mongo = Mongo {
            child: None,
            uri: String::new(),
            port: free_port(),
            db,
            dir,
        };
        mongo.run();
        mongo
    }

    fn run(&mut self) {
        let child = Command::new(Self::program())
            .arg("--db")
            .arg(&self.db)
            .args(["--host", "127.0.0.1", "-p", &self.port.to_string()])
            .arg("--log-file")
            .arg(self.dir.path().join("nx.log"))
            .arg("--pid-file")
            .arg(self.dir.path().join("nx.pid"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nx-27017");
        self.child = Some(child);
        self.uri = format!("mongodb://127.0.0.1:{}/tianxia_test", self.port);
        let port = self.port;
        wait_for("nx-27017 to accept connections", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    /// Kills the server (its port stays this test's).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Mongo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The HTTP API served in this process from a World's read handle, on a free port, for tests
/// that drive the World with a manual clock.
pub struct InProcess {
    base: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl InProcess {
    /// Serves `read` with a command bus nobody reads (a World without players).
    pub fn serve(read: components::read_model::ReadHandle) -> InProcess {
        let (tx, _) = crossbeam_channel::bounded(1);
        Self::serve_with_bus(read, tx)
    }

    pub fn serve_with_bus(
        read: components::read_model::ReadHandle,
        bus: crossbeam_channel::Sender<components::command::Inbound>,
    ) -> InProcess {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .build_recorder()
            .handle();
        let journal = std::sync::Arc::new(ChannelJournal {
            tx: bus.clone(),
            seq: std::sync::atomic::AtomicU64::new(0),
        });
        let events = std::sync::Arc::new(WindowEvents(read.clone()));
        let state = net::AppState {
            read,
            metrics,
            backends: std::sync::Arc::new(net::Backends::none()),
            accounts: net::Accounts::memory(),
            bus: std::sync::Arc::new(net::CommandBus::new(journal, bus)),
            limits: std::sync::Arc::new(net::RateLimits::default()),
            events,
            persist: std::sync::Arc::new(components::durable::PersistStatus::new("none")),
        };
        runtime.spawn(async move {
            let _ = axum::serve(listener, net::router(state)).await;
        });
        InProcess {
            base,
            runtime: Some(runtime),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// A journal of the in-process tests' own: numbers commands and hands them to the World,
/// without a log (these Worlds are never recovered).
struct ChannelJournal {
    tx: crossbeam_channel::Sender<components::command::Inbound>,
    seq: std::sync::atomic::AtomicU64,
}

impl components::durable::Journal for ChannelJournal {
    fn append(
        &self,
        mut command: components::command::Command,
    ) -> components::durable::JournalFuture<'_> {
        command.log_seq = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if command.id.is_empty() {
            command.id = components::command::server_command_id(command.log_seq);
        }
        let sent = self
            .tx
            .try_send(components::command::Inbound::Command(command.clone()))
            .map(|()| components::durable::Appended::New(command))
            .map_err(|e| components::durable::JournalError::Unavailable(e.to_string()));
        Box::pin(async move { sent })
    }
}

/// The in-process tests' event log: the published window.
struct WindowEvents(components::read_model::ReadHandle);

impl components::durable::EventLog for WindowEvents {
    fn events<'a>(
        &'a self,
        after: u64,
        limit: usize,
        aggregate: Option<&'a str>,
    ) -> components::durable::DurableFuture<'a, Vec<components::events::DomainEvent>> {
        let events = self.0.load_full().map_or_else(Vec::new, |m| {
            m.events_after(after, limit, aggregate)
                .into_iter()
                .map(|e| (*e).clone())
                .collect()
        });
        Box::pin(async move { Ok(events) })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
