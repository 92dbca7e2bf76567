//! The spectator page at `/` (docs/page.md) in a real headless Chromium, as a visitor and a
//! player use it: the map with a marker per city, a march that moves, a battle whose units
//! move on its field, a player who registers, joins and sends a MOVE from the page and sees
//! its order pushed back, no console error, and the page coming back by itself after the
//! server restarts. The same checks run against `serve` and against one `daemon` with one
//! `api`.
//!
//! With `TIANXIA_SCREENSHOTS=DIR` the test saves `march.png` and `battle.png` there
//! (`scripts/screenshots.sh` takes the README's pictures with it).

use std::{collections::BTreeMap, path::PathBuf};

use serde_json::{Value, json};

use crate::{
    play::{command, join, quiet_assets, register},
    roles::Deployment,
    support::{Browser, Server, browser::LogEntry, wait_for},
};

/// The tiny scenario with a short road from North's capital to West's: a march there takes
/// 360 game seconds (15 s at speed 24) and its battle runs in real time.
fn short_road(file: &str, text: String) -> String {
    match file {
        "roads.toml" => {
            format!("{text}\n[[road]]\nfrom = \"north_gate\"\nto = \"west_ford\"\ndistance = 1\n")
        }
        _ => text,
    }
}

fn args(root: &str) -> Vec<String> {
    ["--scenario", "tiny", "--speed", "24", "--assets", root]
        .map(String::from)
        .to_vec()
}

fn screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Some(dir) = std::env::var_os("TIANXIA_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), png).unwrap();
    }
}

/// Console entries the page itself caused: exceptions, `console.error`, and anything else
/// at SEVERE but a failed connection while the server is down.
fn page_errors(log: &[LogEntry], server_was_down: bool) -> Vec<String> {
    log.iter()
        .filter(|e| e.level == "SEVERE" || (e.level == "WARNING" && e.source != "network"))
        .filter(|e| !(server_was_down && e.source == "network"))
        .map(|e| format!("{} {}: {}", e.level, e.source, e.message))
        .collect()
}

/// The number of the last event the page has seen, and how many times it connected.
fn progress(browser: &Browser) -> (u64, u64) {
    let value =
        browser.eval("return [window.tianxia.lastSeq || 0, window.tianxia.stats.connects];");
    (value[0].as_u64().unwrap(), value[1].as_u64().unwrap())
}

fn wait_live(browser: &Browser) {
    browser.wait(
        "the page to be live",
        "return window.tianxia && window.tianxia.connection === 'live' \
         && document.getElementById('status').dataset.state === 'live';",
    );
}

