//! `tianxia check` as a designer uses it: each kind of mistake in a copy of the designer data
//! is reported with its exact file and line (or entry) and exit status 1; every error is
//! listed, not only the first.

use std::{fs, process::Output};

use crate::support::{assets, copy_dir, run};

/// Every kind of designer data file, as `tianxia schema` names them.
const FILE_KINDS: [&str; 9] = [
    "troops",
    "positions",
    "commands",
    "balance",
    "scenario",
    "nations",
    "cities",
    "roads",
    "generals",
];

/// A copy of the shipped designer data that a test may break.
struct Assets {
    dir: tempfile::TempDir,
}

impl Assets {
    fn copy() -> Assets {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&assets(), dir.path());
        Assets { dir }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.path().join(file)
    }

    /// Replaces the first `from` in `file` by `to`; returns the file's new text.
    fn edit(&self, file: &str, from: &str, to: &str) -> String {
        let path = self.path(file);
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} does not contain {from:?}");
        let text = text.replacen(from, to, 1);
        fs::write(&path, &text).unwrap();
        text
    }

    fn check(&self) -> Output {
        run(
            &["check", "--assets", self.dir.path().to_str().unwrap()],
            &[],
        )
    }

    /// `path:` as errors print it.
    fn shown(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }
}

/// 1-based line of the `[[...]]` header of the entry that contains `needle`.
fn entry_line(text: &str, needle: &str) -> usize {
    let at = text.find(needle).unwrap_or_else(|| panic!("no {needle:?}"));
    text[..at]
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("[["))
        .last()
        .unwrap()
        .0
        + 1
}

fn errors(output: &Output) -> Vec<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<String> = stderr.lines().map(str::to_owned).collect();
    let (summary, errors) = lines.split_last().expect("a summary line");
    assert!(summary.ends_with("in the designer data"), "{stderr}");
    assert_eq!(
        summary.split(' ').next().unwrap(),
        errors.len().to_string(),
        "{stderr}"
    );
    errors.to_vec()
}

