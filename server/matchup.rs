//! `tianxia battle matchup` (docs/operations.md#battle-matchup): how the troop types of the
//! designer data fare against each other. Every ordered pair of types (an attacking type
//! against a defending type) fights in four situations — equal numbers and two to one, in the
//! open field and against city walls — over a range of seeds, each battle to its end, and the
//! report gives per pair and situation the attacker's win rate, each side's losses and how
//! long the battles took to be decided.
//!
//! The battles run on a pool of threads; each one's seed comes from its seed number and its
//! pair, and the results are gathered in a fixed order, so the same inputs print the same
//! text whichever thread fought which battle. Progress goes to stderr.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Instant,
};

use components::{
    battle::{EndReason, Side},
    data::TroopsFile,
    world::TroopType,
};
use serde::Serialize;
use systems::battle::{
    setup::{BattleParams, BattleSetup, GroupSetup, GroupStats, STEPS_PER_SECOND},
    sim::{BattleSim, seed_from},
};

use crate::{
    Failure,
    batch::{self, round},
    report_svg::{self, Axis},
};

/// Most unit bodies a side may have (`--units`).
const MAX_UNITS: u32 = 2_000;
/// Most seeds per pair and situation (`--seeds`).
const MAX_SEEDS: u32 = 1_000;
/// Wall level of the situations against walls.
const WALL_LEVEL: u32 = 3;
/// Leadership, training and morale of both sides' groups.
const STATS: (u8, u8, u8) = (70, 60, 80);
/// Decimals of the shares in the JSON line and the CSV file.
const SHARE_DECIMALS: i32 = 3;
/// Decimals of the battle seconds in the JSON line and the CSV file.
const SECONDS_DECIMALS: i32 = 2;

#[derive(Clone, Debug, clap::Args)]
pub struct MatchupArgs {
    /// Unit bodies a side (1-2000); in the two-to-one situations the attacker has twice as
    /// many.
    #[arg(long, default_value_t = 60)]
    pub units: u32,
    /// Battles per pair and situation, with seeds 1 to K (1-1000).
    #[arg(long, default_value_t = 8)]
    pub seeds: u32,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: PathBuf,
    /// Write one row per pair and situation to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Draw the attacker's win rate as one heat map per situation into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// One of the four situations every pair fights in.
#[derive(Clone, Copy, Debug)]
struct Situation {
    /// Its name in the JSON line and the CSV file.
    key: &'static str,
    /// Its heading in the tables and the plot.
    title: &'static str,
    /// Attacking units per defending unit.
    ratio: u32,
    /// Wall level in front of the defender; 0 for the open field.
    walls: u32,
}

static SITUATIONS: [Situation; 4] = [
    Situation {
        key: "equal_open",
        title: "Equal numbers, open field",
        ratio: 1,
        walls: 0,
    },
    Situation {
        key: "two_to_one_open",
        title: "2:1, open field",
        ratio: 2,
        walls: 0,
    },
    Situation {
        key: "equal_walls",
        title: "Equal numbers, against level-3 walls",
        ratio: 1,
        walls: WALL_LEVEL,
    },
    Situation {
        key: "two_to_one_walls",
        title: "2:1, against level-3 walls",
        ratio: 2,
        walls: WALL_LEVEL,
    },
];

/// One pair in one situation.
#[derive(Clone, Copy, Debug)]
struct CellKey {
    situation: usize,
    attacker: TroopType,
    defender: TroopType,
}

impl CellKey {
    fn situation(&self) -> &'static Situation {
        &SITUATIONS[self.situation]
    }

    /// The pair and situation, as errors name them.
    fn describe(&self) -> String {
        format!(
            "{} attacking {} ({})",
            self.attacker,
            self.defender,
            self.situation().title
        )
    }
}

/// What one battle came to.
#[derive(Clone, Copy, Debug)]
struct Fought {
    attacker_won: bool,
    time_limit: bool,
    /// Each side's casualties as a share of the soldiers it brought.
    attacker_loss: f64,
    defender_loss: f64,
    /// Battle seconds until the outcome.
    seconds: f64,
}

/// One pair in one situation over the seeds: a row of the CSV file and of the JSON line.
#[derive(Clone, Debug, Serialize)]
struct Cell {
    situation: &'static str,
    attacker: String,
    defender: String,
    /// Share of the seeds the attacker won.
    attacker_win_rate: f64,
    /// Mean casualties of each side, as a share of the soldiers it brought.
    attacker_casualties: f64,
    defender_casualties: f64,
    /// Mean battle seconds until the outcome (the time limit for a battle that reached it).
    seconds: f64,
    /// Battles that reached the time limit, where the defender holds.
    time_limit_ends: u32,
}

