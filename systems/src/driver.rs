//! The driver: runs the World's schedules at their fixed rates from the server's own
//! measurement of real time (docs/rules.md#speed-and-catch-up), not from an engine clock that
//! drops large deltas.
//!
//! Real time owes the game clock `speed` game seconds per real second, counted exactly in
//! integers from the driver's start (speed to a thousandth), so no rounding accumulates. Each
//! strategy tick pays at most one tick's worth of that debt, so after a stall the world catches
//! up in bounded steps, tick after tick, as fast as the CPU allows, with intake ticks and
//! publishes interleaved. Tick durations and overruns are measured and counted; a pass never
//! sleeps — [`Driver::run`] waits between passes, and wakes at once on shutdown. A sandbox
//! world's clock (docs/sandbox.md) may be stopped or set to another speed by a command: the
//! driver follows it after each intake tick, owing game time afresh from then.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bevy_ecs::{schedule::ScheduleLabel, world::World};
use components::{time::GameClock, world::Sandbox};
use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};
use metrics::{counter, gauge, histogram};
use tracing::{info, warn};

use crate::{
    battle::{self, BattlePace},
    schedule::{BattleTick, ClockStep, Intake, Publish, Strategy},
};

/// Runs one strategy tick of `step` game seconds, then steps battles up to the new clock with
/// no time budget: for headless runs (`simulate`, tests) that follow no real time and wait for
/// nothing.
pub fn run_headless_tick(world: &mut World, step: i64) {
    world.insert_resource(ClockStep(step));
    world.run_schedule(Strategy);
    world.insert_resource(BattlePace {
        catch_up: true,
        share: 1.0,
        budget: Duration::MAX,
    });
    world.run_schedule(BattleTick);
}

/// A speed (game seconds per real second) in game milliseconds per real second, as the
/// driver and the downtime count it.
pub fn speed_milli(speed: f64) -> u128 {
    (speed * 1_000.0).round().max(1.0) as u128
}

/// A source of monotonic real time.
pub trait RealClock: Send + 'static {
    /// Time since an arbitrary fixed origin.
    fn now(&self) -> Duration;
}

/// The machine's monotonic clock.
#[derive(Clone, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl MonotonicClock {
    pub fn new() -> Self {
        MonotonicClock {
            origin: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl RealClock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to, for tests and headless runs. Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: Duration) {
        self.nanos.fetch_add(by.as_nanos() as u64, Ordering::SeqCst);
    }
}

impl RealClock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_nanos(self.nanos.load(Ordering::SeqCst))
    }
}

/// Rates of the schedules and the game speed (docs/operations.md#configuration-keys).
#[derive(Clone, Debug, PartialEq)]
pub struct TickRates {
    pub intake_hz: f64,
    pub strategy_hz: f64,
    pub battle_hz: f64,
    /// Game seconds per real second.
    pub speed: f64,
    /// Strategy ticks run back to back in one pass while catching up, before intake and
    /// publishing get their turn.
    pub max_catchup_ticks: u32,
}

impl Default for TickRates {
    fn default() -> Self {
        TickRates {
            intake_hz: 20.0,
            strategy_hz: 1.0,
            battle_hz: 60.0,
            speed: 24.0,
            max_catchup_ticks: 64,
        }
    }
}

/// What one pass of the driver did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Pass {
    pub intake_ticks: u32,
    pub strategy_ticks: u32,
    pub battle_ticks: u32,
    /// Whether strategy ticks that were due waited for battles to catch up.
    pub waited_for_battles: bool,
    /// Real time at which the next tick is due; at or before now while catching up.
    pub next_due: Duration,
    /// How far the strategy schedule is behind its due time.
    pub lag: Duration,
    /// Schedule runs of this pass that took longer than their budget.
    pub overruns: u32,
}

/// How often the catch-up of a downtime is reported.
const DEBT_REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// How long after logging an overrun of a schedule the next one is only counted.
const OVERRUN_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Real time over which the effective speed is measured.
const SPEED_WINDOW: Duration = Duration::from_secs(10);
/// Closest spacing of the samples the effective speed is measured from.
const SAMPLE_SPACING: Duration = Duration::from_millis(100);

