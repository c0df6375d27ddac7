//! Text that a person reads before approving: one rule for what may be shown, and one way to
//! print anything else safely on a terminal.
//!
//! A person approves what they see, so text must not be able to look like something else.
//! Hidden characters are those of Unicode general categories Cc (control), Cf (format: the bidi
//! controls U+202A–U+202E and U+2066–U+2069, zero-width spaces and joiners, the byte-order mark,
//! soft hyphens, tags), Zl and Zp (line and paragraph separators), and Co and Cn (private-use
//! and unassigned code points, whose rendering nobody can predict). Unicode TR #9 (the bidi
//! algorithm) and TR #36 (security considerations) describe the spoofing these allow.

use unicode_general_category::{get_general_category, GeneralCategory};

/// Whether `c` is invisible or changes how other characters are shown (see the module docs).
pub fn is_hidden(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
    )
}

/// The first hidden character of `text` (see [`is_hidden`]), if any.
pub fn first_hidden(text: &str) -> Option<char> {
    text.chars().find(|&c| is_hidden(c))
}

/// `text` with every hidden character replaced by its visible escape `\u{XXXX}` (and `\` by
/// `\\`, so an escape cannot be forged), ready for a terminal, a log line or a PAM prompt.
pub fn for_terminal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if is_hidden(c) {
            out.push_str(&format!("\\u{{{:04X}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// [`for_terminal`], cut to at most `max_chars` characters of the original with a visible mark
/// saying how many characters were left out, so a shortened value never passes for the whole.
pub fn for_terminal_cut(text: &str, max_chars: usize) -> String {
    let total = text.chars().count();
    if total <= max_chars {
        return for_terminal(text);
    }
    let kept: String = text.chars().take(max_chars).collect();
    format!(
        "{}… [{} more characters not shown]",
        for_terminal(&kept),
        total - max_chars
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue9_item14_bidi_and_format_characters_are_hidden() {
        for c in [
            '\u{202E}',
            '\u{202A}',
            '\u{2066}',
            '\u{2069}',
            '\u{200B}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{061C}',
            '\u{2028}',
            '\u{2029}',
            '\u{E0041}',
            '\u{1B}',
            '\u{7F}',
            '\u{E000}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", u32::from(c));
        }
        for c in ['a', 'é', 'Ж', '中', ' ', '-', '😀', '\u{00A0}'] {
            assert!(!is_hidden(c), "U+{:04X}", u32::from(c));
        }
        assert_eq!(first_hidden("web01\u{202E}10bew"), Some('\u{202E}'));
        assert_eq!(first_hidden("web01"), None);
    }

    #[test]
    fn issue9_item14_terminal_text_shows_what_is_there() {
        assert_eq!(
            for_terminal("sudo rm\u{202E}fr- \u{1b}[2J"),
            "sudo rm\\u{202E}fr- \\u{001B}[2J"
        );
        // A literal backslash cannot forge an escape.
        assert_eq!(for_terminal("\\u{202E}"), "\\\\u{202E}");
        assert_eq!(for_terminal_cut("abcdef", 6), "abcdef");
        assert_eq!(
            for_terminal_cut("abcdefgh", 3),
            "abc… [5 more characters not shown]"
        );
    }
}
