//! `tianxia` as a child process: a role on a free port, its own data directory, its log.

use std::{
    fs,
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    thread,
};

use serde_json::Value;
use tempfile::TempDir;

use super::{Reply, WAIT, assets, bin, get, wait_for};

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

    /// Starts `serve` in `dir` and waits until it listens or exits: `Err` with its exit
    /// status, its log and the directory back if it exits first.
    pub fn try_start_in(
        dir: TempDir,
        args: &[&str],
    ) -> Result<Server, (ExitStatus, String, TempDir)> {
        let (mut server, rx) = Self::launch_in(dir, args, &[]);
        let outcome = wait_for("tianxia serve to listen or exit", || {
            if let Ok(base) = rx.try_recv() {
                return Some(Ok(base));
            }
            server.child.try_wait().unwrap().map(Err)
        });
        match outcome {
            Ok(base) => {
                server.base = base;
                Ok(server)
            }
            Err(status) => {
                let log = server.log();
                let dir = std::mem::replace(&mut server.dir, tempfile::tempdir().unwrap());
                Err((status, log, dir))
            }
        }
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
        // In its own directory: relative paths it is given resolve there.
        command.current_dir(dir.path()).arg(role);
        if !args.contains(&"--bind") {
            command.args(["--bind", "127.0.0.1:0"]);
        }
        command
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

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
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

    /// Hands back the directory of a server that has exited.
    pub fn stop_keeping_dir_after_exit(mut self) -> TempDir {
        assert!(self.child.try_wait().unwrap().is_some(), "it still runs");
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
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