#[derive(Clone, Copy)]
enum Kind {
    Intake = 0,
    Strategy = 1,
    Battle = 2,
    Publish = 3,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Intake, Kind::Strategy, Kind::Battle, Kind::Publish];

    fn name(self) -> &'static str {
        match self {
            Kind::Intake => "intake",
            Kind::Strategy => "strategy",
            Kind::Battle => "battle",
            Kind::Publish => "publish",
        }
    }
}

pub struct Driver<C: RealClock> {
    clock: C,
    /// Game milliseconds per real second.
    speed_milli: u128,
    /// The configured speed, in game milliseconds per real second.
    configured_milli: u128,
    strategy_hz: f64,
    /// A sandbox stopped the clock: no strategy tick runs (docs/sandbox.md).
    paused: bool,
    /// Real time at which the driver started; game time is owed from then.
    origin: Duration,
    /// Game seconds strategy ticks have applied since the driver started, for real time.
    given: i64,
    /// Game seconds owed from before the driver started, still to pay.
    debt: i64,
    /// When the catch-up of the debt was last reported.
    debt_reported: Option<Instant>,
    intake_period: Duration,
    strategy_period: Duration,
    battle_period: Duration,
    /// Largest clock step of one strategy tick, in game seconds.
    max_step: i64,
    max_catchup_ticks: u32,
    next_intake: Duration,
    next_strategy: Duration,
    next_battle: Duration,
    /// (real time, game seconds) after recent strategy ticks, for the effective speed.
    samples: VecDeque<(Duration, i64)>,
    /// When each schedule's overrun was last logged.
    last_overrun_log: [Option<Instant>; 4],
}

impl<C: RealClock> Driver<C> {
    /// A driver whose first intake tick is due now and first strategy tick one period later.
    pub fn new(clock: C, rates: &TickRates) -> Self {
        let now = clock.now();
        let intake_period = Duration::from_secs_f64(1.0 / rates.intake_hz);
        let strategy_period = Duration::from_secs_f64(1.0 / rates.strategy_hz);
        let battle_period = Duration::from_secs_f64(1.0 / rates.battle_hz);
        for kind in Kind::ALL {
            counter!("tianxia_tick_overruns_total", "schedule" => kind.name()).increment(0);
        }
        gauge!("tianxia_game_clock_lag_seconds").set(0.0);
        let speed_milli = speed_milli(rates.speed);
        Driver {
            clock,
            speed_milli,
            configured_milli: speed_milli,
            strategy_hz: rates.strategy_hz,
            paused: false,
            origin: now,
            given: 0,
            debt: 0,
            debt_reported: None,
            intake_period,
            strategy_period,
            battle_period,
            max_step: ((rates.speed / rates.strategy_hz).ceil() as i64).max(1),
            max_catchup_ticks: rates.max_catchup_ticks.max(1),
            next_intake: now,
            next_strategy: now + strategy_period,
            next_battle: now,
            samples: VecDeque::new(),
            last_overrun_log: [None; 4],
        }
    }

    /// A driver that also owes the game clock `game_seconds` from before its start (the
    /// downtime of a recovered world), paid in extra ticks of at most one tick's step,
    /// as fast as the CPU allows, like any other catch-up.
    pub fn owing(mut self, game_seconds: i64) -> Self {
        self.debt = game_seconds.max(0);
        // The caller announces the debt; progress follows every few seconds, and the end.
        self.debt_reported = (self.debt > 0).then(Instant::now);
        self
    }

    /// The largest number of game seconds one strategy tick advances the clock by.
    pub fn max_step(&self) -> i64 {
        self.max_step
    }

    /// Game seconds real time owes the clock at `now`, counted from the origin.
    fn due_at(&self, now: Duration) -> i64 {
        (now.saturating_sub(self.origin).as_nanos() * self.speed_milli / 1_000_000_000_000) as i64
    }

