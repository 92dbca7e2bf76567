//! The access log and the headers every answer carries (docs/operations.md#access-log): one
//! line at `info` per request with its method, route, status, latency, request id, player (when
//! authenticated) and error code (when it failed), never a header or a body; `X-Request-Id` on
//! every answer (the client's, when it sent a usable one); `X-Cache` on reads, saying where the
//! answer came from.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderName, HeaderValue, StatusCode},
    middleware::Next,
    response::Response,
};
use tracing::info;

use super::error::ErrorCode;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// Where this process's read models come from, as `X-Cache` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The World of this process published them (`serve`): `X-Cache: world`.
    World,
    /// This process's copy of the L2 read models in Redis (`api`): `X-Cache: l2`.
    L2,
}

impl ReadSource {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            ReadSource::World => "world",
            ReadSource::L2 => "l2",
        })
    }
}

/// The authenticated player of a request, once the [`super::extract::Player`] extractor knows
/// it: the access log names it.
#[derive(Clone, Default)]
pub struct RequestPlayer(Arc<OnceLock<String>>);

impl RequestPlayer {
    pub fn set(&self, player: &str) {
        let _ = self.0.set(player.to_string());
    }
}

/// A request id the client sent, if usable: 1–64 characters of `[A-Za-z0-9._:-]`.
fn client_request_id(request: &Request) -> Option<HeaderValue> {
    let value = request.headers().get(REQUEST_ID)?;
    let text = value.to_str().ok()?;
    let usable = (1..=64).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    usable.then(|| value.clone())
}

/// A new request id: this process's random prefix and a counter.
fn new_request_id() -> HeaderValue {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(crate::random_hex::<4>);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    HeaderValue::from_str(&format!("{prefix}-{n}")).unwrap_or(HeaderValue::from_static("-"))
}

/// Logs the request once answered, and gives the answer its request id.
pub async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = client_request_id(&request).unwrap_or_else(new_request_id);
    let player = RequestPlayer::default();
    request.extensions_mut().insert(player.clone());
    let method = request.method().clone();
    // The route's pattern, not the path: ids and query strings stay out of the log.
    // A shared string: no copy per request.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(request).await;
    let status = response.status();
    let error = response.extensions().get::<ErrorCode>().copied();
    info!(
        target: "tianxia::access",
        method = %method,
        route = route.as_ref().map_or("(no route)", MatchedPath::as_str),
        status = status.as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        request_id = id.to_str().unwrap_or("-"),
        player = player.0.get().map(String::as_str),
        error = error.map(|e| e.name()),
        "request"
    );
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// Around every read, in one pass (each middleware costs a request its own boxed service):
/// `X-Cache`, the read models the answer came from (`miss` when they did not hold what was
/// asked, or are not loaded yet), and the `ETag` with its `304`
/// ([`super::browsers::etag`]).
pub async fn read_answer(
    State(source): State<ReadSource>,
    request: Request,
    next: Next,
) -> Response {
    let wanted = super::browsers::if_none_match(&request);
    let mut response = next.run(request).await;
    let value = match response.status() {
        StatusCode::NOT_FOUND | StatusCode::SERVICE_UNAVAILABLE => {
            Some(HeaderValue::from_static("miss"))
        }
        status if status.is_success() => Some(source.header()),
        _ => None,
    };
    if let Some(value) = value {
        response.headers_mut().insert(X_CACHE, value);
    }
    super::browsers::etag(&wanted, response).await
}
