//! The World's thread (ARCHITECTURE.md, "Bird's-eye view"): it builds the World from the
//! recovered checkpoint (or the scenario), writes a full checkpoint first under a lease,
//! applies the commands logged after the checkpoint, owes the clock the downtime, then runs
//! the schedules at their fixed rates until asked to stop, when it applies what it was handed
//! and closes a final epoch (unless another writer has the world). The World never waits on
//! I/O: it talks to the rest only through channels and the read handle.

use std::{
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime},
};

use anyhow::Context;
use components::{
    command::{Command, Inbound},
    durable::PersistStatus,
    persist::Recovered,
    read_model::ReadHandle,
};
use systems::{
    app::{AppSettings, Origin, build_app_with},
    assets::GameData,
    driver::{Driver, MonotonicClock},
    persist::PersistSettings,
    spawn::WorldSettings,
};
use tokio::sync::oneshot;
use tracing::info;

use crate::config::ServeConfig;

/// The World's thread and the means to stop it.
pub(crate) struct WorldThread {
    stop: crossbeam_channel::Sender<()>,
    /// Set to stop without a final checkpoint (this process may no longer write the world).
    abandon: Arc<std::sync::atomic::AtomicBool>,
    handle: JoinHandle<()>,
}

/// Tells the server when the World's thread ends, however it ends.
struct ExitNotice(Option<oneshot::Sender<()>>);

