//! The tianxia server: the command line, configuration, and the wiring that runs the World on
//! its own thread beside a tokio runtime serving HTTP. Game logic lives in `systems`, the
//! HTTP API in `net`, storage in `persistence`; this crate only connects them.

pub mod accounts;
pub mod api;
pub mod bench;
pub mod bench_commands;
pub mod bench_flush;
pub mod bench_strategy;
pub mod bridge;
pub mod check;
pub mod cli;
pub mod config;
pub mod hot;
pub mod journal;
pub mod logging;
pub mod metrics;
pub mod persister;
pub mod replay;
pub mod serve;
pub mod simulate;

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
