//! The rules in force as `GET /api/rules` serves them (docs/http.md#rules): each command's cost,
//! duration and who may issue it, the position cards, the troop types and the balance constants,
//! all from the designer data the World runs on.

use components::{
    command::CommandType,
    data::CardScope,
    read_model::{CommandRule, IssuedBy, PositionRule, RulesView},
};

use crate::assets::GameData;

/// Who may issue `command` beyond the cards that list it (docs/rules.md#position-cards).
fn issued_by(command: CommandType) -> IssuedBy {
    match command {
        CommandType::Join => IssuedBy::Newcomer,
        CommandType::Move | CommandType::Train => IssuedBy::Anyone,
        CommandType::Recruit => IssuedBy::NationMember,
        _ => IssuedBy::Cards,
    }
}

pub fn rules_view(data: &GameData) -> RulesView {
    let commands = CommandType::ALL
        .into_iter()
        .map(|command| {
            let spec = data.commands.get(command);
            let cards = data
                .positions
                .by_rank()
                .into_iter()
                .filter(|(_, card)| card.may_issue.contains(&command))
                .map(|(kind, _)| kind.name().to_string())
                .collect();
            let rule = CommandRule {
                pcp: spec.map_or(0, |s| s.pcp),
                mcp: spec.map_or(0, |s| s.mcp),
                duration: match command {
                    CommandType::Move => None,
                    _ => Some(spec.map_or(0, |s| s.duration)),
                },
                issued_by: issued_by(command),
                cards,
            };
            (command.name().to_string(), rule)
        })
        .collect();
    let positions = data
        .positions
        .by_rank()
        .into_iter()
        .map(|(kind, card)| {
            let rule = PositionRule {
                title: card.title.clone(),
                level: card.level,
                scope: match card.scope {
                    CardScope::Ruler => "ruler",
                    CardScope::Nation => "nation",
                    CardScope::City => "city",
                }
                .to_string(),
                max_holders: card.max_holders,
                cp_multiplier: card.cp_multiplier,
                pcp_max_bonus: card.pcp_max_bonus,
                mcp_max_bonus: card.mcp_max_bonus,
                may_issue: card
                    .may_issue
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect(),
                appoints: card.appoints.iter().map(|k| k.name().to_string()).collect(),
                recruit_cap_multiplier: card.recruit_cap_multiplier,
            };
            (kind.name().to_string(), rule)
        })
        .collect();
    let troops = data
        .troops
        .0
        .iter()
        .map(|(kind, spec)| (kind.name().to_string(), spec.clone()))
        .collect();
    RulesView {
        data_hash: data.data_hash.clone(),
        commands,
        positions,
        troops,
        balance: serde_json::to_value(&data.balance).unwrap_or_default(),
    }
}
