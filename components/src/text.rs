//! Text from outside: names shown to other players, and text that goes into logs and error
//! fields, which must stay bounded.

use std::borrow::Cow;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `name` is made only of characters that show as themselves: no control or format
/// characters (bidirectional overrides, zero-width characters), separators other than the
/// space, private-use or unassigned code points.
pub fn printable(name: &str) -> bool {
    name.chars().all(|c| {
        !matches!(
            c.general_category(),
            GeneralCategory::Control
                | GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
                | GeneralCategory::PrivateUse
                | GeneralCategory::Surrogate
                | GeneralCategory::Unassigned
        ) && (c == ' ' || !c.is_whitespace())
    })
}

/// `text` cut to at most `max` bytes (at a character boundary), saying how much was cut.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!(
        "{}… ({} more bytes)",
        &text[..end],
        text.len() - end
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_invisible_or_reordering_characters_are_not_printable() {
        assert!(printable("Guan Yu"));
        assert!(printable("关羽"));
        assert!(printable("Zhāng Fēi"));
        for bad in [
            "Liu\u{202E}Bei",
            "Cao\u{200B}Cao",
            "Sun\u{2066}Quan",
            "a\u{FEFF}b",
            "tab\there",
            "line\u{2028}break",
            "nb\u{00A0}sp",
            "\u{E000}",
        ] {
            assert!(!printable(bad), "{bad:?}");
        }
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("short", 10), "short");
        let long = "关".repeat(100);
        let clipped = clip(&long, 10);
        assert!(clipped.starts_with("关关关…"), "{clipped}");
        assert!(clipped.ends_with("(291 more bytes)"), "{clipped}");
    }
}
