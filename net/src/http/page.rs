//! The pages, compiled into the binary from `net/web/` so they need no network but this
//! server: the spectator page (docs/page.md) at `GET /`, the API's browsable reference at
//! `GET /docs`, and their scripts and styles (and the WebSocket contract the reference shows)
//! under `GET /web/{file}`. It owns only their bytes and headers; what the pages do is in
//! their scripts, through the public HTTP API and the WebSocket like any other client.
//!
//! Each answer carries a strong `ETag` (a hash of the bytes) and `Cache-Control: no-cache`:
//! a browser revalidates and gets `304 Not Modified` until the binary changes. The page runs
//! under a Content-Security-Policy that allows nothing but this origin.

use std::sync::LazyLock;

use axum::{
    Router,
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sha2::{Digest, Sha256};

use super::{
    AppState,
    error::{ApiError, ErrorBody},
};

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
        let tag = self.etag.to_str().unwrap_or_default();
        if super::browsers::none_match(request.get_all(header::IF_NONE_MATCH), tag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        (headers, self.body).into_response()
    }
}

/// The files under `/web/`, by name: the pages' scripts and styles, and the WebSocket
/// contract the API page shows.
static FILES: LazyLock<[(&str, Asset); 5]> = LazyLock::new(|| {
    [
        ("app.js", Asset::new(JS, include_str!("../../web/app.js"))),
        (
            "style.css",
            Asset::new(CSS, include_str!("../../web/style.css")),
        ),
        ("docs.js", Asset::new(JS, include_str!("../../web/docs.js"))),
        (
            "docs.css",
            Asset::new(CSS, include_str!("../../web/docs.css")),
        ),
        (
            "websocket.md",
            Asset::new(
                "text/markdown; charset=utf-8",
                include_str!("../../../docs/websocket.md"),
            ),
        ),
    ]
});
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static INDEX: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "text/html; charset=utf-8",
        include_str!("../../web/index.html"),
    )
});
static DOCS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new(
        "text/html; charset=utf-8",
        include_str!("../../web/docs.html"),
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
    path = "/docs",
    tag = "page",
    responses(
        (status = 200, description = "this API, browsable: the OpenAPI document rendered, and the WebSocket messages", content_type = "text/html", body = String),
        (status = 304, description = "not modified since the `ETag` the request names"),
    ),
)]
pub async fn docs(request: HeaderMap) -> Response {
    DOCS.answer(&request)
}

#[utoipa::path(
    get,
    path = "/web/{file}",
    tag = "page",
    params(("file" = String, Path, description = "a file of the pages: `app.js`, `style.css`, `docs.js`, `docs.css`, or `websocket.md` (the WebSocket contract)", pattern = "^[a-z]+\\.(js|css|md)$")),
    responses(
        (status = 200, description = "the file", content(
            (String = "text/javascript"),
            (String = "text/css"),
            (String = "text/markdown"),
        )),
        (status = 304, description = "not modified since the `ETag` the request names"),
        (status = 404, description = "no such file (`not_found`)", body = ErrorBody),
    ),
)]
pub async fn file(Path(name): Path<String>, request: HeaderMap) -> Response {
    match FILES.iter().find(|(n, _)| *n == name) {
        Some((_, asset)) => asset.answer(&request),
        None => ApiError::not_found(format!("no file {name:?} under /web/")).into_response(),
    }
}

/// The pages' routes (GET, and HEAD through GET).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/docs", get(docs))
        .route("/web/{file}", get(file))
}
