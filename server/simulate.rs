//! `tianxia simulate` (docs/operations.md#simulate): headless fast-forwards of new worlds with
//! the AI on all sides, as fast as the CPU allows, to see what the designer data makes of the
//! game.
//!
//! With one seed it prints a table of the nations at the start of each game month (cities,
//! generals, troops, gold), then one JSON line with what happened and whether the world stayed
//! consistent. With a range of seeds (`--seeds`) it runs every seed on a pool of threads and
//! reports each nation's end state over the seeds; `--compare` runs the same seeds on a second
//! data directory and marks the differences larger than the seed-to-seed spread. Either way it
//! can write every month of every run as CSV (`--csv`) and draw a report as SVG (`--plot`,
//! drawn by [`crate::report_svg`]).
//!
//! The seed names the world, and battles are seeded from the world's name and their own id, so
//! one seed gives one history and another seed another, whichever thread runs it; the report
//! of a range of seeds is the same text for the same inputs.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
    time::Instant,
};

use components::{
    battle::Side,
    events::EventKind,
    read_model::ReadHandle,
    time::{GameClock, SECONDS_PER_DAY},
    world::{City, General, Nation, NationStatus, Registry},
};
use serde::{Serialize, Serializer};
use systems::{
    app::{AppSettings, build_app},
    assets::GameData,
    driver::run_headless_tick,
    event_log::Outbox,
    rules::audit,
    spawn::WorldSettings,
};

use crate::{
    Failure,
    batch::{self, round},
    report_svg::{self, BarChart, Bars, LineChart, Series},
};

/// Most seeds one `--seeds` range may name.
const MAX_SEEDS: u64 = 1_000;
/// Decimals of the numbers in the JSON summary of a range of seeds.
const JSON_DECIMALS: i32 = 3;
/// Most consistency problems kept per run, and per data set in a summary.
const MAX_PROBLEMS: usize = 100;
/// The names of the data sets: the `--assets` directory, then the `--compare` one.
const LETTERS: [&str; 2] = ["A", "B"];
/// The bars of each data set in the battles chart.
const BAR_COLORS: [&str; 2] = ["#4e79a7", "#f28e2b"];

#[derive(Clone, Debug, clap::Args)]
pub struct SimulateArgs {
    /// Game days to run.
    #[arg(long)]
    pub days: u32,
    /// Names the world; battles are seeded from it.
    #[arg(long, default_value_t = 1, conflicts_with = "seeds")]
    pub seed: u64,
    /// Run every seed of an inclusive range (`1..8`, or one seed) on all cores and report each
    /// nation's end state over the seeds instead of one history.
    #[arg(long, value_name = "A..B")]
    pub seeds: Option<String>,
    #[arg(long, default_value = "190")]
    pub scenario: String,
    /// The designer data directory.
    #[arg(long, default_value = "assets")]
    pub assets: PathBuf,
    /// Run the same seeds on this data directory too, and compare the two data sets.
    #[arg(long, value_name = "DIR", requires = "seeds")]
    pub compare: Option<PathBuf>,
    /// Game seconds each strategy tick advances the clock by.
    #[arg(long, default_value_t = 1_200)]
    pub step: i64,
    /// Draw the nations' territory, troops and gold over time and the battles per month into
    /// this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Write each nation's standing at the start of every month of every run to this CSV
    /// file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write every domain event to this file, one JSON object per line (one seed only).
    #[arg(long, conflicts_with = "seeds")]
    pub events: Option<PathBuf>,
    /// Threads each world's battles step on [default: one per core for one seed, 1 with
    /// --seeds, whose worlds run side by side]. The results are the same for any number.
    #[arg(long)]
    pub battle_threads: Option<usize>,
}

/// One nation at one moment of a run.
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

impl Happened {
    /// Every counter with its name, in the order above.
    fn counts(&self) -> [(&'static str, u64); 10] {
        [
            ("events", self.events),
            ("commands_accepted", self.commands_accepted),
            ("commands_rejected", self.commands_rejected),
            ("marches", self.marches),
            ("battles", self.battles),
            ("battles_won_by_attackers", self.battles_won_by_attackers),
            ("captures", self.captures),
            ("wars_declared", self.wars_declared),
            ("peace_made", self.peace_made),
            ("nations_destroyed", self.nations_destroyed),
        ]
    }
}

/// The JSON line of a one-seed run.
#[derive(Debug, Serialize)]
struct Report<'a> {
    simulate: &'static str,
    scenario: &'a str,
    seed: u64,
    days: u32,
    happened: &'a Happened,
    /// Standings at the end.
    standings: &'a [Standing],
    consistent: bool,
    problems: &'a [String],
    seconds: f64,
}

