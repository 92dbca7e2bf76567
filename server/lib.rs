//! The tianxia server: the command line, configuration, and the composition that runs each
//! role. Game logic lives in `systems`, the HTTP API and Redis in `net`, storage in
//! `persistence`; this crate only connects them (ARCHITECTURE.md has the map).
//!
//! The roles: [`serve`] and [`daemon`] run a world's single writer (`writer.rs`: recovered by
//! `recovery.rs`, the World on `world_thread.rs`, epochs written by the [`persister`], hot
//! snapshots by [`hot`]) with the whole API or health routes only; [`api`] runs no World and
//! serves from Redis. Beside them: [`check`], [`replay`], [`matchup`] and [`simulate`] (their
//! charts drawn by [`report_svg`]) and the [`bench`]marks.

pub mod api;
mod backends;
pub mod batch;
pub mod bench;
pub mod check;
pub mod cli;
pub mod config;
pub mod connections;
pub mod daemon;
pub mod hot;
mod http;
pub mod logging;
pub mod matchup;
pub mod metrics;
pub mod persister;
mod priority;
mod recovery;
mod reload;
pub mod replay;
pub mod report_svg;
pub mod serve;
mod signals;
pub mod simulate;
mod world_thread;
mod writer;

use std::process::ExitCode;

/// Why a command failed, and the exit status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad command line or configuration: exit status 2.
    #[error("{0}")]
    Usage(String),
    /// Invalid designer data: exit status 1, every error listed.
    #[error("{0}")]
    Assets(#[from] systems::assets::AssetErrors),
    /// Anything else that stopped the command: exit status 1.
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Assets(_) | Failure::Runtime(_) => ExitCode::from(1),
        }
    }
}
