//! What a browser client gets from the API (docs/http.md#browser-clients): CORS for the
//! origins the operator allows and nothing for others, answers compressed when the client
//! accepts it, and reads with an `ETag` a client revalidates for nothing.

use std::collections::BTreeMap;

use crate::{
    play::quiet_assets,
    support::{Server, run},
};

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// Status, headers and raw body (no decompression) of a request with `headers`.
fn call(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let agent = agent();
    let mut request = match method {
        "GET" => agent.get(url),
        "OPTIONS" => agent.options(url),
        _ => panic!("{method}"),
    };
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = response.body_mut().read_to_vec().unwrap();
    (status, headers, body)
}

fn preflight(server: &Server, origin: &str) -> (u16, BTreeMap<String, String>) {
    let (status, headers, _) = call(
        "OPTIONS",
        &server.url("/api/commands"),
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, content-type",
            ),
        ],
    );
    (status, headers)
}

#[test]
fn cors_answers_the_allowed_origins_and_no_other() {
    let server = Server::start(&[
        "--scenario",
        "tiny",
        "--cors-origins",
        "https://play.example, http://localhost:3000",
    ]);
    server.wait_ready();
    let (status, headers) = preflight(&server, "https://play.example");
    assert_eq!(status, 200, "{headers:?}");
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://play.example"
    );
    assert!(headers["access-control-allow-methods"].contains("POST"));
    let allowed = headers["access-control-allow-headers"].to_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    // Another origin gets no permission: the browser refuses the request.
    let (_, headers) = preflight(&server, "https://elsewhere.example");
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "{headers:?}"
    );
    // A read from an allowed page sees the answer and the headers it may read.
    let (status, headers, _) = call(
        "GET",
        &server.url("/api/world"),
        &[("Origin", "http://localhost:3000")],
    );
    assert_eq!(status, 200);
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert!(headers["access-control-expose-headers"].contains("x-request-id"));

    // Without the option no origin is allowed.
    let plain = Server::start(&["--scenario", "tiny"]);
    plain.wait_ready();
    let (_, headers) = preflight(&plain, "https://play.example");
    assert!(
        !headers.contains_key("access-control-allow-origin"),
        "{headers:?}"
    );

    // What is not an origin is refused at start, naming it.
    let out = run(
        &[
            "serve",
            "--scenario",
            "tiny",
            "--cors-origins",
            "play.example/app",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("play.example/app"));
}

#[test]
fn reads_are_compressed_for_clients_that_accept_it_and_revalidated_by_etag() {
    // A quiet AI: nothing changes the city between two reads.
    let (_assets, root) = quiet_assets(|_, text| text);
    let server = Server::start(&["--scenario", "tiny", "--assets", root.to_str().unwrap()]);
    server.wait_ready();
    let url = server.url("/api/generals");
    let (status, plain, body) = call("GET", &url, &[]);
    assert_eq!(status, 200);
    assert!(!plain.contains_key("content-encoding"));
    assert!(body.len() > 1024, "a list worth compressing");
    let (_, headers, gzip) = call("GET", &url, &[("Accept-Encoding", "gzip")]);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(gzip.starts_with(&[0x1f, 0x8b]) && gzip.len() < body.len());
    let (_, headers, br) = call("GET", &url, &[("Accept-Encoding", "br")]);
    assert_eq!(headers["content-encoding"], "br");
    assert!(br.len() < body.len());

    // The same read again, naming what the client holds: nothing to send.
    let city = server.url("/api/cities/north_gate");
    let (status, headers, first) = call("GET", &city, &[]);
    assert_eq!(status, 200);
    let tag = headers["etag"].clone();
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    assert_eq!(headers["cache-control"], "no-cache");
    let (status, headers, body) = call("GET", &city, &[("If-None-Match", &tag)]);
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(headers["etag"], tag);
    let (status, _, body) = call("GET", &city, &[("If-None-Match", "\"0000000000000000\"")]);
    assert_eq!(status, 200);
    assert_eq!(body, first);
}