#[derive(Serialize)]
struct Report<'a> {
    matchup: &'static str,
    units: u32,
    seeds: u32,
    /// See [`battle_data_hash()`].
    battle_data_hash: &'a str,
    types: Vec<String>,
    cells: &'a [Cell],
}

/// What the battles of a matchup are made of besides their pairs, situations and seeds.
struct Inputs {
    params: BattleParams,
    troops: TroopsFile,
    units: u32,
}

impl Inputs {
    /// The setup of the battle of `key` with seed number `seed`: one group a side.
    fn setup(&self, key: &CellKey, seed: u32) -> BattleSetup {
        let situation = key.situation();
        let soldiers = |units: u32| units * self.params.soldiers_per_unit;
        let group = |id: &str, side: Side, troop_type: TroopType, soldiers: u32| GroupSetup {
            id: id.into(),
            side,
            troop_type,
            soldiers,
            leadership: STATS.0,
            training: STATS.1,
            morale: STATS.2,
            join_step: 0,
        };
        BattleSetup {
            // The seed depends on the pair, not on the situation: the four situations of a
            // pair differ in their numbers and walls only.
            seed: seed_from(&[
                "matchup",
                key.attacker.name(),
                key.defender.name(),
                &seed.to_string(),
            ]),
            walls: situation.walls,
            params: self.params.clone(),
            troops: self.troops.clone(),
            groups: vec![
                group(
                    "attacker",
                    Side::Attacker,
                    key.attacker,
                    soldiers(self.units * situation.ratio),
                ),
                group(
                    "defender",
                    Side::Defender,
                    key.defender,
                    soldiers(self.units),
                ),
            ],
        }
    }

    /// Checks that the battles of `key` can be fought, as the simulation checks a setup.
    fn check(&self, key: &CellKey) -> Result<(), String> {
        let setup = self.setup(key, 1);
        setup
            .validate()
            .and_then(|()| {
                setup
                    .groups
                    .iter()
                    .try_for_each(|g| GroupStats::new(g, &setup.troops, &setup.params).map(drop))
            })
            .map_err(|e| format!("{}: {e}", key.describe()))
    }

    /// Fights the battle of `key` with seed number `seed` to its end (errors name neither:
    /// [`run_pool`] does).
    fn fight(&self, key: &CellKey, seed: u32) -> Result<Fought, String> {
        let mut sim = BattleSim::new(self.setup(key, seed)).map_err(|e| e.to_string())?;
        while sim.outcome().is_none() {
            sim.step();
        }
        let outcome = sim
            .outcome()
            .ok_or_else(|| "the battle did not end".to_string())?;
        let mut loss = [0.0; 2];
        for side in Side::BOTH {
            let (initial, casualties) = sim
                .group_results()
                .iter()
                .filter(|g| g.side == side)
                .fold((0u64, 0u64), |(i, c), g| {
                    (i + u64::from(g.initial), c + u64::from(g.casualties))
                });
            loss[side.index()] = if initial == 0 {
                0.0
            } else {
                casualties as f64 / initial as f64
            };
        }
        Ok(Fought {
            attacker_won: outcome.winner == Side::Attacker,
            time_limit: outcome.reason == EndReason::TimeLimit,
            attacker_loss: loss[Side::Attacker.index()],
            defender_loss: loss[Side::Defender.index()],
            seconds: f64::from(outcome.steps) / f64::from(STEPS_PER_SECOND),
        })
    }
}

