//! Player presence (docs/rules.md#presence-and-ai-delegates), in game time: a player is online
//! while its last activity is within `online_window`; an offline player's general is protected
//! for its first `protection` offline, then an AI delegate acts for it until
//! `ai_delegate_until`; beyond that, neither. Activity reaches the World through the command
//! bus (`Inbound::Seen` and every command a player sends).

// A fast hasher (seeded per process): presence is noted for every command.
use foldhash::{HashMap, HashSet};

use bevy_ecs::prelude::*;
use components::{
    events::{EventKind, aggregate},
    time::GameClock,
    world::{General, Registry},
};

use crate::{assets::Data, event_log::Outbox};

/// When each player was last active, in game seconds.
#[derive(Resource, Default, Debug)]
pub struct Presence {
    last_seen: HashMap<String, i64>,
    /// Players whose last activity changed since the last checkpoint epoch took them.
    dirty: HashSet<String>,
}

impl Presence {
    pub fn seen(&mut self, player: &str, at: i64) {
        match self.last_seen.get_mut(player) {
            Some(last) if *last >= at => return,
            Some(last) => *last = at,
            None => {
                self.last_seen.insert(player.to_string(), at);
            }
        }
        if !self.dirty.contains(player) {
            self.dirty.insert(player.to_string());
        }
    }

    /// Players seen at least once.
    pub fn players(&self) -> impl Iterator<Item = &String> {
        self.last_seen.keys()
    }

    /// Players whose last activity changed since the last call.
    pub fn take_dirty(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.dirty)
    }

    pub fn last_seen(&self, player: &str) -> Option<i64> {
        self.last_seen.get(player).copied()
    }

    /// Puts back what [`Presence::last_seen`] and [`Presence::is_dirty`] said of `player`
    /// (a command undone after a fault).
    pub fn restore(&mut self, player: &str, last_seen: Option<i64>, dirty: bool) {
        match last_seen {
            Some(at) => {
                self.last_seen.insert(player.to_string(), at);
            }
            None => {
                self.last_seen.remove(player);
            }
        }
        if dirty {
            self.dirty.insert(player.to_string());
        } else {
            self.dirty.remove(player);
        }
    }

    pub fn is_dirty(&self, player: &str) -> bool {
        self.dirty.contains(player)
    }
}

/// Where a player stands, `offline_for` game seconds after going offline (negative: online).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresenceState {
    pub online: bool,
    pub protected: bool,
    pub ai_delegate: bool,
}

pub fn presence_state(
    now: i64,
    last_seen: i64,
    online_window: i64,
    protection: i64,
    ai_until: i64,
) -> PresenceState {
    // Saturating: a stored time far off (a damaged record) is long ago or far ahead, not a
    // fault.
    let offline_for = now.saturating_sub(last_seen).saturating_sub(online_window);
    let online = offline_for <= 0;
    PresenceState {
        online,
        protected: !online && offline_for <= protection,
        ai_delegate: !online && offline_for > protection && offline_for <= ai_until,
    }
}

/// Strategy: updates the protected and AI-delegate flags of players' generals.
pub fn update_presence(
    clock: Res<GameClock>,
    data: Res<Data>,
    presence: Res<Presence>,
    registry: Res<Registry>,
    mut generals: Query<&mut General>,
    mut outbox: ResMut<Outbox>,
) {
    let p = &data.balance.presence;
    let now = clock.game_seconds;
    for (player, general_id) in &registry.players {
        let Some(mut general) = registry
            .generals
            .get(general_id)
            .and_then(|e| generals.get_mut(*e).ok())
        else {
            continue;
        };
        let last = presence.last_seen(player).unwrap_or(0);
        let state = presence_state(
            now,
            last,
            p.online_window,
            p.protection,
            p.ai_delegate_until,
        );
        if general.protected != state.protected || general.ai_delegate != state.ai_delegate {
            general.protected = state.protected;
            general.ai_delegate = state.ai_delegate;
            outbox.emit(
                now,
                aggregate("general", general_id),
                EventKind::PresenceChanged {
                    general: general_id.clone(),
                    player: player.clone(),
                    online: state.online,
                    protected: state.protected,
                    ai_delegate: state.ai_delegate,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_in_game_time() {
        let (window, protection, until) = (7_200, 86_400, 2_073_600);
        let at = |offline: i64| {
            presence_state(1_000 + window + offline, 1_000, window, protection, until)
        };
        assert_eq!(
            at(-1),
            PresenceState {
                online: true,
                protected: false,
                ai_delegate: false
            }
        );
        assert!(at(0).online);
        assert_eq!(
            at(1),
            PresenceState {
                online: false,
                protected: true,
                ai_delegate: false
            }
        );
        assert!(at(protection).protected);
        assert_eq!(
            at(protection + 1),
            PresenceState {
                online: false,
                protected: false,
                ai_delegate: true
            }
        );
        assert!(at(until).ai_delegate);
        assert_eq!(
            at(until + 1),
            PresenceState {
                online: false,
                protected: false,
                ai_delegate: false
            }
        );
    }
}
