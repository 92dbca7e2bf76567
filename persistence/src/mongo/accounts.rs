//! Accounts in MongoDB (docs/storage.md#players-and-tokens): `players` (unique `name`) and
//! `tokens` (hashed, with a TTL index on `expires_at`); [`MongoAccounts`] serves them to the
//! HTTP side.

use std::sync::Arc;

use components::accounts::PlayerRecord;
use mongodb::bson::{self, doc};

use super::{MongoStore, hex, int, is_duplicate, mongo};
use crate::{
    StoreError, StoreFuture,
    accounts::{PlayerTables, StoreAccounts},
    tokens::{TokenUse, token_use, tokens_to_drop},
};

impl MongoStore {
    /// Stores a new player (`players`); `false` if the id or the name is taken.
    pub async fn create_player(&self, player: &PlayerRecord) -> Result<bool, StoreError> {
        let doc = doc! {
            "_id": &player.id,
            "name": &player.name,
            "password_hash": &player.password_hash,
            "created_at": bson::DateTime::now(),
        };
        match self.players().insert_one(doc).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate(&e) => Ok(false),
            Err(e) => Err(mongo(e)),
        }
    }

    pub async fn player(&self, id: &str) -> Result<Option<PlayerRecord>, StoreError> {
        let found = self
            .players()
            .find_one(doc! {"_id": id})
            .await
            .map_err(mongo)?;
        Ok(found.map(|doc| PlayerRecord {
            id: id.to_string(),
            name: doc.get_str("name").unwrap_or_default().to_string(),
            password_hash: doc.get_str("password_hash").unwrap_or_default().to_string(),
        }))
    }

    /// Stores a token hash (`tokens`, with a TTL index on `expires_at`) for `player` until
    /// `expires` (Unix ms); drops the player's expired tokens and its oldest beyond `keep`.
    pub async fn put_token(
        &self,
        hash: &[u8; 32],
        player: &str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> Result<(), StoreError> {
        let id = hex(hash);
        self.tokens()
            .replace_one(
                doc! {"_id": &id},
                doc! {
                    "_id": &id,
                    "player": player,
                    "expires_at": bson::DateTime::from_millis(expires as i64),
                    "expires_ms": expires as i64,
                },
            )
            .upsert(true)
            .await
            .map_err(mongo)?;
        let mut cursor = self
            .tokens()
            .find(doc! {"player": player})
            .await
            .map_err(mongo)?;
        let mut held = Vec::new();
        while cursor.advance().await.map_err(mongo)? {
            let doc = cursor.deserialize_current().map_err(mongo)?;
            let token = doc.get_str("_id").unwrap_or_default().to_string();
            held.push((int(&doc, "expires_ms").max(0) as u64, token));
        }
        // The new token is among those held.
        let drop = tokens_to_drop(held, now, keep.max(1));
        if !drop.is_empty() {
            self.tokens()
                .delete_many(doc! {"_id": {"$in": drop}})
                .await
                .map_err(mongo)?;
        }
        Ok(())
    }

    /// The player a token hash belongs to if it has not expired by `now`; its expiry moves
    /// to `refresh_to` when that is at least `refresh_after` ms later.
    pub async fn use_token(
        &self,
        hash: &[u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> Result<Option<String>, StoreError> {
        let id = hex(hash);
        let Some(doc) = self
            .tokens()
            .find_one(doc! {"_id": &id})
            .await
            .map_err(mongo)?
        else {
            return Ok(None);
        };
        let expires = int(&doc, "expires_ms").max(0) as u64;
        match token_use(expires, now, refresh_to, refresh_after) {
            TokenUse::Expired => {
                self.revoke_token(hash).await?;
                return Ok(None);
            }
            TokenUse::Valid(Some(refresh_to)) => {
                self.tokens()
                    .update_one(
                        doc! {"_id": &id},
                        doc! {"$set": {
                            "expires_at": bson::DateTime::from_millis(refresh_to as i64),
                            "expires_ms": refresh_to as i64,
                        }},
                    )
                    .await
                    .map_err(mongo)?;
            }
            TokenUse::Valid(None) => {}
        }
        Ok(doc.get_str("player").ok().map(str::to_string))
    }

    pub async fn revoke_token(&self, hash: &[u8; 32]) -> Result<(), StoreError> {
        self.tokens()
            .delete_one(doc! {"_id": hex(hash)})
            .await
            .map_err(mongo)?;
        Ok(())
    }
}

impl PlayerTables for Arc<MongoStore> {
    fn create_player(&self, player: PlayerRecord) -> StoreFuture<'_, bool> {
        Box::pin(async move { MongoStore::create_player(self, &player).await })
    }

    fn player<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<PlayerRecord>> {
        Box::pin(MongoStore::player(self, id))
    }

    fn put_token<'a>(
        &'a self,
        hash: [u8; 32],
        player: &'a str,
        expires: u64,
        now: u64,
        keep: usize,
    ) -> StoreFuture<'a, ()> {
        Box::pin(
            async move { MongoStore::put_token(self, &hash, player, expires, now, keep).await },
        )
    }

    fn use_token(
        &self,
        hash: [u8; 32],
        now: u64,
        refresh_to: u64,
        refresh_after: u64,
    ) -> StoreFuture<'_, Option<String>> {
        Box::pin(
            async move { MongoStore::use_token(self, &hash, now, refresh_to, refresh_after).await },
        )
    }

    fn revoke_token(&self, hash: [u8; 32]) -> StoreFuture<'_, ()> {
        Box::pin(async move { MongoStore::revoke_token(self, &hash).await })
    }
}

/// MongoDB's accounts, as the HTTP side's [`components::accounts::AccountStore`].
pub type MongoAccounts = StoreAccounts<Arc<MongoStore>>;