/// One game month of a run: the nations at its start, and the battles that ended in it.
#[derive(Clone, Debug)]
struct Month {
    /// `YEAR-MM`.
    label: String,
    standings: Vec<Standing>,
    battles: u64,
}

/// What one run (one seed on one data set) saw.
#[derive(Debug)]
struct SeedRun {
    seed: u64,
    /// The month the run started in, then every month it entered.
    months: Vec<Month>,
    /// The nations at the end of the run.
    end: Vec<Standing>,
    /// Ended battles each nation fought on either side, and those it won.
    fought: BTreeMap<String, u64>,
    won: BTreeMap<String, u64>,
    happened: Happened,
    problems: Vec<String>,
}

impl SeedRun {
    /// The standings at point `i` of the run: the start of month `i`, then the end.
    fn point(&self, i: usize) -> Option<&[Standing]> {
        match self.months.get(i) {
            Some(month) => Some(month.standings.as_slice()),
            None => (i == self.months.len()).then_some(self.end.as_slice()),
        }
    }
}

/// One data directory and its runs, ordered by seed.
struct DataSet {
    /// The directory as given on the command line.
    assets: PathBuf,
    data: Arc<GameData>,
    /// The scenario's nations in its order, with their colours.
    nations: Vec<(String, String)>,
    runs: Vec<SeedRun>,
}

impl DataSet {
    fn load(assets: &Path, scenario: &str) -> Result<DataSet, Failure> {
        let data = Arc::new(systems::assets::load(assets, scenario)?);
        let nations = data
            .scenario
            .nations
            .nation
            .iter()
            .map(|n| (n.get_ref().id.clone(), n.get_ref().color.clone()))
            .collect();
        Ok(DataSet {
            assets: assets.to_path_buf(),
            data,
            nations,
            runs: Vec::new(),
        })
    }

    fn name(&self) -> String {
        self.assets.display().to_string()
    }

