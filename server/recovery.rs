//! Start-up's recovery of a world (docs/storage.md#step-by-step), in the order it happens:
//! - [`connect_mongo`], then with Redis [`take_lease`]: the lease first (a standby waits
//!   here), then the lease epoch from MongoDB's fence (docs/redis.md#fencing), before
//!   anything is read; [`Store::new`]: the world's store (MongoDB with `MONGODB_URI`, else
//!   the embedded one) and the accounts beside it;
//! - [`recover`]: the store's recovery (its clean-up, a new incarnation, the last checkpoint
//!   and its entities), then, with a lease, the hot snapshot in Redis when it is newer
//!   (docs/redis.md#when-recovery-uses-it);
//! - [`command_source`]: where commands come from and what must be applied again first: the
//!   command log's entries after the checkpoint, or the Redis stream's consumer group made
//!   continuous with the checkpoint and what dead daemons left pending.
//!
//! Each waits for a backend that does not answer yet (retrying, logged) and gives up only on
//! a signal (`None`).

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use components::{accounts::AccountStore, command::Command, persist::Recovered, stream::EntryId};
use net::{
    Accounts,
    redis::{
        lease::{Lease, LeaseKeeper},
        stream::CommandStream,
        tokens::RedisTokens,
    },
};
use persistence::{
    CommandLog, DataDir, Embedded, EmbeddedAccounts, EmbeddedStore, MongoAccounts, MongoStore,
    WorldStore,
};
use redis::aio::ConnectionManager;
use tokio::sync::mpsc::UnboundedSender;
use tracing::info;

use crate::{
    Failure,
    backends::{MONGO_TIMEOUT, RedisLink},
    config::ServeConfig,
    persister::Release,
    signals::{Signals, retrying},
};

/// The world's store and the accounts beside it.
pub(crate) struct Store {
    pub(crate) world_store: Arc<dyn WorldStore>,
    pub(crate) accounts: Accounts,
}

/// MongoDB's store, when `MONGODB_URI` is set (connecting is lazy: nothing is read yet).
pub(crate) async fn connect_mongo(config: &ServeConfig) -> Result<Option<MongoStore>, Failure> {
    let Some(uri) = &config.mongodb_uri else {
        return Ok(None);
    };
    MongoStore::connect(uri, MONGO_TIMEOUT)
        .await
        .map(Some)
        .map_err(|e| Failure::Usage(e.to_string()))
}

/// The single writer (docs/redis.md#fencing): the Redis lease first (a standby waits here
/// until the holder's lapses), then the lease epoch from MongoDB's fence, before anything is
/// read. Losing the lease later is reported on `lost`. `None` if a signal came first.
pub(crate) async fn take_lease(
    config: &ServeConfig,
    link: &RedisLink,
    mongo: &mut MongoStore,
    signals: &mut Signals,
    lost: UnboundedSender<String>,
) -> Option<(LeaseKeeper, u64)> {
    let (_never, idle) = tokio::sync::watch::channel(false);
    let acquired = tokio::select! {
        lease = Lease::acquire(&link.redis, &config.world, idle) => lease,
        name = signals.recv() => {
            info!(signal = name, "shutting down");
            None
        }
    };
    let Some(acquired) = acquired else {
        info!("stopped while standing by");
        return None;
    };
    let keeper = LeaseKeeper::start(acquired, lost);
    let Some(epoch) = retrying("take the lease epoch", signals, async || {
        mongo.take_fence(&config.world).await
    })
    .await
    else {
        info!("stopped before the lease epoch was taken");
        return None;
    };
    info!(
        lease_epoch = epoch,
        "lease epoch taken from the MongoDB fence"
    );
    Some((keeper, epoch))
}

/// Without Redis, MongoDB's fence alone keeps a single writer (docs/storage.md#fencing-rules):
/// this process takes the next lease epoch, so the checkpoints of any earlier writer of the
/// world (another `serve` on another data directory, or a daemon that ran before) are refused
/// from now on. `None` if a signal came first.
pub(crate) async fn take_fence(
    config: &ServeConfig,
    mongo: &mut MongoStore,
    signals: &mut Signals,
) -> Option<u64> {
    let epoch = retrying("take the lease epoch", signals, async || {
        mongo.take_fence(&config.world).await
    })
    .await?;
    info!(
        lease_epoch = epoch,
        "lease epoch taken from the MongoDB fence (no lease without Redis: an earlier writer of this world is fenced out)"
    );
    Some(epoch)
}

impl Store {
    /// MongoDB's store when there is one (accounts, checkpoints and events live there; the
    /// command log stays in the data directory), else the embedded one. With Redis too,
    /// tokens live in Redis, shared by every process.
    pub(crate) fn new(
        embedded: &Arc<EmbeddedStore>,
        mongo: Option<MongoStore>,
        redis: Option<&RedisLink>,
    ) -> Store {
        let Some(mongo) = mongo else {
            return Store {
                world_store: Arc::new(Embedded::new(embedded.clone())),
                accounts: Accounts::new(Arc::new(EmbeddedAccounts::new(embedded.clone()))),
            };
        };
        let mongo = Arc::new(mongo);
        let players: Arc<dyn AccountStore> = Arc::new(MongoAccounts::new(mongo.clone()));
        let accounts = match redis {
            Some(link) => Accounts::new(Arc::new(RedisTokens::new(players, link.redis.clone()))),
            None => Accounts::new(players),
        };
        Store {
            world_store: mongo,
            accounts,
        }
    }
}

