//! Semantic checks of designer data (docs/data-files.md#checking-the-data): ranges, ids,
//! references between files, and the rules a scenario must obey. The rules files
//! ([`rules_files`]: troop types, position cards, command costs, balance) are checked value by
//! value, named `[table] key`; a scenario's files ([`scenario_files`]: nations, cities, roads,
//! generals) entry by entry, named by their line. Each check that depends on another file runs
//! only if that file parsed, so a syntax error is not followed by a cascade of unknown-id
//! errors. Nothing here reads files: `load` hands over what parsed.

mod rules_files;
mod scenario_files;

pub(crate) use rules_files::rules;
pub(crate) use scenario_files::scenario;