    /// The directory's last component, short enough for a legend.
    fn short_name(&self) -> String {
        self.assets
            .file_name()
            .map_or_else(|| self.name(), |n| n.to_string_lossy().into_owned())
    }
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

fn month_label(world: &bevy_ecs::world::World) -> String {
    let date = world.resource::<GameClock>().date();
    format!("{}-{:02}", date.year, date.month)
}

/// `--seeds`: `A..B` (or `A..=B`), inclusive, or one seed.
fn parse_seeds(text: &str) -> Result<(u64, u64), String> {
    let text = text.trim();
    let (first, last) = match text.split_once("..") {
        Some((a, b)) => (a, b.strip_prefix('=').unwrap_or(b)),
        None => (text, text),
    };
    let number = |s: &str| {
        s.trim().parse::<u64>().map_err(|_| {
            format!("--seeds must be a range A..B of whole numbers, or one seed; not {text:?}")
        })
    };
    let (first, last) = (number(first)?, number(last)?);
    if first > last {
        return Err(format!(
            "--seeds {text} is empty: the range must go from the smaller seed to the larger"
        ));
    }
    if last - first >= MAX_SEEDS {
        return Err(format!(
            "--seeds {text} names {} seeds; at most {MAX_SEEDS}",
            u128::from(last - first) + 1
        ));
    }
    Ok((first, last))
}

pub fn run(args: &SimulateArgs) -> Result<(), Failure> {
    if args.days == 0 || args.days > 36_000 || args.step <= 0 || args.step > SECONDS_PER_DAY {
        return Err(Failure::Usage(
            "--days must be 1-36000 and --step 1-86400 game seconds".into(),
        ));
    }
    let seeds = args
        .seeds
        .as_deref()
        .map(parse_seeds)
        .transpose()
        .map_err(Failure::Usage)?;
    if args.compare.is_some() && seeds.is_none() {
        return Err(Failure::Usage("--compare needs --seeds".into()));
    }
    if args
        .battle_threads
        .is_some_and(|n| !(1..=crate::config::MAX_BATTLE_THREADS).contains(&n))
    {
        return Err(Failure::Usage(format!(
            "--battle-threads must be 1-{}",
            crate::config::MAX_BATTLE_THREADS
        )));
    }
    let mut sets = vec![DataSet::load(&args.assets, &args.scenario)?];
    if let Some(dir) = &args.compare {
        sets.push(DataSet::load(dir, &args.scenario)?);
    }
    match seeds {
        Some(range) => run_seeds(args, range, sets),
        None => run_one(args, sets),
    }
}

/// Runs one world of `seed` to the end, calling `on_month` with each month's start (and the
/// game days gone by) as it is reached, and writing every event to `events`.
fn run_world(
    data: Arc<GameData>,
    seed: u64,
    args: &SimulateArgs,
    mut events: Option<&mut dyn std::io::Write>,
    on_month: &mut dyn FnMut(&Month, i64),
) -> Result<SeedRun, Failure> {
    let mut settings = AppSettings::new(WorldSettings {
        name: format!("sim-{seed}"),
        speed: args.step as f64,
    });
    settings.battle_threads = args.battle_threads.unwrap_or(if args.seeds.is_some() {
        1
    } else {
        systems::battle::default_battle_threads()
    });
    let mut app = build_app(data, &settings, ReadHandle::default(), None);
    let world = app.world_mut();
    let total = i64::from(args.days) * SECONDS_PER_DAY;
    let first = Month {
        label: month_label(world),
        standings: standings(world),
        battles: 0,
    };
    on_month(&first, 0);
    let mut run = SeedRun {
        seed,
        months: vec![first],
        end: Vec::new(),
        fought: BTreeMap::new(),
        won: BTreeMap::new(),
        happened: Happened::default(),
        problems: Vec::new(),
    };
    let mut last_seq = 0;
    // The attacker's and the defender's nation of each battle under way.
    let mut sides: BTreeMap<String, [Option<String>; 2]> = BTreeMap::new();

    while world.resource::<GameClock>().game_seconds < total {
        let step = args
            .step
            .min(total - world.resource::<GameClock>().game_seconds);
        run_headless_tick(world, step);
        let mut new_month = false;
        for event in world.resource_mut::<Outbox>().take() {
            if event.seq != last_seq + 1 {
                run.problems
                    .push(format!("event {} follows event {last_seq}", event.seq));
            }
            last_seq = event.seq;
            run.happened.events += 1;
            if let Some(out) = events.as_deref_mut() {
                serde_json::to_writer(&mut *out, &event).map_err(|e| Failure::Runtime(e.into()))?;
                out.write_all(b"\n")
                    .map_err(|e| Failure::Runtime(e.into()))?;
            }
            let happened = &mut run.happened;
            match event.kind {
                EventKind::CommandAccepted { .. } => happened.commands_accepted += 1,
                EventKind::CommandRejected { .. } => happened.commands_rejected += 1,
                EventKind::MarchStarted { .. } => happened.marches += 1,
                EventKind::BattleStarted {
                    battle,
                    attacker,
                    defender,
                    ..
                } => {
                    sides.insert(battle, [attacker.nation, defender.nation]);
                }
                EventKind::BattleEnded { battle, winner, .. } => {
                    happened.battles += 1;
                    if winner == Side::Attacker {
                        happened.battles_won_by_attackers += 1;
                    }
                    if let Some(month) = run.months.last_mut() {
                        month.battles += 1;
                    }
                    let nations = sides.remove(&battle).unwrap_or_default();
                    for (side, nation) in Side::BOTH.into_iter().zip(nations) {
                        if let Some(nation) = nation {
                            *run.fought.entry(nation.clone()).or_default() += 1;
                            if side == winner {
                                *run.won.entry(nation).or_default() += 1;
                            }
                        }
                    }
                }
                EventKind::WarDeclared { .. } => happened.wars_declared += 1,
                EventKind::PeaceMade { .. } => happened.peace_made += 1,
                EventKind::CityCaptured { .. } => happened.captures += 1,
                EventKind::NationDestroyed { .. } => happened.nations_destroyed += 1,
                EventKind::MonthBegan { year, month } => {
                    new_month = true;
                    // Battles that end later in this tick belong to the new month.
                    run.months.push(Month {
                        label: format!("{year}-{month:02}"),
                        standings: Vec::new(),
                        battles: 0,
                    });
                }
                _ => {}
            }
        }
        if new_month {
            let found = audit::problems(world);
            if !found.is_empty() && run.problems.len() < MAX_PROBLEMS {
                run.problems.extend(found);
            }
            let now = standings(world);
            let days = world.resource::<GameClock>().game_seconds / SECONDS_PER_DAY;
            if let Some(month) = run.months.last_mut() {
                month.standings = now;
                on_month(month, days);
            }
        }
    }
    run.problems.extend(audit::problems(world));
    run.end = standings(world);
    Ok(run)
}

fn cannot_write(path: &Path, error: impl std::fmt::Display) -> Failure {
    Failure::Runtime(anyhow::anyhow!("cannot write {}: {error}", path.display()))
}

/// One seed: the month tables as the world runs, then the JSON line.
fn run_one(args: &SimulateArgs, mut sets: Vec<DataSet>) -> Result<(), Failure> {
    let started = Instant::now();
    let mut events_out = match &args.events {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| cannot_write(path, e))?,
        )),
        None => None,
    };
    let days = args.days;
    let mut on_month = |month: &Month, day: i64| {
        print_month(&month.label, &month.standings);
        if day > 0 {
            eprintln!(
                "simulate: {day} of {days} days, {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    };
    let Some(set) = sets.first_mut() else {
        return Err(Failure::Usage("no data directory".into()));
    };
    let run = run_world(
        Arc::clone(&set.data),
        args.seed,
        args,
        events_out
            .as_mut()
            .map(|out| out as &mut dyn std::io::Write),
        &mut on_month,
    )?;
    if let Some(mut out) = events_out {
        out.flush().map_err(|e| Failure::Runtime(e.into()))?;
    }
    set.runs.push(run);
    write_files(args, &sets, &format!("seed {}", args.seed))?;
    let run = &sets[0].runs[0];
    let report = Report {
        simulate: "done",
        scenario: &args.scenario,
        seed: args.seed,
        days: args.days,
        happened: &run.happened,
        standings: &run.end,
        consistent: run.problems.is_empty(),
        problems: &run.problems,
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

/// The CSV file and the SVG report, when asked for.
fn write_files(args: &SimulateArgs, sets: &[DataSet], seeds: &str) -> Result<(), Failure> {
    if let Some(path) = &args.csv {
        std::fs::write(path, csv(sets)).map_err(|e| cannot_write(path, e))?;
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "tianxia simulate · scenario {} · {} days · {seeds}",
            args.scenario, args.days
        );
        std::fs::write(path, plot(&title, sets)).map_err(|e| cannot_write(path, e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A range of seeds.

/// Every seed of `seeds` on every data set, on a pool of threads; then the end-state tables,
/// the comparison, and one JSON line.
fn run_seeds(
    args: &SimulateArgs,
    seeds: (u64, u64),
    mut sets: Vec<DataSet>,
) -> Result<(), Failure> {
    let jobs: Vec<(usize, u64)> = (0..sets.len())
        .flat_map(|set| (seeds.0..=seeds.1).map(move |seed| (set, seed)))
        .collect();
    let runs = run_pool(args, &sets, &jobs)?;
    for (&(set, _), run) in jobs.iter().zip(runs) {
        sets[set].runs.push(run);
    }
    let summaries: Vec<DatasetSummary> = sets.iter().map(summarize).collect();
    let differences = match summaries.as_slice() {
        [a, b] => differences(a, b),
        _ => Vec::new(),
    };
    write_files(args, &sets, &format!("seeds {}..{}", seeds.0, seeds.1))?;
    print!("{}", seeds_text(args, seeds, &summaries, &differences));
    let report = SeedsReport {
        simulate: "done",
        scenario: &args.scenario,
        seeds: [seeds.0, seeds.1],
        days: args.days,
        datasets: &summaries,
        differences: &differences,
    };
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| Failure::Runtime(e.into()))?
    );
    let problems: Vec<String> = summaries
        .iter()
        .flat_map(|s| s.problems.iter().map(move |p| format!("{} {p}", s.assets)))
        .take(10)
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow::anyhow!(
            "a world became inconsistent: {}",
            problems.join("; ")
        )))
    }
}

/// Runs every job (a data set and a seed) on every core ([`batch::run_all`]). The runs come
/// back in the jobs' order, whichever thread ran them and when; a failed one is named by its
/// seed and data set.
fn run_pool(
    args: &SimulateArgs,
    sets: &[DataSet],
    jobs: &[(usize, u64)],
) -> Result<Vec<SeedRun>, Failure> {
    let started = Instant::now();
    eprintln!(
        "simulate: {} runs on {} threads",
        jobs.len(),
        batch::threads(jobs.len())
    );
    batch::run_all(
        jobs.len(),
        "the simulation stopped",
        |index| {
            let (set, seed) = jobs[index];
            run_world(
                Arc::clone(&sets[set].data),
                seed,
                args,
                None,
                &mut |_, _| {},
            )
            .map_err(|e| e.to_string())
        },
        |index, count| {
            let (set, seed) = jobs[index];
            eprintln!(
                "simulate: {count} of {} runs done (seed {seed} with {}), {:.1} s",
                jobs.len(),
                sets[set].name(),
                started.elapsed().as_secs_f64()
            );
        },
    )
    .map_err(|(index, message)| {
        let (set, seed) = jobs[index];
        Failure::Runtime(anyhow::anyhow!(
            "seed {seed} with {}: {message}",
            sets[set].name()
        ))
    })
}

/// `value` with `decimals` decimals, for the text tables.
fn fixed(value: f64, decimals: usize) -> String {
    format!("{:.*}", decimals, round(value, decimals as i32))
}

/// Like [`fixed`], with a sign.
fn signed(value: f64, decimals: usize) -> String {
    format!("{:+.*}", decimals, round(value, decimals as i32))
}

fn rounded<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(round(*value, JSON_DECIMALS))
}

/// A number in the JSON summary: rounded to [`JSON_DECIMALS`].
#[derive(Clone, Copy, Debug)]
struct Rounded(f64);

impl Serialize for Rounded {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rounded(&self.0, serializer)
    }
}

