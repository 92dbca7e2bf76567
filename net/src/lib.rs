//! The network side of tianxia: the HTTP API ([`http`]) over the read models the World
//! publishes, with the account rules ([`accounts`]) and the command bus ([`bus`]) that hands
//! commands to a journal; and Redis mode ([`redis`]): the command stream, the lease, the L2
//! read models and the api's copy of them, presence, tokens and the hot snapshot's write.
//!
//! Nothing here changes game state or runs inside the tick: commands go to the World over
//! the command bus or the stream, and handlers read the last published
//! [`components::read_model::ReadModels`] with one atomic load, never waiting for the World.
//! It knows nothing of the stores' files or MongoDB.

pub mod accounts;
pub mod bus;
pub mod http;
pub mod redis;
pub mod ws;

/// `N` random bytes as hexadecimal: an id telling this process apart from others (an L2
/// writer, a request-id prefix). Without system randomness it is all zeros: these ids only
/// help people and readers tell processes apart; nothing depends on them being unguessable.
pub(crate) fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub use accounts::{Accounts, MemoryAccounts};
pub use bus::CommandBus;
pub use http::{
    AppState, ReadSource,
    browsers::CorsOrigins,
    error::{ApiError, ErrorCode},
    health::{Backends, Probe, ProbeFuture},
    limits::RateLimits,
    ops_router, router,
};
pub use ws::{Hub, WsConfig};
