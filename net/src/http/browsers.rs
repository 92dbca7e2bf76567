//! What browser clients need around the API (docs/http.md#browser-clients): CORS for the
//! origins an operator allows (`--cors-origins`), compressed answers for clients that accept
//! them, and validators on reads (`ETag`, answered `304 Not Modified` when unchanged). It
//! decides nothing about the game; it only shapes answers.

use std::{hash::BuildHasher, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_http::{
    compression::{
        CompressionLayer,
        predicate::{NotForContentType, Predicate, SizeAbove},
    },
    cors::{AllowOrigin, CorsLayer},
};

/// Origins allowed to call the API from a browser page served elsewhere. The page at `/` is
/// served by the API itself and needs none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No cross-origin access: no CORS headers are sent (the default).
    #[default]
    None,
    /// Any origin (`*`). Tokens travel in the `Authorization` header, never in cookies, so
    /// no credentials are ever shared with a page by the browser itself.
    Any,
    /// These origins exactly (`scheme://host[:port]`).
    List(Arc<[HeaderValue]>),
}

impl CorsOrigins {
    /// Parses a comma-separated list of origins, or `*`; an empty list allows none.
    pub fn parse(list: &str) -> Result<CorsOrigins, String> {
        let items: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Ok(CorsOrigins::None);
        }
        if items == ["*"] {
            return Ok(CorsOrigins::Any);
        }
        let mut origins = Vec::with_capacity(items.len());
        for item in items {
            let rest = item
                .strip_prefix("http://")
                .or_else(|| item.strip_prefix("https://"))
                .ok_or_else(|| {
                    format!("cors origin {item:?}: an origin is http:// or https:// and a host, or * alone")
                })?;
            if rest.is_empty() || rest.contains(['/', '?', '#', '*', ' ']) {
                return Err(format!(
                    "cors origin {item:?}: an origin is a scheme and a host with an optional port, no path"
                ));
            }
            let value = HeaderValue::from_str(&item.to_ascii_lowercase())
                .map_err(|_| format!("cors origin {item:?} is not a valid header value"))?;
            origins.push(value);
        }
        Ok(CorsOrigins::List(origins.into()))
    }

    /// The CORS layer, or none when no origin is allowed.
    pub(super) fn layer(&self) -> Option<CorsLayer> {
        let allow = match self {
            CorsOrigins::None => return None,
            CorsOrigins::Any => AllowOrigin::any(),
            CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
        };
        Some(
            CorsLayer::new()
                .allow_origin(allow)
                .allow_methods([Method::GET, Method::POST, Method::HEAD])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::IF_NONE_MATCH,
                ])
                .expose_headers([
                    header::ETAG,
                    header::RETRY_AFTER,
                    HeaderName::from_static("x-request-id"),
                    HeaderName::from_static("x-cache"),
                ])
                .max_age(Duration::from_secs(600)),
        )
    }
}

/// gzip or Brotli, as the client accepts, for answers over 1 KiB (not for images).
pub(super) fn compression() -> CompressionLayer<impl Predicate> {
    CompressionLayer::new()
        .gzip(true)
        .br(true)
        .compress_when(SizeAbove::new(1024).and(NotForContentType::IMAGES))
}

/// Whether `If-None-Match` values (`wanted`) name `tag` (weak or strong), or are `*`: the
/// client holds what it would be sent.
pub(super) fn none_match<'a>(wanted: impl IntoIterator<Item = &'a HeaderValue>, tag: &str) -> bool {
    wanted
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// Read bodies hashed for `ETag` at most this large; larger ones go without.
const MAX_TAGGED: usize = 16 << 20;

/// The `If-None-Match` values of a request, for [`etag`].
pub(super) fn if_none_match(request: &Request) -> Vec<HeaderValue> {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .cloned()
        .collect()
}

/// An `ETag` on every successful read (a hash of its body) and `304 Not Modified` with no
/// body when the request's `If-None-Match` (`wanted`) names it. `Cache-Control: no-cache`:
/// the world changes every tick, so a client revalidates each time and saves the body when
/// nothing changed.
pub(super) async fn etag(wanted: &[HeaderValue], response: Response) -> Response {
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_TAGGED).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let hash = foldhash::fast::FixedState::with_seed(0x0074_6961_6e78_6961).hash_one(&bytes[..]);
    let tag = format!("\"{hash:016x}\"");
    let fresh = none_match(wanted, &tag);
    if let Ok(value) = HeaderValue::from_str(&tag) {
        parts.headers.insert(header::ETAG, value);
    }
    parts
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if fresh {
        parts.status = StatusCode::NOT_MODIFIED;
        parts.headers.remove(header::CONTENT_TYPE);
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::empty());
    }
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_into_a_list_any_or_none_and_refuse_what_is_not_an_origin() {
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::None));
        assert_eq!(CorsOrigins::parse(" , "), Ok(CorsOrigins::None));
        assert_eq!(CorsOrigins::parse("*"), Ok(CorsOrigins::Any));
        let CorsOrigins::List(list) =
            CorsOrigins::parse("https://play.example, http://localhost:3000").unwrap()
        else {
            panic!("a list");
        };
        assert_eq!(
            list.iter().map(|v| v.to_str().unwrap()).collect::<Vec<_>>(),
            ["https://play.example", "http://localhost:3000"]
        );
        for bad in [
            "play.example",
            "https://",
            "https://play.example/",
            "https://play.example/app",
            "ftp://play.example",
            "*, https://play.example",
            "https://*.example",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
