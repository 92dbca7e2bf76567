//! Reading designer files: locating them, parsing TOML with exact syntax-error positions,
//! hashing what is in force, and driving validation.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use components::data::{
    BalanceFile, CitiesFile, CommandsFile, FileKind, GeneralsFile, NationsFile, PositionsFile,
    RoadsFile, ScenarioFile, TroopsFile,
};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::{AssetError, AssetErrors, GameData, RulesData, Scenario, validate};

/// Directory under the assets directory that holds one directory per scenario.
pub const SCENARIOS_DIR: &str = "scenarios";

/// A file's text, kept to turn byte offsets into lines and columns.
#[derive(Clone)]
pub(super) struct Source {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of each line's start, found on first use: each error's place is then a
    /// search, not a scan of the text before it.
    line_starts: std::cell::OnceCell<Vec<usize>>,
    /// Byte offset of each value of a table's key, as `[table] key` (`[a.b] key` deeper),
    /// found on first use, for errors about a value.
    value_offsets: std::cell::OnceCell<std::collections::HashMap<String, usize>>,
    /// The bounds validation held each number of the file to, by its place in the file's
    /// shape (`["battle", "rout_morale"]`, `["general", "leadership"]`): what the file kind's
    /// schema says of it.
    bounds: std::cell::RefCell<BTreeMap<Vec<String>, Bound>>,
}

/// The range validation holds a number to, for the schemas (`tianxia schema`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub min: f64,
    /// The number must be above `min`, not equal to it.
    pub exclusive_min: bool,
    pub max: f64,
}

impl Source {
    fn new(path: PathBuf, text: String) -> Self {
        Source {
            path,
            text,
            line_starts: std::cell::OnceCell::new(),
            value_offsets: std::cell::OnceCell::new(),
            bounds: std::cell::RefCell::new(BTreeMap::new()),
        }
    }

    /// Notes that the number at `path` was held to `bound` (the loosest bound noted wins).
    pub fn note_bound(&self, path: Vec<String>, bound: Bound) {
        let mut bounds = self.bounds.borrow_mut();
        let noted = bounds.entry(path).or_insert(bound);
        if bound.min < noted.min || (bound.min == noted.min && !bound.exclusive_min) {
            noted.min = bound.min;
            noted.exclusive_min = bound.exclusive_min;
        }
        noted.max = noted.max.max(bound.max);
    }

    pub fn bounds(&self) -> BTreeMap<Vec<String>, Bound> {
        self.bounds.borrow().clone()
    }

    /// Where the value of `field` of the `[[...]]` entry starting at `span` starts, if a line
    /// of the entry (up to the next table header) sets it (`field = value`).
    pub fn field_offset(&self, span: std::ops::Range<usize>, field: &str) -> Option<usize> {
        let text = self.text.get(span.start..)?;
        let mut line_start = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            if i > 0 && line.trim_start().starts_with('[') {
                return None;
            }
            let key_at = line.len() - line.trim_start().len();
            if let Some(rest) = line[key_at..].strip_prefix(field)
                && let Some(value) = rest.trim_start().strip_prefix('=')
            {
                let value_at = line.len() - value.trim_start().len();
                return Some(span.start + line_start + value_at);
            }
            line_start += line.len();
        }
        None
    }

    /// Where the value of `entry` (`[table] key`) starts, if the file has it.
    pub fn value_offset(&self, entry: &str) -> Option<usize> {
        self.value_offsets
            .get_or_init(|| {
                let mut offsets = std::collections::HashMap::new();
                if let Ok(document) = toml::de::DeTable::parse(&self.text) {
                    collect_offsets(&mut offsets, "", document.get_ref());
                }
                offsets
            })
            .get(entry)
            .copied()
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // The last line start at or before the offset.
        let line = starts.partition_point(|&start| start <= offset);
        let line_start = starts[line - 1];
        let column = self.text[line_start..offset].chars().count() + 1;
        (line, column)
    }

    /// An error at a byte offset of this file.
    pub fn error_at(&self, offset: usize, entry: Option<String>, message: String) -> AssetError {
        let (line, column) = self.line_col(offset);
        AssetError {
            file: self.path.clone(),
            line: Some(line),
            column: Some(column),
            entry,
            message,
        }
    }

    /// An error about the file as a whole, or about an entry without a place.
    pub fn error(&self, entry: Option<String>, message: String) -> AssetError {
        AssetError {
            file: self.path.clone(),
            line: None,
            column: None,
            entry,
            message,
        }
    }
}

