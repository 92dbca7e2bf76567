//! Players' accounts (docs/http.md#accounts, docs/http.md#tokens): registration, login with
//! Argon2 password hashes, and bearer tokens that are random (256 bits), stored only as SHA-256
//! hashes, valid for 24 real hours and refreshed on use. Accounts are not game state: they live
//! in an [`AccountStore`] beside the World (in memory here; durable and shared stores implement
//! the same trait).
//!
//! Password hashing is deliberately slow and memory-hard (about 19 MiB a hash), so it runs on
//! the blocking pool, never on the async workers, and a [`HashGate`] bounds how much of it
//! runs and waits at once: beyond that, registration and login answer 503 at once.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::SystemTime,
};

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use components::accounts::{
    AccountError, AccountFuture, AccountStore, PlayerRecord, TOKEN_TTL, TOKENS_PER_PLAYER,
};
use sha2::{Digest, Sha256};

use crate::http::error::{ApiError, ErrorCode};

#[derive(Default)]
struct Memory {
    players: HashMap<String, PlayerRecord>,
    tokens: HashMap<[u8; 32], (String, SystemTime)>,
    /// Each player's token hashes, oldest first.
    by_player: HashMap<String, VecDeque<[u8; 32]>>,
}

/// Accounts in this process's memory: for one-process servers and tests.
#[derive(Default)]
pub struct MemoryAccounts {
    inner: Mutex<Memory>,
}

impl MemoryAccounts {
    fn with<T>(&self, f: impl FnOnce(&mut Memory) -> T) -> T {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

impl AccountStore for MemoryAccounts {
    fn create(&self, player: PlayerRecord) -> AccountFuture<'_, ()> {
        let result = self.with(|m| {
            if m.players.contains_key(&player.id) {
                return Err(AccountError::NameTaken);
            }
            m.players.insert(player.id.clone(), player);
            Ok(())
        });
        Box::pin(async move { result })
    }

    fn find(&self, id: &str) -> AccountFuture<'_, Option<PlayerRecord>> {
        let found = self.with(|m| m.players.get(id).cloned());
        Box::pin(async move { Ok(found) })
    }

    fn put_token(
        &self,
        hash: [u8; 32],
        player: &str,
        expires: SystemTime,
    ) -> AccountFuture<'_, ()> {
        self.with(|m| {
            let now = SystemTime::now();
            let list = m.by_player.entry(player.to_string()).or_default();
            list.push_back(hash);
            let mut dropped = Vec::new();
            // Expired tokens go, and the oldest beyond the per-player bound.
            list.retain(|h| m.tokens.get(h).is_none_or(|(_, exp)| *exp > now) || *h == hash);
            while list.len() > TOKENS_PER_PLAYER {
                if let Some(old) = list.pop_front() {
                    dropped.push(old);
                }
            }
            for old in dropped {
                m.tokens.remove(&old);
            }
            m.tokens.insert(hash, (player.to_string(), expires));
        });
        Box::pin(async { Ok(()) })
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: SystemTime,
        refresh_to: SystemTime,
    ) -> AccountFuture<'_, Option<String>> {
        let found = self.with(|m| match m.tokens.get_mut(&hash) {
            Some((player, expires)) if *expires > now => {
                *expires = refresh_to;
                Some(player.clone())
            }
            Some(_) => {
                m.tokens.remove(&hash);
                None
            }
            None => None,
        });
        Box::pin(async move { Ok(found) })
    }

    fn revoke_token(&self, hash: [u8; 32]) -> AccountFuture<'_, ()> {
        self.with(|m| {
            if let Some((player, _)) = m.tokens.remove(&hash)
                && let Some(list) = m.by_player.get_mut(&player)
            {
                list.retain(|h| *h != hash);
            }
        });
        Box::pin(async { Ok(()) })
    }
}

/// A token as given to the client, and its hash as stored.
pub fn new_token() -> Result<(String, [u8; 32]), ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(ApiError::internal)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let hash = token_hash(&token);
    Ok((token, hash))
}

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(ApiError::internal)?;
    let salt = SaltString::encode_b64(&salt).map_err(ApiError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn store_error(error: AccountError) -> ApiError {
    match error {
        AccountError::NameTaken => ApiError::new(ErrorCode::NameTaken, "that name is taken"),
        AccountError::Unavailable(detail) => {
            tracing::warn!(%detail, "account store unavailable");
            ApiError::unavailable("accounts are unavailable; try again shortly")
        }
    }
}

/// Checks a player name: 3–32 characters of `[A-Za-z0-9_-]`.
pub fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = (3..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "name: 3-32 characters of [A-Za-z0-9_-]",
        ))
    }
}

/// Checks a password: 8–128 characters.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    if (8..=128).contains(&password.chars().count()) {
        Ok(())
    } else {
        Err(ApiError::invalid_field("password: 8-128 characters"))
    }
}

