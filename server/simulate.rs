//! `tianxia simulate` (docs/operations.md#subcommands): a headless fast-forward of a new world
//! with the AI on all sides, as fast as the CPU allows. Prints a table of the nations at the
//! start of each game month (cities, generals, troops, gold), then one JSON line with what
//! happened and whether the world stayed consistent; optionally draws the nations' territory
//! over time as SVG.
//!
//! The seed names the world, and battles are seeded from the world's name and their own id, so
//! one seed gives one history and another seed another.

use std::{collections::BTreeMap, fmt::Write as _, path::PathBuf, sync::Arc, time::Instant};

use components::{
    battle::Side,
    events::EventKind,
    read_model::ReadHandle,
    time::{GameClock, SECONDS_PER_DAY},
    world::{City, General, Nation, NationStatus, Registry},
};
use serde::Serialize;
use systems::{
    app::{AppSettings, build_app},
    driver::run_headless_tick,
    event_log::Outbox,
    rules::audit,
    spawn::WorldSettings,
};

use crate::Failure;

#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Game days to run.
    #[arg(long)]
    pub days: u32,
    /// Names the world; battles are seeded from it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, default_value = "190")]
    pub scenario: String,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: PathBuf,
    /// Game seconds each strategy tick advances the clock by.
    #[arg(long, default_value_t = 1_200)]
    pub step: i64,
    /// Draw each nation's cities over time into this SVG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Write every domain event to this file, one JSON object per line.
    #[arg(long)]
    pub events: Option<PathBuf>,
}

/// One nation at the start of a month.
#[derive(Clone, Debug, Serialize)]
struct Standing {
    nation: String,
    cities: u32,
    generals: u32,
    troops: u64,
    gold: i64,
}

#[derive(Debug, Default, Serialize)]
struct Happened {
    events: u64,
    commands_accepted: u64,
    commands_rejected: u64,
    marches: u64,
    battles: u64,
    /// Battles the attackers won.
    battles_won_by_attackers: u64,
    captures: u64,
    wars_declared: u64,
    peace_made: u64,
    nations_destroyed: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    simulate: &'static str,
    scenario: String,
    seed: u64,
    days: u32,
    happened: Happened,
    /// Standings at the end.
    standings: Vec<Standing>,
    consistent: bool,
    problems: Vec<String>,
    seconds: f64,
}

fn standings(world: &bevy_ecs::world::World) -> Vec<Standing> {
    let registry = world.resource::<Registry>();
    let mut by: BTreeMap<String, Standing> = BTreeMap::new();
    for entity in registry.nations.values() {
        if let Some(n) = world.get::<Nation>(*entity)
            && n.status == NationStatus::Active
        {
            by.insert(
                n.id.clone(),
                Standing {
                    nation: n.id.clone(),
                    cities: 0,
                    generals: 0,
                    troops: 0,
                    gold: n.gold,
                },
            );
        }
    }
    for entity in registry.cities.values() {
        if let Some(c) = world.get::<City>(*entity)
            && let Some(s) = c.owner.as_ref().and_then(|o| by.get_mut(o))
        {
            s.cities += 1;
            s.troops += u64::from(c.garrison);
        }
    }
    for entity in registry.generals.values() {
        if let Some(g) = world.get::<General>(*entity)
            && let Some(s) = g.nation.as_ref().and_then(|n| by.get_mut(n))
        {
            s.generals += 1;
            s.troops += u64::from(g.troops);
        }
    }
    let mut list: Vec<Standing> = by.into_values().collect();
    list.sort_by(|a, b| b.cities.cmp(&a.cities).then(a.nation.cmp(&b.nation)));
    list
}