/// Records the start of every value under `table` (`""` at the top) by `[table] key`.
fn collect_offsets(
    offsets: &mut std::collections::HashMap<String, usize>,
    table: &str,
    values: &toml::de::DeTable<'_>,
) {
    for (key, value) in values {
        let key = key.get_ref().as_ref();
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            let path = if table.is_empty() {
                key.to_string()
            } else {
                format!("{table}.{key}")
            };
            offsets.insert(format!("[{path}]"), value.span().start);
            collect_offsets(offsets, &path, inner);
        } else if !table.is_empty() {
            offsets.insert(format!("[{table}] {key}"), value.span().start);
        }
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A parsed file with its text.
#[derive(Clone)]
pub(super) struct Parsed<T> {
    pub source: Source,
    pub value: T,
}

/// The largest designer file read: far beyond any real one.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A regular file's bytes, up to [`MAX_FILE_BYTES`]: anything else (a FIFO, a device, a
/// directory) is refused before it is opened, since reading it could wait forever.
fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(Error::new(ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(bytes)
}

fn read(path: PathBuf, kind: FileKind, errors: &mut Vec<AssetError>) -> Option<Source> {
    let describe = |message: String| AssetError {
        file: path.clone(),
        line: None,
        column: None,
        entry: None,
        message,
    };
    match read_regular(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Some(Source::new(path, text)),
            Err(e) => {
                let offset = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(&e.into_bytes()[..offset]).into_owned();
                let source = Source::new(path, text);
                errors.push(source.error_at(offset, None, "invalid UTF-8".into()));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            errors.push(describe(format!("missing {} file", kind.name())));
            None
        }
        Err(e) => {
            errors.push(describe(format!("cannot read: {e}")));
            None
        }
    }
}

fn parse<T: DeserializeOwned>(
    path: PathBuf,
    kind: FileKind,
    errors: &mut Vec<AssetError>,
) -> Option<Parsed<T>> {
    let source = read(path, kind, errors)?;
    match toml::from_str::<T>(&source.text) {
        Ok(value) => Some(Parsed { source, value }),
        Err(e) => {
            let message = format!("syntax error: {}", e.message().trim_end());
            errors.push(match e.span() {
                Some(span) => source.error_at(span.start, None, message),
                None => source.error(None, message),
            });
            None
        }
    }
}

/// The rules files, as parsed.
pub(super) struct Rules {
    pub troops: Option<Parsed<TroopsFile>>,
    pub positions: Option<Parsed<PositionsFile>>,
    pub commands: Option<Parsed<CommandsFile>>,
    pub balance: Option<Parsed<BalanceFile>>,
}

fn load_rules(dir: &Path, errors: &mut Vec<AssetError>) -> Rules {
    let path = |kind: FileKind| dir.join(kind.file_name());
    Rules {
        troops: parse(path(FileKind::Troops), FileKind::Troops, errors),
        positions: parse(path(FileKind::Positions), FileKind::Positions, errors),
        commands: parse(path(FileKind::Commands), FileKind::Commands, errors),
        balance: parse(path(FileKind::Balance), FileKind::Balance, errors),
    }
}

/// One scenario's files, as parsed.
#[derive(Clone)]
pub(super) struct ScenarioFiles {
    pub meta: Option<Parsed<ScenarioFile>>,
    pub nations: Option<Parsed<NationsFile>>,
    pub cities: Option<Parsed<CitiesFile>>,
    pub roads: Option<Parsed<RoadsFile>>,
    pub generals: Option<Parsed<GeneralsFile>>,
}

fn load_scenario(dir: &Path, errors: &mut Vec<AssetError>) -> ScenarioFiles {
    let path = |kind: FileKind| dir.join(kind.file_name());
    ScenarioFiles {
        meta: parse(path(FileKind::Scenario), FileKind::Scenario, errors),
        nations: parse(path(FileKind::Nations), FileKind::Nations, errors),
        cities: parse(path(FileKind::Cities), FileKind::Cities, errors),
        roads: parse(path(FileKind::Roads), FileKind::Roads, errors),
        generals: parse(path(FileKind::Generals), FileKind::Generals, errors),
    }
}

/// Names of the scenarios under `dir/scenarios`, sorted.
pub fn list_scenarios(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(SCENARIOS_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn unknown_scenario(dir: &Path, name: &str) -> AssetError {
    let available = list_scenarios(dir);
    AssetError {
        file: dir.join(SCENARIOS_DIR).join(name),
        line: None,
        column: None,
        entry: None,
        message: if available.is_empty() {
            format!("unknown scenario \"{name}\": no scenarios found")
        } else {
            format!(
                "unknown scenario \"{name}\" (available: {})",
                available.join(", ")
            )
        },
    }
}

fn is_scenario_name(name: &str) -> bool {
    components::ids::is_valid_id(name)
}

/// Loads and validates the rules files alone (troops, positions, commands, balance), for
/// tools that need no scenario.
pub fn load_rules_only(dir: &Path) -> Result<RulesData, AssetErrors> {
    let mut errors = Vec::new();
    let rules = load_rules(dir, &mut errors);
    validate::rules(&rules, &mut errors);
    if !errors.is_empty() {
        return Err(AssetErrors(errors));
    }
    let (Some(troops), Some(positions), Some(commands), Some(balance)) =
        (rules.troops, rules.positions, rules.commands, rules.balance)
    else {
        unreachable!("a missing rules file is reported as an error");
    };
    Ok(RulesData {
        troops: troops.value,
        positions: positions.value,
        commands: commands.value,
        balance: balance.value,
    })
}

/// Loads and validates the rules files and the scenario `scenario`.
pub fn load(dir: &Path, scenario: &str) -> Result<GameData, AssetErrors> {
    load_reloadable(dir, scenario).map(|(data, _)| data)
}

/// [`load`], with the [`Reloader`] that reloads the rules files of the same data later.
pub fn load_reloadable(dir: &Path, scenario: &str) -> Result<(GameData, Reloader), AssetErrors> {
    let mut errors = Vec::new();
    let scenario_dir = dir.join(SCENARIOS_DIR).join(scenario);
    if !is_scenario_name(scenario) || !scenario_dir.is_dir() {
        return Err(AssetErrors(vec![unknown_scenario(dir, scenario)]));
    }
    let rules = load_rules(dir, &mut errors);
    let files = load_scenario(&scenario_dir, &mut errors);
    validate::rules(&rules, &mut errors);
    validate::scenario(&files, &rules, &mut errors);
    if !errors.is_empty() {
        return Err(AssetErrors(errors));
    }
    let data = assemble(dir, scenario, &rules, files.clone());
    let reloader = Reloader {
        dir: dir.to_path_buf(),
        canonical: fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
        scenario: scenario.to_string(),
        rules_texts: rule_texts(dir, &rules),
        files,
        data_hash: data.data_hash.clone(),
    };
    Ok((data, reloader))
}

/// The rules files' texts, by their names under the assets directory.
fn rule_texts(dir: &Path, rules: &Rules) -> BTreeMap<String, String> {
    [
        rules.troops.as_ref().map(|p| &p.source),
        rules.positions.as_ref().map(|p| &p.source),
        rules.commands.as_ref().map(|p| &p.source),
        rules.balance.as_ref().map(|p| &p.source),
    ]
    .into_iter()
    .flatten()
    .map(|source| (shown_name(dir, &source.path), source.text.clone()))
    .collect()
}

fn shown_name(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// Reloads the rules files (troops, positions, commands, balance) of a running world
/// (docs/data-files.md#hot-reload): read and validated as `check` does, against the scenario
/// the world runs on. The scenario's files stay as they were read at start: they apply to
/// new worlds only.
pub struct Reloader {
    dir: PathBuf,
    /// `dir` resolved, to recognise the absolute paths a file watcher reports.
    canonical: PathBuf,
    scenario: String,
    /// The scenario's files as the world's data was built from them.
    files: ScenarioFiles,
    /// The rules files' texts of the data in force, to name what a reload changes.
    rules_texts: BTreeMap<String, String>,
    data_hash: String,
}

/// New data from a reload, and the files that changed.
#[derive(Clone, Debug)]
pub struct Reloaded {
    pub data: GameData,
    pub files: Vec<String>,
    /// The rules files' texts it was built from.
    texts: BTreeMap<String, String>,
}

impl Reloader {
    /// The directory it reads.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The hash of the data in force, as this reloader last built it.
    pub fn data_hash(&self) -> &str {
        &self.data_hash
    }

    /// Reads the rules files again: the new data if they changed and are valid, `None` if
    /// nothing changed since the data last [committed](Self::commit), or every error.
    pub fn reload(&mut self) -> Result<Option<Reloaded>, AssetErrors> {
        let mut errors = Vec::new();
        let rules = load_rules(&self.dir, &mut errors);
        validate::rules(&rules, &mut errors);
        if errors.is_empty() {
            validate::scenario(&self.files, &rules, &mut errors);
        }
        if !errors.is_empty() {
            return Err(AssetErrors(errors));
        }
        let texts = rule_texts(&self.dir, &rules);
        let files: Vec<String> = texts
            .iter()
            .filter(|(name, text)| self.rules_texts.get(*name) != Some(*text))
            .map(|(name, _)| name.clone())
            .collect();
        if files.is_empty() {
            return Ok(None);
        }
        let data = assemble(&self.dir, &self.scenario, &rules, self.files.clone());
        Ok(Some(Reloaded { data, files, texts }))
    }

    /// Counts `reloaded` as the data in force: the next reload compares the files with it.
    pub fn commit(&mut self, reloaded: &Reloaded) {
        self.rules_texts = reloaded.texts.clone();
        self.data_hash = reloaded.data.data_hash.clone();
    }

    /// The scenario's files whose text on disk differs from what the world's data was built
    /// from (or that cannot be read): such changes apply to new worlds only.
    pub fn scenario_changes(&self) -> Vec<String> {
        [
            self.files.meta.as_ref().map(|p| &p.source),
            self.files.nations.as_ref().map(|p| &p.source),
            self.files.cities.as_ref().map(|p| &p.source),
            self.files.roads.as_ref().map(|p| &p.source),
            self.files.generals.as_ref().map(|p| &p.source),
        ]
        .into_iter()
        .flatten()
        .filter(|source| {
            read_regular(&source.path).map_or(true, |bytes| bytes != source.text.as_bytes())
        })
        .map(|source| shown_name(&self.dir, &source.path))
        .collect()
    }

    /// Whether `path` (relative to the working directory or absolute, as a file watcher
    /// reports it) is one of the rules files this reloader reads.
    pub fn is_rules_file(&self, path: &Path) -> bool {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return false;
        };
        let parent = fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        parent == self.canonical && self.rules_texts.contains_key(&*name.to_string_lossy())
    }
}

/// Builds [`GameData`] from files that parsed and validated without error.
fn assemble(dir: &Path, scenario: &str, rules: &Rules, files: ScenarioFiles) -> GameData {
    let (Some(troops), Some(positions), Some(commands), Some(balance)) = (
        &rules.troops,
        &rules.positions,
        &rules.commands,
        &rules.balance,
    ) else {
        unreachable!("a missing rules file is reported as an error");
    };
    let (Some(meta), Some(nations), Some(cities), Some(roads), Some(generals)) = (
        files.meta,
        files.nations,
        files.cities,
        files.roads,
        files.generals,
    ) else {
        unreachable!("a missing scenario file is reported as an error");
    };
    let data_hash = hash_sources(
        dir,
        [
            &troops.source,
            &positions.source,
            &commands.source,
            &balance.source,
            &meta.source,
            &nations.source,
            &cities.source,
            &roads.source,
            &generals.source,
        ],
    );
    let scenario_hash = hash_sources(
        dir,
        [
            &meta.source,
            &nations.source,
            &cities.source,
            &roads.source,
            &generals.source,
        ],
    );
    GameData {
        scenario_hash,
        troops: troops.value.clone(),
        positions: positions.value.clone(),
        commands: commands.value.clone(),
        balance: balance.value.clone(),
        scenario: Scenario {
            id: scenario.to_string(),
            meta: meta.value,
            nations: nations.value,
            cities: cities.value,
            roads: roads.value,
            generals: generals.value,
        },
        data_hash,
    }
}

/// What `check` found valid: every scenario, built on the rules files.
#[derive(Clone, Debug)]
pub struct CheckReport {
    pub scenarios: Vec<GameData>,
}

/// Validates the rules files and every scenario.
pub fn check(dir: &Path) -> Result<CheckReport, AssetErrors> {
    let (rules, valid) = check_files(dir)?;
    let scenarios = valid
        .into_iter()
        .map(|(name, files)| assemble(dir, &name, &rules, files))
        .collect();
    Ok(CheckReport { scenarios })
}

/// The rules files and every scenario's files, read and validated.
pub(super) fn check_files(
    dir: &Path,
) -> Result<(Rules, Vec<(String, ScenarioFiles)>), AssetErrors> {
    let names = list_scenarios(dir);
    if names.is_empty() {
        return Err(AssetErrors(vec![AssetError {
            file: dir.join(SCENARIOS_DIR),
            line: None,
            column: None,
            entry: None,
            message: "no scenarios found".into(),
        }]));
    }
    let mut errors = Vec::new();
    let rules = load_rules(dir, &mut errors);
    validate::rules(&rules, &mut errors);
    let mut valid = Vec::new();
    for name in names {
        if !is_scenario_name(&name) {
            errors.push(AssetError {
                file: dir.join(SCENARIOS_DIR).join(&name),
                line: None,
                column: None,
                entry: None,
                message: "a scenario's directory name must be an id ([a-z0-9_-], 1-48 characters)"
                    .into(),
            });
            continue;
        }
        let files = load_scenario(&dir.join(SCENARIOS_DIR).join(&name), &mut errors);
        validate::scenario(&files, &rules, &mut errors);
        valid.push((name, files));
    }
    if !errors.is_empty() {
        return Err(AssetErrors(errors));
    }
    Ok((rules, valid))
}

fn hash_sources<'a>(dir: &Path, sources: impl IntoIterator<Item = &'a Source>) -> String {
    let mut hasher = Sha256::new();
    for source in sources {
        let name = shown_name(dir, &source.path);
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update((source.text.len() as u64).to_le_bytes());
        hasher.update(source.text.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