/// One measure over the seeds; `sd` is the sample standard deviation (0 for one seed).
#[derive(Clone, Copy, Debug, Default, Serialize)]
struct Stats {
    #[serde(serialize_with = "rounded")]
    mean: f64,
    #[serde(serialize_with = "rounded")]
    min: f64,
    #[serde(serialize_with = "rounded")]
    median: f64,
    #[serde(serialize_with = "rounded")]
    max: f64,
    #[serde(serialize_with = "rounded")]
    sd: f64,
}

impl Stats {
    fn of(values: &[f64]) -> Stats {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return Stats::default();
        };
        let n = sorted.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if sorted.len() < 2 {
            0.0
        } else {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        };
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Stats {
            mean,
            min,
            median,
            max,
            sd,
        }
    }

    fn over<T>(items: &[T], value: impl Fn(&T) -> f64) -> Stats {
        Stats::of(&items.iter().map(value).collect::<Vec<_>>())
    }
}

fn mean_only<S: Serializer>(stats: &Stats, serializer: S) -> Result<S::Ok, S::Error> {
    rounded(&stats.mean, serializer)
}

/// One nation's end state over the seeds. A nation destroyed by the end counts as 0 cities,
/// troops and gold in its run.
#[derive(Debug, Serialize)]
struct NationSummary {
    nation: String,
    cities: Stats,
    troops: Stats,
    gold: Stats,
    /// The share of the runs in which the nation was active at the end.
    #[serde(serialize_with = "mean_only")]
    survival: Stats,
    battles_fought: Stats,
    battles_won: Stats,
}

