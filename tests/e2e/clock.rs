//! The World's schedules driven pass by pass with a manual clock: strategy ticks follow real
//! time at the configured rate and speed, the calendar turns, and after a stall the clock
//! catches up in bounded steps with intake and publishing interleaved.

use std::{sync::Arc, time::Duration};

use bevy_app::App;
use bevy_ecs::schedule::IntoScheduleConfigs;
use components::{
    read_model::{ReadHandle, ReadModels},
    time::{GameClock, GameDate, SECONDS_PER_DAY, SECONDS_PER_MONTH},
};
use systems::{
    app::{AppSettings, build_app},
    driver::{Driver, ManualClock, TickRates},
    spawn::WorldSettings,
};

use crate::support::assets;

const START: GameDate = GameDate {
    year: 200,
    month: 1,
    day: 1,
    hour: 0,
};

pub struct Harness {
    pub app: App,
    pub clock: ManualClock,
    pub driver: Driver<ManualClock>,
    pub read: ReadHandle,
}

impl Harness {
    pub fn new(rates: TickRates) -> Harness {
        Self::with(rates, false)
    }

    /// A harness whose world is a sandbox or not.
    pub fn with(rates: TickRates, sandbox: bool) -> Harness {
        let data = Arc::new(systems::assets::load(&assets(), "tiny").unwrap());
        let read = ReadHandle::default();
        let mut settings = AppSettings::new(WorldSettings {
            name: "clock-test".into(),
            speed: rates.speed,
        });
        settings.event_window = 1_000;
        // These tests are about time and battles: no AI acts on its own.
        settings.ai = false;
        settings.sandbox = sandbox;
        let app = build_app(data, &settings, read.clone(), None);
        let clock = ManualClock::new();
        let driver = Driver::new(clock.clone(), &rates);
        Harness {
            app,
            clock,
            driver,
            read,
        }
    }

    pub fn game_seconds(&self) -> i64 {
        self.app.world().resource::<GameClock>().game_seconds
    }

    pub fn published(&self) -> Arc<ReadModels> {
        self.read.load_full().expect("read models published")
    }

    /// Advances real time in `step`s until `total` has passed, pumping after each.
    pub fn run_for(&mut self, total: Duration, step: Duration) {
        let mut passed = Duration::ZERO;
        while passed < total {
            self.clock.advance(step);
            passed += step;
            self.driver.pump(self.app.world_mut());
        }
    }
}

#[test]
fn strategy_ticks_follow_real_time_and_turn_the_calendar() {
    let mut h = Harness::new(TickRates {
        speed: 24.0,
        ..TickRates::default()
    });
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!((pass.intake_ticks, pass.strategy_ticks), (1, 0));
    let first = h.published();
    assert_eq!(first.world.game_seconds, 0);
    assert_eq!(first.world.game_date, START);
    assert_eq!(first.world.world, "clock-test");
    assert_eq!(first.events[0].kind.name(), "WorldCreated");

    // Within the first real second only intake runs; at one second, one strategy tick of 24
    // game seconds.
    h.clock.advance(Duration::from_millis(999));
    assert_eq!(h.driver.pump(h.app.world_mut()).strategy_ticks, 0);
    h.clock.advance(Duration::from_millis(1));
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!(pass.strategy_ticks, 1);
    assert_eq!(h.game_seconds(), 24);
    assert_eq!(h.published().world.tick, 1);
    assert_eq!(h.published().world.game_seconds, 24);

    // 149 more real seconds in 50 ms steps: 150 game-clock ticks in all, 3,600 game seconds.
    h.run_for(Duration::from_secs(149), Duration::from_millis(50));
    assert_eq!(h.game_seconds(), 3_600);
    let world = h.published().world.clone();
    assert_eq!(world.tick, 150);
    assert_eq!(world.game_date, GameDate { hour: 1, ..START });
    assert!(
        (world.effective_speed - 24.0).abs() < 0.5,
        "effective speed {}",
        world.effective_speed
    );
}