pub fn run(args: &MatchupArgs) -> Result<(), Failure> {
    if !(1..=MAX_UNITS).contains(&args.units) {
        return Err(Failure::Usage(format!(
            "--units must be 1-{MAX_UNITS} (unit bodies a side), not {}",
            args.units
        )));
    }
    if !(1..=MAX_SEEDS).contains(&args.seeds) {
        return Err(Failure::Usage(format!(
            "--seeds must be 1-{MAX_SEEDS} (battles per pair and situation), not {}",
            args.seeds
        )));
    }
    let rules = systems::assets::load_rules_only(&args.assets)?;
    let params = BattleParams::from_balance(&rules.balance.battle);
    let most = u64::from(args.units)
        * u64::from(SITUATIONS.iter().map(|s| s.ratio).max().unwrap_or(1))
        * u64::from(params.soldiers_per_unit);
    if most > u64::from(u32::MAX) {
        return Err(Failure::Usage(format!(
            "--units {} makes {most} soldiers a side at [battle] soldiers_per_unit = {}: at \
             most {} fit a battle",
            args.units,
            params.soldiers_per_unit,
            u32::MAX
        )));
    }
    let inputs = Inputs {
        params,
        troops: rules.troops,
        units: args.units,
    };
    let types: Vec<TroopType> = inputs.troops.types().collect();
    let hash = battle_data_hash(&inputs)?;

    let mut keys: Vec<CellKey> = Vec::new();
    for situation in 0..SITUATIONS.len() {
        for &attacker in &types {
            for &defender in &types {
                keys.push(CellKey {
                    situation,
                    attacker,
                    defender,
                });
            }
        }
    }
    for key in &keys {
        inputs
            .check(key)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    }
    let fought = run_pool(&inputs, &keys, args.seeds)
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("{e}")))?;
    let cells: Vec<Cell> = keys
        .iter()
        .zip(fought.chunks(args.seeds as usize))
        .map(|(key, battles)| summarize(key, battles))
        .collect();

    let names: Vec<String> = types.iter().map(|t| t.name().to_string()).collect();
    print!("{}", tables(&inputs, args.seeds, &names, &cells));
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(&cells)).map_err(|e| cannot_write(path, e))?;
    }
    if let Some(path) = &args.plot {
        std::fs::write(path, plot(&inputs, args.seeds, &names, &cells))
            .map_err(|e| cannot_write(path, e))?;
    }
    let report = Report {
        matchup: "done",
        units: args.units,
        seeds: args.seeds,
        battle_data_hash: &hash,
        types: names,
        cells: &cells,
    };
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| Failure::Runtime(e.into()))?
    );
    Ok(())
}

/// A hash of what the battles depend on besides their pairs, situations and seeds: the troop
/// types and the `[battle]` rules, as the battles use them (FNV-1a of their JSON, 16 hex
/// digits). Data that fights the same gives the same hash, whatever its comments.
fn battle_data_hash(inputs: &Inputs) -> Result<String, Failure> {
    let json = serde_json::to_string(&(&inputs.troops, &inputs.params))
        .map_err(|e| Failure::Runtime(e.into()))?;
    Ok(format!("{:016x}", seed_from(&[json.as_str()])))
}

fn cannot_write(path: &Path, error: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("cannot write {}: {error}", path.display()))
}

