//! The account store's contract (docs/http.md#accounts): players' accounts and the hashes of
//! their bearer tokens are not game state; they live in an [`AccountStore`] beside the World.
//! `net` holds the rules over it (registration, Argon2, tokens) and an in-memory store;
//! `persistence` keeps accounts in the embedded store or MongoDB, and `net` keeps tokens in
//! Redis in Redis mode.
//!
//! Interfaces and plain data only: no I/O happens here.

use std::{future::Future, pin::Pin, time::Duration, time::SystemTime};

/// How long a token lives after its last use.
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Tokens a player may hold at once; logging in again beyond this revokes the oldest.
pub const TOKENS_PER_PLAYER: usize = 16;

/// The future an account store returns.
pub type AccountFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, AccountError>> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("the name is taken")]
    NameTaken,
    #[error("the account store is unavailable: {0}")]
    Unavailable(String),
}

/// A registered player as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerRecord {
    /// The name in lower case: names are unique regardless of case.
    pub id: String,
    pub name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
}

/// Where accounts and token hashes are kept.
pub trait AccountStore: Send + Sync + 'static {
    /// Stores a new player; `NameTaken` if its id (the name, lower-cased) exists.
    fn create(&self, player: PlayerRecord) -> AccountFuture<'_, ()>;
    fn find(&self, id: &str) -> AccountFuture<'_, Option<PlayerRecord>>;
    /// Stores a token hash for `player`, valid until `expires`; of the player's tokens, those
    /// expired and the oldest beyond [`TOKENS_PER_PLAYER`] are revoked.
    fn put_token(&self, hash: [u8; 32], player: &str, expires: SystemTime)
    -> AccountFuture<'_, ()>;
    /// The player a token hash belongs to if it has not expired by `now`; extends its life
    /// to `refresh_to`.
    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> AccountFuture<'_, Option<String>>;
    fn revoke_token(&self, hash: [u8; 32]) -> AccountFuture<'_, ()>;
}
