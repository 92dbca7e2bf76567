//! Entity ids (docs/rules.md#ids): strings of `[a-z0-9_-]`, 1–48 characters. Scenario entities
//! use their scenario ids; entities created in play derive theirs from what created them, so a
//! replay creates the same ids.

/// Longest id an entity may have.
pub const MAX_ID_LEN: usize = 48;

/// FNV-1a, 64 bits: a stable hash of bytes (the same on every build and machine, unlike the
/// standard library's), for values derived from ids and command bodies.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether `id` has the shape of an entity id.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_scenario_ids_and_rejects_others() {
        assert!(is_valid_id("cao_cao"));
        assert!(is_valid_id("g-player-1"));
        assert!(is_valid_id(&"a".repeat(MAX_ID_LEN)));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("Cao_Cao"));
        assert!(!is_valid_id("luo yang"));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
        assert!(!is_valid_id("洛陽"));
    }
}
