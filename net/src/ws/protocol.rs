//! The WebSocket protocol's messages (docs/websocket.md): what a client may send, the topics
//! it may name, and what the server pushes, encoded once per encoding (JSON text frames or
//! MessagePack binary frames of the same shapes) and shared by every connection that sends
//! it. Nothing here touches a socket.

use std::sync::{Arc, OnceLock};

use axum::{body::Bytes, extract::ws::Message};
use components::{
    battle::{BattleView, FrameView},
    events::DomainEvent,
    read_model::{CityView, GeneralView, Key, NationView, OrderView},
};
use serde::{Deserialize, Serialize};

/// A client message larger than this is answered `message_too_large` (the connection stays).
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Topics one connection may hold.
pub const MAX_TOPICS: usize = 64;
/// The longest topic name accepted.
const MAX_TOPIC_LEN: usize = 100;

/// How a connection's messages are encoded (`?encoding=`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    #[default]
    Json,
    Msgpack,
}

/// A topic a connection can subscribe to. Entity topics are named like the aggregates of
/// their events (`general:cao_cao`), so an event goes to the topic its aggregate names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    World,
    Nation(Key),
    City(Key),
    General(Key),
    Battle(Key),
    /// One player's orders: clients name it `orders`; it is theirs by their token.
    Orders(Key),
}

/// Why a topic name was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum TopicError {
    /// Not a topic at all.
    Unknown,
    /// `orders` without a token.
    NeedsToken,
}

fn valid_id(id: &str) -> bool {
    (1..=48).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

impl Topic {
    /// A topic as a client names it; `player` is the connection's player, if it has one.
    pub fn parse(name: &str, player: Option<&Key>) -> Result<Topic, TopicError> {
        if name.len() > MAX_TOPIC_LEN {
            return Err(TopicError::Unknown);
        }
        match name {
            "world" => return Ok(Topic::World),
            "orders" => {
                return player
                    .map(|p| Topic::Orders(p.clone()))
                    .ok_or(TopicError::NeedsToken);
            }
            _ => {}
        }
        let (kind, id) = name.split_once(':').ok_or(TopicError::Unknown)?;
        if !valid_id(id) {
            return Err(TopicError::Unknown);
        }
        let id = Key::from(id);
        Ok(match kind {
            "nation" => Topic::Nation(id),
            "city" => Topic::City(id),
            "general" => Topic::General(id),
            "battle" => Topic::Battle(id),
            _ => return Err(TopicError::Unknown),
        })
    }

    /// The topic of an event's aggregate (`general:cao_cao`), if it is an entity topic.
    pub fn of_aggregate(aggregate: &str) -> Option<Topic> {
        match Topic::parse(aggregate, None) {
            Ok(
                topic @ (Topic::Nation(_) | Topic::City(_) | Topic::General(_) | Topic::Battle(_)),
            ) => Some(topic),
            _ => None,
        }
    }

    /// Whether `event` is pushed on this topic: every event on `world`, an entity's own on
    /// its topic, none on `orders`.
    pub fn carries(&self, event: &DomainEvent) -> bool {
        match self {
            Topic::World => true,
            Topic::Orders(_) => false,
            entity => Topic::of_aggregate(&event.aggregate).as_ref() == Some(entity),
        }
    }

    /// The name clients know it by.
    pub fn name(&self) -> String {
        match self {
            Topic::World => "world".to_string(),
            Topic::Nation(id) => format!("nation:{id}"),
            Topic::City(id) => format!("city:{id}"),
            Topic::General(id) => format!("general:{id}"),
            Topic::Battle(id) => format!("battle:{id}"),
            Topic::Orders(_) => "orders".to_string(),
        }
    }

    /// Whether events are pushed on it (and so `since` replays them).
    pub fn has_events(&self) -> bool {
        !matches!(self, Topic::Orders(_))
    }

    /// The aggregate its events carry, for a replay from the durable log; `None` for all.
    pub fn aggregate(&self) -> Option<String> {
        match self {
            Topic::World => None,
            other => Some(other.name()),
        }
    }

    /// The kind, as the subscription metric labels it.
    pub fn kind(&self) -> &'static str {
        match self {
            Topic::World => "world",
            Topic::Nation(_) => "nation",
            Topic::City(_) => "city",
            Topic::General(_) => "general",
            Topic::Battle(_) => "battle",
            Topic::Orders(_) => "orders",
        }
    }
}

/// A message from a client.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    Subscribe {
        #[serde(default)]
        id: Option<RequestId>,
        topics: Vec<String>,
        #[serde(default)]
        since: Option<u64>,
        /// The incarnation of the `subscribed` reply the client's `since` comes from.
        #[serde(default)]
        incarnation: Option<u64>,
    },
    Unsubscribe {
        #[serde(default)]
        id: Option<RequestId>,
        topics: Vec<String>,
    },
    Ping {
        #[serde(default)]
        id: Option<RequestId>,
    },
    /// The token, for a connection opened without `?token=`.
    Auth {
        #[serde(default)]
        id: Option<RequestId>,
        token: String,
    },
}