/// Everything the page is checked for, on `server`; `restart` stops the process the page
/// talks to and starts it again on the same address.
fn watch_and_play(mut server: Server, restart: impl FnOnce(Server) -> Server, tag: &str) {
    let mut browser = Browser::start(1280, 800);
    browser.goto(&server.url("/"));
    wait_live(&browser);

    // One marker per city, named by its city.
    let cities = server.get("/api/cities").json;
    let cities = cities.as_array().unwrap();
    let markers = browser.wait(
        "the cities on the map",
        "const marks = [...document.querySelectorAll('#map .city')];\
         return marks.length > 0 && marks.map(m => [m.dataset.id, m.getAttribute('aria-label')]);",
    );
    let markers: BTreeMap<String, String> = markers
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m[0].as_str().unwrap().into(), m[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(markers.len(), cities.len(), "{markers:?}");
    for city in cities {
        let label = &markers[city["id"].as_str().unwrap()];
        assert!(
            label.contains(city["name"].as_str().unwrap()),
            "{label} names {city}"
        );
    }

    // A player marches to West's capital: the march is drawn and moves along its road.
    let player = format!("walker-{tag}");
    let token = register(&server, &player);
    join(&server, &token, "north");
    let general = format!("g-{player}");
    let sent = command(
        &server,
        &token,
        json!({"id": "to-west", "type": "MOVE", "general": general, "args": {"to": "west_ford"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let march = format!("#map .march[data-id='{general}']");
    let first = browser.wait(
        "the march on the map",
        &format!("const m = document.querySelector(\"{march}\"); return m && m.getAttribute('transform');"),
    );
    let moved = browser.wait(
        "the march to move",
        &format!(
            "const m = document.querySelector(\"{march}\"); \
             return m && m.getAttribute('transform') !== {first} && m.getAttribute('transform');"
        ),
    );
    assert_ne!(first, moved);
    screenshot(&browser, "march.png");

    // Its battle: the city is marked, opening it draws the field, units move between frames.
    let attacked = "#map .city.under-attack[data-id='west_ford']";
    browser.wait(
        "west_ford to be marked under attack",
        &format!("return !!document.querySelector(\"{attacked}\");"),
    );
    browser.eval(&format!(
        "document.querySelector(\"{attacked}\").dispatchEvent(new MouseEvent('click', {{bubbles: true}})); return true;"
    ));
    let frame = |after: i64| -> Value {
        browser.wait(
            "a battle frame",
            &format!(
                "const b = window.tianxia.battle; \
                 return b && b.units && b.units.length > 0 && b.tick > {after} \
                   && document.querySelector('#battle canvas') && {{tick: b.tick, units: b.units}};"
            ),
        )
    };
    let one = frame(-1);
    let positions = |frame: &Value| -> BTreeMap<u64, (f64, f64)> {
        frame["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                (
                    u[0].as_u64().unwrap(),
                    (u[3].as_f64().unwrap(), u[4].as_f64().unwrap()),
                )
            })
            .collect()
    };
    let sides: std::collections::BTreeSet<u64> = one["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u[1].as_u64().unwrap())
        .collect();
    assert_eq!(sides.len(), 2, "both sides on the field: {one}");
    let two = wait_for("a unit to move between two frames", || {
        let two = frame(one["tick"].as_i64().unwrap());
        let (a, b) = (positions(&one), positions(&two));
        a.iter()
            .any(|(id, p)| b.get(id).is_some_and(|q| q != p))
            .then_some(two)
    });
    assert!(two["tick"].as_i64() > one["tick"].as_i64());
    // The picture once the armies have closed in (or the battle has ended).
    browser.wait(
        "two seconds of the battle",
        "const b = window.tianxia.battle; return b && (b.frames >= 20 || !!b.result);",
    );
    screenshot(&browser, "battle.png");

    // A player from the page itself: register, join, MOVE, and the order pushed back.
    let name = format!("Page {tag}");
    browser.eval(&format!(
        "document.querySelector('#login-name').value = 'page-{tag}'; \
         document.querySelector('#login-password').value = 'correct horse'; \
         document.querySelector('#btn-register').click(); return true;"
    ));
    browser.wait(
        "the page to be logged in",
        "return !document.getElementById('account').hidden && !document.getElementById('join-form').hidden;",
    );
    browser.eval(&format!(
        "document.querySelector('#join-name').value = '{name}'; \
         document.querySelector('#join-nation').value = 'north'; \
         document.querySelector('#btn-join').click(); return true;"
    ));
    browser.wait(
        "the page's player to have a general",
        "return !document.getElementById('command-form').hidden;",
    );
    browser.eval(
        "document.querySelector('#move-to').value = 'hill_fort'; \
         document.querySelector('#btn-move').click(); return true;",
    );
    browser.wait(
        "the MOVE sent from the page to be accepted",
        "return [...document.querySelectorAll('#orders li')] \
           .some(li => li.textContent.startsWith('MOVE') && li.classList.contains('status-accepted'));",
    );
    let view = server.get(&format!("/api/generals/g-page-{tag}")).json;
    let shown = browser.eval(
        "return [document.getElementById('orders').innerText, document.getElementById('player-msg').innerText];",
    );
    assert_eq!(view["status"], "marching", "{view} {shown}");

    // Nothing went wrong in the page so far.
    browser.read_log();
    let errors = page_errors(&browser.log, false);
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    // The server restarts: the page reconnects by itself, resumes after the last event it
    // had, and goes on showing what happens.
    let (seq_before, connects_before) = progress(&browser);
    server = restart(server);
    wait_for("the page to reconnect", || {
        let (_, connects) = progress(&browser);
        (connects > connects_before).then_some(())
    });
    wait_live(&browser);
    let stats = browser.eval("return window.tianxia.stats;");
    assert!(stats["resumes"].as_u64().unwrap() >= 1, "{stats}");
    let late = register(&server, &format!("late-{tag}"));
    let reply = crate::support::post(
        &server.url("/api/join"),
        Some(&late),
        &json!({"name": "Latecomer", "nation": "north"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.text);
    browser.wait(
        "the join after the restart in the feed",
        &format!(
            "const f = document.getElementById('feed'); return f && f.textContent.includes('late-{tag}');"
        ),
    );
    let (seq_after, _) = progress(&browser);
    assert!(seq_after > seq_before, "{seq_after} > {seq_before}");

    // On a phone-sized screen the page fits its width.
    browser.set_size(390, 844);
    browser.wait(
        "the page to fit a phone's width",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1 \
           && document.querySelector('#map').getBoundingClientRect().width > 300;",
    );

    browser.read_log();
    let errors = page_errors(&browser.log, true);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn the_page_shows_the_world_live_and_plays_on_serve() {
    let (_assets, root) = quiet_assets(short_road);
    let root = root.to_str().unwrap().to_string();
    let args = args(&root);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&refs);
    server.wait_ready();
    // The page and its files are served from the binary, with validators.
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page.text.contains("/web/app.js"), "{}", page.text);
    assert_eq!(server.get("/web/nothing.js").status, 404);
    assert!(page.headers["content-type"].starts_with("text/html"));
    assert!(page.headers["content-security-policy"].contains("default-src 'self'"));
    for (file, kind) in [
        ("/web/app.js", "text/javascript"),
        ("/web/style.css", "text/css"),
    ] {
        let reply = server.get(file);
        assert_eq!(reply.status, 200, "{file}");
        assert!(reply.headers["content-type"].starts_with(kind), "{file}");
    }
    // A browser that has the page revalidates it for nothing.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let again = agent
        .get(server.url("/"))
        .header("If-None-Match", &page.headers["etag"])
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
    watch_and_play(
        server,
        |server| {
            let address = server.base.trim_start_matches("http://").to_string();
            let dir = server.stop_keeping_dir();
            let mut again = refs.clone();
            again.extend(["--bind", &address]);
            let server = Server::start_in(dir, &again, &[]);
            server.wait_ready();
            server
        },
        "serve",
    );
}

#[test]
fn the_page_shows_the_world_live_and_plays_on_an_api() {
    let deployment = Deployment::with_assets("page", short_road);
    let (args, envs) = (deployment.args(), deployment.envs());
    let daemon = Server::start_as("daemon", &args, &envs);
    daemon.wait_ready();
    let world = deployment.redis.world.clone();
    let api = Server::start_as("api", &["--world", &world], &envs);
    api.wait_ready();
    watch_and_play(
        api,
        |mut api| {
            let address = api.base.trim_start_matches("http://").to_string();
            api.terminate();
            let api = Server::start_as("api", &["--world", &world, "--bind", &address], &envs);
            api.wait_ready();
            api
        },
        "api",
    );
    drop(daemon);
}

/// The API's browsable reference at `/docs`: every operation and schema of the OpenAPI
/// document, and the WebSocket contract, in a real browser, with no console error.
#[test]
fn the_api_reference_shows_every_route_schema_and_the_websocket() {
    let server = Server::start(&["--scenario", "tiny"]);
    server.wait_ready();
    let document = server.get("/api/openapi.json").json;
    let mut routes: Vec<(String, String)> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    routes.sort();
    let schemas = document["components"]["schemas"].as_object().unwrap().len();

    let mut browser = Browser::start(1280, 800);
    browser.goto(&server.url("/docs"));
    let shown = browser.wait(
        "the operations",
        "const ops = [...document.querySelectorAll('.operation')];\
         return ops.length > 0 && ops.map(o => [o.dataset.method, o.dataset.path]);",
    );
    let mut shown: Vec<(String, String)> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o[0].as_str().unwrap().into(), o[1].as_str().unwrap().into()))
        .collect();
    shown.sort();
    assert_eq!(shown, routes);
    let count = browser.eval("return document.querySelectorAll('.schema').length;");
    assert_eq!(count.as_u64(), Some(schemas as u64));
    browser.wait(
        "the WebSocket contract",
        "const ws = document.getElementById('websocket'); \
         return ws && ws.textContent.includes('Resuming') && ws.querySelector('table') !== null;",
    );
    browser.set_size(390, 844);
    browser.wait(
        "the reference to fit a phone's width",
        "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
    );
    browser.read_log();
    let errors = page_errors(&browser.log, false);
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