impl Drop for ExitNotice {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// What the World thread starts from.
pub(crate) struct Start {
    pub(crate) data: Arc<GameData>,
    pub(crate) recovered: Option<Recovered>,
    /// Logged commands after the recovered position, to apply again first.
    pub(crate) replay: Vec<Command>,
    pub(crate) persist: PersistSettings,
    /// With a lease: the first checkpoint, full, must be written (as this status shows)
    /// before any command is applied (docs/redis.md#fencing).
    pub(crate) checkpoint_first: Option<Arc<PersistStatus>>,
    /// Designer data reloaded while the World runs.
    pub(crate) reloads: crossbeam_channel::Receiver<systems::assets::Reloaded>,
    /// What the operator asks of the World (`/admin/flush`, `/admin/maintenance`).
    pub(crate) admin: crossbeam_channel::Receiver<systems::admin::AdminRequest>,
}

/// How long the first checkpoint of a lease holder may take.
const FIRST_CHECKPOINT_WAIT: Duration = Duration::from_secs(60);

/// Closes a full epoch at once and waits until the store has it.
fn write_first_checkpoint(
    world: &mut bevy_ecs::world::World,
    status: &PersistStatus,
) -> Result<(), String> {
    let epoch = systems::persist::close_epoch(world);
    let deadline = Instant::now() + FIRST_CHECKPOINT_WAIT;
    loop {
        let report = status.report();
        if report.durable_epoch >= epoch {
            info!(epoch, "full checkpoint written under this lease epoch");
            return Ok(());
        }
        if status.fenced() {
            return Err(report
                .error
                .unwrap_or_else(|| "fenced out by a newer writer".into()));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the first checkpoint was not written within {} s: {}",
                FIRST_CHECKPOINT_WAIT.as_secs(),
                report.error.unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl WorldThread {
    /// Builds the World on its own thread (from the checkpoint, or the scenario), applies
    /// the logged commands after it, then runs it; returns once it runs, or why it could not.
    pub(crate) fn start(
        start: Start,
        config: &ServeConfig,
        read: ReadHandle,
        inbox: crossbeam_channel::Receiver<Inbound>,
        exited: oneshot::Sender<()>,
    ) -> anyhow::Result<WorldThread> {
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let abandon = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let abandoned = abandon.clone();
        let (ready_tx, ready_rx) = crossbeam_channel::bounded::<Result<(), String>>(1);
        let mut settings = AppSettings::new(WorldSettings {
            name: config.world.clone(),
            speed: config.rates.speed,
        });
        settings.event_window = config.event_window;
        settings.battles_kept = config.battles_kept;
        settings.battle_threads = config.battle_threads;
        settings.sandbox = config.sandbox;
        settings.reloads = Some(start.reloads.clone());
        settings.admin = Some(start.admin.clone());
        let rates = config.rates.clone();
        let handle = std::thread::Builder::new()
            .name("world".into())
            .spawn(move || {
                let _notice = ExitNotice(Some(exited));
                let Start {
                    data,
                    recovered,
                    replay,
                    persist,
                    checkpoint_first,
                    reloads: _,
                    admin: _,
                } = start;
                // When the checkpoint was written: the clock owes the time since.
                let checkpointed_at = recovered.as_ref().map(|r| r.checkpoint.updated_at);
                let origin = match recovered {
                    Some(recovered) => Origin::Checkpoint(Box::new(recovered)),
                    None => Origin::Scenario,
                };
                let mut app =
                    match build_app_with(data, &settings, read, Some(inbox), origin, Some(persist))
                    {
                        Ok(app) => app,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                let world = app.world_mut();
                if let Some(status) = checkpoint_first
                    && let Err(e) = write_first_checkpoint(world, &status)
                {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                if !replay.is_empty() {
                    info!(
                        commands = replay.len(),
                        "applying the logged commands after the checkpoint"
                    );
                    systems::persist::replay(world, replay);
                }
                // The world went on while the server was down: the clock owes the downtime,
                // at a sandbox's own speed, and nothing while its clock is stopped (as the
                // commands just replayed left it).
                let owed = checkpointed_at.map_or(0, |at| {
                    let sandbox = world
                        .get_resource::<components::world::Sandbox>()
                        .copied()
                        .unwrap_or_default();
                    if sandbox.paused {
                        return 0;
                    }
                    let speed_milli =
                        systems::driver::speed_milli(sandbox.speed.unwrap_or(rates.speed));
                    let down_ms = components::time::unix_ms(SystemTime::now()).saturating_sub(at);
                    (u128::from(down_ms) * speed_milli / 1_000_000) as i64
                });
                let mut driver = Driver::new(MonotonicClock::new(), &rates).owing(owed);
                if owed > 0 {
                    info!(
                        game_seconds = owed,
                        "catching up on the time the server was down"
                    );
                }
                let _ = ready_tx.send(Ok(()));
                info!(
                    speed = rates.speed,
                    sandbox = settings.sandbox,
                    intake_hz = rates.intake_hz,
                    strategy_hz = rates.strategy_hz,
                    "world running"
                );
                driver.run(world, &stop_rx);
                if abandoned.load(std::sync::atomic::Ordering::SeqCst) {
                    info!("world stopped without a final checkpoint: another writer has the world");
                    return;
                }
                // The journal has stopped: what it handed over is applied before the final
                // checkpoint, so a graceful restart replays nothing.
                systems::rules::intake::drain_inbox(world);
                world.run_schedule(systems::schedule::Publish);
                let epoch = systems::persist::close_epoch(world);
                info!(epoch, "world stopped; final checkpoint handed to the store");
            })
            .context("cannot start the world thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(WorldThread {
                stop,
                abandon,
                handle,
            }),
            Ok(Err(e)) => {
                let _ = handle.join();
                Err(anyhow::anyhow!("the world cannot be recovered: {e}"))
            }
            Err(_) => {
                let _ = handle.join();
                Err(anyhow::anyhow!("the world thread stopped while starting"))
            }
        }
    }

    /// Asks the World to stop after its current pass and waits for it; with `checkpoint`,
    /// it applies what it was handed and closes a final epoch first.
    pub(crate) fn stop(self, checkpoint: bool) -> anyhow::Result<()> {
        self.abandon
            .store(!checkpoint, std::sync::atomic::Ordering::SeqCst);
        let _ = self.stop.send(());
        self.handle
            .join()
            .map_err(|_| anyhow::anyhow!("the world thread panicked"))
    }
}