/// A client's request id, echoed in the reply: a number or a short string.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    Text(String),
}

impl ClientMessage {
    /// Reads a text (JSON) or binary (MessagePack) message.
    pub fn decode(bytes: &[u8], binary: bool) -> Result<ClientMessage, String> {
        if binary {
            rmp_serde::from_slice(bytes).map_err(|e| e.to_string())
        } else {
            serde_json::from_slice(bytes).map_err(|e| e.to_string())
        }
    }
}

/// The `id` of a message that could not be read as a whole, if it has a readable one.
pub fn salvage_id(bytes: &[u8], binary: bool) -> Option<RequestId> {
    #[derive(Deserialize)]
    struct JustId {
        id: Option<RequestId>,
    }
    let parsed: Option<JustId> = if binary {
        rmp_serde::from_slice(bytes).ok()
    } else {
        serde_json::from_slice(bytes).ok()
    };
    parsed
        .and_then(|p| p.id)
        .filter(|id| !matches!(id, RequestId::Text(t) if t.len() > 64))
}

/// An entity's read model, as a `state` push carries it.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum State {
    Nation(Arc<NationView>),
    City(Arc<CityView>),
    General(Arc<GeneralView>),
    Battle(Arc<BattleView>),
}

impl State {
    pub fn version(&self) -> u64 {
        match self {
            State::Nation(v) => v.version,
            State::City(v) => v.version,
            State::General(v) => v.version,
            State::Battle(v) => v.version,
        }
    }
}

/// What the server sends: a push on a topic, or a reply to a client message. Fields that do
/// not apply are left out.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerMessage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Arc<DomainEvent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<State>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame: Option<Arc<FrameView>>,
    /// With a battle's final frame: the finished battle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<BattleView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderView>,
    /// The newest event `seq` the server knew when it answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// With `subscribed`: the World's incarnation, to send back with a later `since`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incarnation: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What a message is, for the metrics and the slow-client policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Event,
    State,
    Frame,
    Order,
    Reply,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Event,
        Kind::State,
        Kind::Frame,
        Kind::Order,
        Kind::Reply,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Event => "event",
            Kind::State => "state",
            Kind::Frame => "frame",
            Kind::Order => "order",
            Kind::Reply => "reply",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// A message and its encodings, each made at most once, by the first connection that sends
/// it in that encoding, and shared by the rest.
#[derive(Debug)]
pub struct Outgoing {
    pub kind: Kind,
    /// For an event, its `seq`.
    pub seq: Option<u64>,
    /// For a state push, the entity's version.
    pub version: Option<u64>,
    message: ServerMessage,
    json: OnceLock<axum::extract::ws::Utf8Bytes>,
    msgpack: OnceLock<Bytes>,
}

impl Outgoing {
    pub fn new(kind: Kind, message: ServerMessage) -> Arc<Outgoing> {
        Arc::new(Outgoing {
            kind,
            seq: message.event.as_ref().map(|e| e.seq),
            version: message.state.as_ref().map(State::version),
            message,
            json: OnceLock::new(),
            msgpack: OnceLock::new(),
        })
    }

    /// A push of `event` on `topic`.
    pub fn event(topic: Arc<str>, event: Arc<DomainEvent>) -> Arc<Outgoing> {
        Outgoing::new(
            Kind::Event,
            ServerMessage {
                topic: Some(topic),
                event: Some(event),
                ..ServerMessage::default()
            },
        )
    }

    /// A push of an entity's state on `topic`.
    pub fn state(topic: Arc<str>, state: State) -> Arc<Outgoing> {
        Outgoing::new(
            Kind::State,
            ServerMessage {
                topic: Some(topic),
                state: Some(state),
                ..ServerMessage::default()
            },
        )
    }

    /// A battle frame; with `result`, the battle's last.
    pub fn frame(
        topic: Arc<str>,
        frame: Arc<FrameView>,
        result: Option<Arc<BattleView>>,
    ) -> Arc<Outgoing> {
        Outgoing::new(
            Kind::Frame,
            ServerMessage {
                topic: Some(topic),
                frame: Some(frame),
                result,
                ..ServerMessage::default()
            },
        )
    }

    /// An order's view on the `orders` topic.
    pub fn order(order: OrderView) -> Arc<Outgoing> {
        Outgoing::new(
            Kind::Order,
            ServerMessage {
                topic: Some(Arc::from("orders")),
                order: Some(order),
                ..ServerMessage::default()
            },
        )
    }

