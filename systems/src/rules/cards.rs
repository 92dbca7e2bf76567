//! What a position card gives its holder (docs/rules.md#position-cards-and-authority): its
//! command-point maxima, which follow the card ([`set_position`] is the one way a general's
//! card changes: APPOINT, DISMISS, a governor's city lost, a nation destroyed), and its troop
//! cap ([`troop_cap`]: leadership times the card's multiplier).

use bevy_ecs::{entity::Entity, world::World};
use components::world::{General, MilliCp, Position};

use crate::{
    assets::{Data, GameData},
    spawn::cp_maxima,
};

/// The most troops `general` may have.
pub fn troop_cap(data: &GameData, general: &General) -> u32 {
    let multiplier = general
        .position
        .as_ref()
        .map_or(1.0, |p| data.positions.card(p.kind).recruit_cap_multiplier);
    let cap = f64::from(general.stats.leadership)
        * data.balance.recruit.troops_per_leadership as f64
        * multiplier;
    cap.clamp(0.0, f64::from(u32::MAX)) as u32
}

/// Gives `entity` a card (or none) and recomputes its command-point maxima.
pub fn set_position(world: &mut World, entity: Entity, position: Option<Position>) {
    let data = world.resource::<Data>().0.clone();
    if let Some(mut general) = world.get_mut::<General>(entity) {
        let (pcp_max, mcp_max) = cp_maxima(
            &general.stats,
            position.as_ref().map(|p| p.kind),
            &data.balance,
            &data.positions,
        );
        general.position = position;
        general.pcp_max = MilliCp::from_points(pcp_max);
        general.mcp_max = MilliCp::from_points(mcp_max);
        general.pcp = general.pcp.min(general.pcp_max);
        general.mcp = general.mcp.min(general.mcp_max);
    }
}