#[test]
fn after_a_stall_the_clock_catches_up_in_bounded_steps() {
    let rates = TickRates {
        speed: 2_400.0,
        max_catchup_ticks: 64,
        ..TickRates::default()
    };
    let mut h = Harness::new(rates);
    h.driver.pump(h.app.world_mut());
    let max_step = h.driver.max_step();
    assert_eq!(max_step, 2_400);

    // The process stalls for 18 real minutes: 1,080 strategy ticks are owed, 30 game days.
    h.clock.advance(Duration::from_secs(1_080));
    let mut passes = 0;
    let mut last_lag = Duration::MAX;
    loop {
        let before = h.game_seconds();
        let pass = h.driver.pump(h.app.world_mut());
        passes += 1;
        assert!(pass.strategy_ticks <= 64, "{pass:?}");
        let advanced = h.game_seconds() - before;
        assert!(
            advanced <= i64::from(pass.strategy_ticks) * max_step,
            "{advanced} in {pass:?}"
        );
        assert!(pass.lag <= last_lag, "lag grew: {pass:?}");
        last_lag = pass.lag;
        // Every pass publishes, so clients see the catch-up progress.
        assert_eq!(h.published().world.game_seconds, h.game_seconds());
        if pass.next_due > Duration::from_secs(1_080) {
            assert_eq!(pass.lag, Duration::ZERO);
            break;
        }
        assert!(passes < 100, "still catching up after {passes} passes");
    }
    assert_eq!(passes, 1_080_usize.div_ceil(64));
    assert_eq!(h.game_seconds(), 30 * SECONDS_PER_DAY);
    assert_eq!(h.game_seconds(), SECONDS_PER_MONTH);

    let models = h.published();
    assert_eq!(models.world.game_date, GameDate { month: 2, ..START });
    let month = models
        .events
        .iter()
        .find(|e| e.kind.name() == "MonthBegan")
        .expect("MonthBegan");
    // Before it: the world's creation and the days of the first month.
    assert_eq!(month.seq, 2 + 29);
    assert_eq!(month.game_time, SECONDS_PER_MONTH);
    assert_eq!(month.aggregate, "world:clock-test");
    assert_eq!(
        serde_json::to_value(&**month).unwrap()["payload"],
        serde_json::json!({"year": 200, "month": 2})
    );

    // Back on schedule: one tick per real second again.
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.driver.pump(h.app.world_mut()).strategy_ticks, 1);
    assert_eq!(h.game_seconds(), SECONDS_PER_MONTH + 2_400);
}

#[test]
fn a_world_owed_its_downtime_catches_up_without_real_time_passing() {
    let rates = TickRates {
        speed: 2_400.0,
        max_catchup_ticks: 64,
        ..TickRates::default()
    };
    let mut h = Harness::new(rates.clone());
    // A recovered world was down for 100 real seconds: 100 ticks' worth of game time.
    h.driver = Driver::new(h.clock.clone(), &rates).owing(100 * 2_400);
    let mut passes = 0;
    loop {
        let pass = h.driver.pump(h.app.world_mut());
        passes += 1;
        assert!(pass.strategy_ticks <= 64, "{pass:?}");
        if pass.next_due > Duration::ZERO {
            assert_eq!(pass.lag, Duration::ZERO);
            break;
        }
        // The lag reported is the downtime still owed.
        assert_eq!(pass.lag, Duration::from_secs(100 - 64), "{pass:?}");
        assert!(
            passes < 10,
            "still catching up after {passes} passes: {pass:?}"
        );
    }
    // No real time passed: the debt alone was paid, in bounded steps, then it waits.
    assert_eq!(h.game_seconds(), 100 * 2_400);
    assert_eq!(passes, 2);
    // What the world summary said while it caught up: the lag of the pass before.
    assert_eq!(h.published().world.clock_lag_seconds, 36.0);
    assert_eq!(h.driver.pump(h.app.world_mut()).strategy_ticks, 0);
    // Then on schedule.
    h.clock.advance(Duration::from_secs(1));
    assert_eq!(h.driver.pump(h.app.world_mut()).strategy_ticks, 1);
    assert_eq!(h.game_seconds(), 101 * 2_400);
    assert_eq!(h.published().world.clock_lag_seconds, 0.0);
}

#[test]
fn rates_and_speed_come_from_configuration() {
    // Four strategy ticks per real second at speed 24: six game seconds per tick.
    let mut h = Harness::new(TickRates {
        speed: 24.0,
        strategy_hz: 4.0,
        ..TickRates::default()
    });
    h.clock.advance(Duration::from_millis(250));
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!((pass.strategy_ticks, h.game_seconds()), (1, 6));
    h.run_for(Duration::from_millis(750), Duration::from_millis(250));
    assert_eq!(h.game_seconds(), 24);

    // A fractional speed loses nothing over time: 2.5 game seconds per real second.
    let mut h = Harness::new(TickRates {
        speed: 2.5,
        ..TickRates::default()
    });
    h.run_for(Duration::from_secs(100), Duration::from_millis(500));
    assert_eq!(h.game_seconds(), 250);

    // Intake runs at its own rate, without making up missed ticks.
    let mut h = Harness::new(TickRates {
        intake_hz: 10.0,
        ..TickRates::default()
    });
    let mut intake = 0;
    for _ in 0..10 {
        h.clock.advance(Duration::from_millis(100));
        intake += h.driver.pump(h.app.world_mut()).intake_ticks;
    }
    assert_eq!(intake, 10);
    h.clock.advance(Duration::from_secs(5));
    assert_eq!(h.driver.pump(h.app.world_mut()).intake_ticks, 1);
    assert_eq!(h.driver.pump(h.app.world_mut()).intake_ticks, 0);
}

