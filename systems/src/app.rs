//! The headless bevy app: the three schedules, the plugins that fill them, and a World built
//! from a scenario. The server runs it with [`crate::driver::Driver::run`]; tests drive it
//! pass by pass with a [`crate::driver::ManualClock`].

use std::sync::Arc;

use bevy_app::App;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor};
use components::read_model::ReadHandle;

use crate::{
    assets::GameData,
    battle::BattlePlugin,
    clock::ClockPlugin,
    read_models::ReadModelPlugin,
    schedule::{BattleTick, Intake, Publish, Strategy},
    spawn::{WorldSettings, spawn_world},
};

/// Everything the app needs beyond the designer data.
#[derive(Clone, Debug)]
pub struct AppSettings {
    pub world: WorldSettings,
    /// Most recent domain events kept for the read side.
    pub event_window: usize,
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

/// A new World built from `data`, publishing into `read`.
pub fn build_app(data: Arc<GameData>, settings: &AppSettings, read: ReadHandle) -> App {
    let mut app = App::empty();
    add_schedule(&mut app, Intake);
    add_schedule(&mut app, Strategy);
    add_schedule(&mut app, BattleTick);
    add_schedule(&mut app, Publish);
    app.add_plugins((
        ClockPlugin,
        BattlePlugin,
        ReadModelPlugin {
            handle: read,
            event_window: settings.event_window,
        },
    ));
    spawn_world(app.world_mut(), data, &settings.world);
    app.finish();
    app.cleanup();
    app
}
