//! Hot reload of the designer data (docs/data-files.md#hot-reload): a watcher on the assets
//! directory (notify, debounced) and `POST /admin/reload` both run [`Reloads::reload`], which
//! reads and validates the rules files as `check` does and hands valid new data to the World,
//! which puts it in force at its next intake tick. An invalid edit is refused, logged with
//! file and line, kept for `/admin/status`, and the old data stays in force. Scenario files
//! apply to new worlds only: a change to one is logged, not applied. [`WorldAdmin`] is what the
//! admin routes ask of this process: reloads, their status, epochs on demand, maintenance.

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context;
use components::{
    admin::{AdminOps, LeaseReport, ReloadError, ReloadOutcome, ReloadStatus},
    read_model::ReadHandle,
    world::PositionKind,
};
use crossbeam_channel::Sender;
use notify_debouncer_mini::{
    DebounceEventResult, Debouncer, new_debouncer,
    notify::{RecommendedWatcher, RecursiveMode},
};
use systems::{
    admin::AdminRequest,
    assets::{AssetErrors, InUse, Reloaded, Reloader},
};
use tracing::{info, warn};

/// How long the files must be quiet before a change is read: an editor's save is often
/// several writes.
const DEBOUNCE: Duration = Duration::from_millis(300);
/// Errors of a refused reload logged one by one at most; the rest are counted.
const LOGGED_ERRORS: usize = 20;
/// Errors of a refused reload kept for `/admin/status` at most.
const KEPT_ERRORS: usize = 1_000;

/// The reloader, the way to the World, and what the last reload came to.
pub(crate) struct Reloads {
    reloader: Mutex<Reloader>,
    world: Sender<Reloaded>,
    /// The World's published state, to see which troop types and cards are in use.
    read: ReadHandle,
    status: Mutex<ReloadStatus>,
}

impl Reloads {
    pub(crate) fn new(
        reloader: Reloader,
        world: Sender<Reloaded>,
        read: ReadHandle,
    ) -> Arc<Reloads> {
        let status = ReloadStatus {
            assets: reloader.dir().display().to_string(),
            data_hash: reloader.data_hash().to_string(),
            ..ReloadStatus::default()
        };
        Arc::new(Reloads {
            reloader: Mutex::new(reloader),
            world,
            read,
            status: Mutex::new(status),
        })
    }

    fn status(&self) -> std::sync::MutexGuard<'_, ReloadStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs scenario files that differ from what the world runs on, once per change.
    fn note_scenario_changes(&self, reloader: &Reloader) {
        let changed = reloader.scenario_changes();
        let mut status = self.status();
        if changed != status.scenario_changed {
            if !changed.is_empty() {
                warn!(
                    files = ?changed,
                    "scenario files changed: they apply to new worlds only; this world keeps the scenario it was built from"
                );
            }
            status.scenario_changed = changed;
        }
    }

    /// Watches the assets directory until the returned watcher is dropped.
    pub(crate) fn watch(self: &Arc<Self>) -> anyhow::Result<Debouncer<RecommendedWatcher>> {
        let dir = self
            .reloader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .dir()
            .to_path_buf();
        let reloads = Arc::downgrade(self);
        let mut debouncer = new_debouncer(DEBOUNCE, move |events: DebounceEventResult| {
            let Some(reloads) = reloads.upgrade() else {
                return;
            };
            match events {
                Ok(events) => {
                    let rules = {
                        let reloader = reloads.reloader.lock().unwrap_or_else(|e| e.into_inner());
                        events.iter().any(|e| reloader.is_rules_file(&e.path))
                    };
                    if rules {
                        // Refusals and results are logged and kept for /admin/status.
                        let _ = reloads.reload("watch");
                    } else {
                        let reloader = reloads.reloader.lock().unwrap_or_else(|e| e.into_inner());
                        reloads.note_scenario_changes(&reloader);
                    }
                }
                Err(e) => warn!(error = %e, "watching the designer data failed"),
            }
        })
        .context("cannot watch the designer data")?;
        debouncer
            .watcher()
            .watch(Path::new(&dir), RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {}", dir.display()))?;
        info!(assets = %dir.display(), "watching the designer data for changes");
        Ok(debouncer)
    }
}

impl Reloads {
    /// Reads and validates the rules files now and hands changed, valid data to the World.
    pub(crate) fn reload(&self, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        let mut reloader = self.reloader.lock().unwrap_or_else(|e| e.into_inner());
        let result = reloader.reload().and_then(|reloaded| match &reloaded {
            Some(new) => {
                let errors =
                    systems::assets::removed_in_use(&new.data, reloader.dir(), &self.in_use());
                if errors.is_empty() {
                    Ok(reloaded)
                } else {
                    Err(AssetErrors(errors))
                }
            }
            None => Ok(None),
        });
        self.note_scenario_changes(&reloader);
        match result {
            Ok(None) => {
                self.status().errors.clear();
                Ok(ReloadOutcome {
                    data_hash: reloader.data_hash().to_string(),
                    files: Vec::new(),
                })
            }
            Ok(Some(reloaded)) => {
                let outcome = ReloadOutcome {
                    data_hash: reloaded.data.data_hash.clone(),
                    files: reloaded.files.clone(),
                };
                info!(trigger, data_hash = %outcome.data_hash, files = ?outcome.files,
                    "designer data validated; the World applies it at its next intake tick");
                // The World drains these every intake tick: a full queue means a World that
                // is stuck or gone, and nothing waits here for it. Only data handed over
                // counts as in force, so the next reload tries again.
                if self.world.try_send(reloaded.clone()).is_err() {
                    warn!("the World is not taking reloaded data now");
                    return Err(ReloadError::Unavailable(
                        "the World is not taking reloaded data now; try again".into(),
                    ));
                }
                reloader.commit(&reloaded);
                let mut status = self.status();
                status.errors.clear();
                status.data_hash = outcome.data_hash.clone();
                status.applied += 1;
                Ok(outcome)
            }
            Err(errors) => {
                let errors: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
                let mut status = self.status();
                // An editor's save can come as several batches of events: the same refusal is
                // logged once.
                let known = status.errors.len() == errors.len().min(KEPT_ERRORS)
                    && status.errors.iter().zip(&errors).all(|(a, b)| a == b);
                if !known {
                    warn!(
                        trigger,
                        errors = errors.len(),
                        "designer data edit refused: the data in force stays; fix the files (or see /admin/status)"
                    );
                    for error in errors.iter().take(LOGGED_ERRORS) {
                        warn!(error = %error, "refused designer data");
                    }
                }
                status.errors = errors.iter().take(KEPT_ERRORS).cloned().collect();
                if errors.len() > KEPT_ERRORS {
                    status
                        .errors
                        .push(format!("... and {} more", errors.len() - KEPT_ERRORS));
                }
                status.refused += 1;
                Err(ReloadError::Invalid(errors))
            }
        }
    }

