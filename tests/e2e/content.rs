//! Content by data (docs/data-files.md#troops): a designer adds a troop type to a copied
//! `assets/troops.toml` while the server runs, and with no code change and no restart a
//! player's general joins as it, recruits more of it and wins a battle with it, under the
//! counters the designer gave it; a reload that would take the type away from the generals
//! leading it is refused.

use std::fs;

use serde_json::{Value, json};

use crate::{
    play::{command, get, register},
    support::{SPEARMAN, Server, copy_dir, post, repo, request, wait_for},
};

const ADMIN: &str = "an-admin-token-for-content";

fn join(server: &Server, token: &str, troop_type: &str) -> crate::support::Reply {
    post(
        &server.url("/api/join"),
        Some(token),
        &json!({"name": "Spear", "nation": "west", "troop_type": troop_type}),
    )
}

/// Waits for the order's verdict and, for an accepted timed order, its completion.
fn settled(server: &Server, token: &str, id: &str) -> Value {
    wait_for(&format!("order {id} to settle"), || {
        let order = get(server, token, &format!("/api/orders/{id}")).json;
        matches!(
            order["status"].as_str(),
            Some("completed" | "rejected" | "cancelled")
        )
        .then_some(order)
    })
}

#[test]
fn a_troop_type_added_in_the_data_is_recruited_and_fights() {
    let dir = tempfile::tempdir().unwrap();
    let assets = dir.path().join("assets");
    copy_dir(&repo().join("assets"), &assets);
    // Recruits in a game minute, so the test does not wait for the AI to move first.
    let commands = assets.join("commands.toml");
    let text = fs::read_to_string(&commands).unwrap();
    fs::write(
        &commands,
        text.replacen(
            "[RECRUIT]\nmcp = 10\nduration = 7200",
            "[RECRUIT]\nmcp = 10\nduration = 60",
            1,
        ),
    )
    .unwrap();
    let troops = assets.join("troops.toml");
    let shipped = fs::read_to_string(&troops).unwrap();
    let server = Server::start_in(
        dir,
        &[
            "--scenario",
            "tiny",
            "--speed",
            "1200",
            "--assets",
            "assets",
        ],
        &[("TIANXIA_ADMIN_TOKEN", ADMIN)],
    );
    server.wait_ready();
    let token = register(&server, "Spear");

    // Before the designer adds it, the World refuses the type and names those it knows.
    let refused = join(&server, &token, "spearman");
    assert_eq!(refused.status, 400, "{}", refused.text);
    assert!(
        refused.text.contains("no troop type \\\"spearman\\\"")
            && refused.text.contains("archer, cavalry, infantry"),
        "{}",
        refused.text
    );

    // The designer adds it; the running server takes it at its next tick.
    fs::write(&troops, format!("{shipped}{SPEARMAN}")).unwrap();
    wait_for("the spearman to be in the rules", || {
        let rules = server.get("/api/rules").json;
        (rules["troops"]["spearman"]["counters"]["cavalry"] == 1.5).then_some(())
    });

    // A general joins as spearmen, and recruits more of them.
    let joined = join(&server, &token, "spearman");
    assert_eq!(joined.status, 201, "{}", joined.text);
    let me = get(&server, &token, "/api/me").json["general"].clone();
    assert_eq!(me["troop_type"], "spearman", "{me}");
    assert_eq!(me["troops"], 3_000, "{me}");
    let id = me["id"].as_str().unwrap().to_string();
    let switch = command(
        &server,
        &token,
        json!({"id": "switch", "type": "RECRUIT", "general": id,
               "args": {"amount": 500, "troop_type": "cavalry"}}),
    );
    assert_eq!(switch.status, 202, "{}", switch.text);
    let switch = settled(&server, &token, "switch");
    assert_eq!(switch["status"], "rejected", "{switch}");
    assert!(
        switch["message"]
            .as_str()
            .unwrap_or_default()
            .contains("leads one troop type"),
        "{switch}"
    );
    let recruit = command(
        &server,
        &token,
        json!({"id": "spears", "type": "RECRUIT", "general": id,
               "args": {"amount": 500, "troop_type": "spearman"}}),
    );
    assert_eq!(recruit.status, 202, "{}", recruit.text);
    let recruit = settled(&server, &token, "spears");
    assert_eq!(recruit["status"], "completed", "{recruit}");
    let me = get(&server, &token, "/api/me").json["general"].clone();
    assert_eq!(me["troops"], 3_500, "{me}");
    assert_eq!(me["troop_type"], "spearman", "{me}");

    // They march on the outlaws' Crossroads and win.
    let sent = command(
        &server,
        &token,
        json!({"id": "march", "type": "MOVE", "general": id, "args": {"to": "crossroads"}}),
    );
    assert_eq!(sent.status, 202, "{}", sent.text);
    let battle = wait_for("the battle at crossroads to end", || {
        let battles = server.get("/api/battles?status=finished").json;
        battles.as_array().and_then(|list| {
            list.iter()
                .find(|b| {
                    b["city"] == "crossroads"
                        && b["attacker"]["generals"]
                            .as_array()
                            .is_some_and(|g| g.iter().any(|g| g == id.as_str()))
                })
                .cloned()
        })
    });
    assert_eq!(battle["winner"], "attacker", "{battle}");
    let battle_id = battle["id"].as_str().unwrap();

    // The recording shows who fought as what, under which numbers.
    let recording = server.get(&format!("/api/battles/{battle_id}/recording"));
    assert_eq!(recording.status, 200, "{}", recording.text);
    let setup = &recording.json["setup"];
    let ours = setup["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] == id.as_str())
        .unwrap_or_else(|| panic!("no group of {id}: {setup}"));
    assert_eq!(ours["troop_type"], "spearman", "{ours}");
    assert_eq!(ours["soldiers"], 3_500, "{ours}");
    assert_eq!(setup["troops"]["spearman"]["counters"]["cavalry"], 1.5);

    // Taking the type away from the generals who lead it is refused; the data stays.
    fs::write(&troops, &shipped).unwrap();
    let reload = request(
        "POST",
        &server.url("/admin/reload"),
        Some(ADMIN),
        Some(b"".as_slice()),
    );
    assert_eq!(reload.status, 422, "{}", reload.text);
    assert!(
        reload
            .text
            .contains("lead spearman: a troop type in use stays"),
        "{}",
        reload.text
    );
    let rules = server.get("/api/rules").json;
    assert!(rules["troops"]["spearman"].is_object(), "{rules}");
}
