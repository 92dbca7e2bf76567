//! The token rules both durable account stores follow (docs/http.md#tokens): how many a
//! player keeps, and when a used token's expiry is written again.

use std::time::Duration;

use components::accounts::TOKEN_TTL;

/// A token's expiry is written again only when it would move by at least this much.
pub const REFRESH_AFTER: Duration = Duration::from_secs(3_600);

// The refresh step must stay well below a token's life.
const _: () = assert!(REFRESH_AFTER.as_secs() * 2 < TOKEN_TTL.as_secs());

/// Of a player's tokens `(expiry in Unix ms, key)`, those to remove: every expired one, and
/// the oldest live ones beyond the newest `room`.
pub fn tokens_to_drop<K: Ord>(mut held: Vec<(u64, K)>, now: u64, room: usize) -> Vec<K> {
    held.sort();
    let live = held.iter().filter(|(expiry, _)| *expiry > now).count();
    let mut excess = live.saturating_sub(room);
    held.into_iter()
        .filter(|(expiry, _)| {
            if *expiry <= now {
                true
            } else if excess > 0 {
                excess -= 1;
                true
            } else {
                false
            }
        })
        .map(|(_, key)| key)
        .collect()
}

/// What using a token that expires at `expires` comes to at `now`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenUse {
    /// Expired: remove it; the request is not authenticated.
    Expired,
    /// Valid; its expiry moves to the given time if there is one (only when that is at
    /// least `refresh_after` later, so a busy token costs one write now and then).
    Valid(Option<u64>),
}

pub fn token_use(expires: u64, now: u64, refresh_to: u64, refresh_after: u64) -> TokenUse {
    if expires <= now {
        TokenUse::Expired
    } else if refresh_to >= expires.saturating_add(refresh_after) {
        TokenUse::Valid(Some(refresh_to))
    } else {
        TokenUse::Valid(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_tokens_and_the_oldest_beyond_the_room_go() {
        let held = vec![(300, 'c'), (100, 'a'), (200, 'b'), (50, 'x')];
        assert_eq!(tokens_to_drop(held.clone(), 60, 2), vec!['x', 'a']);
        assert_eq!(tokens_to_drop(held.clone(), 60, 5), vec!['x']);
        assert_eq!(tokens_to_drop(held, 250, 0), vec!['x', 'a', 'b', 'c']);
    }

    #[test]
    fn a_used_token_is_refreshed_now_and_then() {
        assert_eq!(token_use(100, 100, 500, 10), TokenUse::Expired);
        assert_eq!(token_use(100, 50, 105, 10), TokenUse::Valid(None));
        assert_eq!(token_use(100, 50, 110, 10), TokenUse::Valid(Some(110)));
    }
}
