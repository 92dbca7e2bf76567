//! The headless bevy app: the four schedules ([`crate::schedule`]), their sets ordered in one
//! place, the plugins that fill them, and a World built from a scenario or a checkpoint. The
//! server runs it with [`crate::driver::Driver::run`]; tests drive it pass by pass with a
//! [`crate::driver::ManualClock`]. No plugin orders itself against another plugin's systems:
//! they meet only through the sets.

use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::schedule::{
    IntoScheduleConfigs, LogLevel, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor,
};
use components::{command::Inbound, persist::Recovered, read_model::ReadHandle};
use crossbeam_channel::Receiver;

use crate::{
    assets::GameData,
    battle::BattlePlugin,
    clock::ClockPlugin,
    persist::{PersistPlugin, PersistSettings, RestoreError, restore_world},
    read_models::ReadModelPlugin,
    rules::RulesPlugin,
    schedule::{BattleTick, Intake, Publish, Strategy, configure_sets},
    spawn::{WorldSettings, spawn_world},
};

/// Everything the app needs beyond the designer data.
#[derive(Clone, Debug)]
pub struct AppSettings {
    pub world: WorldSettings,
    /// Most recent domain events kept for the read side.
    pub event_window: usize,
    /// Finished battles kept for the read side, with their last frame and recording.
    pub battles_kept: usize,
    /// Threads battles step on (docs/operations.md#battle-threads).
    pub battle_threads: usize,
    /// Most commands applied per intake tick (docs/rules.md#intake-cap).
    pub max_commands_per_tick: usize,
    /// Whether the AI drives NPC generals and offline players' delegates (tests of single
    /// rules turn it off).
    pub ai: bool,
    /// A world built from the scenario is a sandbox (docs/sandbox.md); a recovered world is
    /// one if its checkpoint says so.
    pub sandbox: bool,
    /// Designer data reloaded while the World runs (docs/data-files.md#hot-reload).
    pub reloads: Option<crossbeam_channel::Receiver<crate::assets::Reloaded>>,
    /// What operators ask of the World (`/admin/flush`, `/admin/maintenance`).
    pub admin: Option<crossbeam_channel::Receiver<crate::admin::AdminRequest>>,
}

impl AppSettings {
    pub fn new(world: WorldSettings) -> Self {
        AppSettings {
            world,
            event_window: 10_000,
            battles_kept: crate::read_models::FINISHED_BATTLES_KEPT,
            battle_threads: crate::battle::default_battle_threads(),
            max_commands_per_tick: 20_000,
            ai: true,
            sandbox: false,
            reloads: None,
            admin: None,
        }
    }
}

fn add_schedule(app: &mut App, label: impl ScheduleLabel + Clone) {
    app.init_schedule(label.clone());
    app.edit_schedule(label, |schedule| {
        schedule.set_executor(SingleThreadedExecutor::new());
        schedule.set_build_settings(ScheduleBuildSettings {
            ambiguity_detection: LogLevel::Error,
            ..Default::default()
        });
    });
}

/// Where a World's state comes from.
pub enum Origin {
    /// A new world from the scenario.
    Scenario,
    /// The last checkpoint of a stored world.
    Checkpoint(Box<Recovered>),
}

/// A new World built from `data`, publishing into `read` and fed by `inbox` (the command
/// bus; none for a World nobody commands).
pub fn build_app(
    data: Arc<GameData>,
    settings: &AppSettings,
    read: ReadHandle,
    inbox: Option<Receiver<Inbound>>,
) -> App {
    match build_app_with(data, settings, read, inbox, Origin::Scenario, None) {
        Ok(app) => app,
        Err(error) => unreachable!("a scenario always builds: {error}"),
    }
}

/// A World from `origin`, with its epochs handed to a store when `persist` is given.
pub fn build_app_with(
    data: Arc<GameData>,
    settings: &AppSettings,
    read: ReadHandle,
    inbox: Option<Receiver<Inbound>>,
    origin: Origin,
    persist: Option<PersistSettings>,
) -> Result<App, RestoreError> {
    let mut app = App::empty();
    add_schedule(&mut app, Intake);
    add_schedule(&mut app, Strategy);
    add_schedule(&mut app, BattleTick);
    add_schedule(&mut app, Publish);
    configure_sets(&mut app);
    app.add_plugins((
        ClockPlugin,
        BattlePlugin {
            threads: settings.battle_threads,
        },
        RulesPlugin {
            inbox,
            max_commands_per_tick: settings.max_commands_per_tick,
            ai: settings.ai,
            finished_window: data.balance.orders.finished_window.clamp(1, 100_000) as usize,
        },
        ReadModelPlugin {
            handle: read,
            event_window: settings.event_window,
            battles_kept: settings.battles_kept,
        },
    ));
    if let Some(rx) = &settings.reloads {
        app.insert_resource(crate::assets::reload::ReloadInbox(rx.clone()))
            .add_systems(
                Intake,
                crate::assets::reload::apply_reloads.before(crate::rules::intake::apply_inbound),
            );
    }
    // Operators' requests are answered with an epoch: only a World with a store takes them.
    if let (Some(rx), Some(_)) = (&settings.admin, &persist) {
        app.insert_resource(crate::admin::AdminInbox(rx.clone()))
            .add_systems(
                Intake,
                crate::admin::apply_admin
                    .after(crate::assets::reload::apply_reloads)
                    .before(crate::rules::intake::apply_inbound),
            );
    }
    let incarnation = persist.as_ref().map(|p| p.incarnation);
    if let Some(persist) = persist {
        app.add_plugins(PersistPlugin(persist));
    }
    match origin {
        Origin::Scenario => {
            spawn_world(app.world_mut(), data, &settings.world);
            if settings.sandbox {
                app.world_mut()
                    .insert_resource(components::world::Sandbox::default());
            }
            if let Some(incarnation) = incarnation {
                app.world_mut()
                    .insert_resource(crate::rules::orders::Incarnation(incarnation.max(1)));
            }
        }
        Origin::Checkpoint(recovered) => {
            restore_world(app.world_mut(), data, &settings.world, *recovered)?;
        }
    }
    crate::rules::residents::index_world(app.world_mut());
    crate::rules::ai::prepare_roster(app.world_mut());
    app.finish();
    app.cleanup();
    Ok(app)
}
