//! `tianxia check` and `tianxia schema` (docs/data-files.md#checking-the-data).

use std::path::Path;

use components::data::FileKind;

use crate::Failure;

/// Validates every designer file under `assets` and prints what was found.
pub fn check(assets: &Path) -> Result<(), Failure> {
    let report = systems::assets::check(assets)?;
    for data in &report.scenarios {
        let s = &data.scenario;
        println!(
            "scenario {}: {} nations, {} cities, {} roads, {} generals",
            s.id,
            s.nations.nation.len(),
            s.cities.city.len(),
            s.roads.road.len(),
            s.generals.general.len()
        );
    }
    println!("{}: all designer data is valid", assets.display());
    Ok(())
}

/// Prints the JSON Schema of one kind of file, or an object of every kind's schema, made from
/// the data under `assets`; with `out`, writes each to `out/KIND.schema.json`.
pub fn schema(kind: Option<&str>, assets: &Path, out: Option<&Path>) -> Result<(), Failure> {
    let wanted = match kind {
        Some(name) => Some(FileKind::from_name(name).ok_or_else(|| {
            let kinds: Vec<&str> = FileKind::ALL.iter().map(|k| k.name()).collect();
            Failure::Usage(format!(
                "unknown file kind \"{name}\" (kinds: {})",
                kinds.join(", ")
            ))
        })?),
        None => None,
    };
    let schemas: Vec<(FileKind, serde_json::Value)> = systems::assets::schemas(assets)?
        .into_iter()
        .filter(|(k, _)| wanted.is_none_or(|w| w == *k))
        .collect();
    let pretty = |value: &serde_json::Value| {
        serde_json::to_string_pretty(value).map_err(|e| Failure::Runtime(e.into()))
    };
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| {
            Failure::Runtime(anyhow::anyhow!("cannot create {}: {e}", dir.display()))
        })?;
        for (kind, schema) in &schemas {
            let path = dir.join(format!("{}.schema.json", kind.name()));
            std::fs::write(&path, pretty(schema)? + "\n").map_err(|e| {
                Failure::Runtime(anyhow::anyhow!("cannot write {}: {e}", path.display()))
            })?;
            println!("{}", path.display());
        }
        return Ok(());
    }
    let value = if wanted.is_some() {
        schemas
            .into_iter()
            .next()
            .map(|(_, s)| s)
            .unwrap_or_default()
    } else {
        serde_json::Value::Object(
            schemas
                .into_iter()
                .map(|(k, s)| (k.name().to_string(), s))
                .collect(),
        )
    };
    println!("{}", pretty(&value)?);
    Ok(())
}
