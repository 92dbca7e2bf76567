//! Names the designer data defines (docs/data-files.md#names): troop types and position
//! cards. A designer adds one by adding a table to `troops.toml` or `positions.toml`, so they
//! are names rather than Rust enums. Each is 1–24 characters of `a-z`, `0-9` and `_`,
//! starting with a letter, stored inline so it is `Copy` and as cheap to compare as an enum.
//!
//! A name's shape is checked wherever one is read; whether the data defines it is the
//! World's check (an unknown troop type or card is a refused command, an error of `check`).

use std::{borrow::Cow, fmt};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Longest name the data may define.
pub const NAME_MAX: usize = 24;

/// What a name must look like, for error messages.
pub const NAME_SHAPE: &str =
    "1-24 characters of a-z, 0-9 and _, starting with a letter (like \"spearman\")";

/// A name of the data, zero-padded, so the derived order is the alphabetical order.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShortName([u8; NAME_MAX]);

impl ShortName {
    /// The name, or `None` when `text` does not have a name's shape.
    pub const fn new(text: &str) -> Option<ShortName> {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > NAME_MAX || !bytes[0].is_ascii_lowercase() {
            return None;
        }
        let mut out = [0u8; NAME_MAX];
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return None;
            }
            out[i] = b;
            i += 1;
        }
        Some(ShortName(out))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|b| *b == 0).unwrap_or(NAME_MAX);
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.0[..len]).unwrap_or_default()
    }
}

macro_rules! data_name {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, utoipa::ToSchema)]
        #[schema(value_type = String)]
        pub struct $name(ShortName);

        impl $name {
            /// The name, or an error saying what a name looks like.
            pub fn new(text: &str) -> Result<$name, String> {
                ShortName::new(text)
                    .map($name)
                    .ok_or_else(|| format!("\"{}\" is not {}: {NAME_SHAPE}", text.escape_default(), $what))
            }

            /// A name known to be well formed, for constants.
            pub const fn from_static(text: &'static str) -> $name {
                match ShortName::new(text) {
                    Some(name) => $name(name),
                    None => panic!("not a well-formed name"),
                }
            }

            pub fn name(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.name())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = Cow::<'de, str>::deserialize(deserializer)?;
                $name::new(&text).map_err(serde::de::Error::custom)
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[a-z][a-z0-9_]{0,23}$",
                    "description": concat!("The name of ", $what, " the data defines.")
                })
            }
        }
    };
}

data_name!(
    /// A troop type: a table of `troops.toml` (docs/data-files.md#troops).
    TroopType,
    "a troop type"
);

data_name!(
    /// A position card: a table of `positions.toml` (docs/data-files.md#position-cards).
    PositionKind,
    "a position card"
);

impl TroopType {
    pub const INFANTRY: TroopType = TroopType::from_static("infantry");
    pub const CAVALRY: TroopType = TroopType::from_static("cavalry");
    pub const ARCHER: TroopType = TroopType::from_static("archer");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_one_shape_and_sort_alphabetically() {
        assert_eq!(TroopType::new("spearman").unwrap().name(), "spearman");
        assert_eq!(TroopType::new(&"a".repeat(24)).unwrap().name().len(), 24);
        for bad in ["", "Spear", "1st", "spear man", "_x", &"a".repeat(25), "弓"] {
            assert!(TroopType::new(bad).is_err(), "{bad:?} was taken");
        }
        let mut names: Vec<TroopType> = ["infantry", "archer", "cavalry", "arch"]
            .iter()
            .map(|n| TroopType::new(n).unwrap())
            .collect();
        names.sort();
        let sorted: Vec<&str> = names.iter().map(|n| n.name()).collect();
        assert_eq!(sorted, ["arch", "archer", "cavalry", "infantry"]);
    }

    #[test]
    fn names_read_and_write_as_strings() {
        let t: TroopType = serde_json::from_str("\"cavalry\"").unwrap();
        assert_eq!(t, TroopType::CAVALRY);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"cavalry\"");
        let err = serde_json::from_str::<PositionKind>("\"Grand General\"").unwrap_err();
        assert!(err.to_string().contains("not a position card"), "{err}");
    }
}
