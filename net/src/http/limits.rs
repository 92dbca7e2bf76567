//! Rate limits (docs/http.md#rate-limits): per player on every authenticated route, and per
//! client address on the routes anyone may call that cost the server work (registering and
//! logging in, where passwords are hashed) and on requests with a bad token (guessing
//! tokens). Over the limit is `429 rate_limited`. Public reads are not limited per address:
//! they are served from the published read models without waiting for anything, and a load
//! test drives them from one address.
//!
//! The limiters keep one bucket per key; [`RateLimits::forget_idle`] drops the buckets of
//! keys not seen lately and runs on the server's upkeep timer, so they do not grow without
//! bound.

use std::{net::IpAddr, num::NonZeroU32};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::{ApiError, ErrorCode};

/// Requests per second a player may make, and the burst it may save up.
pub const PLAYER_PER_SECOND: u32 = 50;
pub const PLAYER_BURST: u32 = 200;
/// Registrations and logins per second from one address, and the burst.
pub const ADDRESS_PER_SECOND: u32 = 5;
pub const ADDRESS_BURST: u32 = 20;

pub struct RateLimits {
    players: DefaultKeyedRateLimiter<String>,
    addresses: DefaultKeyedRateLimiter<IpAddr>,
}

fn quota(per_second: u32, burst: u32) -> Quota {
    Quota::per_second(NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

fn limited(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!("too many requests {what}; slow down"),
    )
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(
            (PLAYER_PER_SECOND, PLAYER_BURST),
            (ADDRESS_PER_SECOND, ADDRESS_BURST),
        )
    }
}

impl RateLimits {
    /// Limits of (per second, burst) for players and for addresses.
    pub fn new(players: (u32, u32), addresses: (u32, u32)) -> Self {
        RateLimits {
            players: RateLimiter::keyed(quota(players.0, players.1)),
            addresses: RateLimiter::keyed(quota(addresses.0, addresses.1)),
        }
    }

    pub fn player(&self, player: &str) -> Result<(), ApiError> {
        self.players.check_key(&player.to_string()).map_err(|_| {
            tracing::info!(player, "rate limit reached");
            limited("from this player")
        })
    }

    pub fn address(&self, address: IpAddr) -> Result<(), ApiError> {
        self.addresses.check_key(&address).map_err(|_| {
            tracing::info!(%address, "rate limit reached");
            limited("from this address")
        })
    }

    /// Forgets the buckets of keys that are full again (not seen lately).
    pub fn forget_idle(&self) {
        self.players.retain_recent();
        self.addresses.retain_recent();
        self.players.shrink_to_fit();
        self.addresses.shrink_to_fit();
    }
}
