//! The OpenAPI document (`GET /api/openapi.json`) as a client developer uses it: it names
//! every route of the route table in docs/http.md with the statuses the table gives, and a
//! property-based API fuzzer (Schemathesis, installed by `scripts/test.sh`) sending requests
//! generated from it to a live server finds no server error and no answer the document does
//! not describe.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::PathBuf,
    process::Command,
};

use serde_json::json;

use crate::{
    play::{join, quiet_assets, register},
    support::{Server, repo},
};

/// (method, path) → statuses, from the route table of docs/http.md.
fn route_table() -> BTreeMap<(String, String), BTreeSet<u16>> {
    let text = std::fs::read_to_string(repo().join("docs/http.md")).unwrap();
    let table = text
        .split("## Route list")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the route list of docs/http.md");
    let mut routes = BTreeMap::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let statuses: BTreeSet<u16> = [cells[3], cells[4]]
            .iter()
            .flat_map(|c| c.split([',', ' ']))
            .filter_map(|s| s.parse().ok())
            .collect();
        for route in cells[1].split(", ") {
            let route = route.trim_matches('`');
            let (method, path) = route.split_once(' ').unwrap();
            let path = path.split(['?', '[']).next().unwrap();
            routes.insert((method.to_lowercase(), path.to_string()), statuses.clone());
        }
    }
    routes
}

#[test]
fn the_document_describes_every_route_of_the_route_table() {
    let server = Server::start(&["--scenario", "tiny"]);
    let reply = server.get("/api/openapi.json");
    assert_eq!(reply.status, 200);
    let document = reply.json;
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeMap::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let statuses: BTreeSet<u16> = operation["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.parse().ok())
                .collect();
            documented.insert((method.clone(), path.clone()), statuses);
        }
    }
    let table = route_table();
    assert_eq!(
        documented.keys().collect::<Vec<_>>(),
        table.keys().collect::<Vec<_>>(),
        "the document's routes and the route table's"
    );
    for (route, statuses) in &table {
        let missing: Vec<&u16> = statuses
            .iter()
            // A list's row shares its statuses with the entity's: 404 is the entity's.
            .filter(|s| **s != 500 && (**s != 404 || route.1.contains('{')))
            .filter(|s| !documented[route].contains(s))
            .collect();
        assert!(
            missing.is_empty(),
            "{route:?} does not document {missing:?}"
        );
    }
    // Every route the document names is served (none answers "no route").
    for (method, path) in documented.keys() {
        let path = path.replace("{id}", "x");
        let answer = crate::support::request(
            &method.to_uppercase(),
            &server.url(&path),
            None,
            (method == "post").then_some(b"{}".as_slice()),
        );
        assert!(
            !answer.text.contains("no route for"),
            "{method} {path}: {}",
            answer.text
        );
    }
}

/// A command `scripts/test.sh` installs into `.venv` from PyPI: the path in `variable`, or
/// the one in `.venv`.
fn venv_tool(variable: &str, command: &str, package: &str) -> PathBuf {
    if let Ok(path) = std::env::var(variable) {
        return PathBuf::from(path);
    }
    let venv = repo().join(".venv/bin").join(command);
    assert!(
        venv.exists(),
        "this test needs {command}: run `scripts/test.sh` (it installs it into .venv), or \
         `.venv/bin/pip install {package}`, or set {variable} to its path"
    );
    venv
}

/// The Schemathesis command: `TIANXIA_SCHEMATHESIS`, or the one `scripts/test.sh` installs.
fn schemathesis() -> PathBuf {
    venv_tool("TIANXIA_SCHEMATHESIS", "schemathesis", "schemathesis")
}

/// The document is valid OpenAPI, as a validator made for it says (every reference
/// resolves, every schema is well formed).
#[test]
fn the_document_is_valid_openapi() {
    let server = Server::start(&["--scenario", "tiny"]);
    let reply = server.get("/api/openapi.json");
    assert_eq!(reply.status, 200);
    let file = server.dir.path().join("openapi.json");
    std::fs::write(&file, &reply.text).unwrap();
    let validator = venv_tool(
        "TIANXIA_OPENAPI_VALIDATOR",
        "openapi-spec-validator",
        "openapi-spec-validator",
    );
    let output = Command::new(validator).arg(&file).output().unwrap();
    let said: String = String::from_utf8_lossy(&output.stdout)
        .chars()
        .chain(String::from_utf8_lossy(&output.stderr).chars())
        .take(2_000)
        .collect();
    assert!(output.status.success(), "the validator refused it: {said}");
}

#[test]
fn the_api_fuzzer_finds_no_server_error_and_no_answer_outside_the_document() {
    let (server, _assets) = {
        let (dir, root) = quiet_assets(|_, text| text);
        let server = Server::start(&["--scenario", "tiny", "--assets", root.to_str().unwrap()]);
        (server, dir)
    };
    server.wait_ready();
    // A player with a general, so authenticated routes get past the token.
    let token = register(&server, "fuzzer");
    join(&server, &token, "north");
    let report = server.dir.path().join("schemathesis.json");
    let output = Command::new(schemathesis())
        .arg("run")
        .arg(server.url("/api/openapi.json"))
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
            // The coverage phase is left out: it stops on an error of its own here.
            "--phases",
            "examples,fuzzing,stateful",
            "--max-examples",
            "10",
            "--seed",
            "15",
            "--workers",
            "2",
            "--max-time",
            "45",
            "--request-timeout",
            "10",
            "--generation-database",
            "none",
            "--no-color",
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--report",
            "json",
            "--report-json-path",
        ])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", "")
        // Whatever it keeps stays in the test's directory.
        .current_dir(server.dir.path())
        .output()
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{stdout}\n{stderr}"
    );
    // The server is still whole.
    assert_eq!(server.get("/health").json, json!({"status": "ok"}));
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
