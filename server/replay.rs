//! `tianxia battle run FILE [--assets DIR]` (docs/operations.md#battle-run): replays a
//! recorded battle headless and checks it reaches the recorded state hash; with `--assets`,
//! fights it again under that directory's troop types and battle numbers, says plainly how
//! they differ from the recording's, and compares the two ends.

use std::path::Path;

use serde_json::Value;
use systems::battle::{
    record::{BattleRecord, Replay},
    setup::BattleParams,
};

use crate::Failure;

pub fn run(path: &Path, assets: Option<&Path>) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    let record = BattleRecord::parse(&text)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
    let replayed = |record: &BattleRecord| {
        record
            .replay()
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))
    };
    println!("battle {} (data {})", record.battle, record.data_hash);
    if let Some(dir) = assets {
        let rules = systems::assets::load_rules_only(dir)?;
        let mut again = record.clone();
        again.setup.troops = rules.troops;
        again.setup.params = BattleParams::from_balance(&rules.balance.battle);
        let differences = differences(&record, &again);
        if !differences.is_empty() {
            println!(
                "the data under {} differs from the recording's in {} of the battle's numbers:",
                dir.display(),
                differences.len()
            );
            for difference in &differences {
                println!("  {difference}");
            }
            let missing: std::collections::BTreeSet<String> = again
                .setup
                .groups
                .iter()
                .filter(|g| again.setup.troops.get(g.troop_type).is_none())
                .map(|g| g.troop_type.to_string())
                .collect();
            if !missing.is_empty() {
                return Err(Failure::Runtime(anyhow::anyhow!(
                    "the battle cannot be fought again under {}: its groups lead {}, which its troops.toml does not define",
                    dir.display(),
                    missing.into_iter().collect::<Vec<_>>().join(", ")
                )));
            }
            println!("fighting it again under that data, to its end:");
            // The recording's step count was its data's: fight to an end under this data.
            again.steps = u32::MAX;
            let replay = replayed(&again)?;
            print_replay(&replay);
            println!(
                "the recording ended: {}; under {}: {}",
                ending(record.outcome.as_ref(), record.steps),
                dir.display(),
                ending(replay.outcome.as_ref(), replay.steps)
            );
            return Ok(());
        }
        println!(
            "the data under {} is the recording's for this battle (troop types and battle numbers)",
            dir.display()
        );
    }
    let replay = replayed(&record)?;
    print_replay(&replay);
    if replay.state_hash != record.state_hash || replay.outcome != record.outcome {
        return Err(Failure::Runtime(anyhow::anyhow!(
            "the replay diverged: state hash {} where the recording has {}",
            replay.state_hash,
            record.state_hash
        )));
    }
    println!("matches the recording");
    Ok(())
}

fn print_replay(replay: &Replay) {
    println!("{}", ending(replay.outcome.as_ref(), replay.steps));
    println!(
        "{:<24} {:>8} {:>10} {:>10} {:>10}",
        "group", "side", "soldiers", "survivors", "casualties"
    );
    for group in &replay.groups {
        println!(
            "{:<24} {:>8} {:>10} {:>10} {:>10}",
            group.id,
            format!("{:?}", group.side).to_lowercase(),
            group.initial,
            group.survivors,
            group.casualties
        );
    }
    println!("state hash: {}", replay.state_hash);
}

fn ending(outcome: Option<&systems::battle::sim::Outcome>, steps: u32) -> String {
    match outcome {
        Some(outcome) => format!(
            "winner: {:?} ({:?}) after {} steps",
            outcome.winner, outcome.reason, outcome.steps
        ),
        None => format!("no winner yet after {steps} steps"),
    }
}

/// Each number of the battle (a troop type's characteristic, a battle parameter) that
/// differs between the two records, as `what: recorded → now`.
fn differences(recorded: &BattleRecord, now: &BattleRecord) -> Vec<String> {
    let mut out = Vec::new();
    let to_json = |troops: &systems::battle::setup::BattleSetup| {
        (
            serde_json::to_value(&troops.troops).unwrap_or_default(),
            serde_json::to_value(&troops.params).unwrap_or_default(),
        )
    };
    let (troops_before, params_before) = to_json(&recorded.setup);
    let (troops_after, params_after) = to_json(&now.setup);
    compare(
        Kind::Troops,
        &troops_before,
        &troops_after,
        &mut Vec::new(),
        &mut out,
    );
    compare(
        Kind::Params,
        &params_before,
        &params_after,
        &mut Vec::new(),
        &mut out,
    );
    out
}

#[derive(Clone, Copy)]
enum Kind {
    Troops,
    Params,
}

fn compare(
    kind: Kind,
    before: &Value,
    after: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<String>,
) {
    if let (Value::Object(a), Value::Object(b)) = (before, after) {
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            path.push(key.clone());
            compare(
                kind,
                a.get(key.as_str()).unwrap_or(&Value::Null),
                b.get(key.as_str()).unwrap_or(&Value::Null),
                path,
                out,
            );
            path.pop();
        }
        return;
    }
    if before == after {
        return;
    }
    let what = match (kind, path.split_first()) {
        (Kind::Troops, Some((first, []))) => format!("troops.toml [{first}]"),
        (Kind::Troops, Some((first, rest))) => format!("troops.toml [{first}] {}", rest.join(".")),
        (Kind::Troops, None) => "troops.toml".to_string(),
        (Kind::Params, _) => format!("battle parameter {}", path.join(".")),
    };
    let shown = |value: &Value, absent: &str| match value {
        Value::Null => absent.to_string(),
        Value::Object(_) => "defined".to_string(),
        other => other.to_string(),
    };
    out.push(format!(
        "{what}: {} → {}",
        shown(before, "not in the recording"),
        shown(after, "not in the data")
    ));
}
