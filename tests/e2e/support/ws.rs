//! A WebSocket client for tests: JSON or MessagePack, messages decoded to `serde_json::Value`,
//! reads with a deadline, and optionally a tiny receive buffer (a client that stops reading
//! fills it at once).

use std::{
    net::{SocketAddr, TcpStream},
    time::{Duration, Instant},
};

use serde_json::Value;
use tungstenite::{Message, WebSocket, protocol::CloseFrame};

use super::WAIT;

pub struct Ws {
    socket: WebSocket<TcpStream>,
    msgpack: bool,
}

/// What reading gave.
#[derive(Debug)]
pub enum Read {
    Message(Value),
    Closed(Option<CloseFrame>),
    Nothing,
}

fn address(base: &str) -> SocketAddr {
    base.trim_start_matches("http://").parse().unwrap()
}

impl Ws {
    /// Connects to `base` (`http://HOST:PORT`) at `/ws?query`.
    pub fn connect(base: &str, query: &str) -> Ws {
        Self::try_connect(base, query, None).unwrap_or_else(|e| panic!("cannot connect: {e}"))
    }

    /// Connects with a receive buffer of about `receive_buffer` bytes.
    pub fn try_connect(
        base: &str,
        query: &str,
        receive_buffer: Option<usize>,
    ) -> Result<Ws, tungstenite::Error> {
        let addr = address(base);
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        socket.connect(&addr.into())?;
        let stream: TcpStream = socket.into();
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        let url = format!(
            "ws://{addr}/ws{}{query}",
            if query.is_empty() { "" } else { "?" }
        );
        let (socket, _) = tungstenite::client(url.as_str(), stream).map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => {
                tungstenite::Error::Io(std::io::Error::other("handshake interrupted"))
            }
        })?;
        Ok(Ws {
            socket,
            msgpack: query.contains("encoding=msgpack"),
        })
    }

    pub fn send(&mut self, message: Value) {
        let frame = if self.msgpack {
            Message::Binary(rmp_serde::to_vec_named(&message).unwrap().into())
        } else {
            Message::Text(message.to_string().into())
        };
        self.socket.send(frame).unwrap();
    }

    pub fn send_raw(&mut self, frame: Message) -> Result<(), tungstenite::Error> {
        self.socket.send(frame)
    }

    /// The next message, a close, or nothing within about 200 ms.
    pub fn read(&mut self) -> Read {
        match self.socket.read() {
            Ok(Message::Text(text)) => {
                assert!(!self.msgpack, "a text frame on a MessagePack connection");
                Read::Message(serde_json::from_str(text.as_str()).unwrap())
            }
            Ok(Message::Binary(bytes)) => {
                assert!(self.msgpack, "a binary frame on a JSON connection");
                Read::Message(rmp_serde::from_slice(&bytes).unwrap())
            }
            Ok(Message::Close(frame)) => Read::Closed(frame),
            Ok(_) => Read::Nothing,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Read::Nothing
            }
            Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(_)
                | tungstenite::Error::Io(_),
            ) => Read::Closed(None),
            Err(e) => panic!("reading the WebSocket: {e}"),
        }
    }

    /// Messages until one matches `wanted` (returned last), within [`WAIT`].
    pub fn until(&mut self, what: &str, mut wanted: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.read() {
                Read::Message(message) => {
                    let done = wanted(&message);
                    seen.push(message);
                    if done {
                        return seen;
                    }
                }
                Read::Closed(frame) => {
                    panic!("closed ({frame:?}) waiting for {what}; saw {seen:?}")
                }
                Read::Nothing => {}
            }
        }
        panic!("timed out waiting for {what}; saw {seen:?}");
    }

    /// The reply with this `id`, skipping pushes.
    pub fn reply(&mut self, id: i64) -> Value {
        self.until(&format!("the reply to {id}"), |m| m["id"] == id)
            .pop()
            .unwrap()
    }

    /// Reads until the server closes; the close frame and the messages before it.
    pub fn until_closed(&mut self) -> (Option<CloseFrame>, Vec<Value>) {
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            match self.read() {
                Read::Message(message) => seen.push(message),
                Read::Closed(frame) => return (frame, seen),
                Read::Nothing => {}
            }
        }
        panic!(
            "the server did not close the connection; saw {} messages",
            seen.len()
        );
    }

    pub fn close(mut self) {
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}