/// What the World resumes from.
pub(crate) struct Resumed {
    /// The checkpoint (or hot snapshot) and its entities; none for a new world.
    pub(crate) recovered: Option<Recovered>,
    /// The World's new incarnation, already durable.
    pub(crate) incarnation: u64,
    /// The epoch the World goes on from.
    pub(crate) last_epoch: u64,
}

impl Resumed {
    /// The command-log position the recovered state has applied.
    pub(crate) fn log_seq(&self) -> u64 {
        self.recovered.as_ref().map_or(0, |r| r.checkpoint.log_seq)
    }
}

/// Recovers the world from its store and, with `hot` (a lease holder's connection for hot
/// snapshots), from a newer hot snapshot in Redis; its first checkpoint then writes what the
/// store lacks.
pub(crate) async fn recover(
    config: &ServeConfig,
    store: &Store,
    hot: Option<&ConnectionManager>,
    signals: &mut Signals,
) -> Result<Option<Resumed>, Failure> {
    let started = Instant::now();
    info!(world = %config.world, store = store.world_store.name(), "recovering the world");
    // A store that does not answer is waited for; one that cannot be read stops the start.
    let Some(recovery) = retrying("recover the world", signals, async || {
        match store.world_store.recover(&config.world).await {
            Err(e) if !e.is_transient() => Ok(Err(e)),
            other => other.map(Ok),
        }
    })
    .await
    else {
        info!("stopped before the world was recovered");
        return Ok(None);
    };
    let recovery = recovery.map_err(anyhow::Error::from)?;
    let incarnation = recovery.incarnation;
    let mut recovered = recovery.world;
    let mut last_epoch = recovered.as_ref().map_or(0, |r| r.checkpoint.epoch);
    if let Some(redis) = hot {
        let checkpoint = recovered.as_ref().map(|r| r.checkpoint.clone());
        let mut redis = redis.clone();
        let Some(hot) = retrying("read the hot snapshot", signals, async || {
            crate::hot::read_newer(&mut redis, &config.world, checkpoint.as_ref()).await
        })
        .await
        else {
            info!("stopped before the world was recovered");
            return Ok(None);
        };
        if let Some(hot) = hot {
            info!(
                lease_epoch = hot.checkpoint.lease_epoch,
                epoch = hot.checkpoint.epoch,
                game_seconds = hot.checkpoint.game_seconds,
                owed_events = hot.events.len(),
                "recovering from the hot snapshot in Redis, newer than the checkpoint"
            );
            last_epoch = last_epoch.max(hot.checkpoint.epoch);
            recovered = Some(Recovered {
                checkpoint: hot.checkpoint,
                entities: hot.entities,
                incarnation,
                events: hot.events,
            });
        }
    }
    match &recovered {
        Some(r) => info!(
            epoch = r.checkpoint.epoch,
            incarnation,
            entities = r.entities.len(),
            game_seconds = r.checkpoint.game_seconds,
            log_seq = r.checkpoint.log_seq,
            took_ms = started.elapsed().as_millis() as u64,
            "checkpoint loaded"
        ),
        None => info!(scenario = %config.scenario, "no checkpoint: a new world from the scenario"),
    }
    Ok(Some(Resumed {
        recovered,
        incarnation,
        last_epoch,
    }))
}

/// Where the World's commands come from.
pub(crate) struct CommandSource {
    /// Commands after the recovered position, to apply again before anything new.
    pub(crate) replay: Vec<Command>,
    /// With Redis: the stream, to read after this entry.
    pub(crate) stream: Option<(CommandStream, EntryId)>,
    /// What each committed checkpoint releases.
    pub(crate) release: Release,
}

/// The command log's entries after the recovered position; or, with Redis, the stream: the
/// group continues from the checkpoint's entry, and what a dead daemon left pending after it
/// is applied again first. A command log still holding commands no checkpoint covers must
/// be drained without Redis first (docs/redis.md#moving-a-world-to-or-from-redis).
pub(crate) async fn command_source(
    resumed: &Resumed,
    log: &Arc<CommandLog>,
    data_dir: &DataDir,
    redis: Option<&RedisLink>,
    config: &ServeConfig,
    lease_epoch: u64,
    signals: &mut Signals,
) -> Result<Option<CommandSource>, Failure> {
    let logged = log.after(resumed.log_seq()).map_err(anyhow::Error::from)?;
    let Some(link) = redis else {
        return Ok(Some(CommandSource {
            replay: logged,
            stream: None,
            release: Release::Log(log.clone()),
        }));
    };
    if !logged.is_empty() {
        return Err(anyhow::anyhow!(
            "the command log in {} holds {} commands no checkpoint covers; start once without REDIS_URL so they are applied and checkpointed, then with it",
            data_dir.path().display(),
            logged.len()
        )
        .into());
    }
    let mut stream =
        CommandStream::new(&link.client, link.redis.clone(), &config.world, lease_epoch)
            .context("cannot set up the Redis connection")?;
    let from = resumed
        .recovered
        .as_ref()
        .and_then(|r| r.checkpoint.stream_id);
    let Some((replay, after)) = retrying("prepare the command stream", signals, async || {
        stream.recover(from).await
    })
    .await
    else {
        info!("stopped before the command stream was ready");
        return Ok(None);
    };
    let release = Release::Stream {
        redis: stream.redis.clone(),
        keys: stream.keys.clone(),
        consumer: stream.consumer.clone(),
    };
    Ok(Some(CommandSource {
        replay,
        stream: Some((stream, after)),
        release,
    }))
}
