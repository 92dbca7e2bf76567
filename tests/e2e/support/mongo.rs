//! A MongoDB wire-protocol server (`nx-27017`) of the test's own.

use std::{net::TcpStream, path::PathBuf, process::Child, process::Command, process::Stdio};
use tempfile::TempDir;

use super::{free_port, kill, repo, wait_for};

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
        kill(&mut self.child);
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