#[test]
fn a_tick_longer_than_its_period_is_counted_as_an_overrun() {
    // 50 strategy ticks per second leave each 20 ms; one intake tick per second leaves intake
    // and publishing a whole second.
    let rates = TickRates {
        strategy_hz: 50.0,
        intake_hz: 1.0,
        ..TickRates::default()
    };
    let mut h = Harness::new(rates);
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!(
        (pass.intake_ticks, pass.strategy_ticks, pass.overruns),
        (1, 0, 0)
    );

    // This strategy system takes 30 ms.
    h.app.add_systems(
        systems::schedule::Strategy,
        (|| std::thread::sleep(Duration::from_millis(30)))
            .after(systems::schedule::StrategySet::Ai),
    );
    h.clock.advance(Duration::from_millis(20));
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!(
        (pass.intake_ticks, pass.strategy_ticks, pass.overruns),
        (0, 1, 1)
    );
}

/// Applies a sandbox CLOCK edit between passes, as intake would.
fn set_clock(h: &mut Harness, id: &str, paused: Option<bool>, speed: Option<f64>) {
    use components::command::{ClockArgs, Command, CommandBody, Issuer, SandboxEdit};
    let command = Command {
        id: id.into(),
        issuer: Issuer::Player("dev".into()),
        general: None,
        body: CommandBody::Sandbox(SandboxEdit::Clock(ClockArgs { paused, speed })),
        log_seq: 0,
        entry: None,
    };
    let applied = systems::rules::commands::apply_command(h.app.world_mut(), &command);
    assert_eq!(applied, systems::rules::commands::Applied::Accepted);
}

#[test]
fn a_sandbox_clock_stops_starts_and_changes_speed_without_a_jump() {
    let rates = TickRates {
        speed: 24.0,
        ..TickRates::default()
    };
    let mut h = Harness::with(rates, true);
    let step = Duration::from_millis(50);
    h.run_for(Duration::from_secs(10), step);
    assert_eq!(h.game_seconds(), 240);

    // Stopped: real time passes, game time does not, and nothing looks behind.
    set_clock(&mut h, "pause", Some(true), None);
    h.run_for(Duration::from_secs(30), step);
    assert_eq!(h.game_seconds(), 240);
    let world = h.published().world.clone();
    assert!(world.paused, "{world:?}");
    assert_eq!(world.effective_speed, 0.0);
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!(pass.strategy_ticks, 0);
    assert!(pass.lag < Duration::from_secs(1), "{pass:?}");

    // Started again: on from where it stopped, a tick per second from the first pass after
    // the edit (one `step` later), no catching up.
    set_clock(&mut h, "resume", Some(false), None);
    h.run_for(Duration::from_secs(10) + step, step);
    assert_eq!(h.game_seconds(), 240 + 240);
    assert!(!h.published().world.paused);

    // Ten times the speed: ten times the game time per real second, from the change on.
    set_clock(&mut h, "faster", None, Some(240.0));
    h.run_for(Duration::from_secs(10) + step, step);
    assert_eq!(h.game_seconds(), 480 + 2_400);
    let world = h.published().world.clone();
    assert_eq!(world.speed, 240.0);
    assert!(
        (world.effective_speed - 240.0).abs() < 5.0,
        "effective speed {}",
        world.effective_speed
    );
}

#[test]
fn a_sandbox_stopped_while_catching_up_forgets_the_downtime_and_waits() {
    let rates = TickRates {
        speed: 24.0,
        max_catchup_ticks: 4,
        ..TickRates::default()
    };
    let mut h = Harness::with(rates.clone(), true);
    // Recovered with 100 ticks' worth of downtime owed; four ticks are paid per pass.
    h.driver = Driver::new(h.clock.clone(), &rates).owing(100 * 24);
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!((pass.strategy_ticks, h.game_seconds()), (4, 96));
    assert_eq!(
        pass.next_due,
        Duration::ZERO,
        "still owing: the next pass at once"
    );

    set_clock(&mut h, "pause", Some(true), None);
    let pass = h.driver.pump(h.app.world_mut());
    assert_eq!(pass.strategy_ticks, 0);
    assert_eq!(pass.lag, Duration::ZERO, "{pass:?}");
    assert!(
        pass.next_due > Duration::ZERO,
        "a stopped clock waits: {pass:?}"
    );
    h.run_for(Duration::from_secs(5), Duration::from_millis(50));
    assert_eq!(h.game_seconds(), 96);

    // Started again: on schedule, the rest of the downtime forgotten.
    set_clock(&mut h, "resume", Some(false), None);
    h.run_for(
        Duration::from_secs(3) + Duration::from_millis(50),
        Duration::from_millis(50),
    );
    assert_eq!(h.game_seconds(), 96 + 3 * 24);
}
