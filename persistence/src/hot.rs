//! The hot snapshot as bytes, and when recovery uses it (docs/redis.md#snapshot-bytes,
//! docs/redis.md#when-recovery-uses-it).
//!
//! Bytes: a text header `TXH2 {lease_epoch} {epoch}\n` (so the writing script can refuse to
//! replace a newer snapshot with an older one), then the CBOR of the [`HotSnapshot`] compressed
//! as one LZ4 block with its size in front (little-endian `u32`). Decoding checks every part,
//! the header against the snapshot, and never trusts the stated size beyond what the block
//! could hold.
//!
//! Recovery uses a hot snapshot only over a MongoDB checkpoint of the same world that it is
//! newer than, by (lease epoch, epoch), and only if its events reach back to that checkpoint's:
//! then the World starts from the snapshot's state and positions and its first (full)
//! checkpoint writes the events the store does not hold yet.

use components::persist::{Checkpoint, HotSnapshot};

/// What every encoded hot snapshot starts with (the format's version is its last byte).
pub const MAGIC: &[u8; 4] = b"TXH2";
/// The largest decoded hot snapshot accepted (Redis's largest string).
pub const MAX_DECODED: usize = 512 << 20;
/// How much larger than its block a decoded snapshot may be (CBOR of game state compresses
/// far less than this).
const MAX_RATIO: usize = 64;
/// The longest header: the magic, two `u64`s, their separators.
const MAX_HEADER: usize = 4 + 2 * 21 + 1;

/// Why bytes are not a hot snapshot.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HotError {
    #[error("not a hot snapshot of this format (no {MAGIC:?} header)")]
    Format,
    #[error("the hot snapshot is corrupt: {0}")]
    Corrupt(String),
}

/// Encodes a hot snapshot.
pub fn encode(snapshot: &HotSnapshot) -> Result<Vec<u8>, HotError> {
    let mut cbor = Vec::new();
    ciborium::into_writer(snapshot, &mut cbor).map_err(|e| HotError::Corrupt(e.to_string()))?;
    let header = format!(
        "{} {} {}\n",
        String::from_utf8_lossy(MAGIC),
        snapshot.checkpoint.lease_epoch,
        snapshot.checkpoint.epoch
    );
    let mut out = Vec::with_capacity(header.len() + cbor.len() / 2);
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&lz4_flex::compress_prepend_size(&cbor));
    Ok(out)
}

/// The (lease epoch, epoch) a hot snapshot's header states, and where its block starts.
fn header(bytes: &[u8]) -> Result<((u64, u64), usize), HotError> {
    if !bytes.starts_with(MAGIC) {
        return Err(HotError::Format);
    }
    let end = bytes
        .iter()
        .take(MAX_HEADER)
        .position(|&b| b == b'\n')
        .ok_or_else(|| HotError::Corrupt("no end to the header".into()))?;
    let text = std::str::from_utf8(&bytes[MAGIC.len()..end])
        .map_err(|_| HotError::Corrupt("the header is not text".into()))?;
    let mut numbers = text.split(' ').skip(1).map(str::parse::<u64>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(lease_epoch)), Some(Ok(epoch)), None) => Ok(((lease_epoch, epoch), end + 1)),
        _ => Err(HotError::Corrupt(format!("bad header \"{text}\""))),
    }
}

/// Decodes what [`encode`] made; anything else is an error, never a panic.
pub fn decode(bytes: &[u8]) -> Result<HotSnapshot, HotError> {
    let (stamp, start) = header(bytes)?;
    let (size, block) = bytes[start..]
        .split_first_chunk::<4>()
        .ok_or_else(|| HotError::Corrupt("truncated".into()))?;
    let size = u32::from_le_bytes(*size) as usize;
    if size > MAX_DECODED || size > block.len().saturating_mul(MAX_RATIO) {
        return Err(HotError::Corrupt(format!(
            "states {size} bytes for a block of {}",
            block.len()
        )));
    }
    let cbor =
        lz4_flex::block::decompress(block, size).map_err(|e| HotError::Corrupt(e.to_string()))?;
    let snapshot: HotSnapshot =
        ciborium::from_reader(cbor.as_slice()).map_err(|e| HotError::Corrupt(e.to_string()))?;
    if stamp != (snapshot.checkpoint.lease_epoch, snapshot.checkpoint.epoch) {
        return Err(HotError::Corrupt(
            "the header does not match the snapshot".into(),
        ));
    }
    Ok(snapshot)
}

/// The hot snapshot, if recovery should start from it rather than from `checkpoint` (the
/// MongoDB checkpoint of `world`), with its events cut to those the store does not hold;
/// otherwise why not.
pub fn newer_than(
    mut hot: HotSnapshot,
    world: &str,
    checkpoint: Option<&Checkpoint>,
) -> Result<HotSnapshot, String> {
    let Some(checkpoint) = checkpoint else {
        return Err("MongoDB holds no checkpoint of this world to continue from".into());
    };
    let taken = &hot.checkpoint;
    if taken.world != world {
        return Err(format!("it is of world \"{}\"", taken.world));
    }
    if (taken.lease_epoch, taken.epoch) <= (checkpoint.lease_epoch, checkpoint.epoch) {
        return Err(format!(
            "it is not newer than the checkpoint (lease epoch {}, epoch {} against {}, {})",
            taken.lease_epoch, taken.epoch, checkpoint.lease_epoch, checkpoint.epoch
        ));
    }
    if taken.last_seq < checkpoint.last_seq
        || taken.stream_id < checkpoint.stream_id
        || taken.log_seq < checkpoint.log_seq
        || taken.game_seconds < checkpoint.game_seconds
    {
        return Err("its positions are behind the checkpoint's".into());
    }
    hot.events.retain(|e| e.seq > checkpoint.last_seq);
    let contiguous = hot
        .events
        .iter()
        .zip(checkpoint.last_seq + 1..)
        .all(|(e, seq)| e.seq == seq);
    if !contiguous || hot.events.len() as u64 != taken.last_seq - checkpoint.last_seq {
        return Err(format!(
            "its events do not run from the checkpoint's (seq {}) to its own (seq {})",
            checkpoint.last_seq, taken.last_seq
        ));
    }
    Ok(hot)
}