    /// Follows a sandbox's clock (docs/sandbox.md): stopped, or at the speed its CLOCK set.
    /// Game time is then owed afresh from now at the new pace: the clock stops at its last
    /// tick, and goes on one strategy period after it starts again or changes speed, without
    /// a jump.
    fn follow_sandbox(&mut self, world: &mut World, now: Duration) {
        let Some(sandbox) = world.get_resource::<Sandbox>() else {
            return;
        };
        let paused = sandbox.paused;
        let speed_milli = sandbox.speed.map_or(self.configured_milli, speed_milli);
        if paused == self.paused && speed_milli == self.speed_milli {
            return;
        }
        self.origin = now;
        self.given = 0;
        self.paused = paused;
        self.speed_milli = speed_milli;
        let speed = speed_milli as f64 / 1_000.0;
        self.max_step = ((speed / self.strategy_hz).ceil() as i64).max(1);
        self.next_strategy = now + self.strategy_period;
        self.samples.clear();
        if paused {
            let mut clock = world.resource_mut::<GameClock>();
            clock.effective_speed = 0.0;
            clock.lag_seconds = 0.0;
            if self.debt > 0 {
                // Time stopped is never made up, downtime still owed included.
                info!(
                    game_seconds = self.debt,
                    "the sandbox stopped the clock: the downtime still owed is forgotten"
                );
                self.debt = 0;
                self.debt_reported = None;
            }
        }
        info!(paused, speed, "the sandbox set the game clock");
    }

    /// Runs the ticks due now: one intake tick if due, strategy ticks up to the catch-up
    /// bound, then publishes if anything ran.
    pub fn pump(&mut self, world: &mut World) -> Pass {
        let now = self.clock.now();
        let mut pass = Pass::default();

        if now >= self.next_intake {
            pass.overruns += self.run_timed(world, Intake, Kind::Intake, self.intake_period);
            pass.intake_ticks = 1;
            self.next_intake += self.intake_period;
            if self.next_intake <= now {
                // Missed intake ticks are not made up: intake has no game time of its own.
                self.next_intake = now + self.intake_period;
            }
        }
        // A sandbox CLOCK applied by that intake counts from this pass.
        self.follow_sandbox(world, now);
        if self.paused {
            // Stopped: nothing is due, and nothing is behind.
            self.next_strategy = now + self.strategy_period;
        }
        let due = self.due_at(now);
        // Battles may fall behind the clock by two strategy ticks at most; beyond that the
        // clock waits for them (docs/rules.md#speed-and-catch-up).
        let battle_slack_ms = 2 * self.max_step as u64 * 1_000;
        while !self.paused && pass.strategy_ticks < self.max_catchup_ticks {
            // A tick is due on schedule, or the clock owes more than a tick's worth from
            // before the driver started (a recovered world's downtime).
            let on_time = now >= self.next_strategy;
            if !on_time && self.debt == 0 {
                break;
            }
            if battle::backlog_ms(world) > battle_slack_ms {
                pass.waited_for_battles = true;
                break;
            }
            let step = if on_time {
                let step = (due - self.given).clamp(0, self.max_step);
                self.given += step;
                step
            } else {
                let step = self.debt.min(self.max_step);
                self.debt -= step;
                step
            };
            world.insert_resource(ClockStep(step));
            pass.overruns += self.run_timed(world, Strategy, Kind::Strategy, self.strategy_period);
            if on_time {
                self.next_strategy += self.strategy_period;
            }
            pass.strategy_ticks += 1;
        }
        if now >= self.next_battle || pass.waited_for_battles {
            world.insert_resource(BattlePace {
                catch_up: pass.waited_for_battles,
                share: self.battle_period.as_secs_f64() / self.strategy_period.as_secs_f64(),
                budget: self.battle_period,
            });
            pass.overruns += self.run_timed(world, BattleTick, Kind::Battle, self.battle_period);
            pass.battle_ticks = 1;
            self.next_battle += self.battle_period;
            if self.next_battle <= now {
                self.next_battle = now + self.battle_period;
            }
        }
        if pass.strategy_ticks > 0 {
            self.measure_speed(world, now);
        }
        if pass.intake_ticks + pass.strategy_ticks + pass.battle_ticks > 0 {
            pass.overruns += self.run_timed(world, Publish, Kind::Publish, self.intake_period);
        }

        // Behind schedule, plus the downtime still owed, in real time.
        let debt_ms = (self.debt.max(0) as u128 * 1_000_000 / self.speed_milli) as u64;
        pass.lag = now.saturating_sub(self.next_strategy) + Duration::from_millis(debt_ms);
        gauge!("tianxia_game_clock_lag_seconds").set(pass.lag.as_secs_f64());
        world.resource_mut::<GameClock>().lag_seconds = pass.lag.as_secs_f64();
        pass.next_due = self
            .next_intake
            .min(self.next_strategy)
            .min(self.next_battle);
        self.report_debt();
        if self.debt > 0 && !pass.waited_for_battles {
            // Still owing downtime: the next pass is due at once.
            pass.next_due = now;
        }
        pass
    }