impl NationSummary {
    /// The measures compared between data sets, with their names.
    fn measures(&self) -> [(&'static str, &Stats); 6] {
        [
            ("cities", &self.cities),
            ("troops", &self.troops),
            ("gold", &self.gold),
            ("survival", &self.survival),
            ("battles_fought", &self.battles_fought),
            ("battles_won", &self.battles_won),
        ]
    }
}

#[derive(Debug, Serialize)]
struct DatasetSummary {
    /// The data directory as given.
    assets: String,
    nations: Vec<NationSummary>,
    /// The months of the runs, and the battles that ended in each, on average over the seeds.
    months: Vec<String>,
    battles_per_month: Vec<Rounded>,
    /// What happened in a run, on average over the seeds.
    happened: BTreeMap<&'static str, Rounded>,
    consistent: bool,
    /// Consistency problems, each with its seed.
    problems: Vec<String>,
}

/// A measure whose mean differs between the data sets by more than the spread over the seeds.
#[derive(Debug, Serialize)]
struct Difference {
    nation: String,
    measure: &'static str,
    a: Rounded,
    b: Rounded,
    delta: Rounded,
    /// The larger of the two standard deviations.
    spread: Rounded,
}

/// The JSON line of a range of seeds.
#[derive(Debug, Serialize)]
struct SeedsReport<'a> {
    simulate: &'static str,
    scenario: &'a str,
    seeds: [u64; 2],
    days: u32,
    datasets: &'a [DatasetSummary],
    differences: &'a [Difference],
}

fn standing_of<'a>(standings: &'a [Standing], nation: &str) -> Option<&'a Standing> {
    standings.iter().find(|s| s.nation == nation)
}

