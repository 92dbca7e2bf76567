//! Commands as stream entries (docs/redis.md#entry-payload): the entry ids of
//! `cmd:game:{world}` and the `payload` field any producer writes, `{id, player, type, general,
//! args, ts}`. Parsing an entry gives the same [`Command`] the HTTP layer builds, or says why
//! it cannot (the entry then goes to the dead-letter stream). No Redis here:
//! `net::redis::stream` reads and writes the stream.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::{
    command::{Command, CommandBody, Issuer, SERVER_ID_PREFIX, ShapeError, check_command_id},
    ids::is_valid_id,
};

/// The one field of a command entry.
pub const PAYLOAD_FIELD: &str = "payload";

/// A stream entry id, `<ms>-<seq>`; entries are ordered by it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl EntryId {
    pub const ZERO: EntryId = EntryId { ms: 0, seq: 0 };

    pub fn new(ms: u64, seq: u64) -> Self {
        EntryId { ms, seq }
    }

    /// The id right after this one (for exclusive ranges).
    pub fn next(self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a stream entry id (<ms>-<seq>)")]
pub struct BadEntryId(String);

impl FromStr for EntryId {
    type Err = BadEntryId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadEntryId(s.chars().take(64).collect());
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(ms) || !digits(seq) {
            return Err(bad());
        }
        Ok(EntryId {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl Serialize for EntryId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntryId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The id the server gives a stream command sent without one.
pub fn server_entry_command_id(entry: EntryId) -> String {
    format!("{SERVER_ID_PREFIX}{entry}")
}

/// The `payload` of a command entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payload {
    /// The client's order id; none lets the server derive one from the entry id.
    #[serde(default)]
    pub id: Option<String>,
    pub player: String,
    #[serde(rename = "type")]
    pub command_type: String,
    #[serde(default)]
    pub general: Option<String>,
    #[serde(default)]
    pub args: Option<Value>,
    /// When the producer sent it (real ms); informative.
    #[serde(default)]
    pub ts: Option<u64>,
}

impl Payload {
    /// The payload of a command the HTTP layer checked.
    pub fn of(command: &Command, player: &str, ts: u64) -> Payload {
        let (command_type, args) = match serde_json::to_value(&command.body) {
            Ok(Value::Object(mut body)) => (
                body.remove("type")
                    .and_then(|t| t.as_str().map(str::to_string))
                    .unwrap_or_default(),
                body.remove("args"),
            ),
            _ => (String::new(), None),
        };
        Payload {
            id: (!command.id.is_empty()).then(|| command.id.clone()),
            player: player.to_string(),
            command_type,
            general: command.general.clone(),
            args,
            ts: Some(ts),
        }
    }
}

/// Why an entry is not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    #[error("the entry has no \"payload\" field")]
    NoPayload,
    #[error("unknown field \"{0}\": a command entry has only \"payload\"")]
    UnknownField(String),
    #[error("payload is not UTF-8")]
    NotUtf8,
    #[error("payload: {0}")]
    Json(String),
    #[error("player: \"{0}\" is not a player id")]
    Player(String),
    #[error("{0}")]
    Shape(#[from] ShapeError),
}

/// Parses one entry's fields (name, raw value) into the command it carries.
pub fn parse_entry<'a>(
    entry: EntryId,
    fields: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> Result<Command, EntryError> {
    let mut payload = None;
    for (name, value) in fields {
        if name == PAYLOAD_FIELD {
            payload = Some(value);
        } else {
            return Err(EntryError::UnknownField(name.chars().take(64).collect()));
        }
    }
    let raw = payload.ok_or(EntryError::NoPayload)?;
    let text = std::str::from_utf8(raw).map_err(|_| EntryError::NotUtf8)?;
    let payload: Payload =
        serde_json::from_str(text).map_err(|e| EntryError::Json(e.to_string()))?;
    command_of(entry, payload)
}

/// Checks a payload as the HTTP layer checks a request (docs/http.md#checks-at-the-http-layer)
/// and builds its command.
pub fn command_of(entry: EntryId, payload: Payload) -> Result<Command, EntryError> {
    if !is_valid_id(&payload.player) {
        return Err(EntryError::Player(
            payload.player.chars().take(64).collect(),
        ));
    }
    if let Some(id) = &payload.id {
        check_command_id(id)?;
    }
    let body = CommandBody::parse(&payload.command_type, payload.args)?;
    let is_join = matches!(body, CommandBody::Join(_));
    let general = match (payload.general, is_join) {
        (Some(_), true) => return Err(shape("general: JOIN names no general")),
        (None, false) => return Err(shape("general: required")),
        (Some(g), false) if !is_valid_id(&g) => {
            return Err(shape("general: 1-48 characters of [a-z0-9_-]"));
        }
        (general, _) => general,
    };
    Ok(Command {
        id: payload.id.unwrap_or_else(|| server_entry_command_id(entry)),
        issuer: Issuer::Player(payload.player),
        general,
        body,
        log_seq: 0,
        entry: Some(entry),
    })
}

fn shape(message: &str) -> EntryError {
    EntryError::Shape(ShapeError {
        code: crate::command::ShapeCode::InvalidField,
        message: message.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MoveArgs;

    type Fields<'a> = Vec<(&'a str, &'a [u8])>;

    fn fields(payload: &str) -> Fields<'_> {
        vec![(PAYLOAD_FIELD, payload.as_bytes())]
    }

    #[test]
    fn entry_ids_order_parse_and_print() {
        let a: EntryId = "1700000000000-5".parse().unwrap();
        assert_eq!(a, EntryId::new(1_700_000_000_000, 5));
        assert_eq!(a.to_string(), "1700000000000-5");
        assert!(a < EntryId::new(1_700_000_000_000, 6));
        assert!(EntryId::new(1, u64::MAX) < EntryId::new(2, 0));
        assert_eq!(EntryId::new(1, u64::MAX).next(), EntryId::new(2, 0));
        for bad in [
            "",
            "5",
            "-1",
            "1-",
            "a-1",
            "1-1-1",
            "+1-2",
            "99999999999999999999-0",
        ] {
            assert!(bad.parse::<EntryId>().is_err(), "{bad:?} parsed");
        }
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"1700000000000-5\"");
        assert_eq!(serde_json::from_str::<EntryId>(&json).unwrap(), a);
    }

    #[test]
    fn a_payload_is_the_command_it_names() {
        let entry = EntryId::new(10, 2);
        let command = parse_entry(
            entry,
            fields(r#"{"id":"m1","player":"ann","type":"MOVE","general":"g-ann","args":{"to":"xuchang"},"ts":1}"#),
        )
        .unwrap();
        assert_eq!(command.id, "m1");
        assert_eq!(command.issuer, Issuer::Player("ann".into()));
        assert_eq!(command.general.as_deref(), Some("g-ann"));
        assert_eq!(
            command.body,
            CommandBody::Move(MoveArgs {
                to: "xuchang".into()
            })
        );
        assert_eq!(command.entry, Some(entry));
        // The HTTP side's payload parses back to the same command.
        let payload = Payload::of(&command, "ann", 5);
        let text = serde_json::to_string(&payload).unwrap();
        assert_eq!(parse_entry(entry, fields(&text)).unwrap(), command);
        // Without an id, one derived from the entry: the same on every delivery.
        let command = parse_entry(
            entry,
            fields(r#"{"player":"ann","type":"TRAIN","general":"g-ann"}"#),
        )
        .unwrap();
        assert_eq!(command.id, "srv-10-2");
    }

    #[test]
    fn what_is_not_a_command_says_why() {
        let entry = EntryId::new(1, 0);
        let cases: Vec<(Fields, &str)> = vec![
            (vec![], "no \"payload\""),
            (vec![("junk", b"x".as_slice())], "unknown field"),
            (
                vec![
                    (PAYLOAD_FIELD, b"{}".as_slice()),
                    ("extra", b"1".as_slice()),
                ],
                "unknown field",
            ),
            (vec![(PAYLOAD_FIELD, b"\xff\xfe".as_slice())], "UTF-8"),
            (fields("not json"), "payload:"),
            (
                fields(r#"{"player":"ann","type":"TRAIN","general":"g","color":1}"#),
                "unknown field",
            ),
            (
                fields(r#"{"player":"Ann!","type":"TRAIN","general":"g"}"#),
                "player",
            ),
            (
                fields(r#"{"player":"ann","type":"FLY","general":"g"}"#),
                "unknown command",
            ),
            (
                fields(r#"{"player":"ann","type":"RECRUIT","general":"g","args":{"amount":0}}"#),
                "amount",
            ),
            (
                fields(r#"{"player":"ann","type":"TRAIN"}"#),
                "general: required",
            ),
            (
                fields(r#"{"id":"srv-1","player":"ann","type":"TRAIN","general":"g"}"#),
                "server",
            ),
            (
                fields(r#"{"player":"ann","type":"JOIN","general":"g","args":{"name":"A"}}"#),
                "JOIN names no general",
            ),
        ];
        for (fields, expected) in cases {
            let error = parse_entry(entry, fields.clone()).unwrap_err().to_string();
            assert!(error.contains(expected), "{fields:?}: {error}");
        }
    }
}