    /// Whether this is a battle's final frame (never skipped).
    pub fn is_final_frame(&self) -> bool {
        self.message.result.is_some()
    }

    /// The frame's battle, for a frame.
    pub fn battle(&self) -> Option<&str> {
        self.message.frame.as_ref().map(|f| f.battle.as_str())
    }

    /// The message as a frame in `encoding`, and its size.
    pub fn encoded(&self, encoding: Encoding) -> (Message, usize) {
        match encoding {
            Encoding::Json => {
                let text = self.json.get_or_init(|| {
                    serde_json::to_string(&self.message)
                        .unwrap_or_else(|_| r#"{"op":"error","code":"internal"}"#.to_string())
                        .into()
                });
                (Message::Text(text.clone()), text.len())
            }
            Encoding::Msgpack => {
                let bytes = self.msgpack.get_or_init(|| {
                    rmp_serde::to_vec_named(&self.message)
                        .unwrap_or_default()
                        .into()
                });
                (Message::Binary(bytes.clone()), bytes.len())
            }
        }
    }
}

/// A reply to one client message.
pub fn reply(op: &'static str, id: Option<RequestId>) -> ServerMessage {
    ServerMessage {
        op: Some(op),
        id,
        ..ServerMessage::default()
    }
}

/// A typed error reply (docs/websocket.md#errors).
pub fn error(
    id: Option<RequestId>,
    code: &'static str,
    message: impl Into<String>,
) -> ServerMessage {
    ServerMessage {
        op: Some("error"),
        id,
        code: Some(code),
        message: Some(message.into()),
        ..ServerMessage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_as_clients_name_them() {
        let me = Key::from("liu");
        assert_eq!(Topic::parse("world", None), Ok(Topic::World));
        assert_eq!(
            Topic::parse("general:cao_cao", None),
            Ok(Topic::General(Key::from("cao_cao")))
        );
        assert_eq!(Topic::parse("orders", None), Err(TopicError::NeedsToken));
        assert_eq!(Topic::parse("orders", Some(&me)), Ok(Topic::Orders(me)));
        for bad in [
            "",
            "worlds",
            "general:",
            "general:Cao",
            "army:x",
            "general:a:b",
            "battle: x",
        ] {
            assert_eq!(Topic::parse(bad, None), Err(TopicError::Unknown), "{bad}");
        }
        assert_eq!(Topic::of_aggregate("world:main"), None);
        assert_eq!(
            Topic::of_aggregate("city:xuchang").map(|t| t.name()),
            Some("city:xuchang".to_string())
        );
    }

    #[test]
    fn client_messages_decode_in_both_encodings_and_refuse_unknown_fields() {
        let json = br#"{"op":"subscribe","id":7,"topics":["world"],"since":12}"#;
        let ClientMessage::Subscribe {
            id, topics, since, ..
        } = ClientMessage::decode(json, false).unwrap()
        else {
            panic!("not a subscribe");
        };
        assert_eq!(
            (id, topics, since),
            (
                Some(RequestId::Number(7)),
                vec!["world".to_string()],
                Some(12)
            )
        );
        let value = serde_json::json!({"op": "ping", "id": "a"});
        let packed = rmp_serde::to_vec_named(&value).unwrap();
        assert!(matches!(
            ClientMessage::decode(&packed, true),
            Ok(ClientMessage::Ping {
                id: Some(RequestId::Text(_))
            })
        ));
        assert!(ClientMessage::decode(br#"{"op":"ping","extra":1}"#, false).is_err());
        assert!(ClientMessage::decode(br#"{"op":"dance"}"#, false).is_err());
        assert_eq!(
            salvage_id(br#"{"op":"dance","id":3}"#, false),
            Some(RequestId::Number(3))
        );
    }

    #[test]
    fn a_message_is_encoded_once_per_encoding_in_the_same_shape() {
        let message = Outgoing::order(OrderView::queued("o1".into(), "TRAIN".into(), None));
        let (Message::Text(first), _) = message.encoded(Encoding::Json) else {
            panic!("JSON is text");
        };
        let (Message::Text(again), _) = message.encoded(Encoding::Json) else {
            panic!("JSON is text");
        };
        assert_eq!(
            first.as_str().as_ptr(),
            again.as_str().as_ptr(),
            "shared, not re-encoded"
        );
        let (Message::Binary(packed), _) = message.encoded(Encoding::Msgpack) else {
            panic!("MessagePack is binary");
        };
        let from_json: serde_json::Value = serde_json::from_str(first.as_str()).unwrap();
        let from_msgpack: serde_json::Value = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(from_json, from_msgpack);
        assert_eq!(from_json["topic"], "orders");
        assert_eq!(from_json["order"]["status"], "queued");
    }
}