/// Fights every battle (each pair and situation with each seed) on every core
/// ([`batch::run_all`]). The results come back in the order of `keys`, then of the seeds,
/// whichever thread fought them. An error stops the run; the earliest (in that order) is
/// returned, naming the pair, the situation and the seed.
fn run_pool(inputs: &Inputs, keys: &[CellKey], seeds: u32) -> Result<Vec<Fought>, String> {
    let per_cell = seeds as usize;
    let total = keys.len() * per_cell;
    let started = Instant::now();
    let report_every = (total / 20).max(1);
    eprintln!(
        "matchup: {total} battles ({} pairs and situations, {seeds} seeds each) on {} \
         threads",
        keys.len(),
        batch::threads(total)
    );
    let battle = |index: usize| (&keys[index / per_cell], (index % per_cell) as u32 + 1);
    batch::run_all(
        total,
        "the battle stopped",
        |index| {
            let (key, seed) = battle(index);
            inputs.fight(key, seed)
        },
        |_, count| {
            if count.is_multiple_of(report_every) || count == total {
                eprintln!(
                    "matchup: {count} of {total} battles done, {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )
    .map_err(|(index, e)| {
        let (key, seed) = battle(index);
        format!("{}, seed {seed}: {e}", key.describe())
    })
}

/// The means over a pair's battles in one situation, in seed order.
fn summarize(key: &CellKey, battles: &[Fought]) -> Cell {
    Cell {
        situation: key.situation().key,
        attacker: key.attacker.name().to_string(),
        defender: key.defender.name().to_string(),
        attacker_win_rate: round(
            mean_of(battles, |b| if b.attacker_won { 1.0 } else { 0.0 }),
            SHARE_DECIMALS,
        ),
        attacker_casualties: round(mean_of(battles, |b| b.attacker_loss), SHARE_DECIMALS),
        defender_casualties: round(mean_of(battles, |b| b.defender_loss), SHARE_DECIMALS),
        seconds: round(mean_of(battles, |b| b.seconds), SECONDS_DECIMALS),
        time_limit_ends: battles.iter().filter(|b| b.time_limit).count() as u32,
    }
}

/// The mean of `value` over `battles`, summed in their order.
fn mean_of(battles: &[Fought], value: fn(&Fought) -> f64) -> f64 {
    battles.iter().map(value).sum::<f64>() / battles.len().max(1) as f64
}

/// A share as a whole percentage.
fn percent(share: f64) -> String {
    format!("{:.0}%", round(share * 100.0, 0))
}

/// The text of a table cell: `win% (attacker loss% / defender loss%, seconds)`.
fn cell_text(cell: &Cell) -> String {
    format!(
        "{} ({} / {}, {:.1}s)",
        percent(cell.attacker_win_rate),
        percent(cell.attacker_casualties),
        percent(cell.defender_casualties),
        round(cell.seconds, 1)
    )
}

/// The cells of situation `s`, row by row (attacker), column by column (defender).
fn situation_cells(cells: &[Cell], s: usize, types: usize) -> &[Cell] {
    let per = types * types;
    &cells[s * per..(s + 1) * per]
}

/// Soldiers as `6,000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One table per situation: a row per attacking type, a column per defending type.
fn tables(inputs: &Inputs, seeds: u32, names: &[String], cells: &[Cell]) -> String {
    let per_unit = u64::from(inputs.params.soldiers_per_unit);
    let units = u64::from(inputs.units);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "troop matchups: {} types, {} unit{} a side ({} soldiers), {seeds} seed{} per pair and \
         situation",
        names.len(),
        units,
        if units == 1 { "" } else { "s" },
        thousands(units * per_unit),
        if seeds == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        out,
        "each cell: attacker wins % (attacker losses % / defender losses %, mean battle \
         seconds to the outcome)"
    );
    let corner = "attacker \\ defender";
    let n = names.len();
    for (s, situation) in SITUATIONS.iter().enumerate() {
        let these = situation_cells(cells, s, n);
        let texts: Vec<String> = these.iter().map(cell_text).collect();
        let first = names
            .iter()
            .map(|name| name.len())
            .chain([corner.len()])
            .max()
            .unwrap_or(0);
        let widths: Vec<usize> = (0..n)
            .map(|c| {
                (0..n)
                    .map(|r| texts[r * n + c].len())
                    .chain([names[c].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let attackers = units * u64::from(situation.ratio);
        let _ = writeln!(
            out,
            "\n{}: {} attacking units ({} soldiers) against {} ({} soldiers){}",
            situation.title,
            attackers,
            thousands(attackers * per_unit),
            units,
            thousands(units * per_unit),
            if situation.walls > 0 {
                " behind the walls"
            } else {
                ""
            }
        );
        let mut line = format!("{corner:<first$}");
        for (name, width) in names.iter().zip(&widths) {
            let _ = write!(line, "  {name:<width$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
        for (r, name) in names.iter().enumerate() {
            let mut line = format!("{name:<first$}");
            for (c, width) in widths.iter().enumerate() {
                let _ = write!(line, "  {:<width$}", texts[r * n + c]);
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        let limited: Vec<String> = these
            .iter()
            .filter(|c| c.time_limit_ends > 0)
            .map(|c| {
                format!(
                    "{} attacking {} {} of {seeds}",
                    c.attacker, c.defender, c.time_limit_ends
                )
            })
            .collect();
        if limited.is_empty() {
            let _ = writeln!(out, "no battle reached the time limit");
        } else {
            let _ = writeln!(
                out,
                "reached the time limit (the defender holds): {}",
                limited.join(", ")
            );
        }
    }
    out
}

/// One row per pair and situation, the numbers as in the JSON line.
fn csv(cells: &[Cell]) -> String {
    let mut out = String::from(
        "situation,attacker,defender,attacker_win_rate,attacker_casualties,\
         defender_casualties,seconds,time_limit_ends\n",
    );
    for c in cells {
        // Situation keys and type names are plain words: nothing to quote.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            c.situation,
            c.attacker,
            c.defender,
            c.attacker_win_rate,
            c.attacker_casualties,
            c.defender_casualties,
            c.seconds,
            c.time_limit_ends
        );
    }
    out
}

/// The attacker's win rate as a heat map per situation, on one 0–100% scale so the panels
/// compare.
fn plot(inputs: &Inputs, seeds: u32, names: &[String], cells: &[Cell]) -> String {
    let n = names.len();
    let panels: Vec<report_svg::Panel> = SITUATIONS
        .iter()
        .enumerate()
        .map(|(s, situation)| {
            let these = situation_cells(cells, s, n);
            let values: Vec<Vec<Option<f64>>> = (0..n)
                .map(|r| {
                    (0..n)
                        .map(|c| Some(round(these[r * n + c].attacker_win_rate * 100.0, 1)))
                        .collect()
                })
                .collect();
            report_svg::heat_map_panel(
                situation.title,
                Axis {
                    title: "attacker",
                    labels: names,
                },
                Axis {
                    title: "defender",
                    labels: names,
                },
                &values,
                0.0,
                100.0,
                "%",
            )
        })
        .collect();
    let title = format!(
        "Troop matchups: attacker win rate ({} units a side, {seeds} seed{})",
        inputs.units,
        if seeds == 1 { "" } else { "s" }
    );
    report_svg::document(&title, &panels)
}