fn summarize(set: &DataSet) -> DatasetSummary {
    let runs = &set.runs;
    let nations = set
        .nations
        .iter()
        .map(|(nation, _)| {
            let end = |run: &SeedRun, value: fn(&Standing) -> f64| {
                standing_of(&run.end, nation).map_or(0.0, value)
            };
            NationSummary {
                nation: nation.clone(),
                cities: Stats::over(runs, |r| end(r, |s| f64::from(s.cities))),
                troops: Stats::over(runs, |r| end(r, |s| s.troops as f64)),
                gold: Stats::over(runs, |r| end(r, |s| s.gold as f64)),
                survival: Stats::over(runs, |r| end(r, |_| 1.0)),
                battles_fought: Stats::over(runs, |r| {
                    r.fought.get(nation).copied().unwrap_or(0) as f64
                }),
                battles_won: Stats::over(runs, |r| r.won.get(nation).copied().unwrap_or(0) as f64),
            }
        })
        .collect();
    let months: Vec<String> = runs
        .iter()
        .max_by_key(|r| r.months.len())
        .map(|r| r.months.iter().map(|m| m.label.clone()).collect())
        .unwrap_or_default();
    let battles_per_month = (0..months.len())
        .map(|i| {
            Rounded(mean(
                runs.iter()
                    .filter_map(|r| r.months.get(i))
                    .map(|m| m.battles as f64),
            ))
        })
        .collect();
    let mut happened = BTreeMap::new();
    for (i, (name, _)) in Happened::default().counts().iter().enumerate() {
        let value = mean(runs.iter().map(|r| r.happened.counts()[i].1 as f64));
        happened.insert(*name, Rounded(value));
    }
    let problems = runs
        .iter()
        .flat_map(|r| {
            r.problems
                .iter()
                .map(move |p| format!("seed {}: {p}", r.seed))
        })
        .take(MAX_PROBLEMS)
        .collect();
    DatasetSummary {
        assets: set.name(),
        nations,
        months,
        battles_per_month,
        happened,
        consistent: runs.iter().all(|r| r.problems.is_empty()),
        problems,
    }
}

/// The mean of `values`; 0 for none.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, count) = values.fold((0.0, 0u64), |(sum, count), v| (sum + v, count + 1));
    if count == 0 { 0.0 } else { sum / count as f64 }
}

/// Whether B's mean differs from A's by more than the seed-to-seed spread: by more than the
/// larger standard deviation, or at all when both are 0.
fn exceeds_spread(a: &Stats, b: &Stats) -> bool {
    let delta = (b.mean - a.mean).abs();
    let spread = a.sd.max(b.sd);
    if spread == 0.0 {
        delta > 1e-9
    } else {
        delta > spread
    }
}

/// Every measure of every nation of both data sets that [`exceeds_spread`].
fn differences(a: &DatasetSummary, b: &DatasetSummary) -> Vec<Difference> {
    let mut found = Vec::new();
    for nation_a in &a.nations {
        let Some(nation_b) = b.nations.iter().find(|n| n.nation == nation_a.nation) else {
            continue;
        };
        for ((measure, sa), (_, sb)) in nation_a.measures().into_iter().zip(nation_b.measures()) {
            if exceeds_spread(sa, sb) {
                found.push(Difference {
                    nation: nation_a.nation.clone(),
                    measure,
                    a: Rounded(sa.mean),
                    b: Rounded(sb.mean),
                    delta: Rounded(sb.mean - sa.mean),
                    spread: Rounded(sa.sd.max(sb.sd)),
                });
            }
        }
    }
    found
}

/// The text report of a range of seeds: each data set's end state, its battles per month and
/// what happened in a run on average, then the comparison of the two data sets.
fn seeds_text(
    args: &SimulateArgs,
    seeds: (u64, u64),
    summaries: &[DatasetSummary],
    differences: &[Difference],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario {}, {} days, seeds {}..{} ({} runs per data set)",
        args.scenario,
        args.days,
        seeds.0,
        seeds.1,
        seeds.1 - seeds.0 + 1
    );
    for (letter, summary) in LETTERS.iter().zip(summaries) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{letter}: {}", summary.assets);
        end_state_table(&mut out, summary);
        let _ = writeln!(out, "  battles per month, mean over the seeds");
        for (month, battles) in summary.months.iter().zip(&summary.battles_per_month) {
            let _ = writeln!(out, "    {month:<10} {:>8}", fixed(battles.0, 2));
        }
        let happened: Vec<String> = summary
            .happened
            .iter()
            .map(|(name, value)| format!("{name} {}", fixed(value.0, 1)))
            .collect();
        let _ = writeln!(out, "  a run on average: {}", happened.join(", "));
        match summary.problems.first() {
            None => {
                let _ = writeln!(out, "  consistent: yes");
            }
            Some(first) => {
                let _ = writeln!(
                    out,
                    "  consistent: no ({} problems; the first: {first})",
                    summary.problems.len()
                );
            }
        }
    }
    if let [a, b] = summaries {
        comparison(&mut out, a, b, differences);
    }
    out
}

