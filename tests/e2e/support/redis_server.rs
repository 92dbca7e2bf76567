//! Redis for the tests: a world of the test's own on a Redis, and `redis-server`s of their own.

use serde_json::Value;
use std::{fs, process::Child, process::Command, process::Stdio};
use tempfile::TempDir;

use super::{free_port, kill, wait_for};

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

    /// Adds a command with its stream payload (docs/redis.md#entry-payload).
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
        kill(&mut self.child);
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