    /// Logs the catch-up of a downtime debt: at most every few seconds while it lasts, and
    /// once when it is paid.
    fn report_debt(&mut self) {
        match (self.debt, self.debt_reported) {
            (0, Some(_)) => {
                self.debt_reported = None;
                info!("caught up on the downtime");
            }
            (0, None) => {}
            (owed, last) if last.is_none_or(|t| t.elapsed() >= DEBT_REPORT_INTERVAL) => {
                self.debt_reported = Some(Instant::now());
                info!(game_seconds = owed, "catching up on the downtime");
            }
            _ => {}
        }
    }

    /// Runs passes until `shutdown` receives or disconnects, waiting between them.
    pub fn run(&mut self, world: &mut World, shutdown: &Receiver<()>) {
        loop {
            let pass = self.pump(world);
            let wait = pass.next_due.saturating_sub(self.clock.now());
            let stop = if wait.is_zero() {
                !matches!(shutdown.try_recv(), Err(TryRecvError::Empty))
            } else {
                !matches!(shutdown.recv_timeout(wait), Err(RecvTimeoutError::Timeout))
            };
            if stop {
                return;
            }
        }
    }

    /// Runs one schedule; returns 1 if it overran its budget, else 0.
    fn run_timed(
        &mut self,
        world: &mut World,
        label: impl ScheduleLabel,
        kind: Kind,
        budget: Duration,
    ) -> u32 {
        let started = Instant::now();
        world.run_schedule(label);
        let took = started.elapsed();
        histogram!("tianxia_tick_duration_seconds", "schedule" => kind.name())
            .record(took.as_secs_f64());
        if took <= budget {
            return 0;
        }
        counter!("tianxia_tick_overruns_total", "schedule" => kind.name()).increment(1);
        let last = &mut self.last_overrun_log[kind as usize];
        if last.is_none_or(|t| t.elapsed() >= OVERRUN_LOG_INTERVAL) {
            *last = Some(Instant::now());
            warn!(
                schedule = kind.name(),
                took_ms = took.as_secs_f64() * 1e3,
                budget_ms = budget.as_secs_f64() * 1e3,
                "tick overran its budget (further overruns of this schedule are counted, logged at most every 10 s)"
            );
        }
        1
    }

    fn measure_speed(&mut self, world: &mut World, now: Duration) {
        let mut clock = world.resource_mut::<GameClock>();
        // Samples stay at least SAMPLE_SPACING apart (the newest excepted), so passes run back
        // to back while catching up do not pile them up.
        let sample = (now, clock.game_seconds);
        let len = self.samples.len();
        if len >= 2 && now.saturating_sub(self.samples[len - 2].0) < SAMPLE_SPACING {
            self.samples[len - 1] = sample;
        } else {
            self.samples.push_back(sample);
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > SPEED_WINDOW)
        {
            self.samples.pop_front();
        }
        if let (Some((t0, g0)), Some((t1, g1))) = (self.samples.front(), self.samples.back()) {
            let real = t1.saturating_sub(*t0).as_secs_f64();
            if real > 0.0 {
                clock.effective_speed = (g1 - g0) as f64 / real;
            }
        }
    }
}
