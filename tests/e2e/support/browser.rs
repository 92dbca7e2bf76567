//! A real headless Chromium, driven over WebDriver by `chromedriver` (Debian's `chromium` and
//! `chromium-driver`, installed by `scripts/test.sh`), for the tests of the page. Nothing is
//! downloaded: `TIANXIA_CHROMEDRIVER` and `TIANXIA_CHROMIUM` name other binaries. The driver
//! and the browser stop, and the browser's profile is removed, when the handle drops.

use std::{
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, wd::WebDriverCompatibleCommand};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::{free_port, wait_for};

/// `POST /session/{id}/se/log {"type": "browser"}`: the browser's console entries since the
/// last call (chromedriver's log endpoint; needs `goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// One console entry: `level` (`SEVERE`, `WARNING`, `INFO`, ...), `source` (`javascript`,
/// `console-api`, `network`, ...), `message`.
#[derive(Clone, Debug)]
pub struct LogEntry {
    pub level: String,
    pub source: String,
    pub message: String,
}

pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Option<Child>,
    _profile: TempDir,
    /// Every console entry read so far.
    pub log: Vec<LogEntry>,
}

fn chromedriver() -> PathBuf {
    std::env::var_os("TIANXIA_CHROMEDRIVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromedriver"))
}

/// The browser binary: `TIANXIA_CHROMIUM`, else Debian's (the `/usr/bin/chromium` wrapper
/// is a shell script; the driver needs the binary), else whatever the driver finds.
fn chromium() -> Option<PathBuf> {
    std::env::var_os("TIANXIA_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let debian = Path::new("/usr/lib/chromium/chromium");
            debian.exists().then(|| debian.to_path_buf())
        })
}

impl Browser {
    /// Starts the driver and a headless browser with a window of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        let port = free_port();
        let driver = Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the page tests need chromedriver ({e}): run `scripts/test.sh` (it installs \
                     Debian's chromium and chromium-driver), or `apt-get install chromium \
                     chromium-driver`, or set TIANXIA_CHROMEDRIVER"
                )
            });
        let profile = tempfile::tempdir().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut browser = Browser {
            runtime,
            client: None,
            driver: Some(driver),
            _profile: profile,
            log: Vec::new(),
        };
        wait_for("chromedriver to listen", || {
            TcpStream::connect(("127.0.0.1", port)).ok()
        });
        let mut options = json!({
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                format!("--window-size={width},{height}"),
                format!("--user-data-dir={}", browser._profile.path().display()),
            ],
        });
        if let Some(binary) = chromium() {
            options["binary"] = json!(binary);
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": options,
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = browser
            .runtime
            .block_on(
                ClientBuilder::new(HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .unwrap_or_else(|e| panic!("chromedriver could not start chromium: {e}"));
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.runtime.block_on(self.client().goto(url)).unwrap();
    }

    pub fn set_size(&self, width: u32, height: u32) {
        self.runtime
            .block_on(self.client().set_window_size(width, height))
            .unwrap();
    }

    /// Runs `script` (a function body: `return ...`) in the page and answers its value.
    pub fn eval(&self, script: &str) -> Value {
        self.runtime
            .block_on(self.client().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("the page could not run {script:?}: {e}"))
    }

    /// Waits until `script` answers something other than `null` or `false`, and answers it.
    pub fn wait(&self, what: &str, script: &str) -> Value {
        wait_for(what, || {
            let value = self.eval(script);
            (!value.is_null() && value != Value::Bool(false)).then_some(value)
        })
    }

    /// Reads the console entries the browser logged since the last read into `log`, and
    /// answers them.
    pub fn read_log(&mut self) -> Vec<LogEntry> {
        let value = self
            .runtime
            .block_on(self.client().issue_cmd(BrowserLog))
            .expect("chromedriver's browser log");
        let entries: Vec<LogEntry> = value
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or_default().to_string(),
                source: e["source"].as_str().unwrap_or_default().to_string(),
                message: e["message"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        self.log.extend(entries.iter().cloned());
        entries
    }

    /// A PNG of the window.
    pub fn screenshot(&self) -> Vec<u8> {
        self.runtime
            .block_on(self.client().screenshot())
            .expect("a screenshot")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), client.close()).await
            });
        }
        super::kill(&mut self.driver);
    }
}
