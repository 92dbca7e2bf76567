//! The game itself: designer data loading and validation ([`assets`]), the World built from a
//! scenario ([`spawn`]) or a checkpoint ([`persist`]), the systems of each schedule (the
//! [`rules`], [`battle`]s, the [`clock`]), the read models it publishes ([`read_models`]), the
//! epochs and hot snapshots it hands to its stores ([`persist`]), and the [`driver`] that runs
//! the schedules at fixed rates from the server's measurement of real time. [`app`] puts it
//! together; [`schedule`] orders it.
//!
//! This crate knows nothing of tokio, Redis, MongoDB or HTTP, and the compiler holds it to that
//! (it does not depend on them). It talks to the outside only through plain data: commands
//! drained from a channel without blocking, read models published by an atomic swap, and
//! epochs and hot snapshots handed over channels it never waits on.

pub mod admin;
pub mod app;
pub mod assets;
pub mod battle;
pub mod clock;
pub mod driver;
pub mod event_log;
pub mod persist;
pub mod read_models;
pub mod rules;
pub mod rules_view;
pub mod scale;
pub mod schedule;
pub mod spawn;
