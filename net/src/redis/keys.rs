//! Every Redis key and channel name of tianxia (docs/redis.md#keys-at-a-glance), built here
//! and nowhere else: the command stream and its dead letters, order hashes, L2 state hashes,
//! the Pub/Sub channels, presence, tokens, the hot snapshot and the lease.

/// `cmd:game:{world}`: the command stream.
pub fn commands(world: &str) -> String {
    format!("cmd:game:{world}")
}

/// `cmd:game:{world}:dlq`: entries that are not commands.
pub fn dead_letters(world: &str) -> String {
    format!("cmd:game:{world}:dlq")
}

/// `order:{world}:{player}:` (the order id follows).
pub fn order_prefix(world: &str, player: &str) -> String {
    format!("order:{world}:{player}:")
}

/// `order:{world}:{player}:{id}`: an order's hash.
pub fn order(world: &str, player: &str, id: &str) -> String {
    format!("order:{world}:{player}:{id}")
}

/// The pattern of every order hash of a world.
pub fn orders_pattern(world: &str) -> String {
    format!("order:{world}:*")
}

/// `state:{world}:{kind}:{id}`: an L2 read model.
pub fn state(world: &str, kind: &str, id: &str) -> String {
    format!("state:{world}:{kind}:{id}")
}

/// The pattern of every L2 read model of a world.
pub fn states_pattern(world: &str) -> String {
    format!("state:{world}:*")
}

/// `channel:cache:invalidate:{world}`: each L2 round's changed keys.
pub fn invalidations(world: &str) -> String {
    format!("channel:cache:invalidate:{world}")
}

/// `channel:game:events:{world}`: live domain events.
pub fn events(world: &str) -> String {
    format!("channel:game:events:{world}")
}

/// `channel:game:battle:{world}`: battle frames.
pub fn battle_frames(world: &str) -> String {
    format!("channel:game:battle:{world}")
}

/// `presence:{world}`: players' last activity, written by api processes.
pub fn presence(world: &str) -> String {
    format!("presence:{world}")
}

/// `token:{sha256 of token}`, the hash in hex: the player a token belongs to.
pub fn token(hash: &[u8; 32]) -> String {
    let mut key = String::with_capacity(6 + 64);
    key.push_str("token:");
    for byte in hash {
        key.push_str(&format!("{byte:02x}"));
    }
    key
}

/// `tokens:{player}`: a player's token keys by when they were issued.
pub fn player_tokens(player: &str) -> String {
    format!("tokens:{player}")
}

/// `snapshot:{world}`: the hot snapshot.
pub fn snapshot(world: &str) -> String {
    format!("snapshot:{world}")
}

/// `lease:daemon:{world}`: the single writer's lease.
pub fn lease(world: &str) -> String {
    format!("lease:daemon:{world}")
}
