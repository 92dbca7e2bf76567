//! `tianxia battle run FILE`: replays a recorded battle headless and checks it reaches the
//! recorded state hash.

use std::path::Path;

use systems::battle::record::BattleRecord;

use crate::Failure;

pub fn run(path: &Path) -> Result<(), Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot read {}: {e}", path.display())))?;
    let record = BattleRecord::parse(&text)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
    let replay = record
        .replay()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{}: {e}", path.display())))?;
    println!("battle {} (data {})", record.battle, record.data_hash);
    match replay.outcome {
        Some(outcome) => println!(
            "winner: {:?} ({:?}) after {} steps",
            outcome.winner, outcome.reason, outcome.steps
        ),
        None => println!("no winner yet after {} steps", replay.steps),
    }
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