fn end_state_table(out: &mut String, summary: &DatasetSummary) {
    let _ = writeln!(out, "  end state over the seeds");
    let _ = writeln!(
        out,
        "  {:<16} {:>28} {:>30} {:>10} {:>9} {:>8} {:>8}",
        "", "cities", "troops", "gold", "survival", "battles", "battles"
    );
    let _ = writeln!(
        out,
        "  {:<16} {:>7}{:>7}{:>7}{:>7} {:>10}{:>10}{:>10} {:>10} {:>9} {:>8} {:>8}",
        "nation",
        "mean",
        "min",
        "median",
        "max",
        "mean",
        "min",
        "max",
        "mean",
        "share",
        "fought",
        "won"
    );
    for n in &summary.nations {
        let _ = writeln!(
            out,
            "  {:<16} {:>7}{:>7}{:>7}{:>7} {:>10}{:>10}{:>10} {:>10} {:>9} {:>8} {:>8}",
            n.nation,
            fixed(n.cities.mean, 2),
            fixed(n.cities.min, 0),
            fixed(n.cities.median, 1),
            fixed(n.cities.max, 0),
            fixed(n.troops.mean, 1),
            fixed(n.troops.min, 0),
            fixed(n.troops.max, 0),
            fixed(n.gold.mean, 1),
            format!("{}%", fixed(n.survival.mean * 100.0, 0)),
            fixed(n.battles_fought.mean, 2),
            fixed(n.battles_won.mean, 2),
        );
    }
}

fn comparison(
    out: &mut String,
    a: &DatasetSummary,
    b: &DatasetSummary,
    differences: &[Difference],
) {
    let _ = writeln!(out);
    let _ = writeln!(out, "A against B, means over the seeds");
    let _ = writeln!(
        out,
        "  {:<16} {:<15} {:>12} {:>12} {:>12} {:>10}",
        "nation", "measure", "A", "B", "B−A", "spread"
    );
    for nation_a in &a.nations {
        let Some(nation_b) = b.nations.iter().find(|n| n.nation == nation_a.nation) else {
            let _ = writeln!(out, "  {:<16} (not in B)", nation_a.nation);
            continue;
        };
        for ((measure, sa), (_, sb)) in nation_a.measures().into_iter().zip(nation_b.measures()) {
            let marked = differences
                .iter()
                .any(|d| d.nation == nation_a.nation && d.measure == measure);
            let _ = writeln!(
                out,
                "  {:<16} {:<15} {:>12} {:>12} {:>12} {:>10}{}",
                nation_a.nation,
                measure,
                fixed(sa.mean, 2),
                fixed(sb.mean, 2),
                signed(sb.mean - sa.mean, 2),
                fixed(sa.sd.max(sb.sd), 2),
                if marked { "  *" } else { "" }
            );
        }
    }
    for nation_b in &b.nations {
        if !a.nations.iter().any(|n| n.nation == nation_b.nation) {
            let _ = writeln!(out, "  {:<16} (not in A)", nation_b.nation);
        }
    }
    let _ = writeln!(
        out,
        "  {:<16} {:<15} {:>12} {:>12} {:>12}",
        "battles", "per month", "A", "B", "B−A"
    );
    let months = a.months.len().max(b.months.len());
    for i in 0..months {
        let label = a
            .months
            .get(i)
            .or_else(|| b.months.get(i))
            .map_or("", String::as_str);
        let va = a.battles_per_month.get(i).map_or(0.0, |v| v.0);
        let vb = b.battles_per_month.get(i).map_or(0.0, |v| v.0);
        let _ = writeln!(
            out,
            "  {:<16} {:<15} {:>12} {:>12} {:>12}",
            "",
            label,
            fixed(va, 2),
            fixed(vb, 2),
            signed(vb - va, 2)
        );
    }
    let _ = writeln!(
        out,
        "* the difference exceeds the seed-to-seed spread: |mean B − mean A| > max(sd A, sd B), \
         or, when both sds are 0, any difference at all (sd: the standard deviation over the \
         seeds; spread: the larger sd)"
    );
    let _ = writeln!(out, "{} differences exceed the spread", differences.len());
}

// ---------------------------------------------------------------------------------------
// Files.

