//! The spectator page (docs/page.md): `GET /`, `/app.js` and `/style.css`, compiled into the
//! binary from `net/web/`, so the page needs no network but this server. It owns only their
//! bytes and headers; what the page does is in `net/web/app.js`, through the public HTTP API
//! and the WebSocket like any other client.
//!
//! Each answer carries a strong `ETag` (a hash of the bytes) and `Cache-Control: no-cache`:
//! a browser revalidates and gets `304 Not Modified` until the binary changes. The page runs
//! under a Content-Security-Policy that allows nothing but this origin.

use std::sync::LazyLock;

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

use super::AppState;

/// Scripts, styles, connections and images from this origin only; no inline code.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; base-uri 'none'; \
                   frame-ancestors 'none'; form-action 'none'";

/// One file of the page.
struct Asset {
    content_type: &'static str,
    body: &'static str,
    etag: HeaderValue,
}

impl Asset {
    fn new(content_type: &'static str, body: &'static str) -> Asset {
        let digest = Sha256::digest(body.as_bytes());
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        Asset {
            content_type,
            body,
            etag: HeaderValue::from_str(&format!("\"{hex}\"")).expect("hex is a valid header"),
        }
    }

    fn answer(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == self.etag
            });
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (headers, self.body).into_response()
    }
}

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
});
static SCRIPT: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    )
});
static STYLE: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "text/css; charset=utf-8",
        include_str!("../../web/style.css"),
    )
});

#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    responses(
        (status = 200, description = "the spectator page (docs/page.md)", content_type = "text/html", body = String),
        (status = 304, description = "not modified since the `ETag` the request names"),
    ),
)]
pub async fn index(request: HeaderMap) -> Response {
    INDEX.answer(&request)
}

#[utoipa::path(
    get,
    path = "/app.js",
    tag = "page",
    responses(
        (status = 200, description = "the page's script", content_type = "text/javascript", body = String),
        (status = 304, description = "not modified since the `ETag` the request names"),
    ),
)]
pub async fn script(request: HeaderMap) -> Response {
    SCRIPT.answer(&request)
}

#[utoipa::path(
    get,
    path = "/style.css",
    tag = "page",
    responses(
        (status = 200, description = "the page's styles", content_type = "text/css", body = String),
        (status = 304, description = "not modified since the `ETag` the request names"),
    ),
)]
pub async fn style(request: HeaderMap) -> Response {
    STYLE.answer(&request)
}

/// The page's routes (GET, and HEAD through GET).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/style.css", get(style))
}
