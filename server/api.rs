//! `tianxia api` (docs/operations.md#api): a stateless HTTP front end. It holds no World:
//! commands go to the world's Redis stream through the submit script, reads come from an
//! in-process copy of the L2 read models (kept current by invalidation messages, checked every
//! L1 TTL), accounts from MongoDB, the durable event history from MongoDB up to the last
//! checkpoint, and players' activity goes to `presence:{world}`. Any number of them serve one
//! world.

use std::{sync::Arc, time::Duration};

use components::durable::{EventLog, PersistStatus};
use net::{
    Accounts, CommandBus,
    redis::{
        mirror::Mirror,
        presence,
        stream::{StreamJournal, StreamKeys},
        tokens::RedisTokens,
    },
};
use persistence::{MongoAccounts, MongoStore, WorldEvents};
use tokio::sync::{oneshot, watch};
use tracing::info;

use crate::{
    Failure,
    backends::{MONGO_TIMEOUT, RedisLink, runtime},
    config::ServeConfig,
    http::{HttpParts, Stop, bind, serve_http},
    metrics,
    signals::Signals,
};

/// Presence reports waiting to be written at most.
const PRESENCE_QUEUE: usize = 65_536;

/// Runs `api` until a signal.
pub fn run(config: ServeConfig) -> Result<(), Failure> {
    let (Some(redis_url), Some(mongodb_uri)) = (&config.redis_url, &config.mongodb_uri) else {
        return Err(Failure::Usage(
            "api needs both REDIS_URL and MONGODB_URI".into(),
        ));
    };
    let runtime = runtime(2)?;
    let signals = runtime.block_on(async { Signals::install() })?;
    let listener = bind(&config, &runtime)?;
    let metrics = metrics::install()?;
    let RedisLink { client, redis } = {
        let _entered = runtime.enter();
        RedisLink::open(redis_url)?
    };
    let mongo = Arc::new(
        runtime
            .block_on(MongoStore::connect(mongodb_uri, MONGO_TIMEOUT))
            .map_err(|e| Failure::Usage(e.to_string()))?,
    );
    let accounts = Accounts::new(Arc::new(RedisTokens::new(
        Arc::new(MongoAccounts::new(mongo.clone())),
        redis.clone(),
    )));
    let events: Arc<dyn EventLog> = Arc::new(WorldEvents::new(mongo, &config.world));

    let read = components::read_model::ReadHandle::default();
    let (stop, stop_rx) = watch::channel(false);
    let mirror = runtime.spawn(
        Mirror::new(client, redis.clone(), &config.world, read.clone()).run(stop_rx.clone()),
    );
    let (presence_tx, presence_rx) = crossbeam_channel::bounded(PRESENCE_QUEUE);
    let recorder = runtime.spawn(presence::record(
        redis.clone(),
        config.world.clone(),
        presence_rx,
        stop_rx,
    ));
    let journal = StreamJournal::new(redis, StreamKeys::new(&config.world));
    let bus = Arc::new(CommandBus::new(Arc::new(journal), presence_tx));
    info!(world = %config.world, "api: commands to the Redis stream, reads from L2");

    // No World runs here: its ending never stops an api.
    let (_world_alive, world_exited) = oneshot::channel();
    let (_fatal_tx, fatal_rx) = tokio::sync::mpsc::unbounded_channel();
    let served = runtime.block_on(serve_http(
        &config,
        listener,
        net::router,
        HttpParts {
            read,
            bus,
            accounts,
            metrics,
            events,
            persist: Arc::new(PersistStatus::new("mongodb")),
            read_source: net::ReadSource::L2,
            files: Vec::new(),
            admin: None,
        },
        signals,
        world_exited,
        fatal_rx,
    ));
    let _ = stop.send(true);
    let _ = runtime.block_on(mirror);
    let _ = runtime.block_on(recorder);
    runtime.shutdown_timeout(Duration::from_secs(5));
    match served? {
        Stop::Signal(name) => {
            info!(signal = name, "shutdown complete");
            Ok(())
        }
        Stop::WorldEnded | Stop::Fatal(_) => Ok(()),
    }
}
