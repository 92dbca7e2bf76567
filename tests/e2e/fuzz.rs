//! Fuzzing of the parsers of outside data with generated inputs (proptest, a bounded number of
//! cases per run): command bodies as HTTP and the stream carry them, stream entries, and the
//! designer data files. Whatever they are given, they answer a value or an error; none panics.
//! (Store records and hot snapshots are fuzzed beside their code: `systems` persist tests and
//! `persistence` hot tests; the HTTP API by Schemathesis, tests/e2e/openapi.rs.)

use std::fs;

use components::{
    command::CommandBody,
    stream::{EntryId, parse_entry},
};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::support::{assets, copy_dir};

/// `cases` generated inputs from a fixed sequence, so a run is repeatable;
/// `TIANXIA_FUZZ_SEED` and `TIANXIA_FUZZ_CASES` explore further.
fn config(cases: u32) -> ProptestConfig {
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    ProptestConfig {
        cases: env("TIANXIA_FUZZ_CASES").map_or(cases, |n: u64| n as u32),
        rng_seed: proptest::test_runner::RngSeed::Fixed(env("TIANXIA_FUZZ_SEED").unwrap_or(15)),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const TYPES: [&str; 12] = [
    "JOIN",
    "MOVE",
    "TRAIN",
    "RECRUIT",
    "BUILD",
    "APPOINT",
    "DISMISS",
    "DECLARE_WAR",
    "MAKE_PEACE",
    "SET_TAX",
    "train",
    "SUMMON_DRAGON",
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,24}".prop_map(Value::from),
        "[a-z_]{1,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("to".to_string()),
                    Just("amount".to_string()),
                    Just("kind".to_string()),
                    Just("target".to_string()),
                    Just("position".to_string()),
                    Just("city".to_string()),
                    Just("nation".to_string()),
                    Just("rate".to_string()),
                    Just("name".to_string()),
                    Just("troop_type".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bytes of a JSON text, mostly a command payload, sometimes cut, spliced or garbled.
fn payload_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(TYPES.to_vec()),
        json_value(),
        ".{0,12}",
        prop::option::of(".{0,70}"),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..8),
        0..4u8,
    )
        .prop_map(|(kind, args, player, id, at, junk, how)| {
            let mut payload =
                json!({"player": player, "type": kind, "general": "g-x", "args": args});
            if let Some(id) = id {
                payload["id"] = json!(id);
            }
            let mut bytes = payload.to_string().into_bytes();
            let at = at.index(bytes.len() + 1);
            match how {
                0 => {}
                1 => bytes.truncate(at),
                2 => {
                    bytes.splice(at..at, junk);
                }
                _ => {
                    for (i, b) in junk.into_iter().enumerate() {
                        if let Some(byte) = bytes.get_mut(at + i) {
                            *byte = b;
                        }
                    }
                }
            };
            bytes
        })
}

proptest! {
    #![proptest_config(config(512))]

    /// Command bodies (`type` and `args` of POST /api/commands and of a stream payload).
    #[test]
    fn command_bodies_parse_or_are_refused(
        kind in prop::sample::select(TYPES.to_vec()),
        args in prop::option::of(json_value()),
    ) {
        if let Ok(body) = CommandBody::parse(kind, args) {
            // What parses is within its ranges, and keeps its shape through JSON.
            prop_assert!(body.check().is_ok());
            let again: CommandBody = serde_json::from_value(serde_json::to_value(&body).unwrap()).unwrap();
            prop_assert_eq!(again, body);
        }
    }

    /// Stream entries: any fields, any bytes, payloads cut, spliced and garbled.
    #[test]
    fn stream_entries_parse_or_go_to_the_dead_letters(
        payload in payload_bytes(),
        extra in prop::option::of(("[a-z]{1,8}", prop::collection::vec(any::<u8>(), 0..16))),
        ms in any::<u64>(),
        seq in any::<u64>(),
    ) {
        let mut fields: Vec<(&str, &[u8])> = vec![("payload", &payload)];
        if let Some((name, value)) = &extra {
            fields.push((name.as_str(), value.as_slice()));
        }
        if let Ok(command) = parse_entry(EntryId { ms, seq }, fields) {
            prop_assert!(command.body.check().is_ok());
            prop_assert!(!command.id.is_empty());
        }
    }
}

/// Designer data: one file of a copy of the shipped data cut, spliced with junk or with a
/// line repeated, then loaded as `serve` and `check` load it.
#[test]
fn designer_files_load_or_are_refused_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&assets(), dir.path());
    let files = [
        "balance.toml",
        "troops.toml",
        "positions.toml",
        "commands.toml",
        "scenarios/tiny/scenario.toml",
        "scenarios/tiny/nations.toml",
        "scenarios/tiny/cities.toml",
        "scenarios/tiny/roads.toml",
        "scenarios/tiny/generals.toml",
    ];
    let originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| fs::read(dir.path().join(f)).unwrap())
        .collect();
    let mut runner = proptest::test_runner::TestRunner::new(config(192));
    let strategy = (
        0..files.len(),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..24),
        0..4u8,
        prop_oneof![
            Just(b"= 1\n".to_vec()),
            Just(b"[[general]]\n".to_vec()),
            Just(b"leadership = -5\n".to_vec()),
            Just(b"id = \"\xff\"\n".to_vec()),
            Just(b"\"\n".to_vec()),
        ],
    );
    runner
        .run(&strategy, |(file, at, junk, how, snippet)| {
            let mut bytes = originals[file].clone();
            let at = at.index(bytes.len() + 1);
            match how {
                0 => bytes.truncate(at),
                1 => {
                    bytes.splice(at..at, junk);
                }
                2 => {
                    bytes.splice(at..at, snippet);
                }
                _ => {
                    let line_start = bytes[..at]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1);
                    let line_end = bytes[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |i| at + i + 1);
                    let line = bytes[line_start..line_end].to_vec();
                    bytes.splice(line_start..line_start, line);
                }
            }
            fs::write(dir.path().join(files[file]), &bytes).unwrap();
            let outcome = systems::assets::load(dir.path(), "tiny");
            fs::write(dir.path().join(files[file]), &originals[file]).unwrap();
            if let Err(errors) = outcome {
                prop_assert!(!errors.0.is_empty());
                for error in &errors.0 {
                    prop_assert!(!error.message.is_empty());
                }
            }
            Ok(())
        })
        .unwrap();
}
