//! Commands (docs/rules.md#commands-and-orders): their types, their arguments, and the checks
//! of shape that happen before a command reaches the World (JSON types, unknown fields, id
//! shapes, ranges). Every other check (ownership, status, costs, authority, paths, relations)
//! is the World's, in `systems::rules::commands`: nothing here reads game state.
//!
//! Shared by the HTTP layer, the command bus, the stream and the World, so a command parsed
//! anywhere is the same value everywhere.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::Value;

use crate::{
    ids::is_valid_id,
    world::{PositionKind, TroopType},
};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    utoipa::ToSchema,
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
    /// An edit of a sandbox world by a client developer (docs/sandbox.md): never a
    /// player's command of the game, not in [`CommandType::ALL`], issued by no card (the
    /// data files' schema leaves it out; the checker refuses it).
    #[schemars(skip)]
    Sandbox,
}

impl CommandType {
    /// The commands of the game, as players send them to `POST /api/commands`.
    pub const ALL: [CommandType; 10] = [
        CommandType::Join,
        CommandType::Move,
        CommandType::Train,
        CommandType::Recruit,
        CommandType::Build,
        CommandType::Appoint,
        CommandType::Dismiss,
        CommandType::DeclareWar,
        CommandType::MakePeace,
        CommandType::SetTax,
    ];