/// The player id a name registers as: names are unique regardless of case.
pub fn player_id(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Registration, login, logout and token checks over a store.
#[derive(Clone)]
pub struct Accounts {
    store: Arc<dyn AccountStore>,
    gate: Arc<HashGate>,
}

/// Password hashes waiting for a turn beyond those running.
pub const HASH_QUEUE: usize = 32;

/// Bounds the password hashing in flight: `running` at once (about the core count), and
/// [`HASH_QUEUE`] more waiting for a turn.
pub struct HashGate {
    running: Arc<tokio::sync::Semaphore>,
    admitted: Arc<tokio::sync::Semaphore>,
}

impl HashGate {
    pub fn new(running: usize) -> Self {
        let running = running.max(1);
        HashGate {
            running: Arc::new(tokio::sync::Semaphore::new(running)),
            admitted: Arc::new(tokio::sync::Semaphore::new(running + HASH_QUEUE)),
        }
    }

    /// Runs `work` on the blocking pool when its turn comes, or refuses at once when the queue
    /// is full. The hash holds its permits until it is done, even if the request that asked
    /// for it is gone (a client that hangs up does not free a place while its hash runs).
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let Ok(admitted) = self.admitted.clone().try_acquire_owned() else {
            tracing::warn!("password hashing at its limit; a registration or login was refused");
            return Err(ApiError::unavailable(
                "too many logins and registrations at once; retry in a moment",
            ));
        };
        let turn = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(ApiError::internal)?;
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, turn);
            work()
        })
        .await
        .map_err(ApiError::internal)
    }
}

/// What register and login answer.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Session {
    pub player_id: String,
    pub token: String,
}

impl Accounts {
    /// Hashing as many passwords at once as the machine has cores.
    pub fn new(store: Arc<dyn AccountStore>) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::with_gate(store, HashGate::new(cores))
    }

    pub fn with_gate(store: Arc<dyn AccountStore>, gate: HashGate) -> Self {
        Accounts {
            store,
            gate: Arc::new(gate),
        }
    }

    pub fn memory() -> Self {
        Self::new(Arc::new(MemoryAccounts::default()))
    }

    async fn issue(&self, player: &str) -> Result<Session, ApiError> {
        let (token, hash) = new_token()?;
        self.store
            .put_token(hash, player, SystemTime::now() + TOKEN_TTL)
            .await
            .map_err(store_error)?;
        Ok(Session {
            player_id: player.to_string(),
            token,
        })
    }

    pub async fn register(&self, name: &str, password: &str) -> Result<Session, ApiError> {
        check_name(name)?;
        check_password(password)?;
        let id = player_id(name);
        if self.store.find(&id).await.map_err(store_error)?.is_some() {
            return Err(store_error(AccountError::NameTaken));
        }
        let password = password.to_string();
        let password_hash = self.gate.run(move || hash_password(&password)).await??;
        self.store
            .create(PlayerRecord {
                id: id.clone(),
                name: name.to_string(),
                password_hash,
            })
            .await
            .map_err(store_error)?;
        self.issue(&id).await
    }

    pub async fn login(&self, name: &str, password: &str) -> Result<Session, ApiError> {
        let bad = || ApiError::new(ErrorCode::Unauthorized, "wrong name or password");
        if check_name(name).is_err() || check_password(password).is_err() {
            return Err(bad());
        }
        let record = self
            .store
            .find(&player_id(name))
            .await
            .map_err(store_error)?;
        // Without an account the password is still checked against a hash, so the answer
        // takes as long either way.
        let hash = record
            .as_ref()
            .map(|r| r.password_hash.clone())
            .unwrap_or_else(|| DECOY_HASH.to_string());
        let password = password.to_string();
        let matches = self
            .gate
            .run(move || verify_password(&password, &hash))
            .await?;
        match record {
            Some(record) if matches => self.issue(&record.id).await,
            _ => Err(bad()),
        }
    }

    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        self.store
            .revoke_token(token_hash(token))
            .await
            .map_err(store_error)
    }

    /// A player's display name, as registered.
    pub async fn name(&self, id: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .store
            .find(id)
            .await
            .map_err(store_error)?
            .map(|record| record.name))
    }

    /// The player a bearer token belongs to.
    pub async fn authenticate(&self, token: &str) -> Result<String, ApiError> {
        let now = SystemTime::now();
        self.store
            .use_token(token_hash(token), now, now + TOKEN_TTL)
            .await
            .map_err(store_error)?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "the token is missing, expired or revoked",
                )
            })
    }
}

/// An Argon2 hash of a random password nobody knows, for timing-even failed logins.
const DECOY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$GpZ3sK/oH9p7VIiV56G/64Zo/8GaUw434IimaPqxwCo";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn password_hashing_beyond_its_queue_is_refused_at_once() {
        let accounts = Accounts::with_gate(Arc::new(MemoryAccounts::default()), HashGate::new(1));
        accounts.register("ann", "a-password").await.unwrap();
        let logins: Vec<_> = (0..HASH_QUEUE + 20)
            .map(|_| {
                let accounts = accounts.clone();
                tokio::spawn(async move { accounts.login("ann", "wrong-password").await })
            })
            .collect();
        let mut refused = 0;
        let mut wrong = 0;
        for login in logins {
            match login.await.unwrap() {
                Err(e) if e.code == ErrorCode::Unavailable => refused += 1,
                Err(e) if e.code == ErrorCode::Unauthorized => wrong += 1,
                other => panic!("{other:?}"),
            }
        }
        // One running and the queue were checked; the rest were refused without hashing.
        assert_eq!(wrong, 1 + HASH_QUEUE, "refused {refused}");
        assert_eq!(refused, 19);
        // Once the queue drains, logins are checked again.
        assert!(accounts.login("ann", "a-password").await.is_ok());
    }
}