#[test]
fn the_shipped_designer_data_is_valid() {
    let output = run(&["check", "--assets", assets().to_str().unwrap()], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("scenario 190:") && stdout.contains("scenario tiny:"),
        "{stdout}"
    );
    assert!(stdout.contains("all designer data is valid"), "{stdout}");
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let assets = Assets::copy();
    let file = "scenarios/tiny/cities.toml";
    let text = assets.edit(file, "population = 80000\n", "population = 80 000\n");
    let line = text
        .lines()
        .position(|l| l == "population = 80 000")
        .unwrap()
        + 1;
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let errors = errors(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let prefix = format!("{}:{line}:14: syntax error: ", assets.shown(file));
    assert!(
        errors[0].starts_with(&prefix),
        "{:?} does not start with {prefix:?}",
        errors[0]
    );
}

/// Each kind of semantic error, alone in an otherwise valid copy: (file, from, to, the entry
/// whose header line is reported or `None` for a whole-file error, expected message after
/// `file:line:column: `).
fn semantic_cases() -> Vec<(
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
)> {
    vec![
        (
            "scenarios/tiny/roads.toml",
            "to = \"hill_fort\"",
            "to = \"nowhere\"",
            Some("to = \"nowhere\""),
            "road north_gate-nowhere: unknown city \"nowhere\"",
        ),
        (
            "scenarios/tiny/cities.toml",
            "[[city]]\nid = \"river_town\"",
            "[[city]]\nid = \"crossroads\"\nname = \"Crossroads Again\"\nx = 1.0\ny = 1.0\npopulation = 1\nagriculture = 1\ncommerce = 1\ndefense = 1\nwalls = 0\ngold = 0\nrice = 0\ngarrison = 0\n\n[[city]]\nid = \"river_town\"",
            Some("name = \"Crossroads Again\""),
            "city \"crossroads\": duplicate id \"crossroads\"",
        ),
        (
            "scenarios/tiny/generals.toml",
            "leadership = 80\n",
            "leadership = 140\n",
            Some("leadership = 140"),
            "general \"bei_wang\": leadership 140 is outside 1–100",
        ),
        (
            "scenarios/tiny/generals.toml",
            "city = \"crossroads\"",
            "city = \"atlantis\"",
            Some("city = \"atlantis\""),
            "general \"you_xia\": city \"atlantis\" does not exist",
        ),
        (
            "scenarios/tiny/nations.toml",
            "capital = \"east_port\"",
            "capital = \"hill_fort\"",
            Some("capital = \"hill_fort\""),
            "nation \"east\": capital \"hill_fort\" is not owned by this nation (owner: north)",
        ),
        (
            "scenarios/tiny/roads.toml",
            "[[road]]\nfrom = \"crossroads\"\nto = \"river_town\"\ndistance = 150\n",
            "",
            None,
            "the road graph is disconnected: 1 city cannot be reached from \"north_gate\": river_town",
        ),
    ]
}

fn expected(assets: &Assets, file: &str, text: &str, entry: Option<&str>, message: &str) -> String {
    match entry {
        // A range error points at the value itself.
        Some(needle) if message.contains(" is outside ") => {
            let at = text.find(needle).unwrap() + needle.find("= ").unwrap() + 2;
            let line = text[..at].matches('\n').count() + 1;
            let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{}:{line}:{column}: {message}", assets.shown(file))
        }
        Some(needle) => format!(
            "{}:{}:1: {message}",
            assets.shown(file),
            entry_line(text, needle)
        ),
        None => format!("{}: {message}", assets.shown(file)),
    }
}

#[test]
fn each_kind_of_semantic_error_names_file_and_entry() {
    for (file, from, to, entry, message) in semantic_cases() {
        let assets = Assets::copy();
        if entry.is_none() {
            // Cut the second road to river_town too, so the city is unreachable.
            assets.edit(
                file,
                "[[road]]\nfrom = \"east_port\"\nto = \"river_town\"\ndistance = 120\n",
                "",
            );
        }
        let text = assets.edit(file, from, to);
        let output = assets.check();
        assert_eq!(output.status.code(), Some(1), "{message}");
        assert_eq!(
            errors(&output),
            vec![expected(&assets, file, &text, entry, message)]
        );
    }
}

#[test]
fn no_card_may_issue_the_sandboxs_edits() {
    let assets = Assets::copy();
    assets.edit(
        "positions.toml",
        "may_issue = [\"APPOINT\",",
        "may_issue = [\"SANDBOX\", \"APPOINT\",",
    );
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let errors = errors(&output);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("positions.toml")
            && errors[0].contains("[emperor] may_issue")
            && errors[0].contains("SANDBOX is not a command of the game"),
        "{errors:?}"
    );
}

#[test]
fn every_reference_to_an_unknown_troop_type_or_card_is_caught() {
    let assets = Assets::copy();
    let generals = "scenarios/tiny/generals.toml";
    let text = assets.edit(
        generals,
        "troop_type = \"cavalry\"",
        "troop_type = \"pikeman\"",
    );
    let pikeman = expected(
        &assets,
        generals,
        &text,
        Some("troop_type = \"pikeman\""),
        "general \"bei_wang\": troop type \"pikeman\" is not in troops.toml",
    );
    let text = assets.edit(
        generals,
        "position = \"chancellor\"",
        "position = \"marshal\"",
    );
    let marshal = expected(
        &assets,
        generals,
        &text,
        Some("position = \"marshal\""),
        "general \"bei_mou\": position \"marshal\" is not a card of positions.toml",
    );
    assets.edit(
        "balance.toml",
        "\ntroop_type = \"infantry\"",
        "\ntroop_type = \"lancer\"",
    );
    assets.edit(
        "troops.toml",
        "cooldown = 1.0\n",
        "cooldown = 1.0\ncounters = { cavalry = 1.5, elephant = 2.0 }\n",
    );
    assets.edit(
        "positions.toml",
        "appoints = [\"chancellor\",",
        "appoints = [\"marshal\", \"chancellor\",",
    );
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let listed = errors(&output);
    assert!(listed.contains(&pikeman), "{pikeman:?} not in {listed:#?}");
    assert!(listed.contains(&marshal), "{marshal:?} not in {listed:#?}");
    // Rules files name the value's line and column.
    let at = |file: &str, needle: &str| {
        let text = fs::read_to_string(assets.path(file)).unwrap();
        let offset = text.find(needle).unwrap();
        let line = text[..offset].matches('\n').count() + 1;
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let column = text[line_start..offset].chars().count() + 1;
        format!("{}:{line}:{column}", assets.shown(file))
    };
    for wanted in [
        format!(
            "{}: [join] troop_type: no troop type \"lancer\" in troops.toml",
            at("balance.toml", "\"lancer\"")
        ),
        format!(
            "{}: [infantry.counters] elephant: no troop type \"elephant\" in troops.toml",
            at("troops.toml", "2.0 }")
        ),
        format!(
            "{}: [emperor] appoints: no card \"marshal\" in positions.toml",
            at("positions.toml", "[\"marshal\"")
        ),
    ] {
        assert!(listed.contains(&wanted), "{wanted:?} not in {listed:#?}");
    }
    assert_eq!(listed.len(), 5, "{listed:#?}");
}

