//! MongoDB connection (SPEC 8). For now: the client and the readiness probe; the stores of
//! snapshots, events and checkpoints build on the same client.

use std::time::Duration;

use mongodb::{Client, bson::doc, options::ClientOptions};

#[derive(Debug, thiserror::Error)]
pub enum MongoError {
    #[error("invalid MONGODB_URI: {0}")]
    Uri(String),
    #[error("MongoDB error: {0}")]
    Driver(String),
}

/// A MongoDB client that can tell whether the server answers.
#[derive(Clone)]
pub struct MongoProbe {
    client: Client,
}

impl MongoProbe {
    /// Parses `uri` and builds a client whose server selection gives up after `timeout`.
    /// Connecting is lazy: an unreachable server is reported by [`MongoProbe::ping`].
    pub async fn new(uri: &str, timeout: Duration) -> Result<Self, MongoError> {
        let mut options = ClientOptions::parse(uri)
            .await
            .map_err(|e| MongoError::Uri(e.to_string()))?;
        options.server_selection_timeout = Some(timeout);
        options.connect_timeout = Some(timeout);
        options
            .app_name
            .get_or_insert_with(|| "tianxia".to_string());
        let client =
            Client::with_options(options).map_err(|e| MongoError::Driver(e.to_string()))?;
        Ok(MongoProbe { client })
    }

    /// Runs `ping` against the server.
    pub async fn ping(&self) -> Result<(), MongoError> {
        self.client
            .database("admin")
            .run_command(doc! { "ping": 1 })
            .await
            .map(|_| ())
            .map_err(|e| MongoError::Driver(e.to_string()))
    }
}
