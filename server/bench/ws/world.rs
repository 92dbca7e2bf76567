//! The World of `bench ws`: the `tiny` scenario at the server's rates on a thread of its own,
//! a battle under way at Hill Fort, and commands sent at a steady rate (each a `TRAIN` of a
//! general nobody has, rejected with a `CommandRejected` event: the event load). Around each
//! pass of the driver it notes how long the pass took and when the events it published became
//! visible (wall-clock microseconds, which the clients' process reads too).

use std::{
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use components::{
    command::{Command, CommandBody, Inbound, Issuer},
    read_model::ReadHandle,
};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use systems::{
    app::{AppSettings, Origin, build_app_with},
    assets::GameData,
    battle::{self, BattleRequest},
    driver::{Driver, MonotonicClock, RealClock, TickRates},
    spawn::WorldSettings,
};

/// The scenario whose generals fight the battle.
pub(super) const SCENARIO: &str = "tiny";
/// Players the commands come from, in turn (each player's order window is bounded).
const PLAYERS: u64 = 64;

/// Microseconds since the Unix epoch: a clock both processes of the bench read.
pub(super) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Events `first..=last` became visible in the published read models at `at` (µs).
pub(super) type Published = (u64, u64, u64);

/// What the World thread notes, taken by the bench phase by phase.
#[derive(Default)]
struct Notes {
    /// Duration of each pass that ran a schedule, ms.
    passes: Vec<f64>,
    published: Vec<Published>,
}

/// The running World.
pub(super) struct BenchWorld {
    pub(super) read: ReadHandle,
    pub(super) battle: String,
    notes: Arc<Mutex<Notes>>,
    stop: Sender<()>,
    thread: Option<JoinHandle<()>>,
}

impl BenchWorld {
    /// Builds the World, starts its battle and runs it, sending `rate` commands a second.
    pub(super) fn start(data: Arc<GameData>, rate: u32) -> anyhow::Result<BenchWorld> {
        let read = ReadHandle::default();
        let notes = Arc::new(Mutex::new(Notes::default()));
        let (stop, stop_rx) = crossbeam_channel::bounded(1);
        let (started_tx, started_rx) = crossbeam_channel::bounded(1);
        let thread = {
            let (read, notes) = (read.clone(), notes.clone());
            std::thread::Builder::new()
                .name("world".into())
                .spawn(move || {
                    let started = Running::build(data, read.clone());
                    let running = match started {
                        Ok((running, battle)) => {
                            let _ = started_tx.send(Ok(battle));
                            running
                        }
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    running.run(&read, &notes, rate, &stop_rx);
                })
                .context("cannot start the world thread")?
        };
        let battle = match started_rx.recv() {
            Ok(started) => started?,
            Err(_) => anyhow::bail!("the world thread stopped while starting"),
        };
        Ok(BenchWorld {
            read,
            battle,
            notes,
            stop,
            thread: Some(thread),
        })
    }

    /// The pass durations (ms) and publications noted since the last call.
    pub(super) fn take(&self) -> (Vec<f64>, Vec<Published>) {
        let mut notes = self.notes.lock().unwrap_or_else(|e| e.into_inner());
        let notes = std::mem::take(&mut *notes);
        (notes.passes, notes.published)
    }

    /// Whether the battle is still being fought.
    pub(super) fn battle_on(&self) -> bool {
        self.read.load().as_ref().is_some_and(|m| {
            m.battles
                .get(self.battle.as_str())
                .is_some_and(|b| b.status != components::battle::BattleStatus::Finished)
        })
    }

    /// Runs for `duration`; returns what it noted meanwhile (what it noted before is let go).
    pub(super) fn run_for(&self, duration: Duration) -> (Vec<f64>, Vec<Published>) {
        self.take();
        std::thread::sleep(duration);
        self.take()
    }
}

/// The World on its thread.
struct Running {
    app: bevy_app::App,
    driver: Driver<MonotonicClock>,
    clock: MonotonicClock,
    train: CommandBody,
    bus: Sender<Inbound>,
}

impl Running {
    /// Builds the World and starts its battle; returns the battle's id.
    fn build(data: Arc<GameData>, read: ReadHandle) -> anyhow::Result<(Running, String)> {
        let (bus, bus_rx) = crossbeam_channel::bounded(100_000);
        let settings = AppSettings::new(WorldSettings {
            name: format!("bench-ws-{}", std::process::id()),
            speed: 24.0,
        });
        let mut app = build_app_with(data, &settings, read, Some(bus_rx), Origin::Scenario, None)
            .map_err(|e| anyhow::anyhow!("the World cannot be built: {e}"))?;
        let clock = MonotonicClock::new();
        let mut driver = Driver::new(clock.clone(), &TickRates::default());
        driver.pump(app.world_mut());
        let battle = battle::spawn_battle(
            app.world_mut(),
            &BattleRequest {
                city: "hill_fort".into(),
                attackers: vec!["xi_jiang".into(), "xi_gong".into()],
                defenders: vec!["bei_jiang".into()],
                garrison: true,
            },
        )
        .map_err(|e| anyhow::anyhow!("the bench battle cannot start: {e}"))?;
        let train = CommandBody::parse("TRAIN", None)
            .map_err(|e| anyhow::anyhow!("the bench's TRAIN does not parse: {e}"))?;
        Ok((
            Running {
                app,
                driver,
                clock,
                train,
                bus,
            },
            battle,
        ))
    }

    /// Runs passes as the driver does, sending `rate` commands a second, until `stop`.
    fn run(mut self, read: &ReadHandle, notes: &Mutex<Notes>, rate: u32, stop: &Receiver<()>) {
        let world = self.app.world_mut();
        let started = Instant::now();
        let mut sent = 0u64;
        let newest = || {
            read.load()
                .as_ref()
                .and_then(|m| m.events.last().map(|e| e.seq))
        };
        let mut seen = newest();
        loop {
            let due = (started.elapsed().as_secs_f64() * f64::from(rate)) as u64;
            while sent < due {
                let _ = self
                    .bus
                    .try_send(Inbound::Command(rejected(&self.train, sent)));
                sent += 1;
            }
            let began = Instant::now();
            let pass = self.driver.pump(world);
            let took = began.elapsed();
            if pass.intake_ticks + pass.strategy_ticks + pass.battle_ticks > 0 {
                let at = unix_micros();
                let newest = newest();
                let mut notes = notes.lock().unwrap_or_else(|e| e.into_inner());
                notes.passes.push(took.as_secs_f64() * 1e3);
                if let Some(newest) = newest
                    && seen.is_none_or(|s| newest > s)
                {
                    notes
                        .published
                        .push((seen.map_or(0, |s| s + 1), newest, at));
                    seen = Some(newest);
                }
            }
            let wait = pass.next_due.saturating_sub(self.clock.now());
            if !matches!(stop.recv_timeout(wait), Err(RecvTimeoutError::Timeout)) {
                return;
            }
        }
    }
}

impl Drop for BenchWorld {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The `n`th command: `body` for a general that does not exist, rejected with an event.
fn rejected(body: &CommandBody, n: u64) -> Command {
    Command {
        id: format!("bench-{n}"),
        issuer: Issuer::Player(format!("bench-{}", n % PLAYERS)),
        general: Some("g-nobody".into()),
        body: body.clone(),
        log_seq: n + 1,
        entry: None,
    }
}