#[test]
fn every_error_is_listed_at_once() {
    let assets = Assets::copy();
    let mut wanted = Vec::new();
    for (file, from, to, entry, message) in semantic_cases().into_iter().filter(|c| c.3.is_some()) {
        assets.edit(file, from, to);
        wanted.push((file, entry, message));
    }
    assets.edit("balance.toml", "harvest_month = 7", "harvest_month = 13");
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let listed = errors(&output);
    for (file, entry, message) in wanted {
        let text = fs::read_to_string(assets.path(file)).unwrap();
        let line = expected(&assets, file, &text, entry, message);
        assert!(listed.contains(&line), "{line:?} not in {listed:#?}");
    }
    // A range error names the value's line and column.
    let text = fs::read_to_string(assets.path("balance.toml")).unwrap();
    let line = text[..text.find("harvest_month = 13").unwrap()]
        .lines()
        .count()
        + 1;
    let balance = format!(
        "{}:{line}:17: [economy] harvest_month: 13 is outside 1–12",
        assets.shown("balance.toml")
    );
    assert!(listed.contains(&balance), "{listed:#?}");
}

#[test]
fn schema_prints_a_json_schema_per_file_kind() {
    let output = run(&["schema"], &[]);
    assert!(output.status.success());
    let all: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    for kind in FILE_KINDS {
        assert!(all[kind]["$schema"].is_string(), "no schema for {kind}");
    }
    let generals = run(&["schema", "generals"], &[]);
    let generals: serde_json::Value = serde_json::from_slice(&generals.stdout).unwrap();
    assert_eq!(
        generals["$defs"]["GeneralDef"]["additionalProperties"],
        false
    );
    let unknown = run(&["schema", "dragons"], &[]);
    assert_eq!(unknown.status.code(), Some(2));
}