    /// The type's name as clients write it.
    pub fn name(self) -> &'static str {
        match self {
            CommandType::Join => "JOIN",
            CommandType::Move => "MOVE",
            CommandType::Train => "TRAIN",
            CommandType::Recruit => "RECRUIT",
            CommandType::Build => "BUILD",
            CommandType::Appoint => "APPOINT",
            CommandType::Dismiss => "DISMISS",
            CommandType::DeclareWar => "DECLARE_WAR",
            CommandType::MakePeace => "MAKE_PEACE",
            CommandType::SetTax => "SET_TAX",
            CommandType::Sandbox => "SANDBOX",
        }
    }

    /// A command of the game by the name clients write (not `SANDBOX`, whose edits have
    /// routes of their own).
    pub fn from_name(name: &str) -> Option<CommandType> {
        CommandType::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Largest amount one RECRUIT may ask for (docs/rules.md#command-table); the balance file may
/// lower it.
pub const RECRUIT_AMOUNT_MAX: u32 = 5_000;
/// Highest tax rate, in percent (docs/rules.md#nations).
pub const TAX_RATE_MAX: u8 = 50;
/// Longest display name of a general created by JOIN, in characters.
pub const GENERAL_NAME_MAX: usize = 32;
/// Longest command id a client may choose.
pub const COMMAND_ID_MAX: usize = 64;
/// Prefix of the ids the server assigns; clients may not use it.
pub const SERVER_ID_PREFIX: &str = "srv-";

/// What a city can build.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BuildKind {
    Agriculture,
    Commerce,
    Walls,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinArgs {
    /// Display name of the new general.
    pub name: String,
    /// The nation to serve; none makes a ronin.
    #[serde(default)]
    pub nation: Option<String>,
    /// Troop type of the new general (`[join] troop_type` of the balance data when not
    /// given).
    #[serde(default)]
    pub troop_type: Option<TroopType>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MoveArgs {
    pub to: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecruitArgs {
    pub amount: u32,
    /// The troop type to recruit; only a general without soldiers may change its type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub troop_type: Option<TroopType>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildArgs {
    pub kind: BuildKind,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppointArgs {
    pub target: String,
    pub position: PositionKind,
    /// The city a card of a city's scope (a governor's) names; only for such a card.
    #[serde(default)]
    pub city: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetArgs {
    pub target: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NationArgs {
    pub nation: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaxArgs {
    pub rate: u8,
}

/// Largest amount one sandbox GIVE adds or takes away (docs/sandbox.md).
pub const SANDBOX_AMOUNT_MAX: i64 = 1_000_000_000;
/// Speeds a sandbox may set, and the server accepts (game seconds per real second): the
/// World counts speed in thousandths; at the top, one strategy tick spans about 12 game days.
pub const MIN_SPEED: f64 = 0.001;
pub const MAX_SPEED: f64 = 1_000_000.0;

/// What a sandbox GIVE adds to (or, negative, takes from) one general, city or nation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiveArgs {
    /// A general: `troops` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub general: Option<String>,
    /// A city: `troops` (its garrison), `gold`, `rice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// A nation: `gold`, `rice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub troops: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rice: Option<i64>,
}

/// A sandbox TELEPORT: a general to a city at once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeleportArgs {
    pub general: String,
    /// The city it stands in afterwards.
    pub to: String,
}

/// A sandbox CLOCK: stop or start the game clock, or set its speed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockArgs {
    /// `true` stops the game clock (battles stop with it); `false` starts it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Game seconds per real second from now on (0.001–1,000,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// An edit of a sandbox world (docs/sandbox.md). Serialized with its kind as `edit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "edit", rename_all = "snake_case")]
pub enum SandboxEdit {
    Give(GiveArgs),
    Teleport(TeleportArgs),
    Clock(ClockArgs),
}

impl SandboxEdit {
    /// Checks ids, that a GIVE names one target and amounts it can take, and ranges.
    pub fn check(&self) -> Result<(), ShapeError> {
        match self {
            SandboxEdit::Give(a) => {
                let targets = [&a.general, &a.city, &a.nation]
                    .into_iter()
                    .filter(|t| t.is_some())
                    .count();
                if targets != 1 {
                    return Err(ShapeError::args(
                        "give: name exactly one of general, city, nation",
                    ));
                }
                for (field, id) in [
                    ("general", &a.general),
                    ("city", &a.city),
                    ("nation", &a.nation),
                ] {
                    if let Some(id) = id {
                        check_id(field, id)?;
                    }
                }
                let amounts = [("troops", a.troops), ("gold", a.gold), ("rice", a.rice)];
                if amounts.iter().all(|(_, v)| v.is_none()) {
                    return Err(ShapeError::args("give: name troops, gold or rice"));
                }
                for (field, value) in amounts {
                    if value
                        .is_some_and(|v| !(-SANDBOX_AMOUNT_MAX..=SANDBOX_AMOUNT_MAX).contains(&v))
                    {
                        return Err(ShapeError::args(format!(
                            "give: {field} must be within ±{SANDBOX_AMOUNT_MAX}"
                        )));
                    }
                }
                if a.general.is_some() && (a.gold.is_some() || a.rice.is_some()) {
                    return Err(ShapeError::args(
                        "give: a general holds troops only; gold and rice go to a city or a nation",
                    ));
                }
                if a.nation.is_some() && a.troops.is_some() {
                    return Err(ShapeError::args(
                        "give: a nation holds no troops; give them to a general or a city",
                    ));
                }
            }
            SandboxEdit::Teleport(a) => {
                check_id("general", &a.general)?;
                check_id("to", &a.to)?;
            }
            SandboxEdit::Clock(a) => {
                if a.paused.is_none() && a.speed.is_none() {
                    return Err(ShapeError::args("clock: name paused or speed"));
                }
                if let Some(speed) = a.speed
                    && !(MIN_SPEED..=MAX_SPEED).contains(&speed)
                {
                    return Err(ShapeError::args(format!(
                        "clock: speed must be {MIN_SPEED}–{MAX_SPEED}, not {speed}"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// A command's type and arguments. Serialized as `{"type": ..., "args": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "args", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandBody {
    Join(JoinArgs),
    Move(MoveArgs),
    Train(NoArgs),
    Recruit(RecruitArgs),
    Build(BuildArgs),
    Appoint(AppointArgs),
    Dismiss(TargetArgs),
    DeclareWar(NationArgs),
    MakePeace(NationArgs),
    SetTax(TaxArgs),
    /// Never parsed from `POST /api/commands`: the sandbox routes build it.
    Sandbox(SandboxEdit),
}

/// Why a command was refused before it reached the World (docs/http.md#checks-at-the-http-layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShapeCode {
    InvalidField,
    UnknownCommand,
    InvalidArgs,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ShapeError {
    pub code: ShapeCode,
    pub message: String,
}

impl ShapeError {
    fn new(code: ShapeCode, message: impl Into<String>) -> Self {
        ShapeError {
            code,
            message: message.into(),
        }
    }

    fn args(message: impl Into<String>) -> Self {
        Self::new(ShapeCode::InvalidArgs, message)
    }
}

fn parse_args<T: DeserializeOwned>(kind: CommandType, args: Value) -> Result<T, ShapeError> {
    serde_json::from_value(args).map_err(|e| ShapeError::args(format!("{}: {e}", kind.name())))
}

fn check_id(field: &str, id: &str) -> Result<(), ShapeError> {
    if is_valid_id(id) {
        Ok(())
    } else {
        Err(ShapeError::args(format!(
            "{field}: \"{}\" is not an id (1-48 characters of [a-z0-9_-])",
            id.escape_debug()
        )))
    }
}

impl CommandBody {
    /// Parses a command's `type` and `args` and checks their shape and ranges. Missing
    /// `args` is read as `{}`.
    pub fn parse(type_name: &str, args: Option<Value>) -> Result<CommandBody, ShapeError> {
        let kind = CommandType::from_name(type_name)
            .or((type_name == CommandType::Sandbox.name()).then_some(CommandType::Sandbox));
        let kind = kind.ok_or_else(|| {
            ShapeError::new(
                ShapeCode::UnknownCommand,
                format!(
                    "unknown command type \"{}\"; known types: {}",
                    type_name.escape_debug(),
                    CommandType::ALL.map(|t| t.name()).join(", ")
                ),
            )
        })?;
        let args = match args {
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(ShapeError::args("args must be an object")),
        };
        let body = match kind {
            CommandType::Join => CommandBody::Join(parse_args(kind, args)?),
            CommandType::Move => CommandBody::Move(parse_args(kind, args)?),
            CommandType::Train => CommandBody::Train(parse_args(kind, args)?),
            CommandType::Recruit => CommandBody::Recruit(parse_args(kind, args)?),
            CommandType::Build => CommandBody::Build(parse_args(kind, args)?),
            CommandType::Appoint => CommandBody::Appoint(parse_args(kind, args)?),
            CommandType::Dismiss => CommandBody::Dismiss(parse_args(kind, args)?),
            CommandType::DeclareWar => CommandBody::DeclareWar(parse_args(kind, args)?),
            CommandType::MakePeace => CommandBody::MakePeace(parse_args(kind, args)?),
            CommandType::SetTax => CommandBody::SetTax(parse_args(kind, args)?),
            CommandType::Sandbox => {
                return Err(ShapeError::new(
                    ShapeCode::UnknownCommand,
                    "sandbox edits go to POST /api/sandbox/give, /teleport or /clock of a server started with serve --sandbox",
                ));
            }
        };
        body.check()?;
        Ok(body)
    }

    /// Checks ranges and id shapes.
    pub fn check(&self) -> Result<(), ShapeError> {
        match self {
            CommandBody::Join(a) => {
                let name = a.name.trim();
                if name.is_empty()
                    || name.chars().count() > GENERAL_NAME_MAX
                    || !crate::text::printable(name)
                {
                    return Err(ShapeError::args(format!(
                        "JOIN: name must be 1-{GENERAL_NAME_MAX} printable characters"
                    )));
                }
                if let Some(nation) = &a.nation {
                    check_id("nation", nation)?;
                }
            }
            CommandBody::Move(a) => check_id("to", &a.to)?,
            CommandBody::Train(_) | CommandBody::Build(_) => {}
            CommandBody::Recruit(a) => {
                if !(1..=RECRUIT_AMOUNT_MAX).contains(&a.amount) {
                    return Err(ShapeError::args(format!(
                        "RECRUIT: amount must be 1-{RECRUIT_AMOUNT_MAX}, not {}",
                        a.amount
                    )));
                }
            }
            CommandBody::Appoint(a) => {
                check_id("target", &a.target)?;
                if let Some(city) = &a.city {
                    check_id("city", city)?;
                }
            }
            CommandBody::Dismiss(a) => check_id("target", &a.target)?,
            CommandBody::DeclareWar(a) | CommandBody::MakePeace(a) => {
                check_id("nation", &a.nation)?
            }
            CommandBody::Sandbox(edit) => edit.check()?,
            CommandBody::SetTax(a) => {
                if a.rate > TAX_RATE_MAX {
                    return Err(ShapeError::args(format!(
                        "SET_TAX: rate must be 0-{TAX_RATE_MAX}, not {}",
                        a.rate
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn command_type(&self) -> CommandType {
        match self {
            CommandBody::Join(_) => CommandType::Join,
            CommandBody::Move(_) => CommandType::Move,
            CommandBody::Train(_) => CommandType::Train,
            CommandBody::Recruit(_) => CommandType::Recruit,
            CommandBody::Build(_) => CommandType::Build,
            CommandBody::Appoint(_) => CommandType::Appoint,
            CommandBody::Dismiss(_) => CommandType::Dismiss,
            CommandBody::DeclareWar(_) => CommandType::DeclareWar,
            CommandBody::MakePeace(_) => CommandType::MakePeace,
            CommandBody::SetTax(_) => CommandType::SetTax,
            CommandBody::Sandbox(_) => CommandType::Sandbox,
        }
    }
}

/// Whether `id` may be chosen by a client as a command id.
pub fn check_command_id(id: &str) -> Result<(), ShapeError> {
    let shaped = !id.is_empty()
        && id.len() <= COMMAND_ID_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if !shaped {
        return Err(ShapeError::new(
            ShapeCode::InvalidField,
            format!("id: must be 1-{COMMAND_ID_MAX} characters of [A-Za-z0-9_.:-]"),
        ));
    }
    if id.starts_with(SERVER_ID_PREFIX) {
        return Err(ShapeError::new(
            ShapeCode::InvalidField,
            format!("id: ids starting with \"{SERVER_ID_PREFIX}\" are the server's"),
        ));
    }
    Ok(())
}

/// The id the server gives a command sent without one, from its log position.
pub fn server_command_id(log_seq: u64) -> String {
    format!("{SERVER_ID_PREFIX}{log_seq}")
}

/// Why the World rejected a command or cancelled an order
/// (docs/rules.md#validation-and-reason-codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    UnknownGeneral,
    NotOwner,
    Busy,
    InBattle,
    InsufficientPcp,
    InsufficientMcp,
    /// The general's city cannot pay the gold a RECRUIT costs.
    InsufficientGold,
    /// The general's city has too few people for a RECRUIT.
    InsufficientPopulation,
    NoAuthority,
    NoPath,
    UnknownTarget,
    InvalidArgs,
    NotAtWar,
    TargetProtected,
    NationDestroyed,
    IdConflict,
    AlreadyJoined,
    Internal,
    /// Cancellation: the general was captured (turned ronin when its city fell).
    Captured,
    /// Cancellation: the march halted before its destination.
    MarchHalted,
}

impl Reason {
    pub fn code(self) -> &'static str {
        match self {
            Reason::UnknownGeneral => "unknown_general",
            Reason::NotOwner => "not_owner",
            Reason::Busy => "busy",
            Reason::InBattle => "in_battle",
            Reason::InsufficientPcp => "insufficient_pcp",
            Reason::InsufficientMcp => "insufficient_mcp",
            Reason::InsufficientGold => "insufficient_gold",
            Reason::InsufficientPopulation => "insufficient_population",
            Reason::NoAuthority => "no_authority",
            Reason::NoPath => "no_path",
            Reason::UnknownTarget => "unknown_target",
            Reason::InvalidArgs => "invalid_args",
            Reason::NotAtWar => "not_at_war",
            Reason::TargetProtected => "target_protected",
            Reason::NationDestroyed => "nation_destroyed",
            Reason::IdConflict => "id_conflict",
            Reason::AlreadyJoined => "already_joined",
            Reason::Internal => "internal",
            Reason::Captured => "captured",
            Reason::MarchHalted => "march_halted",
        }
    }
}

/// Who issues a command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Issuer {
    /// A player, by id.
    Player(String),
    /// The World's own AI, for NPC generals and offline players' delegates.
    Ai,
}

impl Issuer {
    pub fn player(&self) -> Option<&str> {
        match self {
            Issuer::Player(id) => Some(id),
            Issuer::Ai => None,
        }
    }
}

/// A command on its way into the World.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    /// The order id: the client's, or one the server derived from `log_seq` (or `entry`).
    pub id: String,
    pub issuer: Issuer,
    /// The acting general; none for JOIN.
    pub general: Option<String>,
    #[serde(flatten)]
    pub body: CommandBody,
    /// Position in the embedded command log (0 when it came another way); commands are
    /// applied in this order. (Logs written before the name was `log_seq` call it `seq`.)
    #[serde(alias = "seq")]
    pub log_seq: u64,
    /// Position in the command stream (Redis mode); commands are applied in this order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<crate::stream::EntryId>,
}

impl Command {
    /// Hash of what the command asks (acting general, type, arguments): the same command
    /// sent twice has the same hash, whatever its id or position.
    pub fn body_hash(&self) -> u64 {
        body_hash(self.general.as_deref(), &self.body)
    }
}

/// FNV-1a over the canonical JSON of the general and body.
pub fn body_hash(general: Option<&str>, body: &CommandBody) -> u64 {
    crate::ids::fnv1a(&serde_json::to_vec(&(general, body)).unwrap_or_default())
}

/// What reaches the World from outside, through the command bus.
#[derive(Clone, Debug, PartialEq)]
pub enum Inbound {
    /// A command to validate and apply.
    Command(Command),
    /// A player was active (an authenticated request or WebSocket message): presence.
    Seen { player: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_every_type_and_checks_shapes() {
        let body = CommandBody::parse("MOVE", Some(json!({"to": "luoyang"}))).unwrap();
        assert_eq!(
            body,
            CommandBody::Move(MoveArgs {
                to: "luoyang".into()
            })
        );
        assert_eq!(
            CommandBody::parse("TRAIN", None).unwrap(),
            CommandBody::Train(NoArgs {})
        );
        let err = CommandBody::parse("FLY", None).unwrap_err();
        assert_eq!(err.code, ShapeCode::UnknownCommand);
        let err = CommandBody::parse("MOVE", Some(json!({"to": "x", "speed": 3}))).unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse("MOVE", Some(json!({"to": "Luo Yang"}))).unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse("RECRUIT", Some(json!({"amount": 0}))).unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse("RECRUIT", Some(json!({"amount": "5"}))).unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse("SET_TAX", Some(json!({"rate": 51}))).unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse(
            "APPOINT",
            Some(json!({"target": "a", "position": "Grand General"})),
        )
        .unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        let err = CommandBody::parse(
            "APPOINT",
            Some(json!({"target": "a", "position": "governor", "city": "Luo Yang"})),
        )
        .unwrap_err();
        assert_eq!(err.code, ShapeCode::InvalidArgs);
        assert!(CommandBody::parse("JOIN", Some(json!({"name": "  "}))).is_err());
        assert!(CommandBody::parse("BUILD", Some(json!({"kind": "walls"}))).is_ok());
    }

    #[test]
    fn command_ids_and_hashes() {
        assert!(check_command_id("move-1:a.b").is_ok());
        assert!(check_command_id("srv-1").is_err());
        assert!(check_command_id("").is_err());
        assert!(check_command_id("a b").is_err());
        assert!(check_command_id(&"a".repeat(65)).is_err());
        let a = CommandBody::parse("MOVE", Some(json!({"to": "a"}))).unwrap();
        let b = CommandBody::parse("MOVE", Some(json!({"to": "b"}))).unwrap();
        assert_eq!(body_hash(Some("g"), &a), body_hash(Some("g"), &a));
        assert_ne!(body_hash(Some("g"), &a), body_hash(Some("g"), &b));
        assert_ne!(body_hash(Some("g"), &a), body_hash(Some("h"), &a));
    }
}
