//! Plain data shared by every crate of tianxia: the ECS components and resources that make up
//! the game state, game time and its calendar, domain events, commands and their stream
//! entries, the read models published to the read side, what the World hands its stores, the
//! types of the designer data files under `assets/`, and the contracts between the crates
//! (the durability interfaces of [`durable`], the account store of [`accounts`]).
//!
//! Nothing here has behaviour beyond small pure helpers (calendar arithmetic, id validation,
//! shape checks, read-model queries) and does no I/O. Systems live in the `systems` crate;
//! I/O lives in `net`, `persistence` and the server.

pub mod accounts;
pub mod admin;
pub mod battle;
pub mod command;
pub mod data;
pub mod durable;
pub mod events;
pub mod ids;
pub mod name;
pub mod persist;
pub mod read_model;
pub mod stream;
pub mod text;
pub mod time;
pub mod world;
