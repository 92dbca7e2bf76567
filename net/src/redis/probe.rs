//! Readiness probe of a Redis server: `PING` over a multiplexed connection that is opened on
//! first use and reopened after a failure.

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::http::health::{Probe, ProbeFuture};

pub struct RedisProbe {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl RedisProbe {
    /// Fails only if `url` is not a Redis URL; reachability is the probe's business.
    pub fn new(url: &str) -> Result<Self, redis::RedisError> {
        Ok(RedisProbe {
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
        })
    }

    async fn ping(&self) -> Result<(), String> {
        let mut slot = self.connection.lock().await;
        if slot.is_none() {
            let connection = self
                .client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| e.to_string())?;
            *slot = Some(connection);
        }
        let Some(connection) = slot.as_mut() else {
            return Err("no connection".into());
        };
        let outcome = redis::cmd("PING").query_async::<String>(connection).await;
        match outcome {
            Ok(_) => Ok(()),
            Err(e) => {
                *slot = None;
                Err(e.to_string())
            }
        }
    }
}

impl Probe for RedisProbe {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn check(&self) -> ProbeFuture<'_> {
        Box::pin(self.ping())
    }
}
