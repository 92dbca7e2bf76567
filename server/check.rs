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

/// Prints the JSON Schema of one kind of file, or an object of every kind's schema.
pub fn schema(kind: Option<&str>) -> Result<(), Failure> {
    let kinds = match kind {
        Some(name) => vec![FileKind::from_name(name).ok_or_else(|| {
            let kinds: Vec<&str> = FileKind::ALL.iter().map(|k| k.name()).collect();
            Failure::Usage(format!(
                "unknown file kind \"{name}\" (kinds: {})",
                kinds.join(", ")
            ))
        })?],
        None => FileKind::ALL.to_vec(),
    };
    let mut schemas: serde_json::Map<String, serde_json::Value> = kinds
        .iter()
        .map(|k| Ok((k.name().to_string(), serde_json::to_value(k.schema())?)))
        .collect::<Result<_, serde_json::Error>>()
        .map_err(|e| Failure::Runtime(e.into()))?;
    let value = match kind {
        Some(name) => schemas.remove(name).unwrap_or_default(),
        None => serde_json::Value::Object(schemas),
    };
    let text = serde_json::to_string_pretty(&value).map_err(|e| Failure::Runtime(e.into()))?;
    println!("{text}");
    Ok(())
}
