//! The embedded store: accounts, epochs and damaged files.

use components::{
    accounts::PlayerRecord,
    events::DomainEvent,
    persist::{Batch, Checkpoint, EntityState, StoredEntity},
};

use super::*;

fn store() -> (tempfile::TempDir, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE), true).unwrap();
    (dir, store)
}

#[test]
fn players_and_tokens_survive_reopening() {
    let (dir, store) = store();
    let alice = PlayerRecord {
        id: "alice".into(),
        name: "Alice".into(),
        password_hash: "$argon2id$x".into(),
    };
    assert!(store.create_player(&alice).unwrap());
    assert!(!store.create_player(&alice).unwrap(), "ids are unique");
    store.put_token(&[1; 32], "alice", 1_000, 0, 16).unwrap();
    drop(store);
    let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE), true).unwrap();
    assert_eq!(store.player("alice").unwrap(), Some(alice));
    assert_eq!(store.player("bob").unwrap(), None);
    assert_eq!(
        store
            .use_token(&[1; 32], 10, 1_010, 500)
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        store
            .use_token(&[1; 32], 999, 1_999, 500)
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    // Refreshed at 999: alive past the first expiry.
    assert!(
        store
            .use_token(&[1; 32], 1_500, 2_500, 500)
            .unwrap()
            .is_some()
    );
    store.revoke_token(&[1; 32]).unwrap();
    assert_eq!(store.use_token(&[1; 32], 1_600, 2_600, 500).unwrap(), None);
    assert_eq!(store.use_token(&[9; 32], 0, 10, 5).unwrap(), None);
}

#[test]
fn expired_and_excess_tokens_are_dropped() {
    let (_dir, store) = store();
    store.put_token(&[1; 32], "p", 100, 0, 2).unwrap();
    store.put_token(&[2; 32], "p", 200, 0, 2).unwrap();
    store.put_token(&[3; 32], "p", 300, 0, 2).unwrap();
    assert_eq!(
        store.use_token(&[1; 32], 50, 60, 1_000).unwrap(),
        None,
        "oldest dropped"
    );
    assert!(store.use_token(&[2; 32], 50, 60, 1_000).unwrap().is_some());
    assert!(store.use_token(&[3; 32], 50, 60, 1_000).unwrap().is_some());
    // At 250 the second has expired: a new token replaces it without dropping the third.
    store.put_token(&[4; 32], "p", 400, 250, 2).unwrap();
    assert!(
        store
            .use_token(&[3; 32], 260, 270, 1_000)
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .use_token(&[4; 32], 260, 270, 1_000)
            .unwrap()
            .is_some()
    );
}

fn epoch(
    epoch: u64,
    snapshots: Vec<(&str, Option<i64>)>,
    seqs: std::ops::RangeInclusive<u64>,
) -> Batch {
    use components::{
        events::EventKind,
        persist::{PlayerState, Snapshot, SnapshotKind},
    };
    Batch {
        checkpoint: Checkpoint {
            world: "w".into(),
            lease_epoch: 0,
            epoch,
            incarnation: 1,
            last_seq: *seqs.end(),
            stream_id: None,
            log_seq: epoch * 10,
            game_seconds: epoch as i64 * 60,
            tick: epoch,
            data_hash: "h".into(),
            scenario_hash: String::new(),
            scenario: "tiny".into(),
            updated_at: 1,
            sandbox: None,
            maintenance: None,
        },
        snapshots: snapshots
            .into_iter()
            .map(|(id, seen)| Snapshot {
                kind: SnapshotKind::Player,
                ref_id: id.into(),
                taken_at: 0,
                state: seen.map(|at| {
                    EntityState::Player(PlayerState {
                        player: id.into(),
                        last_seen: Some(at),
                        orders: vec![],
                    })
                }),
            })
            .collect(),
        events: seqs
            .map(|seq| DomainEvent {
                seq,
                kind: EventKind::MonthBegan { year: 1, month: 1 },
                game_time: seq as i64,
                aggregate: if seq % 2 == 0 {
                    "world:w".into()
                } else {
                    "general:g".into()
                },
            })
            .collect(),
        full: epoch == 1,
    }
}

#[test]
fn epochs_commit_and_load_back_newest_state_per_entity() {
    let (dir, store) = store();
    assert!(store.recover_world("w").unwrap().world.is_none());
    store
        .commit_epoch(&epoch(1, vec![("a", Some(1)), ("b", Some(1))], 1..=4), 0)
        .unwrap();
    store
        .commit_epoch(
            &epoch(2, vec![("a", Some(2)), ("b", None), ("c", Some(2))], 5..=6),
            0,
        )
        .unwrap();
    drop(store);
    let store = EmbeddedStore::open_file(&dir.path().join(EmbeddedStore::FILE), true).unwrap();
    let recovery = store.recover_world("w").unwrap();
    assert_eq!(recovery.incarnation, 2, "one above the first recovery's");
    let recovered = recovery.world.unwrap();
    assert_eq!(recovered.checkpoint.epoch, 2);
    assert_eq!(recovered.checkpoint.log_seq, 20);
    let seen: Vec<(String, Option<i64>)> = recovered
        .entities
        .iter()
        .map(|e| match e {
            StoredEntity {
                state: EntityState::Player(p),
                ..
            } => (p.player.clone(), p.last_seen),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, vec![("a".into(), Some(2)), ("c".into(), Some(2))]);
    assert!(store.load_world("other", 1).unwrap().is_none());

    let seqs = |events: Vec<DomainEvent>| events.iter().map(|e| e.seq).collect::<Vec<_>>();
    assert_eq!(
        seqs(store.events("w", 0, 100, None).unwrap()),
        (1..=6).collect::<Vec<_>>()
    );
    assert_eq!(seqs(store.events("w", 2, 2, None).unwrap()), vec![3, 4]);
    assert_eq!(
        seqs(store.events("w", 0, 100, Some("world:w")).unwrap()),
        vec![2, 4, 6]
    );
    assert_eq!(
        seqs(store.events("w", 4, 100, Some("general:g")).unwrap()),
        vec![5]
    );
    assert!(store.events("w", 6, 100, None).unwrap().is_empty());
    assert!(store.events("other", 0, 100, None).unwrap().is_empty());

    // Old events beyond the kept number go at the next checkpoint, index and all.
    store.commit_epoch(&epoch(3, vec![], 7..=8), 3).unwrap();
    assert_eq!(
        seqs(store.events("w", 0, 100, None).unwrap()),
        vec![6, 7, 8]
    );
    assert_eq!(
        seqs(store.events("w", 0, 100, Some("world:w")).unwrap()),
        vec![6, 8]
    );
}

#[test]
fn a_damaged_record_is_an_error_naming_the_file() {
    let (_dir, store) = store();
    store
        .commit_epoch(&epoch(1, vec![("a", Some(1))], 1..=1), 0)
        .unwrap();
    let txn = store.db.begin_write().unwrap();
    {
        let mut table = txn.open_table(SNAPSHOTS).unwrap();
        table
            .insert(("w", "player", "a"), (0, 1, b"{not json".as_slice()))
            .unwrap();
    }
    txn.commit().unwrap();
    let error = store.load_world("w", 2).unwrap_err().to_string();
    assert!(
        error.contains(&store.path().display().to_string()),
        "{error}"
    );
    assert!(error.contains("snapshot of player a"), "{error}");
}

#[test]
fn a_damaged_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(EmbeddedStore::FILE);
    std::fs::write(&path, b"this is not a database, it is a letter").unwrap();
    let error = EmbeddedStore::open_file(&path, true)
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains(&path.display().to_string()),
        "{error}"
    );
}