/// The schemas say what `check` holds the data to: a range `check` refuses outside is the
/// schema's minimum and maximum, a reference to a troop type or card is one of those the data
/// defines, and the schemas kept in `assets/schemas` (for editors) are what the data gives.
#[test]
fn the_schemas_hold_the_checkers_ranges_and_names() {
    let schema = |kind: &str, assets: &std::path::Path| -> serde_json::Value {
        let out = run(&["schema", kind, "--assets", assets.to_str().unwrap()], &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let shipped = assets();
    let balance = schema("balance", &shipped);
    let harvest = &balance["$defs"]["EconomyBalance"]["properties"]["harvest_month"];
    assert_eq!(
        (&harvest["minimum"], &harvest["maximum"]),
        (&1.into(), &12.into())
    );
    let rout = &balance["$defs"]["BattleBalance"]["properties"]["rout_morale"];
    assert_eq!(
        (&rout["minimum"], &rout["maximum"]),
        (&0.0.into(), &100.0.into())
    );
    let generals = schema("generals", &shipped);
    let leadership = &generals["$defs"]["GeneralDef"]["properties"]["leadership"];
    assert_eq!(
        (&leadership["minimum"], &leadership["maximum"]),
        (&1.into(), &100.into())
    );
    assert_eq!(
        generals["$defs"]["TroopType"]["enum"],
        serde_json::json!(["archer", "cavalry", "infantry"])
    );
    let troops = schema("troops", &shipped);
    let mass = &troops["$defs"]["TroopSpec"]["properties"]["mass"];
    assert_eq!(
        (&mass["minimum"], &mass["maximum"]),
        (&0.01.into(), &1e6.into())
    );
    // Required fields are required.
    assert!(
        generals["$defs"]["GeneralDef"]["required"]
            .as_array()
            .unwrap()
            .contains(&"leadership".into())
    );

    // A new troop type is a name the other files may use.
    let copy = Assets::copy();
    let text = fs::read_to_string(copy.path("troops.toml")).unwrap();
    fs::write(
        copy.path("troops.toml"),
        format!("{text}{}", crate::support::SPEARMAN),
    )
    .unwrap();
    let generals = schema("generals", copy.dir.path());
    assert_eq!(
        generals["$defs"]["TroopType"]["enum"],
        serde_json::json!(["archer", "cavalry", "infantry", "spearman"])
    );

    // Schemas are made from valid data only.
    copy.edit("balance.toml", "harvest_month = 7", "harvest_month = 13");
    let refused = run(
        &["schema", "--assets", copy.dir.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));

    // The schemas kept for editors are current.
    let out = tempfile::tempdir().unwrap();
    let written = run(&["schema", "--out", out.path().to_str().unwrap()], &[]);
    assert!(written.status.success());
    for kind in FILE_KINDS {
        let name = format!("{kind}.schema.json");
        let kept = fs::read_to_string(shipped.join("schemas").join(&name)).unwrap();
        let made = fs::read_to_string(out.path().join(&name)).unwrap();
        assert!(
            kept == made,
            "assets/schemas/{name} is stale: run tianxia schema --out assets/schemas"
        );
    }
}

#[test]
fn a_fifo_in_place_of_a_data_file_is_refused_not_waited_on() {
    let assets = Assets::copy();
    let balance = assets.path("balance.toml");
    fs::remove_file(&balance).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&balance)
        .status()
        .unwrap();
    assert!(made.success());
    // Reading a FIFO without a writer would wait forever; `run` would kill it and fail.
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&assets.shown("balance.toml")) && stderr.contains("not a regular file"),
        "{stderr}"
    );
}

#[test]
fn tens_of_thousands_of_errors_are_each_listed_with_their_line() {
    let assets = Assets::copy();
    let path = assets.path("scenarios/tiny/generals.toml");
    let mut text = fs::read_to_string(&path).unwrap();
    for i in 0..20_000 {
        text.push_str(&format!(
            "\n[[general]]\nid = \"extra_{i}\"\nname = \"Extra\"\nnation = \"north\"\ncity = \"north_gate\"\nleadership = 500\nstrength = 50\nintelligence = 50\npolitics = 50\ncharm = 50\ntroops = 100\ntroop_type = \"infantry\"\ntraining = 50\nmorale = 50\n"
        ));
    }
    fs::write(&path, &text).unwrap();
    let output = assets.check();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The last entry's error names a line of that entry.
    let line_of = |needle: &str| text[..text.rfind(needle).unwrap()].matches('\n').count() + 1;
    let (header, leadership) = (line_of("[[general]]"), line_of("leadership = 500"));
    let shown = format!("{}:", assets.shown("scenarios/tiny/generals.toml"));
    let reported = stderr
        .lines()
        .find(|l| l.contains("general \"extra_19999\": leadership 500"))
        .and_then(|l| l.strip_prefix(&shown))
        .and_then(|rest| rest.split(':').next())
        .and_then(|n| n.parse::<usize>().ok())
        .expect("the last entry's error with its line");
    assert!(
        (header..=leadership).contains(&reported),
        "line {reported} is not within {header}-{leadership}"
    );
    assert!(
        stderr.lines().filter(|l| l.contains("leadership")).count() >= 20_000,
        "every error is listed"
    );
}
