//! What the admin routes (docs/http.md#admin-routes) ask of the process that runs the World,
//! as a contract between `net` (the routes) and the server (which holds the designer data's
//! reloader and the way to the World): reloading the designer data, the reload side of
//! `/admin/status`, closing an epoch on demand, and maintenance.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use serde::Serialize;

/// The single writer's standing (docs/redis.md#fencing), for `/admin/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeaseReport {
    /// The lease epoch this process writes under (from MongoDB's fence).
    pub epoch: u64,
    /// The Redis key of the lease; absent without Redis (MongoDB's fence alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// This process, the holder: its process id and the first characters of its lease
    /// token (the value of the lease key while it holds it).
    pub holder: String,
    /// Whether the lease was renewed recently enough to act on (always with the fence alone).
    pub fresh: bool,
}

/// Connections of one kind open now, counted by what accepts them, with their limit.
#[derive(Debug, Default)]
pub struct OpenCount {
    open: AtomicUsize,
    max: AtomicUsize,
}

/// One open connection: counted until dropped.
#[derive(Debug)]
pub struct Opened(Arc<OpenCount>);

impl OpenCount {
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::Relaxed);
    }

    /// Counts a connection while the returned guard lives.
    pub fn opened(self: &Arc<Self>) -> Opened {
        self.open.fetch_add(1, Ordering::Relaxed);
        Opened(self.clone())
    }

    pub fn report(&self) -> OpenReport {
        OpenReport {
            open: self.open.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections open and their limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OpenReport {
    pub open: usize,
    pub max: usize,
}

/// A reload that was applied, or found nothing to apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadOutcome {
    /// The hash of the data in force after it.
    pub data_hash: String,
    /// The files that changed (none: the files on disk are the data in force).
    pub files: Vec<String>,
}

/// How hot reload stands (docs/data-files.md#hot-reload).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReloadStatus {
    /// The directory watched.
    pub assets: String,
    /// The hash of the last data validated and handed to the World.
    pub data_hash: String,
    /// Every error of the last reload that was refused, as `file:line:column: message`;
    /// empty once the files validate again.
    pub errors: Vec<String>,
    /// Scenario files on disk that differ from what the world runs on (they apply to new
    /// worlds only).
    pub scenario_changed: Vec<String>,
    /// Reloads applied and refused since the process started.
    pub applied: u64,
    pub refused: u64,
}

/// Why a reload put nothing in force.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReloadError {
    /// The data does not validate: every error, as `file:line:column: message`.
    Invalid(Vec<String>),
    /// The World is not taking new data now (try again).
    Unavailable(String),
}

/// The admin side of the World's process.
pub trait AdminOps: Send + Sync {
    /// Reads and validates the designer data now; if it changed, hands it to the World.
    /// Blocks on file reads. On `Err` the data in force is unchanged.
    fn reload(&self, trigger: &str) -> Result<ReloadOutcome, ReloadError>;

    /// The reload side of `/admin/status`.
    fn reload_status(&self) -> ReloadStatus;

    /// Has the World close a checkpoint epoch now; the epoch's number, once the World has
    /// handed it to the store (not yet durable), or why not. Blocks for a few seconds at most.
    fn flush(&self) -> Result<u64, String>;

    /// Turns maintenance on (`Some(message)`: commands are refused with it) or off; the number
    /// of the epoch that holds the change, once handed to the store. Blocks for a few seconds
    /// at most.
    fn maintenance(&self, message: Option<String>) -> Result<u64, String>;

    /// The lease this process holds, if it writes under one.
    fn lease(&self) -> Option<LeaseReport>;
}