#[cfg(test)]
mod tests {
    use components::{
        events::{DomainEvent, EventKind},
        persist::{EntityState, PlayerState, StoredEntity},
        stream::EntryId,
    };

    use super::*;

    fn checkpoint(lease_epoch: u64, epoch: u64, last_seq: u64) -> Checkpoint {
        Checkpoint {
            world: "w".into(),
            lease_epoch,
            epoch,
            incarnation: 1,
            last_seq,
            stream_id: Some(EntryId {
                ms: 5,
                seq: last_seq,
            }),
            log_seq: 0,
            game_seconds: last_seq as i64 * 10,
            tick: 0,
            data_hash: "d".into(),
            scenario_hash: String::new(),
            scenario: "tiny".into(),
            updated_at: 0,
            sandbox: None,
            maintenance: None,
        }
    }

    fn hot(lease_epoch: u64, epoch: u64, events: std::ops::RangeInclusive<u64>) -> HotSnapshot {
        HotSnapshot {
            checkpoint: checkpoint(lease_epoch, epoch, *events.end()),
            entities: vec![StoredEntity {
                taken_at: 3,
                state: EntityState::Player(PlayerState {
                    player: "ann".into(),
                    last_seen: Some(3),
                    orders: vec![],
                }),
            }],
            events: events
                .map(|seq| DomainEvent {
                    seq,
                    kind: EventKind::MonthBegan { year: 1, month: 1 },
                    game_time: 0,
                    aggregate: "world:w".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn bytes_round_trip_and_garbage_is_an_error() {
        let snapshot = hot(2, 7, 4..=9);
        let bytes = encode(&snapshot).unwrap();
        assert!(bytes.starts_with(b"TXH2 2 7\n"));
        assert_eq!(decode(&bytes).unwrap(), snapshot);

        assert_eq!(decode(b"").unwrap_err(), HotError::Format);
        assert_eq!(decode(b"{\"json\":1}").unwrap_err(), HotError::Format);
        assert_eq!(decode(b"TXH1 2 7\n").unwrap_err(), HotError::Format);
        for bad in [
            &b"TXH2"[..],
            b"TXH2 2\n",
            b"TXH2 x 7\n",
            b"TXH2 2 7 9\n",
            b"TXH2 2 7\n",
        ] {
            assert!(matches!(decode(bad), Err(HotError::Corrupt(_))), "{bad:?}");
        }
        // A header that does not match what follows.
        let mut other = b"TXH2 3 7\n".to_vec();
        other.extend_from_slice(&bytes[b"TXH2 2 7\n".len()..]);
        assert!(matches!(decode(&other), Err(HotError::Corrupt(_))));
        // A stated size far beyond what the block could hold is refused before allocating.
        let mut huge = b"TXH2 2 7\n".to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 8]);
        assert!(matches!(decode(&huge), Err(HotError::Corrupt(_))));
        // Every truncation and a flipped byte anywhere: an error or another value, no panic.
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err());
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x5a;
            let _ = decode(&bad);
        }
    }

    #[test]
    fn recovery_prefers_a_newer_snapshot_whose_events_reach_the_checkpoint() {
        let stored = checkpoint(2, 6, 5);
        let chosen = newer_than(hot(2, 7, 4..=9), "w", Some(&stored)).unwrap();
        let seqs: Vec<u64> = chosen.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![6, 7, 8, 9], "only what the store lacks");
        // A newer lease generation wins whatever its epoch.
        assert!(newer_than(hot(3, 1, 4..=9), "w", Some(&stored)).is_ok());
        // Nothing to write: the snapshot's events are all durable already.
        let level = checkpoint(2, 6, 9);
        assert!(
            newer_than(hot(2, 7, 9..=9), "w", Some(&level))
                .unwrap()
                .events
                .is_empty()
        );
    }

    #[test]
    fn recovery_keeps_the_checkpoint_otherwise() {
        let stored = checkpoint(2, 6, 5);
        for (snapshot, world, why) in [
            (hot(2, 6, 4..=9), "w", "not newer"),
            (hot(2, 5, 4..=9), "w", "not newer"),
            (hot(1, 9, 4..=9), "w", "not newer"),
            (hot(2, 7, 7..=9), "w", "do not run"),
            (hot(2, 7, 4..=9), "v", "world"),
            (hot(2, 7, 1..=4), "w", "behind"),
        ] {
            let err = newer_than(snapshot, world, Some(&stored)).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let mut holed = hot(2, 7, 4..=9);
        holed.events.remove(3);
        assert!(
            newer_than(holed, "w", Some(&stored))
                .unwrap_err()
                .contains("do not run")
        );
        assert!(
            newer_than(hot(2, 7, 4..=9), "w", None)
                .unwrap_err()
                .contains("no checkpoint")
        );
    }
}
