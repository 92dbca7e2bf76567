//! Command types (SPEC 2.5), shared by the designer data (costs, authority) and the command
//! bus.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandType {
    Join,
    Move,
    Train,
    Recruit,
    Build,
    Appoint,
    Dismiss,
    DeclareWar,
    MakePeace,
    SetTax,
}