    /// What the world uses of the data's names, as last published. The World checks again
    /// when it applies the data, against its state at that tick.
    fn in_use(&self) -> InUse {
        let mut in_use = InUse::default();
        if let Some(models) = self.read.load_full() {
            for general in models.generals.values() {
                let card = general.position.as_ref().and_then(|p| {
                    PositionKind::new(&p.name)
                        .ok()
                        .map(|kind| (kind, p.city.is_some()))
                });
                in_use.note(general.nation.as_deref(), general.troop_type, card, None);
            }
        }
        in_use
    }

    pub(crate) fn reload_status(&self) -> ReloadStatus {
        self.status().clone()
    }
}

/// Operators' requests waiting for the World at most.
pub(crate) const ADMIN_QUEUE: usize = 16;
/// How long a request waits for the World to close the epoch that holds it.
const EPOCH_WAIT: Duration = Duration::from_secs(5);

/// What the admin routes do in the process that runs the World.
pub(crate) struct WorldAdmin {
    pub(crate) reloads: Arc<Reloads>,
    /// Operators' requests to the World.
    pub(crate) world: Sender<AdminRequest>,
    /// The lease epoch this process writes under (0: none), and the Redis lease's tenure.
    pub(crate) lease_epoch: u64,
    pub(crate) tenure: Option<net::redis::lease::Tenure>,
}

impl WorldAdmin {
    /// Sends a request built around its way back, and waits for the epoch's number.
    fn ask(&self, request: impl FnOnce(Sender<u64>) -> AdminRequest) -> Result<u64, String> {
        let (reply, epoch) = crossbeam_channel::bounded(1);
        self.world
            .try_send(request(reply))
            .map_err(|_| "the World is not taking requests now; try again".to_string())?;
        epoch
            .recv_timeout(EPOCH_WAIT)
            .map_err(|_| "the World did not close an epoch within 5 s".to_string())
    }
}

impl AdminOps for WorldAdmin {
    fn reload(&self, trigger: &str) -> Result<ReloadOutcome, ReloadError> {
        self.reloads.reload(trigger)
    }

    fn reload_status(&self) -> ReloadStatus {
        self.reloads.reload_status()
    }

    fn flush(&self) -> Result<u64, String> {
        self.ask(|reply| AdminRequest::Flush { reply })
    }

    fn maintenance(&self, message: Option<String>) -> Result<u64, String> {
        self.ask(|reply| AdminRequest::Maintenance { message, reply })
    }

    fn lease(&self) -> Option<LeaseReport> {
        if self.lease_epoch == 0 && self.tenure.is_none() {
            return None;
        }
        let token = self
            .tenure
            .as_ref()
            .map(|t| t.token.chars().take(8).collect::<String>());
        Some(LeaseReport {
            epoch: self.lease_epoch,
            key: self.tenure.as_ref().map(|t| t.key.clone()),
            holder: match token {
                Some(token) => format!("pid {} (token {token}…)", std::process::id()),
                None => format!("pid {}", std::process::id()),
            },
            fresh: self.tenure.as_ref().is_none_or(|t| t.fresh()),
        })
    }
}
