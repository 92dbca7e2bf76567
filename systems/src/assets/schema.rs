//! The JSON Schemas of the designer files as `tianxia schema` gives them
//! (docs/data-files.md#json-schemas): the shape of each file kind, with the ranges `check`
//! holds each number to and the troop types and cards the data defines, so an editor flags
//! what `check` would refuse while the designer types.
//!
//! The ranges are not written twice: validating the data notes the bound of every number it
//! checks (`Source::note_bound`), and the schema takes them from there.

use std::{collections::BTreeMap, path::Path};

use components::data::FileKind;
use serde_json::{Value, json};

use super::{
    AssetErrors,
    load::{Bound, check_files},
};

/// Largest integer a JSON number holds exactly: a bound beyond it says nothing an editor can
/// use, and is left out.
const EXACT: f64 = 9_007_199_254_740_992.0;

/// Every file kind's schema, made from the valid data under `dir`.
pub fn schemas(dir: &Path) -> Result<Vec<(FileKind, Value)>, AssetErrors> {
    let (rules, scenarios) = check_files(dir)?;
    let mut bounds: BTreeMap<FileKind, BTreeMap<Vec<String>, Bound>> = BTreeMap::new();
    let mut add = |kind: FileKind, noted: BTreeMap<Vec<String>, Bound>| {
        let into = bounds.entry(kind).or_default();
        for (path, bound) in noted {
            let merged = into.entry(path).or_insert(bound);
            *merged = loosest(*merged, bound);
        }
    };
    let sources = [
        (FileKind::Troops, rules.troops.as_ref().map(|p| &p.source)),
        (
            FileKind::Positions,
            rules.positions.as_ref().map(|p| &p.source),
        ),
        (
            FileKind::Commands,
            rules.commands.as_ref().map(|p| &p.source),
        ),
        (FileKind::Balance, rules.balance.as_ref().map(|p| &p.source)),
    ];
    for (kind, source) in sources {
        if let Some(source) = source {
            add(kind, source.bounds());
        }
    }
    for (_, files) in &scenarios {
        let sources = [
            (FileKind::Scenario, files.meta.as_ref().map(|p| &p.source)),
            (FileKind::Nations, files.nations.as_ref().map(|p| &p.source)),
            (FileKind::Cities, files.cities.as_ref().map(|p| &p.source)),
            (FileKind::Roads, files.roads.as_ref().map(|p| &p.source)),
            (
                FileKind::Generals,
                files.generals.as_ref().map(|p| &p.source),
            ),
        ];
        for (kind, source) in sources {
            if let Some(source) = source {
                add(kind, source.bounds());
            }
        }
    }
    let troop_types: Vec<&str> = rules
        .troops
        .as_ref()
        .map(|t| t.value.0.keys().map(|k| k.name()).collect())
        .unwrap_or_default();
    let cards: Vec<&str> = rules
        .positions
        .as_ref()
        .map(|p| p.value.0.keys().map(|k| k.name()).collect())
        .unwrap_or_default();
    Ok(FileKind::ALL
        .iter()
        .map(|kind| {
            let mut schema = serde_json::to_value(kind.schema()).unwrap_or_default();
            for (path, bound) in bounds.get(kind).into_iter().flatten() {
                set_bound(&mut schema, path, *bound);
            }
            // A file that defines the names takes new ones; the others may only name those.
            if *kind != FileKind::Troops {
                name_enum(&mut schema, "TroopType", &troop_types);
            }
            if *kind != FileKind::Positions {
                name_enum(&mut schema, "PositionKind", &cards);
            }
            (*kind, schema)
        })
        .collect())
}

fn loosest(a: Bound, b: Bound) -> Bound {
    let (min, exclusive_min) = if a.min < b.min || (a.min == b.min && !a.exclusive_min) {
        (a.min, a.exclusive_min)
    } else {
        (b.min, b.exclusive_min)
    };
    Bound {
        min,
        exclusive_min,
        max: a.max.max(b.max),
    }
}

/// Limits the names a schema's `$defs/{def}` accepts to `names`.
fn name_enum(schema: &mut Value, def: &str, names: &[&str]) {
    if names.is_empty() {
        return;
    }
    if let Some(node) = schema
        .pointer_mut(&format!("/$defs/{def}"))
        .and_then(Value::as_object_mut)
    {
        node.insert("enum".into(), json!(names));
    }
}

/// Writes `bound` into the schema of the number at `path` (table, key, ... as the file nests
/// them; an array of tables by its name, a table of names by any name).
fn set_bound(schema: &mut Value, path: &[String], bound: Bound) {
    let Some(at) = pointer_of(schema, path) else {
        return;
    };
    let Some(node) = schema.pointer_mut(&at).and_then(Value::as_object_mut) else {
        return;
    };
    let integer = node.get("type").is_some_and(|t| {
        t == "integer"
            || t.as_array()
                .is_some_and(|a| a.iter().any(|t| t == "integer"))
    });
    let number = |v: f64| {
        if integer && v.fract() == 0.0 {
            json!(v as i64)
        } else {
            json!(v)
        }
    };
    if bound.min.is_finite() && bound.min.abs() < EXACT {
        let key = if bound.exclusive_min {
            "exclusiveMinimum"
        } else {
            "minimum"
        };
        node.insert(key.into(), number(bound.min));
    }
    if bound.max.is_finite() && bound.max.abs() < EXACT {
        node.insert("maximum".into(), number(bound.max));
    }
}

/// The JSON pointer of the schema of the value at `path`, following `$ref`s and arrays.
fn pointer_of(schema: &Value, path: &[String]) -> Option<String> {
    let mut at = resolve(schema, String::new())?;
    for name in path {
        let node = schema.pointer(&at)?;
        let escaped = name.replace('~', "~0").replace('/', "~1");
        at = if node.get("properties").and_then(|p| p.get(name)).is_some() {
            format!("{at}/properties/{escaped}")
        } else if node
            .get("additionalProperties")
            .is_some_and(Value::is_object)
        {
            format!("{at}/additionalProperties")
        } else if let Some(pattern) = node
            .get("patternProperties")
            .and_then(Value::as_object)
            .and_then(|p| p.keys().next())
        {
            let pattern = pattern.replace('~', "~0").replace('/', "~1");
            format!("{at}/patternProperties/{pattern}")
        } else {
            return None;
        };
        at = resolve(schema, at)?;
    }
    Some(at)
}

/// Follows `$ref`s (within the document) and arrays' `items` from `at`.
fn resolve(schema: &Value, mut at: String) -> Option<String> {
    for _ in 0..32 {
        let node = schema.pointer(&at)?;
        if let Some(target) = node.get("$ref").and_then(Value::as_str) {
            at = target.strip_prefix('#')?.to_string();
        } else if node.get("type").is_some_and(|t| t == "array") && node.get("items").is_some() {
            at = format!("{at}/items");
        } else {
            return Some(at);
        }
    }
    None
}
