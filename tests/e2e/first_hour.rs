//! A newcomer's first hour (docs/playing.md): one new player, alone, through the public API
//! only, on a `tiny` world where the AI plays every other general as it always does. The player
//! registers, joins a nation, looks for a city its starting army can take (from what the API
//! shows of the cities next to its own), marches on it, wins the battle and takes the city
//! within the first game day.
//!
//! The world runs at speed 1,200 so the game day passes in about 72 seconds; the player acts in
//! its first few game minutes, hours before the AI's first march can reach the same city.

use serde_json::{Value, json};

use crate::{
    play::{command, get, register},
    support::{Server, post, wait_for},
};

const DAY: i64 = 86_400;

/// The defence of `city` as the onboarding guide weighs it: its garrison and the troops of the
/// generals of its owner standing in it, one tenth more for each wall level.
fn defence(server: &Server, city: &Value) -> f64 {
    let mut soldiers = city["garrison"].as_f64().unwrap();
    if let Some(owner) = city["owner"].as_str() {
        let id = city["id"].as_str().unwrap();
        let generals = server.get(&format!("/api/generals?nation={owner}&city={id}"));
        assert_eq!(generals.status, 200, "{}", generals.text);
        soldiers += generals
            .json
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["status"] == "idle" || g["status"] == "busy")
            .map(|g| g["troops"].as_f64().unwrap())
            .sum::<f64>();
    }
    soldiers * (1.0 + 0.1 * city["walls"].as_f64().unwrap())
}

#[test]
fn a_newcomer_alone_takes_a_city_in_the_first_game_day() {
    let server = Server::start(&["--scenario", "tiny", "--speed", "1200"]);
    server.wait_ready();

    // 1. An account, and a general in the West's capital.
    let token = register(&server, "Newcomer");
    let joined = post(
        &server.url("/api/join"),
        Some(&token),
        &json!({"name": "Newcomer", "nation": "west"}),
    );
    assert_eq!(joined.status, 201, "{}", joined.text);
    let me = get(&server, &token, "/api/me");
    assert_eq!(me.status, 200, "{}", me.text);
    let general = me.json["general"].clone();
    let id = general["id"].as_str().unwrap().to_string();
    assert_eq!(general["city"], "west_ford", "{general}");
    let troops = general["troops"].as_f64().unwrap();
    assert_eq!(troops, 3_000.0, "the starting army: {general}");

    // 2. The rules say what a march costs, and who the newcomer may fight.
    let rules = server.get("/api/rules");
    assert_eq!(rules.status, 200, "{}", rules.text);
    let ratio = 1.5;

    // 3. A target: a city next to ours, neutral or of a nation at war with ours, whose
    //    defence is well under the starting army.
    let home = server.get("/api/cities/west_ford").json;
    let west = server.get("/api/nations/west").json;
    let mut targets: Vec<(f64, String)> = Vec::new();
    for road in home["neighbors"].as_array().unwrap() {
        let city = server.get(&format!("/api/cities/{}", road["city"].as_str().unwrap()));
        assert_eq!(city.status, 200, "{}", city.text);
        let city = city.json;
        let open = match city["owner"].as_str() {
            None => true,
            Some(owner) => owner != "west" && west["relations"][owner] == "war",
        };
        let defence = defence(&server, &city);
        if open && troops >= ratio * defence {
            targets.push((defence, city["id"].as_str().unwrap().to_string()));
        }
    }
    targets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (_, target) = targets
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no city the starting army can take next to West Ford"));
    assert_eq!(target, "crossroads", "the outlaws' city is the one to take");

    // 4. March on it.
    let sent = command(
        &server,
        &token,
        json!({"id": "first-march", "type": "MOVE", "general": id, "args": {"to": target}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let order = wait_for("the march to be accepted", || {
        let order = get(&server, &token, "/api/orders/first-march");
        (order.json["status"] != "queued").then_some(order.json)
    });
    assert_eq!(order["status"], "accepted", "{order}");
    let started = server.get("/api/world").json["game_seconds"]
        .as_i64()
        .unwrap();
    assert!(started < 3 * 3_600, "the newcomer acted late: {started}");

    // 5. The battle, and the city: wait for the battle our general fought at the target to end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let battle = loop {
        let battles = server.get("/api/battles?status=finished");
        assert_eq!(battles.status, 200, "{}", battles.text);
        let ours = battles.json.as_array().unwrap().iter().find(|b| {
            b["city"] == target.as_str()
                && b["attacker"]["generals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|g| g == id.as_str())
        });
        if let Some(battle) = ours {
            break battle.clone();
        }
        let now = server.get("/api/world").json["game_seconds"]
            .as_i64()
            .unwrap();
        assert!(now < 2 * DAY, "no battle at {target} by game second {now}");
        assert!(
            std::time::Instant::now() < deadline,
            "no battle at {target} after 300 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };

    // 6. The after-action report: won, why, and what it cost.
    assert_eq!(battle["winner"], "attacker", "{battle}");
    assert!(
        ["eliminated", "routed"].contains(&battle["reason"].as_str().unwrap()),
        "{battle}"
    );
    assert!(battle["ended_at"].as_i64().unwrap() < DAY, "{battle}");
    assert!(
        battle["casualties"]["garrison"].as_u64().unwrap() > 0,
        "{battle}"
    );
    assert!(battle["casualties"].get(id.as_str()).is_some(), "{battle}");

    // The city changed hands to the newcomer's nation in that battle (the event log says so
    // once it is durable), and the newcomer stands in it or fought on from it.
    let captured = wait_for("the capture in the event log", || {
        let events = server.get(&format!("/api/events?aggregate=city:{target}&limit=1000"));
        events
            .json
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "CityCaptured" && e["payload"]["battle"] == battle["id"])
            .cloned()
    });
    assert_eq!(captured["payload"]["to"], "west", "{captured}");
    assert!(captured["game_time"].as_i64().unwrap() < DAY, "{captured}");
}
