//! The game itself: designer data loading and validation, the World built from a scenario,
//! the systems of each schedule, and the driver that runs the schedules at fixed rates from
//! the server's measurement of real time.
//!
//! This crate knows nothing of tokio, Redis, MongoDB or HTTP. It talks to the outside only
//! through plain data: the read models it publishes by an atomic swap, and (later) channels
//! it drains without blocking.

pub mod app;
pub mod assets;
pub mod battle;
pub mod clock;
pub mod driver;
pub mod event_log;
pub mod persist;
pub mod read_models;
pub mod rules;
pub mod scale;
pub mod schedule;
pub mod spawn;