/// A CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// One row per data set, seed, month and nation (every nation of the scenario, with zeros
/// once destroyed): the standing at the start of the month and the battles that ended in the
/// month; then the end of each run as month `end`, with no battles.
fn csv(sets: &[DataSet]) -> String {
    let mut out = String::from("dataset,seed,month,nation,cities,generals,troops,gold,battles\n");
    for set in sets {
        let dataset = csv_field(&set.name());
        for run in &set.runs {
            let points = run
                .months
                .iter()
                .map(|m| (m.label.as_str(), m.standings.as_slice(), Some(m.battles)))
                .chain(std::iter::once(("end", run.end.as_slice(), None)));
            for (label, standings, battles) in points {
                let battles = battles.map(|b| b.to_string()).unwrap_or_default();
                for (nation, _) in &set.nations {
                    let (cities, generals, troops, gold) = standing_of(standings, nation)
                        .map_or((0, 0, 0, 0), |s| (s.cities, s.generals, s.troops, s.gold));
                    let _ = writeln!(
                        out,
                        "{dataset},{},{},{},{cities},{generals},{troops},{gold},{battles}",
                        run.seed,
                        csv_field(label),
                        csv_field(nation)
                    );
                }
            }
        }
    }
    out
}

/// The mean over `set`'s runs of `value` of `nation` at each of `points` points (a nation
/// not active counts as 0).
fn mean_series(
    set: &DataSet,
    nation: &str,
    points: usize,
    value: fn(&Standing) -> f64,
) -> Vec<Option<f64>> {
    (0..points)
        .map(|i| {
            let values: Vec<f64> = set
                .runs
                .iter()
                .filter_map(|r| r.point(i))
                .map(|standings| standing_of(standings, nation).map_or(0.0, value))
                .collect();
            (!values.is_empty()).then(|| mean(values.into_iter()))
        })
        .collect()
}

/// The SVG report: territory, troops and gold per nation over time, and the battles per
/// month; the second data set's lines dashed and its bars beside the first's.
fn plot(title: &str, sets: &[DataSet]) -> String {
    let months: Vec<String> = sets
        .iter()
        .flat_map(|s| s.runs.iter())
        .max_by_key(|r| r.months.len())
        .map(|r| r.months.iter().map(|m| m.label.clone()).collect())
        .unwrap_or_default();
    let mut points = months.clone();
    points.push("end".into());
    let seeds = sets.first().map_or(0, |s| s.runs.len());
    let over = if seeds > 1 {
        format!(", mean over {seeds} seeds")
    } else {
        String::new()
    };
    let names: Vec<String> = LETTERS
        .iter()
        .zip(sets)
        .map(|(letter, set)| format!("{letter} ({})", set.short_name()))
        .collect();
    let styles = match names.as_slice() {
        [a, b] => Some((a.as_str(), b.as_str())),
        _ => None,
    };
    let x_title = "game month (end: the end of the run)";
    let count = points.len();
    let line = |title: &str, y_title: &str, value: fn(&Standing) -> f64| {
        let series: Vec<Series> = sets
            .iter()
            .enumerate()
            .flat_map(|(k, set)| {
                set.nations.iter().map(move |(nation, color)| Series {
                    name: nation.clone(),
                    color: color.clone(),
                    values: mean_series(set, nation, count, value),
                    dashed: k > 0,
                })
            })
            .collect();
        report_svg::line_chart(&LineChart {
            title,
            x_title,
            y_title: &format!("{y_title}{over}"),
            x_labels: &points,
            series: &series,
            line_styles: styles,
        })
    };
    let bars: Vec<Bars> = sets
        .iter()
        .enumerate()
        .map(|(k, set)| Bars {
            name: names.get(k).cloned().unwrap_or_default(),
            color: BAR_COLORS[k % BAR_COLORS.len()].into(),
            values: (0..months.len())
                .map(|i| {
                    mean(
                        set.runs
                            .iter()
                            .filter_map(|r| r.months.get(i))
                            .map(|m| m.battles as f64),
                    )
                })
                .collect(),
        })
        .collect();
    let panels = [
        line("Territory: cities per nation", "cities", |s| {
            f64::from(s.cities)
        }),
        line(
            "Troops per nation (generals' troops and garrisons)",
            "soldiers",
            |s| s.troops as f64,
        ),
        line("Gold per nation (treasury)", "gold", |s| s.gold as f64),
        report_svg::bar_chart(&BarChart {
            title: "Battles per month",
            x_title: "game month",
            y_title: &format!("battles ended{over}"),
            x_labels: &months,
            bars: &bars,
        }),
    ];
    report_svg::document(title, &panels)
}
