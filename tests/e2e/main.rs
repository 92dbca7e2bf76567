//! End-to-end tests of tianxia, in one test binary: they start the real `tianxia` binary, or
//! build the real app, and use it as a client, designer or operator would.
//!
//! Services: tests that need MongoDB start their own MongoDB wire-protocol server
//! (`nx-27017`, installed by `scripts/test.sh`); tests that need Redis start a `redis-server`
//! of their own on a free port; the API fuzzer is Schemathesis (installed by the script too).
//! A test that cannot start a service fails and says how to provide it.

mod admin;
mod battle;
mod battle_world;
mod bench;
mod browsers;
mod check;
mod clock;
mod config;
mod content;
mod first_hour;
mod fuzz;
mod openapi;
mod page;
mod persist;
mod play;
mod roles;
mod sandbox;
mod serve;
mod simulate;
mod streams;
mod support;
mod ws;