pub fn run(args: &SimulateArgs) -> Result<(), Failure> {
    if args.days == 0 || args.days > 36_000 || args.step <= 0 || args.step > SECONDS_PER_DAY {
        return Err(Failure::Usage(
            "--days must be 1-36000 and --step 1-86400 game seconds".into(),
        ));
    }
    let data = Arc::new(systems::assets::load(&args.assets, &args.scenario)?);
    let colors: BTreeMap<String, String> = data
        .scenario
        .nations
        .nation
        .iter()
        .map(|n| (n.get_ref().id.clone(), n.get_ref().color.clone()))
        .collect();
    let settings = AppSettings::new(WorldSettings {
        name: format!("sim-{}", args.seed),
        speed: args.step as f64,
    });
    let mut app = build_app(data, &settings, ReadHandle::default(), None);
    let world = app.world_mut();
    let started = Instant::now();
    let total = i64::from(args.days) * SECONDS_PER_DAY;
    let mut happened = Happened::default();
    let mut last_seq = 0;
    let mut problems = Vec::new();
    let mut months: Vec<(String, Vec<Standing>)> = Vec::new();
    let mut events_out = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| {
                Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?,
        )),
        None => None,
    };
    let label = |world: &bevy_ecs::world::World| {
        let date = world.resource::<GameClock>().date();
        format!("{}-{:02}", date.year, date.month)
    };
    months.push((label(world), standings(world)));
    print_month(&months[0].0, &months[0].1);

    while world.resource::<GameClock>().game_seconds < total {
        let step = args
            .step
            .min(total - world.resource::<GameClock>().game_seconds);
        run_headless_tick(world, step);
        let mut new_month = false;
        for event in world.resource_mut::<Outbox>().take() {
            if event.seq != last_seq + 1 {
                problems.push(format!("event {} follows event {last_seq}", event.seq));
            }
            last_seq = event.seq;
            happened.events += 1;
            if let Some(out) = &mut events_out {
                use std::io::Write as _;
                serde_json::to_writer(&mut *out, &event).map_err(|e| Failure::Runtime(e.into()))?;
                out.write_all(b"\n")
                    .map_err(|e| Failure::Runtime(e.into()))?;
            }
            match event.kind {
                EventKind::CommandAccepted { .. } => happened.commands_accepted += 1,
                EventKind::CommandRejected { .. } => happened.commands_rejected += 1,
                EventKind::MarchStarted { .. } => happened.marches += 1,
                EventKind::BattleEnded { winner, .. } => {
                    happened.battles += 1;
                    if winner == Side::Attacker {
                        happened.battles_won_by_attackers += 1;
                    }
                }
                EventKind::WarDeclared { .. } => happened.wars_declared += 1,
                EventKind::PeaceMade { .. } => happened.peace_made += 1,
                EventKind::CityCaptured { .. } => happened.captures += 1,
                EventKind::NationDestroyed { .. } => happened.nations_destroyed += 1,
                EventKind::MonthBegan { .. } => new_month = true,
                _ => {}
            }
        }
        if new_month {
            let found = audit::problems(world);
            if !found.is_empty() && problems.len() < 100 {
                problems.extend(found);
            }
            let row = (label(world), standings(world));
            print_month(&row.0, &row.1);
            eprintln!(
                "simulate: {} of {} days, {:.1} s",
                world.resource::<GameClock>().game_seconds / SECONDS_PER_DAY,
                args.days,
                started.elapsed().as_secs_f64()
            );
            months.push(row);
        }
    }
    if let Some(mut out) = events_out {
        use std::io::Write as _;
        out.flush().map_err(|e| Failure::Runtime(e.into()))?;
    }
    problems.extend(audit::problems(world));
    let end = standings(world);
    if let Some(path) = &args.plot {
        months.push((label(world), standings(world)));
        std::fs::write(path, plot(&months, &colors)).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display()))
        })?;
    }
    let report = Report {
        simulate: "done",
        scenario: args.scenario.clone(),
        seed: args.seed,
        days: args.days,
        happened,
        standings: end,
        consistent: problems.is_empty(),
        problems,
        seconds: started.elapsed().as_secs_f64(),
    };
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| Failure::Runtime(e.into()))?
    );
    if report.consistent {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "the world became inconsistent: {}",
            report.problems.join("; ")
        )))
    }
}

fn print_month(label: &str, standings: &[Standing]) {
    println!("{label}");
    println!(
        "  {:<16} {:>6} {:>8} {:>9} {:>9}",
        "nation", "cities", "generals", "troops", "gold"
    );
    for s in standings {
        println!(
            "  {:<16} {:>6} {:>8} {:>9} {:>9}",
            s.nation, s.cities, s.generals, s.troops, s.gold
        );
    }
}

/// A stacked area chart of each nation's cities, month by month.
fn plot(months: &[(String, Vec<Standing>)], colors: &BTreeMap<String, String>) -> String {
    let (width, height, margin) = (900.0, 500.0, 40.0);
    let total: u32 = months
        .iter()
        .map(|(_, s)| s.iter().map(|n| n.cities).sum::<u32>())
        .max()
        .unwrap_or(1)
        .max(1);
    let x =
        |i: usize| margin + (width - 2.0 * margin) * i as f64 / (months.len().max(2) - 1) as f64;
    let y = |v: f64| height - margin - (height - 2.0 * margin) * v / f64::from(total);
    let nations: Vec<&String> = colors.keys().collect();
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="white"/>"#
    );
    let mut base = vec![0.0f64; months.len()];
    for nation in nations {
        let counts: Vec<f64> = months
            .iter()
            .map(|(_, s)| {
                s.iter()
                    .find(|n| &n.nation == nation)
                    .map_or(0.0, |n| f64::from(n.cities))
            })
            .collect();
        if counts.iter().all(|c| *c == 0.0) {
            continue;
        }
        let mut points: Vec<String> = (0..months.len())
            .map(|i| format!("{:.1},{:.1}", x(i), y(base[i] + counts[i])))
            .collect();
        points.extend(
            (0..months.len())
                .rev()
                .map(|i| format!("{:.1},{:.1}", x(i), y(base[i]))),
        );
        let color = colors.get(nation).map_or("#888888", String::as_str);
        let _ = writeln!(
            svg,
            r#"<polygon points="{}" fill="{color}" stroke="white" stroke-width="0.5"><title>{nation}</title></polygon>"#,
            points.join(" ")
        );
        for (b, c) in base.iter_mut().zip(&counts) {
            *b += c;
        }
    }
    if let (Some(first), Some(last)) = (months.first(), months.last()) {
        let _ = writeln!(
            svg,
            r#"<text x="{margin}" y="{}" font-size="12">{}</text><text x="{}" y="{}" font-size="12" text-anchor="end">{}</text>"#,
            height - 12.0,
            first.0,
            width - margin,
            height - 12.0,
            last.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}
