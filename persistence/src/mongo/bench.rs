//! What `bench flush` needs of MongoDB beside the store: the raw driver's insert of the same
//! documents (its baseline) and the removal of a benchmark's world.

use mongodb::bson::{Document, doc};

use super::{CHUNK, MongoStore, mongo, snapshots_index};
use crate::StoreError;

impl MongoStore {
    /// Inserts `docs` into `collection` (indexed as `snapshots` is) with plain unordered
    /// `insert_many` calls: the raw driver's cost, the baseline of `bench flush`.
    pub async fn insert_raw(
        &self,
        collection: &str,
        docs: Vec<Document>,
    ) -> Result<(), StoreError> {
        let collection = self.db.collection::<Document>(collection);
        // The same unique index as `snapshots`: its upkeep is the schema's, not the store's.
        collection
            .create_index(snapshots_index())
            .await
            .map_err(mongo)?;
        for chunk in docs.chunks(CHUNK) {
            collection
                .insert_many(chunk.to_vec())
                .ordered(false)
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }

    /// Removes a world's checkpoint, snapshots and events, and drops `scratch` (benchmarks
    /// clean up after themselves).
    pub async fn remove_world(&self, world: &str, scratch: &str) -> Result<(), StoreError> {
        self.checkpoints()
            .delete_one(doc! {"_id": world})
            .await
            .map_err(mongo)?;
        self.snapshots()
            .delete_many(doc! {"world": world})
            .await
            .map_err(mongo)?;
        self.events()
            .delete_many(doc! {"world": world})
            .await
            .map_err(mongo)?;
        self.db
            .collection::<Document>(scratch)
            .drop()
            .await
            .map_err(mongo)
    }
}
